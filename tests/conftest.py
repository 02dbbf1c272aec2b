"""Shared fixtures of the project's own tests."""
import fcntl
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_slowness = []


def slowed(seconds):
    """A bound on a whole command the tests run (a lesson graded, a class batched, a
    release tested), set on a quiet 2-core machine, stretched by how much slower this
    one is now (grader/calibrate.py, measured once per test process): under software
    emulation -- the VM test -- the same work takes 10 to 30 times longer, and a bound
    that kills it early fails a test that had nothing wrong."""
    if not _slowness:
        from grader import calibrate
        _slowness.append(min(calibrate.slowness(), 40.0))
    return seconds * _slowness[0]


def pytest_collection_modifyitems(config, items):
    """Tests marked `image` build the OCI image and grade in containers: minutes, and
    podman -- not in `./lab test` (CI's 15 minutes); SOCKLAB_IMAGE_TESTS=1 runs them."""
    stretch_timeouts(config, items)
    # the tests of minutes first: started last, one of them would be the run's tail, with
    # the other worker idle (xdist hands out tests in this order)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if os.environ.get("SOCKLAB_IMAGE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="builds the OCI image (minutes): run with SOCKLAB_IMAGE_TESTS=1")
    for item in items:
        if "image" in item.keywords:
            item.add_marker(skip)


def stretch_timeouts(config, items):
    """pytest-timeout's bound on each test (pytest.ini, or its own mark), stretched like
    slowed() on a machine slower than the one it was set on."""
    base = float(config.getini("timeout") or 0)
    if not base or slowed(1) < 1.5:
        return
    for item in items:
        mark = item.get_closest_marker("timeout")
        seconds = float(mark.args[0]) if mark and mark.args else base
        item.add_marker(pytest.mark.timeout(slowed(seconds)), append=False)


@pytest.fixture(scope="session")
def solutions_build():
    """The reference solutions, built once and complete before any test uses them.

    Every xdist worker asks for it; a file lock makes the others wait until the first
    has finished building (then their own build is a quick no-op), so no test ever
    grades a half-built tree."""
    out = Path(os.environ.get("SOCKLAB_SELFTEST_BUILD", REPO / "build" / "solutions"))
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "CMakeCache.txt").exists():
            subprocess.run(["cmake", "-S", REPO, "-B", out, "-DSOCKLAB_SOLUTIONS=ON",
                            "-DSOCKLAB_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
        # -k: a chapter that does not build must not hide the others; the tests check
        # that the programs they need exist
        subprocess.run(["cmake", "--build", out, "-j", "2", "--", "-k"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def tcpdump_read(pcap):
    """`tcpdump -nr pcap`.  As root tcpdump switches to its own user before reading; the
    root of `unshare -r` cannot (no other uid is mapped), so there it runs as a plain uid
    of a user namespace nested inside."""
    from grader.host import real_root
    argv = ["tcpdump", "-nr", str(pcap)]
    if os.geteuid() == 0 and not real_root():
        argv = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)
