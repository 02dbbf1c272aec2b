"""The grader as a PrairieLearn external grader (the image of `./lab image build`).

PrairieLearn runs the question's `entrypoint` in a container of the course's image with
the job in /grade: the student's files in /grade/student, the question's data in
/grade/data/data.json; it reads /grade/results/results.json (a folder the grader must
create) after the entrypoint exits 0, and only then (a non-zero exit, or more than 1 MB
of results, is "could not grade").  The question's info.json names the lesson:

    "externalGradingOptions": {"enabled": true, "image": "<your registry>/socklab-grader:TAG",
        "entrypoint": "/opt/socklab/tools/image/prairielearn 01", "timeout": 300}

(or `"environment": {"SOCKLAB_LESSON": "01"}`, or `params.socklab_lesson` in data.json).

The student's *.c and *.h files -- flat in /grade/student, as <pl-file-upload> or
<pl-file-editor> leave them, or in a chapters/NN-slug/ tree -- are graded by
`./lab grade --submission` (the sandbox of grader/sandbox.py), whose Gradescope
results.json becomes PrairieLearn's: `score` the fraction of the lesson's points (0..1),
`tests[]` with name, points, max_points, message (what happened) and output (the
report); `gradable: false` when nothing compiled and nothing scored (PrairieLearn then
neither scores the attempt nor counts it), with the compiler's errors as format_errors.
Format: PrairieLearn's docs/externalGrading.md, "Grading results".
"""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from grader import results as records

REPO = Path(__file__).resolve().parent.parent
RESULTS_LIMIT = 1_000_000           # PrairieLearn refuses results over 1 MB
OUTPUT_LIMIT = 32 << 10             # characters of one test's output
SOURCE_SUFFIXES = (".c", ".h")
FALLBACK = {"gradable": False, "score": 0.0,
            "message": "The grader did not finish; this attempt was not counted. "
                       "Please tell the course staff.", "tests": []}


def _cut(text, most):
    text = text or ""
    return text if len(text) <= most else text[:most - 40] + f"\n[... cut at {most} characters]"


def plain(md):
    """The teaching report as plain text: PrairieLearn shows a test's output in a <pre>,
    so the Markdown Gradescope gets (grader/feedback_md.py) loses its markup: a title in
    bold becomes a plain word, a fenced block is indented under its title, escapes are
    undone."""
    lines, fenced = [], False
    for line in (md or "").splitlines():
        if re.fullmatch(r"`{3,}(text)?", line.strip()):
            fenced = not fenced
            if fenced and lines and not lines[-1]:
                lines.pop()                 # the block follows its title directly
            continue
        if fenced:
            lines.append(("    " + line).rstrip())
            continue
        line = re.sub(r"^\*\*([^*]+)\*\*", lambda m: f"{m.group(1):<9}", line)
        lines.append(re.sub(r"\\([\\`*_{}\[\]<>#+!|~])", r"\1", line).rstrip())
    return "\n".join(lines).strip() + "\n" if lines else ""


def first_line(text):
    """What happened, in one line: the report's 'happened' line (or the first line of
    its block), else the report's first line."""
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    for i, l in enumerate(lines):
        if l.lower().startswith("happened"):
            rest = " ".join(l[len("happened"):].split())
            return rest or (lines[i + 1] if i + 1 < len(lines) else "")
    return lines[0] if lines else ""


NOT_RUN = "not run on this grading machine"     # grader/results.py's words for a skipped test


def from_gradescope(gs):
    """PrairieLearn's results of one Gradescope results.json of `./lab grade`.  A test
    the grading machine could not run (PrairieLearn's containers give no network
    namespace: the packet-capture and firewall tests) is listed with 0 of 0 points and
    the reason: the score is of the points this machine could award."""
    tests, compile_entry, hidden, not_run = [], None, 0, 0
    for t in gs.get("tests", []):
        if t.get("name") == "compile":
            compile_entry = t
            continue
        entry = {"name": t.get("name", "?"), "points": t.get("score", 0), "max_points": t.get("max_score", 0)}
        if str(t.get("output", "")).startswith(NOT_RUN):
            not_run += 1
            entry.update(points=0, max_points=0, message=t["output"], output=t["output"])
        elif t.get("visibility", "visible") != "visible":
            hidden += 1
            entry.update(name=f"hidden test {hidden}",
                         message="passed" if t.get("status") == "passed" else "failed (shown after the due date)",
                         output="")
        else:
            text = plain(t["output"]) if t.get("output_format") == "md" else t.get("output", "")
            entry["message"] = "passed" if t.get("status") == "passed" else first_line(text)
            entry["output"] = _cut(text, OUTPUT_LIMIT)
        tests.append(entry)
    points = sum(t["points"] for t in tests)
    most = sum(t["max_points"] for t in tests)
    built = compile_entry is None or compile_entry.get("status") == "passed"
    summary = f"{points} of {most} points" + (
        f"; {not_run} test{'s' if not_run > 1 else ''} could not run on this grading machine and "
        "count for nothing" if not_run else "")
    out = {"gradable": True, "score": round(points / most, 4) if most else 0.0,
           "message": "\n".join(x for x in (summary, gs.get("output", "")) if x),
           "output": summary, "tests": tests}
    if not built:
        errors = _cut(compile_entry.get("output", ""), OUTPUT_LIMIT)
        if points == 0:
            out = {"gradable": False, "score": 0.0, "format_errors": [errors or "the programs do not compile"],
                   "message": "Your programs do not compile: this attempt was not counted.", "tests": tests}
        else:
            tests.insert(0, {"name": "compile", "points": 0, "max_points": 0,
                             "message": "some programs do not compile", "output": errors})
    return fit(out)


def fit(result):
    """Within PrairieLearn's 1 MB: outputs cut shorter and shorter, then dropped."""
    for most in (OUTPUT_LIMIT, 8 << 10, 2 << 10, 0):
        if len(json.dumps(result).encode()) <= RESULTS_LIMIT:
            break
        for t in result.get("tests", []):
            t["output"] = _cut(t.get("output", ""), most) if most else ""
    return result


def choose_lesson(argv, env, data):
    """The lesson this question grades: the entrypoint's argument, SOCKLAB_LESSON, or
    data.json's params.socklab_lesson."""
    if argv:
        return argv[0]
    if env.get("SOCKLAB_LESSON"):
        return env["SOCKLAB_LESSON"]
    lesson = ((data or {}).get("params") or {}).get("socklab_lesson")
    if lesson:
        return str(lesson)
    raise SystemExit("no lesson: give it as the entrypoint's argument (prairielearn 01), "
                     "as SOCKLAB_LESSON, or as params.socklab_lesson")


def stage(student, lesson_name, dest):
    """A submission tree `./lab grade --submission` reads: the student's folder as it is
    when it holds a chapters/ tree or the lesson's folder, else its flat *.c/*.h files
    (regular files only, never through a link) under chapters/<lesson>/."""
    student = Path(student)
    if (student / "chapters").is_dir() or (student / lesson_name).is_dir():
        return student
    lesson_dir = Path(dest) / "chapters" / lesson_name
    lesson_dir.mkdir(parents=True)
    for entry in sorted(os.scandir(student), key=lambda e: e.name) if student.is_dir() else []:
        if not entry.name.endswith(SOURCE_SUFFIXES) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                (lesson_dir / entry.name).write_bytes(f.read(1 << 20))
    return Path(dest)


def main(argv=None, grade_root=None, lab=None):
    """The entrypoint: always exits 0 with a results.json (a crash leaves the fallback,
    which PrairieLearn shows as not gradable, so no attempt is lost to it)."""
    argv = sys.argv[1:] if argv is None else argv
    root = Path(grade_root or os.environ.get("SOCKLAB_GRADE_ROOT", "/grade"))
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    records.write_json_atomic(results, FALLBACK)
    try:
        data = json.loads((root / "data" / "data.json").read_text())
    except (OSError, ValueError):
        data = None
    from grader import lessons
    name = lessons.select(choose_lesson(argv, os.environ, data))[0].name
    with tempfile.TemporaryDirectory(prefix="socklab-pl-") as tmp:
        sub = stage(root / "student", name, Path(tmp) / "submission")
        gs_file = Path(tmp) / "gradescope.json"
        cmd = [*(lab or [str(REPO / "lab")]), "grade", "--submission", str(sub), "--json", str(gs_file), name]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL)
        try:
            gs = json.loads(gs_file.read_text())
        except (OSError, ValueError):
            print(f"prairielearn: ./lab grade left no results (exit {proc.returncode})", file=sys.stderr)
            return 0
    out = from_gradescope(gs)
    records.write_json_atomic(results, out)
    print(f"prairielearn: {name}: score {out['score']}, gradable {str(out['gradable']).lower()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
