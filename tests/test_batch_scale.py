"""./lab batch at class scale, grading for real (lesson 01, a handful of students):
regrading some students into an existing gradebook (--only, --force), and a class graded
in shards then merged giving the very gradebook one batch gives."""
import csv
import difflib
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from grader.batch import expected_tests
from grader.host import real_root
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
SOL = REPO / "solutions" / "01-sockets"
SKEL = REPO / "chapters" / "01-sockets"
FULL = sum(expected_tests(["01-sockets"]).values())   # lesson 01's points
pytestmark = pytest.mark.skipif(not real_root(), reason="the full sandbox (other uids, cgroups) needs root")


def copy_c(src, dest):
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.c"):
        shutil.copy(f, dest / f.name)
    return dest


def small_class(root):
    """Five students: two correct (one of them a zip), a partial, a build failure, an empty folder."""
    copy_c(SOL, root / "alice" / "chapters" / "01-sockets")
    with zipfile.ZipFile(root / "b.ob.zip", "w") as z:
        for f in SOL.glob("*.c"):
            z.write(f, f"chapters/01-sockets/{f.name}")
    partial = copy_c(SKEL, root / "dave" / "chapters" / "01-sockets")
    shutil.copy(SOL / "addr.c", partial / "addr.c")
    broken = copy_c(SOL, root / "erin" / "chapters" / "01-sockets")
    (broken / "server.c").write_text("int main(void) { return 0 }\n")
    (root / "nobody").mkdir()
    return root


def lab(*args, timeout=slowed(600)):
    res = subprocess.run([REPO / "lab", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def batch(subs, out, *more):
    return lab("batch", subs, "--out", out, "--lessons", "01", "--jobs", "2", "--memory", "384", *more)


def rows(out):
    return {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv"))}


def result(out, student):
    return json.loads((out / "students" / student / "result.json").read_text())


@pytest.mark.slow       # minutes: started first, so it is not the run's tail
def test_only_and_force_regrade_some_students_and_drop_nobody(tmp_path):
    subs = tmp_path / "subs"
    copy_c(SOL, subs / "alice" / "chapters" / "01-sockets")
    partial = copy_c(SKEL, subs / "dave" / "chapters" / "01-sockets")
    shutil.copy(SOL / "addr.c", partial / "addr.c")
    out = tmp_path / "out"
    batch(subs, out)
    assert {s: r["01-sockets"] for s, r in rows(out).items()} == {"alice": str(FULL), "dave": "4"}
    alice = out / "students" / "alice" / "result.json"
    alice_before = alice.stat().st_mtime_ns, alice.read_bytes()

    copy_c(SOL, partial)                       # dave finishes; only dave is regraded
    assert "graded 1 submissions (2 in the gradebook)" in batch(subs, out, "--only", "dave")
    assert {s: r["01-sockets"] for s, r in rows(out).items()} == {"alice": str(FULL), "dave": str(FULL)}
    assert (alice.stat().st_mtime_ns, alice.read_bytes()) == alice_before

    # a one-entry folder batched into the same --out (what the issue saw drop 22 rows)
    alone = tmp_path / "alone"
    copy_c(SKEL, alone / "erin" / "chapters" / "01-sockets")
    batch(alone, out)
    assert set(rows(out)) == {"alice", "dave", "erin"}

    # --force regrades an unchanged submission: a fresh result, the same grade
    dave = out / "students" / "dave" / "result.json"
    dave_before = dave.stat().st_mtime_ns
    batch(subs, out, "--only", "alice", "--force")
    assert alice.stat().st_mtime_ns != alice_before[0] and dave.stat().st_mtime_ns == dave_before
    assert result(out, "alice")["total"] == FULL and rows(out)["alice"]["01-sockets"] == str(FULL)
    assert (out / "students" / "alice" / "index.html").exists()


@pytest.mark.slow       # minutes: started first, so it is not the run's tail
def test_three_shards_merged_give_the_gradebook_of_one_batch(tmp_path):
    """Three shards graded apart, merged, give the gradebook and pages of one batch over
    the whole class -- here a batch that resumes from the shards' gradings (each student
    graded once: what is compared is the merge, not the grader's determinism)."""
    subs = small_class(tmp_path / "subs")
    shards = [tmp_path / f"shard-{i}" for i in (1, 2, 3)]
    for i, d in enumerate(shards, 1):
        batch(subs, d, "--shard", f"{i}/3")
    parts = [set(rows(d)) for d in shards]
    assert sum(map(len, parts)) == 5 and set().union(*parts) == {"alice", "b.ob", "dave", "erin", "nobody"}
    whole = tmp_path / "whole"
    for d in shards:
        shutil.copytree(d / "students", whole / "students", dirs_exist_ok=True)
    graded = {p.parent.name: p.read_bytes() for p in (whole / "students").glob("*/result.json")}
    batch(subs, whole)
    assert {p.parent.name: p.read_bytes() for p in (whole / "students").glob("*/result.json")} == graded
    assert set(rows(whole)) == set().union(*parts)
    notes = {s: " ".join(n["text"] for n in result(whole, s)["notes"]) for s in ("dave", "erin", "nobody")}
    score = {s: int(r["01-sockets"]) for s, r in rows(whole).items()}
    assert 0 < score["dave"] < FULL and "01 server stopped at an unfinished TODO" in notes["dave"]
    assert score["erin"] < FULL and "some programs do not compile" in notes["erin"]
    assert score["nobody"] == 0 and "no source files found for 01-sockets" in notes["nobody"]

    merged = tmp_path / "merged"
    lab("gradebook", "merge", merged, *shards)

    def pages(out):
        files = [out / "gradebook.csv", out / "gradebook.html", *sorted(out.glob("students/*/index.html"))]
        return {str(f.relative_to(out)): f.read_bytes() for f in files}
    merged_pages, whole_pages = pages(merged), pages(whole)
    for name in ("gradebook.csv", "gradebook.html"):
        assert merged_pages.pop(name) == whole_pages.pop(name), name
    # a student's page quotes failure notes, which may name an ephemeral port or a time
    # measured in that run: the same but for the numbers
    numbers = re.compile(rb"\d+")
    assert merged_pages.keys() == whole_pages.keys()
    for name in merged_pages:
        got, want = (numbers.sub(b"#", pages[name]).decode() for pages in (merged_pages, whole_pages))
        assert got == want, f"{name} differs:\n" + "\n".join(
            difflib.unified_diff(want.splitlines(), got.splitlines(), "one batch", "merged shards", lineterm=""))
    assert rows(merged)["alice"]["01-sockets"] == str(FULL) and rows(merged)["nobody"]["total"] == "0"
    assert all((merged / "students" / s / "report.txt").exists() for s in rows(whole))

    # the sources graded are kept, and compared: alice and b.ob handed in the reference solution
    assert (merged / "students" / "alice" / "src" / "01-sockets" / "server.c").read_bytes() == (SOL / "server.c").read_bytes()
    if (merged / "similarity.csv").exists():         # sim_c installed (tools/setup.sh --similarity)
        assert (merged / "similarity.csv").read_bytes() == (whole / "similarity.csv").read_bytes()
        flagged = {(r["student"], r["program"]) for r in csv.DictReader(open(whole / "similarity.csv"))
                   if r["kind"] == "reference-identical"}
        assert {("alice", "server.c"), ("b.ob", "server.c"), ("alice", "client.c")} <= flagged
        assert ("dave", "addr.c") in flagged and ("dave", "server.c") not in flagged   # the skeleton is no finding

    # the same gradings found twice merge; a student graded differently in two places is refused
    lab("gradebook", "merge", tmp_path / "again", whole, *shards)
    assert pages(tmp_path / "again") == pages(whole)
    forged = next(d for d in shards if (d / "students" / "dave").is_dir())
    r = result(forged, "dave")
    r["total"] = r["scores"]["01-sockets"]["score"] = FULL
    (forged / "students" / "dave" / "result.json").write_text(json.dumps(r))
    res = subprocess.run([REPO / "lab", "gradebook", "merge", tmp_path / "third", whole, forged],
                         capture_output=True, text=True, timeout=slowed(120), stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and "'dave' in" in res.stdout + res.stderr
    assert not (tmp_path / "third" / "gradebook.csv").exists()


def git_repo(path, versions):
    """A student's repository: one commit per (time, {file: text}) of lesson 01."""
    import os
    env = {"PATH": "/usr/bin:/bin", "HOME": str(path), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "s",
           "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@x"}
    lesson = path / "chapters" / "01-sockets"
    lesson.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=env, check=True)
    for when, files in versions:
        for name, src in files.items():
            shutil.copy(src, lesson / name)
        subprocess.run(["git", "add", "-A"], cwd=path, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "work"], cwd=path, check=True,
                       env={**env, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
    os.chmod(path, 0o755)
    return path


def test_a_repository_is_graded_at_its_last_commit_before_the_deadline(tmp_path):
    skeleton = {f.name: f for f in SKEL.glob("*.c")}
    solution = {f.name: f for f in SOL.glob("*.c")}
    subs = tmp_path / "subs"
    # finished a day early, then broke the server after the late days: graded at the first commit
    early = git_repo(subs / "early", [("2026-09-30T12:00:00Z", solution),
                                      ("2026-10-09T12:00:00Z", {"server.c": SKEL / "server.c"})])
    (early / "chapters" / "01-sockets" / "client.c").write_text("uncommitted, never graded\n")
    # addr before the deadline, the rest 30 hours late: graded late, 2 days started, -20%
    git_repo(subs / "late", [("2026-09-30T12:00:00Z", {**skeleton, "addr.c": SOL / "addr.c"}),
                             ("2026-10-03T03:59:00Z", solution)])
    due = tmp_path / "deadlines.toml"
    due.write_text("[01]\ndue = 2026-10-01T23:59:00+02:00\nlate_days = 2\npenalty = 10\n")
    out = tmp_path / "out"
    batch(subs, out, "--deadlines", due)
    early_r, late_r = result(out, "early"), result(out, "late")
    assert early_r["scores"]["01-sockets"] == {"score": FULL, "max": FULL}, early_r["notes"]
    c = early_r["commits"]["01-sockets"]
    assert c["time"] == "2026-09-30T12:00:00+00:00" and c["days_late"] == 0 and len(c["sha"]) == 40
    late_score = round(FULL * 0.8)
    assert late_r["scores"]["01-sockets"] == {"score": late_score, "max": FULL, "before_penalty": FULL}
    assert late_r["commits"]["01-sockets"]["days_late"] == 2 and late_r["total"] == late_score
    assert any(n["kind"] == "late" and "2 days late: -20%" in n["text"] for n in late_r["notes"])
    page = (out / "students" / "late" / "index.html").read_text()
    assert late_r["commits"]["01-sockets"]["sha"] in page and "-20%" in page
    # without late days, the late student is graded at the commit before the deadline
    due.write_text("[01]\ndue = 2026-10-01T23:59:00+02:00\n")
    batch(subs, out, "--deadlines", due, "--only", "late")
    assert result(out, "late")["scores"]["01-sockets"]["score"] == 4
