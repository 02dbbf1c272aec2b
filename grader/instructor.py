"""Instructor tools: a student release of the course, and a Gradescope autograder bundle.

    ./lab release OUT_DIR        a student repository: no solutions/, no hidden tests,
                                 no maintainer self-tests; a README for students; a GitHub
                                 Classroom autograding workflow (one step per graded case)
    ./lab gradescope [--lesson NN] OUT.zip
                                 setup.sh + run_autograder at the zip's root; grades the
                                 submission's C files with the bundle's own graders (one
                                 lesson: one Gradescope assignment per lesson)
"""
import ast
import json
import re
import shlex
import shutil
import string
import subprocess
import zipfile
from collections import namedtuple
from pathlib import Path

from grader import collect, lessons

REPO = Path(__file__).resolve().parent.parent

# Maintainer-only material a student repository does not carry: the solutions, and what
# cannot work without them (self-tests, batch and release tests, the benchmark).
NOT_RELEASED = ("solutions/", "tests/selftest/", "tests/test_selftests.py", "tests/robustness/",
                "tests/test_robustness.py", "tests/test_fallback.py", "tests/test_batch.py",
                "tests/test_instructor.py", "tests/test_batch_scale.py", "tests/test_similarity.py",
                "bench/", "tests/test_bench.py", ".ci/",
                "grader/templates/", "tests/test_report.py", "tools/report-screenshots.py",
                "tools/capture-overhead.py")
STUDENT_README = REPO / "grader" / "templates" / "student-README.md"

# The top-level entries of a release, as its README describes them (only those present).
RELEASE_LAYOUT = (
    ("lab", "the one command: installs what is missing, builds, grades (`./lab help`)"),
    ("chapters/", "one lesson per directory: `README.md`, skeleton `*.c` (your work), "
                  "`test_*.py` grader, `hints.md`"),
    ("lib/", "`common.h`: the helpers every program links with (errors, readn/writen, "
             "frames, lines, sockets)"),
    ("grader/", "the graders' machinery (a pytest plugin) and the `./lab` command line"),
    ("CMakeLists.txt", "builds `lib/` and every lesson (`./lab` runs it for you)"),
    ("cmake/", "`flags.txt`: the compiler flags, defined once for every build"),
    ("docs/", "the student guide (reading a failure, tools to see sockets), architecture"),
    ("tools/", "`setup.sh` and the Debian package lists it installs"),
    ("tests/", "the grader's own tests (lib unit tests, command-line and docs checks)"),
    ("Vagrantfile", "a Linux VM for other machines: `vagrant up && vagrant ssh`"),
    ("mkdocs.yml", "the docs site: `./lab docs`"),
    ("pytest.ini", "pytest settings for the graders"),
    (".github/workflows/classroom.yml", "GitHub Classroom autograding: one step per graded test"),
)

# One test case as pytest collects it (a parametrized test gives one per parameter).
# `name` is pytest's item name (`test_x[param]`), `title` the name results.json gives it.
GradedCase = namedtuple("GradedCase", "lesson name title points")


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = [f for f in out.decode().split("\0") if f]
    return [f for f in files if (REPO / f).exists()]


# -- what a release leaves out of the test files --------------------------------------

def _is_hidden(node, source=None):
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "hidden":
            return True
    return False


def _needs_solutions(node, source):
    """A project test that uses the reference solutions (--solutions, solutions_build,
    solutions/): it cannot pass in a student repository."""
    return re.search(r"\bsolutions\b", ast.get_source_segment(source, node)) is not None


def strip_tests(source, drop):
    """Remove the test functions for which drop(node, source) is true; (source, how many)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and drop(node, source):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
            spans.append((start, node.end_lineno))
    for start, end in reversed(spans):
        while end < len(lines) and not lines[end].strip():
            end += 1  # and the blank lines after it: the next function keeps its own
        del lines[start:end]
    text = "".join(lines)
    return (text.rstrip("\n") + "\n" if spans and text.strip() else text), len(spans)


def strip_hidden_tests(source):
    """Remove test functions decorated with @hidden (or @pytest.mark.hidden)."""
    return strip_tests(source, _is_hidden)


def _has_tests(source):
    return any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
               for n in ast.parse(source).body)


def released_text(rel, text):
    """(the text a release carries for this file, None to leave it out; hidden tests dropped)."""
    name = Path(rel).name
    if not (name.startswith("test_") and name.endswith(".py")):
        return text, 0
    if rel.startswith("chapters/"):
        return strip_hidden_tests(text)
    if rel.startswith("tests/"):
        text, _ = strip_tests(text, _needs_solutions)
        return (text if _has_tests(text) else None), 0
    return text, 0


def copy_release_files(out):
    """Copy every tracked file a student gets; returns how many hidden tests were left out."""
    hidden_total = 0
    for rel in tracked_files():
        if rel.startswith(NOT_RELEASED) or rel == "README.md":
            continue
        src, dest = REPO / rel, out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not rel.endswith(".py"):
            shutil.copy2(src, dest)
            continue
        text, hidden = released_text(rel, src.read_text())
        hidden_total += hidden
        if text is not None:
            dest.write_text(text)
            shutil.copymode(src, dest)
    return hidden_total


# -- the graded cases, as pytest collects them ----------------------------------------

def collect_graded_cases(root):
    """Every graded case under root/chapters, collected with root's own settings."""
    return [GradedCase(c.lesson, c.name, c.title, c.points)
            for c in collect.cases([Path(root) / "chapters"], root=root)]


# -- the Classroom workflow -------------------------------------------------------------

def _yaml_str(text):
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def step_command(case):
    """The shell command of one Classroom step: exactly that case (--only; -k would match
    every name containing it), and --fail-on-skip because the command grader scores on
    exit status alone and pytest exits 0 when the one test it ran was skipped."""
    number = case.lesson.split("-", 1)[0]
    return f"./lab check {number} --only {shlex.quote(case.name)} --fail-on-skip"


def classroom_step(step_id, case):
    return f"""      - name: {_yaml_str(case.title)}
        id: {step_id}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: {_yaml_str(case.title)}
          setup-command: ""
          command: {_yaml_str(step_command(case))}
          timeout: 2
          max-score: {case.points}"""


def classroom_workflow(cases):
    """A GitHub Classroom autograding workflow: one step per graded case, its points as
    max-score, so the total is what `./lab grade` gives full marks."""
    ids = [f"t{i:03d}" for i in range(len(cases))]
    steps = [classroom_step(i, c) for i, c in zip(ids, cases)]
    env = "\n".join(f"          {i.upper()}_RESULTS: ${{{{ steps.{i}.outputs.result }}}}" for i in ids)
    return f"""# Generated by ./lab release: one autograding step per graded test case.
name: Autograding Tests
on: [push, repository_dispatch]
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Install packages
        run: sudo bash tools/setup.sh
      # Ubuntu 24.04 forbids unprivileged user namespaces; the graders need them to give
      # each test its own network namespace (without, those tests skip and earn nothing)
      - name: Allow user namespaces
        run: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 || true
{chr(10).join(steps)}
      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env}
        with:
          runners: {",".join(ids)}
"""


# -- the student README -----------------------------------------------------------------

def released_lessons(out):
    return [lessons.Lesson(p) for p in sorted((out / "chapters").iterdir())
            if p.is_dir() and any(p.glob("test_*.py"))]


def _lesson_lines(lesson_list, cases):
    lines = []
    for lesson in lesson_list:
        pts = sum(c.points for c in cases if c.lesson == lesson.name)
        lines.append(f"- **{lesson.number}** {lesson.title} — "
                     f"[`chapters/{lesson.name}/`](chapters/{lesson.name}/README.md), {pts} points")
    return "\n".join(lines)


def _layout_table(out):
    rows = [f"| `{path}` | {what} |" for path, what in RELEASE_LAYOUT if (out / path).exists()]
    return "\n".join(["| path | what |", "|---|---|"] + rows)


def student_readme(out, cases):
    """The release's README.md, from the template and what the release holds."""
    lesson_list = released_lessons(out)
    first = lesson_list[0]
    return string.Template(STUDENT_README.read_text()).substitute(
        first=first.number, first_readme=f"chapters/{first.name}/README.md",
        lessons=_lesson_lines(lesson_list, cases), layout=_layout_table(out),
        steps=len(cases), total_points=sum(c.points for c in cases))


def untracked_course_files(root=REPO):
    """Files of the course (lessons, their solutions, lib/) git does not track: a release
    takes tracked files only, so they would be silently missing from it."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "chapters",
                          "lib", "grader", "tools"], cwd=root, capture_output=True, text=True).stdout
    return [line[3:] for line in out.splitlines() if line.startswith("??")
            and "__pycache__" not in line]


def release(out_dir):
    out = Path(out_dir).resolve()
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty")
    untracked = untracked_course_files()
    if untracked:
        raise SystemExit("these course files are not committed, and a release takes only what git "
                         "tracks; commit (or remove) them first:\n  " + "\n  ".join(untracked))
    hidden_total = copy_release_files(out)
    cases = collect_graded_cases(out)
    wf = out / ".github" / "workflows" / "classroom.yml"
    wf.parent.mkdir(parents=True, exist_ok=True)
    wf.write_text(classroom_workflow(cases))
    (out / "README.md").write_text(student_readme(out, cases))
    print(f"released to {out}: {len(released_lessons(out))} lessons, {len(cases)} graded "
          f"test cases ({sum(c.points for c in cases)} points), {hidden_total} hidden tests "
          "left out")
    return 0


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
cp -r /autograder/source/socklab /autograder/socklab
bash /autograder/socklab/tools/setup.sh
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this, as root, for every submission.  ./lab grade --submission takes
# only the submission's C sources and grades them in a sandbox (grader/sandbox.py): they
# build and run as uids of their own, cannot see the graders, and only the grader writes
# the results.
set -uo pipefail
root=${AUTOGRADER_ROOT:-/autograder}
mkdir -p "$root/results"
# the bundle's setup.sh copies the course there; the image (./lab image) has it elsewhere
cd "${SOCKLAB_COURSE:-$root/socklab}" && ./lab grade --submission "$root/submission" --json "$root/results/results.json"
"""


def run_autograder(lesson=None):
    """RUN_AUTOGRADER, grading one lesson only when `lesson` (NN-slug) is given."""
    if lesson is None:
        return RUN_AUTOGRADER
    return RUN_AUTOGRADER.replace("./lab grade --submission", f"./lab grade {shlex.quote(lesson)} --submission")


def gradescope(zip_path, lesson=None):
    """The bundle; with `lesson` ('01', 'sockets'...), for an assignment of that lesson alone."""
    if lesson is not None:
        lesson = lessons.select(lesson)[0].name     # an unknown one: the CLI says which exist
    zip_path = Path(zip_path).resolve()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", run_autograder(lesson))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            z.writestr(info, text)
        for rel in tracked_files():
            if rel.startswith(("tests/", ".ci/", "solutions/")):
                continue
            info = zipfile.ZipInfo.from_file(REPO / rel, f"socklab/{rel}")
            z.writestr(info, (REPO / rel).read_bytes())
    what = f"lesson {lesson}'s assignment" if lesson else "the course's assignment"
    print(f"wrote {zip_path}: upload it as {what}'s Gradescope autograder (Ubuntu base image)")
    return 0


def results_valid(data):
    """Minimal structural check of a Gradescope results.json."""
    if not isinstance(data.get("tests"), list):
        return False
    for t in data["tests"]:
        if not {"name", "score", "max_score", "status"} <= set(t):
            return False
    return isinstance(data.get("score", 0), (int, float))


def load_json(path):
    return json.loads(Path(path).read_text())
