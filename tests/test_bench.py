"""bench/ still builds and runs end to end (a smoke run, not a measurement: the numbers
of a 0.3 s run on a busy CI machine mean nothing).  It runs in a network namespace of
its own, so its thousands of connections never crowd the loopback other tests use."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
SERVERS = ("echo_libevent", "echo_libuv", "echo_socklab", "echo_epoll")   # + echo_uring where it runs


def bench_packages():
    """`./lab test` installs them before the tests start (as root); never here, where two
    tests at once would race for apt's lock."""
    if not all(Path(h).exists() for h in ("/usr/include/event2/event.h", "/usr/include/uv.h")):
        pytest.skip("libevent-dev and libuv1-dev are not installed: sudo bash tools/setup.sh --bench")


def in_own_netns(argv):
    # root of any user namespace (real, or `unshare -r`) may make a network namespace
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
    if not shutil.which("unshare") or subprocess.run([*unshare, "true"], capture_output=True).returncode:
        pytest.skip("no network namespace here for bench/'s many connections")
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "bench", *argv]


def test_bench_builds_and_prints_every_figure(tmp_path):
    """bench/run.py builds the echo servers (libevent, libuv, the lesson-10 reactor, and the
    two limit rows: bare epoll, and lesson 14's io_uring server where io_uring works) and the
    load generator, and reports requests/s, latency and memory for each, with ratios to
    libevent."""
    bench_packages()
    out = tmp_path / "bench.txt"
    res = subprocess.run(in_own_netns([sys.executable, str(REPO / "bench" / "run.py"),
                                       "--seconds", "0.3", "--rounds", "1", "--idle", "300",
                                       "--out", str(out), "--build-dir", str(tmp_path / "bin")]),
                         capture_output=True, text=True, timeout=slowed(180), stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = out.read_text()
    from grader.requirements import io_uring_unavailable_reason
    uring = () if io_uring_unavailable_reason() else ("echo_uring",)
    for name in SERVERS + uring:
        rows = re.findall(rf"^{name}\s+(\d+)\s+\d+ .*\|\s+(?:[\d.]+|nan)", text, re.M)
        assert rows == ["1", "100", "1000"], f"{name}: load rows {rows}\n{text}"
        assert re.search(rf"^{name}\s+RSS\s+[\d.]+ MiB", text, re.M), text
