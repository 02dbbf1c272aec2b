"""./lab batch: grade a whole class, each submission in a sandbox, in parallel.

    ./lab batch SUBMISSIONS_DIR --out OUT [--lessons 01,02] [--jobs N]

SUBMISSIONS_DIR holds one entry per student: a folder (a clone of the student
repository, or just its chapters/) or a .zip / .tar / .tar.gz / .tgz of one; the
student's id is the entry's name, whole, without the archive's extension.  Each
submission is graded by grader/sandbox.py: only its *.c and *.h files are taken (never
through a link), built and run as uids of their own, in a view of the machine without
the instructor's files, bounded by a cgroup; results come back through a pipe the
submission cannot reach and are checked against the tests the graders collect.

OUT (readable by its owner only) gets gradebook.csv, gradebook.html and
students/<id>/{report.txt,result.json}.  Re-running skips submissions whose content
and course have not changed (resumable); the gradebook is rebuilt from every
student's result.json in sorted order (deterministic).
"""
import csv
import hashlib
import html
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader import host, lessons, results as records, sandbox
from grader.proc import FILE_SIZE_LIMIT

REPO = Path(__file__).resolve().parent.parent
ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
SCHEMA = 2          # of result.json
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

def grade_one(entry, student, out, session, course_fp):
    sdir = out / "students" / student
    result_file = sdir / "result.json"
    fp = fingerprint(entry) + course_fp
    if result_file.exists():
        old = json.loads(result_file.read_text())
        if old.get("fingerprint") == fp and old.get("schema") == SCHEMA:
            return old
    outcome = session.grade(entry)
    totals = records.lesson_totals(outcome.results)
    scores = {}
    for name in session.lessons:
        t = totals.get(name)
        scores[name] = {"score": t["score"], "max": t["max"]} if t else {"score": 0, "max": None}
    result = {
        "schema": SCHEMA, "student": student, "fingerprint": fp, "compiled": outcome.build_ok,
        "files": outcome.taken, "scores": scores, "total": sum(v["score"] for v in scores.values()),
        "notes": notes_of(outcome, session.lessons), "seconds": outcome.seconds, "peak_memory_mib": outcome.peak_mib,
        "sandbox": {"uids": list(session.slot.uids), "not_enforced": outcome.not_enforced},
    }
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "report.txt").write_text(f"socklab report for {student}\n\n{outcome.report}\n")
    records.write_json_atomic(result_file, result)
    return result


# -- the gradebook --------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell no spreadsheet takes for a formula: text starting with = + - @ tab or CR
    gets a leading apostrophe (OWASP's advice for CSV injection)."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def note_texts(result):
    return "; ".join(n["text"] for n in result["notes"])


def write_gradebook(out, lesson_names, results):
    results = sorted(results, key=lambda r: r["student"])
    maxima = {}
    for r in results:
        for n, v in r["scores"].items():
            if v["max"]:
                maxima[n] = max(maxima.get(n, 0), v["max"])
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *lesson_names, "total", "max", "notes"])
        for r in results:
            w.writerow([csv_cell(c) for c in (r["student"], *[r["scores"][n]["score"] for n in lesson_names],
                                              r["total"], sum(maxima.values()), note_texts(r))])
    rows = []
    for r in results:
        cells = "".join(
            f"<td class={'full' if r['scores'][n]['score'] == maxima.get(n) else 'part'}>"
            f"{r['scores'][n]['score']}</td>" for n in lesson_names)
        rows.append(f"<tr><td><a href='students/{html.escape(r['student'])}/report.txt'>"
                    f"{html.escape(r['student'])}</a></td>{cells}<td><b>{r['total']}</b></td>"
                    f"<td>{html.escape(note_texts(r))}</td></tr>")
    head = "".join(f"<th>{html.escape(n)}<br><small>/{maxima.get(n, '?')}</small></th>" for n in lesson_names)
    (out / "gradebook.html").write_text(f"""<!doctype html>
<meta charset="utf-8"><title>socklab gradebook</title>
<style>body{{font-family:sans-serif}} td,th{{padding:4px 8px;border-bottom:1px solid #ddd}}
.full{{background:#dfd}} .part{{background:#fee}}</style>
<h1>socklab gradebook</h1><p>{len(results)} submissions, maximum {sum(maxima.values())} points.</p>
<table><tr><th>student</th>{head}<th>total</th><th>notes</th></tr>
{chr(10).join(rows)}
</table>
""")


def batch(submissions, out, lesson_keys=None, jobs=None, memory_mib=None):
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
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)                    # reports quote the students' programs
    jobs = jobs or max(1, os.cpu_count() or 1)
    course_fp = course_fingerprint(list(dict.fromkeys([*needed, *names])))
    expected = expected_tests(names)
    limits = sandbox.Limits(**({"memory_mib": memory_mib} if memory_mib else {}))
    slots = sandbox.claim_slots(jobs)
    free = list(slots)
    lock = threading.Lock()
    said = []

    def task(entry):
        with lock:
            slot = free.pop()
        student = student_id(entry)
        session = sandbox.Session(slot, names, built=needed, limits=limits, expected=expected)
        # a fair share of the CPUs: a submission that spins slows only its own grading
        session.cpus = max(1.0, (os.cpu_count() or 1) / jobs) if jobs > 1 else None
        try:
            r = grade_one(entry, student, out, session, course_fp)
        except Exception as e:  # one broken submission never stops the batch
            r = {"schema": SCHEMA, "student": student, "fingerprint": "", "compiled": False, "files": [],
                 "scores": {n: {"score": 0, "max": None} for n in names}, "total": 0,
                 "notes": [{"kind": "error", "text": f"could not be graded: {type(e).__name__}: {e}"}],
                 "seconds": 0}
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
            list(pool.map(task, entries))
    finally:
        for slot in slots:
            slot.release()
    results = [json.loads(p.read_text()) for p in sorted((out / "students").glob("*/result.json"))]
    write_gradebook(out, names, [r for r in results if r.get("schema") == SCHEMA])
    print(f"graded {len(entries)} submissions in {time.monotonic() - t0:.1f} s with {jobs} workers; "
          f"gradebook: {out / 'gradebook.csv'} and {out / 'gradebook.html'}")
    return 0
