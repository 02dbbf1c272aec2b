"""Grader for chapter 04 -- Unix domain sockets.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  Socket paths live in a short temporary directory of each test's
own (sun_path is only 108 bytes), the programs run in lab.tmp, and abstract names are
unique per test.  Tests come in the order a student meets the mistakes: the first
failing one is the one explained.
"""
import os
import re
import select
import signal
import socket
import stat
import uuid

import pytest

from grader import (GradeFailure, contract, expect, explain_sanitized, points, poll_until, proc_stat,
                    use_sanitized_programs)
from grader import probes

STREAM_SERVER, STREAM_CLIENT = "stream-server", "stream-client"
DGRAM_SERVER, DGRAM_CLIENT = "dgram-server", "dgram-client"
NAME_MAX = 107          # the Contract's longest NAME: 108 bytes of sun_path, one kept for the NUL
LINE_MAX = 1022         # the longest line a stream program must take (read_line with 1024 bytes)
DATAGRAM_MAX = 2048     # the longest datagram dgram-server must take whole
CHILD_EOF_HINT = ("the child ends when its read returns 0, and that needs every copy of the parent's end "
                  "closed: the child must close sv[0] right after fork(); and only a SOCK_STREAM pair "
                  "has an end of file (a datagram socket never reads 0 for a closed peer)")


# -- helpers ------------------------------------------------------------------

def path_in(lab, name):
    """A socket path for this test: in the lab's short folder, since sun_path holds 108
    bytes and pytest's temporary folders can be longer than that."""
    return os.path.join(lab.short_dir(), name)


def path_of_length(lab, length):
    """A path in the short folder exactly `length` bytes long."""
    prefix = path_in(lab, "")
    return prefix + "p" * (length - len(prefix))


def abstract_name(length=None):
    """'@socklab-…': unique even when tests share a network namespace; `length` counts
    the '@'."""
    name = "@socklab-" + uuid.uuid4().hex[:12]
    return name if length is None else (name + "x" * length)[:length]


def kernel_name(name):
    """The address Python's socket module uses for NAME ('@x' -> '\\0x')."""
    return "\0" + name[1:] if name.startswith("@") else name


def shown_name(addr):
    """A recvfrom() address as the Contract writes it ('\\0x' -> '@x')."""
    if isinstance(addr, bytes):
        return "@" + addr[1:].decode(errors="replace") if addr[:1] == b"\0" else addr.decode(errors="replace")
    return addr


def unix_sockets():
    """[(type, state, local address)] of the Unix sockets here, as `ss -xan` shows them."""
    return [(sock.kind, sock.state, sock.local) for sock in probes.unix_sockets()]


def unix_sockets_text():
    return "\n".join(" ".join(s) for s in unix_sockets()) or "(no Unix sockets)"


def describe_path(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    kind = ("a socket" if stat.S_ISSOCK(st.st_mode) else "a regular file" if stat.S_ISREG(st.st_mode)
            else "a directory" if stat.S_ISDIR(st.st_mode) else "a symbolic link" if stat.S_ISLNK(st.st_mode)
            else "some other kind of file")
    return f"{path} is {kind} ({stat.filemode(st.st_mode)}, {st.st_size} bytes)"


def is_socket_file(path):
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def make_stale_socket(path):
    """What a crashed server leaves behind: a socket file nobody listens on."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    os.chmod(path, 0o666)   # as if the program's own: it may run as another uid than the grader
    assert is_socket_file(path)


def start_server(lab, prog, name):
    server = lab.start(prog, name)
    server.expect_line(rf"listening on {re.escape(name)}",
                       expected=f"{prog} prints `listening on {name}` once it is bound",
                       hint="print the line after bind() (and listen()) succeed")
    return server


def expect_echo(lab, server, peer, lines):
    """Send each line, expect `Hi, <line>` back and `Receive: <line>` printed."""
    for line in lines:
        peer.send(line + "\n")
        reply = peer.recv_line(what=f"the reply `Hi, {line}` to the line `{line}`",
                               hint="read a whole line, then write \"Hi, <line>\\n\" back on the same connection")
        expect(reply == f"Hi, {line}", expected=f"the reply `Hi, {line}`", happened=f"got `{reply}`",
               hint="reply with exactly \"Hi, \" + the line + \"\\n\"")
        server.expect_line(rf"Receive: {re.escape(line)}", expected=f"the server prints `Receive: {line}`")


def expect_stops_and_cleans_up(server, path, how):
    server.expect_exit(0, timeout=2,
                       expected=f"the server exits 0 within 2 s of {how}",
                       hint="catch SIGINT and SIGTERM with sigaction(); a handler may call unlink() and _exit(0) "
                            "(both async-signal-safe). If your handler only sets a flag, every blocking call "
                            "must return EINTR: no SA_RESTART (signal() sets it), and check the flag after EINTR")
    expect(not os.path.lexists(path),
           expected=f"the socket file {path} is gone once the server has stopped",
           happened=describe_path(path) + " -- left behind",
           hint="unlink() the path on the way out; a stale file makes the next bind() fail with EADDRINUSE")


def stdout_lines(prog):
    """Every line the program printed on stdout (once it has exited: all of them)."""
    return [text for _, text, _ in prog.stdout_lines]


# -- stream-server --------------------------------------------------------------

@points(2)
@contract(STREAM_SERVER, "binds a `SOCK_STREAM` socket")
def test_server_creates_a_socket_file(lab):
    """stream-server binds NAME: a socket file of size 0 appears, listening"""
    path = path_in(lab, "echo.sock")
    start_server(lab, STREAM_SERVER, path)
    expect(is_socket_file(path), expected=f"{path} exists and is a socket (ls -l shows `srwx…`)",
           happened=describe_path(path),
           hint="bind() an AF_UNIX address whose sun_path is the NAME argument: bind creates the file")
    size = os.lstat(path).st_size
    expect(size == 0, expected="the socket file has size 0 (data never goes through the file)",
           happened=f"it has {size} bytes")
    listening = [s for s in unix_sockets() if s == ("u_str", "LISTEN", path)]
    expect(listening, expected=f"`ss -xl` shows a stream socket listening on {path}",
           happened="no listening Unix socket has that path", hint="call listen() after bind()",
           sockets=unix_sockets_text)
    lab.unix_connect(path)


@points(2)
@contract(STREAM_SERVER, "where a socket file exists")
def test_server_replaces_a_stale_socket_file(lab):
    """stream-server starts even when a dead server left its socket file behind"""
    path = path_in(lab, "echo.sock")
    make_stale_socket(path)
    server = lab.start(STREAM_SERVER, path)
    server.expect_line(r"listening on .+",
                       expected="the server starts although a stale socket file is in the way",
                       hint="bind() refuses a path that exists (EADDRINUSE), even a dead socket's: "
                            "remove a socket file left there before bind()")
    expect_echo(lab, server, lab.unix_connect(path), ["g1"])


@points(1)
@contract(STREAM_SERVER, "if something else exists at that path")
@pytest.mark.parametrize("kind", ["regular file", "symlink"])
def test_server_never_removes_a_file_that_is_not_a_socket(lab, kind):
    """stream-server refuses to delete a regular file, or a symbolic link, given as NAME"""
    if kind == "regular file":
        path = path_in(lab, "notes.txt")
        with open(path, "w") as f:
            f.write("precious\n")
        still_there = lambda: os.path.isfile(path) and open(path).read() == "precious\n"  # noqa: E731
        hint = ("lstat() first and unlink() only if S_ISSOCK(st.st_mode); otherwise "
                "fatal(0, \"refusing to remove '%s': not a socket\", path)")
    else:
        # a link to a socket file: stat() follows it and sees a socket, lstat() sees the link
        target = path_in(lab, "target.sock")
        make_stale_socket(target)
        path = path_in(lab, "link.sock")
        os.symlink(target, path)
        still_there = lambda: os.path.islink(path) and os.readlink(path) == target  # noqa: E731
        hint = ("use lstat(), not stat(): stat() follows the link and sees the socket it points to, "
                "but NAME itself is a symbolic link -- someone else's, not a stale socket")
    server = lab.start(STREAM_SERVER, path)
    server.expect_exit(1, expected=f"the server exits 1: NAME is a {kind}, not a stale socket", hint=hint)
    expect(still_there(), expected=f"{path} is still the {kind} it was",
           happened=describe_path(path) + " -- it was removed or replaced", hint=hint)
    expect(server.wait_stderr(r"refusing to remove '.*': not a socket", 0.5),
           expected=f"stderr explains: refusing to remove '{path}': not a socket",
           happened=f"stderr was: {server.stderr_text() or '(empty)'}")


@points(2)
@contract(STREAM_SERVER, "for each line received")
def test_server_echoes_each_line(lab):
    """stream-server answers every line with `Hi, <line>`, however the bytes arrive"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    peer = lab.unix_connect(path)
    expect_echo(lab, server, peer, ["g1"])
    peer.send("g2\n", pieces=1, delay=0.02)
    expect(peer.recv_line(what="the reply `Hi, g2`",
                          hint="a line sent one byte at a time arrives in pieces: keep reading until '\\n'")
           == "Hi, g2", expected="the reply `Hi, g2`", happened=f"got {peer.wire.render()}")
    peer.send("g3\ng4\n")
    got = [peer.recv_line(what=f"the reply `Hi, {x}`",
                          hint="two lines in one read: answer both (read_line keeps the rest for the next call)")
           for x in ("g3", "g4")]
    expect(got == ["Hi, g3", "Hi, g4"], expected="`Hi, g3` then `Hi, g4`", happened=f"got {got}")
    for line in ("g2", "g3", "g4"):
        server.expect_line(rf"Receive: {line}", expected=f"the server prints `Receive: {line}`")


@points(1)
@contract(STREAM_SERVER, "for each line received")
def test_server_takes_crlf_line_ends(lab):
    """stream-server takes `\\r\\n` as a line end: the `\\r` is not part of the line"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    peer = lab.unix_connect(path)
    peer.send("cr\r\n")
    reply = peer.recv_until(b"\n", what="the reply `Hi, cr\\n` to the line `cr\\r\\n`")
    expect(reply == b"Hi, cr\n", expected="the reply `Hi, cr\\n`: a line ended by \\r\\n is the text before them",
           happened=f"got {reply!r}",
           hint="a line ends at \\n or at \\r\\n; read_line() stores either as one \\n -- if you split the "
                "lines yourself, drop a \\r right before the \\n")
    server.expect_line("Receive: cr", expected="the server prints `Receive: cr`")
    expect_echo(lab, server, peer, ["lf"])


@points(1)
@contract(STREAM_SERVER, "Lines of up to 1022 bytes are served")
def test_server_serves_lines_up_to_the_limit(lab):
    """stream-server answers a 1022-byte line, and survives a longer one"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    peer = lab.unix_connect(path)
    longest = "L" * LINE_MAX
    peer.send(longest + "\n")
    reply = peer.recv_line(what=f"the reply to a {LINE_MAX}-byte line",
                           hint=f"lines of up to {LINE_MAX} bytes must be served whole: a line buffer of "
                                "1024 bytes holds them with the \\n and the NUL")
    expect(reply == "Hi, " + longest, expected=f"`Hi, ` and the whole {LINE_MAX}-byte line",
           happened=f"a reply of {len(reply)} bytes" + ("" if reply.startswith("Hi, L") else f": {reply[:40]!r}…"),
           hint="the reply is 4 bytes longer than the line: make its buffer big enough, and never cut it")
    # far over the limit: the server may answer it or end this client, and lives on
    peer.send("M" * 3000 + "\nping\n")
    try:
        while peer.recv_line(timeout=1.0) != "Hi, ping":
            pass
    except GradeFailure:
        pass        # it ended this client (or went silent): the server itself must live on
    expect(server.running(), expected="a line longer than the limit ends that client at most, never the server",
           happened=f"the server {server.status()}",
           hint="read_line() fails with EMSGSIZE for a line that does not fit: end that client (or serve "
                "the line), never write past the end of a buffer")
    peer.close()
    expect_echo(lab, server, lab.unix_connect(path), ["after"])


@points(1)
@contract(STREAM_SERVER, "serves clients one at a time")
def test_server_names_the_process_that_connected(lab):
    """stream-server prints the client's pid and uid (SO_PEERCRED)"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    lab.unix_connect(path)
    m = server.expect_line(r"client pid (-?\d+) uid (-?\d+)",
                           expected=f"the server prints `client pid {os.getpid()} uid {os.getuid()}` "
                                    "when the grader connects",
                           hint="after accept(): getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) "
                                "with a struct ucred")
    got = (int(m.group(1)), int(m.group(2)))
    expect(got == (os.getpid(), os.getuid()),
           expected=f"pid {os.getpid()} uid {os.getuid()} (the grader's own)",
           happened=f"it printed pid {got[0]} uid {got[1]}" + (" -- the server's own pid" if got[0] == server.pid
                                                              else ""),
           hint="SO_PEERCRED is asked on the accepted socket, and describes the peer; asked on the "
                "listening socket, or replaced by getpid()/getuid(), it describes the server itself")


@points(1)
@contract(STREAM_SERVER, "when the client closes")
def test_server_serves_clients_one_after_another(lab):
    """stream-server prints `client quit` when a client leaves, then serves the next"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    first = lab.unix_connect(path)
    expect_echo(lab, server, first, ["one"])
    first.close()
    server.expect_line("client quit", expected="the server prints `client quit` when read() returns 0",
                       hint="read() returning 0 means the client closed its end: that is the end of this client")
    expect_echo(lab, server, lab.unix_connect(path), ["two"])


@points(1)
@contract(STREAM_SERVER, "wait their turn")
def test_server_lets_clients_wait_their_turn(lab):
    """stream-server lets four clients wait while it serves another, then serves each"""
    path = path_in(lab, "srv.sock")
    server = start_server(lab, STREAM_SERVER, path)
    first = lab.unix_connect(path)
    expect_echo(lab, server, first, ["first"])      # being served now
    waiting = []
    for i in range(4):
        try:
            # a Unix connect() never waits for room here: a full queue refuses it (EAGAIN) at once
            waiting.append(lab.unix_connect(path, timeout=1))
        except GradeFailure as failure:
            raise GradeFailure(expected="while the server serves one client, four more can connect and "
                                        "wait in the queue of connections for accept()",
                               happened=f"waiting client {i + 1}: {failure.happened}",
                               hint="the second argument of listen() is that queue's length: with 1, the "
                                    "third waiting client is refused; use SOMAXCONN (or at least 4)") from None
    first.close()
    for i, peer in enumerate(waiting):
        expect_echo(lab, server, peer, [f"waiting {i + 1}"])
        peer.close()


@points(1)
@contract(STREAM_SERVER, "no descriptor is kept per")
def test_server_keeps_no_descriptor_per_client(lab):
    """stream-server closes each connection: its descriptors do not grow with clients"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    base = server.fd_count()
    counts = []
    for i in range(6):
        peer = lab.unix_connect(path)
        expect_echo(lab, server, peer, [f"c{i}"])
        peer.close()
        server.expect_line("client quit", expected="the server prints `client quit` when the client leaves")
        # `client quit` may be printed just before the close(): give the close a moment
        poll_until(lambda: (server.fd_count() or 0) <= base, 0.5)
        counts.append(server.fd_count())
    expect(counts[-1] is not None and counts[-1] <= counts[0],
           expected="as many open descriptors after six clients as after the first",
           happened=f"open descriptors after each client: {counts}",
           hint="close() the accepted connection when its client is done: every accept() returns a new "
                "descriptor, and a long-running server runs out of them (EMFILE)")


@points(1)
@contract(STREAM_SERVER, "cannot be written to any more")
def test_server_survives_a_client_that_stops_reading(lab):
    """stream-server survives a failed write (EPIPE) and serves the next client"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    rude = lab.unix_connect(path)
    rude.sock.shutdown(socket.SHUT_RD)   # the server's next write to us fails with EPIPE
    rude.wire.mark("→", "shutdown(SHUT_RD): no more reading")
    rude.send("bye\n")
    server.expect_line("Receive: bye", expected="the server prints `Receive: bye`")
    server.expect_line("client quit", expected="after the failed write the server drops that client "
                                               "(`client quit`) and goes back to accept()",
                       hint="writing to a Unix socket nobody reads any more raises SIGPIPE, which kills "
                            "by default: ignore it (signal(SIGPIPE, SIG_IGN)) or send with MSG_NOSIGNAL, "
                            "then treat EPIPE as the client being gone")
    expect_echo(lab, server, lab.unix_connect(path), ["next"])


@points(1)
@contract(STREAM_SERVER, "on SIGINT or SIGTERM, whatever it is doing")
def test_server_removes_its_socket_file_on_sigint(lab):
    """stream-server removes its socket file and exits 0 on Ctrl-C (SIGINT)"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    expect(is_socket_file(path), expected=f"{path} is a socket while the server runs",
           happened=describe_path(path))
    server.wait_blocked()
    server.signal(signal.SIGINT)
    expect_stops_and_cleans_up(server, path, "SIGINT while it waits in accept()")


@points(1)
@contract(STREAM_SERVER, "on SIGINT or SIGTERM, whatever it is doing")
def test_server_removes_its_socket_file_on_sigterm_with_a_client(lab):
    """stream-server stops on SIGTERM even while a client is connected"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    expect_echo(lab, server, lab.unix_connect(path), ["idle"])
    server.wait_blocked()
    server.signal(signal.SIGTERM)
    expect_stops_and_cleans_up(server, path, "SIGTERM while it waits for the client's next line")


@points(1)
@contract(STREAM_SERVER, "an abstract NAME creates no file")
def test_server_listens_on_an_abstract_name(lab):
    """stream-server given `@name` listens on an abstract address: no file at all"""
    name = abstract_name()
    listing = lambda: set(os.listdir(lab.tmp)) | set(os.listdir(lab.short_dir()))  # noqa: E731
    before = listing()
    server = start_server(lab, STREAM_SERVER, name)
    try:
        peer = lab.unix_connect(kernel_name(name))
    except GradeFailure as e:
        raise GradeFailure(expected=f"the grader can connect to the abstract address \\0{name[1:]}",
                           happened=e.happened, sockets=unix_sockets_text(),
                           hint="for `@name`, leave sun_path[0] = '\\0', copy the name after it, and pass "
                                "offsetof(struct sockaddr_un, sun_path) + strlen(name) as the length (the "
                                "'@' stands for the leading NUL): abstract names are not NUL-terminated, "
                                "every byte of the length counts")
    expect_echo(lab, server, peer, ["abstract"])
    created = listing() - before
    expect(not created, expected="no file is created for an abstract name",
           happened=f"new in the working directory: {sorted(created)}",
           hint="a name starting with '@' is not a path: do not bind it (or unlink it) as one")


@points(1)
@contract(STREAM_SERVER, "NAME may be up to 107 bytes long")
def test_server_takes_a_name_of_107_bytes(lab):
    """stream-server takes a 107-byte path (and removes it on SIGTERM) and a 107-byte `@name`"""
    path = path_of_length(lab, NAME_MAX)
    hint = ("a path of 107 bytes fits: 107 + its NUL = sizeof(sun_path). Refuse only "
            "strlen(name) >= sizeof(addr.sun_path), and keep room for the whole path wherever you copy it")
    server = lab.start(STREAM_SERVER, path)
    server.expect_line(r"listening on .+", expected=f"the server listens on a path of exactly {NAME_MAX} bytes",
                       hint=hint)
    expect(is_socket_file(path), expected=f"the socket file is that {NAME_MAX}-byte path",
           happened=describe_path(path) + f"; the folder holds {sorted(os.listdir(lab.short_dir()))}", hint=hint)
    server.wait_blocked()
    server.signal(signal.SIGTERM)
    server.expect_exit(0, expected="the server exits 0 on SIGTERM")
    expect(not os.path.lexists(path), expected=f"the {NAME_MAX}-byte socket file is removed on SIGTERM",
           happened=describe_path(path) + " -- left behind",
           hint="the path kept for the cleanup must hold all 107 bytes and its NUL: a shorter copy "
                "unlinks a different (cut) path")
    name = abstract_name(NAME_MAX)
    start_server(lab, STREAM_SERVER, name)
    expect_echo(lab, lab.programs[-1], lab.unix_connect(kernel_name(name)), ["long"])


@points(1)
@contract(STREAM_SERVER, "a longer one does not fit")
def test_server_rejects_a_name_that_does_not_fit(lab):
    """stream-server exits 1 with `name too long` for a NAME of 108 bytes or more, never cuts it"""
    for name in (path_of_length(lab, NAME_MAX + 1), path_of_length(lab, 120), abstract_name(NAME_MAX + 1)):
        server = lab.start(STREAM_SERVER, name)
        server.expect_exit(1, expected=f"the server exits 1: a NAME of {len(name)} bytes does not fit "
                                       "(sun_path holds 108 bytes, one of them the NUL)",
                           hint="check strlen(name) < sizeof(addr.sun_path) before copying; strncpy silently "
                                "cuts the path and binds a different one")
        expect(server.wait_stderr(r"(?i)name too long", 0.5),
               expected=f"stderr says `name too long: …` for a NAME of {len(name)} bytes",
               happened=f"stderr was: {server.stderr_text() or '(empty)'}",
               hint="refuse the name yourself -- strlen(name) >= sizeof(addr.sun_path) -- before bind() "
                    "sees it: fatal(0, \"name too long: '%s' (at most 107 bytes)\", name)")


# -- stream-client ---------------------------------------------------------------

def run_client_against(lab, address):
    listener = lab.unix_listen(address)
    client = lab.start(STREAM_CLIENT, address if not address.startswith("\0") else "@" + address[1:])
    peer = listener.accept(program=client, hint="the client connects to the NAME in its argument")
    return client, peer


def serve_lines(client, peer, lines, pieces=None):
    for line in lines:
        client.write_stdin(line + "\n")
        got = peer.recv_line(what=f"the line `{line}` (as typed on stdin, with its '\\n')",
                             hint="send each stdin line, newline included, before waiting for the reply")
        expect(got == line, expected=f"the client sends `{line}\\n`", happened=f"got {peer.wire.render()}")
        peer.send(f"Hi, {line}\n", pieces=pieces)
        client.expect_line(re.escape(f"Hi, {line}"), expected=f"the client prints the reply `Hi, {line}`",
                           hint="read the reply up to its '\\n' and print it")


def expect_only_replies(client, replies):
    got = stdout_lines(client)
    expect(got == replies, expected=f"stdout holds the replies and nothing else: {replies}",
           happened=f"stdout was {got}",
           hint="print each reply once, on its own line: read up to the '\\n' (a reply may come in "
                "pieces), and add a '\\n' only when the reply had none")


@points(2)
@contract(STREAM_CLIENT, "for each stdin line", "at the end of stdin closes")
def test_client_sends_lines_and_prints_replies(lab):
    """stream-client sends each stdin line and prints each reply; EOF on stdin ends it"""
    path = path_in(lab, "srv.sock")
    client, peer = run_client_against(lab, path)
    serve_lines(client, peer, ["g1", "g2"])
    client.close_stdin()
    expect(peer.wait_close(2) == "eof",
           expected="when stdin ends the client closes its connection (the grader reads EOF)",
           happened=peer.state(), hint="getline() returning -1 means stdin ended: close the socket")
    client.expect_exit(0)
    expect_only_replies(client, ["Hi, g1", "Hi, g2"])


@points(1)
@contract(STREAM_CLIENT, "it may arrive in pieces")
def test_client_reads_a_reply_that_arrives_in_pieces(lab):
    """stream-client prints a reply that arrives in pieces as one line, and one of 1026 bytes"""
    path = path_in(lab, "srv.sock")
    client, peer = run_client_against(lab, path)
    serve_lines(client, peer, ["one", "two"], pieces=3)
    longest = "L" * LINE_MAX        # its reply, `Hi, ` + 1022 bytes, is the longest a client must take
    serve_lines(client, peer, [longest])
    client.close_stdin()
    client.expect_exit(0)
    expect_only_replies(client, ["Hi, one", "Hi, two", "Hi, " + longest])


@points(1)
@contract(STREAM_CLIENT, "a last line that had none gets one")
def test_client_sends_a_last_line_without_newline(lab):
    """stream-client sends a last stdin line that has no `\\n` with one, and prints its reply"""
    use_sanitized_programs(lab, "address")      # the added '\\n' must stay inside the line's buffer
    path = path_in(lab, "srv.sock")
    client, peer = run_client_against(lab, path)
    serve_lines(client, peer, ["one"])
    client.write_stdin("last")
    client.close_stdin()
    try:
        got = peer.recv_line(what="the last stdin line `last`, sent with a '\\n' although stdin ended without one",
                             hint="getline() returns a last line without '\\n' as it is: add one before "
                                  "sending, or the server waits for the end of the line while you wait for "
                                  "its reply")
    except GradeFailure as failure:
        client.wait_exit(0.5)
        raise explain_sanitized(failure, client) from None
    expect(got == "last", expected="the line `last\\n`", happened=f"got {peer.wire.render()}")
    peer.send("Hi, last\n")
    client.expect_line("Hi, last", expected="the client prints the reply `Hi, last`")
    client.expect_exit(0)


SERVER_GONE_HINT = ("when the server has closed, a read returns 0 (EOF) or fails with ECONNRESET (it closed "
                    "with your line unread), and a write fails with EPIPE: all three mean the server is "
                    "gone -- fatal(0, \"server closed the connection\")")


def expect_server_gone_reported(client, situation):
    rc = client.wait_exit(2)
    sigpipe = rc == -signal.SIGPIPE
    expect(rc == 1,
           expected=f"{situation}: the client prints `server closed the connection` on stderr and exits 1",
           happened=f"it {client.status()}" + ("" if rc is not None else " after 2 s"),
           hint="writing to a Unix socket whose peer has closed raises SIGPIPE, which kills by default: "
                "ignore it (signal(SIGPIPE, SIG_IGN)), then the write fails with EPIPE -- the server has gone"
           if sigpipe else SERVER_GONE_HINT)
    expect(client.wait_stderr(r"server closed the connection", 0.5),
           expected=f"{situation}: stderr says `server closed the connection`",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}", hint=SERVER_GONE_HINT)


@points(1)
@contract(STREAM_CLIENT, "if the server closes first")
def test_client_reports_a_server_that_closed_before_its_next_line(lab):
    """stream-client: a server gone before the next line -> `server closed the connection`, not SIGPIPE"""
    path = path_in(lab, "srv.sock")
    client, peer = run_client_against(lab, path)
    serve_lines(client, peer, ["one"])
    peer.close()                        # the server quits between two lines
    client.write_stdin("two\n")
    expect_server_gone_reported(client, "the server closed before the line `two` (the write fails: EPIPE)")


@points(1)
@contract(STREAM_CLIENT, "if the server closes first")
@pytest.mark.parametrize("how", ["eof", "reset"])
def test_client_reports_a_server_that_closes_instead_of_answering(lab, how):
    """stream-client: a server that closes instead of replying -> `server closed the connection`"""
    path = path_in(lab, "srv.sock")
    client, peer = run_client_against(lab, path)
    serve_lines(client, peer, ["one"])
    client.write_stdin("two\n")
    if how == "eof":
        expect(peer.recv_line(what="the line `two`") == "two", expected="the line `two`",
               happened=peer.wire.render())
        situation = "the server read `two` and closed without answering (the read returns 0)"
    else:
        arrived, _, _ = select.select([peer.sock], [], [], 2.0)   # there, but not read
        expect(arrived, expected="the line `two` reaches the server", happened="nothing arrived")
        situation = "the server closed with `two` unread (the read fails with ECONNRESET)"
    peer.close()
    expect_server_gone_reported(client, situation)


@points(1)
@contract(STREAM_CLIENT, "connects a `SOCK_STREAM` socket to NAME")
def test_client_connects_to_an_abstract_name(lab):
    """stream-client given `@name` connects to the abstract address"""
    name = abstract_name()
    client, peer = run_client_against(lab, kernel_name(name))
    serve_lines(client, peer, ["abstract"])


@points(1)
@contract(STREAM_CLIENT, "No such file or directory (2)")
def test_client_reports_a_missing_server(lab):
    """stream-client with no server at NAME: `connect: No such file or directory (2)`"""
    client = lab.start(STREAM_CLIENT, path_in(lab, "nobody.sock"))
    client.expect_fatal(r"connect.*No such file or directory \(2\)",
                        expected="stderr says: connect: No such file or directory (2) -- no file, so no server",
                        exit_hint="check connect()'s return value and report it with fatal(errno, \"connect\")")


@points(1)
@contract(STREAM_CLIENT, "No such file or directory (2)")
def test_client_reports_a_stale_socket_file(lab):
    """stream-client on a dead server's socket file: `connect: Connection refused (111)`"""
    path = path_in(lab, "stale.sock")
    make_stale_socket(path)
    client = lab.start(STREAM_CLIENT, path)
    client.expect_fatal(r"connect.*Connection refused \(111\)",
                        expected="stderr says: connect: Connection refused (111) -- the file is there, nobody listens",
                        exit_hint="connect() to a socket file nobody listens on fails: report it and exit 1")


@points(1)
@contract(STREAM_CLIENT, "No such file or directory (2)")
@pytest.mark.parametrize("where", ["path", "abstract"])
def test_client_reports_a_type_mismatch(lab, where):
    """stream-client on a datagram socket: EPROTOTYPE at a path, ECONNREFUSED at an abstract name"""
    if where == "path":
        name = path_in(lab, "dgram.sock")
        want, text = r"Protocol wrong type for socket \(91\)", "Protocol wrong type for socket (91) (EPROTOTYPE)"
    else:
        name = abstract_name()
        want, text = r"Connection refused \(111\)", ("Connection refused (111): an abstract name is looked up "
                                                     "among stream sockets only")
    lab.unix_dgram(kernel_name(name))
    client = lab.start(STREAM_CLIENT, name)
    client.expect_exit(1, hint="a SOCK_STREAM socket cannot connect to a SOCK_DGRAM one: report connect's errno")
    expect(client.wait_stderr(rf"connect.*{want}", 0.5),
           expected=f"stderr says: connect: {text}",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}",
           hint="the client must use SOCK_STREAM, and report connect() failures with fatal(errno, \"connect\")")


# -- dgram-server -----------------------------------------------------------------

def dgram_round_trip(server, peer, server_path, text, hint=None):
    data = text if isinstance(text, bytes) else text.encode()
    peer.sendto(data, server_path)
    got, _ = peer.recvfrom(program=server, what=f"the reply datagram `Hi, {text}`",
                           hint=hint or "sendto() the reply to the address recvfrom() filled in")
    expect(got == b"Hi, " + data, expected=f"the reply `Hi, {text}`",
           happened=f"got {got!r}", hint="one datagram back: \"Hi, \" + exactly the bytes received")


@points(2)
@contract(DGRAM_SERVER, "for each datagram of up to 2048 bytes", "treats NAME as `stream-server` does")
def test_dgram_server_replies_to_a_bound_client(lab):
    """dgram-server answers each datagram with `Hi, <text>` sent back to its sender"""
    path = path_in(lab, "dgram.sock")
    make_stale_socket(path)             # a stale file is removed, as by stream-server
    server = lab.start(DGRAM_SERVER, path)
    server.expect_line(rf"listening on {re.escape(path)}",
                       expected="dgram-server starts (removing the stale socket file there) and prints "
                                f"`listening on {path}`",
                       hint="remove a stale socket file before bind(), as stream-server does")
    expect(is_socket_file(path), expected=f"{path} is a socket file", happened=describe_path(path))
    peer = lab.unix_dgram(path_in(lab, "c.sock"))
    for text in ("g1", "g2"):
        dgram_round_trip(server, peer, path, text)
        server.expect_line(rf"Receive: {text}", expected=f"the server prints `Receive: {text}`")


@points(1)
@contract(DGRAM_SERVER, "be it a path or an abstract name")
def test_dgram_server_replies_to_an_abstract_client(lab):
    """dgram-server replies to a client bound to an abstract name"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    client = abstract_name()
    peer = lab.unix_dgram(kernel_name(client))
    peer.sendto(b"abstract", path)
    server.expect_line("Receive: abstract", expected="the server prints `Receive: abstract`")
    try:
        got, _ = peer.recvfrom(program=server, timeout=1.0, what=f"the reply `Hi, abstract` sent to {client}")
    except GradeFailure as e:
        unnamed = "cannot reply" in server.stdout_text() if not server.running() else any(
            "cannot reply" in text for _, text, _ in server.stdout_lines)
        raise GradeFailure(
            expected=f"the reply `Hi, abstract` reaches the client bound to the abstract name {client}",
            happened=e.happened + (" -- the server printed `cannot reply: the client has no address`"
                                   if unnamed else "") + f"; stderr: {server.stderr_text() or '(empty)'}",
            hint="an abstract address starts with a NUL byte too: whether the sender is unnamed is told by "
                 "the LENGTH recvfrom() returned (<= offsetof(struct sockaddr_un, sun_path)), not by "
                 "sun_path[0]" if unnamed else
                 "reply with the address length recvfrom() returned: sizeof(struct sockaddr_un) turns an "
                 "abstract name into that name followed by NUL bytes -- a different name",
            wire=peer.wire.render())
    expect(got == b"Hi, abstract", expected="the reply `Hi, abstract`", happened=f"got {got!r}")


@points(1)
@contract(DGRAM_SERVER, "a sender that never bound a name is")
def test_dgram_server_survives_an_unbound_client(lab):
    """dgram-server reports a sender with no address and keeps serving"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    lab.unix_dgram().sendto("anon", path)
    server.expect_line("Receive: anon", expected="the server prints `Receive: anon`")
    server.expect_line(r"cannot reply: the client has no address",
                       expected="the server prints `cannot reply: the client has no address`",
                       hint="an unbound sender's address is empty: recvfrom() sets the length to "
                            "at most offsetof(struct sockaddr_un, sun_path); sendto() there fails with "
                            "ENOTCONN. Check the length before replying")
    server.expect_running("the server keeps running after an unbound client",
                          hint="a failed reply concerns one client: report it and go on, don't exit")
    dgram_round_trip(server, lab.unix_dgram(path_in(lab, "c.sock")), path, "named",
                     hint="the unnamed sender left recvfrom()'s address length at 2 bytes: set it back "
                          "to sizeof(from) before every call, or the next sender's name is cut to nothing")


@points(1)
@contract(DGRAM_SERVER, "to the sender's address")
def test_dgram_server_replies_to_clients_of_any_name_length(lab):
    """dgram-server replies to a long-named client after a short-named one"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    hint = ("recvfrom() writes at most *addrlen bytes of the address and then sets *addrlen to the length "
            "used: set it back to sizeof(addr) before every call, or a longer name is cut short")
    dgram_round_trip(server, lab.unix_dgram(path_in(lab, "a")), path, "short", hint=hint)
    dgram_round_trip(server, lab.unix_dgram(path_in(lab, "a-client-with-a-much-longer-name.sock")),
                     path, "long", hint=hint)


@points(1)
@contract(DGRAM_SERVER, "an empty one is a message like any other")
def test_dgram_server_answers_an_empty_datagram(lab):
    """dgram-server treats an empty datagram as a message, not as the end"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    peer = lab.unix_dgram(path_in(lab, "c.sock"))
    peer.sendto(b"", path)
    data, _ = peer.recvfrom(program=server, what="the reply `Hi, ` to an empty datagram",
                            hint="recvfrom() returning 0 is a datagram of 0 bytes: datagram sockets have no "
                                 "connection, so no \"client quit\" either -- answer it like any other")
    expect(data == b"Hi, ", expected="the reply `Hi, `", happened=f"got {data!r}")
    dgram_round_trip(server, peer, path, "after")


@points(1)
@contract(DGRAM_SERVER, "a reply that fails")
def test_dgram_server_survives_a_client_that_vanished(lab):
    """dgram-server warns when a reply cannot be delivered and serves the next client"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    gone_path = path_in(lab, "gone.sock")
    gone = lab.unix_dgram(gone_path)
    server.signal(signal.SIGSTOP)       # so that the client is gone before the reply leaves
    gone.sendto(b"bye", path)
    gone.close()
    os.unlink(gone_path)
    server.signal(signal.SIGCONT)
    server.expect_line("Receive: bye", expected="the server prints `Receive: bye`")
    peer = lab.unix_dgram(path_in(lab, "next.sock"))
    peer.sendto(b"next", path)
    try:
        got, _ = peer.recvfrom(program=server, what="the reply `Hi, next` to the next client")
    except GradeFailure as e:
        raise GradeFailure(expected="after a reply to a client that has gone fails (sendto: ENOENT), the server "
                                    "warns on stderr and answers the next client",
                           happened=f"the server {server.status()}" if not server.running() else e.happened,
                           hint="a failed sendto() concerns one client: warning(errno, \"sendto\") and go on; "
                                "fatal() there lets any client stop the server",
                           wire=peer.wire.render())
    expect(got == b"Hi, next", expected="the reply `Hi, next`", happened=f"got {got!r}")


@points(1)
@contract(DGRAM_SERVER, "on SIGINT or SIGTERM removes its socket file")
def test_dgram_server_removes_its_socket_file_on_sigterm(lab):
    """dgram-server removes its socket file and exits 0 on SIGTERM"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    dgram_round_trip(server, lab.unix_dgram(path_in(lab, "c.sock")), path, "x")
    server.wait_blocked()
    server.signal(signal.SIGTERM)
    expect_stops_and_cleans_up(server, path, "SIGTERM while it waits in recvfrom()")


@points(1)
@contract(DGRAM_SERVER, "exactly the bytes received, NUL bytes included")
def test_dgram_server_echoes_the_bytes_exactly(lab):
    """dgram-server replies with the exact bytes: NUL bytes, and 2048 of them"""
    use_sanitized_programs(lab, "address")      # a 2048-byte datagram must fit the buffers, not overflow them
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    peer = lab.unix_dgram(path_in(lab, "c.sock"))
    dgram_round_trip(server, peer, path, b"a\0b\0",
                     hint="build the reply from the byte count recvfrom() returned (memcpy), not as a "
                          "string: \"%s\" and strlen() stop at the first NUL byte")
    biggest = bytes(ord("a") + i % 26 for i in range(DATAGRAM_MAX))
    size_hint = (f"datagrams of up to {DATAGRAM_MAX} bytes must be answered whole: receive them "
                 f"into a buffer of {DATAGRAM_MAX} bytes (one more if you add a NUL), and make the "
                 "reply's 4 bytes longer")
    try:
        dgram_round_trip(server, peer, path, biggest, hint=size_hint)
    except GradeFailure as failure:
        server.wait_exit(0.5)
        raise explain_sanitized(failure, server, hint="AddressSanitizer stopped the server at the line "
                                "named under `sanitizer`: " + size_hint) from None
    # much longer: it may be cut, but the server goes on
    peer.sendto(b"z" * 3 * DATAGRAM_MAX, path)
    peer.sendto(b"next", path)
    got = None
    for _ in range(2):
        got, _ = peer.recvfrom(program=server, what="the reply `Hi, next` after a too-long datagram",
                               hint="a datagram longer than your buffer is cut by recvfrom(): never pass a "
                                    "length bigger than the buffer")
        if got == b"Hi, next":
            break
    expect(got == b"Hi, next", expected="the reply `Hi, next` after the reply to a too-long datagram",
           happened=f"got {got!r}")


# -- dgram-client -----------------------------------------------------------------

def start_dgram_client(lab, server_path, client_path):
    server = lab.unix_dgram(kernel_name(server_path))
    client = lab.start(DGRAM_CLIENT, server_path, client_path)
    return server, client


def receive_from_client(server, client, text, client_path):
    data = text if isinstance(text, bytes) else text.encode()
    client.write_stdin(data + b"\n")
    got, addr = server.recvfrom(program=client, what=f"a datagram `{text}` from the client",
                                hint="send each stdin line as one datagram to SERVER with sendto()")
    expect(got == data, expected=f"the datagram {data!r} (the line without its '\\n', byte for byte)",
           happened=f"got {got!r}",
           hint="send the byte count getline() returned (minus the '\\n'): strlen() stops at a NUL byte"
           if data.split(b"\0")[0] == got else None)
    expect(addr, expected=f"the datagram comes from the client's own address {client_path}",
           happened="it comes from an unnamed socket: the server has no address to send a reply to",
           hint="a Unix datagram client must bind() its own address (CLIENT) before sending, "
                "unlike a UDP client, which the kernel binds to a port for you")
    shown = shown_name(addr)
    expect(shown == client_path, expected=f"the datagram comes from {client_path}",
           happened=f"it comes from {shown}", hint="bind() the CLIENT path given as the second argument")
    return addr


@points(2)
@contract(DGRAM_CLIENT, "binds a `SOCK_DGRAM` socket to CLIENT", "for each stdin line")
def test_dgram_client_binds_its_own_path(lab):
    """dgram-client binds CLIENT, so the server can send replies back"""
    server_path, client_path = path_in(lab, "srv.sock"), path_in(lab, "cli.sock")
    server, client = start_dgram_client(lab, server_path, client_path)
    for text in ("g1", "g2"):
        addr = receive_from_client(server, client, text, client_path)
        server.sendto(f"Hi, {text}", addr)
        client.expect_line(f"Hi, {text}", expected=f"the client prints the reply `Hi, {text}`",
                           hint="recv() one datagram after each send and print it")


@points(1)
@contract(DGRAM_CLIENT, "at the end of stdin exits 0")
def test_dgram_client_removes_its_path_on_exit(lab):
    """dgram-client removes its CLIENT socket file when stdin ends"""
    server_path, client_path = path_in(lab, "srv.sock"), path_in(lab, "cli.sock")
    server, client = start_dgram_client(lab, server_path, client_path)
    addr = receive_from_client(server, client, "bye", client_path)
    server.sendto("Hi, bye", addr)
    client.expect_line("Hi, bye")
    client.close_stdin()
    client.expect_exit(0, hint="at the end of stdin, exit 0")
    expect(not os.path.lexists(client_path),
           expected=f"{client_path} is removed when the client exits",
           happened=describe_path(client_path) + " -- left behind",
           hint="bind() created that file and nothing else will remove it: unlink() it before exiting "
                "(an atexit() handler also covers exits through fatal())")


@points(1)
@contract(DGRAM_CLIENT, "a stale socket file there is")
def test_dgram_client_replaces_a_stale_client_path(lab):
    """dgram-client starts even when an earlier run left CLIENT behind"""
    server_path, client_path = path_in(lab, "srv.sock"), path_in(lab, "cli.sock")
    make_stale_socket(client_path)
    server, client = start_dgram_client(lab, server_path, client_path)
    try:
        addr = receive_from_client(server, client, "again", client_path)
    except GradeFailure as e:
        raise GradeFailure(expected="the client binds CLIENT although a stale socket file is there",
                           happened=e.happened + (f"; {client.status()}" if not client.running() else ""),
                           hint="bind() fails with EADDRINUSE on an existing path: remove a stale socket "
                                "file (and only a socket file) first")
    server.sendto("Hi, again", addr)
    client.expect_line("Hi, again")


@points(1)
@contract(DGRAM_CLIENT, "a send that fails", "on an error")
def test_dgram_client_reports_a_missing_server(lab):
    """dgram-client with no server: `sendto: No such file or directory (2)`, and cleans up"""
    client_path = path_in(lab, "cli.sock")
    client = lab.start(DGRAM_CLIENT, path_in(lab, "nobody.sock"), client_path, stdin="hello\n")
    client.expect_fatal(r"(sendto|send|connect|write).*No such file or directory \(2\)",
                        expected="stderr says: sendto: No such file or directory (2)",
                        exit_hint="check sendto()'s return value and report it with fatal(errno, \"sendto\")")
    expect(not os.path.lexists(client_path),
           expected=f"{client_path} is removed even though the client ended with an error",
           happened=describe_path(client_path) + " -- left behind",
           hint="fatal() calls exit(), which runs atexit() handlers: register one that unlinks CLIENT")


@points(1)
@contract(DGRAM_CLIENT, "on SIGINT or SIGTERM (then exit 0)")
def test_dgram_client_removes_its_path_on_sigterm(lab):
    """dgram-client removes CLIENT and exits 0 on SIGTERM while it waits for a reply"""
    server_path, client_path = path_in(lab, "srv.sock"), path_in(lab, "cli.sock")
    server, client = start_dgram_client(lab, server_path, client_path)
    receive_from_client(server, client, "no answer", client_path)
    client.wait_blocked()
    client.signal(signal.SIGTERM)
    client.expect_exit(0, expected="the client exits 0 within 2 s of SIGTERM",
                       hint="the client binds a path too: install the same SIGINT/SIGTERM handler as the "
                            "servers (remove_on_exit), which unlinks it and exits 0")
    expect(not os.path.lexists(client_path), expected=f"{client_path} is removed on SIGTERM",
           happened=describe_path(client_path) + " -- left behind",
           hint="SIGTERM's default action kills without running atexit(): catch it and unlink CLIENT")


@points(1)
@contract(DGRAM_CLIENT, "its bytes exactly (NUL bytes included)")
def test_dgram_client_sends_bytes_exactly_and_prints_every_reply(lab):
    """dgram-client (bound to `@name`) sends NUL bytes, prints an empty and a 2052-byte reply"""
    server_path, client_name = path_in(lab, "srv.sock"), abstract_name()
    server, client = start_dgram_client(lab, server_path, client_name)
    addr = receive_from_client(server, client, b"a\0b", client_name)
    server.sendto(b"", addr)
    addr = receive_from_client(server, client, "after-empty", client_name)
    longest = "Hi, " + "".join(chr(ord("a") + i % 26) for i in range(DATAGRAM_MAX))
    server.sendto(longest, addr)
    receive_from_client(server, client, "last", client_name)
    server.sendto("Hi, last", addr)
    client.expect_line("Hi, last", expected="the client prints the reply `Hi, last`")
    client.close_stdin()
    client.expect_exit(0)
    got = stdout_lines(client)
    want = ["", longest, "Hi, last"]
    expect(got == want, expected="stdout holds the replies, one per line: an empty line for the empty reply, "
                                 f"the {len(longest)}-byte reply whole, then `Hi, last`",
           happened="stdout was " + str([t if len(t) < 40 else f"{t[:20]}…({len(t)} bytes)" for t in got]),
           hint="an empty datagram is an empty reply, not an error (recv() returns 0); receive into a "
                f"buffer that holds the longest reply ({len(longest)} bytes: `Hi, ` and {DATAGRAM_MAX})")


# -- pair (socketpair) ----------------------------------------------------------------

def unix_pairs():
    """{(inode, peer inode)} of connected Unix sockets."""
    return {(sock.inode, sock.peer_inode) for sock in probes.unix_sockets() if sock.peer_inode}


def start_pair(lab):
    prog = lab.start("pair")
    m = prog.expect_line(r"child (\d+)", expected="pair prints `child <pid>` after fork()",
                         hint="fork() returns the child's pid in the parent: print it there")
    return prog, int(m.group(1))


@points(2)
@contract("pair", "creates a connected pair", "for each stdin line")
def test_pair_child_answers_through_the_socketpair(lab):
    """pair: the forked child answers each line over a socketpair"""
    before = set(os.listdir(lab.tmp))
    prog, child = start_pair(lab)
    for line in ("g1", "g2"):
        prog.write_stdin(line + "\n")
        prog.expect_line(f"Hi, {line}", expected=f"pair prints the child's answer `Hi, {line}`",
                         hint="the parent writes the line to its end; the child reads it from the other "
                              "end and writes the answer back")
    fields = proc_stat(child)
    ppid = int(fields[1]) if fields else None
    expect(ppid == prog.pid, expected=f"process {child} is pair's child, still running",
           happened=f"its parent is {ppid}" + (" -- `child PID` printed the parent's own pid"
                                               if child == prog.pid else "") if ppid
           else f"there is no process {child}",
           hint="print the pid fork() returned, and let the child live until the parent closes its end")
    mine, theirs = probes.socket_inodes(prog.pid), probes.socket_inodes(child)
    connected = {(a, b) for a, b in unix_pairs() if a in mine and b in theirs}
    expect(connected, expected="the parent holds one end of a connected socket pair and the child the other",
           happened=f"parent's sockets {sorted(mine) or 'none'}, child's {sorted(theirs) or 'none'}; "
                    "no connected pair links them",
           hint="socketpair(AF_UNIX, SOCK_STREAM, 0, sv) before fork(); the parent uses sv[0], the child sv[1]",
           sockets=unix_sockets_text)
    created = set(os.listdir(lab.tmp)) - before
    expect(not created, expected="no socket file: a socketpair has no name",
           happened=f"new files: {sorted(created)}")


@points(1)
@contract("pair", "for each stdin line")
def test_pair_answers_a_long_line_and_an_unterminated_one(lab):
    """pair answers a 1022-byte line, and a last line that has no `\\n`"""
    use_sanitized_programs(lab, "address")      # the added '\\n' must stay inside the line's buffer
    try:
        pair_answers_a_long_line_and_an_unterminated_one(lab)
    except GradeFailure as failure:
        raise explain_sanitized(failure, *lab.programs) from None


def pair_answers_a_long_line_and_an_unterminated_one(lab):
    # first an unterminated line alone, in a buffer that held nothing longer before
    prog, _ = start_pair(lab)
    prog.write_stdin("solo")
    prog.close_stdin()
    prog.expect_line("Hi, solo", expected="pair prints `Hi, solo` for its only stdin line, `solo` without '\\n'",
                     hint="getline() returns a last line without '\\n' as it is: send it with one, or the "
                          "child waits for the end of the line while the parent waits for its answer")
    prog.expect_exit(0)
    prog, _ = start_pair(lab)
    longest = "L" * LINE_MAX
    prog.write_stdin(longest + "\n")
    prog.expect_line(re.escape("Hi, " + longest), expected=f"pair prints the answer to a {LINE_MAX}-byte line",
                     hint=f"lines of up to {LINE_MAX} bytes must work: the child's line buffer needs 1024 "
                          "bytes (line, \\n, NUL), its reply 4 more, and the parent's as many")
    prog.write_stdin("last")
    prog.close_stdin()
    prog.expect_line("Hi, last", expected="pair prints `Hi, last` for a last stdin line without '\\n'",
                     hint="getline() returns a last line without '\\n' as it is: send it with one, or the "
                          "child waits for the end of the line while the parent waits for its answer")
    prog.expect_line(r"child exited with status 0", expected="then `child exited with status 0`",
                     hint=CHILD_EOF_HINT)


@points(1)
@contract("pair", "at the end of stdin the parent closes its end")
def test_pair_child_sees_eof_when_the_parent_closes(lab):
    """pair: after stdin ends the child sees EOF, exits 0, and the parent reports it"""
    # built with every local variable pattern-filled: a status waitpid() never wrote is not 0 by luck
    use_sanitized_programs(lab, "address")
    prog, child = start_pair(lab)
    prog.write_stdin("last\n")
    prog.expect_line("Hi, last")
    prog.close_stdin()
    m = prog.expect_line(r"child (exited with status \d+|killed by signal \d+)", timeout=2,
                         expected="pair prints `child exited with status 0` within 2 s of the end of stdin",
                         hint="the child's read returns 0 only when every descriptor of the other end is "
                              "closed -- including the copy the child inherited at fork(): each process must "
                              "close the end it does not use. (A SOCK_DGRAM pair has no EOF at all: use "
                              "SOCK_STREAM)")
    expect(m.group(0) == "child exited with status 0", expected="`child exited with status 0`",
           happened=f"pair printed `{m.group(0)}`",
           hint="the child exits 0 once its read returns 0; print the status waitpid(pid, &status, 0) "
                "filled in, after it has returned the child's pid (retry on EINTR): before that, `status` "
                "holds whatever was in memory")
    prog.expect_exit(0)


@points(1)
@contract("pair", "the parent keeps one end and the child the other")
def test_pair_parent_notices_a_dead_child(lab):
    """pair: when the child has died, the parent's next line fails with a message, exit 1"""
    prog, child = start_pair(lab)
    prog.write_stdin("one\n")
    prog.expect_line("Hi, one")
    os.kill(child, signal.SIGKILL)
    # a killed child keeps nothing open: its end is closed once it is a zombie
    poll_until(lambda: (proc_stat(child) or ["Z"])[0] in ("Z", "X"), 2.0)
    prog.write_stdin("two\n")
    rc = prog.wait_expected_exit(2)
    expect(rc == 1,
           expected="the child died: the parent's next write fails (EPIPE) or its read returns 0; it says so "
                    "on stderr and exits 1",
           happened=f"pair {prog.status()}" + (" after 2 s: it waits for an answer that cannot come"
                                               if rc is None else ""),
           hint="ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) and report the failed write" if rc == -signal.SIGPIPE
           else "the parent must close the child's end (sv[1]) after fork(): while it holds that copy, its "
                "writes succeed and its read never sees EOF" if rc is None
           else "report the failed write or the EOF with fatal() (exit status 1)")
    expect(prog.stderr_text().strip(), expected="a message on stderr", happened="stderr was empty")
