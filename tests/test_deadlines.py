"""Deadlines (grader/deadlines.py): which commit of a repository submission is graded,
and git run on a hostile repository without anything of its configuration."""
import os
import shutil
import subprocess
import tarfile
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader import deadlines
from grader.host import real_root

DUE = datetime(2026, 10, 1, 21, 59, tzinfo=timezone.utc)
UID = 65534 if real_root() else None   # the root of `unshare -r` has no other uid


def test_deadlines_file(tmp_path):
    f = tmp_path / "deadlines.toml"
    f.write_text('[01]\ndue = 2026-10-01T23:59:00+02:00\nlate_days = 2\npenalty = 10\n'
                 '["02-tcp-handshake"]\ndue = 2026-10-08\n')
    d = deadlines.load(f, ["01-sockets", "02-tcp-handshake"])
    assert d["01-sockets"] == deadlines.Deadline(DUE, 2, 10.0)
    assert d["02-tcp-handshake"].due == datetime(2026, 10, 8, 23, 59, 59, tzinfo=timezone.utc)
    assert list(deadlines.load(f, ["01-sockets"])) == ["01-sockets"]      # lessons not graded: ignored
    f.write_text("[01]\ndue = 2026-10-01T23:59:00\n")
    with pytest.raises(SystemExit, match="offset"):
        deadlines.load(f, ["01-sockets"])
    f.write_text("[01]\ndue = 2026-10-01\npenalty = 150\n")
    with pytest.raises(SystemExit, match="percent"):
        deadlines.load(f, ["01-sockets"])


def test_the_commit_graded_is_the_last_before_the_deadline():
    h = [("c", DUE + timedelta(days=3)), ("b", DUE + timedelta(hours=30)), ("a", DUE - timedelta(hours=1))]
    assert deadlines.choose(h, deadlines.Deadline(DUE)).sha == "a"
    late = deadlines.choose(h, deadlines.Deadline(DUE, late_days=2, penalty=10))
    assert (late.sha, late.days_late, late.penalty) == ("b", 2, 20.0)       # 30 hours: 2 days started
    assert deadlines.choose(h, None).sha == "c"                              # no deadline: HEAD
    assert deadlines.choose(h[:2], deadlines.Deadline(DUE)) is None
    assert deadlines.choose(h, deadlines.Deadline(DUE, 5, 30)).penalty == 90.0     # c: 3 days late
    assert deadlines.choose(h, deadlines.Deadline(DUE, 9, 40)).penalty == 100.0   # 3 days late


def make_repo(path, commits, marker):
    """A repository whose commits have the given times, and whose configuration, hooks
    and links try to run programs or read files when git touches it."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(path.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s",
           "GIT_COMMITTER_EMAIL": "s@x"}
    run = lambda *a, **kw: subprocess.run(["git", *a], cwd=path, env={**env, **kw}, check=True,  # noqa: E731
                                          capture_output=True)
    path.mkdir(parents=True)
    run("init", "-q", "-b", "main")
    for i, (when, text) in enumerate(commits):
        (path / "chapters" / "01-sockets").mkdir(parents=True, exist_ok=True)
        (path / "chapters" / "01-sockets" / "server.c").write_text(text)
        run("add", "-A")
        stamp = when.isoformat()
        run("commit", "-q", "-m", f"c{i}", GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    (path / "chapters" / "01-sockets" / "server.c").write_text("/* uncommitted */\n")
    git = path / ".git"
    with open(git / "config", "a") as f:
        f.write(f"[core]\n\tfsmonitor = touch {marker}-fsmonitor\n\tpager = touch {marker}-pager\n"
                f"[tar \"tar\"]\n\tcommand = touch {marker}-tar\n[alias]\n\tlog = !touch {marker}-alias\n")
    for hook in ("post-checkout", "pre-auto-gc", "reference-transaction"):
        (git / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {marker}-hook\n")
        (git / "hooks" / hook).chmod(0o755)
    (git / "info" / "attributes").write_text("* export-subst\n")
    (git / "description").unlink()
    (git / "description").symlink_to("/etc/shadow")
    return path


@pytest.fixture
def workdir():
    """Folders a slot uid can reach (pytest's own are root's alone), removed at the end."""
    made = []

    def make():
        made.append(Path(tempfile.mkdtemp(prefix="socklab-test-")))
        os.chmod(made[-1], 0o711)
        return made[-1]
    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def test_a_hostile_repository_is_read_without_its_configuration(tmp_path, workdir):
    marker = tmp_path / "ran"
    times = [DUE - timedelta(days=2), DUE + timedelta(hours=5), DUE + timedelta(days=9)]
    repo = make_repo(tmp_path / "sub", [(t, f"/* version {i} */\n") for i, t in enumerate(times)], marker)
    work = workdir()
    chosen = deadlines.plan(repo, {"01-sockets": deadlines.Deadline(DUE, 1, 25)}, ["01-sockets"], work, UID)
    c = chosen["01-sockets"]
    assert (c.time, c.days_late, c.penalty) == (times[1], 1, 25.0)
    tar = deadlines.export(str(work / "git"), c.sha, work / "out.tar", UID)
    with tarfile.open(tar) as t:
        assert t.extractfile("chapters/01-sockets/server.c").read() == b"/* version 1 */\n"
    assert not list(tmp_path.glob("ran-*")), list(tmp_path.glob("ran-*"))
    assert not (work / "git" / "hooks").exists() and not (work / "git" / "description").exists()
    assert "fsmonitor" not in (work / "git" / "config").read_text()
    if UID is not None:
        assert os.stat(work / "git" / "HEAD").st_uid == UID


def test_an_unreadable_repository_is_refused(tmp_path, workdir):
    repo = tmp_path / "sub"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "refs" / "heads" / "main").write_text("1" * 40 + "\n")     # a commit that is not there
    work = workdir()
    assert deadlines.is_repository(repo)
    with pytest.raises(ValueError, match="git rev-parse failed"):
        deadlines.plan(repo, {}, ["01-sockets"], work, UID)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / ".git").symlink_to(repo / ".git")
    assert not deadlines.is_repository(tmp_path / "linked")


def test_a_repository_without_commits_has_nothing_to_grade(tmp_path, workdir):
    repo = tmp_path / "sub"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    (repo / "work.c").write_text("/* never committed */\n")
    assert deadlines.plan(repo, {}, ["01-sockets"], workdir(), UID) == {"01-sockets": None}
