"""./lab batch: grade a whole class, each submission in a sandbox, in parallel.

    ./lab batch SUBMISSIONS_DIR --out OUT [--lessons 01,02] [--jobs N] [--only ID,..] [--force]
                [--shard I/N] [--deadlines FILE] [--roster CSV]

SUBMISSIONS_DIR holds one entry per student: a folder (a clone of the student
repository, or just its chapters/) or a .zip / .tar / .tar.gz / .tgz of one; the
student's id is the entry's name, whole, without the archive's extension.  Each
submission is graded by grader/sandbox.py: only its *.c and *.h files are taken (never
through a link), built and run as uids of their own, in a view of the machine without
the instructor's files, bounded by a cgroup; results come back through a pipe the
submission cannot reach and are checked against the tests the graders collect.

OUT (readable by its owner only) gets gradebook.csv, gradebook.html (grader/gradebook.py),
similarity.csv (grader/similarity.py) and students/<id>/{report.txt,result.json,index.html,src/}.
Re-running skips submissions whose content and course have not changed (resumable);
the gradebook is rebuilt from every student's result.json in sorted order
(deterministic), so --only, --shard and `./lab gradebook merge` drop nobody.  With
--deadlines, a git repository is graded per lesson at a commit (grader/deadlines.py).
"""
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader import deadlines, gradebook, host, lessons, results as records, sandbox, similarity
from grader.proc import FILE_SIZE_LIMIT

REPO = Path(__file__).resolve().parent.parent
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
SCHEMA = 3          # of result.json: 3 added tests[] (per-test outcomes)
# what a note may say about a program, from the fields of its summary (grader/proc.py)
MOST_PROGRAM_NOTES = 4


def student_id(entry):
    """The entry's name, dots kept, without an archive's extension: s.one/ and
    s.two.zip are `s.one` and `s.two`."""
    name = entry.name
    if entry.is_file():
        for ext in ARCHIVES:
            if name.endswith(ext):
                return name[:-len(ext)]
    return name


def fingerprint(path):
    """A digest of a submission's content (names and bytes), for resuming."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def course_fingerprint(lesson_names):
    """A digest of what grading depends on: the shared parts and the graded lessons."""
    h = hashlib.sha256()
    for part in sandbox.course_parts(lesson_names):
        p = REPO / part
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()
                                                and "__pycache__" not in x.parts)
        for f in files:
            h.update(str(f.relative_to(REPO)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def expected_tests(lesson_names):
    """{(lesson, test name): points} of every test the graders of these lessons collect."""
    from grader import instructor
    return {(c.lesson, c.name): c.points for c in instructor.collect_graded_cases(REPO)
            if c.lesson in lesson_names}


# -- notes: what a submission did, from fields ------------------------------------------

def program_notes(results):
    """Notable ends of the programs of failed tests, one per (program, kind)."""
    notes, seen = [], set()
    for r in sorted(results.values(), key=lambda r: (r.get("lesson", ""), r.get("index", 0))):
        if r.get("outcome") != "failed":
            continue
        for p in r.get("programs", []):
            who = f"{r['lesson'][:2]} {p['name']}"
            if p.get("flooded"):
                kind, words = "flood", f"{who} printed more than 1 MiB (an output loop?)"
            elif p["state"] == "signal" and p["signal"] == "SIGSYS":
                kind, words = "forbidden", (f"{who} was stopped for a system call graded programs may "
                                            "not make (reaching into another process: pidfd_getfd, "
                                            "process_vm_readv/writev; or the kernel's keyrings)")
            elif p["state"] == "signal" and p["signal"] == "SIGXFSZ":
                kind, words = "disk", f"{who} was stopped for writing a file larger than {FILE_SIZE_LIMIT >> 20} MiB"
            elif p["state"] == "signal":
                kind, words = "signal", f"{who} was killed by {p['signal']}"
            elif p["state"] == "exit" and p.get("code") == 3:
                kind, words = "todo", f"{who} stopped at an unfinished TODO"
            elif p["state"] == "running" and not p.get("printed"):
                kind, words = "silent", f"{who} printed nothing and never ended"
            else:
                continue
            if (who, kind) not in seen:
                seen.add((who, kind))
                notes.append({"kind": kind, "text": words})
    return notes[:MOST_PROGRAM_NOTES]


# what a note may hold of a submission's own text (a file name, an #include): printable
# characters only -- no newline to start a forged row, no escape sequence for a terminal
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def their_words(text, most=120):
    text = UNPRINTABLE.sub("?", str(text))
    return text if len(text) <= most else text[:most - 3] + "..."


def notes_of(outcome, lesson_names):
    notes = [{"kind": "refused", "text": f"not taken: {their_words(path)}: {why}"}
             for path, why in outcome.refused]
    for name in lesson_names:
        if not any(t.startswith(f"{name}/") for t in outcome.taken):
            notes.append({"kind": "missing", "text": f"no source files found for {name}"})
    for where, path in outcome.outside:
        notes.append({"kind": "outside", "text": f"{their_words(where)} includes {their_words(path)}, "
                                                 "outside the course"})
    notes += [{"kind": kind, "text": words} for kind, words in outcome.events]
    slow = sum(1 for r in outcome.results.values() if r.get("skip_kind") == "too-slow")
    if slow:
        notes.append({"kind": "too-slow", "text": f"{slow} timed tests skipped: the machine was too slow "
                                                  "right then (regrade this student)"})
    return notes + program_notes(outcome.results)


# -- one student ---------------------------------------------------------------------------

def first_line(text):
    """The line of a test's report worth a table cell: what happened, else the first."""
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    happened = next((l[len("happened"):] for l in lines if l.startswith("happened ")), None)
    return their_words(" ".join((happened or (lines[0] if lines else "")).split()))


def test_outcomes(results):
    """result.json's tests[]: one entry per graded test, in lesson then test order."""
    tests = []
    for nodeid, r in sorted(results.items(), key=lambda kv: (kv[1].get("lesson", ""), kv[1].get("index", 0), kv[0])):
        if "lesson" not in r:
            continue
        tests.append({"nodeid": nodeid, "title": their_words(r.get("title", ""), 200), "lesson": r["lesson"],
                      "index": r.get("index", 0), "outcome": r["outcome"],
                      "points": r["points"] if r["outcome"] == "passed" else 0, "max": r["points"],
                      "duration": round(r.get("duration", 0.0), 3),
                      "note": first_line(r.get("text")) if r["outcome"] != "passed" else "",
                      **({"skip_kind": r["skip_kind"]} if r.get("skip_kind") else {})})
    return tests


def carry_over(result, old, graded):
    """Lessons an earlier grading scored that this one did not grade are kept (with
    their tests), so grading lesson 02 into last week's lesson-01 gradebook drops nothing."""
    kept = sorted(set(old.get("scores", {})) - set(graded))
    if not kept:
        return result
    result["scores"] = {**{n: old["scores"][n] for n in kept}, **result["scores"]}
    result["scores"] = dict(sorted(result["scores"].items()))
    result["tests"] = sorted([t for t in old.get("tests", []) if t["lesson"] in kept] + result["tests"],
                             key=lambda t: (t["lesson"], t.get("index", 0), t["nodeid"]))
    result["total"] = sum(v["score"] for v in result["scores"].values())
    result["kept"] = {n: old.get("fingerprint", "") for n in kept}
    old_commits = {n: c for n, c in (old.get("commits") or {}).items() if n in kept}
    if old_commits:
        result["commits"] = {**old_commits, **(result.get("commits") or {})}
    return result


def keep_sources(dest, sources):
    """The files taken from the submission, as graded, for the similarity report."""
    shutil.rmtree(dest, ignore_errors=True)
    for rel, data in sorted(sources.items()):
        f = dest / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            continue
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)


def due_fingerprint(due):
    return hashlib.sha256(repr(sorted((n, d.due.isoformat(), d.late_days, d.penalty)
                                      for n, d in due.items())).encode()).hexdigest()


def sub_session(session, graded):
    """A session like `session` that grades only the lessons `graded`."""
    built = [c for c in session.chapters if c not in graded]
    expected = None if session.expected is None else \
        {k: v for k, v in session.expected.items() if k[0] in graded}
    sub = sandbox.Session(session.slot, graded, built=built, limits=session.limits, expected=expected)
    sub.fair_share = session.fair_share
    return sub


def merge_outcomes(parts):
    """One Outcome of several gradings of one submission (lessons at different commits)."""
    out = sandbox.Outcome(build_ok=all(o.build_ok for _, o in parts))
    for header, o in parts:
        out.build_log += o.build_log
        out.results.update(o.results)
        out.report += f"== {header} ==\n{o.report}\n"
        for name in ("events", "taken", "refused", "outside", "lessons"):
            getattr(out, name).extend(x for x in getattr(o, name) if x not in getattr(out, name))
        out.not_enforced.extend(x for x in o.not_enforced if x not in out.not_enforced)
        out.sources.update(o.sources)
        out.seconds = round(out.seconds + o.seconds, 1)
        if o.peak_mib is not None:
            out.peak_mib = max(out.peak_mib or 0, o.peak_mib)
    return out


def grade_at_deadlines(entry, session, due):
    """(Outcome, {lesson: commit record or None}, notes): each lesson graded at the commit
    its deadline picks (grader/deadlines.py), one grading per distinct commit."""
    root = host.real_root()
    uid = session.slot.builder if root else None
    work = Path(tempfile.mkdtemp(prefix="g-", dir=sandbox.state_dir("work", mode=0o711) if root else None))
    notes = []
    try:
        try:
            chosen = deadlines.plan(entry, due, session.lessons, work, uid)
        except (ValueError, OSError) as e:
            chosen = {n: None for n in session.lessons}
            notes.append({"kind": "repository", "text": f"its git repository could not be read ({their_words(e)}): "
                                                        "nothing graded"})
        groups = {}
        for name in session.lessons:
            groups.setdefault(chosen[name].sha if chosen[name] else None, []).append(name)
        parts = []
        for sha, group in groups.items():
            tar = work / f"{sha or 'nothing'}.tar"
            if sha:
                deadlines.export(str(work / "git"), sha, tar, uid)
            else:
                tarfile.open(tar, "w").close()
            parts.append((f"{', '.join(group)} at {sha or 'no commit'}", sub_session(session, group).grade(tar)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    commits, unreadable = {}, bool(notes)
    for name in session.lessons:
        c = chosen[name]
        if c is None:
            commits[name] = None
            if not unreadable:
                notes.append({"kind": "deadline", "text": f"{name}: no commit before the deadline"})
            continue
        commits[name] = {"sha": c.sha, "time": c.time.isoformat(), "days_late": c.days_late,
                         "penalty_percent": c.penalty}
        if c.days_late:
            notes.append({"kind": "late", "text": f"{name} graded at {c.sha[:12]} of {c.time.isoformat()}, "
                                                  f"{c.days_late} day{'s' if c.days_late > 1 else ''} late: "
                                                  f"-{c.penalty:g}%"})
    return merge_outcomes(parts), commits, notes


def grade_one(entry, student, out, session, course_fp, force=False, due=None):
    sdir = out / "students" / student
    result_file = sdir / "result.json"
    fp = fingerprint(entry) + course_fp + (due_fingerprint(due) if due is not None else "")
    old = None
    if result_file.exists():
        try:
            old = json.loads(result_file.read_text())
        except ValueError:
            old = None
        if old and not force and old.get("fingerprint") == fp and old.get("schema") == SCHEMA:
            return old
    commits, more_notes = None, []
    if due is not None and deadlines.is_repository(entry):
        outcome, commits, more_notes = grade_at_deadlines(entry, session, due)
    else:
        outcome = session.grade(entry)
    totals = records.lesson_totals(outcome.results)
    scores = {}
    for name in session.lessons:
        t = totals.get(name)
        scores[name] = {"score": t["score"], "max": t["max"]} if t else {"score": 0, "max": None}
        c = (commits or {}).get(name)
        if c and c["penalty_percent"]:
            scores[name]["before_penalty"] = scores[name]["score"]
            scores[name]["score"] = round(scores[name]["score"] * (100 - c["penalty_percent"]) / 100)
    result = {
        "schema": SCHEMA, "student": student, "fingerprint": fp, "compiled": outcome.build_ok,
        "files": outcome.taken, "scores": scores, "total": sum(v["score"] for v in scores.values()),
        "tests": test_outcomes(outcome.results),
        "notes": more_notes + notes_of(outcome, session.lessons), "seconds": outcome.seconds, "peak_memory_mib": outcome.peak_mib,
        "sandbox": {"uids": list(session.slot.uids), "not_enforced": outcome.not_enforced},
    }
    if commits is not None:
        result["commits"] = commits
    if old and isinstance(old.get("scores"), dict):
        carry_over(result, old, session.lessons)
    sdir.mkdir(parents=True, exist_ok=True)
    keep_sources(sdir / "src", outcome.sources)
    (sdir / "report.txt").write_text(f"socklab report for {student}\n\n{outcome.report}\n")
    records.write_json_atomic(result_file, result)
    return result


# -- the gradebook (grader/gradebook.py) ---------------------------------------------------

csv_cell, note_texts = gradebook.csv_cell, gradebook.note_texts


def ran_out(result):
    """The grading of this result ran out of time, ended without a result, or skipped
    timed tests as too slow -- and not because the submission hit its memory or process
    bound (that is its own doing), nor in a grading already done alone (that one is the
    grade: a re-run that resumes keeps it)."""
    kinds = {n["kind"] for n in result.get("notes", [])}
    return bool(kinds & {"time", "grader", "too-slow"}) and not kinds & {"memory", "processes", "regraded"}


def write_gradebook(out, lesson_names, results):
    gradebook.write(out, results)


def shard_of(student, count):
    """The shard (1..count) a student belongs to: a digest of the id alone, so it never
    depends on who else is in the class (adding students moves nobody)."""
    return int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big") % count + 1


def parse_shard(text):
    """'I/N' -> (I, N), 1 <= I <= N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {text}: expected I/N, such as 2/3")
    if not 1 <= i <= n:
        raise SystemExit(f"--shard {text}: I must be from 1 to N")
    return i, n


def batch(submissions, out, lesson_keys=None, jobs=None, memory_mib=None, only=None, force=False, shard=None,
          deadlines_file=None, roster=None):
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    chosen = [lessons.select(k)[0] for k in lesson_keys.split(",")] if lesson_keys else lessons.all_lessons()
    # chapters the chosen ones build on are built (with the student's code) but not graded
    needed = list(dict.fromkeys(u for l in chosen for u in l.uses()))
    names = [l.name for l in chosen]
    entries = sorted(p for p in submissions.iterdir() if not p.name.startswith("."))
    ids = {}
    for e in entries:
        ids.setdefault(student_id(e), []).append(e.name)
    clashes = {s: es for s, es in ids.items() if len(es) > 1}
    if clashes:
        raise SystemExit("two submissions would be the same student: " + "; ".join(
            f"{' and '.join(es)} are both '{s}'" for s, es in clashes.items()))
    if only:
        wanted = [s for s in only.split(",") if s]
        unknown = [s for s in wanted if s not in ids]
        if unknown:
            raise SystemExit(f"--only: no submission in {submissions} for " + ", ".join(repr(s) for s in unknown))
        entries = [e for e in entries if student_id(e) in wanted]
    if shard:
        i, n = parse_shard(shard)
        entries = [e for e in entries if shard_of(student_id(e), n) == i]
    due = deadlines.load(deadlines_file, names) if deadlines_file else None
    people = gradebook.read_roster(roster) if roster else None      # refused before anything is graded
    (out / "students").mkdir(parents=True, exist_ok=True)    # even for a shard that holds nobody
    os.chmod(out, 0o700)                    # reports quote the students' programs
    if people is not None:
        gradebook.set_roster(out, roster)
        strangers = sorted({student_id(e) for e in entries} - {p["id"] for p in people})
        if strangers:
            print(f"note: not in the roster: {', '.join(their_words(s) for s in strangers[:10])}"
                  + (f" and {len(strangers) - 10} more" if len(strangers) > 10 else ""))
    jobs = jobs or max(1, os.cpu_count() or 1)
    course_fp = course_fingerprint(list(dict.fromkeys([*needed, *names])))
    expected = expected_tests(names)
    limits = sandbox.Limits(**({"memory_mib": memory_mib} if memory_mib else {}))
    slots = sandbox.claim_slots(jobs)
    free = list(slots)
    lock = threading.Lock()
    said = []

    def task(entry, again=False):
        with lock:
            slot = free.pop()
        student = student_id(entry)
        session = sandbox.Session(slot, names, built=needed, limits=limits, expected=expected)
        # an equal share of the CPUs (a weight, not a cap): a submission that spins slows
        # only its own grading
        session.fair_share = jobs > 1 and not again
        try:
            r = grade_one(entry, student, out, session, course_fp, force or again, due)
            if again:
                r["notes"].insert(0, {"kind": "regraded", "text": "graded again on its own: the first "
                                      "grading ran out of time, ended without a result or "
                                      "met a machine too slow for a timed test"})
                records.write_json_atomic(out / "students" / student / "result.json", r)
        except Exception as e:  # one broken submission never stops the batch, nor leaves its row
            r = {"schema": SCHEMA, "student": student, "fingerprint": "", "compiled": False, "files": [],
                 "scores": {n: {"score": 0, "max": None} for n in names}, "total": 0, "tests": [],
                 "notes": [{"kind": "error", "text": f"could not be graded: {type(e).__name__}: {their_words(e)}"}],
                 "seconds": 0}
            try:
                (out / "students" / student).mkdir(parents=True, exist_ok=True)
                records.write_json_atomic(out / "students" / student / "result.json", r)
            except OSError:
                pass
        finally:
            with lock:
                free.append(slot)
        with lock:
            missing = r.get("sandbox", {}).get("not_enforced")
            if missing and not said:
                said.append(missing)
                print(f"note: not enforced on this machine: {'; '.join(missing)}")
            print(f"  {their_words(r['student'], 24):<24} {r['total']:>4} points  {note_texts(r)}", flush=True)
        return r

    if not host.real_root():
        print("note: not root, so submissions run as your own uid: a submission could forge its "
              "grade; run as root for grades that count")
    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            first = list(pool.map(task, entries))
        # Out of time, a grader that ended without a result, timed tests skipped as too
        # slow: on a busy machine that may be the machine, not the student. Once more,
        # alone, with every CPU; what then happens is the grade.
        again = [e for e, r in zip(entries, first) if ran_out(r)]
        if again and jobs > 1:
            print(f"grading {len(again)} submission(s) again, one at a time: they ran out of time "
                  "or met a machine too slow for a timed test")
            for entry in again:
                task(entry, again=True)
    finally:
        for slot in slots:
            slot.release()
    t1 = time.monotonic()
    similar = similarity.write(out)
    if similar is not None:
        print(f"similarity: {len(similar)} findings in {time.monotonic() - t1:.1f} s ({out / 'similarity.csv'})")
    results = gradebook.write(out)     # from every result.json there: nothing is dropped
    print(f"graded {len(entries)} submissions ({len(results)} in the gradebook) in {time.monotonic() - t0:.1f} s with {jobs} workers; "
          f"gradebook: {out / 'gradebook.csv'} and {out / 'gradebook.html'}")
    return 0
