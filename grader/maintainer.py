"""The maintainer's and the instructor's commands: ./lab verify (every solution passes,
every skeleton fails fast), ./lab grade (Gradescope's results.json, sandboxed as root),
./lab test (the project's own tests)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from grader import calibrate, host, isolation, lessons, requirements, results as records
from grader.build import BUILD, JOBS, REPO, SOLUTIONS, STUDENT, build, compiler_errors
from grader.term import DIM, GREEN, RED, RESET, YELLOW
from grader.testrun import isolation_prefix, run_filtered, run_pytest

# Package lists (tools/packages-NAME.txt) of the project's own tests: `./lab test`
# installs them once, before its tests start in parallel (two apt-gets at once fail).
TEST_PACKAGE_LISTS = ("bench", "docs", "vm", "mutate", "report", "k8s")
SKELETON_SHARE = 0.1      # of a lesson's points a skeleton may earn
# The project's tests wait on sockets and timers more than they compute: with one pytest
# worker per core the cores were idle 38 % of the time (self-tests of lessons 08-09 on 2
# cores); one worker more took them from 54 s to 42 s, two more no further.
TEST_WORKERS = min(8, (os.cpu_count() or 1) + 1)


def verify(lesson=None, skeleton_test_limit=5.0):
    """Every solution passes with full points; every skeleton fails, quickly."""
    lesson_list = lessons.select(lesson) if lesson else lessons.all_lessons()
    paths = [l.path for l in lesson_list]
    out = BUILD / "verify"
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for variant in (SOLUTIONS, STUDENT):
        ok, log = build(variant, lesson_list)     # only the lessons being verified
        if not ok:
            problems.append(f"the {variant.name} build failed:\n{compiler_errors(log)}")
    if problems:
        print("\n".join(problems))
        return 1
    t0 = time.monotonic()
    # the skeletons' time limit was set with two workers; the solutions have no such limit
    sol = run_pytest(paths, ["--solutions"], workers=TEST_WORKERS, raw=out / "solutions.json", capture=True,
                     quiet=True)
    t_sol = time.monotonic() - t0
    t0 = time.monotonic()
    run_pytest(paths, [], workers=2, raw=out / "skeletons.json", capture=True, quiet=True)
    t_skel = time.monotonic() - t0
    sol_totals = lessons.totals_from_results(out / "solutions.json")
    skel_totals = lessons.totals_from_results(out / "skeletons.json")
    # the skeleton time limit was set on a quiet 2-core machine
    factor = calibrate.slowness()
    skeleton_limit = skeleton_test_limit * factor
    too_slow = []

    unchecked = []
    print(f"{'lesson':<26} {'solution':>10} {'skeleton':>10} {'skeleton time':>14}")
    for l in lesson_list:
        s = sol_totals.get(l.name)
        k = skel_totals.get(l.name)
        verdicts = []
        unmet = requirements.unmet_reason(l.path)
        if unmet:
            # graded nowhere on this machine: say so loudly, but it is not the lesson's fault
            print(f"{l.name:<26} {'-':>10} {'-':>10} {'-':>14}  {YELLOW}not checked here: {unmet}{RESET}")
            unchecked.append(l.name)
            continue
        slow_skips = [t["title"] for t in (s or {}).get("tests", []) if t.get("skip_kind") == "too-slow"]
        too_slow += [f"{l.name} › {title}" for title in slow_skips]
        if not s or s["max"] == 0:
            verdicts.append("no graded tests")
        else:
            if s["score"] != s["max"] or s["failed"] or s["skipped"] > len(slow_skips):
                verdicts.append("solution does not get full points")
            if not k or k["score"] >= k["max"]:
                verdicts.append("skeleton passes")
            elif k["score"] > SKELETON_SHARE * k["max"]:
                verdicts.append(f"skeleton earns {k['score']} of {k['max']} points (its given code, "
                                f"argument checks say, may earn {SKELETON_SHARE:.0%} at most)")
            elif k["slowest"] > skeleton_limit:
                verdicts.append(f"a skeleton test took {k['slowest']:.1f} s (limit {skeleton_limit:.1f} s)")
        mark = f"{GREEN}ok{RESET}" if not verdicts else f"{RED}{'; '.join(verdicts)}{RESET}"
        sol_txt = f"{s['score']}/{s['max']}" if s else "-"
        skel_txt = f"{k['score']}/{k['max']}" if k else "-"
        skel_time = f"{k['duration']:.1f} s" if k else "-"
        print(f"{l.name:<26} {sol_txt:>10} {skel_txt:>10} {skel_time:>14}  {mark}")
        problems += [f"{l.name}: {v}" for v in verdicts]
    print(f"\nsolutions graded in {t_sol:.1f} s ({TEST_WORKERS} workers), "
          f"skeletons in {t_skel:.1f} s (2 workers)")
    if factor >= 1.5:       # below that, the bounds are what a quiet machine gets, give or take
        print(f"{DIM}this machine is slow right now ({calibrate.describe(factor)}): time limits "
              f"stretched {factor:.1f}x{RESET}")
    if too_slow:
        print(f"{YELLOW}skipped as this machine is too slow for them (not a failure; run verify on a "
              f"faster machine before a release):{RESET}\n  " + "\n  ".join(too_slow))
    if problems:
        print(f"{RED}verify failed:{RESET}\n  " + "\n  ".join(problems))
        if sol.returncode not in (0, 1):
            print(sol.stdout[-3000:] + sol.stderr[-3000:])
        else:
            failing = [l for l in sol.stdout.splitlines()]
            print("\n".join(failing[-80:]))
        return 1
    if unchecked:
        print(f"{YELLOW}verify: {len(lesson_list) - len(unchecked)} lessons ok; not checked on this "
              f"machine: {', '.join(unchecked)} (see above){RESET}")
        return 0
    print(f"{GREEN}verify: {len(lesson_list)} lessons ok{RESET}")
    return 0


def grade(json_path, junit=None, solutions=False, submission=None, lesson=None):
    """Grade the student build of every lesson into a Gradescope results.json: as root in
    a sandbox (grader/sandbox.py), since then the grade counts; otherwise unsandboxed,
    for a student's own look."""
    lesson_list = lessons.select(lesson) if lesson else lessons.all_lessons()
    if host.real_root() and not solutions:
        return grade_sandboxed(json_path, junit, submission, lesson_list)
    if submission:
        print(f"{RED}--submission is graded in a sandbox, which needs root{RESET}")
        return 2
    why = "the reference solutions" if solutions else "not root"
    print(f"{DIM}note: {why}, so not sandboxed: the programs run as you{RESET}")
    ok, log = build(SOLUTIONS if solutions else STUDENT, lesson_list)
    results = Path(json_path).resolve()
    results.parent.mkdir(parents=True, exist_ok=True)
    # a fallback first, so a crash below still leaves the student some feedback
    records.write_json_atomic(results, {
        "score": 0, "output": "The grader did not finish; please report this to the staff.",
        "tests": []})
    extra = ["--solutions"] if solutions else []
    if junit:
        extra.append(f"--junitxml={Path(junit).resolve()}")
    rc = run_pytest([l.path for l in lesson_list], extra, workers=2, results=results,
                    quiet=True).returncode
    data = json.loads(results.read_text())
    data["tests"].insert(0, {
        "name": "compile", "score": 0, "max_score": 0,
        "status": "passed" if ok else "failed",
        "output": "all programs compiled" if ok else compiler_errors(log),
        "output_format": "text", "visibility": "visible", "tags": ["build"]})
    records.write_json_atomic(results, data)
    print(f"wrote {results}: {data['score']} points")
    return 0 if rc in (0, 1) else rc


def grade_sandboxed(json_path, junit, submission, lesson_list):
    from grader import batch, sandbox
    results = Path(json_path).resolve()
    results.parent.mkdir(parents=True, exist_ok=True)
    fallback = {"score": 0, "output": "The grader did not finish; please report this to the staff.",
                "tests": []}
    records.write_json_atomic(results, fallback)
    names = [l.name for l in lesson_list]
    built = list(dict.fromkeys(u for l in lesson_list for u in l.uses()))
    sub = Path(submission).resolve() if submission else REPO
    slot = sandbox.claim_slots(1)[0]
    try:
        t0 = time.monotonic()
        session = sandbox.Session(slot, names, built=built, expected=batch.expected_tests(names))
        outcome = session.grade(sub)
    finally:
        slot.release()
    data = records.gradescope_results(outcome.results, time.monotonic() - t0)
    notes = batch.notes_of(outcome, session.chapters)
    data["output"] = "\n".join([data["output"], *(n["text"] for n in notes)]).strip()
    data["tests"].insert(0, {
        "name": "compile", "score": 0, "max_score": 0,
        "status": "passed" if outcome.build_ok else "failed",
        "output": "all programs compiled" if outcome.build_ok else compiler_errors(outcome.build_log),
        "output_format": "text", "visibility": "visible", "tags": ["build"]})
    records.write_json_atomic(results, data)
    if junit:
        Path(junit).write_text(records.junit_xml(outcome.results))
    if outcome.not_enforced:
        print(f"{YELLOW}not enforced on this machine: {'; '.join(outcome.not_enforced)}{RESET}")
    for n in notes:
        print(f"  {n['text']}")
    print(f"wrote {results}: {data['score']} points (graded in a sandbox)")
    return 0


def test():
    """The project's own tests: lib unit tests (CTest), grader self-tests, verify."""
    steps = []
    install_test_packages()
    dev = BUILD / "dev"
    # a student repository (./lab release) has no solutions/: build and verify what is there
    solutions = (REPO / "solutions").is_dir()
    cfg = ["cmake", "-S", str(REPO), "-B", str(dev), "-DSOCKLAB_TESTS=ON",
           f"-DSOCKLAB_SOLUTIONS={'ON' if solutions else 'OFF'}"]
    rc = subprocess.run(cfg, stdout=subprocess.DEVNULL).returncode
    rc = rc or subprocess.run(["cmake", "--build", str(dev), "-j", JOBS], stdout=subprocess.DEVNULL).returncode
    rc = rc or subprocess.run(["ctest", "--test-dir", str(dev), "--output-on-failure", "-j", JOBS]).returncode
    steps.append(("lib unit tests (CTest, ASan+UBSan)", rc))
    # A test whose command timed out leaves that command's programs behind (its subprocess
    # is killed, not its process group): they come to us rather than to init, and are
    # killed when the tests end, so no program outlives `./lab test`.  Meanwhile the
    # orphans that end (bubblewrap's inner process always does) are reaped as init
    # would: a zombie of a sandbox uid must not outlive the batch that made it.
    isolation.become_subreaper()
    before = set(isolation.descendants())
    try:
        with isolation.OrphanReaper() as reaper:
            rc = run_filtered(isolation_prefix() + [sys.executable, "-m", "pytest", "-q",
                               "-n", str(TEST_WORKERS), "-c", str(REPO / "tests" / "pytest.ini"),
                               "--rootdir", str(REPO / "tests"), "--durations=5", str(REPO / "tests")],
                              capture=False,
                              started=lambda proc: reaper.keep.add(proc.pid)).returncode
    finally:
        left = isolation.kill_new_descendants(before)
        if left:
            print(f"{YELLOW}{len(left)} programs the tests left running were stopped{RESET}")
    steps.append(("grader self-tests and CLI tests (pytest)", rc))
    if solutions:
        rc = verify()
        steps.append(("verify: solutions pass, skeletons fail", rc))
    else:
        print(f"{DIM}no solutions/ in this repository: verify skipped{RESET}")
    print()
    for name, rc in steps:
        print(f"  {'✓' if rc == 0 else '✗'} {name}")
    failed = sum(1 for _, rc in steps if rc != 0)
    print(f"socklab: {len(steps) - failed} passed, {failed} failed")
    return 1 if failed else 0


def install_test_packages():
    """What the project's own tests need beyond ./lab's packages, installed once, now --
    as root; a normal user gets the sudo line (from setup.sh) and those tests skip."""
    opts = [f"--{name}" for name in TEST_PACKAGE_LISTS]
    if subprocess.run([str(REPO / "tools" / "setup.sh"), *opts], stdin=subprocess.DEVNULL).returncode:
        print(f"{YELLOW}the tests that need them will be skipped{RESET}")
