"""Grader for chapter 14 -- asynchronous I/O with io_uring: an echo server (uecho) and
a client with linked timeouts (uclient).

Each test is one behaviour of the README's contract; the docstring's first line is
what the board shows.  Everything is seen from outside, as the kernel shows it: bytes
on the wire, CPU seconds and descriptors from /proc, system calls counted by strace,
and for memory an AddressSanitizer copy built from your sources.  On a machine where
io_uring cannot be set up, every test here is skipped with one line saying why
(grader/requirements.py; chapters/14-io-uring/needs.txt).
"""
import os
import re
import resource
import select
import shutil
import signal
import socket
import sys
import threading
import time

import pytest

from grader import (GradeFailure, busy_loop, connect_burst, contract, expect, expect_asleep, expect_quiet_stderr, first_difference,
                    points, sanitizer_report, skip, use_sanitized_programs)
from grader import probes
from grader.peers import wait_readable

TIMEOUT = 2.0
REPEAT_HINT = ("more bytes came back than were sent: some completion was handled more than once. "
               "A CQE stays at the head of the completion queue until you mark it seen "
               "(io_uring_cqe_seen, or io_uring_cq_advance after io_uring_for_each_cqe)")
SPIN_HINT = ("the only place to wait is io_uring_enter (io_uring_submit_and_wait / "
             "io_uring_wait_cqe): a completion that is never marked seen (io_uring_cqe_seen, or "
             "io_uring_cq_advance after io_uring_for_each_cqe) is returned again at once, forever")


def start(lab, name="uecho"):
    port = lab.port()
    prog = lab.start(name, port)
    prog.expect_line(rf"listening on {port}", timeout=TIMEOUT,
                     hint="print `listening on PORT` once the listener and the ring are set up "
                          "and the first accept is queued")
    return prog, port


def pattern(n, seed=0):
    """n bytes no two 4 KiB pieces of which look alike (a lost or repeated piece shows)."""
    out = bytearray()
    i = seed
    while len(out) < n:
        out += b"%08d|" % i
        i += 1
    return bytes(out[:n])


def compare_stream(got, want):
    """What differs between an echo and what was sent, in words."""
    if got == want:
        return "it is identical"
    i = first_difference(got, want)
    if len(got) < len(want) and got == want[:len(got)]:
        return f"the first {len(got)} of {len(want)} bytes came back, right, and no more"
    text = f"{len(got)} bytes came back for {len(want)} sent; they differ from byte {i} on"
    if i < len(got) and want.find(got[i:i + 32]) > i:
        text += (f" (byte {i} of the echo is byte {want.find(got[i:i + 32])} of what was sent: "
                 f"{want.find(got[i:i + 32]) - i} bytes were skipped)")
    elif i < len(got) and want.find(got[i:i + 32], 0, i) >= 0:
        text += " (bytes already echoed came back again)"
    return text


def raw_connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", port))
    s.settimeout(None)
    return s


def read_exactly(sock, n, timeout):
    """Up to n bytes, reading until the deadline, EOF or a reset; returns (bytes, why it stopped)."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(got), "nothing more arrived"
        r, _, _ = select.select([sock], [], [], min(left, 0.2))
        if not r:
            continue
        try:
            chunk = sock.recv(min(1 << 20, n - len(got)))
        except ConnectionResetError:
            return bytes(got), "the connection was reset"
        if not chunk:
            return bytes(got), "the server closed the connection"
        got += chunk
    return bytes(got), ""


class Sender(threading.Thread):
    """Sends `data` on a raw socket (then half-closes, if asked) while the test reads."""

    def __init__(self, sock, data, half_close=True):
        super().__init__(daemon=True)
        self.sock, self.data, self.half_close = sock, data, half_close
        self.error, self.done = None, False

    def run(self):
        try:
            self.sock.sendall(self.data)
            if self.half_close:
                self.sock.shutdown(socket.SHUT_WR)
            self.done = True
        except OSError as e:
            self.error = e


def big_echo_hint(got, want, why):
    if got == want:
        return "recv completing with 0 is the client's EOF: close the connection (IORING_OP_CLOSE)"
    if got == want[:len(got)]:
        return ("the echo stopped: after a send has completed with every byte, submit the next recv "
                "for that connection; with IORING_CQE_F_MORE clear nothing more comes by itself")
    return ("a send may take fewer bytes than you offered (a short send: res < len): submit another "
            "send for the rest, from where it stopped, before the next recv; and echo exactly the "
            "res bytes each recv returned, once")


@pytest.fixture
def socks():
    """Raw sockets a test opens by the hundred, all closed after it."""
    made = []
    yield made
    for s in made:
        s.close()


# -- uecho: the echo ---------------------------------------------------------------

@contract("uecho", "listens on", "echoes every byte", "EOF or reset")
@points(3)
def test_uecho_echoes_split_glued_and_large_messages(lab, socks):
    """uecho echoes 1-byte pieces, glued writes and 1 MB from 8 clients at once, each its own"""
    prog, port = start(lab)
    peers = [lab.connect(port) for _ in range(6)]
    peers[0].send(b"hello, one byte at a time\n", pieces=1)
    got = peers[0].recv_exactly(26, timeout=TIMEOUT, what="the 26 bytes sent one at a time, echoed",
                                hint="submit a recv, send what it returned, then submit the next recv: "
                                     "a recv completes with whatever has arrived, even one byte")
    extra = not peers[0].expect_silence(0.1) and len(peers[0].buffer)
    expect(got == b"hello, one byte at a time\n" and not extra, expected="the same 26 bytes back",
           happened=f"got {got!r}" + (f", and more after them ({len(peers[0].buffer)} bytes)"
                                      if extra else ""),
           hint=REPEAT_HINT if extra else "echo exactly the res bytes each recv returned")
    for i, p in enumerate(peers[1:], 1):          # glued: three messages in one segment
        p.send(b"".join(b"client %d message %d\n" % (i, k) for k in range(3)))
    for i, p in enumerate(peers[1:], 1):
        want = b"".join(b"client %d message %d\n" % (i, k) for k in range(3))
        got = p.recv_exactly(len(want), timeout=TIMEOUT, what=f"client {i}'s {len(want)} bytes echoed",
                             hint="each connection has its own buffer and its own operations: the "
                                  "user_data of a completion says whose it is")
        expect(got == want, expected=f"client {i} gets exactly its own bytes back",
               happened=compare_stream(got, want),
               hint="a completion belongs to the connection named by its user_data; never echo one "
                    "connection's buffer on another")
    # two clients send 1 MB each at the same time and read the echo while they send
    big = [raw_connect(port) for _ in range(2)]
    socks.extend(big)
    data = [pattern(1 << 20, seed=k * 1000003) for k in range(2)]
    senders = [Sender(s, d) for s, d in zip(big, data)]
    for t in senders:
        t.start()
    for k, (s, d) in enumerate(zip(big, data)):
        got, why = read_exactly(s, len(d) + 1, timeout=5.0)
        expect(got == d and why == "the server closed the connection",
               expected=f"big client {k}: all {len(d)} bytes echoed in order, then EOF after its FIN",
               happened=(compare_stream(got, d) + (f"; then {why}" if why else "; then more bytes")
                         + ("" if prog.running() else f"; uecho {prog.status()}")),
               hint=big_echo_hint(got, d, why))
    prog.expect_running("uecho keeps running")


@contract("uecho", "does not read", "uses no CPU")
@points(3)
def test_uecho_slow_reader_loses_nothing_and_blocks_nobody(lab, socks):
    """a client that stops reading: others are served, no CPU burnt, and it loses no byte"""
    prog, port = start(lab)
    slow = raw_connect(port, rcvbuf=4096)
    socks.append(slow)
    data = pattern(6 << 20)
    sender = Sender(slow, data)
    sender.start()
    stalled = probes.wait_stalled(port, slow.getsockname()[1], timeout=3.0)
    expect(stalled is not None,
           expected="uecho keeps the slow client's connection open while its echo waits",
           happened="uecho closed it, though the client only stopped reading"
                    + ("" if prog.running() else f"; uecho {prog.status()}"),
           hint="a send to a full socket does not fail: io_uring waits for room and completes it "
                "later (possibly short); only an error result ends the connection",
           sockets=lambda: lab.sockets_text())
    other = lab.connect(port)
    other.send(b"anyone home?\n")
    line = other.recv_line(timeout=1.0, what="another client's echo within 1 s while one client does "
                                             "not read",
                           hint="one connection waiting in a send must not stop the loop: every "
                                "connection has its own operations in flight, and the loop handles "
                                "whichever completes")
    expect(line == "anyone home?", expected="`anyone home?` echoed", happened=f"{line!r}")
    expect_asleep(prog, "while the slow client does not read", sleeps_in="io_uring_enter",
                  hint="a pending send completes by itself when there is room: do not resubmit anything "
                "until its completion comes. " + SPIN_HINT)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    got, why = read_exactly(slow, len(data), timeout=8.0)
    if got != data:
        raise GradeFailure(
            expected=f"the slow client gets all {len(data)} bytes back, in order, once it reads",
            happened=compare_stream(got, data) + (f"; then {why}" if why else "")
                     + ("" if prog.running() else f"; uecho {prog.status()}"),
            hint=("a short send (res smaller than the length you asked for) is normal when the "
                  "client reads slowly: submit a send of the rest, from buf + sent, and only then "
                  "the next recv -- bytes not resent are lost" if len(got) < len(data) or got != data[:len(got)]
                  else "echo what each recv returned exactly once"))


@contract("uecho", "uses no CPU", "EOF or reset")
@points(2)
def test_uecho_idle_uses_no_cpu(lab, socks):
    """with 50 idle clients, one half-closed and one reset, uecho sleeps: no CPU"""
    prog, port = start(lab)
    clients = [raw_connect(port) for _ in range(50)]
    socks.extend(clients)
    for s in clients:
        s.sendall(b"hi\n")
    for i, s in enumerate(clients):
        got, why = read_exactly(s, 3, TIMEOUT)
        if got != b"hi\n":
            spinning = prog.running() and busy_loop(prog, 0.1) is not None
            raise GradeFailure(expected=f"client {i} gets `hi` back", happened=f"got {got!r}; {why}"
                               + ("; meanwhile uecho used all the CPU it could" if spinning else ""),
                               hint=SPIN_HINT if spinning else None)
    clients[0].shutdown(socket.SHUT_WR)
    read_exactly(clients[0], 1, TIMEOUT)        # the server closes it
    clients[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    clients[1].close()
    clients[2].sendall(b"an unfinished line")
    read_exactly(clients[2], 18, TIMEOUT)
    expect_asleep(prog, "while 50 clients are idle", sleeps_in="io_uring_enter",
                  hint=SPIN_HINT + "; and after recv returned 0 or an error, close the connection instead "
                            "of submitting another recv (EOF completes every recv at once)")


@contract("uecho", "EOF or reset")
@points(2)
def test_uecho_closes_connections_clients_leave(lab, socks):
    """clients that close or reset leave nothing behind: no descriptor, no CLOSE-WAIT"""
    prog, port = start(lab)
    probe = lab.connect(port)
    probe.send(b"up\n")
    probe.recv_line(timeout=TIMEOUT)
    baseline = len(prog.open_fds())
    clients = [raw_connect(port) for _ in range(20)]
    for s in clients:
        s.sendall(b"x\n")
    for s in clients:
        read_exactly(s, 2, TIMEOUT)
    held = len(prog.open_fds())
    for s in clients[:10]:
        s.close()
    for s in clients[10:]:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        s.close()
    deadline = time.monotonic() + TIMEOUT
    while len(prog.open_fds()) > baseline and time.monotonic() < deadline:
        time.sleep(0.02)    # a close is no event we can wait for; bounded poll
    fds = len(prog.open_fds())
    cw = lab.sockets(state="CLOSE-WAIT", pid=prog.pid)
    expect(fds <= baseline and not cw,
           expected=f"uecho back to {baseline} open descriptors after 20 clients left "
                    f"(it held {held} with them)",
           happened=f"{fds} open descriptors" + (f"; {len(cw)} sockets in CLOSE-WAIT" if cw else "")
                    + ("" if prog.running() else f"; uecho {prog.status()}"),
           hint="a recv completing with 0 (EOF) or an error (-ECONNRESET) ends the connection: "
                "submit a close for its descriptor (IORING_OP_CLOSE) and free it when that completes")
    # a client whose echo waits in a send resets: that send fails, and only its connection ends
    stuck = raw_connect(port, rcvbuf=4096)
    socks.append(stuck)
    Sender(stuck, pattern(4 << 20), half_close=False).start()
    probes.wait_stalled(port, stuck.getsockname()[1], timeout=3.0)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    stuck.close()
    probe.send(b"still\n")
    line = probe.recv_line(timeout=TIMEOUT, what="an old client's echo after a client reset with its echo "
                                                 "pending in a send",
                           hint="a send completing with -ECONNRESET or -EPIPE means that client is gone: "
                                "close its connection and go on serving the others (not fatal())")
    expect(line == "still", expected="an old client still served", happened=f"`{line}`")


@contract("uecho", "writes nothing on stderr")
@points(1)
def test_uecho_writes_nothing_on_stderr_while_no_call_fails(lab):
    """clients that send, read their echo and close: uecho writes nothing on stderr"""
    prog, port = start(lab)
    peers = [lab.connect(port) for _ in range(4)]
    for i, p in enumerate(peers):
        p.send(b"quiet %d\n" % i)
        expect(p.recv_line(timeout=TIMEOUT) == f"quiet {i}", expected=f"client {i}'s echo",
               happened="something else")
    for i, p in enumerate(peers[:3]):
        p.shutdown_write()                  # EOF: uecho closes; its FIN shows the close was done
        expect(p.wait_close(TIMEOUT) == "eof", expected=f"uecho closes client {i}'s connection after its EOF",
               happened=p.state())
    # one more echo: uecho handles completions in order, so every CQE of those closes is behind it
    peers[3].send(b"last\n")
    peers[3].recv_line(timeout=TIMEOUT)
    expect_quiet_stderr(prog, "clients sent a line, read its echo and closed",
                        hint="warn only for a completion whose res is an error: a recv's res of 0 is "
                             "the client's EOF and a close's res of 0 its success, neither is a "
                             "failure (`res < 0`, not `res <= 0`)")


@contract("uecho", "backlog", "1,000 connections")
@points(1)
def test_uecho_lets_clients_wait_in_the_listen_queue(lab, socks, open_files):
    """1,000 clients connect while uecho is stopped: the kernel queues them all (backlog), then each is served"""
    # All accepted in one burst after SIGCONT: more completions than the completion queue
    # holds at once, which ends a multishot accept (a CQE without IORING_CQE_F_MORE).
    prog, port = start(lab)
    waiting = 1000
    prog.wait_blocked(1.0)
    prog.signal(signal.SIGSTOP)
    try:
        if not prog.wait_stopped(1.0):
            skip("too-slow", "this machine is too busy for this check right now: uecho did not stop "
                             "within 1 s of SIGSTOP")
        burst, pending = connect_burst(port, waiting)
        socks.extend(burst)
        queue = lab.sockets("tcp", state="LISTEN", local_port=port)
        expect(not pending,
               expected=f"while uecho is stopped, {waiting} clients that connect all complete their "
                        "handshake at once: they wait in the listen queue (backlog >= 1000)",
               happened=f"{len(pending)} of {waiting} were still connecting after 0.8 s: the queue was "
                        "full and the kernel dropped their SYNs"
                        + (f"; the listening socket's backlog (Send-Q) is {queue[0].send_q}" if queue else ""),
               hint="tcp_listen_or_die(NULL, port, BACKLOG) with the given BACKLOG (4096): a burst of "
                    "clients waits in that queue until the ring accepts them",
               sockets=lab.sockets_text)
    finally:
        prog.signal(signal.SIGCONT)
    for s in socks:
        s.setblocking(True)
        s.sendall(b"queued\n")
    for i, s in enumerate(socks):
        got, why = read_exactly(s, 7, TIMEOUT)
        expect(got == b"queued\n", expected=f"queued client {i} is accepted and served once uecho runs",
               happened=f"got {got!r}; {why}" + ("" if prog.running() else f"; uecho {prog.status()}"),
               hint="a multishot accept can end by itself -- a completion without IORING_CQE_F_MORE, "
                    "even a successful one (the kernel stops it when the completion queue is full): "
                    "arm it again then, or the connections still queued are never accepted")


# -- uecho: many connections, out of descriptors --------------------------------------

NEEDED_FILES = 1200


@pytest.fixture
def open_files():
    """Room for 1,000 sockets in the grader (and, inherited, in the program it starts)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NEEDED_FILES:
        pytest.skip(f"1,000 connections need a hard open-files limit of at least {NEEDED_FILES}; "
                    f"here it is {hard} (`ulimit -Hn`)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contract("uecho", "1,000 connections")
@points(3)
def test_uecho_holds_1000_connections(lab, socks, open_files):
    """1,000 clients connected at once, each sends a line, each gets its own echo"""
    prog, port = start(lab)
    count = 1000
    for i in range(count):
        try:
            socks.append(raw_connect(port))
        except OSError as e:
            raise GradeFailure(expected=f"{count} clients can connect at once",
                               happened=f"connect number {i + 1} failed: {e.strerror or e}",
                               hint="listen with a backlog of at least 1000")
    for i, s in enumerate(socks):
        s.sendall(b"client %04d\n" % i)
    want = {s: b"client %04d\n" % i for i, s in enumerate(socks)}
    got = {s: b"" for s in socks}
    pending = set(socks)
    deadline = time.monotonic() + 5.0
    with select.epoll() as ep:
        for s in socks:
            ep.register(s.fileno(), select.EPOLLIN)
        by_fd = {s.fileno(): s for s in socks}
        while pending and time.monotonic() < deadline:
            for fd, _ in ep.poll(0.2):
                s = by_fd[fd]
                chunk = s.recv(64)
                got[s] += chunk
                if not chunk or len(got[s]) >= len(want[s]):
                    pending.discard(s)
                    ep.unregister(fd)
            if not prog.running():
                break
    right = sum(1 for s in socks if got[s] == want[s])
    held = len([t for t in prog.open_fds().values() if t.startswith("socket:")]) if prog.running() else 0
    expect(right == count,
           expected=f"all {count} clients, connected at the same time, get their own line back "
                    "within 5 s",
           happened=f"{right} did; {len(pending)} got nothing more; uecho {prog.status()} holding "
                    f"{held} sockets",
           hint=("the multishot accept posts one completion per connection: handle each one, and "
                 "keep a recv in flight for every connection. When the submission queue is full, "
                 "submit what is queued before taking another SQE (ring_sqe does)"
                 if prog.running() else "uecho died: its stderr and status are below"))
    expect(held >= count, expected=f"uecho holds the {count} connections at once",
           happened=f"it holds {held} sockets", hint="keep each connection open until its client closes it")


@contract("uecho", "EMFILE")
@points(2)
def test_uecho_accepts_again_after_running_out_of_descriptors(lab, socks):
    """out of descriptors (EMFILE), uecho waits without spinning and accepts again after a close"""
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    limit = 32
    lab.launcher = ["prlimit", f"--nofile={limit}", "--"]
    prog, port = start(lab)
    served, waiting = [], []
    while len(socks) < limit + 4 and len(waiting) < 2:
        s = raw_connect(port)
        socks.append(s)
        s.sendall(b"n%02d\n" % len(socks))
        got, _ = read_exactly(s, 4, 0.3 if served else TIMEOUT)
        (served if got else waiting).append(s)
        if not prog.running():
            break
    expect(served and len(waiting) == 2 and prog.running(),
           expected=f"with {limit} descriptors allowed (prlimit --nofile={limit}), uecho serves the "
                    "first clients, and the ones after the limit wait in the backlog",
           happened=f"{len(served)} served, {len(waiting)} waiting; uecho {prog.status()}",
           hint="accept failing with EMFILE is not fatal: keep running, serve the connections you "
                "have, and accept again once one closes")
    expect_asleep(prog, "out of descriptors", sleeps_in="io_uring_enter",
                  hint="an accept re-armed while you are still out of descriptors fails again at once "
                "(-EMFILE), again and again: wait until a connection has closed, then re-arm it")
    for k, (leaving, queued) in enumerate(zip(served, waiting)):
        leaving.close()
        got, why = read_exactly(queued, 4, 1.0)
        expect(got == b"n%02d\n" % (socks.index(queued) + 1),
               expected=f"after a served client closes, waiting client {k + 1} is accepted and gets "
                        "its echo within 1 s",
               happened=f"got {got!r}; {why}" + ("" if prog.running() else f"; uecho {prog.status()}"),
               hint="a multishot accept ends with a completion without IORING_CQE_F_MORE (here "
                    "its res is -EMFILE); after that the kernel accepts nothing until you submit a "
                    "new accept: re-arm it once a descriptor is free, when a close completes")


# -- uecho: batching -------------------------------------------------------------------
#
# The grader pauses the server (SIGSTOP), sends one request on each of 100 connections,
# and lets it go on (SIGCONT): 100 requests wait at once, as they do on a busy server.
# strace -c, attached for five such rounds, counts the system calls.  The same rounds are
# played against a reference: a one-read-one-write epoll echo server (Python's
# selectors, which makes exactly epoll_wait, recvfrom and sendto), in the same test.

BATCH_CONNS = 100
BATCH_ROUNDS = 5
BATCH_RATIO = 0.25      # at most this share of the reference's system calls per request
EPOLL_REFERENCE = r'''
import selectors, socket
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
listener.setblocking(False)
sel = selectors.EpollSelector()
sel.register(listener, selectors.EVENT_READ)
print("listening on", listener.getsockname()[1], flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is listener:
            conn, _ = listener.accept()
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
            continue
        data = s.recv(65536)
        if not data:
            sel.unregister(s)
            s.close()
        else:
            s.send(data)
'''


def strace_total(text):
    """The `calls` column of strace -c's total line, or None."""
    m = re.search(r"^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total\s*$", text, re.M)
    return int(m.group(1)) if m else None


def count_syscalls(lab, prog, port, what):
    """System calls `prog` makes for BATCH_ROUNDS rounds of BATCH_CONNS waiting requests."""
    clients = [raw_connect(port) for _ in range(BATCH_CONNS)]
    try:
        for s in clients:
            s.sendall(b"warm-up\n")
        for i, s in enumerate(clients):
            got, why = read_exactly(s, 8, TIMEOUT)
            expect(got == b"warm-up\n", expected=f"{what}: client {i} gets `warm-up` back",
                   happened=f"got {got!r}; {why}")
        out = lab.data_dir() / f"strace-{prog.pid}.txt"    # not where the program can write
        tracer = lab.start_command("strace", ["strace", "-c", "-o", out, "-p", str(prog.pid)],
                                   rights="grader")     # to trace the program, strace needs ours
        if not tracer.wait_stderr(r"attached", 2.0):
            tracer.wait_exit(0.5)
            pytest.skip(f"strace cannot attach here ({(tracer.stderr_text() or tracer.status())[-120:]})")
        for r in range(BATCH_ROUNDS):
            os.kill(prog.pid, signal.SIGSTOP)
            prog.wait_stopped()
            try:
                for i, s in enumerate(clients):
                    s.sendall(b"round %d client %03d\n" % (r, i))
            finally:
                os.kill(prog.pid, signal.SIGCONT)
            for i, s in enumerate(clients):
                want = b"round %d client %03d\n" % (r, i)
                got, why = read_exactly(s, len(want), TIMEOUT)
                expect(got == want, expected=f"{what}: client {i} gets its round-{r} request back",
                       happened=f"got {got!r}; {why}" + ("" if prog.running() else f"; {prog.status()}"))
        tracer.signal(signal.SIGINT)        # strace detaches and writes its table
        tracer.wait_exit(3.0)
        text = out.read_text() if out.exists() else ""
        lab.note(f"strace -c {what}", text or "(no table)")
        calls = strace_total(text)
        if calls is None:
            pytest.skip(f"strace wrote no table for {what} ({tracer.stderr_text()[-120:]})")
        return calls / (BATCH_CONNS * BATCH_ROUNDS)
    finally:
        for s in clients:
            s.close()


@contract("uecho", "system calls per request")
@points(3)
def test_uecho_makes_far_fewer_syscalls_than_an_epoll_server(lab):
    """100 requests waiting at once: uecho makes a quarter of the syscalls of an epoll server, or fewer"""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (tools/setup.sh installs it)")
    prog, port = start(lab)
    yours = count_syscalls(lab, prog, port, "uecho")
    ref = lab.start_command("epoll reference", [sys.executable, "-c", EPOLL_REFERENCE])
    m = ref.expect_line(r"listening on (\d+)", timeout=TIMEOUT)
    reference = count_syscalls(lab, ref, int(m.group(1)), "epoll reference")
    figures = (f"{yours:.3f} system calls per request; the one-read-one-write epoll server "
               f"{reference:.2f} ({yours / reference:.3f}x)")
    expect(yours <= BATCH_RATIO * reference,
           expected=f"with {BATCH_CONNS} requests waiting at once, at most {BATCH_RATIO:g}x the "
                    "system calls per request of an epoll server that reads and writes each "
                    "connection once",
           happened=figures + " (strace -c tables below)",
           hint="put every SQE of a round in the queue first and submit them all with one "
                "io_uring_enter (io_uring_submit_and_wait), then handle every CQE that is ready "
                "before entering again; calling io_uring_submit after each io_uring_prep_* costs "
                "one system call per operation, as many as epoll's reads and writes")
    lab.measure(figures)


# -- uecho: shutdown and memory ------------------------------------------------------------

@contract("uecho", "cancels every operation")
@points(2)
def test_uecho_sigterm_cancels_everything_and_exits_cleanly(lab, socks):
    """SIGTERM with recvs and a stuck send in flight: every connection closed, `bye`, exit 0"""
    prog, port = start(lab)
    idle = [lab.connect(port) for _ in range(4)]
    for p in idle:
        p.send(b"x\n")
        p.recv_line(timeout=TIMEOUT)
    slow = raw_connect(port, rcvbuf=4096)
    socks.append(slow)
    sender = Sender(slow, pattern(4 << 20), half_close=False)
    sender.start()
    probes.wait_stalled(port, slow.getsockname()[1], timeout=3.0)   # its send is stuck in flight
    prog.signal(signal.SIGTERM)
    prog.expect_exit(0, timeout=TIMEOUT,
                     expected="uecho exits 0 within 2 s of SIGTERM",
                     hint="SIGTERM arrives as the completion of a read of the signalfd: cancel every "
                          "operation in flight (one io_uring_prep_cancel with IORING_ASYNC_CANCEL_ANY "
                          "| IORING_ASYNC_CANCEL_ALL), then keep reaping until every one of them has "
                          "completed; a send to a client that does not read never completes by itself")
    out = prog.stdout_text().splitlines()
    expect(out and out[-1].strip() == "bye", expected="`bye` as its last line",
           happened=f"its last line was {out[-1].strip()!r}" if out else "it printed nothing")
    for i, p in enumerate(idle):
        expect(p.wait_close(TIMEOUT) is not None, expected=f"idle client {i} sees its connection end",
               happened=p.state())


SANITIZER_HINT = ("the report names the line. A leak of connections allocated when they were "
                  "accepted means some completion did not free its connection: after a cancel, every "
                  "operation still completes (res -ECANCELED) and must be handled like any other -- "
                  "close the descriptor, free the memory -- before the program exits")


@contract("uecho", "echoes every byte", "EOF or reset", "cancels every operation")
@points(2)
def test_uecho_is_memory_safe_and_frees_everything_under_asan(lab, socks):
    """uecho under ASan+UBSan+LeakSanitizer: echoes, resets, SIGTERM with operations in flight: no report"""
    use_sanitized_programs(lab, "address")
    lab.default_env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:print_legend=0"
    slow_t = 4 * TIMEOUT
    prog, port = start(lab)

    def step(what, action):
        try:
            action()
        except GradeFailure as failure:
            prog.wait_exit(0.5)
            report = sanitizer_report(prog)
            if report:
                raise GradeFailure(expected=f"uecho runs clean under ASan+UBSan while {what}",
                                   happened="the sanitizer reported a bug (see `sanitizer`)",
                                   hint=SANITIZER_HINT, sanitizer=report)
            raise failure

    def echoes():
        peers = [lab.connect(port) for _ in range(4)]
        for i, p in enumerate(peers):
            p.send(b"sanitized %d\n" % i, pieces=4)
        for i, p in enumerate(peers):
            expect(p.recv_line(timeout=slow_t) == f"sanitized {i}", expected=f"client {i}'s echo",
                   happened="something else")
        for p in peers[:2]:
            p.close()
        for p in peers[2:]:
            p.reset()

    def stuck_and_reset():
        for k in range(2):
            s = raw_connect(port, rcvbuf=4096)
            socks.append(s)
            Sender(s, pattern(2 << 20), half_close=False).start()
            probes.wait_stalled(port, s.getsockname()[1], timeout=slow_t)
            if k == 0:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                s.close()

    def shutdown():
        for _ in range(3):
            socks.append(raw_connect(port))     # idle: a recv in flight each
        lab.connect(port).send(b"still here\n")
        prog.signal(signal.SIGTERM)
        rc = prog.wait_exit(slow_t)
        report = sanitizer_report(prog)
        if report:
            raise GradeFailure(expected="uecho exits after SIGTERM with everything freed",
                               happened="the sanitizer reported a bug (see `sanitizer`)",
                               hint=SANITIZER_HINT, sanitizer=report)
        expect(rc == 0, expected="uecho exits 0 after SIGTERM", happened=f"it {prog.status()}")

    step("clients send in pieces, then close or reset", echoes)
    step("a client that does not read resets with a send in flight", stuck_and_reset)
    step("SIGTERM stops it with recvs and a send in flight", shutdown)


# -- uclient ---------------------------------------------------------------------------

def start_client(lab, timeout_ms, *messages):
    listener = lab.listen()
    prog = lab.start("uclient", "127.0.0.1", listener.port, timeout_ms, *messages)
    peer = listener.accept(program=prog, hint="uclient connects to HOST PORT from its arguments")
    return prog, peer


@contract("uclient", "reply line", "after the last reply")
@points(2)
def test_uclient_prints_each_reply_line(lab):
    """uclient sends each message as a line and prints each reply, whole or in pieces"""
    prog, peer = start_client(lab, 2000, "first", "second message", "third")
    replies = ["reply to first", "a reply in pieces", "last reply"]
    for k, (msg, reply) in enumerate(zip(["first", "second message", "third"], replies)):
        line = peer.recv_line(timeout=TIMEOUT, what=f"the line `{msg}` from uclient",
                              hint="send each MESSAGE followed by a newline, one at a time, after the "
                                   "previous reply")
        expect(line == msg, expected=f"the line `{msg}`", happened=f"got `{line}`")
        peer.send(reply + "\n", pieces=4 if k == 1 else None)
        try:
            prog.expect_line(re.escape(reply), expected=f"uclient prints `{reply}`",
                             hint="a recv returns what has arrived, maybe part of the line: keep it "
                                  "and recv again (with a fresh linked timeout) until the newline is "
                                  "there")
        except GradeFailure as failure:
            if prog.wait_stderr(r"(?i)time", 0.3):
                failure.hint = ("the whole reply had come, yet uclient reported a timeout: a timeout "
                                "that is not linked to the recv (IOSQE_IO_LINK on the recv, then "
                                "io_uring_prep_link_timeout) is not cancelled when the recv completes, "
                                "and fires anyway")
            raise
    expect(peer.wait_close(TIMEOUT) == "eof", expected="uclient closes the connection after the last reply",
           happened=peer.state())
    prog.expect_exit(0, expected="uclient exits 0 after the last reply")


@contract("uclient", "begin the next reply")
@points(1)
def test_uclient_keeps_bytes_after_a_reply_for_the_next(lab):
    """two replies glued in one segment: uclient prints the first, sends its next message, prints the second"""
    prog, peer = start_client(lab, 2000, "a", "b")
    peer.recv_line(timeout=TIMEOUT, what="the line `a` from uclient")
    peer.send(b"first\nsecond\n")
    line = peer.recv_line(timeout=TIMEOUT, what="the line `b` after the reply to `a`",
                          hint="print the reply line, then send the next MESSAGE")
    expect(line == "b", expected="`b`", happened=f"`{line}`")
    prog.expect_exit(0, expected="uclient exits 0: the reply to `b` (`second`) had already come",
                     hint="bytes after a reply's newline are the start of the next reply: keep them "
                          "(memmove to the front of the buffer) and look for a newline there before "
                          "submitting another recv")
    expect(prog.stdout_bytes() == "first\nsecond\n", expected="stdout `first`, then `second`",
           happened=f"stdout was {prog.stdout_bytes()!r}")


@contract("uclient", "stops arriving")
@points(2)
def test_uclient_times_out_when_the_server_is_silent(lab):
    """a server that never replies: `timeout` after TIMEOUT_MS (300 ms), exit 1"""
    # uclient's clock starts when it sends, which the grader learns only later (on a busy
    # machine, much later): the one moment surely before it is the program's start
    started = time.monotonic()
    prog, peer = start_client(lab, 300, "hello?")
    peer.recv_line(timeout=TIMEOUT, what="the line `hello?` from uclient")
    rc = prog.wait_exit(1.5)
    took = time.monotonic() - started
    hint = ("link a timeout to the recv: the recv's SQE gets IOSQE_IO_LINK and the next SQE is "
            "io_uring_prep_link_timeout; when it fires, the timeout completes with -ETIME and the "
            "recv with -ECANCELED")
    expect(rc is not None, expected="uclient gives up about 300 ms after its request",
           happened="it was still waiting 1.5 s later", hint=hint)
    expect(rc == 1 and prog.wait_stderr(r"(?i)timeout", 0.5),
           expected="`timeout…` on stderr and exit status 1",
           happened=f"it {prog.status()}; stderr: {prog.stderr_text() or '(empty)'}", hint=hint)
    expect(took >= 0.25, expected="not before TIMEOUT_MS (300 ms) without a reply",
           happened=f"it gave up {took * 1000:.0f} ms after it started",
           hint="the timeout is a struct __kernel_timespec: 300 ms is tv_sec 0, tv_nsec 300000000")


@contract("uclient", "its own timeout")
@points(2)
def test_uclient_gives_each_recv_its_own_timeout(lab):
    """3 replies, each 600 ms late with TIMEOUT_MS 1000: no timeout, all printed"""
    # 1.8 s in all: one deadline for the whole run (1 s) fires during the second request.
    # The 400 ms left to each reply cover the time the request takes to reach the grader
    # and the reply to reach uclient, which the grader cannot see, on a busy machine.
    messages = ["one", "two", "three"]
    prog, peer = start_client(lab, 1000, *messages)
    answered = time.monotonic()
    for msg in messages:
        line = peer.recv_line(timeout=TIMEOUT, what=f"the line `{msg}` from uclient")
        expect(line == msg, expected=f"`{msg}`", happened=f"`{line}`")
        asked = time.monotonic()
        # uclient sends the next request at once: the time until the grader saw it bounds how
        # much of uclient's 1000 ms was gone before the grader's clock started
        turnaround = asked - answered if msg != messages[0] else 0.0
        time.sleep(0.6)         # the delay is the behaviour under test
        peer.send(f"late {msg}\n")
        answered = time.monotonic()
        if answered - asked > 0.75:     # the grader itself was late: no verdict
            skip("too-slow", "this machine is too busy for this check right now: the grader "
                             f"answered {(answered - asked) * 1000:.0f} ms after a request, not 600 ms")
        try:
            prog.expect_line(f"late {msg}", timeout=1.5,
                             expected=f"uclient prints `late {msg}`: each reply came within 1000 ms "
                                      "of its request",
                             hint="each recv needs its own timeout, linked to it (IOSQE_IO_LINK), so "
                                  "that the recv completing cancels it: a timeout that is not linked "
                                  "(or one deadline for the whole run) fires during a later request")
        except GradeFailure:
            if turnaround + (answered - asked) > 0.9:   # the reply may have come after 1000 ms
                skip("too-slow", "this machine is too busy for this check right now: uclient's "
                                 f"request `{msg}` reached the grader {turnaround * 1000:.0f} ms after "
                                 "the previous reply, and the reply left "
                                 f"{(answered - asked) * 1000:.0f} ms after that")
            raise
    prog.expect_exit(0, expected="uclient exits 0 after the third reply")


@contract("uclient", "before a reply")
@points(1)
def test_uclient_reports_a_server_that_closes_early(lab):
    """the server closes in the middle of a reply: a message on stderr, exit 1"""
    prog, peer = start_client(lab, 2000, "hi")
    peer.recv_line(timeout=TIMEOUT)
    peer.send(b"half a rep")
    peer.close()
    prog.expect_exit(1, expected="uclient exits 1 when the server closes before the reply's newline",
                     hint="a recv completing with 0 is the server's EOF: report it (fatal) instead "
                          "of waiting again, or printing half a line")
    expect(prog.stderr_text().strip() != "", expected="a message on stderr", happened="stderr was empty")


@contract("uclient", "resets the connection")
@points(1)
def test_uclient_reports_a_reset_as_the_error_it_is(lab):
    """the server resets the connection while uclient waits: `…: Connection reset by peer (104)`, exit 1"""
    prog, peer = start_client(lab, 2000, "hi")
    peer.recv_line(timeout=TIMEOUT)
    peer.reset()
    prog.expect_fatal(r"Connection reset by peer \(104\)",
                      expected="stderr names the error: `recv: Connection reset by peer (104)`",
                      hint="a recv completing with a negative res failed: -res is the errno, for "
                           "fatal(-res, \"recv\"); only 0 is the server's EOF and -ECANCELED the timeout's doing",
                      exit_expected="uclient exits 1 when the server resets the connection",
                      exit_hint="a reset completes the recv with -ECONNRESET: report it with fatal()")


@contract("uclient", "interrupted")
@points(1)
def test_uclient_sigterm_cancels_the_wait(lab):
    """SIGTERM while waiting for a reply: `interrupted` at once, exit 0, connection closed"""
    prog, peer = start_client(lab, 10000, "anyone?")
    peer.recv_line(timeout=TIMEOUT)
    prog.wait_blocked(1.0)
    prog.signal(signal.SIGTERM)
    hint = ("read the signalfd through the ring: its completion is your SIGTERM. Then cancel the recv "
            "(io_uring_prep_cancel64 with its user_data), wait for the cancelled recv and its "
            "timeout to complete, print `interrupted` and exit 0")
    prog.expect_exit(0, timeout=1.0, expected="uclient exits 0 within 1 s of SIGTERM", hint=hint)
    prog.expect_line("interrupted", expected="uclient prints `interrupted`", hint=hint)
    expect(peer.wait_close(TIMEOUT) is not None, expected="the connection ends", happened=peer.state())


@contract("uclient", "TIMEOUT_MS is")
@points(1)
def test_uclient_checks_its_arguments(lab):
    """uclient refuses a TIMEOUT_MS outside 1..3600000 and too few arguments, before connecting; 1 and 3600000 work"""
    listener = lab.listen()
    port = str(listener.port)
    for text in ("0", "3600001", "-5", "abc", "10x", ""):
        lab.expect_rejected("uclient", ["127.0.0.1", port, text, "hi"], rf"invalid timeout '{re.escape(text)}'",
                            f"invalid timeout '{text}' (TIMEOUT_MS is 1 to 3600000)",
                            hint="the given parse_timeout_or_die() checks it: keep it")
    lab.expect_rejected("uclient", ["127.0.0.1", port, "1000"], r"usage", "`usage: …` (no MESSAGE)",
                        hint="the given argument check in main() (argc < 5): keep it")
    expect(not wait_readable(listener.sock, 0), expected="no connection from a uclient that refused its arguments",
           happened="one connected to the grader's server", hint="check the arguments before connecting")
    prog, peer = start_client(lab, 3600000, "an hour")
    expect(peer.recv_line(timeout=TIMEOUT) == "an hour", expected="`an hour` with TIMEOUT_MS 3600000",
           happened="another line")
    peer.send(b"ok\n")
    prog.expect_line("ok", expected="uclient prints `ok`: 3600000 ms is a valid TIMEOUT_MS")
    prog.expect_exit(0, expected="uclient exits 0 after the reply")
    prog, peer = start_client(lab, 1, "a millisecond")
    expect(peer.recv_line(timeout=TIMEOUT) == "a millisecond",
           expected="`a millisecond`: 1 ms is a valid TIMEOUT_MS", happened="another line")
    prog.expect_fatal(r"(?i)timeout", expected="`timeout…` on stderr: no reply came within 1 ms",
                      exit_expected="uclient exits 1 after its 1 ms timeout")


@contract("uclient", "up to 4096 bytes", "NUL included")
@points(2)
def test_uclient_handles_long_messages_and_any_reply_bytes(lab):
    """a 4096-byte MESSAGE is sent whole; a 60,000-byte reply in pieces and one with NUL bytes are printed exactly"""
    message = pattern(4096).decode()
    long_reply = pattern(60000, seed=7).replace(b"\n", b"-")
    binary_reply = b"before\0between\0\0after"
    prog, peer = start_client(lab, 3000, message, "binary")
    got = peer.recv_line(timeout=TIMEOUT, what="the 4096-byte message as one line")
    expect(got == message, expected="the 4096-byte MESSAGE, then `\\n`",
           happened=f"{len(got)} bytes, " + ("the same" if got == message else
                                             f"differing from byte {first_difference(got.encode(), message.encode())}"),
           hint="a MESSAGE may be 4096 bytes: c->out holds it and its newline")
    peer.send(long_reply + b"\n", pieces=4000)
    peer.recv_line(timeout=TIMEOUT, what="the line `binary` after the long reply",
                   hint="a reply of 60,000 bytes comes in many recvs: keep each piece (recv into "
                        "c->reply + c->reply_len, at most MAX_REPLY - c->reply_len bytes) until the newline")
    peer.send(binary_reply + b"\n")
    prog.expect_exit(0, expected="uclient exits 0 after the second reply")
    want = long_reply + b"\n" + binary_reply + b"\n"
    got = prog.stdout_bytes().encode()
    expect(got == want, expected=f"stdout is exactly the two reply lines ({len(want)} bytes, NULs included)",
           happened=f"{len(got)} bytes; " + ("the same" if got == want else
                                            f"they differ from byte {first_difference(got, want)} on"),
           hint="the reply is bytes, not a C string: find the newline with memchr and print the line "
                "with fwrite -- strchr, strlen and printf's %s (even %.*s) stop at the first NUL")


@contract("uclient", "never a crash")
@points(1)
def test_uclient_survives_a_reply_longer_than_64_kib(lab):
    """a 160 KB reply line: printed whole, or refused with a message and exit 1 -- never a crash"""
    prog, peer = start_client(lab, 3000, "flood me")
    peer.recv_line(timeout=TIMEOUT, what="the line `flood me` from uclient")
    flood = pattern(160 * 1024, seed=3).replace(b"\n", b"-")
    try:        # 1000 bytes a recv: the line grows past 64 KiB without filling the buffer exactly
        peer.send(flood + b"\n", pieces=1000)
    except GradeFailure:
        pass    # uclient refused the line and closed: allowed
    rc = prog.wait_exit(TIMEOUT)
    if rc == 0:
        got = prog.stdout_bytes().encode()
        expect(got == flood + b"\n", expected="the whole 160 KB line on stdout, since uclient took it",
               happened=f"{len(got)} bytes on stdout, not the {len(flood) + 1} sent")
        return
    expect(rc == 1 and prog.stderr_text().strip(),
           expected="a reply longer than 64 KiB refused with a message on stderr and exit status 1 "
                    "(or printed whole)",
           happened=f"uclient {prog.status()}" + ("" if prog.stderr_text().strip() else ", stderr empty"),
           hint="recv at most the room left in the buffer (MAX_REPLY - c->reply_len bytes, at "
                "c->reply + c->reply_len): a recv asked for more than the room left writes past the "
                "end of the buffer once the line is long enough")
