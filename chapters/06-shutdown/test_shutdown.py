"""Grader for chapter 06 -- shutdown vs close.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  The grader plays the server: it decides when replies are sent
(before or after the client's FIN), when it "dies" (closes), and whether it resets.
"""
import os
import signal
import socket
import struct
import threading
import time

from grader import GradeFailure, contract, expect, points, poll_until

# The Contract's clauses, by a phrase of each (./lab check 06 --list shows the table).
G_SENDS = ("graceclient", "sends each line of stdin as it is, byte for byte")
G_CLOSE_LINE = ("graceclient", "a line that is exactly `close\\n` is not sent")
G_CLOSES = ("graceclient", "on a `close` line: closes the socket")
G_HALF = ("graceclient", "when stdin ends: `shutdown(SHUT_WR)`")
G_PIPE = ("graceclient", "if the server closes while stdin still has lines")
F_MODE = ("forkclose", "MODE is exactly")
F_CHILD = ("forkclose", "connects, then forks")
F_PARENT = ("forkclose", "right after the fork")
F_WAITS = ("forkclose", "then the parent waits for the child")
F_WIRE = ("forkclose", "wire: MODE close")
T_TURNS = ("talker", "for each line of stdin: sends it")
T_CLOSED = ("talker", "if the server has closed")
T_END = ("talker", "at the end of stdin")
S_SENDS = ("sender", "sends each line of stdin as it is")
S_END = ("sender", "at the end of stdin")
S_FAILS = ("sender", "a failed write")

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


def fins_from(rec, server):
    """FINs the program sent on its connection to the grader's SERVER peer.

    Both ends are matched: without a namespace of its own the capture sees the whole
    loopback, and Linux reuses a local port for connections to other destinations."""
    if rec is None:
        return []
    rec.settle()
    client_port, server_port = server.address[1], server.sock.getsockname()[1]
    return [s for s in rec.tcp(client_port)
            if (s.sport, s.dport) == (client_port, server_port) and s.flags & FIN_FLAG]


def start_client(lab, name, *args):
    """Start a client program against a grader server; returns (program, server peer)."""
    listener = lab.listen()
    prog = lab.start(name, "127.0.0.1", listener.port, *args)
    peer = listener.accept(program=prog, hint=f"{name} connects to HOST PORT from its arguments")
    return prog, peer


def expect_request(peer, text, hint="send each line of stdin as it is, newline included"):
    got = peer.recv_line(what=f"the line `{text}` from your program", hint=hint)
    expect(got == text, expected=f"the line `{text}`", happened=f"got `{got}`", hint=hint)


def feed_until_exit(prog, first, limit=40, gap=0.02):
    """Write numbered lines to the program's stdin until it exits (bounded)."""
    for i in range(first, first + limit):
        if not prog.running():
            return
        prog.write_stdin(f"line {i}\n")
        prog.wait_exit(gap)             # returns as soon as it exits


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


@contract(*G_SENDS)
@contract(*G_HALF)
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


@contract(*G_CLOSE_LINE)
@contract(*G_CLOSES)
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
    expect(not server.buffer,
           expected="the line `close` is a command to your client: it is not sent",
           happened=f"the server received {server.buffer!r} before the EOF",
           hint="check each line for `close` before writing it", wire=server.wire.render)

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


@contract(*G_HALF)
@points(1)
def test_graceclient_prints_a_reply_as_it_arrives(lab):
    """graceclient prints a reply at once, even one without a newline, while the connection is still open"""
    client, server = start_client(lab, "graceclient")
    client.close_stdin()
    expect(server.wait_close(timeout=1.0) == "eof", expected=HALF_CLOSE_EXPECTED,
           happened=f"the server saw {server._state()}", hint=HALF_CLOSE_HINT, wire=server.wire.render())
    reply = "Hi, no newline yet"
    send_or_explain(server, reply, HALF_CLOSE_EXPECTED, HALF_CLOSE_HINT)
    shown = client.wait_stdout_tail(reply, timeout=1.0)
    expect(shown, expected=f"`{reply}` (sent without a newline) is on stdout within 1 s, while the "
                           "server keeps the connection open: bytes are copied as they arrive",
           happened=f"stdout does not show it yet; your client {client.status()}",
           hint="stdout is line-buffered: a reply without '\\n' waits in stdio's buffer until "
                "the next newline or the exit. fflush(stdout) after each fwrite(), or write(1, ...)",
           wire=server.wire.render())
    server.close()
    client.expect_exit(0, hint="exit 0 once the server has closed its side too")


@contract(*G_SENDS)
@contract(*G_HALF)
@points(1)
def test_graceclient_passes_bytes_through_exactly(lab):
    """graceclient sends NUL bytes and an unterminated last line as they are, and prints every byte of the replies"""
    client, server = start_client(lab, "graceclient")
    client.write_stdin(b"a\x00b\nlast")
    client.close_stdin()
    got = server.recv_all_until_eof(timeout=1.5)
    expect(got == b"a\x00b\nlast",
           expected="the server receives exactly b'a\\x00b\\nlast' (a line holding a NUL byte, then a "
                    "last line without \\n), then EOF",
           happened=f"it received {got!r}",
           hint="send the count getline() returned, not strlen(): a NUL byte is data",
           wire=server.wire.render())
    send_or_explain(server, b"x\x00y\n", "the server could send its reply", None)
    server.close()
    client.wait_exit(1.5)
    out = client.stdout_text()
    expect("x\x00y\n" in out,
           expected="stdout shows the reply's bytes x, NUL, y and its \\n",
           happened=f"stdout was {out!r}",
           hint="write the n bytes read() returned (fwrite or write), not a C string that ends at the NUL")
    client.expect_line("server closed", timeout=1.5,
                       expected="`server closed` after the reply",
                       hint="after shutdown(SHUT_WR), copy the replies until read() returns 0")
    client.expect_exit(0)


@contract(*G_CLOSE_LINE)
@points(1)
def test_graceclient_closes_only_on_an_exact_close_line(lab):
    """graceclient sends `closet` and `close me` as ordinary lines, and nothing after `close`"""
    client, server = start_client(lab, "graceclient")
    lines = b"closet\nclose me\n"
    client.write_stdin(lines + b"close\nafter\n")     # stdin stays open: only `close` may end it
    how = server.wait_close(timeout=1.5)
    got = server.buffer
    expect(got == lines and how == "eof",
           expected=f"the server receives the ordinary lines {lines!r}, then EOF: only a line "
                    "that is exactly `close` is the command",
           happened=f"it received {got!r}, then " + {"eof": "EOF", "reset": "a reset"}.get(how, "nothing"),
           hint="compare the whole line (strcmp with \"close\\n\"), not its first five bytes"
                if len(got) < len(lines) else
                "`close` is a command: it is not sent, and nothing after it is"
                if got.startswith(lines) else None,
           wire=server.wire.render())
    server.buffer = b""
    send_or_explain(server, "late\n", "the server could send its (late) reply", None)
    expect(wait_reset(server, timeout=1.0),
           expected="`close` closes the socket: a reply sent afterwards is refused (RST)",
           happened="the reply was accepted: the client only half-closed",
           hint="a `close` line means close(), not shutdown()",
           wire=server.wire.render())
    client.expect_exit(0, timeout=1.5)
    expect("server closed" not in client.stdout_text(),
           expected="no `server closed` after a `close` line",
           happened=f"stdout was {client.stdout_text()!r}")


@contract(*G_PIPE)
@points(1)
def test_graceclient_reports_a_write_to_a_closed_server(lab):
    """graceclient: a server that closes while stdin still has lines ends it cleanly, never by SIGPIPE"""
    client, server = start_client(lab, "graceclient")
    client.write_stdin("line 1\n")
    expect_request(server, "line 1")
    server.close()
    feed_until_exit(client, 2)
    rc = client.wait_expected_exit(1.0)
    expect(rc in (0, 1),
           expected="after the server closed, graceclient ends by itself: a failed write reported "
                    "(`write: Broken pipe (32)`) with exit 1 -- or, if it saw the server's EOF "
                    "first, `server closed` and exit 0",
           happened=f"graceclient {client.status()}",
           hint="signal(SIGPIPE, SIG_IGN) (or MSG_NOSIGNAL) turns the killing signal into an "
                "EPIPE error you can report: fatal(errno, \"write\")" if rc == -13 else
                "check every write's return value; on failure report it and exit 1")
    if rc == 0:
        expect("server closed" in client.stdout_text(),
               expected="exit 0 only after `server closed` (the server's EOF seen first)",
               happened=f"exit 0; stdout was {client.stdout_text()!r}",
               hint="a write that fails is an error: report it and exit 1")
    else:
        expect(client.wait_stderr(r"\w+: .+ \(\d+\)", 0.5),
               expected="stderr names the failed call, e.g. `write: Broken pipe (32)`",
               happened=f"stderr was: {client.stderr_text() or '(empty)'}",
               hint="fatal(errno, \"write\") names the call and the error")

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


@contract(*F_CHILD)
@contract(*F_PARENT)
@contract(*F_WAITS)
@contract(*F_WIRE)
@points(2)
def test_close_with_a_forked_child_sends_no_fin(lab):
    """forkclose close: the parent's close() sends no FIN while the child holds the socket"""
    prog, server, rec, client_port = start_forkclose(lab, "close")
    try:
        held = [fd for fd, target in prog.open_fds().items() if target.startswith("socket:")]
    except OSError:
        held = []           # the parent is gone (so holds nothing): the checks below say why
    expect(not held, expected="after `parent called close` the parent holds no socket descriptor: "
                              "its close() gave up its reference",
           happened=f"the parent still has a socket open (fd {', '.join(map(str, held))})",
           hint="in MODE close the parent calls close(fd) before it prints the line; the child "
                "keeps its own copy")
    prog.write_stdin("input for the child\n")   # the child reads on until EOF, not just once
    quiet = server.expect_silence(0.3)       # time is the behaviour here: nothing may happen
    fins = fins_from(rec, server)
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
    how = server.wait_close(timeout=1.0)
    expect(not server.buffer,
           expected="exactly the 19 bytes `bye from the child\\n`, then EOF",
           happened=f"after the line came {server.buffer!r}",
           hint="write strlen(line) bytes: sizeof a string literal counts its terminating NUL too",
           wire=server.wire.render())
    expect(how == "eof",
           expected="EOF (a FIN) once the child -- the last holder -- closes or exits",
           happened=server._state(), hint="the child closes its descriptor (or exits) after writing")
    what, n = child_status(prog)
    twice = prog.stdout_text().count("parent called close") > 1
    expect((what, n) == ("exited with status", 0),
           expected="`child exited with status 0`", happened=f"`child {what} {n}`"
           + (f"; `parent called close` was printed twice" if twice else "")
           + (f"; stderr: {prog.stderr_text()}" if prog.stderr_text() else ""),
           hint="the child must exit(0) after its write: returning from a function lets it run "
                "on into the parent's code (a second close, a second wait)" if twice or
                "Bad file descriptor" in prog.stderr_text() else None)
    prog.expect_exit(0)


@contract(*F_CHILD)
@contract(*F_PARENT)
@contract(*F_WAITS)
@contract(*F_WIRE)
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
        expect(fins_from(rec, server), expected="a FIN from the client on the wire",
               happened="no FIN segment was captured", packets=rec.render(client_port))

    prog.close_stdin()
    what, n = child_status(prog)
    sigpipe = what == "killed by signal" and n == 13
    expect((what, n) == ("exited with status", 1),
           expected="the child's write fails with EPIPE (the connection's sending side is shut for "
                    "every descriptor), it reports `write: Broken pipe (32)` and exits 1: "
                    "the parent prints `child exited with status 1`",
           happened=f"the parent printed `child {what} {n}`",
           hint="ignore SIGPIPE before fork() (the child inherits it) and report the failed write "
                "with fatal(errno, \"write\")" if sigpipe else
                "print WEXITSTATUS(status), not the raw status word from waitpid()" if n == 256 else
                "check the child's write: after shutdown(SHUT_WR) it fails with EPIPE -- report it "
                "and exit 1" if (what, n) == ("exited with status", 0) else
                "after shutdown(SHUT_WR) no process can write on the connection any more")
    expect(prog.wait_stderr(r"write.*Broken pipe \(32\)", 0.5),
           expected="stderr says `write: Broken pipe (32)` (the child's failed write)",
           happened=f"stderr was: {prog.stderr_text() or '(empty)'}")
    expect(not server.buffer, expected="nothing reaches the server after its FIN",
           happened=f"got {server.buffer!r}")
    prog.expect_exit(0)


@contract(*F_WIRE)
@points(1)
def test_shutdown_leaves_the_receiving_side_open(lab):
    """forkclose shutdown: the server may still send after the client's FIN: no reset while the child lives"""
    prog, server, rec, client_port = start_forkclose(lab, "shutdown")
    expect(server.wait_close(timeout=1.0) == "eof",
           expected="EOF (a FIN) within 1 s of the parent's shutdown()", happened=server._state(),
           hint="shutdown(fd, SHUT_WR) sends the FIN whoever else holds the socket")
    expected = ("data the grader sends after the client's FIN is taken, not answered with RST, while "
                "the child still holds the socket: SHUT_WR shuts only the sending side")
    hint = ("shutdown(fd, SHUT_WR), not SHUT_RDWR: once the receiving side is shut too, Linux resets "
            "a connection on which data still arrives")
    send_or_explain(server, "a reply after your FIN\n", expected, hint)
    expect(not wait_reset(server, 0.3), expected=expected,
           happened="the client's kernel answered it with a reset (RST) at once", hint=hint,
           wire=server.wire.render(), packets=lambda: rec.render(client_port) if rec else None)
    prog.close_stdin()
    child_status(prog)
    prog.expect_exit(0)


@contract(*F_MODE)
@points(1)
def test_forkclose_refuses_an_unknown_mode(lab):
    """forkclose refuses a MODE other than `close` or `shutdown`"""
    listener = lab.listen()
    for mode in ("Close", "shut"):
        prog = lab.start("forkclose", "127.0.0.1", listener.port, mode)
        rc = prog.wait_expected_exit(1.0)
        expect(rc == 1,
               expected=f"`forkclose HOST PORT {mode}`: `invalid mode '{mode}' (close or shutdown)`, exit 1",
               happened=f"it {prog.status()}",
               hint="accept exactly `close` and `shutdown` (strcmp); refuse anything else before "
                    "connecting")
        expect(prog.wait_stderr(rf"invalid mode '{mode}' \(close or shutdown\)", 0.5),
               expected=f"stderr says `invalid mode '{mode}' (close or shutdown)`",
               happened=f"stderr was: {prog.stderr_text() or '(empty)'}")


@contract(*F_WAITS)
@points(1)
def test_forkclose_reports_a_child_killed_by_a_signal(lab):
    """forkclose: a child killed by a signal is reported as `child killed by signal N`"""
    prog, server, rec, client_port = start_forkclose(lab, "close")
    kids = poll_until(prog.children, 1.0)
    expect(kids, expected="forkclose has a child process while the child's stdin is open",
           happened=f"it has none; forkclose {prog.status()}")
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    what, n = child_status(prog)
    expect((what, n) == ("killed by signal", 9),
           expected="the grader killed the child with SIGKILL: `child killed by signal 9`",
           happened=f"`child {what} {n}`",
           hint="WIFSIGNALED(status) / WTERMSIG(status): WEXITSTATUS means nothing for a child "
                "that did not exit")
    prog.expect_exit(0)


# -- talker: a dead server is an EOF ---------------------------------------------------

@contract(*T_TURNS)
@contract(*T_END)
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
    printed = talker.stdout_text().split("\n")
    expect(printed == ["Hi, one", "Hi, two"], expected="stdout holds the two replies, one line each, "
           "and nothing else", happened=f"stdout was {printed}",
           hint="print the reply line as it is: it already ends with '\\n' (add one only if it has none)")


@contract(*T_CLOSED)
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


@contract(*T_TURNS)
@points(1)
def test_talker_keeps_a_reply_that_came_with_the_previous_one(lab):
    """talker prints a 1022-byte reply that arrived glued to the previous one"""
    talker, server = start_client(lab, "talker")
    long_reply = "Hi, " + "t" * 1018               # 1022 bytes: the longest reply line
    talker.write_stdin("one\ntwo\n")
    expect_request(server, "one")
    server.send(f"Hi, one\n{long_reply}\n")      # both replies in one segment
    talker.expect_line("Hi, one")
    expect_request(server, "two")
    try:
        talker.expect_line(long_reply, timeout=1.5)
    except GradeFailure:
        raise GradeFailure(
            expected="the reply to `two` (1022 bytes), which had already arrived with the reply to "
                     "`one`, is printed",
            happened=f"talker {talker.status()} without printing it",
            hint="keep ONE line_reader for the whole connection: bytes after the first '\\n' wait "
                 "in it for the next read_line", wire=server.wire.render())
    talker.close_stdin()
    expect(server.wait_close(1.0) == "eof", expected="EOF once stdin ends", happened=server._state())
    talker.expect_exit(0)


@contract(*T_TURNS)
@points(1)
def test_talker_sends_a_line_with_a_nul_byte_whole(lab):
    """talker sends a line with a NUL byte in it as it is, byte for byte"""
    talker, server = start_client(lab, "talker")
    talker.write_stdin(b"a\x00b\n")
    hint = "send the count getline() returned, not strlen(): a NUL byte is data"
    got = server.recv_exactly(4, timeout=1.5, what="the 4 bytes b'a\\x00b\\n'", hint=hint)
    expect(got == b"a\x00b\n", expected="the bytes b'a\\x00b\\n'", happened=f"got {got!r}", hint=hint)
    server.send("Hi\n")
    talker.expect_line("Hi")
    talker.close_stdin()
    talker.expect_exit(0)


@contract(*T_CLOSED)
@points(1)
def test_talker_is_not_killed_by_a_failed_write(lab):
    """talker: a long line to a server that has closed makes a write fail (EPIPE), never a death by SIGPIPE"""
    talker, server = start_client(lab, "talker")
    talker.write_stdin("one\n")
    expect_request(server, "one")
    server.send("Hi, one\n")
    talker.expect_line("Hi, one")
    me = server.address[1]
    server.close()                      # FIN: the talker's socket goes to CLOSE-WAIT
    poll_until(lambda: lab.sockets("tcp", state="CLOSE-WAIT", local_port=me), 1.0)
    # 16 MiB: more than a socket's send buffer, so the write is still going when the
    # grader's kernel answers its first bytes with RST; the next write then fails with EPIPE.
    long_line = b"x" * (16 << 20) + b"\n"
    threading.Thread(target=talker.write_stdin, args=(long_line,), daemon=True).start()
    rc = talker.wait_expected_exit(3.0)
    expect(rc in (0, 1),
           expected="the write of a long line to a server that has closed fails with EPIPE "
                    "instead of killing the talker with SIGPIPE: it reports it and exits 1",
           happened=f"talker {talker.status()}",
           hint="signal(SIGPIPE, SIG_IGN) (or MSG_NOSIGNAL on send) turns the killing signal into "
                "an EPIPE error you can report: fatal(errno, \"write\")" if rc == -13 else
                "check every write's return value; on failure report it and exit 1")


# -- sender: EPIPE, not SIGPIPE --------------------------------------------------------

@contract(*S_SENDS)
@contract(*S_END)
@points(1)
def test_sender_sends_each_line_as_soon_as_it_reads_it(lab):
    """sender sends each line at once, NUL bytes included, then closes when stdin ends"""
    sender, server = start_client(lab, "sender")
    sender.write_stdin("line 1\n")
    expect_request(server, "line 1",
                   hint="write each line to the socket as soon as getline() returns it: a stdio "
                        "stream (fdopen) on the socket keeps it in a buffer until it is full")
    sender.write_stdin(b"a\x00b\n")
    got = server.recv_exactly(4, timeout=1.5, what="the 4 bytes b'a\\x00b\\n'",
                              hint="send the count getline() returned, not strlen(): a NUL byte is data")
    expect(got == b"a\x00b\n", expected="the bytes b'a\\x00b\\n'", happened=f"got {got!r}",
           hint="send the count getline() returned, not strlen(): a NUL byte is data")
    sender.write_stdin("tail")
    sender.close_stdin()
    rest = server.recv_all_until_eof(timeout=1.5)
    expect(rest == b"tail", expected="the last line `tail` (no \\n) as it is, then EOF",
           happened=f"got {rest!r}")
    sender.expect_exit(0, hint="at the end of stdin close the socket and exit 0")


@contract(*S_FAILS)
@points(3)
def test_sender_reports_epipe_instead_of_dying(lab):
    """sender: writing after the collector closed fails with EPIPE, reported, not death by SIGPIPE"""
    sender, server = start_client(lab, "sender")
    sender.write_stdin("line 1\n")
    expect_request(server, "line 1")
    server.close()                      # a clean close: FIN, nothing unread
    feed_until_exit(sender, 2)
    rc = sender.wait_expected_exit(1.0)
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


@contract(*S_FAILS)
@points(1)
def test_sender_reports_a_reset(lab):
    """sender: a collector that resets the connection is reported as ECONNRESET"""
    sender, server = start_client(lab, "sender")
    sender.write_stdin("line 1\n")
    expect_request(server, "line 1")
    server.reset()                      # abortive close: RST
    feed_until_exit(sender, 2)
    rc = sender.wait_expected_exit(1.0)
    expect(rc == 1, expected="sender reports the failed write and exits 1",
           happened=f"sender {sender.status()}",
           hint="check every write's return value; on failure report it and exit 1")
    expect(sender.wait_stderr(r"write.*Connection reset by peer \(104\)", 0.5),
           expected="stderr says `write: Connection reset by peer (104)`",
           happened=f"stderr was: {sender.stderr_text() or '(empty)'}",
           hint="fatal(errno, \"write\") names the call and the error")
