"""./lab -- the socklab command line.

    ./lab                       the board: every lesson and where you stand
    ./lab check [LESSON]        build and grade (all lessons, or one: 01, 01-sockets)
    ./lab report [LESSON]       check, then draw the run (ladders, states) as an HTML page
    ./lab hint LESSON           the next hint for a lesson
    ./lab watch [LESSON]        re-check whenever you save
    ./lab run LESSON PROGRAM [ARGS...]   build and run one program
    ./lab verify                every solution passes fully, every skeleton fails fast
    ./lab grade --json FILE [--junit FILE]   grade everything: Gradescope results.json, JUnit XML
    ./lab test                  the project's own tests (lib, grader self-tests, verify)
    ./lab batch SUBS --out DIR  grade a whole class, sandboxed, into a gradebook
    ./lab release OUT_DIR       a student repository without solutions, with Classroom autograding
    ./lab gradescope OUT.zip    a Gradescope autograder bundle
    ./lab docs [--serve]        build (or serve) the documentation site with the lessons
    ./lab diagrams [--check]    redraw the lessons' ladder diagrams from real captures
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader import lessons
from grader.docs import add_parser as add_docs_parser, cmd_docs  # noqa: F401 (./lab docs)
from grader.html_report import add_parser as add_report_parser, cmd_report  # noqa: F401
from grader.diagrams import add_parser as add_diagrams_parser, cmd_diagrams  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
PROGRESS = lessons.PROGRESS
JOBS = str(max(1, min(os.cpu_count() or 1, 4)))

BOLD, GREEN, RED, YELLOW, DIM, RESET = (
    ("\033[1m", "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m")
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else ("",) * 6)


# -- building ---------------------------------------------------------------------

def build(variant, lesson_list=None):
    """Configure (once) and build one variant -- only the given lessons' programs, if any
    (make need not look at the others); returns (ok, compiler output).

    A lock file beside the build directory keeps two builds of one tree (./lab watch and
    ./lab check, or parallel tests) from running make at the same time."""
    out = BUILD / variant
    out.mkdir(parents=True, exist_ok=True)
    targets = [f"{l.name}__{p}" for l in lesson_list or [] for p in l.programs()]
    with open(BUILD / f".{variant}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(variant, out, targets)


def _build_locked(variant, out, targets):
    solutions = variant.startswith("solutions")
    sanitize = variant.endswith("-asan")
    log = []
    if not (out / "CMakeCache.txt").exists():
        cfg = subprocess.run(
            ["cmake", "-S", str(REPO), "-B", str(out), "-DSOCKLAB_TESTS=OFF",
             f"-DSOCKLAB_SOLUTIONS={'ON' if solutions else 'OFF'}",
             f"-DSOCKLAB_SANITIZE={'ON' if sanitize else 'OFF'}"],
            capture_output=True, text=True)
        if cfg.returncode != 0:
            return False, cfg.stdout + cfg.stderr
    # -k: one lesson that does not compile must not stop the others from building
    target_args = ["--target", *targets] if targets else []
    res = subprocess.run(["cmake", "--build", str(out), "-j", JOBS, *target_args, "--", "-k"],
                         capture_output=True, text=True)
    log.append(res.stdout + res.stderr)
    if res.returncode != 0:
        remove_stale_binaries(out, REPO / ("solutions" if solutions else "chapters"))
    return res.returncode == 0, "".join(log)


def remove_stale_binaries(out, source_root):
    """After a failed build, delete every program older than one of its sources.

    make leaves the last good binary in place when a compile fails; grading (or running)
    it would report the previous version's results for code that does not compile."""
    shared = list((REPO / "lib").glob("*.[ch]"))
    for lesson in lessons.all_lessons():
        src_dir = source_root / lesson.name
        deps = shared + list((src_dir / "lib").glob("*.[ch]"))
        for used in lesson.uses():
            deps += list((source_root / used / "lib").glob("*.[ch]"))
        newest_dep = max((p.stat().st_mtime for p in deps), default=0)
        for src in src_dir.glob("*.c"):
            binary = out / "chapters" / lesson.name / src.stem
            if binary.exists() and max(newest_dep, src.stat().st_mtime) > binary.stat().st_mtime:
                binary.unlink()


def compiler_errors(log, lesson=None):
    """The compiler's diagnostics, for one lesson's files if given."""
    keep = []
    for line in log.splitlines():
        if ("error" in line or "warning" in line or line.startswith(" ")) and "make" not in line.split(":")[0]:
            if lesson is None or lesson in line or (keep and line.startswith(" ")):
                keep.append(line)
    if not keep and lesson is None:
        # not a compiler diagnostic (CMake, the linker, make itself): show the end of the log
        keep = [l for l in log.splitlines() if l.strip()][-20:]
    return "\n".join(keep[-40:])


# -- running the grader --------------------------------------------------------------

def isolation_prefix():
    """Run the grader as root in a user namespace when we are not root, so each test
    can have its own network namespace.  Empty when that is impossible or not needed."""
    if os.geteuid() == 0 or not shutil.which("unshare") or os.environ.get("SOCKLAB_NO_NAMESPACES"):
        return []
    probe = subprocess.run(["unshare", "-r", "-n", "true"], capture_output=True)
    return ["unshare", "-r", "--"] if probe.returncode == 0 else []


def pytest_cmd(paths, extra=(), workers=None, results=None, quiet=False, raw=None):
    # a temporary directory of our own: under `unshare -r` pytest thinks it is root and
    # would otherwise pick /tmp/pytest-of-root, which may belong to someone else
    basetemp = BUILD / "tmp" / f"pytest-{os.getpid()}"
    basetemp.parent.mkdir(parents=True, exist_ok=True)
    cmd = isolation_prefix() + [sys.executable, "-m", "pytest", "-q", "--no-header", "-rN",
                                "--tb=no", "-c", str(REPO / "pytest.ini"), "--rootdir", str(REPO),
                                "--basetemp", str(basetemp)]
    if workers:
        cmd += ["-n", str(workers)]
    if results:
        cmd += ["--results-json", str(results)]
    if raw:
        cmd += ["--raw-results", str(raw)]
    if quiet:
        cmd += ["--socklab-quiet"]
    return cmd + list(extra) + [str(p) for p in paths]


NOISE = ("bringing up nodes...",)  # pytest-xdist's start-up line: nothing a student needs


def run_pytest(paths, extra=(), workers=None, results=None, quiet=False, capture=False, raw=None):
    cmd = pytest_cmd(paths, extra, workers, results, quiet, raw)
    try:
        return _run_filtered(cmd, capture)
    finally:
        shutil.rmtree(cmd[cmd.index("--basetemp") + 1], ignore_errors=True)


def _run_filtered(cmd, capture):
    if capture:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        cmd.insert(cmd.index("-q"), "--color=yes")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    try:
        for line in proc.stdout:
            if line.strip() not in NOISE:
                sys.stdout.write(line)
                sys.stdout.flush()
    except KeyboardInterrupt:
        _let_it_clean_up(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.wait())


def _let_it_clean_up(proc, timeout=15):
    """After Ctrl-C: pytest's teardown kills every program it started, so wait for it
    (quietly: its KeyboardInterrupt tracebacks are no news) rather than leave it behind."""
    proc.send_signal(signal.SIGINT)     # in case the interrupt reached only us
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def workers_for(lesson_list):
    """Two workers: graders mostly wait on the programs, and the tests are isolated."""
    return 2


# -- commands ----------------------------------------------------------------------

def cmd_board(args):
    build("student")  # so the board can say which lessons do not compile
    print(f"{BOLD}socklab{RESET} -- network programming in C, one lesson at a time\n")
    next_up = None
    total_score = total_max = 0
    width = max((len(l.title) for l in lessons.all_lessons()), default=0)
    for lesson in lessons.all_lessons():
        res = lessons.load_progress(lesson)
        built = BUILD / "student" / "chapters" / lesson.name
        if not all((built / p).exists() for p in lesson.programs()):
            status, colour = f"does not compile (./lab check {lesson.number} shows why)", YELLOW
            next_up = next_up or lesson
        elif res is None:
            status, colour = "not started", DIM
            next_up = next_up or lesson
        else:
            score, maximum, failed = res["score"], res["max"], res["failed"]
            total_score += score
            total_max += maximum
            if failed == 0 and maximum:
                status, colour = f"passed          {score:>3}/{maximum} points", GREEN
            else:
                status, colour = f"failing {failed} of {res['count']:<3}  {score:>3}/{maximum} points", RED
                next_up = next_up or lesson
        print(f"  {colour}{lesson.number}  {lesson.title:<{width}}  {status}{RESET}")
    print()
    if total_max:
        checked = sum(1 for l in lessons.all_lessons() if lessons.load_progress(l))
        print(f"  points so far: {total_score} of {total_max} in the {checked} lesson(s) checked")
    if next_up:
        print(f"  next: read chapters/{next_up.name}/README.md, then  ./lab check {next_up.number}")
    else:
        print("  every lesson passes -- well done.")
    print(f"\n  {DIM}./lab check N · ./lab hint N · ./lab watch N · ./lab run N PROGRAM ARGS · ./lab help{RESET}")
    return 0


def _build_or_report(variant, lesson_list):
    ok, log = build(variant, lesson_list)
    if not ok:
        names = [l.name for l in lesson_list]
        errs = [compiler_errors(log, n) for n in names]
        errs = "\n".join(e for e in errs if e) or compiler_errors(log)
        print(f"{YELLOW}some programs did not compile; their tests will fail:{RESET}\n{errs}\n")
    return ok, log


def bad_k_expression(expr):
    """Why pytest would reject `-k expr` (under xdist it crashes instead of saying so)."""
    try:
        from _pytest.mark.expression import Expression, ParseError
    except ImportError:     # another pytest: let it judge for itself
        return None
    try:
        Expression.compile(expr)
    except ParseError as e:
        return str(e)
    return None


def cmd_check(args):
    lesson_list = lessons.select(args.lesson)
    why = bad_k_expression(args.k) if args.k else None
    if why:
        print(f"{RED}-k '{args.k}' is not a test filter: {why}{RESET}\n"
              "  it is a test-name fragment, or fragments joined with and / or / not, e.g.\n"
              "  -k client   -k 'server and not wildcard'")
        return 2
    variant = ("solutions" if args.solutions else "student") + ("-asan" if args.sanitize else "")
    _build_or_report(variant, lesson_list)
    extra = []
    if args.solutions:
        extra.append("--solutions")
    if args.sanitize:
        extra.append("--sanitize")
    if args.k:
        extra += ["-k", args.k]
    if args.fail_on_skip:
        extra.append("--fail-on-skip")
    if not args.all:
        extra.append("--first-failure-only")
    paths = [l.path for l in lesson_list]
    if args.only:
        paths = _node_ids(lesson_list, args.only)
        if not paths:
            names = sorted({n for l in lesson_list for n in _test_names(l)})
            print(f"no test is named '{args.only}'; the tests are:\n  " + "\n  ".join(names))
            return 2
    PROGRESS.mkdir(parents=True, exist_ok=True)
    raw = PROGRESS / ("all.raw.json" if len(lesson_list) > 1 else f"{lesson_list[0].name}.raw.json")
    workers = None if args.only else workers_for(lesson_list)   # one case: no worker start-up
    rc = run_pytest(paths, extra, workers, raw=raw).returncode
    if getattr(args, "pcap", None):
        copy_pcaps(raw, Path(args.pcap))
    partial = args.k or args.only
    if not args.solutions and not partial:
        lessons.save_progress(raw)
    if rc == 5 and args.k:
        names = sorted({n for l in lesson_list for n in _test_names(l)})
        print(f"no test name matches '{args.k}'; the tests are:\n  " + "\n  ".join(names))
    if rc == 1 and len(lesson_list) == 1 and not getattr(args, "report", False):
        print(f"{DIM}the conversations drawn, with states and pcaps: ./lab report {lesson_list[0].number}{RESET}")
    if rc == 0 and len(lesson_list) == 1 and not args.solutions and not partial:
        nxt = lessons.after(lesson_list[0])
        if nxt:
            print(f"\n{GREEN}Lesson {lesson_list[0].number} passes.{RESET} Next: chapters/{nxt.name}/README.md")
    return rc


def copy_pcaps(raw, dest):
    """./lab check --pcap DIR: each test's capture of this run, as DIR/<lesson>/<test>.pcap."""
    copied = 0
    for r in lessons.results_by_node(raw).values():
        pcap = Path(r.get("wire", "")).with_suffix("").with_suffix(".pcap") if r.get("wire") else None
        if pcap and pcap.is_file():
            (dest / r["lesson"]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pcap, dest / r["lesson"] / pcap.name)
            copied += 1
    print(f"pcap: {copied} capture(s) copied to {dest}/ (tcpdump -nr FILE, or Wireshark)")


def _test_functions(lesson):
    """[(test file, test function name)] of a lesson's graders."""
    return [(f, m) for f in sorted(lesson.path.glob("test_*.py"))
            for m in re.findall(r"^def (test_\w+)", f.read_text(), flags=re.M)]


def _node_ids(lesson_list, name):
    """pytest node ids of the one test case called `name` (`test_x`, or `test_x[param]` for
    one parameter of it): exactly that case, where -k would match every name containing it."""
    base = name.split("[", 1)[0]
    return [f"{f}::{name}" for l in lesson_list for f, test in _test_functions(l) if test == base]


def _test_names(lesson):
    return [test for _, test in _test_functions(lesson)]


def cmd_hint(args):
    lesson = lessons.select(args.lesson)[0]
    hints = lesson.hints()
    if not hints:
        print(f"No hints for lesson {lesson.number} yet; reread its README's contract section.")
        return 0
    state = lessons.hint_state()
    shown = 0 if args.reset else state.get(lesson.name, 0)
    shown = min(len(hints), shown + 1)
    for i, (title, body) in enumerate(hints[:shown], 1):
        print(f"{BOLD}Hint {i}/{len(hints)}: {title}{RESET}\n{body.strip()}\n")
    if shown < len(hints):
        print(f"{DIM}(run ./lab hint {lesson.number} again for the next one){RESET}")
    else:
        print(f"{DIM}(that was the last hint; --reset starts again from the first){RESET}")
    state[lesson.name] = shown
    lessons.save_hint_state(state)
    return 0


def _snapshot(paths):
    snap = {}
    for base in paths:
        for p in Path(base).rglob("*"):
            if p.suffix in (".c", ".h") and p.is_file():
                snap[str(p)] = p.stat().st_mtime_ns
    return snap


def cmd_watch(args):
    """Polls for changes: file events do not reach us on VM shared folders, WSL or NFS."""
    lesson_list = lessons.select(args.lesson) if args.lesson else [lessons.first_unfinished()]
    watched = [l.path for l in lesson_list] + [REPO / "lib"]
    print(f"watching {', '.join(str(w.relative_to(REPO)) for w in watched)} -- Ctrl-C to stop")
    last = None
    try:
        while True:
            snap = _snapshot(watched)
            if snap != last:
                if last is not None:
                    print(f"\n{DIM}--- change seen at {time.strftime('%H:%M:%S')} ---{RESET}")
                last = snap
                cmd_check(argparse.Namespace(lesson=lesson_list[0].number, solutions=False,
                                             sanitize=False, k=None, only=None,
                                             fail_on_skip=False, all=False))
                if args.once:
                    return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        print()
        return 0


def cmd_run(args):
    lesson = lessons.select(args.lesson)[0]
    if not args.program:
        print(f"which program? ./lab run {lesson.number} PROGRAM [ARGS...]; "
              f"programs in this lesson: {', '.join(lesson.programs()) or '(none)'}")
        return 2
    variant = "solutions" if args.solutions else "student"
    ok, log = build(variant, [lesson])
    binary = BUILD / variant / "chapters" / lesson.name / args.program
    if not binary.exists():
        print(f"{RED}{lesson.name}/{args.program} is not built.{RESET}")
        if not ok:
            print(compiler_errors(log, lesson.name))
        print(f"programs in this lesson: {', '.join(lesson.programs()) or '(none)'}")
        return 1
    os.execv(str(binary), [str(binary)] + args.args)


def cmd_verify(args):
    """Every solution passes with full points; every skeleton fails, quickly."""
    lesson_list = lessons.select(args.lesson) if args.lesson else lessons.all_lessons()
    paths = [l.path for l in lesson_list]
    out = BUILD / "verify"
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for variant in ("solutions", "student"):
        ok, log = build(variant)
        if not ok:
            problems.append(f"the {variant} build failed:\n{compiler_errors(log)}")
    if problems:
        print("\n".join(problems))
        return 1
    t0 = time.monotonic()
    sol = run_pytest(paths, ["--solutions"], workers=2, raw=out / "solutions.json", capture=True,
                     quiet=True)
    t_sol = time.monotonic() - t0
    t0 = time.monotonic()
    run_pytest(paths, [], workers=2, raw=out / "skeletons.json", capture=True, quiet=True)
    t_skel = time.monotonic() - t0
    sol_totals = lessons.totals_from_results(out / "solutions.json")
    skel_totals = lessons.totals_from_results(out / "skeletons.json")

    print(f"{'lesson':<26} {'solution':>10} {'skeleton':>10} {'skeleton time':>14}")
    for lesson in lesson_list:
        s = sol_totals.get(lesson.name)
        k = skel_totals.get(lesson.name)
        verdicts = []
        if not s or s["max"] == 0:
            verdicts.append("no graded tests")
        else:
            if s["score"] != s["max"] or s["failed"] or s["skipped"]:
                verdicts.append("solution does not get full points")
            if not k or k["score"] >= k["max"]:
                verdicts.append("skeleton passes")
            elif k["slowest"] > args.skeleton_test_limit:
                verdicts.append(f"a skeleton test took {k['slowest']:.1f} s (limit {args.skeleton_test_limit:g} s)")
        mark = f"{GREEN}ok{RESET}" if not verdicts else f"{RED}{'; '.join(verdicts)}{RESET}"
        sol_txt = f"{s['score']}/{s['max']}" if s else "-"
        skel_txt = f"{k['score']}/{k['max']}" if k else "-"
        skel_time = f"{k['duration']:.1f} s" if k else "-"
        print(f"{lesson.name:<26} {sol_txt:>10} {skel_txt:>10} {skel_time:>14}  {mark}")
        problems += [f"{lesson.name}: {v}" for v in verdicts]
    print(f"\nsolutions graded in {t_sol:.1f} s, skeletons in {t_skel:.1f} s (2 workers)")
    if problems:
        print(f"{RED}verify failed:{RESET}\n  " + "\n  ".join(problems))
        if sol.returncode not in (0, 1):
            print(sol.stdout[-3000:] + sol.stderr[-3000:])
        else:
            failing = [l for l in sol.stdout.splitlines()]
            print("\n".join(failing[-80:]))
        return 1
    print(f"{GREEN}verify: {len(lesson_list)} lessons ok{RESET}")
    return 0


def cmd_grade(args):
    """Grade the student build of every lesson into a Gradescope results.json."""
    lesson_list = lessons.select(args.lesson) if args.lesson else lessons.all_lessons()
    variant = "solutions" if args.solutions else "student"
    ok, log = build(variant)
    results = Path(args.json).resolve()
    results.parent.mkdir(parents=True, exist_ok=True)
    # a fallback first, so a crash below still leaves the student some feedback
    lessons.write_json_atomic(results, {
        "score": 0, "output": "The grader did not finish; please report this to the staff.",
        "tests": []})
    extra = ["--solutions"] if args.solutions else []
    if args.junit:
        extra.append(f"--junitxml={Path(args.junit).resolve()}")
    rc = run_pytest([l.path for l in lesson_list], extra, workers=2, results=results,
                    quiet=True).returncode
    data = json.loads(results.read_text())
    data["tests"].insert(0, {
        "name": "compile", "score": 0, "max_score": 0,
        "status": "passed" if ok else "failed",
        "output": "all programs compiled" if ok else compiler_errors(log),
        "output_format": "text", "visibility": "visible", "tags": ["build"]})
    lessons.write_json_atomic(results, data)
    print(f"wrote {results}: {data['score']} points")
    return 0 if rc in (0, 1) else rc


def cmd_test(args):
    """The project's own tests: lib unit tests (CTest), grader self-tests, verify."""
    steps = []
    dev = BUILD / "dev"
    # a student repository (./lab release) has no solutions/: build and verify what is there
    solutions = (REPO / "solutions").is_dir()
    cfg = ["cmake", "-S", str(REPO), "-B", str(dev), "-DSOCKLAB_TESTS=ON",
           f"-DSOCKLAB_SOLUTIONS={'ON' if solutions else 'OFF'}"]
    rc = subprocess.run(cfg, stdout=subprocess.DEVNULL).returncode
    rc = rc or subprocess.run(["cmake", "--build", str(dev), "-j", JOBS], stdout=subprocess.DEVNULL).returncode
    rc = rc or subprocess.run(["ctest", "--test-dir", str(dev), "--output-on-failure", "-j", JOBS]).returncode
    steps.append(("lib unit tests (CTest, ASan+UBSan)", rc))
    rc = _run_filtered(isolation_prefix() + [sys.executable, "-m", "pytest", "-q", "-n", "2",
                       "-c", str(REPO / "tests" / "pytest.ini"), "--rootdir", str(REPO / "tests"),
                       "--durations=5", str(REPO / "tests")], capture=False).returncode
    steps.append(("grader self-tests and CLI tests (pytest)", rc))
    if solutions:
        rc = cmd_verify(argparse.Namespace(lesson=None, skeleton_test_limit=5.0))
        steps.append(("verify: solutions pass, skeletons fail", rc))
    else:
        print(f"{DIM}no solutions/ in this repository: verify skipped{RESET}")
    print()
    for name, rc in steps:
        print(f"  {'✓' if rc == 0 else '✗'} {name}")
    failed = sum(1 for _, rc in steps if rc != 0)
    print(f"socklab: {len(steps) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_batch(args):
    from grader import batch
    return batch.batch(args.submissions, args.out, args.lessons, args.jobs)


def cmd_release(args):
    from grader import instructor
    return instructor.release(args.out_dir)


def cmd_gradescope(args):
    from grader import instructor
    return instructor.gradescope(args.zip)


def main(argv=None):
    p = argparse.ArgumentParser(prog="./lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    sub.add_parser("board", help="show every lesson and your progress (the default)")
    sub.add_parser("help", help="this help")
    c = sub.add_parser("check", help="build and grade one lesson (or all)")
    c.add_argument("lesson", nargs="?")
    c.add_argument("--solutions", action="store_true", help="grade the reference solutions")
    c.add_argument("--sanitize", action="store_true", help="build and grade with ASan+UBSan")
    c.add_argument("-k", help="only tests whose name matches (pytest -k)")
    c.add_argument("--only", metavar="TEST", help="only this one test case (test_x, or test_x[param])")
    c.add_argument("--fail-on-skip", action="store_true",
                   help="a skipped test fails the run (autograders that score by exit status)")
    c.add_argument("--all", action="store_true", help="explain every failing test, not just the first")
    c.add_argument("--pcap", metavar="DIR", help="copy each test's packet capture (pcap) into DIR")
    h = sub.add_parser("hint", help="show the next hint for a lesson")
    h.add_argument("lesson")
    h.add_argument("--reset", action="store_true", help="start again from the first hint")
    w = sub.add_parser("watch", help="re-check a lesson whenever a source file changes")
    w.add_argument("lesson", nargs="?")
    w.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    w.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    r = sub.add_parser("run", help="build and run one program of a lesson")
    r.add_argument("lesson")
    r.add_argument("program", nargs="?")
    r.add_argument("args", nargs=argparse.REMAINDER)
    r.add_argument("--solutions", action="store_true")
    v = sub.add_parser("verify", help="solutions get full points, skeletons fail quickly")
    v.add_argument("lesson", nargs="?")
    v.add_argument("--skeleton-test-limit", type=float, default=5.0,
                   help="seconds one skeleton test may take to fail")
    g = sub.add_parser("grade", help="grade everything into a Gradescope results.json")
    g.add_argument("--json", required=True, metavar="FILE")
    g.add_argument("--junit", metavar="FILE", help="also write JUnit XML (points as properties)")
    g.add_argument("--solutions", action="store_true")
    g.add_argument("lesson", nargs="?")
    sub.add_parser("test", help="run the project's own tests")
    b = sub.add_parser("batch", help="grade a directory of submissions, sandboxed, into a gradebook")
    b.add_argument("submissions")
    b.add_argument("--out", required=True)
    b.add_argument("--lessons", help="comma-separated lessons (default: all)")
    b.add_argument("--jobs", type=int, help="parallel submissions (default: number of cores)")
    rl = sub.add_parser("release", help="write a student repository (no solutions, no hidden tests)")
    rl.add_argument("out_dir")
    gs = sub.add_parser("gradescope", help="write a Gradescope autograder bundle (zip)")
    gs.add_argument("zip")
    add_docs_parser(sub)
    add_report_parser(sub)
    add_diagrams_parser(sub)
    args = p.parse_args(argv)
    command = args.command or "board"
    if command == "help":
        p.print_help()
        return 0
    try:
        return globals()[f"cmd_{command}"](args)
    except lessons.UnknownLesson as e:
        print(f"{RED}{e}{RESET}")
        return 2
    except KeyboardInterrupt:
        # Ctrl-C reached pytest too (same process group): its teardown kills what it started
        print(f"\n{YELLOW}interrupted{RESET}")
        return 130
    except BrokenPipeError:
        # `./lab | head`: the reader has gone; say nothing more (not even at exit's flush)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
