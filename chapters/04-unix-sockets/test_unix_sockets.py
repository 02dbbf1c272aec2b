"""Grader for chapter 04 -- Unix domain sockets.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  Socket paths live in a short temporary directory of each test's
own (sun_path is only 108 bytes), the programs run in lab.tmp, and abstract names are
unique per test.
"""
import os
import re
import signal
import socket
import stat
import uuid

from grader import GradeFailure, expect, points, proc_stat
from grader import probes

STREAM_SERVER, STREAM_CLIENT = "stream-server", "stream-client"
DGRAM_SERVER, DGRAM_CLIENT = "dgram-server", "dgram-client"


# -- helpers ------------------------------------------------------------------

def path_in(lab, name):
    """A socket path for this test: in the lab's short folder, since sun_path holds 108
    bytes and pytest's temporary folders can be longer than that."""
    return os.path.join(lab.short_dir(), name)


def abstract_name():
    """'@socklab-…': unique even when tests share a network namespace."""
    return "@socklab-" + uuid.uuid4().hex[:12]


def kernel_name(name):
    """The address Python's socket module uses for NAME ('@x' -> '\\0x')."""
    return "\0" + name[1:] if name.startswith("@") else name


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
            else "a directory" if stat.S_ISDIR(st.st_mode) else "some other kind of file")
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
        server.expect_line(rf"Receive: {line}", expected=f"the server prints `Receive: {line}`")


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


# -- stream-server --------------------------------------------------------------

@points(2)
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
def test_server_never_removes_a_file_that_is_not_a_socket(lab):
    """stream-server refuses to delete a regular file given as NAME"""
    path = path_in(lab, "notes.txt")
    with open(path, "w") as f:
        f.write("precious\n")
    server = lab.start(STREAM_SERVER, path)
    server.expect_exit(1, expected="the server exits 1: NAME is a regular file, not a stale socket",
                       hint="lstat() first and unlink() only if S_ISSOCK(st.st_mode); otherwise "
                            "fatal(0, \"refusing to remove '%s': not a socket\", path)")
    content = open(path).read() if os.path.isfile(path) else ""
    expect(content == "precious\n", expected=f"{path} still holds its text",
           happened=describe_path(path) + (" -- its content is gone" if content else ""),
           hint="a blind unlink(path) before bind() deletes whatever the user typed: check it is a socket")
    expect(server.wait_stderr(r"(?i)not a socket", 0.5),
           expected="stderr explains: refusing to remove '<path>': not a socket",
           happened=f"stderr was: {server.stderr_text() or '(empty)'}")


@points(2)
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
           happened=f"it printed pid {got[0]} uid {got[1]}",
           hint="SO_PEERCRED is asked on the accepted socket, and describes the peer: "
                "getpid()/getuid() would describe the server itself")


@points(1)
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
def test_server_removes_its_socket_file_on_sigterm_with_a_client(lab):
    """stream-server stops on SIGTERM even while a client is connected"""
    path = path_in(lab, "echo.sock")
    server = start_server(lab, STREAM_SERVER, path)
    expect_echo(lab, server, lab.unix_connect(path), ["idle"])
    server.wait_blocked()
    server.signal(signal.SIGTERM)
    expect_stops_and_cleans_up(server, path, "SIGTERM while it waits for the client's next line")


@points(1)
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
                                "offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name) as the length: "
                                "abstract names are not NUL-terminated, every byte counts")
    expect_echo(lab, server, peer, ["abstract"])
    created = listing() - before
    expect(not created, expected="no file is created for an abstract name",
           happened=f"new in the working directory: {sorted(created)}",
           hint="a name starting with '@' is not a path: do not bind it (or unlink it) as one")


@points(1)
def test_server_rejects_a_name_that_does_not_fit(lab):
    """stream-server exits 1 for a path longer than sun_path instead of cutting it"""
    path = path_in(lab, "x" * 120 + ".sock")
    server = lab.start(STREAM_SERVER, path)
    server.expect_exit(1, expected="the server exits 1: the path does not fit in sun_path (108 bytes with its NUL)",
                       hint="check strlen(name) < sizeof(addr.sun_path) before copying; strncpy silently "
                            "cuts the path and binds a different one")
    expect(server.wait_stderr(r"(?i)too long", 0.5),
           expected="stderr says the name is too long",
           happened=f"stderr was: {server.stderr_text() or '(empty)'}",
           hint="fatal(0, \"name too long: '%s' ...\", name)")


# -- stream-client ---------------------------------------------------------------

def run_client_against(lab, address):
    listener = lab.unix_listen(address)
    client = lab.start(STREAM_CLIENT, address if not address.startswith("\0") else "@" + address[1:])
    peer = listener.accept(program=client, hint="the client connects to the NAME in its argument")
    return client, peer


def serve_lines(client, peer, lines):
    for line in lines:
        client.write_stdin(line + "\n")
        got = peer.recv_line(what=f"the line `{line}` (as typed on stdin, with its '\\n')",
                             hint="send each stdin line, newline included, before waiting for the reply")
        expect(got == line, expected=f"the client sends `{line}\\n`", happened=f"got {peer.wire.render()}")
        peer.send(f"Hi, {line}\n")
        client.expect_line(f"Hi, {line}", expected=f"the client prints the reply `Hi, {line}`",
                           hint="read the reply up to its '\\n' and print it")


@points(2)
def test_client_sends_lines_and_prints_replies(lab):
    """stream-client sends each stdin line and prints each reply; EOF on stdin ends it"""
    path = path_in(lab, "srv.sock")
    client, peer = run_client_against(lab, path)
    serve_lines(client, peer, ["g1", "g2"])
    client.close_stdin()
    expect(peer.wait_close(2) == "eof",
           expected="when stdin ends the client closes its connection (the grader reads EOF)",
           happened=peer._state(), hint="getline() returning -1 means stdin ended: close the socket")
    client.expect_exit(0)


@points(1)
def test_client_connects_to_an_abstract_name(lab):
    """stream-client given `@name` connects to the abstract address"""
    name = abstract_name()
    client, peer = run_client_against(lab, kernel_name(name))
    serve_lines(client, peer, ["abstract"])


@points(1)
def test_client_reports_a_missing_server(lab):
    """stream-client with no server at NAME: `connect: No such file or directory (2)`"""
    client = lab.start(STREAM_CLIENT, path_in(lab, "nobody.sock"))
    client.expect_fatal(r"connect.*No such file or directory \(2\)",
                        expected="stderr says: connect: No such file or directory (2) -- no file, so no server",
                        exit_hint="check connect()'s return value and report it with fatal(errno, \"connect\")")


@points(1)
def test_client_reports_a_stale_socket_file(lab):
    """stream-client on a dead server's socket file: `connect: Connection refused (111)`"""
    path = path_in(lab, "stale.sock")
    make_stale_socket(path)
    client = lab.start(STREAM_CLIENT, path)
    client.expect_fatal(r"connect.*Connection refused \(111\)",
                        expected="stderr says: connect: Connection refused (111) -- the file is there, nobody listens",
                        exit_hint="connect() to a socket file nobody listens on fails: report it and exit 1")


@points(1)
def test_client_reports_a_type_mismatch(lab):
    """stream-client on a datagram socket: `connect: Protocol wrong type for socket (91)`"""
    path = path_in(lab, "dgram.sock")
    lab.unix_dgram(path)
    client = lab.start(STREAM_CLIENT, path)
    client.expect_exit(1, hint="a SOCK_STREAM socket cannot connect to a SOCK_DGRAM one: report connect's errno")
    expect(client.wait_stderr(r"connect.*Protocol wrong type for socket \(91\)", 0.5),
           expected="stderr says: connect: Protocol wrong type for socket (91) (EPROTOTYPE)",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}",
           hint="the client must use SOCK_STREAM, and report connect() failures with fatal(errno, \"connect\")")


# -- dgram-server -----------------------------------------------------------------

def dgram_round_trip(server, peer, server_path, text, hint=None):
    peer.sendto(text, server_path)
    data, _ = peer.recvfrom(program=server, what=f"the reply datagram `Hi, {text}`",
                            hint=hint or "sendto() the reply to the address recvfrom() filled in")
    expect(data == f"Hi, {text}".encode(), expected=f"the reply `Hi, {text}`",
           happened=f"got {data!r}", hint="one datagram back: \"Hi, \" + exactly the bytes received")


@points(2)
def test_dgram_server_replies_to_a_bound_client(lab):
    """dgram-server answers each datagram with `Hi, <text>` sent back to its sender"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    expect(is_socket_file(path), expected=f"{path} is a socket file", happened=describe_path(path))
    peer = lab.unix_dgram(path_in(lab, "c.sock"))
    for text in ("g1", "g2"):
        dgram_round_trip(server, peer, path, text)
        server.expect_line(rf"Receive: {text}", expected=f"the server prints `Receive: {text}`")


@points(1)
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
    dgram_round_trip(server, lab.unix_dgram(path_in(lab, "c.sock")), path, "named")


@points(1)
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
def test_dgram_server_removes_its_socket_file_on_sigterm(lab):
    """dgram-server removes its socket file and exits 0 on SIGTERM"""
    path = path_in(lab, "dgram.sock")
    server = start_server(lab, DGRAM_SERVER, path)
    dgram_round_trip(server, lab.unix_dgram(path_in(lab, "c.sock")), path, "x")
    server.wait_blocked()
    server.signal(signal.SIGTERM)
    expect_stops_and_cleans_up(server, path, "SIGTERM while it waits in recvfrom()")


# -- dgram-client -----------------------------------------------------------------

def start_dgram_client(lab, server_path, client_path):
    server = lab.unix_dgram(server_path)
    client = lab.start(DGRAM_CLIENT, server_path, client_path)
    return server, client


def receive_from_client(server, client, text, client_path):
    client.write_stdin(text + "\n")
    data, addr = server.recvfrom(program=client, what=f"a datagram `{text}` from the client",
                                 hint="send each stdin line as one datagram to SERVER with sendto()")
    expect(data == text.encode(), expected=f"the datagram `{text}` (the line without its '\\n')",
           happened=f"got {data!r}")
    expect(addr, expected=f"the datagram comes from the client's own address {client_path}",
           happened="it comes from an unnamed socket: the server has no address to send a reply to",
           hint="a Unix datagram client must bind() its own address (CLIENT) before sending, "
                "unlike a UDP client, which the kernel binds to a port for you")
    shown = addr if isinstance(addr, str) else "@" + addr[1:].decode(errors="replace")
    expect(shown == client_path, expected=f"the datagram comes from {client_path}",
           happened=f"it comes from {shown}", hint="bind() the CLIENT path given as the second argument")
    return addr


@points(2)
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
           happened=f"its parent is {ppid}" if ppid else f"there is no process {child}",
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
def test_pair_child_sees_eof_when_the_parent_closes(lab):
    """pair: after stdin ends the child sees EOF, exits 0, and the parent reports it"""
    prog, child = start_pair(lab)
    prog.write_stdin("last\n")
    prog.expect_line("Hi, last")
    prog.close_stdin()
    prog.expect_line(r"child exited with status 0", timeout=2,
                     expected="pair prints `child exited with status 0` within 2 s of the end of stdin",
                     hint="the child's read returns 0 only when every descriptor of the other end is "
                          "closed -- including the copy the child inherited at fork(): each process must "
                          "close the end it does not use")
    prog.expect_exit(0)
