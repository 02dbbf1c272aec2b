"""./lab mutate [LESSON] -- mutation testing of a lesson's graders.

Every mutant is the reference solution with one small mistake (grader/mutations.py
makes them from the C syntax tree libclang gives).  Each one is built as an overlay of
the solutions build (grader/overlay.py: the mutated program, or with a mutated lib/
file every program of the lesson) with the build's flags, -Werror included, and graded
by the lesson's graders: pytest with --build-dir, -x (the first failing test is
enough) and -p no:xdist, under the isolation ./lab grades with, several mutants at
once (--jobs), each bounded by a timeout.

  stillborn   does not compile: the student's build would have said so; not counted
  killed      a test failed -- or the run hit the timeout (the grader noticed a hang;
              marked "timeout").  The failing test is run once more on the mutant;
              a kill it does not repeat is marked "unstable"
  survived    every test passed: a test is missing, or the mutant is equivalent
  equivalent  survived and recorded as equivalent in solutions/NN-slug/
              equivalent-mutants.json (mutant id -> why no correct grader can tell it
              from the solution); not counted.  A recorded id that no longer exists is
              reported as stale; a recorded one that was killed, as wrong.

kill rate = killed / (killed + survived), equivalents and stillborn left out.

Each lesson's last complete run is kept in build/mutate/<lesson>.json; --json FILE
writes this run's results; --last reports the kept results again and --write-docs turns
them into docs/mutation.md (both grade nothing, and count as equivalent what is recorded
as such now).
"""
import concurrent.futures
import datetime
import fnmatch
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader import isolation, lessons, overlay

REPO = overlay.REPO
RESULTS = REPO / "build" / "mutate"
DOCS = REPO / "docs" / "mutation.md"
EQUIVALENTS = "equivalent-mutants.json"


# -- libclang ------------------------------------------------------------------------

def require_clang():
    """The libclang bindings, installing python3-clang like tools/setup.sh does (as
    root), or None after saying how."""
    from grader import mutations
    ci = mutations.clang()
    if ci:
        return ci
    rc = subprocess.run(["bash", str(REPO / "tools" / "setup.sh"), "--mutate"]).returncode
    if rc != 0:
        return None                      # setup.sh printed the sudo line
    importlib.invalidate_caches()
    ci = mutations.clang()
    if not ci:
        print(f"socklab: python3-clang is installed but `import clang.cindex` fails in "
              f"{sys.executable}; is this Debian 12 / Ubuntu 22.04+?", file=sys.stderr)
    return ci


# -- equivalent mutants -------------------------------------------------------------

def equivalents_file(lesson):
    return REPO / "solutions" / lesson / EQUIVALENTS


def load_equivalents(lesson):
    """{mutant id: reason} recorded for a lesson (an empty dict when there is no file)."""
    f = equivalents_file(lesson)
    if not f.exists():
        return {}
    data = json.loads(f.read_text())
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                             for k, v in data.items()):
        raise ValueError(f"{f.relative_to(REPO)}: expected an object mapping mutant ids to reasons")
    return data


# -- running the graders on a build --------------------------------------------------

class Grader:
    """Runs a lesson's graders on build directories, several at once, and can stop them
    all (a timeout, Ctrl-C) without leaving a program behind."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.running = set()
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, lesson, build, work, timeout, targets=None, first_failure=True):
        """(results by node id, timed out?, return code, output tail)."""
        raw = Path(work) / f"raw-{time.monotonic_ns()}.json"
        cmd = self.prefix + [
            sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:xdist",
            "-c", str(REPO / "pytest.ini"), "--rootdir", str(REPO), "--build-dir", str(build),
            "--raw-results", str(raw), "--basetemp", str(Path(work) / "pytest")]
        if first_failure:
            cmd.append("-x")
        cmd += targets or [str(REPO / "chapters" / lesson)]
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        with self.lock:
            if self.stopping:
                return {}, False, None, "stopped"
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", env=env)
            self.running.add(proc)
        timed_out = False
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            out = self.stop(proc)
        finally:
            with self.lock:
                self.running.discard(proc)
        try:
            results = json.loads(raw.read_text())
        except (OSError, ValueError):
            results = {}
        return results, timed_out, proc.returncode, (out or "")[-2000:]

    def stop(self, proc, grace=5.0):
        """SIGINT first (pytest's teardown kills what it started), then SIGKILL for pytest
        and everything below it."""
        try:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=grace)
            return out
        except subprocess.TimeoutExpired:
            pass
        except OSError:
            pass
        for _ in range(3):
            victims = [proc.pid] + isolation.descendants(proc.pid)
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                out, _ = proc.communicate(timeout=grace)
                return out
            except subprocess.TimeoutExpired:
                continue
        return ""

    def stop_all(self):
        with self.lock:
            self.stopping = True
            procs = list(self.running)
        for proc in procs:
            self.stop(proc, grace=2.0)


def failed_tests(results):
    return [(nodeid, r) for nodeid, r in results.items() if r.get("outcome") == "failed"]


def test_name(nodeid):
    return nodeid.split("::")[-1]


def first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


# -- one lesson -------------------------------------------------------------------

def grade_mutant(grader, lesson, mutant, data, solutions_build, work_root, timeout, confirm=True):
    """Build and grade one mutant; its result as a dict."""
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="m", dir=work_root))
    try:
        src = work / "src" / mutant.rel
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(mutant.apply(data))
        if mutant.rel.startswith("lib/"):
            ok, log = overlay.build(lesson, solutions_build, work / "build", lib={src.name: src},
                                    werror=True)
        else:
            ok, log = overlay.build(lesson, solutions_build, work / "build", programs=[src],
                                    werror=True)
        result = {"status": "stillborn"}
        if not ok:
            errors = [l for l in log.splitlines() if "error" in l]
            result["compiler"] = (errors[0] if errors else first_line(log)).replace(str(work) + "/", "")
        else:
            results, timed_out, rc, out = grader.run(lesson, work / "build", work, timeout)
            failed = failed_tests(results)
            if timed_out:
                result = {"status": "killed", "timeout": True,
                          "killed_by": f"the timeout ({timeout:g} s): the graders noticed a hang"}
            elif failed:
                nodeid, r = failed[0]
                result = {"status": "killed", "killed_by": test_name(nodeid),
                          "report": first_line(r.get("text"))}
                if confirm:
                    again, again_timed_out, _, _ = grader.run(lesson, work / "build", work, timeout,
                                                              targets=[nodeid])
                    if not again_timed_out and again.get(nodeid, {}).get("outcome") == "passed":
                        result["unstable"] = True
            elif rc == 0 and results:
                result = {"status": "survived"}
                skipped = [test_name(n) for n, r in results.items() if r.get("outcome") == "skipped"]
                if skipped:
                    result["skipped"] = skipped
            else:
                result = {"status": "error", "error": f"pytest exited with {rc}: {out[-600:]}"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def mutant_record(mutant, data):
    return {"id": mutant.id, "file": mutant.file, "line": mutant.line, "col": mutant.col,
            "op": mutant.op, "description": mutant.description, "diff": mutant.diff(data)}


def select(pairs, only=None, ops=None):
    """The mutants whose id matches one of `only` (fnmatch patterns or id prefixes) and
    whose operator is one of `ops` (fnmatch patterns)."""
    out = []
    for m, data in pairs:
        if only and not any(fnmatch.fnmatchcase(m.id, p) or m.id.startswith(p) for p in only):
            continue
        if ops and not any(fnmatch.fnmatchcase(m.op, p) for p in ops):
            continue
        out.append((m, data))
    return out


def run_lesson(lesson, grader, solutions_build, jobs, timeout=None, only=None, ops=None,
               confirm=True, progress=print, ci=None):
    """Mutate one lesson's solution and grade every mutant; returns the lesson's results."""
    from grader import mutations
    started = time.monotonic()
    pairs = mutations.mutants_of_lesson(lesson, ci)
    partial = bool(only or ops)
    chosen = select(pairs, only, ops)
    equivalents = load_equivalents(lesson)
    record = {"lesson": lesson, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "commit": git_commit(), "partial": partial, "jobs": jobs, "mutants": []}
    work_root = Path(tempfile.mkdtemp(prefix=f"socklab-mutate-{lesson[:2]}-"))
    try:
        # the unmutated solution first: its graders must pass, and how long they take
        # sets the timeout
        t0 = time.monotonic()
        base, base_timed_out, rc, out = grader.run(lesson, solutions_build, work_root, 600,
                                                   first_failure=False)
        record["baseline_seconds"] = round(time.monotonic() - t0, 1)
        bad = [test_name(n) for n, _ in failed_tests(base)]
        if base_timed_out or bad or rc != 0 or not base:
            record["error"] = ("the reference solution fails its own graders here ("
                               + (", ".join(bad) or f"pytest exited with {rc}: {out[-400:]}")
                               + "): its mutants would tell nothing")
            progress(f"{lesson}: {record['error']}")
            return finish(record, started, equivalents, pairs)
        if timeout is None:
            timeout = max(60.0, 5 * record["baseline_seconds"])
        record["timeout"] = timeout
        progress(f"{lesson}: {len(chosen)} mutants"
                 + (f" (of {len(pairs)})" if partial else "")
                 + f"; graders pass on the solution in {record['baseline_seconds']:.1f} s; "
                   f"{jobs} at a time, {timeout:g} s each at most")
        done = 0
        lock = threading.Lock()

        def one(pair):
            nonlocal done
            m, data = pair
            r = grade_mutant(grader, lesson, m, data, solutions_build, work_root, timeout, confirm)
            entry = dict(mutant_record(m, data), **r)
            with lock:
                done += 1
                note = entry.get("killed_by") or entry.get("compiler") or entry.get("error") or ""
                progress(f"  [{done:>3}/{len(chosen)}] {entry['status']:<9} {m.id}  "
                         f"{note[:70]}{' (unstable)' if entry.get('unstable') else ''} "
                         f"{entry['seconds']:.0f}s")
            return entry

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, p) for p in chosen]
            try:
                for f in futures:
                    record["mutants"].append(f.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                grader.stop_all()
                raise
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    return finish(record, started, equivalents, pairs)


def finish(record, started, equivalents, pairs):
    """Apply the recorded equivalents and count."""
    record["seconds"] = round(time.monotonic() - started, 1)
    return classify(record, equivalents, {m.id for m, _ in pairs})


def classify(record, equivalents, existing=None):
    """(Re)apply a lesson's recorded equivalents to its results, and count: a survivor
    recorded as equivalent is `equivalent`, an equivalent no longer recorded survives
    again.  existing: the ids of all its mutants now, for stale records."""
    for e in record["mutants"]:
        reason = equivalents.get(e["id"])
        e.pop("recorded_equivalent", None)
        if e["status"] == "equivalent" and reason is None:
            e["status"] = "survived"
            e.pop("reason", None)
        if reason is None:
            continue
        if e["status"] in ("survived", "equivalent"):
            e["status"] = "equivalent"
            e["reason"] = reason
        elif e["status"] == "killed":
            e["recorded_equivalent"] = reason
    if existing is not None:
        record["stale_equivalents"] = sorted(i for i in equivalents if i not in existing)
    record["wrong_equivalents"] = [e["id"] for e in record["mutants"] if e.get("recorded_equivalent")]
    record["counts"] = count(record["mutants"])
    return record


def count(entries):
    c = {k: 0 for k in ("mutants", "stillborn", "killed", "timeouts", "unstable", "survived",
                        "equivalent", "errors")}
    for e in entries:
        c["mutants"] += 1
        s = e["status"]
        c[{"error": "errors"}.get(s, s)] += 1
        if e.get("timeout"):
            c["timeouts"] += 1
        if e.get("unstable"):
            c["unstable"] += 1
    judged = c["killed"] + c["survived"]
    c["kill_rate"] = round(c["killed"] / judged, 4) if judged else None
    return c


def git_commit():
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "solutions", "chapters", "grader"],
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    return (res.stdout.strip() or "?") + ("+changes" if dirty else "")


# -- reports --------------------------------------------------------------------------

def rate(c):
    return "-" if c.get("kill_rate") is None else f"{100 * c['kill_rate']:.1f}%"


def duration(seconds):
    seconds = int(round(seconds or 0))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def table(records):
    head = (f"{'lesson':<18} {'mutants':>7} {'stillborn':>9} {'killed':>6} {'timeout':>7} "
            f"{'unstable':>8} {'survived':>8} {'equiv':>5} {'rate':>7} {'time':>7}")
    lines = [head, "(killed counts the timeouts and the unstable kills; rate = killed / (killed + survived))"]

    def row(name, c, seconds):
        return (f"{name:<18} {c['mutants']:>7} {c['stillborn']:>9} {c['killed']:>6} {c['timeouts']:>7} "
                f"{c['unstable']:>8} {c['survived']:>8} {c['equivalent']:>5} {rate(c):>7} {duration(seconds):>7}")
    for r in records:
        lines.append(row(r["lesson"], r["counts"], r.get("seconds"))
                     + ("  (partial)" if r.get("partial") else "")
                     + (f"  {r['error']}" if r.get("error") else ""))
    if len(records) > 1:
        lines.append(row("all", count([e for r in records for e in r["mutants"]]),
                         sum(r.get("seconds", 0) for r in records)))
    return "\n".join(lines)


def report(records, out=print):
    out("")
    out(table(records))
    for r in records:
        survivors = [e for e in r["mutants"] if e["status"] == "survived"]
        notes = []
        for e in r["mutants"]:
            if e.get("recorded_equivalent"):
                notes.append(f"recorded as equivalent but killed by {e['killed_by']}: {e['id']} "
                             f"-- remove it from {EQUIVALENTS}")
            if e["status"] == "error":
                notes.append(f"could not be graded: {e['id']}: {first_line(e.get('error'))}")
            if e.get("unstable"):
                notes.append(f"killed once, not twice, by {e['killed_by']}: {e['id']} ({e['description']})")
        notes += [f"stale id in {EQUIVALENTS} (no such mutant now): {i}" for i in r.get("stale_equivalents", [])]
        if not survivors and not notes:
            continue
        out(f"\n== {r['lesson']}: {len(survivors)} surviving mutant(s)")
        for n in notes:
            out(f"  note: {n}")
        for e in survivors:
            skipped = f"  (skipped: {', '.join(e['skipped'])})" if e.get("skipped") else ""
            out(f"\n-- {e['id']}\n   {e['description']}{skipped}")
            out("   " + e["diff"].rstrip().replace("\n", "\n   "))


def save(record):
    """Keep a complete run as the lesson's last results (for --write-docs)."""
    if record.get("partial"):
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{record['lesson']}.json"
    lessons.write_json_atomic(path, record)
    return path


def last_results(lesson_list):
    """The kept results of the last complete run of each lesson (equivalents as recorded now)."""
    records = []
    for lesson in lesson_list:
        f = RESULTS / f"{lesson.name}.json"
        if f.exists():
            records.append(classify(json.loads(f.read_text()), load_equivalents(lesson.name)))
    return records


def write_docs(path=DOCS):
    """docs/mutation.md from the last complete run of each lesson: counts only (the
    docs ship to students; the survivors' diffs would show the solutions)."""
    records = last_results(lessons.all_lessons())
    ops = {}
    for r in records:
        for e in r["mutants"]:
            o = ops.setdefault(e["op"], {"killed": 0, "survived": 0, "equivalent": 0, "stillborn": 0})
            if e["status"] in o:
                o[e["status"]] += 1
    lines = [
        "# Mutation testing",
        "",
        "How well do the graders catch a program that is wrong in one small way?  "
        "`./lab mutate NN` takes the lesson's reference solution, makes each mistake of a list "
        "of typical ones in it -- a dropped `htons`, `close` or `setsockopt`, a read loop run "
        "once, an `EINTR` treated as an error, `<` for `<=`, `SHUT_RDWR` for `SHUT_WR`, a "
        "missing `SOCK_NONBLOCK` or `MSG_NOSIGNAL`, a smaller buffer, a `memcpy` that stops at a "
        "NUL -- and grades every such *mutant* with the lesson's tests.  A mutant the tests fail "
        "is *killed*; one they pass *survives*: a test is missing, unless the mutant behaves "
        "exactly like the solution (*equivalent*, recorded with the reason in "
        "`solutions/NN-slug/equivalent-mutants.json`).  Mutants that do not compile with the "
        "lab's flags (*stillborn*) are not counted.  The goal is 95 % of the non-equivalent "
        "mutants killed in every lesson.",
        "",
        "| lesson | mutants | stillborn | killed | survived | equivalent | kill rate | run |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        c = r["counts"]
        lines.append(f"| {r['lesson']} | {c['mutants']} | {c['stillborn']} | {c['killed']} | "
                     f"{c['survived']} | {c['equivalent']} | {rate(c)} | {r['date'][:10]}, "
                     f"{r['commit']}, {duration(r.get('seconds'))} |")
    if records:
        total = count([e for r in records for e in r["mutants"]])
        lines.append(f"| **all** | {total['mutants']} | {total['stillborn']} | {total['killed']} | "
                     f"{total['survived']} | {total['equivalent']} | {rate(total)} | |")
    else:
        lines.append("| (no results yet: run `./lab mutate`) | | | | | | | |")
    lines += ["", "By operator (all lessons):", "",
              "| operator | killed | survived | equivalent | stillborn |", "|---|---:|---:|---:|---:|"]
    lines += [f"| `{op}` | {o['killed']} | {o['survived']} | {o['equivalent']} | {o['stillborn']} |"
              for op, o in sorted(ops.items())]
    lines += ["", "Killed includes mutants whose run hit the time limit (the graders noticed a hang).",
              "Regenerate this page with `./lab mutate --write-docs` after `./lab mutate` "
              "(maintainers: the solutions are needed).", ""]
    Path(path).write_text("\n".join(lines))
    return path, len(records)


def write_json(path, records):
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lessons.write_json_atomic(out, {"lessons": records,
                                    "totals": count([e for r in records for e in r["mutants"]])})
    print(f"\nwrote {out}")


# -- ./lab mutate ----------------------------------------------------------------------

def add_parser(sub):
    m = sub.add_parser("mutate", help="mutation testing: mutate the reference solution, grade each mutant")
    m.add_argument("lesson", nargs="?", help="one lesson (default: all)")
    m.add_argument("--jobs", type=int, default=2, help="mutants graded at once (default 2)")
    m.add_argument("--timeout", type=float,
                   help="seconds one mutant's grading may take (default: 5x the solution's, at least 60)")
    m.add_argument("--json", metavar="FILE", help="write the results as JSON")
    m.add_argument("--only", action="append", metavar="ID",
                   help="only mutants whose id starts with ID or matches it as a glob (repeatable)")
    m.add_argument("--op", action="append", metavar="OP", help="only this operator (glob, repeatable)")
    m.add_argument("--list", action="store_true", help="list the mutants, build and grade nothing")
    m.add_argument("--no-confirm", action="store_true",
                   help="do not run a killing test a second time")
    m.add_argument("--last", action="store_true",
                   help="report the last complete run of each lesson again; grade nothing")
    m.add_argument("--write-docs", action="store_true",
                   help="regenerate docs/mutation.md from the last results; grade nothing")
    return m


def cmd_mutate(args):
    if args.json and Path(args.json).resolve().parent == RESULTS.resolve():
        print(f"--json {args.json}: {RESULTS.relative_to(REPO)}/ holds the kept results of each "
              "lesson's last run (for --last and --write-docs); write the report elsewhere")
        return 2
    if args.write_docs:
        path, n = write_docs()
        print(f"wrote {path.relative_to(REPO)} from the last results of {n} lesson(s)")
        return 0
    if not (REPO / "solutions").is_dir():
        print("./lab mutate needs the reference solutions (solutions/), which a student "
              "repository does not have")
        return 2
    lesson_list = lessons.select(args.lesson) if args.lesson else lessons.all_lessons()
    if args.last:
        records = last_results(lesson_list)
        if not records:
            print("no results kept yet (build/mutate/): run ./lab mutate first")
            return 1
        report(records)
        write_json(args.json, records)
        return 0
    ci = require_clang()
    if ci is None:
        return 1
    from grader import mutations
    if args.list:
        for lesson in lesson_list:
            pairs = select(mutations.mutants_of_lesson(lesson.name, ci), args.only, args.op)
            for m, _ in pairs:
                print(f"{m.id}  {m.description}")
        return 0
    from grader.build import BUILD, SOLUTIONS, build, compiler_errors
    from grader.testrun import isolation_prefix
    ok, log = build(SOLUTIONS, lesson_list)
    if not ok:
        print(f"the solutions do not build:\n{compiler_errors(log)}")
        return 1
    grader = Grader(isolation_prefix())
    records = []
    try:
        for lesson in lesson_list:
            record = run_lesson(lesson.name, grader, BUILD / "solutions", max(1, args.jobs),
                                args.timeout, args.only, args.op, not args.no_confirm, ci=ci)
            save(record)
            records.append(record)
    except KeyboardInterrupt:
        grader.stop_all()
        print("\ninterrupted")
        if not records:
            return 130
    report(records)
    write_json(args.json, records)
    bad = any(r.get("error") or r["counts"]["survived"] or r["counts"]["errors"]
              or r.get("stale_equivalents") or r.get("wrong_equivalents") for r in records)
    return 1 if bad else 0
