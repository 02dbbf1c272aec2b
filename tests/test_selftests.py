"""Grader self-tests: programs that are wrong in instructive ways must fail the named
tests with a message that names the mistake; correct programs written differently
from the solution must pass every test.

A case is a directory tests/selftest/<lesson>/<case>/ with expect.json and either
  - <program>.c.patch: a unified diff against solutions/<lesson>/<program>.c -- the
    usual form for a wrong program, since the diff is exactly the mistake; or
  - <program>.c: a whole program (for a correct alternative written differently);
  - lib/<file>.c.patch: a diff against solutions/<lesson>/lib/<file>.c (a chapter library).
The lesson's other programs come from the solutions build.  expect.json:

    {"verdict": "fail",
     "mistake": "prints the port without ntohs",
     "failing": {"test_server_reports_the_port_the_kernel_chose": "(?i)ntohs"}}

    {"verdict": "pass", "why": "uses getaddrinfo and a different accept loop"}

"failing" maps test names to a regex the failure report must contain.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (REPO / "tests" / "selftest").glob("*/*") if (p / "expect.json").exists())
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-unused-parameter", "-g", "-O1",
          "-pthread"]


def apply_patch(patch, original, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["patch", "--quiet", "--output", str(out), str(original), str(patch)],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"{patch} does not apply to {original}:\n{res.stdout}{res.stderr}"
    return out


def build_case(case, solutions_build, dest):
    lesson = case.parent.name
    solution = REPO / "solutions" / lesson
    bindir = dest / "chapters" / lesson
    assert (solutions_build / "chapters" / lesson).is_dir(), f"the {lesson} solutions did not build"
    shutil.copytree(solutions_build / "chapters" / lesson, bindir)
    libs = sorted(str(p) for p in (REPO / "lib").glob("*.c"))
    # the lesson's own lib/ and those of the chapters it builds on (uses.txt)
    uses = REPO / "chapters" / lesson / "uses.txt"
    chapters = [lesson] + (uses.read_text().split() if uses.exists() else [])
    # a solution's lib/ holds only what differs from the skeleton's; the rest is given code
    chapter_lib = {(c, p.name): p for c in chapters for where in ("chapters", "solutions")
                   for p in (REPO / where / c / "lib").glob("*.c")}
    includes = ["-I", str(REPO / "lib")]
    for c in chapters:
        includes += ["-I", str(REPO / "solutions" / c / "lib"), "-I", str(REPO / "chapters" / c / "lib")]
    # lib/<file>.c.patch: a mistake in the chapter's library, which every program links,
    # so then all of the lesson's programs are rebuilt with it
    lib_patches = sorted(case.glob("lib/*.c.patch"))
    for patch in lib_patches:
        name = patch.name.removesuffix(".patch")
        original = chapter_lib[(lesson, name)]
        chapter_lib[(lesson, name)] = apply_patch(patch, original, dest / "lib" / name)
    sources = sorted(case.glob("*.c"))
    for patch in sorted(case.glob("*.c.patch")):
        name = patch.name.removesuffix(".patch")
        original = solution / name if (solution / name).exists() else REPO / "chapters" / lesson / name
        sources.append(apply_patch(patch, original, dest / name))
    if lib_patches:
        own = {p.name for p in sources}
        given = {p.name: p for p in (REPO / "chapters" / lesson).glob("*.c")}
        given.update({p.name: p for p in solution.glob("*.c")})
        sources += [p for name, p in sorted(given.items()) if name not in own]
    chapter_lib = sorted(str(p) for p in chapter_lib.values())
    links = [f"-l{name}" for c in chapters if (REPO / "chapters" / c / "links.txt").exists()
             for name in (REPO / "chapters" / c / "links.txt").read_text().split()]
    for src in sources:
        res = subprocess.run(["gcc", *CFLAGS, *includes, *libs, *chapter_lib, str(src),
                              "-o", str(bindir / src.stem), *links], capture_output=True, text=True)
        assert res.returncode == 0, f"{src} does not compile:\n{res.stderr}"


def node_ids(lesson, names):
    """pytest node ids of the named tests (`test_x` or `test_x[param]`) of a lesson."""
    ids = []
    for name in names:
        base = name.split("[", 1)[0]
        files = [f for f in sorted((REPO / "chapters" / lesson).glob("test_*.py"))
                 if re.search(rf"^def {re.escape(base)}\(", f.read_text(), re.M)]
        assert files, f"no test named {base} in {lesson}"
        ids.append(f"{files[0]}::{name}")
    return ids


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_grader_judges_case(case, solutions_build, tmp_path):
    """A correct alternative runs every test of its lesson; a wrong program only those
    its case names (each must fail, saying why), which keeps the suite quick."""
    expect = json.loads((case / "expect.json").read_text())
    build_case(case, solutions_build, tmp_path / "build")
    raw = tmp_path / "results.json"
    lesson = case.parent.name
    targets = ([REPO / "chapters" / lesson] if expect["verdict"] == "pass"
               else node_ids(lesson, expect["failing"]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:xdist", "-c", REPO / "pytest.ini",
         "--rootdir", REPO, "--build-dir", tmp_path / "build", "--raw-results", raw, *targets],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    results = {nodeid.split("::")[-1]: r for nodeid, r in json.loads(raw.read_text()).items()}
    assert results, f"the grader ran no test:\n{run.stdout}\n{run.stderr}"
    if expect["verdict"] == "pass":
        bad = {name: r["text"] for name, r in results.items() if r["outcome"] != "passed"}
        assert not bad, f"a correct alternative ({expect.get('why')}) failed:\n" + "\n".join(
            f"--- {n}\n{t}" for n, t in bad.items())
        return
    for name, pattern in expect["failing"].items():
        assert name in results, f"no test named {name} in {case.parent.name}"
        r = results[name]
        assert r["outcome"] == "failed", (
            f"{case.name} ({expect['mistake']}) should fail {name}, but it {r['outcome']}")
        assert re.search(pattern, r["text"], re.S), (
            f"{name} failed for {case.name}, but its report does not match {pattern!r}:\n{r['text']}")
    total = sum(r["points"] for r in results.values())
    score = sum(r["points"] for r in results.values() if r["outcome"] == "passed")
    assert score < total
