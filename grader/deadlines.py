"""Deadlines: a submission that is a git repository is graded, lesson by lesson, at its
last commit before the lesson's deadline.

    ./lab batch SUBMISSIONS/ --out OUT --deadlines deadlines.toml

deadlines.toml (TOML, read with Python's tomllib), one table per lesson:

    [01]                             # or [01-sockets], or ["sockets"]
    due = 2026-10-01T23:59:00+02:00  # a date and time with its offset; a date alone is 23:59:59 UTC
    late_days = 2                    # optional: commits up to 2 days after `due` count ...
    penalty = 10                     # ... losing 10% of the lesson's points per day started

The commit graded for a lesson is the latest (by committer time) reachable from the
repository's HEAD with a time up to `due` plus `late_days`; a lesson without a deadline
is graded at HEAD.  Commit times are what the student's git wrote: a student can forge
them.  Only a time the instructor's side recorded (the hosting's push log, a clone made at
the deadline) is proof.

The repository is hostile.  It is never used in place: its .git folder's regular files
are copied (no link followed, at most REPO_BYTES) into a fresh folder, its config, hooks
and info/ dropped and replaced by a config of our own, and git runs there as an
unprivileged uid (the slot's builder when root), with no system or global config, hooks
pointing at /dev/null, no fsmonitor, no pager, no protocols, no gpg.  The commit is taken
out with `git archive --format=tar` (capped at ARCHIVE_BYTES), and that tar is what the
sandbox grades, like any tar submission.
"""
import math
import os
import shutil
import stat
import subprocess
import threading
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from grader import host

REPO_BYTES = 256 << 20
ARCHIVE_BYTES = 64 << 20
MOST_COMMITS = 100_000
GIT_SECONDS = 60


@dataclass
class Deadline:
    due: datetime
    late_days: int = 0
    penalty: float = 0.0        # percent of the lesson's points per day started


@dataclass
class Commit:
    sha: str
    time: datetime
    days_late: int = 0
    penalty: float = 0.0        # percent taken off the lesson's score


def load(path, lesson_names):
    """{lesson name: Deadline} from a deadlines file, its keys resolved like --lessons."""
    from grader import lessons
    with open(path, "rb") as f:
        data = tomllib.load(f)
    found = {}
    for key, entry in data.items():
        name = lessons.select(str(key))[0].name
        if not isinstance(entry, dict) or "due" not in entry:
            raise SystemExit(f"{path}: [{key}] needs a `due` date")
        due = entry["due"]
        if isinstance(due, datetime):
            if due.tzinfo is None:
                raise SystemExit(f"{path}: [{key}] due = {due}: give its offset (Z or +02:00)")
        elif isinstance(due, date):
            due = datetime.combine(due, time(23, 59, 59), timezone.utc)
        else:
            raise SystemExit(f"{path}: [{key}] due must be a TOML date or date-time")
        late, penalty = entry.get("late_days", 0), entry.get("penalty", 0)
        if not isinstance(late, int) or late < 0 or not isinstance(penalty, (int, float)) or not 0 <= penalty <= 100:
            raise SystemExit(f"{path}: [{key}] late_days must be a whole number >= 0, penalty a percent")
        if name in lesson_names:
            found[name] = Deadline(due, late, float(penalty))
    return found


def is_repository(entry):
    """A submission folder with a .git folder of its own (not a link, not a gitdir file)."""
    git = Path(entry) / ".git"
    return not os.path.islink(entry) and entry.is_dir() and not os.path.islink(git) and git.is_dir()


# -- git, safely ----------------------------------------------------------------------------

OUR_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tbare = true\n"
DROPPED = ("config", "hooks", "info", "config.worktree", "commondir", "gitdir", "objects/info/alternates",
           "objects/info/http-alternates")


def copy_git_dir(src, dest, owner=None):
    """The regular files of src (a .git folder) into dest, no link followed, at most
    REPO_BYTES; what could run a program or point elsewhere is left out."""
    total = 0
    for root, dirs, files in os.walk(src, followlinks=False):
        rel_root = os.path.relpath(root, src)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))
                   and os.path.normpath(os.path.join(rel_root, d)) not in DROPPED]
        os.makedirs(os.path.join(dest, rel_root), exist_ok=True)
        for name in files:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if rel in DROPPED:
                continue
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                total += os.fstat(fd).st_size
                if total > REPO_BYTES:
                    raise ValueError(f"its .git is larger than {REPO_BYTES >> 20} MiB")
                with open(os.path.join(dest, rel), "wb") as out:
                    shutil.copyfileobj(f, out)
    Path(dest, "config").write_text(OUR_CONFIG)
    if owner is not None:
        for root, dirs, files in os.walk(dest):
            for p in [root, *(os.path.join(root, n) for n in files)]:
                os.lchown(p, owner, owner)


def git(git_dir, args, uid=None, out=None, limit=None):
    """Run git on a copied repository with nothing of the student's configuration; its
    output returned as text, or written to the file `out` (at most `limit` bytes)."""
    home = os.path.dirname(git_dir)
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "GIT_DIR": git_dir, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ATTR_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
           "GIT_PAGER": "cat", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_REPLACE_OBJECTS": "1", "LC_ALL": "C"}
    argv = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", f"safe.directory={git_dir}",
            "-c", "protocol.allow=never", "-c", "gpg.program=false", "-c", "gpg.ssh.program=false",
            "-c", "core.pager=cat", "-c", "core.untrackedCache=false", *args]
    become = None
    if uid is not None and host.real_root():
        from grader import identity
        become = lambda: identity.become(uid)       # noqa: E731
    proc = subprocess.Popen(argv, env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=become, start_new_session=True)
    timer = threading.Timer(GIT_SECONDS, proc.kill)
    timer.start()
    errors = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read(4096)), daemon=True)
    reader.start()
    try:
        chunks, size = [], 0
        for block in iter(lambda: proc.stdout.read(1 << 16), b""):
            size += len(block)
            if limit is not None and size > limit:
                proc.kill()
                raise ValueError(f"git {args[0]} gave more than {limit >> 20} MiB")
            if out is not None:
                out.write(block)
            else:
                chunks.append(block)
        rc = proc.wait()
    finally:
        timer.cancel()
        proc.kill() if proc.poll() is None else None
        proc.wait()
        reader.join(timeout=5)
    if rc != 0:
        why = (errors[0] if errors else b"").decode("utf-8", "replace").strip()[:200]
        raise ValueError(f"git {args[0]} failed ({'killed after %d s' % GIT_SECONDS if rc < 0 else rc}): {why}")
    return b"".join(chunks).decode("utf-8", "replace")


def unborn(git_dir):
    """HEAD names a branch that has no commit yet (a repository before its first commit)."""
    head = Path(git_dir, "HEAD")
    text = head.read_text(errors="replace") if head.is_file() else ""
    if not text.startswith("ref: "):
        return False
    ref = text[5:].strip()
    packed = Path(git_dir, "packed-refs")
    listed = packed.is_file() and f" {ref}\n" in packed.read_text(errors="replace")
    return not Path(git_dir, ref).is_file() and not listed


def commits(git_dir, uid=None):
    """[(sha, time)] reachable from HEAD, newest first by committer time; [] before the
    first commit."""
    try:
        git(git_dir, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], uid)
    except ValueError:
        if unborn(git_dir):
            return []
        raise
    out = git(git_dir, ["log", f"--max-count={MOST_COMMITS}", "--format=%H %ct", "HEAD", "--"], uid)
    found = []
    for line in out.splitlines():
        sha, _, ts = line.partition(" ")
        if len(sha) in (40, 64) and ts.isdigit():
            found.append((sha, datetime.fromtimestamp(int(ts), timezone.utc)))
    return sorted(found, key=lambda c: c[1], reverse=True)


def choose(history, deadline):
    """The Commit graded for a lesson: the newest up to the deadline (late days
    included, with their penalty), None when there is none; HEAD without a deadline."""
    if not history:
        return None
    if deadline is None:
        return Commit(*history[0])
    last = deadline.due + timedelta(days=deadline.late_days)
    for sha, when in history:
        if when <= last:
            late = 0 if when <= deadline.due else math.ceil((when - deadline.due) / timedelta(days=1))
            return Commit(sha, when, late, min(100.0, late * deadline.penalty))
    return None


def export(git_dir, sha, tar_path, uid=None):
    """`git archive --format=tar sha` into tar_path, at most ARCHIVE_BYTES."""
    with open(tar_path, "wb") as out:
        git(git_dir, ["archive", "--format=tar", sha], uid, out=out, limit=ARCHIVE_BYTES)
    return tar_path


def plan(entry, deadlines, lesson_names, work, uid=None):
    """{lesson: Commit or None} for a repository submission, the repository copied into
    work/git (owned by uid).  Raises ValueError when the repository cannot be read."""
    git_dir = os.path.join(work, "git")
    os.makedirs(git_dir)
    if uid is not None and host.real_root():
        os.chown(work, uid, uid)
    copy_git_dir(os.path.join(entry, ".git"), git_dir, uid if host.real_root() else None)
    history = commits(git_dir, uid)
    return {name: choose(history, deadlines.get(name)) for name in lesson_names}
