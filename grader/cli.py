"""./lab -- the socklab command line.

    ./lab                       the board: every lesson and where you stand
    ./lab check [LESSON]        build and grade (all lessons, or one: 01, 01-sockets)
    ./lab report [LESSON]       check, then draw the run (ladders, states) as an HTML page
    ./lab hint LESSON           the next hint for a lesson
    ./lab watch [LESSON]        re-check whenever you save
    ./lab run LESSON PROGRAM [ARGS...]   build and run one program
    ./lab verify [LESSON]       every solution passes fully, every skeleton fails fast
    ./lab grade --json FILE [--junit FILE]   grade everything: Gradescope results.json, JUnit XML
    ./lab test                  the project's own tests (lib, grader self-tests, verify)
    ./lab batch SUBS --out DIR  grade a whole class, sandboxed, into a gradebook
    ./lab gradebook merge OUT DIR...  merge batches (shards) into one gradebook
    ./lab gradebook export OUT [--roster R.csv] --format canvas|moodle   for an LMS
    ./lab release OUT_DIR       a student repository without solutions, with Classroom autograding
    ./lab gradescope OUT.zip    a Gradescope autograder bundle (--lesson NN: one lesson's)
    ./lab image build|k8s       the grader as an OCI image; Kubernetes Jobs of a sharded batch
    ./lab docs [--serve]        build (or serve) the documentation site with the lessons
    ./lab diagrams [--check]    redraw the lessons' ladder diagrams from real captures
    ./lab mutate [LESSON]       mutation testing: does each lesson's grader fail the solution's mutants?

The student's commands live here; the maintainer's and the instructor's in
grader/maintainer.py, grader/batch.py and grader/instructor.py.
"""
import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from grader import build as building, lessons, requirements
from grader.build import REPO, SOLUTIONS, STUDENT, Variant, build, compiler_errors
from grader.term import BOLD, DIM, GREEN, RED, RESET, YELLOW
from grader.testrun import bad_k_expression, run_pytest

PROGRESS = lessons.PROGRESS
WORKERS = 2     # graders mostly wait on the programs, and the tests are isolated


# -- the student's commands ---------------------------------------------------------------

def board():
    build(STUDENT)  # so the board can say which lessons do not compile
    print(f"{BOLD}socklab{RESET} -- network programming in C, one lesson at a time\n")
    next_up = None
    total_score = total_max = 0
    width = max((len(l.title) for l in lessons.all_lessons()), default=0)
    for lesson in lessons.all_lessons():
        res = lessons.load_progress(lesson)
        built = STUDENT.path / "chapters" / lesson.name
        unmet = requirements.unmet_reason(lesson.path)
        if unmet:
            # not the student's fault, and not next: the machine lacks what it needs
            status, colour = f"cannot run here: {unmet.split(';')[0]} (./lab check {lesson.number} says how to get it)", YELLOW
        elif not all((built / p).exists() for p in lesson.programs()):
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
        errs = [compiler_errors(log, l.name) for l in lesson_list]
        errs = "\n".join(e for e in errs if e) or compiler_errors(log)
        print(f"{YELLOW}some programs did not compile; their tests will fail:{RESET}\n{errs}\n")
    return ok, log


def check(lesson=None, solutions=False, sanitize=False, k=None, only=None, fail_on_skip=False,
          all=False, list=False, pcap=None, report=False):
    lesson_list = lessons.select(lesson)
    if list:
        return list_contract(lesson_list)
    why = bad_k_expression(k) if k else None
    if why:
        print(f"{RED}-k '{k}' is not a test filter: {why}{RESET}\n"
              "  it is a test-name fragment, or fragments joined with and / or / not, e.g.\n"
              "  -k client   -k 'server and not wildcard'")
        return 2
    _build_or_report(Variant(solutions=solutions, sanitize=sanitize), lesson_list)
    extra = []
    if solutions:
        extra.append("--solutions")
    if sanitize:
        extra.append("--sanitize")
    if k:
        extra += ["-k", k]
    if fail_on_skip:
        extra.append("--fail-on-skip")
    if not all:
        extra.append("--first-failure-only")
    paths = [l.path for l in lesson_list]
    if only:
        from grader import collect
        cases = collect.cases(paths)
        paths = [f"{c.path}::{c.name}" for c in cases if c.name == only]
        if not paths:
            print(f"no test is named '{only}'; the tests are:\n  " + "\n  ".join(c.name for c in cases))
            return 2
    PROGRESS.mkdir(parents=True, exist_ok=True)
    raw = PROGRESS / ("all.raw.json" if len(lesson_list) > 1 else f"{lesson_list[0].name}.raw.json")
    workers = None if only else WORKERS     # one case: no worker start-up
    rc = run_pytest(paths, extra, workers, raw=raw).returncode
    if pcap:
        copy_pcaps(raw, Path(pcap))
    partial = k or only
    if not solutions and not partial:
        lessons.save_progress(raw)
    if rc == 5 and k:
        from grader import collect
        names = sorted({c.name.split("[", 1)[0] for c in collect.cases(paths)})
        print(f"no test name matches '{k}'; the tests are:\n  " + "\n  ".join(names))
    if rc == 1 and len(lesson_list) == 1 and not report:
        print(f"{DIM}the conversations drawn, with states and pcaps: ./lab report {lesson_list[0].number}{RESET}")
    if (rc == 0 and len(lesson_list) == 1 and not solutions and not partial
            and not requirements.unmet_reason(lesson_list[0].path)):
        nxt = lessons.after(lesson_list[0])
        if nxt:
            print(f"\n{GREEN}Lesson {lesson_list[0].number} passes.{RESET} Next: chapters/{nxt.name}/README.md")
    return rc


def list_contract(lesson_list):
    """Each lesson's Contract, clause by clause, with the tests that check each one."""
    from grader import contracts
    refs = contracts.collect([l.path for l in lesson_list])
    bad = 0
    for lesson in lesson_list:
        found, problems = contracts.coverage((lesson.path / "README.md").read_text(), refs.get(lesson.name, []))
        print(f"{BOLD}{lesson.number} {lesson.title} -- Contract{RESET}")
        print(contracts.render(found, problems) + "\n")
        bad += len(problems)
    return 1 if bad else 0


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


def report(lesson=None, solutions=False, sanitize=False, k=None, only=None, out=None):
    """./lab report: check, then one HTML page per lesson of what the run saw."""
    from grader import html_report
    rc = check(lesson, solutions=solutions, sanitize=sanitize, k=k, only=only, report=True)
    selected = lessons.select(lesson)
    raw = PROGRESS / ("all.raw.json" if len(selected) > 1 else f"{selected[0].name}.raw.json")
    if rc not in (0, 1) or not raw.is_file():
        return rc
    variant = Variant(solutions=solutions, sanitize=sanitize).name
    print()
    for one in selected:
        page = html_report.write(one.name, raw, Path(out) if out else html_report.REPORTS, variant)
        print(f"report: {html_report.shown(page)}  (open it in a browser; it needs no network)")
    return rc


def hint(lesson, reset=False):
    lesson = lessons.select(lesson)[0]
    hints = lesson.hints()
    if not hints:
        print(f"No hints for lesson {lesson.number} yet; reread its README's contract section.")
        return 0
    state = lessons.hint_state()
    shown = 0 if reset else state.get(lesson.name, 0)
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


def watch(lesson=None, interval=0.5, once=False):
    """Polls for changes: file events do not reach us on VM shared folders, WSL or NFS."""
    lesson_list = lessons.select(lesson) if lesson else [lessons.first_unfinished()]
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
                check(lesson_list[0].number)
                if once:
                    return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        print()
        return 0


def run(lesson, program=None, args=(), solutions=False):
    lesson = lessons.select(lesson)[0]
    if not program:
        print(f"which program? ./lab run {lesson.number} PROGRAM [ARGS...]; "
              f"programs in this lesson: {', '.join(lesson.programs()) or '(none)'}")
        return 2
    variant = SOLUTIONS if solutions else STUDENT
    ok, log = build(variant, [lesson])
    binary = variant.path / "chapters" / lesson.name / program
    if not binary.exists():
        print(f"{RED}{lesson.name}/{program} is not built.{RESET}")
        if not ok:
            print(compiler_errors(log, lesson.name))
        print(f"programs in this lesson: {', '.join(lesson.programs()) or '(none)'}")
        return 1
    building.give_build_back()          # exec leaves no finally to do it
    os.execv(str(binary), [str(binary), *args])


# -- the parser ---------------------------------------------------------------------------

def _calls(fn, *names):
    """A subcommand's handler: fn, called with the parsed options it takes, by name."""
    return lambda args: fn(**{name: getattr(args, name) for name in names})


def _maintainer(name, *names):
    def call(args):
        from grader import maintainer
        return getattr(maintainer, name)(**{n: getattr(args, n) for n in names})
    return call


def _batch(args):
    from grader import batch
    return batch.batch(args.submissions, args.out, args.lessons, args.jobs, args.memory,
                       only=args.only, force=args.force, shard=args.shard,
                       deadlines_file=args.deadlines, roster=args.roster)


def _gradebook(args):
    from grader import gradebook
    return gradebook.merge(args.out, args.dirs, roster=args.roster)


def _export(args):
    from grader import lms
    return lms.export(args.out, args.roster, args.format, args.to)


def _release(args):
    from grader import instructor
    return instructor.release(args.out_dir)


def _gradescope(args):
    from grader import instructor
    return instructor.gradescope(args.zip, args.lesson)


def _image(args):
    from grader import oci
    return oci.cmd(args)


def _docs(args):
    from grader import docs
    return docs.cmd_docs(args)


def _diagrams(args):
    from grader import diagrams
    return diagrams.cmd_diagrams(args)


def _mutate(args):
    from grader import mutate
    return mutate.cmd_mutate(args)


def _graded_run(p):
    """The options of a command that grades (check, report): what, built how, which tests."""
    p.add_argument("lesson", nargs="?")
    p.add_argument("--solutions", action="store_true", help="grade the reference solutions")
    p.add_argument("--sanitize", action="store_true", help="build and grade with ASan+UBSan")
    p.add_argument("-k", help="only tests whose name matches (pytest -k)")
    p.add_argument("--only", metavar="TEST", help="only this one test case (test_x, or test_x[param])")
    return p


def parser():
    p = argparse.ArgumentParser(prog="./lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda args: board())
    sub = p.add_subparsers(dest="command")
    sub.add_parser("board", help="show every lesson and your progress (the default)")
    sub.add_parser("help", help="this help").set_defaults(func=lambda args: p.print_help() or 0)
    c = _graded_run(sub.add_parser("check", help="build and grade one lesson (or all)"))
    c.add_argument("--fail-on-skip", action="store_true",
                   help="a skipped test fails the run (autograders that score by exit status)")
    c.add_argument("--all", action="store_true", help="explain every failing test, not just the first")
    c.add_argument("--list", action="store_true",
                   help="list the lesson's Contract clauses and the tests that check each one")
    c.add_argument("--pcap", metavar="DIR", help="copy each test's packet capture (pcap) into DIR")
    c.set_defaults(func=_calls(check, "lesson", "solutions", "sanitize", "k", "only", "fail_on_skip",
                               "all", "list", "pcap"))
    h = sub.add_parser("hint", help="show the next hint for a lesson")
    h.add_argument("lesson")
    h.add_argument("--reset", action="store_true", help="start again from the first hint")
    h.set_defaults(func=_calls(hint, "lesson", "reset"))
    w = sub.add_parser("watch", help="re-check a lesson whenever a source file changes")
    w.add_argument("lesson", nargs="?")
    w.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    w.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    w.set_defaults(func=_calls(watch, "lesson", "interval", "once"))
    r = sub.add_parser("run", help="build and run one program of a lesson")
    r.add_argument("lesson")
    r.add_argument("program", nargs="?")
    r.add_argument("args", nargs=argparse.REMAINDER)
    r.add_argument("--solutions", action="store_true")
    r.set_defaults(func=_calls(run, "lesson", "program", "args", "solutions"))
    v = sub.add_parser("verify", help="solutions get full points, skeletons fail quickly")
    v.add_argument("lesson", nargs="?")
    v.add_argument("--skeleton-test-limit", type=float, default=5.0,
                   help="seconds one skeleton test may take to fail")
    v.set_defaults(func=_maintainer("verify", "lesson", "skeleton_test_limit"))
    g = sub.add_parser("grade", help="grade everything into a Gradescope results.json")
    g.add_argument("--json", required=True, metavar="FILE", dest="json_path")
    g.add_argument("--junit", metavar="FILE", help="also write JUnit XML (points as properties)")
    g.add_argument("--solutions", action="store_true")
    g.add_argument("--submission", metavar="DIR",
                   help="grade the C files of this submission (a repository, its chapters/, or "
                        "an archive) instead of this checkout's; needs root")
    g.add_argument("lesson", nargs="?")
    g.set_defaults(func=_maintainer("grade", "json_path", "junit", "solutions", "submission", "lesson"))
    sub.add_parser("test", help="run the project's own tests").set_defaults(func=_maintainer("test"))
    b = sub.add_parser("batch", help="grade a directory of submissions, sandboxed, into a gradebook")
    b.add_argument("submissions")
    b.add_argument("--out", required=True)
    b.add_argument("--lessons", help="comma-separated lessons (default: all)")
    b.add_argument("--jobs", type=int, help="parallel submissions (default: number of cores)")
    b.add_argument("--memory", type=int, metavar="MIB",
                   help="memory bound of one submission's grading, in MiB (default: 1024)")
    b.add_argument("--only", metavar="STUDENT[,..]",
                   help="grade only these students (ids), merged into the gradebook already in --out")
    b.add_argument("--force", action="store_true",
                   help="regrade even submissions that have not changed since their last grading")
    b.add_argument("--shard", metavar="I/N",
                   help="grade only shard I of N (1 <= I <= N; split by a digest of the student id)")
    b.add_argument("--deadlines", metavar="TOML",
                   help="per lesson: due date, late days, penalty; a git repository is graded at its "
                        "last commit before each lesson's deadline")
    b.add_argument("--roster", metavar="CSV",
                   help="id,name,email per student: names beside the ids, and a row for each student "
                        "without a submission (kept in OUT for later rebuilds and exports)")
    b.set_defaults(func=_batch)
    gb = sub.add_parser("gradebook", help="merge the --out folders of several batches (shards) into one")
    gb_sub = gb.add_subparsers(dest="action", required=True)
    gm = gb_sub.add_parser("merge", help="merge result.json trees; refuses conflicting duplicates")
    gm.add_argument("out")
    gm.add_argument("dirs", nargs="+")
    gm.add_argument("--roster", metavar="CSV", help="id,name,email per student (default: one a shard kept)")
    gm.set_defaults(func=_gradebook)
    ge = gb_sub.add_parser("export", help="the gradebook as a Canvas or Moodle import CSV, by a roster")
    ge.add_argument("out")
    ge.add_argument("--roster", metavar="CSV", help="id,name,email per student (default: the one OUT kept)")
    ge.add_argument("--format", required=True, choices=("canvas", "moodle"))
    ge.add_argument("--to", metavar="FILE", help="where to write (default: OUT/FORMAT.csv)")
    ge.set_defaults(func=_export)
    rl = sub.add_parser("release", help="write a student repository (no solutions, no hidden tests)")
    rl.add_argument("out_dir")
    rl.set_defaults(func=_release)
    gs = sub.add_parser("gradescope", help="write a Gradescope autograder bundle (zip)")
    gs.add_argument("--lesson", metavar="NN", help="grade this lesson only: one Gradescope assignment "
                    "per lesson (default: the whole course)")
    gs.add_argument("zip")
    gs.set_defaults(func=_gradescope)
    from grader.diagrams import add_parser as add_diagrams_parser
    from grader.docs import add_parser as add_docs_parser
    from grader.mutate import add_parser as add_mutate_parser
    add_docs_parser(sub).set_defaults(func=_docs)
    add_mutate_parser(sub).set_defaults(func=_mutate)
    r = _graded_run(sub.add_parser("report", help="check a lesson and write its run as an HTML page"))
    r.add_argument("--out", help="directory for the pages (default build/reports)")
    r.set_defaults(func=_calls(report, "lesson", "solutions", "sanitize", "k", "only", "out"))
    add_diagrams_parser(sub).set_defaults(func=_diagrams)
    from grader.oci import add_parser as add_image_parser
    add_image_parser(sub).set_defaults(func=_image)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command != "help" and not building.build_dir_is_ours():
        return 1
    try:
        return args.func(args)
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
    finally:
        building.give_build_back()


if __name__ == "__main__":
    sys.exit(main())
