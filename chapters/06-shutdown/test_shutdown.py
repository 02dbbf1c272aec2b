"""Grader for chapter 06 -- shutdown vs close.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  The grader plays the server: it decides when replies are sent
(before or after the client's FIN), when it "dies" (closes), and whether it resets.
"""
import socket
import struct
import time

from grader import GradeFailure, expect, points

TCP_CLOSE = 7           # tcpi_state after a reset
FIN_FLAG = 0x01


def tcp_state(sock):
    """The kernel's TCP state of a grader socket (first byte of struct tcp_info)."""
    return struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[:1])[0]


def wait_reset(peer, timeout=1.0):
    """After sending to a client that closed: True once its kernel answered with RST.

    The reset arrives with no event we can wait for on a socket that has already
    seen EOF (recv keeps returning 0), so poll the socket's TCP state, bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tcp_state(peer.sock) == TCP_CLOSE:
            peer.wire.mark("←", "RST")
            return True
        time.sleep(0.005)
    return False


def capture_if_possible(lab):
    """A packet recorder when this test may capture (own namespace or root), else None."""
    return lab.capture() if lab.can_capture() else None


def fins_from(rec, port):
    if rec is None:
        return []
    rec.settle()
    return [s for s in rec.tcp(port) if s.sport == port and s.flags & FIN_FLAG]


def start_client(lab, name, *args):
    """Start a client program against a grader server; returns (program, server peer)."""
    listener = lab.listen()
    prog = lab.start(name, "127.0.0.1", listener.port, *args)
    peer = listener.accept(program=prog, hint=f"{name} connects to HOST PORT from its arguments")
    return prog, peer


def expect_request(peer, text, hint="send each line of stdin as it is, newline included"):
    got = peer.recv_line(what=f"the line `{text}` from your program", hint=hint)
    expect(got == text, expected=f"the line `{text}`", happened=f"got `{got}`", hint=hint)


def send_or_explain(peer, data, expected, hint):
    """The grader's own send; a failure here means the program already reset us."""
    try:
        peer.send(data)
    except GradeFailure as e:
        raise GradeFailure(expected=expected, happened=e.happened, hint=hint, wire=peer.wire.render())


# -- graceclient: half-close ------------------------------------------------------

HALF_CLOSE_EXPECTED = ("after stdin ended, the server saw EOF (a FIN) within 1 s, and your client "
                       "still printed the reply the server sent after that")
HALF_CLOSE_HINT = ("close() gives up both directions, and sends RST when unread data is queued; "
                   "shutdown(fd, SHUT_WR) sends FIN and keeps the read side open (README, \"Two directions, ended one at a time\")")


@points(3)
def test_client_half_closes_after_stdin_ends(lab):
    """graceclient half-closes after stdin ends and still prints the late replies"""
    client, server = start_client(lab, "graceclient")
    client.write_stdin("data1\ndata2\n")
    expect_request(server, "data1")
    server.send("Hi, data1\n")          # an early reply: the client may not have read it yet
    expect_request(server, "data2")

    client.close_stdin()
    stdin_ended = time.monotonic()
    how = server.wait_close(timeout=1.0)
    ms = int((time.monotonic() - stdin_ended) * 1000)
    if how != "eof":
        if how == "reset":
            happened = f"the server saw a reset (RST) {ms} ms after stdin ended"
        elif server.buffer:
            happened = f"no FIN within 1 s; the client sent more: {server.buffer!r}"
        else:
            happened = ("no FIN within 1 s: the client never told the server it had finished, "
                        "so both sides wait for each other")
        client.wait_exit(0.3)
        raise GradeFailure(expected=HALF_CLOSE_EXPECTED, happened=f"{happened}; your client {client.status()}",
                           hint=HALF_CLOSE_HINT, wire=server.wire.render())

    # The late reply: sent after the client's FIN.  A half-closed client still reads it.
    send_or_explain(server, "Hi, data2\n", HALF_CLOSE_EXPECTED, HALF_CLOSE_HINT)
    server.close()
    for line in ("Hi, data1", "Hi, data2"):
        try:
            client.expect_line(line, timeout=1.5)
        except GradeFailure:
            client.wait_exit(0.3)
            raise GradeFailure(expected=HALF_CLOSE_EXPECTED,
                               happened=f"your client {client.status()} without printing \"{line}\"",
                               hint="after shutdown(SHUT_WR), keep reading and printing until read() "
                                    "returns 0: the server's replies may come after your FIN",
                               wire=server.wire.render())
    client.expect_line("server closed", timeout=1.0,
                       expected="after the server's EOF the client prints `server closed`",
                       hint="read() returning 0 is the server's FIN: print the line, close, exit 0")
    client.expect_exit(0, hint="exit 0 once the server has closed its side too")


@points(2)
def test_close_gives_up_late_replies(lab):
    """graceclient `close`: close() gives up both directions, a late reply is refused with RST"""
    client, server = start_client(lab, "graceclient")
    client.write_stdin("data1\nclose\n")
    expect_request(server, "data1")
    how = server.wait_close(timeout=1.0)
    expect(how == "eof",
           expected="right after the `close` line the server sees EOF (a FIN) within 1 s",
           happened={"reset": "it saw a reset (RST)", None: (
               f"the client sent {server.buffer!r} instead" if server.buffer
               else "nothing arrived: the connection is still open")}.get(how, how),
           hint="a line `close` means: close(fd) now (no shutdown), then exit 0",
           wire=server.wire.render)

    send_or_explain(server, "Hi, data1\n", "the server could send its (late) reply", None)
    refused = wait_reset(server, timeout=1.0)
    expect(refused,
           expected="the late reply `Hi, data1` is refused: the client's kernel answers it with a "
                    "reset (RST), because a closed socket can no longer receive",
           happened="the reply was accepted: your client's socket could still read after `close`",
           hint="close() gives up both directions; shutdown(SHUT_WR) only the sending one. "
                "For `close`, call close() -- not shutdown()",
           wire=server.wire.render())
    server.close()
    client.expect_exit(0, timeout=1.5, hint="after close(), exit 0: there is nothing left to read from")
    expect("Hi, data1" not in client.stdout_text(),
           expected="the client prints no reply after `close`",
           happened=f"it printed: {client.stdout_text()!r}",
           hint="after close() there is no socket left to read replies from")


# -- forkclose: reference counting ---------------------------------------------------

def start_forkclose(lab, mode):
    rec = capture_if_possible(lab)
    prog, server = start_client(lab, "forkclose", mode)
    client_port = server.address[1]
    prog.expect_line(f"parent called {mode}", timeout=1.5,
                     expected=f"the parent prints `parent called {mode}` right after it calls {mode}()",
                     hint="fork() first, then let the parent close/shut down and print the line")
    return prog, server, rec, client_port


def child_status(prog, timeout=1.5):
    m = prog.expect_line(r"child (exited with status|killed by signal) (\d+)", timeout=timeout,
                         expected="the parent waits for the child and prints "
                                  "`child exited with status N` (or `child killed by signal N`)",
                         hint="waitpid() the child, then print WEXITSTATUS or WTERMSIG")
    return m.group(1), int(m.group(2))


@points(2)
def test_close_with_a_forked_child_sends_no_fin(lab):
    """forkclose close: the parent's close() sends no FIN while the child holds the socket"""
    prog, server, rec, client_port = start_forkclose(lab, "close")
    quiet = server.expect_silence(0.3)       # time is the behaviour here: nothing may happen
    fins = fins_from(rec, client_port)
    expect(quiet and not fins,
           expected="no FIN (nor anything else) for 0.3 s after the parent's close(): the child "
                    "still holds a descriptor for the same socket",
           happened="the server saw " + ("a FIN on the wire" if fins else server._state()),
           hint="close() only drops this process's reference; the connection ends when the last "
                "descriptor is closed. The child must keep its copy open until its stdin ends",
           wire=server.wire.render(), packets=lambda: rec.render(client_port) if rec else None)

    prog.close_stdin()
    line = server.recv_line(timeout=1.5, what="the child's line `bye from the child` once its stdin ended",
                            hint="the child's descriptor still works after the parent's close()")
    expect(line == "bye from the child", expected="the line `bye from the child`",
           happened=f"got `{line}`")
    expect(server.wait_close(timeout=1.0) == "eof",
           expected="EOF (a FIN) once the child -- the last holder -- closes or exits",
           happened=server._state(), hint="the child closes its descriptor (or exits) after writing")
    what, n = child_status(prog)
    expect((what, n) == ("exited with status", 0),
           expected="`child exited with status 0`", happened=f"`child {what} {n}`")
    prog.expect_exit(0)


@points(2)
def test_shutdown_sends_fin_despite_the_child(lab):
    """forkclose shutdown: shutdown(SHUT_WR) sends a FIN although the child holds the socket"""
    prog, server, rec, client_port = start_forkclose(lab, "shutdown")
    how = server.wait_close(timeout=1.0)
    expect(how == "eof",
           expected="EOF (a FIN) within 1 s of the parent's shutdown(), while the child still runs",
           happened={"reset": "the connection was reset (RST)", None: (
               f"the program sent {server.buffer!r} instead" if server.buffer else
               "no FIN: the connection stays open")}.get(how, how),
           hint="shutdown() acts on the connection, whoever else holds it; close() only drops one "
                "reference, and the child still holds another",
           wire=server.wire.render(), packets=lambda: rec.render(client_port) if rec else None)
    if rec is not None:
        expect(fins_from(rec, client_port), expected="a FIN from the client on the wire",
               happened="no FIN segment was captured", packets=rec.render(client_port))

    prog.close_stdin()
    what, n = child_status(prog)
    sigpipe = what == "killed by signal" and n == 13
    expect((what, n) == ("exited with status", 1),
           expected="the child's write fails with EPIPE (the connection's sending side is shut for "
                    "every descriptor), it reports `write: Broken pipe (32)` and exits 1: "
                    "the parent prints `child exited with status 1`",
           happened=f"the parent printed `child {what} {n}`",
           hint="ignore SIGPIPE (it is inherited by the child) and report the failed write with "
                "fatal(errno, \"write\")" if sigpipe else
                "after shutdown(SHUT_WR) no process can write on the connection any more")
    expect(prog.wait_stderr(r"write.*Broken pipe \(32\)", 0.5),
           expected="stderr says `write: Broken pipe (32)` (the child's failed write)",
           happened=f"stderr was: {prog.stderr_text() or '(empty)'}")
    expect(not server.buffer, expected="nothing reaches the server after its FIN",
           happened=f"got {server.buffer!r}")
    prog.expect_exit(0)


# -- talker: a dead server is an EOF ---------------------------------------------------

@points(1)
def test_talker_prints_each_reply(lab):
    """talker sends each line and prints the one-line reply before the next"""
    talker, server = start_client(lab, "talker")
    talker.write_stdin("one\ntwo\n")       # both at once: the talker must still take turns
    for word in ("one", "two"):
        expect_request(server, word)
        expect(server.expect_silence(0.1) and not server.buffer,
               expected="the next line is sent only after the reply to this one was printed",
               happened=f"got {server.buffer!r} before the grader replied",
               hint="after each write, read and print the reply line before reading stdin again",
               wire=server.wire.render)
        server.send(f"Hi, {word}\n", pieces=3, delay=0.01)
        talker.expect_line(f"Hi, {word}", hint="read until the '\\n': one read() may return part "
                                                "of the reply (read_line does this for you)")
    talker.close_stdin()
    expect(server.wait_close(1.0) == "eof", expected="EOF once stdin ends",
           happened=server._state(), hint="close the socket when stdin ends, then exit 0")
    talker.expect_exit(0)


@points(2)
def test_talker_sees_a_killed_server_as_eof(lab):
    """talker: a server killed while idle shows up as EOF on the next read"""
    talker, server = start_client(lab, "talker")
    talker.write_stdin("one\n")
    expect_request(server, "one")
    server.send("Hi, one\n")
    talker.expect_line("Hi, one")
    server.close()                      # the server dies: its kernel sends FIN for it
    talker.write_stdin("two\nthree\n")
    try:
        talker.expect_line("peer connection closed", timeout=1.5)
    except GradeFailure:
        talker.wait_exit(0.3)
        raise GradeFailure(
            expected="after the server died, the next request is written without error, read() "
                     "returns 0 and the talker prints `peer connection closed`",
            happened=f"talker {talker.status()}, without printing `peer connection closed`",
            hint="read() returning 0 means the server closed: stop there. The write before it "
                 "succeeded -- the kernel only queued it -- so the read is where you learn the "
                 "server is gone", wire=server.wire.render())
    talker.expect_exit(0, hint="after `peer connection closed`, close and exit 0")


# -- sender: EPIPE, not SIGPIPE --------------------------------------------------------

def feed_until_exit(prog, first, limit=40, gap=0.02):
    """Write numbered lines to the program's stdin until it exits (bounded)."""
    for i in range(first, first + limit):
        if not prog.running():
            return
        prog.write_stdin(f"line {i}\n")
        prog.wait_exit(gap)             # returns as soon as it exits


@points(3)
def test_sender_reports_epipe_instead_of_dying(lab):
    """sender: writing after the collector closed fails with EPIPE, reported, not death by SIGPIPE"""
    sender, server = start_client(lab, "sender")
    sender.write_stdin("line 1\n")
    expect_request(server, "line 1")
    server.close()                      # a clean close: FIN, nothing unread
    feed_until_exit(sender, 2)
    rc = sender.wait_exit(1.0)
    expect(rc == 1,
           expected="a write after the collector closed fails (the first one is still accepted and "
                    "answered with RST; the next gets EPIPE); sender reports it and exits 1",
           happened=f"sender {sender.status()}",
           hint="signal(SIGPIPE, SIG_IGN) (or MSG_NOSIGNAL on send) turns the killing signal into "
                "an EPIPE error you can report: fatal(errno, \"write\")" if rc == -13 else
                "check every write's return value; on failure report it and exit 1")
    expect(sender.wait_stderr(r"write.*Broken pipe \(32\)", 0.5),
           expected="stderr says `write: Broken pipe (32)`",
           happened=f"stderr was: {sender.stderr_text() or '(empty)'}",
           hint="fatal(errno, \"write\") names the call and the error")


@points(1)
def test_sender_reports_a_reset(lab):
    """sender: a collector that resets the connection is reported as ECONNRESET"""
    sender, server = start_client(lab, "sender")
    sender.write_stdin("line 1\n")
    expect_request(server, "line 1")
    server.reset()                      # abortive close: RST
    feed_until_exit(sender, 2)
    rc = sender.wait_exit(1.0)
    expect(rc == 1, expected="sender reports the failed write and exits 1",
           happened=f"sender {sender.status()}",
           hint="check every write's return value; on failure report it and exit 1")
    expect(sender.wait_stderr(r"write.*Connection reset by peer \(104\)", 0.5),
           expected="stderr says `write: Connection reset by peer (104)`",
           happened=f"stderr was: {sender.stderr_text() or '(empty)'}",
           hint="fatal(errno, \"write\") names the call and the error")
