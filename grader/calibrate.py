"""How fast this machine is right now, for the few checks bound by wall-clock time.

Most graders wait for events with generous deadlines, so a slow machine only makes
them slower.  A few checks compare against a clock or a rate (10,000 connections
answered in time, requests per second, a skeleton that must fail within seconds);
on a machine much slower than the one their bounds were set on, a correct program
would miss them.  Those checks scale their bound by slowness(), and skip with
too_slow() beyond what scaling can fairly cover: a slow machine is never reported as
a wrong program.

The yardstick is what those checks stress: loopback TCP connections, made and torn
down by this very process (the grader), with the kernel and the scheduler as they
are at this moment (load included).
"""
import os
import socket
import statistics
import time

CONNECTIONS = 200
# The median of the measure below on a quiet 2-core Debian 12 machine (kernel 6.x),
# where the time bounds of the graders were set: 200 connects, accepts, one-byte
# round trips and closes took 12-16 ms there.
REFERENCE_MS = 15.0


def loopback_round_trips_ms(count=CONNECTIONS):
    """Milliseconds to open, use and close `count` loopback TCP connections, in the
    network namespace of the caller."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(count)
        address = listener.getsockname()
        t0 = time.perf_counter()
        for _ in range(count):
            with socket.create_connection(address, timeout=5) as client:
                server, _ = listener.accept()
                with server:
                    client.sendall(b"x")
                    server.recv(1)
        return (time.perf_counter() - t0) * 1000


def slowness(samples=3):
    """How many times slower than the reference machine this one is now (>= 1.0): the
    median of a few short measures, so one preempted moment does not decide it.
    SOCKLAB_SLOWNESS=N pretends the machine is N times slower (the project's tests)."""
    if os.environ.get("SOCKLAB_SLOWNESS"):
        return max(1.0, float(os.environ["SOCKLAB_SLOWNESS"]))
    ms = statistics.median(loopback_round_trips_ms() for _ in range(samples))
    return max(1.0, ms / REFERENCE_MS)


def describe(factor):
    return (f"{CONNECTIONS} loopback connections took {factor * REFERENCE_MS:.0f} ms here, "
            f"{factor:.1f}x a quiet 2-core machine")
