"""Peers the grader controls: the other end of a student's connection.

Every peer keeps a transcript of the bytes that went each way (and FINs, resets),
which failure reports show as the "wire" section, labelled by who sent what:

    program→ "data1\\n"   grader→ "Hi, data1\\n"   program→ [FIN]

Every receive has a deadline and fails with a GradeFailure that says what arrived.
"""
import errno
import os
import select
import socket
import struct
import time

from grader import probes
from grader.failure import GradeFailure
from grader.helpers import swapped16, time_after_a_miss

DEFAULT_TIMEOUT = 2.0
PIECE_READ_TIMEOUT = 1.0   # how long send(pieces=) waits for the program to read a piece


def wait_readable(sock, timeout, program=None):
    """select() on sock until readable or timeout; stops early if `program` exits.

    Returns True if readable.  Raises GradeFailure if the program died first."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([sock], [], [], min(left, 0.05) if program else left)
        if r:
            return True
        if program is not None and not program.running():
            # one last look: it may have sent something just before exiting
            r, _, _ = select.select([sock], [], [], 0)
            if r:
                return True
            program.wait_exit(0.5)
            raise GradeFailure(expected=f"{program.name} keeps running and talks to the grader",
                               happened=f"it {program.status()} first")


def show_bytes(data, limit=80):
    """A short, readable rendering of bytes for reports."""
    if len(data) > limit:
        return repr(data[:limit])[1:] + f"… ({len(data)} bytes)"
    return repr(data)[1:]


class _Piece(bytearray):
    """Bytes the grader sent as one piece of a split message: kept apart in the
    transcript, since the split is what the test is about."""


class Transcript:
    def __init__(self):
        self.events = []  # (direction, bytes or marker)
        self.times = []   # when each event began (time.monotonic()): for ladder diagrams

    def sent(self, data, piece=False):
        self._add("→", data, piece)

    def received(self, data):
        self._add("←", data)

    def mark(self, direction, marker):
        self.events.append((direction, marker))
        self.times.append(time.monotonic())

    def _add(self, direction, data, piece=False):
        if not data:
            return
        last = self.events[-1] if self.events else None
        # consecutive bytes in one direction grow one bytearray (appending is amortised O(1))
        if (not piece and last and last[0] == direction and type(last[1]) is bytearray):
            last[1].extend(data)
        else:
            self.events.append((direction, _Piece(data) if piece else bytearray(data)))
            self.times.append(time.monotonic())

    def render(self, limit=12):
        parts = []
        previous = None
        for direction, item in self.events[-limit:]:
            who = "grader→" if direction == "→" else "program→"
            if isinstance(item, _Piece) and isinstance(previous, _Piece):
                parts[-1] += f" | {show_bytes(bytes(item))}"   # the next piece of one message
            elif isinstance(item, bytearray):
                parts.append(f"{who} {show_bytes(bytes(item))}")
            else:
                parts.append(f"{who} [{item}]")
            previous = item
        if len(self.events) > limit:
            parts.insert(0, f"(… {len(self.events) - limit} earlier)")
        return "   ".join(parts)


class StreamPeer:
    """A connected stream socket (TCP or Unix) with a transcript."""

    def __init__(self, sock, label):
        self.sock = sock
        self.label = label
        self.wire = Transcript()
        self._buf = bytearray()  # received but not yet consumed by a recv_* call
        self.eof = False
        self.error = None       # an errno seen on receive (e.g. ECONNRESET)
        self.fin_sent = False   # the grader has half-closed (shutdown_write)

    @property
    def buffer(self):
        """Bytes received and not yet consumed by a recv_* call."""
        return bytes(self._buf)

    @buffer.setter
    def buffer(self, data):
        self._buf = bytearray(data)

    # -- sending ---------------------------------------------------------

    def send(self, data, pieces=None, delay=0.0):
        """Send data; with pieces=N split it into chunks of N bytes, `delay` s apart.

        Split, each piece leaves as its own segment (TCP_NODELAY) and send() waits until
        the program has read it before going on (bounded by PIECE_READ_TIMEOUT; once the
        program stops reading, the rest go without waiting).  So a program that takes one
        read() for one message meets a partial message every time, not only when the
        machine happens to be slow.
        """
        if isinstance(data, str):
            data = data.encode()
        if not pieces:
            self._sendall(data)
            return
        self._nodelay()
        waiting = True
        for i in range(0, len(data), pieces):
            self._sendall(data[i:i + pieces], piece=True)
            waiting = waiting and self.wait_read(PIECE_READ_TIMEOUT)
            if delay:
                time.sleep(delay)   # the spacing is the behaviour under test

    def wait_read(self, timeout=DEFAULT_TIMEOUT):
        """Wait until the program has read all the grader sent; False if it has not in time."""
        return probes.wait_read([self.sock], timeout)

    def _sendall(self, data, piece=False):
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.wire.mark("→", f"send failed: {errno.errorcode.get(e.errno, e.errno)}")
            raise GradeFailure(
                expected=f"the grader could send {show_bytes(data)} to your program",
                happened=f"send failed: {e.strerror} -- your program had closed the connection",
                wire=self.wire.render())
        self.wire.sent(data, piece)

    def _nodelay(self):
        if self.sock.family in (socket.AF_INET, socket.AF_INET6):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- receiving -------------------------------------------------------

    def _fill(self, deadline):
        """Receive once (waiting until deadline).  Returns False on timeout/EOF/error."""
        if self.eof or self.error:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.error = errno.ECONNRESET
            self.wire.mark("←", "RST (connection reset)")
            return False
        except OSError as e:
            self.error = e.errno
            self.wire.mark("←", f"error {errno.errorcode.get(e.errno, e.errno)}")
            return False
        if not chunk:
            self.eof = True
            self.wire.mark("←", "FIN")
            return False
        self.wire.received(chunk)
        self._buf.extend(chunk)
        return True

    def state(self):
        """What the connection looks like from the grader's side, in words."""
        return self._state()

    def _state(self):
        if self.error == errno.ECONNRESET:
            return "the connection was reset (RST)"
        if self.error:
            return f"receive failed ({errno.errorcode.get(self.error, self.error)})"
        if self.eof:
            return "your program closed the connection (EOF)"
        return "nothing more arrived"

    def recv_until(self, terminator=b"\n", timeout=DEFAULT_TIMEOUT, what=None, hint=None):
        """Receive up to and including `terminator`; returns those bytes."""
        if isinstance(terminator, str):
            terminator = terminator.encode()
        deadline = time.monotonic() + timeout
        while terminator not in self._buf:
            if not self._fill(deadline):
                raise GradeFailure(
                    expected=what or f"a reply ending in {show_bytes(terminator)} within {timeout:g} s",
                    happened=f"got {show_bytes(bytes(self._buf))} and then {self._state()}"
                    if self._buf else self._state(),
                    hint=hint, wire=self.wire.render())
        i = self._buf.index(terminator) + len(terminator)
        out = bytes(self._buf[:i])
        del self._buf[:i]
        return out

    def recv_line(self, timeout=DEFAULT_TIMEOUT, what=None, hint=None):
        """One LF-terminated line, decoded, without the line end."""
        return self.recv_until(b"\n", timeout, what, hint).decode("utf-8", "replace").rstrip("\r\n")

    def recv_exactly(self, n, timeout=DEFAULT_TIMEOUT, what=None, hint=None):
        deadline = time.monotonic() + timeout
        while len(self._buf) < n:
            if not self._fill(deadline):
                raise GradeFailure(
                    expected=what or f"{n} bytes within {timeout:g} s",
                    happened=f"got {len(self._buf)} bytes and then {self._state()}",
                    hint=hint, wire=self.wire.render())
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def recv_all_until_eof(self, timeout=DEFAULT_TIMEOUT, limit=64 << 20):
        """Everything until the peer closes.  Fails on timeout."""
        deadline = time.monotonic() + timeout
        while not self.eof and len(self._buf) < limit:
            if not self._fill(deadline) and not self.eof:
                raise GradeFailure(
                    expected=f"your program closes the connection within {timeout:g} s",
                    happened=f"got {len(self._buf)} bytes and then {self._state()}",
                    wire=self.wire.render())
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def wait_close(self, timeout=DEFAULT_TIMEOUT):
        """Wait until the peer closes or resets; returns 'eof', 'reset' or None (timeout).

        Data arriving meanwhile is kept in the buffer."""
        deadline = time.monotonic() + timeout
        while not (self.eof or self.error):
            if time.monotonic() >= deadline:
                return None
            self._fill(deadline)
        return "eof" if self.eof else "reset"

    def expect_silence(self, duration):
        """Nothing arrives for `duration` seconds (data, EOF or RST).  Returns True if quiet."""
        before = len(self._buf)
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            if not self._fill(deadline):
                if self.eof or self.error:
                    return False
        return len(self._buf) == before

    def reset_seen(self):
        """True if the program has reset this TCP connection, even after an EOF the grader
        already read (a receive returns EOF again then, never the reset): the kernel
        keeps the news as the socket's error and its state, CLOSE before the grader's
        own FIN.  Marks the reset on the wire the first time."""
        if self.error == errno.ECONNRESET:
            return True
        if self.sock.fileno() < 0 or self.sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        state = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        # a reset in CLOSE_WAIT (after the program's FIN) reports EPIPE, elsewhere ECONNRESET
        if err in (errno.ECONNRESET, errno.EPIPE) or (state == probes.TCP_CLOSE and not self.fin_sent):
            self.error = errno.ECONNRESET
            self.wire.mark("←", "RST (connection reset)")
            return True
        return False

    # -- closing ---------------------------------------------------------

    def shutdown_write(self):
        """Half-close (FIN).  If the program already reset or dropped the connection,
        that is recorded, not raised: the test's next expectation reports it."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.wire.mark("→", "FIN not sent: the program had already dropped the connection "
                                f"({errno.errorcode.get(e.errno, e.errno)})")
            return
        self.fin_sent = True
        self.wire.mark("→", "FIN")

    def close(self):
        if self.sock.fileno() >= 0:
            self.sock.close()
            self.wire.mark("→", "close")

    def reset(self):
        """Abortive close: SO_LINGER {1, 0} makes close() send RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.wire.mark("→", "RST")

    def local_port(self):
        return self.sock.getsockname()[1]


class Listener:
    """A listening socket the grader owns (TCP or Unix stream)."""

    def __init__(self, sock, label):
        self.sock = sock
        self.label = label
        self.accepted = []
        self.on_accept = None   # called with each accepted peer (the lab's wire follows it)
        # seconds -> seconds on this machine (Lab.scaled): a program that has not connected
        # in time on a slow machine gets the time the machine's slowness says, or a skip
        self.stretch = None

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def accept(self, timeout=DEFAULT_TIMEOUT, what=None, hint=None, program=None):
        """Accept one connection; with program= stop waiting as soon as it exits."""
        arrived = wait_readable(self.sock, timeout, program)
        if not arrived and (extra := time_after_a_miss(self.stretch, timeout)):
            arrived = wait_readable(self.sock, extra, program)
        if not arrived:
            raise GradeFailure(
                expected=what or f"your program connects to the grader's server within {timeout:g} s",
                happened="no connection arrived", hint=hint)
        conn, addr = self.sock.accept()
        peer = StreamPeer(conn, f"{self.label} ← {addr}")
        peer.address = addr
        self.accepted.append(peer)
        if self.on_accept:
            self.on_accept(peer)
        return peer

    def close(self):
        self.sock.close()


class DatagramPeer:
    """A UDP or Unix datagram socket with a transcript of datagrams."""

    def __init__(self, sock, label):
        self.sock = sock
        self.label = label
        self.wire = Transcript()

    def sendto(self, data, addr):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendto(data, addr)
        self.wire.mark("→", f"datagram {show_bytes(data)}")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.send(data)
        self.wire.mark("→", f"datagram {show_bytes(data)}")

    def recvfrom(self, timeout=DEFAULT_TIMEOUT, what=None, hint=None, bufsize=65536, program=None):
        if not wait_readable(self.sock, timeout, program):
            raise GradeFailure(expected=what or f"a datagram within {timeout:g} s",
                               happened="none arrived", hint=hint, wire=self.wire.render())
        try:
            data, addr = self.sock.recvfrom(bufsize)
        except OSError as e:
            self.wire.mark("←", f"error {errno.errorcode.get(e.errno, e.errno)}")
            raise GradeFailure(expected=what or "a datagram", happened=f"recvfrom failed: {e.strerror}",
                               hint=hint, wire=self.wire.render())
        self.wire.mark("←", f"datagram {show_bytes(data)}")
        return data, addr

    def expect_nothing(self, duration):
        """True if no datagram (or error) arrives within duration seconds."""
        r, _, _ = select.select([self.sock], [], [], duration)
        return not r

    def close(self):
        self.sock.close()


def tcp_connect(port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, what=None, hint=None, rcvbuf=None,
                source=None):
    """Connect to the program; rcvbuf= shrinks the receive buffer first (a slow reader);
    source= connects from that local address (any 127.x.y.z is loopback on Linux).  The
    grader's own port is bound first, so that it is never one that reads the same
    byte-swapped: a program printing its client's port without ntohs() shows."""
    s = _bound(source or ("::" if ":" in host else "0.0.0.0"), 0, socket.SOCK_STREAM, reuse=True)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except OSError as e:
        s.close()
        raise GradeFailure(
            expected=what or f"the grader can connect to your program at {host}:{port}",
            happened=f"connect failed: {e.strerror}", hint=hint)
    s.settimeout(None)
    return StreamPeer(s, f"tcp {host}:{port}")


def _bound(host, port, type_, reuse=False):
    """A socket bound to (host, port); for port 0 never a port whose two bytes are equal
    (0x9c9c), which reads the same byte-swapped: a program that forgot htons/ntohs would
    still reach it, unseen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        s = socket.socket(family, type_)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            s.close()
            raise
        bound = s.getsockname()[1]
        if port or bound != swapped16(bound):
            return s
        s.close()


def tcp_listener(host="127.0.0.1", port=0, backlog=16):
    s = _bound(host, port, socket.SOCK_STREAM, reuse=True)
    s.listen(backlog)
    return Listener(s, f"tcp listener {host}:{s.getsockname()[1]}")


def unix_connect(path, type_=socket.SOCK_STREAM, timeout=DEFAULT_TIMEOUT, what=None, hint=None):
    s = socket.socket(socket.AF_UNIX, type_)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as e:
        s.close()
        raise GradeFailure(expected=what or f"the grader can connect to your program at {path}",
                           happened=f"connect failed: {e.strerror}", hint=hint)
    s.settimeout(None)
    return StreamPeer(s, f"unix {path}")


def _reachable(path):
    """A grader's socket file, connectable by the programs under test (they may run as
    another uid: grader/identity.py); abstract names have no file."""
    if path is not None and not str(path).startswith("\0"):
        os.chmod(path, 0o666)


def unix_listener(path, backlog=16):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    _reachable(path)
    s.listen(backlog)
    return Listener(s, f"unix listener {path}")


def udp_socket(host="127.0.0.1", port=0):
    s = _bound(host, port, socket.SOCK_DGRAM)
    return DatagramPeer(s, f"udp {host}:{s.getsockname()[1]}")


def unix_dgram_socket(path=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if path is not None:
        s.bind(str(path))
        _reachable(path)
    return DatagramPeer(s, f"unix dgram {path or '(unbound)'}")


def closed_port(type_=socket.SOCK_STREAM):
    """(socket, port): a port nothing answers on -- a connect is refused, a datagram draws
    ICMP port unreachable -- held by the returned socket, so that no other program on a
    shared loopback binds it meanwhile (free_port's number is free only when asked).
    TCP: bound to every address, never listening.  UDP: also connected to 127.0.0.1:9,
    so the kernel delivers it no datagram from the program under test."""
    s = _bound("0.0.0.0", 0, type_)
    if type_ == socket.SOCK_DGRAM:
        s.connect(("127.0.0.1", 9))
    return s, s.getsockname()[1]


def free_port(host="127.0.0.1", type_=socket.SOCK_STREAM):
    """A port nobody listens on right now (bind to 0, read it, close), never one that
    reads the same byte-swapped."""
    with _bound(host, 0, type_) as s:
        return s.getsockname()[1]
