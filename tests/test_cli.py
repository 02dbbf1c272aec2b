"""The ./lab command line, as a student and an instructor use it."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def lab(tmp_path):
    env = dict(os.environ, SOCKLAB_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1")

    def run(*args, check=True):
        res = subprocess.run([REPO / "lab", *args], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=slowed(240), stdin=subprocess.DEVNULL)
        if check:
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res
    return run


def test_board_lists_the_lessons_and_what_to_do_next(lab):
    out = lab().stdout
    assert "01  Sockets and addresses" in out and "not started" in out
    assert "./lab check 01" in out


def test_hints_come_one_at_a_time(lab):
    first = lab("hint", "01").stdout
    assert "Hint 1/" in first and "Hint 2/" not in first
    second = lab("hint", "1").stdout
    assert "Hint 2/" in second
    again = lab("hint", "sockets", "--reset").stdout
    assert "Hint 1/" in again and "Hint 2/" not in again


def test_unknown_lesson_is_named_with_the_choices(lab):
    res = lab("check", "77", check=False)
    assert res.returncode == 2
    assert "no lesson '77'" in res.stdout and "01-sockets" in res.stdout


def test_check_reports_progress_on_the_board(lab):
    res = lab("check", "01", check=False)
    assert res.returncode == 1
    assert "Score: 0/" in res.stdout
    assert "expected" in res.stdout and "hint" in res.stdout
    assert "failing" in lab().stdout


def test_grade_writes_gradescope_results(lab, tmp_path):
    out = tmp_path / "results.json"
    lab("grade", "--solutions", "--json", str(out), "01")
    data = json.loads(out.read_text())
    assert {"score", "execution_time", "tests", "output", "visibility"} <= set(data)
    tests = [t for t in data["tests"] if t["name"] != "compile"]
    slow = [t["name"] for t in tests if t["output"].endswith("ask for a regrade")]
    if slow:        # a timed test the machine was too busy to run: no verdict on the format
        pytest.skip(f"the machine was too busy for {len(slow)} timed tests ({slow[0]})")
    failed = [f"{t['name']}: {t['output'][:400]}" for t in tests if t["status"] != "passed"]
    assert tests and not failed, "\n".join(failed)
    assert data["score"] == sum(t["max_score"] for t in tests)
    for t in tests:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)


def test_gradescope_lists_skipped_tests_with_no_points_and_why():
    """A test the grading machine could not run (no network namespaces in Gradescope's
    container, say) is listed with 0 points and the reason, so the total Gradescope shows
    is the one the course advertises."""
    from grader import results
    raw = {
        "chapters/06-shutdown/test_s.py::test_a": {"outcome": "passed", "points": 2, "title": "a",
                                                   "lesson": "06-shutdown", "text": ""},
        "chapters/06-shutdown/test_s.py::test_b": {
            "outcome": "skipped", "points": 3, "title": "b", "lesson": "06-shutdown", "skip_kind": "no-netns",
            "text": "needs a private network namespace: unshare(CLONE_NEWNET) is not permitted here"},
        "chapters/06-shutdown/test_s.py::test_c": {"outcome": "skipped", "points": 1, "title": "c",
                                                   "lesson": "06-shutdown", "skip_kind": "too-slow",
                                                   "text": "this machine is too slow for this check right now"},
    }
    data = results.gradescope_results(raw, 1.0)
    assert sum(t["max_score"] for t in data["tests"]) == 6 and data["score"] == 2
    b, c = data["tests"][1], data["tests"][2]
    assert b["score"] == 0 and b["status"] == "failed"
    assert b["output"] == ("not run on this grading machine: needs a private network namespace: "
                           "unshare(CLONE_NEWNET) is not permitted here")
    assert c["output"].endswith("ask for a regrade")


def test_run_executes_one_program(lab):
    res = lab("run", "--solutions", "01", "addr", "127.0.0.1", "80", check=False)
    assert "port 80 bytes 00 50" in res.stdout, res.stdout + res.stderr


def test_grade_writes_junit_xml_with_points(lab, tmp_path):
    """--junit: one testcase per test, its points, title and lesson as properties."""
    import xml.etree.ElementTree as ET
    xml = tmp_path / "junit.xml"
    lab("grade", "--solutions", "--json", str(tmp_path / "r.json"), "--junit", str(xml), "01")
    cases = list(ET.parse(xml).getroot().iter("testcase"))
    assert cases
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props.get("lesson") == "01-sockets" and props.get("points", "").isdigit()
        assert props.get("title")


def proc_file(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def descendants(root):
    """(pid, start time) of every living process below root, found through parent pids.
    (Student programs get a clean environment, so an environment marker would not reach them.)"""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            stat = proc_file(p, "stat").rsplit(b")", 1)[-1].split()
            if len(stat) > 19:
                children.setdefault(int(stat[1]), []).append((int(p), int(stat[19])))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def still_running(seen):
    """those of seen (pid, start time) pairs that are still the same living process."""
    alive = set()
    for pid, start in seen:
        stat = proc_file(pid, "stat").rsplit(b")", 1)[-1].split()
        if len(stat) > 19 and int(stat[19]) == start and stat[0] != b"Z":
            alive.add((pid, start))
    return alive


def test_ctrl_c_during_check_says_interrupted_and_leaves_nothing_running(tmp_path):
    """Ctrl-C (SIGINT to the foreground process group) while the graders run: ./lab waits
    for their teardown, prints `interrupted`, exits 130, no traceback, no process left."""
    import signal
    import time
    env = dict(os.environ, NO_COLOR="1", SOCKLAB_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.Popen([REPO / "lab", "check", "12", "--solutions"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,   # a process group, as a terminal makes
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen, started = set(), False
    deadline = time.monotonic() + slowed(60)
    while not started and time.monotonic() < deadline and proc.poll() is None:   # until a server runs
        seen |= descendants(proc.pid)
        started = any(b"/chapters/12-concurrency/" in proc_file(p, "cmdline") for p, _ in seen)
        time.sleep(0.02)
    assert proc.poll() is None, "the check ended before any server started:\n" + proc.stdout.read()[-3000:]
    if not started:         # still building or starting: an interrupt now would test nothing
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.skip(f"no server of lesson 12 started within {slowed(60):.0f} s: this machine is too slow")
    os.killpg(proc.pid, signal.SIGINT)
    seen |= descendants(proc.pid)
    out, _ = proc.communicate(timeout=slowed(60))
    assert proc.returncode == 130 and "interrupted" in out and "Traceback" not in out, out[-3000:]
    deadline = time.monotonic() + slowed(20)
    while still_running(seen) and time.monotonic() < deadline:
        time.sleep(0.05)      # SIGKILLed programs may still be on their way out (a busy machine)
    left = still_running(seen)
    assert not left, [proc_file(pid, "cmdline").replace(b"\0", b" ")[:200] for pid, _ in left]


def test_lesson_needing_io_uring_is_skipped_in_one_line_where_it_is_missing(lab, tmp_path):
    """Where io_uring cannot be set up (SOCKLAB_NO_IO_URING pretends so), lesson 14 is
    skipped with one line saying why and how to get it; the board says it cannot run
    here instead of pointing at it; results.json says it was not graded."""
    env = dict(os.environ, SOCKLAB_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1",
               SOCKLAB_NO_IO_URING="1")

    def run(*args):
        return subprocess.run([REPO / "lab", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=slowed(240), stdin=subprocess.DEVNULL)
    res = run("check", "14")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = [l for l in res.stdout.splitlines() if "needs io_uring" in l]
    assert len(lines) == 1 and "vagrant up" in lines[0], res.stdout
    assert "14 io-uring: not graded here" in res.stdout
    board = run().stdout
    assert "cannot run here: needs io_uring" in board, board
    results = tmp_path / "results.json"
    run("grade", "--json", str(results), "14")
    data = json.loads(results.read_text())
    assert "not graded here, needs io_uring" in data["output"], data["output"]
