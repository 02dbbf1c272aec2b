"""Small helpers several lessons' graders share: bounded polling, byte orders, byte
comparisons, argument refusals.  Import them from the package: `from grader import poll_until`."""
import re
import selectors
import struct
import time


def poll_until(probe, timeout, interval=0.01):
    """Call probe() until it returns something truthy or `timeout` seconds pass; returns
    its last value.  For what the kernel gives no event for (a socket's state, a process
    or thread count, a packet seen): bounded, never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def swapped16(value):
    """A 16-bit value with its two bytes swapped: what a program prints or sends when it
    forgets ntohs/htons on a little-endian machine."""
    return struct.unpack("<H", struct.pack(">H", value))[0]


def swapped32(value):
    """The same for 32 bits (ntohl/htonl forgotten)."""
    return struct.unpack("<I", struct.pack(">I", value))[0]


def first_difference(got, want):
    """The index of the first byte where `got` and `want` differ (the shorter one's
    length when one is a prefix of the other), or None when they are equal."""
    if got == want:
        return None
    n = min(len(got), len(want))
    for start in range(0, n, 65536):        # compare in blocks, then find the byte
        if got[start:start + 65536] != want[start:start + 65536]:
            for i in range(start, min(start + 65536, n)):
                if got[i] != want[i]:
                    return i
    return n


def push_until_blocked(peer, chunk=b"Slow Reader 0123456789 abcdefghijklmnopqrstuvwxyz\n" * 1300,
                       cap=32 << 20, quiet=0.3, limit=5.0):
    """Send `chunk` again and again from a client that never reads, until the kernel
    takes nothing for `quiet` seconds, `cap` bytes went or `limit` seconds passed; returns
    the bytes sent (all of them shown in the peer's wire transcript).  A server that
    stops reading a client which does not read its replies stalls the sender after a few
    MiB (socket buffers and its own queue); one that reads on regardless never does."""
    sock = peer.sock
    sock.setblocking(False)
    sent = bytearray()
    deadline = time.monotonic() + limit
    try:
        while len(sent) < cap and time.monotonic() < deadline:
            try:
                n = sock.send(chunk[:cap - len(sent)])
                sent += chunk[:n]
                peer.wire.sent(chunk[:n])
            except BlockingIOError:
                with selectors.DefaultSelector() as sel:
                    sel.register(sock, selectors.EVENT_WRITE)
                    if not sel.select(quiet):
                        break
    finally:
        sock.setblocking(True)
    return bytes(sent)


def rejects_argument(lab, name, args, what, text, or_else=None):
    """The program exits 1 with `invalid WHAT 'TEXT'` on stderr (or a message matching
    the regex or_else), given args."""
    prog = lab.start(name, *args)
    prog.expect_fatal(rf"invalid {what} '{re.escape(text)}'" + (f"|{or_else}" if or_else else ""),
                      expected=f"{name} {' '.join(map(str, args))}: stderr says invalid {what} '{text}'",
                      exit_expected=f"{name} {' '.join(map(str, args))} exits with status 1: "
                                    f"{text!r} is not a valid {what}",
                      exit_hint=f"check {what} as the Contract says before using it, and refuse "
                                f"anything else: `invalid {what} '{text}'` through fatal() (exit 1)",
                      hint="the argument checks are given code: keep them (and their messages)")


# A program asleep in poll/epoll_wait/io_uring_enter runs for microseconds in IDLE_WINDOW; one
# that spins runs the whole window -- or, on a machine busy with other work, a third of it or
# less, yet it stays runnable (running or waiting for a CPU) nearly all the time.  Hence the
# nanosecond count (schedstat), a CPU bound far below a spinner's share, and the runnable time.
IDLE_WINDOW = 0.3       # seconds of watching
IDLE_CPU = 0.03         # seconds on a CPU allowed in IDLE_WINDOW (x4 under a sanitizer,
                        # whose own threads wake up now and then)


def busy_loop(prog, window=IDLE_WINDOW):
    """Watch `prog` for `window` seconds of wall time (the waiting is the behaviour under
    test).  None when it slept; otherwise what it did, in words (`it ran 300 ms on a CPU
    in 0.30 s ...: a busy loop`).  The time of every thread counts, and the main thread's
    runnable time catches a spinner that gets little CPU on a loaded machine."""
    from grader.failure import GradeFailure
    bound = IDLE_CPU * (4 if prog.sanitizer() else 1) * window / IDLE_WINDOW
    try:
        cpu, ready = prog.run_seconds(), prog.runnable_seconds()
        start = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - start
        cpu, after = prog.run_seconds() - cpu, prog.runnable_seconds()
    except ProcessLookupError:
        prog.wait_exit(0.5)
        raise GradeFailure(expected=f"{prog.name} keeps running", happened=f"it {prog.status()}")
    runnable = None if ready is None or after is None else after - ready
    if cpu < bound * elapsed / window and (runnable is None or runnable < elapsed / 2):
        return None
    return (f"it ran {cpu * 1000:.0f} ms on a CPU in {elapsed:.2f} s"
            + (f" and was runnable (running, or waiting for a CPU) {runnable:.2f} s of them"
               if runnable is not None else "") + ": a busy loop")


def expect_asleep(prog, situation, hint, sleeps_in="poll/epoll_wait", window=IDLE_WINDOW):
    """Fail unless `prog` sleeps (runs almost not at all) for `window` seconds.  situation
    says when ("with 30 idle connections"), sleeps_in where it should wait."""
    from grader.failure import expect
    bound = IDLE_CPU * (4 if prog.sanitizer() else 1) * window / IDLE_WINDOW
    busy = busy_loop(prog, window)
    expect(busy is None, expected=f"{situation}, {prog.name} sleeps in {sleeps_in} (less "
                                  f"than {bound * 1000:.0f} ms on a CPU in {window:g} s)",
           happened=busy, hint=hint)
