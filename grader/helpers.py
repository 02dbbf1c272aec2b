"""Small helpers several lessons' graders share: bounded polling, byte orders, byte
comparisons, argument refusals, a quiet stderr, a listen queue with room.  Import them from the package: `from grader import poll_until`."""
import re
import select
import selectors
import socket
import struct
import time

from grader.failure import expect


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


def time_after_a_miss(stretch, timeout):
    """The seconds a wait of `timeout` that came up empty gets on top: what the machine's
    slowness adds (`stretch` is Lab.scaled, which skips the test as too slow on a very slow
    machine), 0 without one.  Asked only after a miss, so a quick machine pays nothing and
    a wrong program is judged by the reference bound there."""
    return max(0.0, stretch(timeout) - timeout) if stretch is not None else 0.0


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


def expect_quiet_stderr(prog, during, hint=None):
    """Stop `prog` and check that it wrote nothing on stderr while `during` (exchanges in
    which no call failed).  The program is ended first, so all it wrote has been read: a
    running program's last line may still be in the pipe.  A warning printed when nothing
    failed is most often an error test that also fires on success (`<= 0` for `< 0`)."""
    prog.kill()
    prog.settle_output()
    text = prog.stderr_text().strip()
    expect(not text, expected=f"nothing on stderr while {during}: no call failed, so there is "
                              "nothing to warn about",
           happened="stderr said: " + text[-300:],
           hint=hint or "warn only when a call has failed: close(), setsockopt() and most calls "
                        "return 0 on success and -1 on failure, so test `< 0` (not `<= 0`); "
                        "a write() that wrote some bytes returns their count")


# The kernel completes a handshake on loopback within the connect() call itself, however
# busy the program or the machine, while the listen queue has room; a dropped SYN is sent
# again only after 1 s.  So this bound needs no stretching on a slow machine.
QUEUE_BOUND = 0.8


def connect_burst(port, count, bound=QUEUE_BOUND):
    """`count` non-blocking connects to 127.0.0.1:port at once; (sockets, those still
    connecting after `bound` s).  The caller owns (and closes) the sockets."""
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    pending = {s.fileno(): s for s in socks}
    poller = select.poll()          # not select(): a burst may use descriptors past 1023
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + bound
    while pending:              # at least one look, even if the grader was held up
        for fd, _ in poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            poller.unregister(fd)
            pending.pop(fd, None)
        if time.monotonic() >= deadline:
            break
    return socks, list(pending.values())


def expect_clients_wait_in_queue(lab, program, port, waiting=4, hint=None):
    """While `program` serves one client (already accepted: the caller connected it),
    `waiting` more connect at once: the kernel completes their handshakes by itself while
    the listen queue (listen()'s backlog) has room.  A full queue drops a SYN, and that
    client's kernel sends it again only a second later -- the delay looked for.  The
    sockets are closed at the end (a FIN each: the program then serves them in turn)."""
    poll_until(lambda: any(s.recv_q == 0 for s in lab.sockets("tcp", state="LISTEN", local_port=port)),
               2.0)                         # the first client has left the queue
    socks, pending = connect_burst(port, waiting)
    try:
        queued = [s for s in lab.sockets("tcp", state="LISTEN", local_port=port)]
        expect(not pending,
               expected=f"while {program.name} serves one client, {waiting} more that connect at once "
                        f"all complete their handshake within {QUEUE_BOUND * 1000:.0f} ms: they wait their "
                        "turn in the listen queue",
               happened=f"{len(pending)} of the {waiting} were still connecting: the queue was full, "
                        "so the kernel dropped their SYNs (they are sent again only after 1 s)"
                        + (f"; the listening socket's backlog (Send-Q) is {queued[0].send_q}"
                           if queued else ""),
               hint=hint or f"listen(fd, backlog) with a backlog of at least {waiting}: that many "
                            "clients may wait, handshake done, until you accept() them",
               sockets=lab.sockets_text)
    finally:
        for s in socks:
            s.close()


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
