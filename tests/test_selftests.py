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
import subprocess
import sys
from pathlib import Path

import pytest

from grader import overlay
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (REPO / "tests" / "selftest").glob("*/*") if (p / "expect.json").exists())


def apply_patch(patch, original, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["patch", "--quiet", "--output", str(out), str(original), str(patch)],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"{patch} does not apply to {original}:\n{res.stdout}{res.stderr}"
    return out


def build_case(case, solutions_build, dest):
    """The case's programs over the solutions build (grader/overlay.py, as ./lab mutate)."""
    lesson = case.parent.name
    solution = REPO / "solutions" / lesson
    # lib/<file>.c.patch: a mistake in the chapter's library, which every program links,
    # so then all of the lesson's programs are rebuilt with it
    chapter_lib = overlay.chapter_lib_sources(lesson)
    lib = {}
    for patch in sorted(case.glob("lib/*.c.patch")):
        name = patch.name.removesuffix(".patch")
        lib[name] = apply_patch(patch, chapter_lib[(lesson, name)], dest / "lib" / name)
    sources = sorted(case.glob("*.c"))
    for patch in sorted(case.glob("*.c.patch")):
        name = patch.name.removesuffix(".patch")
        original = solution / name if (solution / name).exists() else REPO / "chapters" / lesson / name
        sources.append(apply_patch(patch, original, dest / name))
    ok, log = overlay.build(lesson, solutions_build, dest, programs=sources, lib=lib)
    assert ok, log


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
        cwd=REPO, capture_output=True, text=True, timeout=slowed(240))
    results = {nodeid.split("::")[-1]: r for nodeid, r in json.loads(raw.read_text()).items()}
    assert results, f"the grader ran no test:\n{run.stdout}\n{run.stderr}"
    slow = [name for name, r in results.items() if r.get("skip_kind") == "too-slow"]
    if expect["verdict"] == "pass":
        # a test skipped because of the machine (too busy, no namespaces) judged nothing
        bad = {name: r["text"] for name, r in results.items()
               if r["outcome"] == "failed" or r["outcome"] == "skipped" and not r.get("skip_kind")}
        assert not bad, f"a correct alternative ({expect.get('why')}) failed:\n" + "\n".join(
            f"--- {n}\n{t}" for n, t in bad.items())
        if slow:
            pytest.skip(f"the machine was too busy to judge {', '.join(slow)}; the rest passed")
        return
    for name, pattern in expect["failing"].items():
        assert name in results, f"no test named {name} in {case.parent.name}"
        r = results[name]
        if name in slow:
            pytest.skip(f"the machine was too busy to judge {name}: {r['text']}")
        assert r["outcome"] == "failed", (
            f"{case.name} ({expect['mistake']}) should fail {name}, but it {r['outcome']}")
        assert re.search(pattern, r["text"], re.S), (
            f"{name} failed for {case.name}, but its report does not match {pattern!r}:\n{r['text']}")
    total = sum(r["points"] for r in results.values())
    score = sum(r["points"] for r in results.values() if r["outcome"] == "passed")
    assert score < total
