"""Grader for chapter 05 -- TIME_WAIT and SO_LINGER.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  These tests look where the behaviour lives: socket states
(`ss`), FIN vs RST on the wire, what the grader's recv() returns, and how long
close() takes.  Every test runs in its own network namespace, so TIME-WAIT entries
from one test never meet another.
"""
import re
import time

from grader import GradeFailure, expect, needs_netns, points, poll_until
from grader.capture import FIN, RST

SETTLE = 1.0        # how long the kernel may take to move a socket to its next state


# -- helpers ------------------------------------------------------------------

def pattern(size):
    """The reply the contract asks for: byte i is 'a' + i % 26."""
    block = bytes(range(ord("a"), ord("z") + 1))
    return (block * (size // 26 + 1))[:size]


def start_server(lab, port, mode, *extra):
    server = lab.start("server", port, mode, *extra)
    server.expect_line(rf"listening on {port}",
                       expected=f"server prints `listening on {port}` once it listens",
                       hint="print the line after listen() succeeds")
    return server


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


# -- who ends up in TIME_WAIT -------------------------------------------------

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


@points(2)
def test_client_closing_first_puts_time_wait_on_the_client(lab):
    """mode wait: the server waits for the client's FIN, so TIME-WAIT is the client's"""
    port = lab.port()
    server = start_server(lab, port, "wait")
    peer = one_exchange(lab, port)
    expect_sent(server, 100)
    expect(peer.expect_silence(0.3),
           expected="after the reply the server keeps the connection open until the grader closes",
           happened=f"the server ended it first: {peer._state()}",
           hint="in `wait` mode read until read() returns 0 (the client's FIN), then close()")
    me = peer.local_port()
    peer.shutdown_write()
    server.expect_line("peer closed", expected="server prints `peer closed` when it reads EOF",
                       hint="read() returns 0 once the client has closed its side")
    expect_closed(server)
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

@points(2)
def test_restart_without_reuseaddr_fails(lab):
    """noreuse: a restart while TIME-WAIT holds the port fails with EADDRINUSE"""
    second, port = restart_over_time_wait(lab, "noreuse")
    rc = second.wait_exit(2)
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


@points(1)
def test_reuseaddr_does_not_allow_two_servers_on_one_port(lab):
    """reuse: a second server on the same wildcard port still fails (Linux)"""
    port = lab.port()
    start_server(lab, port, "close", "reuse")
    second = lab.start("server", port, "close", "reuse")
    rc = second.wait_exit(2)
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
