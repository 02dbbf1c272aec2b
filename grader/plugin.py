"""pytest plugin: options, the `lab` fixture, points, and teaching reports.

Loaded by pytest.ini (`-p grader.plugin`).  What a run learns is kept in one
SessionState, stored on pytest's config under a StashKey (as pytest's own plugins do).
Records and formats live in grader/results.py.  Reports:
  - the terminal: one line per test (✓/✗ with points), the teaching report under
    each failure, per-lesson totals and a final "Score: x/y" line;
  - --results-json FILE: Gradescope's results.json format;
  - JUnit XML: pytest's own --junitxml, with points, title and lesson as properties
    of each testcase (./lab grade --junit FILE).
"""
import json
import os
import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from grader import calibrate, identity, isolation, results
from grader.failure import GradeFailure, Skipped
from grader.lab import Lab
from grader.proc import TODO_EXIT_STATUS

MARK = {"passed": "✓", "failed": "✗", "skipped": "-"}
# xdist puts "[gw0] linux -- Python 3.11.2 /usr/bin/python3" above a worker's failure
XDIST_HEADER = re.compile(r"\A\[gw\d+\] [^\n]* -- Python [^\n]*\n")


def pytest_addoption(parser):
    g = parser.getgroup("socklab")
    g.addoption("--solutions", dest="socklab_solutions", action="store_true",
                help="grade the reference solutions (build/solutions) instead of the student build")
    g.addoption("--sanitize", dest="socklab_sanitize", action="store_true",
                help="use the ASan+UBSan build")
    g.addoption("--build-dir", dest="socklab_build_dir", default=None,
                help="grade the programs of this build directory")
    g.addoption("--results-json", dest="socklab_results_json", default=None,
                help="write Gradescope-style results.json here")
    g.addoption("--raw-results", dest="socklab_raw_results", default=None,
                help="write every test's outcome, points and duration as JSON (used by ./lab)")
    g.addoption("--raw-results-fd", dest="socklab_raw_fd", type=int, default=None,
                help="write the raw results as JSON to this inherited file descriptor (batch "
                     "grading: a file could be forged by the program under test)")
    g.addoption("--runner-uid", dest="socklab_runner_uid", type=int, default=None,
                help="run the programs under test as this uid (grading that counts; needs root)")
    g.addoption("--builder-uid", dest="socklab_builder_uid", type=int, default=None,
                help="compile submitted code (sanitizer copies) as this uid")
    g.addoption("--programs-cgroup-fd", dest="socklab_programs_cgroup_fd", type=int, default=None,
                help="an inherited descriptor on a cgroup.procs: each program under test moves "
                     "itself there before its exec (batch grading: the grader keeps its CPU share)")
    g.addoption("--socklab-quiet", dest="socklab_quiet", action="store_true",
                help="print only failures and the totals")
    g.addoption("--first-failure-only", dest="socklab_first_only", action="store_true",
                help="explain only the first failing test in full (the others get one line)")
    g.addoption("--fail-on-skip", dest="socklab_fail_on_skip", action="store_true",
                help="a skipped test makes the run fail (Classroom: a step passes on exit 0)")


def pytest_configure(config):
    for line in ("points(n): the test is worth n points (default 1)",
                 "hidden: hidden from students until after the due date",
                 "needs_netns: needs a private network namespace",
                 "slow: waits on timers for seconds; scheduled first",
                 "contract(program, *phrases): the README Contract bullets the test checks"):
        config.addinivalue_line("markers", line)
    if not config.option.collectonly:       # ./lab batch collects in its own process
        isolation.become_subreaper()
    identity.configure(config.getoption("socklab_runner_uid"), config.getoption("socklab_builder_uid"),
                       config.getoption("socklab_programs_cgroup_fd"))
    if config.getoption("socklab_raw_fd") is not None:
        # nothing of ours in /proc/<pid>/fd for a program to open
        isolation.make_undumpable()
    config.stash[STATE] = SessionState()


class SessionState:
    """What one pytest run keeps: every test's raw result (grader/results.py), when it
    started, each collected item's place in its file, and the lab of each running test."""

    def __init__(self):
        self.results = {}
        self.started = time.monotonic()
        self.index = {}         # nodeid -> position in its lesson's files (the board's order)
        self.labs = {}          # nodeid -> the Lab of a test still running


STATE = pytest.StashKey[SessionState]()


def _state(config):
    return config.stash.get(STATE, None)


def pytest_collection_modifyitems(session, config, items):
    for i, item in enumerate(items):
        config.stash[STATE].index[item.nodeid] = i
    # tests that wait on kernel timers start first, so parallel workers overlap them
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def lab(request, tmp_path):
    """Programs, peers, probes and captures for one test, all cleaned up after it."""
    the_lab = Lab(request, tmp_path)
    labs = request.config.stash[STATE].labs
    labs[request.node.nodeid] = the_lab
    yield the_lab
    the_lab.teardown()


# -- per-test metadata and reports ----------------------------------------------

def _format_failure(item, excinfo):
    err = excinfo.value
    lines, parts = [], []      # the text, and its sections for Markdown (feedback_md)

    def section(title, text):
        text = str(text).rstrip() or "(empty)"
        body = textwrap.indent(text, " " * 12).lstrip()
        lines.append(f"{title:<10}{body}")
        parts.append((title, text))

    if isinstance(err, GradeFailure):
        section("expected", err.expected)
        section("happened", err.happened)
        extra = dict(err.sections)
    else:
        # a plain assert or an unexpected exception: still useful, less polished
        section("problem", f"{type(err).__name__}: {err}")
        tb = excinfo.traceback[-1]
        section("where", f"{Path(str(tb.path)).name}:{tb.lineno + 1}")
        extra = {}
    for title, text in extra.items():
        section(title, text)
    the_lab = _state(item.config).labs.get(item.nodeid)
    if the_lab is not None:
        for title, text in the_lab.report_sections():
            if extra.get(title) != text:  # a test may already have passed the same wire text
                section(title, text)
    hint = err.hint if isinstance(err, GradeFailure) else None
    if the_lab is not None and any(p.returncode == TODO_EXIT_STATUS for p in the_lab.programs):
        # the most common first failure: say plainly what to do about it
        hint = ("your program reached a TODO(...) call and stopped (stderr names the file and "
                "line): write that part, then delete the TODO call" + (f"; then: {hint}" if hint else ""))
    if hint:
        section("hint", hint)
    return "\n".join(lines), parts


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "setup":
        # on the item, so every later report (and pytest's JUnit XML, which reads the
        # teardown report) carries them as properties
        state = _state(item.config)
        props = [("points", results.points(item)), ("title", results.title(item)),
                 ("lesson", results.lesson(item)), ("hidden", bool(item.get_closest_marker("hidden"))),
                 ("index", state.index.get(item.nodeid, 0)), ("schema", results.SCHEMA)]
        item.user_properties.extend(props)
        rep.user_properties.extend(props)
    the_lab = _state(item.config).labs.get(item.nodeid)
    if rep.when == "call" and the_lab is not None and the_lab.measured:
        measured = ("measured", "; ".join(the_lab.measured))
        item.user_properties.append(measured)
        rep.user_properties.append(measured)
    if rep.when == "call" and the_lab is not None and the_lab.programs:
        # how each program ended, before teardown kills those still running
        ended = ("programs", [p.summary() for p in the_lab.programs if p.rights == "student"])
        item.user_properties.append(ended)
        rep.user_properties.append(ended)
    if rep.failed and rep.when == "call" and call.excinfo is not None:
        late = ran_out_of_time(call.excinfo.value)
        factor = calibrate.slowness() if late else 1.0
        if factor > SLOW_FOR_A_TIMEOUT:
            # a correct program ends far within these bounds on the machine they were set
            # on: on one this slow, running past them is the machine's doing
            rep.outcome = "skipped"
            rep.longrepr = (str(item.path), item.location[1] or 0,
                            f"this machine is too slow for this check right now "
                            f"({calibrate.describe(factor)}): {late}")
            kind = ("skip_kind", "too-slow")
            item.user_properties.append(kind)
            rep.user_properties.append(kind)
    if rep.skipped and call.excinfo is not None and isinstance(call.excinfo.value, Skipped):
        kind = ("skip_kind", call.excinfo.value.kind)
        item.user_properties.append(kind)
        rep.user_properties.append(kind)
    if rep.failed and call.excinfo is not None and rep.when in ("setup", "call"):
        rep.longrepr, rep.socklab_sections = _format_failure(item, call.excinfo)
    # the lab object holds programs and sockets: drop it once the test is over
    if rep.when == "teardown":
        _state(item.config).labs.pop(item.nodeid, None)


class ResultCollector:
    """Collects each test's outcome, points and report (on xdist's controller too).
    A plugin object, registered with the config: pytest_runtest_logreport is given no
    config, and this way the state is the run's own, not a module global's."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        state = _state(self.config)
        if state is not None:
            record(state.results, report)


# A test that ran out of time -- the last-resort bound of pytest.ini, or a tool of the
# grader's own (iptables, gcc) timing out -- on a machine more than this many times slower
# than the reference (grader/calibrate.py) is skipped as too slow, not failed.
SLOW_FOR_A_TIMEOUT = 3.0


def ran_out_of_time(exc):
    """What ran out of time, if `exc` says a bound of the grader's own expired (never a
    student program's: those are the graders' verdicts), else None."""
    if str(exc).startswith("Timeout >"):        # pytest-timeout's last resort
        return f"the test ran past its last-resort bound ({str(exc).split()[1]})"
    if isinstance(exc, subprocess.TimeoutExpired):
        cmd = exc.cmd if isinstance(exc.cmd, (list, tuple)) else str(exc.cmd).split()
        program = str(cmd[0]) if cmd else ""
        if program and ("/" not in program or program.startswith(("/usr/", "/bin/", "/sbin/"))):
            return f"`{Path(program).name}` (the grader's own tool) took over {exc.timeout:g} s"
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    session.config.pluginmanager.register(ResultCollector(session.config), "socklab-results")


def record(results_by_node, report):
    """Fold one phase's report (setup, call, teardown) into the test's raw result."""
    props = dict(report.user_properties)
    entry = results_by_node.setdefault(report.nodeid, {"outcome": "passed", "text": "", "duration": 0.0})
    if props:
        entry.update(props)
    entry["duration"] += report.duration
    if report.when in ("setup", "call"):
        if report.failed:
            entry.update(outcome="failed", text=XDIST_HEADER.sub("", report.longreprtext, count=1),
                         sections=getattr(report, "socklab_sections", None))
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longreprtext
            reason = re.sub(r"^(?:[\w.]+\.)?Skipped: ", "", reason)   # pytest's prefix, ours too
            entry.update(outcome="skipped", text=reason)
    elif report.failed and entry["outcome"] == "passed":
        entry.update(outcome="failed", text="cleanup after the test failed: " + report.longreprtext)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = _state(config)
    by_node = state.results if state else {}
    totals = results.lesson_totals(by_node)
    if not totals:
        return
    tr = terminalreporter
    quiet = config.getoption("socklab_quiet")
    first_only = config.getoption("socklab_first_only")
    explained = 0
    tr.write_line("")
    for lesson, t in totals.items():
        name = lesson.replace("-", " ", 1)
        unmet = results.lesson_skip_reason(t)
        if unmet:
            # a machine without what the lesson needs (io_uring): say it once, not per test
            tr.write_line(f"- {name}: all {t['skipped']} tests skipped: {unmet}", yellow=True)
            tr.write_line(f"  {name}: not graded here", bold=True)
            continue
        for r in t["tests"]:
            if quiet and r["outcome"] == "passed":
                continue
            pts = f"{r['points'] if r['outcome'] == 'passed' else 0}/{r['points']}"
            label = f"{MARK[r['outcome']]} {name} › {r['title']}"
            tr.write_line(f"{label:<74} {pts:>5}", green=r["outcome"] == "passed",
                          red=r["outcome"] == "failed", yellow=r["outcome"] == "skipped")
            if r["outcome"] == "passed" and r.get("measured"):
                tr.write_line(f"  measured: {r['measured']}")
            if r["outcome"] == "failed" and r["text"] and not (first_only and explained):
                tr.write_line(textwrap.indent(r["text"].rstrip(), "  "))
                explained += 1
            elif r["outcome"] == "skipped" and r["text"]:
                reason = r["text"].strip().splitlines()[0]
                if r.get("skip_kind") == "no-netns":
                    reason = "skipped: needs a private network namespace (see the note below)"
                tr.write_line("  " + reason)
        tr.write_line(f"  {name}: {t['score']}/{t['max']} points"
                      f" ({t['passed']} passed, {t['failed']} failed"
                      + (f", {t['skipped']} skipped" if t["skipped"] else "") + ")", bold=True)
    # said once, whichever process (this one or an xdist worker) found out
    reasons = {r["text"].split(": ", 1)[-1].strip() for r in by_node.values()
               if r["outcome"] == "skipped" and r.get("skip_kind") == "no-netns"}
    if reasons or isolation.netns_unavailable_reason():
        why = sorted(reasons)[0] if reasons else isolation.netns_unavailable_reason()
        tr.write_line(f"note: {why}; tests that need one were skipped", yellow=True)
    failed = sum(t["failed"] for t in totals.values())
    if first_only and failed > 1:
        tr.write_line(f"{failed} tests fail; the first one is explained above. Fix it first: later "
                      "ones often fail for the same reason (./lab check N --all explains every one).")
    score = sum(t["score"] for t in totals.values())
    maximum = sum(t["max"] for t in totals.values())
    tr.write_line(f"Score: {score}/{maximum}", bold=True)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput"):
        return  # xdist worker: the controller writes the files
    if config.getoption("socklab_fail_on_skip"):
        fail_if_skipped(session)
    state = _state(config)
    fd = config.getoption("socklab_raw_fd")
    if fd is not None:
        with os.fdopen(fd, "w") as f:
            json.dump(state.results, f)
    raw = config.getoption("socklab_raw_results")
    if raw:
        results.write_json_atomic(raw, state.results)
    path = config.getoption("socklab_results_json")
    if path:
        elapsed = time.monotonic() - state.started
        results.write_json_atomic(path, results.gradescope_results(state.results, elapsed))


def fail_if_skipped(session):
    """--fail-on-skip: a test that did not run must not pass as if it had (a Classroom step
    scores by exit status alone).  The board below says why each one was skipped."""
    skipped = [r for r in _state(session.config).results.values() if r["outcome"] == "skipped"]
    if not skipped:
        return
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    if terminal:
        terminal.write("\n")  # pytest's progress line is still open
        terminal.write_line(f"--fail-on-skip: {len(skipped)} skipped, so this run fails: a test "
                            "that did not run earns no points (why: below)", yellow=True)
