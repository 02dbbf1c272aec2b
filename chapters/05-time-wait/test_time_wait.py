"""Grader for chapter 05 -- TIME_WAIT and SO_LINGER.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  These tests look where the behaviour lives: socket states
(`ss`), FIN vs RST on the wire, what the grader's recv() returns, and how long
close() takes.  Every test runs in its own network namespace, so TIME-WAIT entries
from one test never meet another.
"""
import re
import time

import pytest

from grader import (GradeFailure, contract, expect, expect_clients_wait_in_queue, expect_quiet_stderr,
                    needs_netns, points, poll_until, swapped16)
from grader.capture import FIN, RST

WAIT_BEFORE_FIN = 0.5  # wait mode: how long the grader keeps its side open after the reply
SETTLE = 1.0        # how long the kernel may take to move a socket to its next state
MAX_SIZE = 64 << 20  # the largest SIZE the Contract allows (67108864)

# The Contract's clauses, by a phrase of each (./lab check 05 --list shows the table).
ARGS = ("server", "MODE is `close`, `wait`")
LISTENS = ("server", "listens on TCP `0.0.0.0:PORT`")
NAMED = ("server", "a failing call is named")
SERVES = ("server", "serves connections one at a time")
QUEUE = ("server", "clients that connect while one is served wait")
BAD = ("server", "a request that is not such a line")
LEAVES = ("server", "a client that leaves before the reply is complete")
MODES = ("server", "after the reply, ends the connection according to MODE")
TIMED = ("server", "after `close()` returns, prints `closed after MS ms`")
QUIET = ("server", "writes nothing on stderr while no call fails")


# -- helpers ------------------------------------------------------------------

def pattern(size):
    """The reply the contract asks for: byte i is 'a' + i % 26."""
    block = bytes(range(ord("a"), ord("z") + 1))
    return (block * (size // 26 + 1))[:size]


def start_server(lab, port, mode, *extra):
    server = lab.start("server", port, mode, *extra)
    m = server.expect_line(r"listening on (\d+)",
                           expected=f"server prints `listening on {port}` once it listens",
                           hint="print the line after listen() succeeds")
    printed = int(m.group(1))
    expect(printed == port, expected=f"server prints `listening on {port}`",
           happened=f"it printed `listening on {printed}`",
           hint="htons() the port into sin_port: without it the server listens on the port with "
                "its two bytes swapped" if printed == swapped16(port) else
                "listen on the PORT from argv[1] and print it")
    return server


def pattern_mismatch(data, offset):
    """Where `data`, received from reply byte `offset` on, leaves the pattern; None if it
    does not."""
    want = pattern(offset % 26 + len(data))[offset % 26:]
    if data == want:
        return None
    return next(i for i in range(len(data)) if data[i] != want[i])


def connect(lab, port, rcvbuf=None):
    """A grader client; rcvbuf shrinks its receive buffer (set before connect, so the
    window it advertises is small from the start)."""
    return lab.connect(port, rcvbuf=rcvbuf)


def expect_sent(server, size):
    server.expect_line(rf"sent {size} bytes", expected=f"server prints `sent {size} bytes` after the reply",
                       hint="the request is one line with a decimal SIZE; reply with exactly SIZE bytes")


def expect_closed(server, timeout=2.0, hint=None):
    """Wait for `closed after MS ms`; returns (MS, the line's time since the program started)."""
    m = server.expect_line(r"closed after (\d+) ms", timeout=timeout,
                           expected=f"server prints `closed after MS ms` within {timeout:g} s", hint=hint)
    return int(m.group(1)), server.stdout_lines[server.cursor - 1][0]


def line_time(server, regex):
    """When (seconds since start) the program printed the first line matching regex."""
    for t, text, _ in server.stdout_lines:
        if re.fullmatch(regex, text.strip()):
            return t
    return None


def time_wait(lab, local_port, peer_port=None):
    """TIME-WAIT entries of this test's connection (both ports given: exactly that one, so
    entries left by other programs on a shared loopback never count)."""
    return lab.sockets("tcp", state="TIME-WAIT", local_port=local_port, peer_port=peer_port)


def one_exchange(lab, port, size=100):
    """Connect, request `size` bytes and check the reply; returns the peer, still open."""
    peer = lab.connect(port)
    peer.send(f"{size}\n")
    data = peer.recv_exactly(size, what=f"the {size}-byte reply",
                             hint="reply with exactly SIZE bytes of the pattern abc...z")
    expect(data == pattern(size), expected=f"{size} bytes: abcdefghijklmnopqrstuvwxyzabc...",
           happened=f"got {data[:40]!r}...", hint="byte i of the reply is 'a' + i % 26")
    return peer


def expect_normal_close(peer, hint="in `close` mode call close() right after the reply"):
    """The server ends the connection with FIN (the grader reads EOF), not RST."""
    how = peer.wait_close(SETTLE)
    expect(how == "eof",
           expected="after the reply the server closes the connection normally (FIN: the grader reads EOF)",
           happened="the connection was reset (RST)" if how == "reset" else f"nothing within {SETTLE:g} s",
           hint=hint + (", without SO_LINGER" if how == "reset" else ""))


def read_to_the_end(peer, timeout):
    """Everything the server sends until it closes; (data, 'eof' | 'reset' | None)."""
    how = peer.wait_close(timeout)
    data, peer.buffer = peer.buffer, b""
    return data, how


def restart_over_time_wait(lab, *reuse_arg):
    """Run a server that closes first, so its port has a TIME-WAIT entry; stop it;
    start a second one on the same port.  Returns (second server, port)."""
    port = lab.port()
    first = start_server(lab, port, "close", *reuse_arg)
    peer = one_exchange(lab, port)
    expect_normal_close(peer)
    peer.close()
    tw = poll_until(lambda: time_wait(lab, port), SETTLE)
    expect(tw, expected=f"a TIME-WAIT entry on the server's port {port} after it closed first",
           happened="there is none", sockets=lab.sockets_text,
           hint="a normal close() (no SO_LINGER) by the side that closes first ends in TIME_WAIT")
    first.kill()
    expect(not lab.sockets("tcp", state="LISTEN", local_port=port),
           expected="the first server is gone", happened="its port still listens", sockets=lab.sockets_text)
    return lab.start("server", port, "close", *reuse_arg), port


# -- arguments and the listening socket ------------------------------------------

INVALID_ARGS = [(), ("linger=0",), ("linger=3601",), ("linger=",), ("linger=1x",), ("shut",),
                ("close", "no-reuse"), ("close", "REUSE"), ("close", "reuse", "extra")]


@contract(*ARGS)
@points(1)
def test_invalid_arguments_are_refused(lab):
    """server refuses an unknown MODE, linger=0 or 3601, and a third argument other than reuse/noreuse"""
    for args in INVALID_ARGS:
        port = lab.port()
        server = lab.start("server", port, *args)
        shown = " ".join(args) or "(no MODE)"
        poll_until(lambda: not server.running() or lab.sockets("tcp", state="LISTEN", local_port=port), 2)
        rc = server.wait_exit(0.1)
        expect(rc == 1,
               expected=f"`server {port} {shown}` prints a message on stderr and exits 1, before "
                        "listening",
               happened=f"it {server.status()}" + (" and listens" if rc is None else ""),
               hint="MODE is close, wait, abort or linger=N with N from 1 to 3600; the third "
                    "argument, if any, is exactly `reuse` or `noreuse`: refuse anything else with "
                    "fatal(0, ...)",
               sockets=lab.sockets_text)
        expect(server.stderr_text().strip(), expected=f"`server {port} {shown}`: a message on stderr",
               happened="exit 1 with nothing on stderr")
        server.kill()


@contract(*LISTENS)
@points(1)
def test_server_listens_on_every_address(lab):
    """server listens on 0.0.0.0:PORT, every local address (here with linger=3600, the largest)"""
    port = lab.port()
    server = start_server(lab, port, "linger=3600")
    listening = lab.listening(server, local_port=port)
    expect(listening and listening[0].local_host == "0.0.0.0",
           expected=f"`ss -ltn` shows the server listening on 0.0.0.0:{port}",
           happened=f"it listens on {listening[0].local}" if listening else "nothing listens there",
           hint="bind INADDR_ANY (htonl(INADDR_ANY)), not 127.0.0.1: the server must be "
                "reachable on every address of the host", sockets=lab.sockets_text)


# -- the request ----------------------------------------------------------------

@contract(*SERVES)
@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["lf", "crlf"])
@points(1)
def test_request_in_pieces_is_read_to_its_line_end(lab, end):
    """server reads the whole request line, sent byte by byte (LF) or ended by CRLF"""
    port = lab.port()
    server = start_server(lab, port, "close")
    peer = connect(lab, port)
    shown = "26" + end.replace("\r", "\\r").replace("\n", "\\n")
    try:
        # LF: byte by byte (a reader must wait for the rest of the line).  CRLF: in one
        # segment, so a reader that stops at the \r surely leaves the \n unread.
        peer.send("26" + end, pieces=1 if end == "\n" else None)
        ms, _ = expect_closed(server, timeout=2.5)
    except GradeFailure:
        try:                                    # what the server made of it, if anything
            server.expect_line(r"bad request|sent \d+ bytes", timeout=0.5)
        except GradeFailure:
            pass
        bad = "bad request" in server.stdout_text()
        early = re.search(r"sent (\d+) bytes", server.stdout_text())
        if early and early.group(1) != "26":
            raise GradeFailure(
                expected=f"the request `{shown}` is answered with 26 bytes",
                happened=f"the server answered the first piece alone: `sent {early.group(1)} bytes`, "
                         "and closed before the rest of the line had come",
                hint="keep reading until the '\\n': one read() may return only part of the line",
                wire=peer.wire.render())
        raise GradeFailure(
            expected=f"the request `{shown}` is answered with 26 bytes",
            happened=f"the server {'printed `bad request`' if bad else server.status()}; "
                     f"it printed: {server.stdout_text()!r}",
            hint="a line may end with \\r\\n: drop the \\r before the \\n" if bad else
                 "keep reading until the '\\n': one read() may return part of the line",
            wire=peer.wire.render())
    sent = re.search(r"sent (\d+) bytes", server.stdout_text())
    expect(sent and sent.group(1) == "26",
           expected=f"the request `{shown}`: `sent 26 bytes`",
           happened=f"the server printed `sent {sent.group(1)} bytes`" if sent else
                    f"it printed: {server.stdout_text()!r}",
           hint="keep reading until the '\\n': one read() may return only the first piece, `2`")
    data, how = read_to_the_end(peer, 2)        # read only now, after the server's close()
    expect(how == "eof" and data == pattern(26),
           expected=f"the grader, reading after the server's close(), gets the 26 bytes and then "
                    "EOF (a FIN)",
           happened=f"{len(data)} bytes, then " + {"reset": "a reset (RST)", "eof": "EOF"}.get(
               how, "nothing more"),
           hint="close() sends RST when request bytes are still unread -- here the \\n after "
                "the \\r: read the line up to and including its \\n" if how == "reset" else None,
           wire=peer.wire.render())


@contract(*SERVES)
@contract(*BAD)
@points(1)
def test_largest_size_is_served_and_one_more_refused(lab):
    """server answers SIZE 67108864 in full, and refuses 67108865 as a bad request"""
    port = lab.port()
    server = start_server(lab, port, "close")
    peer = connect(lab, port)
    peer.send(f"{MAX_SIZE}\n")
    got, how, wrong_at = 0, None, None
    buf = bytearray(1 << 20)
    deadline = time.monotonic() + 20      # a bound for a server that stops sending, not a speed test
    peer.sock.settimeout(0.2)
    while got < MAX_SIZE + 1 and time.monotonic() < deadline:
        try:
            n = peer.sock.recv_into(buf)
        except TimeoutError:
            continue
        except ConnectionResetError:
            how = "reset"
            break
        if n == 0:
            how = "eof"
            break
        if wrong_at is None:
            bad = pattern_mismatch(bytes(buf[:n]), got)
            if bad is not None:
                wrong_at = got + bad
        got += n
    peer.sock.settimeout(None)
    lab.note("reply", f"{got} bytes, then {how or 'nothing more'}")
    if got == 0:
        try:                                    # what the server made of the request
            server.expect_line(r"bad request|sent \d+ bytes", timeout=0.5)
        except GradeFailure:
            pass
    if got == 0 and "bad request" in server.stdout_text():
        raise GradeFailure(expected=f"SIZE {MAX_SIZE}, the largest allowed, is answered",
                           happened="the server printed `bad request`",
                           hint=f"the allowed range includes its end: 0 <= SIZE <= {MAX_SIZE}")
    expect(got == MAX_SIZE and how == "eof",
           expected=f"exactly {MAX_SIZE} bytes, then EOF", happened=f"{got} bytes, then "
           + {"reset": "a reset", "eof": "EOF"}.get(how, "nothing more"))
    expect(wrong_at is None, expected="byte i of the reply is 'a' + i % 26, all along",
           happened=f"byte {wrong_at} is not", hint="the pattern goes on across your write "
           "buffers: byte i depends on i, not on its place in a buffer")
    expect_sent(server, MAX_SIZE)
    peer = connect(lab, port)
    peer.send(f"{MAX_SIZE + 1}\n")
    server.expect_line("bad request", expected=f"SIZE {MAX_SIZE + 1} is one too many: `bad request`",
                       hint=f"refuse SIZE > {MAX_SIZE}")
    expect_refused(peer)


def expect_refused(peer):
    """After `bad request`: no data, and the connection closed (EOF)."""
    how = peer.wait_close(SETTLE)
    expect(how == "eof" and not peer.buffer,
           expected="after `bad request` the server closes that connection: no data, then EOF",
           happened=f"got {len(peer.buffer)} bytes and then " + {"eof": "EOF", "reset": "a reset"}.get(
               how, f"nothing for {SETTLE:g} s: the connection stays open"),
           hint="close the connection on the bad-request path too (and so free its descriptor)",
           wire=peer.wire.render())


BAD_REQUESTS = ["hello\n", "\n", "12abc\n", "-1\n", "0x10\n"]


@contract(*BAD)
@contract(*SERVES)
@points(2)
def test_bad_requests_are_refused_and_closed(lab):
    """server answers a request that is not a number with `bad request`, closes, and serves on (SIZE 0 too)"""
    port = lab.port()
    server = start_server(lab, port, "close")
    for request in BAD_REQUESTS:
        peer = connect(lab, port)
        peer.send(request)
        shown = request.replace("\n", "\\n")
        try:
            server.expect_line(r"bad request|sent \d+ bytes", timeout=1.5)
        except GradeFailure:
            raise GradeFailure(expected=f"the request `{shown}` makes the server print `bad request`",
                               happened=f"the server {server.status()}; it printed nothing about it",
                               hint="a request is a line of digits only: anything else is a bad request")
        said = server.stdout_lines[server.cursor - 1][1].strip()
        expect(said == "bad request",
               expected=f"the request `{shown}` makes the server print `bad request`",
               happened=f"it answered it: `{said}`",
               hint="check that the whole line is digits: atoi/atol read `hello` as 0 and `12abc` "
                    "as 12; strtol's end pointer tells where the number stopped")
        expect_refused(peer)
        peer.close()
    peer = connect(lab, port)
    peer.send("0\n")
    expect(peer.wait_close(SETTLE) == "eof" and not peer.buffer,
           expected="SIZE 0 is a request like any other: no data, then EOF",
           happened=f"{len(peer.buffer)} bytes, then {peer.state()}")
    expect_sent(server, 0)
    peer = connect(lab, port)
    request = "0" * 28 + "30"                     # 30 bytes: the longest line that must be taken
    peer.send(request + "\n")
    data = peer.recv_exactly(30, what=f"the 30-byte reply to `{request}`",
                             hint="leading zeros are digits too; a request line of up to 30 bytes "
                                  "must fit in your buffer")
    expect(data == pattern(30), expected="30 bytes of the pattern", happened=f"got {data!r}")
    expect_sent(server, 30)


@contract(*QUEUE)
@points(1)
def test_clients_wait_in_the_listen_queue(lab):
    """server lets four clients wait in the listen queue while it serves another"""
    port = lab.port()
    server = start_server(lab, port, "close")
    busy = connect(lab, port)           # accepted, and the server waits for its request
    expect_clients_wait_in_queue(lab, server, port)
    busy.send("26\n")
    expect_sent(server, 26)


@contract(*QUIET)
@points(1)
def test_nothing_on_stderr_when_nothing_fails(lab):
    """server warns about nothing after a bad request and a reply that both went well"""
    port = lab.port()
    server = start_server(lab, port, "close")
    peer = connect(lab, port)
    peer.send("hello\n")
    server.expect_line(r"bad request|sent \d+ bytes")     # right or wrong: other tests say
    peer.wait_close(SETTLE)
    peer.close()
    one_exchange(lab, port, size=26).wait_close(SETTLE)
    expect_sent(server, 26)
    expect_closed(server)       # printed after the close() of both connections: all is said
    expect_quiet_stderr(server, "it refused `hello` and answered `26`")


# -- who ends up in TIME_WAIT -------------------------------------------------

@contract(*MODES)
@points(2)
def test_server_closing_first_ends_in_time_wait(lab):
    """mode close: the server closes first, so TIME-WAIT sits on the server's port"""
    port = lab.port()
    server = start_server(lab, port, "close")
    peer = one_exchange(lab, port)
    expect_normal_close(peer)
    expect_sent(server, 100)
    expect_closed(server)
    me = peer.local_port()
    peer.close()
    tw = poll_until(lambda: time_wait(lab, port, me), SETTLE)
    expect(tw,
           expected=f"`ss -tan state time-wait` shows 127.0.0.1:{port} -> 127.0.0.1:{me}: "
                    "the side that sent the first FIN (your server) holds TIME_WAIT",
           happened="no TIME-WAIT entry on the server's port", sockets=lab.sockets_text,
           hint="a normal close() by the side that closes first ends in TIME_WAIT; "
                "SO_LINGER {1, 0} would skip it with a reset")
    expect(tw[0].timer == "timewait",
           expected="the entry carries the timewait timer (`ss -tno`: timer:(timewait,…))",
           happened=f"timer: {tw[0].timer or '(none)'}", sockets=lab.sockets_text)
    expect(not time_wait(lab, me, port),
           expected=f"no TIME-WAIT on the grader's port {me}: it closed second (passive close)",
           happened="there is one", sockets=lab.sockets_text)


@contract(*MODES)
@contract(*TIMED)
@points(2)
def test_client_closing_first_puts_time_wait_on_the_client(lab):
    """mode wait: the server waits for the client's FIN, so TIME-WAIT is the client's"""
    port = lab.port()
    server = start_server(lab, port, "wait")
    peer = one_exchange(lab, port)
    expect_sent(server, 100)
    peer.send("more bytes, to be discarded\n")   # wait mode reads on until EOF, not just once
    expect(peer.expect_silence(WAIT_BEFORE_FIN),
           expected="after the reply the server keeps the connection open until the grader closes",
           happened=f"the server ended it first: {peer._state()}",
           hint="in `wait` mode read until read() returns 0 (the client's FIN), then close()")
    me = peer.local_port()
    peer.shutdown_write()
    server.expect_line("peer closed", expected="server prints `peer closed` when it reads EOF",
                       hint="read() returns 0 once the client has closed its side")
    ms, _ = expect_closed(server)
    expect(ms < WAIT_BEFORE_FIN * 1000 * 0.8,
           expected="`closed after MS ms` times the close() call alone: a few ms, although the "
                    f"grader waited {WAIT_BEFORE_FIN * 1000:.0f} ms before sending its FIN",
           happened=f"`closed after {ms} ms`",
           hint="start the clock right before close(), after the wait for the client's EOF")
    expect(peer.wait_close(SETTLE) == "eof", expected="the server's FIN follows the grader's",
           happened=peer._state(), hint="close() normally, without SO_LINGER")
    tw = poll_until(lambda: time_wait(lab, me, port), SETTLE)
    expect(tw, expected=f"TIME-WAIT on the grader's port {me}: the client sent the first FIN",
           happened="none there", sockets=lab.sockets_text)
    leftover = poll_until(lambda: not lab.sockets("tcp", local_port=port, peer_port=me), SETTLE)
    expect(leftover, expected=f"nothing left on the server's side ({port} -> {me}): the passive closer "
                              "goes CLOSE_WAIT -> LAST_ACK -> CLOSED, with no TIME_WAIT",
           happened="the server's side is still there", sockets=lab.sockets_text)


# -- SO_REUSEADDR ---------------------------------------------------------------

@contract(*LISTENS)
@contract(*NAMED)
@points(2)
def test_restart_without_reuseaddr_fails(lab):
    """noreuse: a restart while TIME-WAIT holds the port fails with EADDRINUSE"""
    second, port = restart_over_time_wait(lab, "noreuse")
    rc = second.wait_expected_exit(2)
    expect(rc == 1,
           expected="with `noreuse` the restarted server cannot bind: exit 1 with "
                    "`bind: Address already in use (98)`",
           happened=f"it {second.status()}" + (" (it is listening)" if rc is None else ""),
           hint="set SO_REUSEADDR only when the third argument is not `noreuse`: without it the "
                "TIME-WAIT entry on the port makes bind() fail", sockets=lab.sockets_text)
    expect(second.wait_stderr(r"bind.*Address already in use \(98\)", 0.5),
           expected="stderr says: bind: Address already in use (98)",
           happened=f"stderr was: {second.stderr_text() or '(empty)'}",
           hint="report the failing call by name: fatal(errno, \"bind\")")


@contract(*LISTENS)
@points(2)
def test_restart_with_reuseaddr_succeeds(lab):
    """reuse: the restarted server binds at once despite the TIME-WAIT entry"""
    second, port = restart_over_time_wait(lab, "reuse")
    try:
        second.expect_line(rf"listening on {port}", timeout=2)
    except GradeFailure:
        stderr = second.stderr_text()
        in_use = "Address already in use" in stderr
        raise GradeFailure(
            expected=f"the restarted server listens on {port} while the old connection is in TIME-WAIT",
            happened=f"it {second.status()}; stderr: {stderr or '(empty)'}",
            hint="setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) BEFORE bind(): "
                 "set afterwards it changes nothing" if in_use else None,
            sockets=lab.sockets_text())
    expect(time_wait(lab, port), expected="the TIME-WAIT entry is still there (it lasts 60 s)",
           happened="it is gone", sockets=lab.sockets_text)
    one_exchange(lab, port)


@contract(*NAMED)
@points(1)
def test_reuseaddr_does_not_allow_two_servers_on_one_port(lab):
    """reuse: a second server on the same wildcard port still fails (Linux)"""
    port = lab.port()
    start_server(lab, port, "close", "reuse")
    second = lab.start("server", port, "close", "reuse")
    rc = second.wait_expected_exit(2)
    expect(rc == 1,
           expected=f"a second server on 0.0.0.0:{port} fails: bind: Address already in use (98), exit 1",
           happened=f"it {second.status()}" + (" -- two sockets listen on one port" if rc is None else ""),
           hint="SO_REUSEADDR lets bind() ignore TIME-WAIT entries, not a live listener; "
                "SO_REUSEPORT is the option that shares a port, and this lesson does not want it",
           sockets=lab.sockets_text)
    expect(second.wait_stderr(r"bind.*Address already in use \(98\)", 0.5),
           expected="stderr says: bind: Address already in use (98)",
           happened=f"stderr was: {second.stderr_text() or '(empty)'}")


# -- SO_LINGER {1, 0}: abortive close --------------------------------------------

@contract(*MODES)
@points(2)
def test_abortive_close_resets_the_peer(lab):
    """mode abort: the client reads the reply, then ECONNRESET, and no TIME-WAIT"""
    port = lab.port()
    server = start_server(lab, port, "abort")
    peer = one_exchange(lab, port, size=10)
    how = peer.wait_close(SETTLE)
    expect(how == "reset",
           expected="after the reply, recv() fails with ECONNRESET (104): an abortive close",
           happened="the grader read a normal EOF (a FIN)" if how == "eof" else f"nothing within {SETTLE:g} s",
           hint="struct linger {.l_onoff = 1, .l_linger = 0} with setsockopt(SO_LINGER) on the "
                "connected socket, then close()")
    expect_closed(server)
    me = peer.local_port()
    expect(not time_wait(lab, port, me) and not time_wait(lab, me, port),
           expected="no TIME-WAIT entry on either side: a reset skips it",
           happened="there is one", sockets=lab.sockets_text)


@needs_netns
@contract(*MODES)
@points(1)
def test_abortive_close_sends_rst_not_fin(lab):
    """mode abort: the wire shows RST from the server and no FIN"""
    port = lab.port()
    server = start_server(lab, port, "abort")
    rec = lab.capture()
    peer = one_exchange(lab, port, size=10)
    peer.wait_close(SETTLE)
    expect_closed(server)
    rec.settle()
    mine = [s for s in rec.tcp(port) if s.sport == port]
    expect(any(s.flags & RST for s in mine) and not any(s.flags & FIN for s in mine),
           expected=f"segments from port {port} end with [R.] and none carries FIN",
           happened="flags from the server: " + " ".join(s.flag_text for s in mine),
           hint="with SO_LINGER {1, 0} close() sends RST instead of FIN",
           packets=lambda: rec.render(port))


# -- default close and SO_LINGER {1, N} -------------------------------------------

@contract(*MODES)
@contract(*SERVES)
@points(2)
def test_default_close_delivers_everything_then_eof(lab):
    """mode close: data still queued at close() arrives in full, then EOF"""
    port = lab.port()
    size = 256 * 1024
    server = start_server(lab, port, "close")
    peer = connect(lab, port, rcvbuf=4096)
    peer.send(f"{size}\n")
    expect_sent(server, size)
    ms, _ = expect_closed(server, hint="a default close() returns at once: the kernel sends the rest")
    queued = lab.sockets("tcp", local_port=port, peer_port=peer.local_port())
    lab.note("at close", "the server's socket right after close():\n"
             + ("\n".join(str(s) for s in queued) or "(gone)"))
    data, how = read_to_the_end(peer, 3)
    expect(how == "eof", expected=f"{size} bytes, then EOF, although the grader started reading "
                                  "only after the server's close()",
           happened=f"{len(data)} bytes, then " + ("the connection was reset (RST)" if how == "reset"
                                                    else "nothing more within 3 s"),
           hint="a default close() keeps queued data and sends FIN after it; SO_LINGER {1, 0} "
                "makes it a reset that throws the data away")
    expect(len(data) == size and data == pattern(size),
           expected=f"all {size} bytes of the pattern, then EOF",
           happened=f"{len(data)} bytes" + ("" if data == pattern(len(data)) else ", not the pattern"))


@contract(*MODES)
@contract(*TIMED)
@points(2)
def test_lingering_close_waits_for_a_peer_that_does_not_read(lab):
    """mode linger=1: close() blocks about 1 s when the client does not read"""
    port = lab.port()
    size = 100_000
    server = start_server(lab, port, "linger=1")
    peer = connect(lab, port, rcvbuf=1)   # the kernel rounds it up to its minimum, ~2 KB
    peer.send(f"{size}\n")
    expect_sent(server, size)
    ms, closed_at = expect_closed(
        server, timeout=2.5,
        hint="l_linger is in seconds: linger=1 means {.l_onoff = 1, .l_linger = 1}")
    took = closed_at - line_time(server, rf"sent {size} bytes")
    expect(0.9 <= took <= 1.6 and 900 <= ms <= 1600,
           expected="close() blocks for about 1 s (linger=1) because the data cannot be delivered, "
                    "and the server prints how long it took",
           happened=f"`closed after {ms} ms`, {took * 1000:.0f} ms after `sent {size} bytes`",
           hint="SO_LINGER must be on (l_onoff = 1) with l_linger = 1, set on the connected socket "
                "before close(); print the time close() itself took" if ms < 900
           else "measure only the close() call, with clock_gettime(CLOCK_MONOTONIC)")
    data, how = read_to_the_end(peer, 3)
    expect(how == "eof" and data == pattern(size),
           expected="Linux keeps the data after the linger time runs out: the grader, reading now, "
                    f"gets all {size} bytes and then EOF",
           happened=f"{len(data)} bytes, then " + {"reset": "a reset", "eof": "EOF"}.get(how, "nothing"))


@contract(*MODES)
@contract(*TIMED)
@points(1)
def test_lingering_close_returns_once_the_peer_has_everything(lab):
    """mode linger=1: close() returns at once when the client reads everything"""
    port = lab.port()
    size = 100_000
    server = start_server(lab, port, "linger=1")
    peer = lab.connect(port)
    started = time.monotonic()
    peer.send(f"{size}\n")
    data, how = read_to_the_end(peer, 2)
    eof_after = time.monotonic() - started
    expect(how == "eof" and data == pattern(size), expected=f"all {size} bytes, then EOF",
           happened=f"{len(data)} bytes, then " + {"reset": "a reset", "eof": "EOF"}.get(how, "nothing within 2 s"))
    expect(eof_after < 0.5,
           expected="the FIN comes right after the data (SO_LINGER only waits for the peer; it is not a delay)",
           happened=f"EOF came {eof_after * 1000:.0f} ms after the request",
           hint="do not sleep: close() itself waits, and only while data is unacknowledged")
    ms, _ = expect_closed(server, timeout=1)
    expect(ms < 500, expected="`closed after MS ms` with MS well under the 1000 ms linger time",
           happened=f"`closed after {ms} ms`",
           hint="a lingering close() returns as soon as the peer has acknowledged the data and the FIN")


# -- a client that leaves early ---------------------------------------------------
# Last in the file: a server that dies of SIGPIPE is named here, after any more specific
# mistake the earlier tests explain.

@contract(*LEAVES)
@points(1)
def test_client_leaving_mid_reply_does_not_end_the_server(lab):
    """server survives a client that hangs up in the middle of a large reply (no SIGPIPE)"""
    port = lab.port()
    server = start_server(lab, port, "close")
    fds = server.fd_count()
    peer = connect(lab, port, rcvbuf=4096)
    peer.send(f"{16 << 20}\n")                 # far more than the socket buffers hold
    peer.recv_exactly(1, what="the first byte of the reply to a request for 16 MiB")
    # Hang up with most of the reply unsent: FIN first, then RST (unread data).  The server's
    # next write then fails with EPIPE -- and raises SIGPIPE -- rather than ECONNRESET.
    peer.shutdown_write()
    poll_until(lambda: lab.sockets("tcp", state="CLOSE-WAIT", local_port=port), SETTLE)
    peer.reset()
    try:
        one_exchange(lab, port, size=26)
    except GradeFailure:
        server.wait_exit(0.5)
        raise GradeFailure(
            expected="after a client hung up mid-reply, the next client is served",
            happened=f"the server {server.status()}",
            hint="a write to a connection the peer has closed raises SIGPIPE, which kills: "
                 "signal(SIGPIPE, SIG_IGN) at start-up, then the failed write returns EPIPE -- "
                 "close that connection and serve the next" if server.returncode == -13 else
                 "a failed write ends that connection only: close it and accept the next")
    expect_sent(server, 26)
    back = poll_until(lambda: server.fd_count() == fds, SETTLE)
    expect(back, expected=f"the server holds {fds} descriptors again, as before the two clients",
           happened=f"it holds {server.fd_count()}",
           hint="close the connection on the failed-write path too: each such client leaks a descriptor")
