"""Inner tests run by tests/test_robustness.py: each one PASSES when the grader
handled a hostile program correctly."""
import re
import time

import pytest

from grader.failure import GradeFailure


def test_flood_is_cut_off_and_reported(lab):
    prog = lab.start("flood")
    t0 = time.monotonic()
    with pytest.raises(GradeFailure):
        prog.expect_line("a line it never prints", timeout=10)
    assert time.monotonic() - t0 < 5, "a flood must end the wait early"
    assert "KiB" in prog.status()


def test_crash_is_reported_with_its_signal(lab):
    prog = lab.start("crash")
    prog.expect_line("about to crash")
    assert prog.wait_exit(2) == -11
    assert "SIGSEGV" in prog.status() and "crash" in prog.status()


def test_hang_is_bounded(lab):
    prog = lab.start("hang")
    t0 = time.monotonic()
    with pytest.raises(GradeFailure, match="still running"):
        prog.expect_exit(0, timeout=0.3)
    # a miss is waited out once more by what the machine's slowness adds: still bounded
    assert time.monotonic() - t0 < lab.scaled(0.3) + 0.7


def test_orphan_child_is_left_for_teardown(lab):
    port = lab.port()
    prog = lab.start("orphan", port)
    prog.expect_exit(0)
    # the grandchild lives on, in its own session, still holding the port
    assert lab.sockets("tcp", state="LISTEN", local_port=port)


def test_sigpipe_death_is_explained(lab):
    listener = lab.listen()
    prog = lab.start("sigpipe", listener.port)
    peer = listener.accept(program=prog)
    peer.close()
    assert prog.wait_exit(2) == -13
    assert re.search(r"SIGPIPE.*EPIPE", prog.status())


def test_todo_exit_is_named(lab):
    prog = lab.start("hang")
    prog.kill()
    assert "SIGKILL" in prog.status()
