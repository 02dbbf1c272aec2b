"""Grader for chapter 02 -- the TCP handshake, the accept queue, blocking writes, EOF.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.
"""
import re
import select
import signal
import time

from grader import (GradeFailure, contract, expect, explain_sanitized, first_difference, needs_netns, points,
                    poll_until, skip, use_sanitized_programs)

BIG = 10_240_000            # far more than a send buffer plus a receive buffer hold
ALPHABET = bytes(range(ord("a"), ord("z") + 1))
# The calls a client may send with (the Contract: write() or send()); for writev and
# sendmsg the third argument is not a size.
SIZED_WRITES = ("write", "sendto")
WRITES = SIZED_WRITES + ("writev", "sendmsg")


def payload(count):
    """What the client must send: byte i is 'a' + i % 26."""
    return (ALPHABET * (count // 26 + 1))[:count]


def describe_content_error(got, want):
    i = first_difference(got, want)
    if i is None:
        return None
    if i >= len(got):
        return f"the stream ended after {len(got)} bytes; {len(want)} were expected"
    shown = chr(got[i]) if 32 <= got[i] < 127 else f"\\x{got[i]:02x}"
    text = f"byte {i} is '{shown}', expected '{chr(want[i])}'"
    if got[i:i + 26] == ALPHABET[:min(26, len(got) - i)] and i > 0:
        text += " -- the stream starts over from the beginning of the buffer there"
    return text


def receive_stream(peer, timeout, limit):
    """Everything until EOF, into one bytearray (megabytes: no quadratic copying).

    The peer's transcript gets a one-line summary instead of the bytes."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    sock = peer.sock
    sock.settimeout(None)
    while len(data) <= limit:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            peer.wire.mark("←", f"{len(data)} bytes, then nothing for a while")
            raise GradeFailure(expected=f"your client sends its bytes and half-closes within {timeout:g} s",
                               happened=f"got {len(data)} bytes and then nothing more arrived",
                               hint="after the write loop, shutdown(fd, SHUT_WR) sends the FIN")
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            peer.wire.mark("←", f"{len(data)} bytes, then RST")
            raise GradeFailure(expected="your client sends its bytes and half-closes",
                               happened=f"got {len(data)} bytes and then the connection was reset (RST)") from None
        if not chunk:
            break
        data += chunk
    peer.wire.mark("←", f"{len(data)} bytes")
    peer.wire.mark("←", "EOF")
    peer.eof = True
    return bytes(data)


def start_client(lab, port, count, *extra):
    return lab.start("client", "127.0.0.1", port, count, *extra)


def expect_connected_line(client, hint=None):
    m = client.expect_line(r"connected from (\S+):(\d+)",
                           expected="client prints `connected from IP:PORT` once connect() returned",
                           hint=hint or "print the line right after connect() succeeds")
    return m.group(1), int(m.group(2))


def wait_in_write(prog, timeout=3.0):
    """Until the program sleeps in a write/send call (its send buffer full); returns
    (name, arguments) of that call or None.  Polled, bounded: there is no event for it."""
    found = []

    def blocked():
        call = prog.blocked_syscall()
        if call and call[0] in WRITES and prog.wait_blocked(0.01):
            found.append(call)
            return True
        return not prog.running()
    poll_until(blocked, timeout, interval=0.005)
    return found[-1] if found else None


def expect_answer(peer, size, hint):
    """The server answers `received SIZE bytes\\n` and closes."""
    want = f"received {size} bytes\n".encode()
    how = peer.wait_close(timeout=2)
    got = peer.buffer
    if got == want and how == "eof":
        return
    if got == want[:-1]:
        hint = "the answer is a line: `received N bytes` and then \"\\n\""
    elif got == want:
        hint = "close() the accepted socket once the answer is sent"
    elif not got:
        hint = "after read() returns 0, write the answer to the same connection, then close it"
    expect(False, expected=f"the answer {want!r}, then the server closes the connection",
           happened=f"got {got!r} and then " + {"eof": "EOF", "reset": "a reset (RST)"}.get(how, "nothing more"),
           hint=hint, wire=peer.wire.render())


def start_server(lab, port, *args):
    server = lab.start("server", port, *args)
    server.expect_line(rf"listening on 0\.0\.0\.0:{port} backlog \d+",
                       expected=f"server prints `listening on 0.0.0.0:{port} backlog B` once it listens",
                       hint="print the line after listen() succeeds, with the port from local_port()")
    return server


# -- client ---------------------------------------------------------------------

@contract("client", "Nobody listening")
@points(1)
def test_client_reports_a_refused_connection(lab):
    """client exits 1 with `connect: Connection refused (111)` when nobody listens"""
    client = start_client(lab, lab.closed_port(), 100)
    client.wait_exit(2)
    out = client.stdout_text()
    expect("sent" not in out and "connected" not in out,
           expected="nothing on stdout: nothing listens on that port, so the kernel answers the SYN "
                    "with RST and connect() fails -- there is no connection to report or send on",
           happened=f"it printed: {out}" + (f" and {client.status()}" if not client.running() else ""),
           hint="check connect()'s return value: -1 with errno ECONNREFUSED; "
                "fatal(errno, \"connect\") reports it and exits 1")
    client.expect_exit(1, timeout=0.5,
                       expected="client exits 1 at once: nothing listens on that port, so connect() fails",
                       hint="check connect()'s return value: -1 with errno ECONNREFUSED; "
                            "fatal(errno, \"connect\") reports it and exits 1")
    expect(client.wait_stderr(r"connect.*Connection refused \(111\)", 0.5),
           expected="stderr names the call and the reason: connect: Connection refused (111)",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}",
           hint="fatal(errno, \"connect\") prints strerror(errno) and the number for you")


@needs_netns
@contract("client", "connects to HOST and PORT")
@points(2)
def test_client_handshake_completes_before_accept(lab):
    """one connect = SYN, SYN-ACK, ACK on the wire, all before the server accepts"""
    rec = lab.capture()
    listener = lab.listen(backlog=4)
    client = start_client(lab, listener.port, 5)
    host, port = expect_connected_line(
        client, hint="connect() returns when the handshake is done -- the server has not "
                     "called accept() yet, and does not need to")
    client.expect_line(r"sent 5 bytes", expected="client prints `sent 5 bytes`, still before any accept()",
                       hint="the kernel buffers the 5 bytes for the connection in the accept queue")
    rec.settle()
    segs = rec.tcp(listener.port)
    lab.note("packets (before accept)", rec.render(listener.port))
    flags = [s.flag_text for s in segs]
    expect(flags[:3] == ["S", "S.", "."],
           expected="the first three segments are SYN, SYN-ACK, ACK: [S] [S.] [.]",
           happened=f"the capture shows {' '.join('[' + f + ']' for f in flags[:6]) or 'nothing'}",
           hint="connect() once to HOST PORT; the kernel does the handshake for you")
    syn, synack, ack = segs[:3]
    expect(syn.dport == listener.port and synack.sport == listener.port and ack.dport == listener.port,
           expected="the SYN and the final ACK go to the server, the SYN-ACK comes from it",
           happened="the segments went the other way round")
    expect(synack.ack == (syn.seq + 1) % 2**32 and ack.ack == (synack.seq + 1) % 2**32,
           expected="each side acknowledges the other's sequence number + 1",
           happened=f"SYN seq {syn.seq}, SYN-ACK seq {synack.seq} ack {synack.ack}, ACK ack {ack.ack}")
    expect(port == syn.sport and host == syn.src,
           expected=f"client prints `connected from {syn.src}:{syn.sport}` -- the address its SYN came from",
           happened=f"it printed `connected from {host}:{port}`",
           hint="getsockname() tells you your own end; getpeername() would be the server's")
    peer = listener.accept(program=client)
    data = peer.recv_all_until_eof(timeout=2)
    expect(data == b"abcde", expected="the 5 bytes `abcde`, then the client's FIN",
           happened=f"got {data!r}")
    peer.send("received 5 bytes\n")
    peer.close()
    client.expect_line(r"received 5 bytes", hint="after shutdown(SHUT_WR), keep reading: the answer comes after")
    client.expect_exit(0)


@contract("client", "sends exactly COUNT bytes")
@points(3)
def test_client_sends_a_large_buffer_completely(lab):
    """client sends 10240000 bytes to a slow reader, signals or not: every byte, in order, `sent` once"""
    listener = lab.listen()
    client = start_client(lab, listener.port, BIG)
    peer = listener.accept(program=client)
    expect_connected_line(client)
    # The grader reads nothing for a while.  The kernel can hold a few MB for this
    # connection (send buffer + receive buffer); the rest must wait inside write().
    time.sleep(0.3)   # the waiting is the behaviour under test: nothing to wait for
    early = [t for _, t, _ in client.stdout_lines if t.startswith("sent")]
    expect(not early,
           expected=f"while nobody reads, write() blocks: the client cannot have sent all {BIG} "
                    "bytes yet, so `sent ...` is not printed",
           happened=f"it printed `{early[0] if early else ''}` while the grader had read nothing",
           hint="a blocking write() returns when all its bytes are in the kernel's send buffer; "
                "if yours returned early, the socket is non-blocking or you did not loop on short writes")
    client.expect_running("client is still running, waiting in write()")
    # A blocking write() that has copied part of its bytes returns that count when a
    # signal interrupts its wait -- even SIGSTOP then SIGCONT, with no handler at all.
    for _ in range(3):
        if not wait_in_write(client):
            break
        client.signal(signal.SIGSTOP)
        client.wait_stopped()
        client.signal(signal.SIGCONT)
    data = receive_stream(peer, timeout=5, limit=BIG)
    want = payload(BIG)
    expect(len(data) == BIG,
           expected=f"exactly {BIG} bytes, then the client's FIN, although the grader stopped and "
                    "continued the client (SIGSTOP, SIGCONT) while it waited in write()",
           happened=f"got {len(data)} bytes ({len(data) - BIG:+d})",
           hint="a signal cuts a blocking write() short: it returns how many bytes it took, which can "
                "be fewer than offered -- add that return value to `sent`, not the size you asked for")
    problem = describe_content_error(data, want)
    expect(problem is None, expected="byte i of the stream is 'a' + i % 26, as the buffer holds it",
           happened=problem, hint="offer buf + sent, not buf, on every write")
    peer.send(f"received {BIG} bytes\n")
    peer.close()
    client.expect_line(rf"sent {BIG} bytes", expected=f"client prints `sent {BIG} bytes`",
                       hint="print the total once, after the loop")
    client.expect_line(rf"received {BIG} bytes")
    client.expect_line(r"server closed")
    client.expect_exit(0)
    sent_lines = [t for _, t, _ in client.stdout_lines if t.startswith("sent")]
    expect(len(sent_lines) == 1, expected="exactly one `sent ...` line",
           happened=f"{len(sent_lines)} of them: " + "; ".join(sent_lines[:4]),
           hint="print once, after the whole buffer is in")


@contract("client", "sends exactly COUNT bytes")
@points(1)
def test_client_writes_in_chunks_without_repeating(lab):
    """client with CHUNK 90000 writes at most 90000 bytes a call, each piece the next"""
    # under AddressSanitizer: filling or sending COUNT bytes must stay inside the buffer
    use_sanitized_programs(lab, "address")
    chunk = 90_000
    listener = lab.listen()
    client = start_client(lab, listener.port, BIG, chunk)
    try:
        peer = listener.accept(program=client)
    except GradeFailure as failure:
        raise explain_sanitized(failure, client,
                                hint="AddressSanitizer stopped the client at the line named under "
                                     "`sanitizer`: a byte read or written past a buffer. A buffer of "
                                     "COUNT bytes has indexes 0 .. COUNT-1: loop with `i < count`, "
                                     "not `<=`") from None
    # Nobody reads yet: the client ends up asleep in a write(), which shows the size it offered.
    call = wait_in_write(client)
    if call and call[0] in SIZED_WRITES:
        expect(call[1][2] <= chunk,
               expected=f"each write() offers at most CHUNK = {chunk} bytes",
               happened=f"the client sleeps in {call[0]}() with {call[1][2]} bytes offered",
               hint="offer min(CHUNK, count - sent) bytes per call: CHUNK is the most one call may take")
    data = receive_stream(peer, timeout=5, limit=BIG)
    problem = describe_content_error(data, payload(BIG))
    expect(problem is None, expected=f"{BIG} bytes, byte i = 'a' + i % 26, then FIN",
           happened=problem,
           hint="each write() continues where the previous one stopped: buf + sent, "
                f"at most min({chunk}, count - sent) bytes")
    peer.send(f"received {BIG} bytes\n")
    peer.close()
    client.expect_exit(0)
    sent_lines = [t for _, t, _ in client.stdout_lines if t.startswith("sent")]
    expect(sent_lines == [f"sent {BIG} bytes"],
           expected=f"one line `sent {BIG} bytes`, after the last write()",
           happened=f"{len(sent_lines)} `sent` lines: " + "; ".join(sent_lines[:4]),
           hint="print the total once, after the loop, not after every write()")


@contract("client", "then half-closes")
@points(1)
def test_client_reads_until_the_server_closes(lab):
    """client with COUNT 0 prints every byte of the answer, NUL bytes too, then `server closed` on its own line"""
    listener = lab.listen()
    client = start_client(lab, listener.port, 0)
    peer = listener.accept(program=client)
    data = peer.recv_all_until_eof(timeout=2)
    expect(data == b"", expected="COUNT 0: no bytes, only the FIN", happened=f"got {len(data)} bytes")
    client.expect_line(r"sent 0 bytes", expected="client prints `sent 0 bytes`")
    answer = b"received 0 bytes\nthank\0 you"     # no newline at the end
    try:
        peer.send(answer[:22], pieces=3, delay=0.01)
        peer.send(answer[22:])
    except GradeFailure:
        raise GradeFailure(
            expected="after sending, the client keeps its read side open for the answer",
            happened="the grader's answer could not be delivered: the client's socket was "
                     "already closed (the kernel answered with RST)",
            hint="shutdown(fd, SHUT_WR) ends only your sending side (the server sees EOF); "
                 "close() ends both") from None
    peer.close()
    client.expect_line(r"received 0 bytes",
                       hint="keep reading after shutdown(SHUT_WR): the read side is still open")
    client.expect_exit(0, timeout=1, hint="after read() returned 0, close and exit 0 -- do not read again")
    got = client.stdout_bytes()
    tail = got[got.find("received"):]
    want = answer.decode() + "\nserver closed\n"
    if tail == want:
        return
    if "thank" in tail and "\0" not in tail:
        hint = ("the output stops at a NUL byte: the answer is bytes, not a C string -- write the n "
                "bytes read() returned with fwrite(buf, 1, n, stdout), not printf(\"%s\")")
    elif "youserver closed" in tail:
        hint = ("the server's last byte was not a newline, so `server closed` ended up on its line: "
                "remember the last byte you copied and print \"\\n\" first if it was not one")
    elif "thank\0 you" not in tail:
        hint = "one read() may return part of the answer: print it and read again, until read() returns 0"
    else:
        hint = "read() returns 0 when the server closes: then print `server closed` on a line of its own"
    expect(False, expected=f"stdout ends with the server's bytes unchanged, then a line `server closed`: {want!r}",
           happened=f"it ends with {tail!r}", hint=hint)


@contract("client", "connects to HOST and PORT")
@points(1)
def test_client_connects_over_ipv6(lab):
    """client connects to ::1 and prints `connected from [::1]:PORT`"""
    try:
        listener = lab.listen(host="::1")
    except OSError as e:
        skip("unsupported", f"no IPv6 loopback here ({e.strerror})")
    client = lab.start("client", "::1", listener.port, 5)
    try:
        peer = listener.accept(program=client)
    except GradeFailure:
        raise GradeFailure(expected=f"client connects to [::1]:{listener.port}",
                           happened=f"it {client.status()}: {client.stderr_text()[-200:] or 'nothing on stderr'}",
                           hint="HOST may be IPv6: create the socket with the family fill_sockaddr() "
                                "chose (server.ss_family), not always AF_INET") from None
    m = client.expect_line(r"connected from (\S+)",
                           expected="client prints `connected from [::1]:PORT`")
    expect(m.group(1) == f"[::1]:{peer.address[1]}",
           expected=f"`connected from [::1]:{peer.address[1]}`: an IPv6 address in brackets, then the port",
           happened=f"it printed `connected from {m.group(1)}`",
           hint="getsockname() into a struct sockaddr_storage, and format_addr() with the length it returned")
    data = peer.recv_all_until_eof(timeout=2)
    expect(data == b"abcde", expected="the 5 bytes `abcde`, then FIN", happened=f"got {data!r}")
    peer.send("received 5 bytes\n")
    peer.close()
    client.expect_line(r"server closed")
    client.expect_exit(0)


@contract("client", "a connection that fails while the client sends")
@points(1)
def test_client_reports_a_reset_while_sending(lab):
    """client whose server half-closes and resets while it writes exits 1 with a message, not killed by SIGPIPE"""
    listener = lab.listen()
    client = start_client(lab, listener.port, BIG, 65536)
    peer = listener.accept(program=client)
    expect_connected_line(client)
    blocked = wait_in_write(client)
    # FIN first, then RST: a reset of a connection the peer had half-closed makes the
    # client's writes fail with EPIPE -- and raise SIGPIPE, which kills by default.
    peer.shutdown_write()
    peer.reset()
    rc = client.wait_exit(3)
    if rc == -signal.SIGPIPE:
        raise GradeFailure(expected="client exits 1 with a message when the server resets the connection",
                           happened="it was killed by SIGPIPE: a write() after the reset raised it",
                           hint="ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before writing: then write() "
                                "fails with EPIPE, which fatal(errno, \"write\") reports")
    client.expect_fatal(r"\w.*: (Connection reset by peer \(104\)|Broken pipe \(32\))",
                        expected="stderr names the failed call: write: Connection reset by peer (104) "
                                 "or write: Broken pipe (32)",
                        hint="fatal(errno, \"write\") when write() returns -1",
                        exit_expected="client exits 1: the server reset the connection while it was sending",
                        exit_hint="write() returns -1 (ECONNRESET, then EPIPE) once the connection is "
                                  "reset: report it with fatal(errno, \"write\")")
    sent = [t for _, t, _ in client.stdout_lines if t.startswith("sent")]
    expect(not (sent and blocked), expected="no `sent ...` line: not all bytes were sent",
           happened=f"it printed `{sent[0] if sent else ''}`")


@contract("client", "HOST is an IPv4 or IPv6 address")
@points(1)
def test_client_rejects_invalid_arguments(lab):
    """client refuses a bad host, port, COUNT or CHUNK, and wrong arguments"""
    port = str(lab.port())
    for text in ("127.0.0.256", "localhost"):
        lab.expect_rejected("client", [text, port, "10"], r"invalid address '" + re.escape(text) + "'",
                            f"invalid address '{text}'",
                            hint="fill_sockaddr() returns -1 for text inet_pton does not accept")
    for text in ("65536",):
        lab.expect_rejected("client", ["127.0.0.1", text, "10"], rf"invalid port '{text}'",
                            f"invalid port '{text}'", hint="parse_port_or_die() checks it for you")
    for text in ("-1", "1073741825"):
        lab.expect_rejected("client", ["127.0.0.1", port, text], rf"invalid count '{re.escape(text)}'",
                            f"invalid count '{text}' (COUNT is 0 to 1073741824)",
                            hint="parse_size_or_die() refuses what is not a decimal number up to the limit")
    # COUNT 1073741824 (1 GiB) is allowed: only the CHUNK of 0 is wrong here
    lab.expect_rejected("client", ["127.0.0.1", port, "1073741824", "0"], r"invalid chunk '0'",
                        "invalid chunk '0' (CHUNK is 1 to 1073741824; COUNT 1073741824 is allowed)",
                        hint="a CHUNK of 0 would never send anything: refuse it")
    for args in ([], ["127.0.0.1", port], ["127.0.0.1", port, "10", "5", "extra"]):
        lab.expect_rejected("client", args, r"usage", "a `usage: ...` line (wrong number of arguments)",
                            hint="check argc before anything else")


# -- server -------------------------------------------------------------------

@contract("server", "never calls `accept()`", "with `listen(fd, BACKLOG)`")
@points(2)
def test_server_queue_fills_without_accept(lab):
    """server with backlog 2 that never accepts: 3 handshakes complete, ss shows 3 / 2"""
    port = lab.port()
    server = start_server(lab, port, 2, "no-accept")
    for i in range(3):
        lab.connect(port, timeout=1,
                    what=f"connection {i + 1} of 3 completes without accept()",
                    hint="with backlog 2 Linux completes up to 3 handshakes and queues them")
    deadline = time.monotonic() + 1.0
    while True:
        rows = lab.sockets("tcp", state="LISTEN", local_port=port)
        if (rows and rows[0].recv_q >= 3) or time.monotonic() > deadline:
            break
        time.sleep(0.01)  # the queue is filled by the kernel; no event to wait for
    expect(rows, expected=f"a socket listening on port {port}",
           happened="none", sockets=lab.sockets_text)
    if rows and rows[0].recv_q >= 3:
        # Three handshakes are queued.  Now make sure they stay there: a server that
        # accepts may simply not have got round to it yet.
        time.sleep(0.2)   # the absence of accept() is the behaviour under test
        rows = lab.sockets("tcp", state="LISTEN", local_port=port) or rows
    row = rows[0]
    expect(row.send_q == 2,
           expected="`ss -ltn` shows Send-Q 2 for the listening socket: that column is its backlog",
           happened=f"Send-Q is {row.send_q}",
           hint="pass BACKLOG from the command line to listen()", sockets=lab.sockets_text)
    expect(row.recv_q == 3,
           expected="`ss -ltn` shows Recv-Q 3: three finished handshakes wait in the accept queue",
           happened=f"Recv-Q is {row.recv_q}"
           + (" -- your server took them out of the queue with accept()" if row.recv_q < 3 else ""),
           hint="in no-accept mode the server must never call accept(); the kernel completes "
                "handshakes by itself", sockets=lab.sockets_text)
    server.expect_running("server keeps running (and not accepting)")


@contract("server", "for each client in turn")
@points(2)
def test_server_serves_clients_in_turn(lab):
    """server counts what each of three clients sends and answers each in turn"""
    port = lab.port()
    server = start_server(lab, port)
    for size in (1, 70_000, 0):
        peer = lab.connect(port)
        me = peer.local_port()
        if size:
            peer.send(payload(size))
        peer.shutdown_write()
        expect_answer(peer, size, hint="add up the return values of every read() until it returns 0")
        server.expect_line(rf"client 127\.0\.0\.1:{me} sent {size} bytes",
                           expected=f"server prints `client 127.0.0.1:{me} sent {size} bytes`",
                           hint="accept() gives you the client's address; format_addr() prints it")
    server.expect_running("server keeps listening after serving clients",
                          hint="accept() in a loop; close only the accepted socket")
    expect(lab.listening(server, local_port=port),
           expected=f"the listening socket on port {port} is still open",
           happened="it is gone", sockets=lab.sockets_text)


@contract("server", "for each client in turn")
@points(2)
def test_server_counts_until_eof(lab):
    """server keeps reading until the client's FIN, however the bytes are split"""
    port = lab.port()
    server = start_server(lab, port)
    peer = lab.connect(port)
    data = payload(3000)
    for i in range(0, 3000, 1000):
        try:
            peer.send(data[i:i + 1000], pieces=1000)
        except GradeFailure:
            early = False
        else:
            early = not peer.expect_silence(0.05)   # time between pieces is the behaviour
        expect(not early,
               expected="no answer and no close before the client's FIN: it sends 3 pieces of "
                        "1000 bytes, 50 ms apart, then half-closes",
               happened=f"after {i + 1000} bytes the server answered {peer.buffer!r}"
               + (" and closed" if peer.eof or peer.error else ""),
               hint="one read() returns what has arrived so far, not the whole message: "
                    "loop until read() returns 0")
    peer.shutdown_write()
    line = peer.recv_line(what="the answer `received 3000 bytes` once the client half-closed",
                          hint="read() returns 0 at the FIN: stop reading then and answer")
    expect(line == "received 3000 bytes", expected="the answer `received 3000 bytes`",
           happened=f"it sent `{line}`",
           hint="one read() returns what has arrived so far: add up every read until it returns 0")
    expect(peer.wait_close(timeout=1) == "eof", expected="the server closes after answering",
           happened="the connection stayed open")
    cpu = server.cpu_seconds()
    expect(cpu < 0.5, expected="the server sleeps in accept() now, using no CPU",
           happened=f"it has used {cpu:.2f} s of CPU",
           hint="after read() returned 0, stop reading: another read() just returns 0 again, forever")


@contract("server", "fails before its EOF")
@points(1)
def test_server_survives_a_client_reset(lab):
    """server carries on when a client aborts with RST"""
    port = lab.port()
    server = start_server(lab, port)
    rude = lab.connect(port)
    rude_port = rude.local_port()
    rude.send(payload(100))
    # The next client connects while the rude one still holds its port: after a reset
    # no TIME_WAIT keeps it, and a client on the same port would make the lines ambiguous.
    polite = lab.connect(port)
    polite_port = polite.local_port()
    rude.reset()
    hint = ("read() fails with ECONNRESET when the client aborts: that is the client's "
            "problem -- warn, close that socket, accept the next")
    try:
        polite.send("hello")
        polite.shutdown_write()
        line = polite.recv_line(what="the next client is still served: `received 5 bytes`")
    except GradeFailure:
        if server.wait_exit(0.5) is not None:   # it may be dying right now
            raise GradeFailure(expected="server keeps running after one client reset its connection",
                               happened=f"it {server.status()}", hint=hint) from None
        raise
    expect(line == "received 5 bytes", expected="`received 5 bytes`", happened=f"it sent `{line}`")
    server.expect_running("server keeps running after one client reset its connection")
    # The polite client's line comes after any line about the rude one: wait for it.
    server.expect_line(rf"client 127\.0\.0\.1:{polite_port} sent 5 bytes")
    counted = [t for _, t, _ in server.stdout_lines if f":{rude_port} sent" in t]
    expect(not counted,
           expected=f"no `client 127.0.0.1:{rude_port} sent ...` line for the client that reset: "
                    "its connection failed, so its count means nothing",
           happened=f"the server printed `{counted[0] if counted else ''}`",
           hint="read() returns 0 at EOF and -1 at a reset (ECONNRESET): only 0 ends the count; "
                "-1 means warn and go on to the next client, without a line or an answer")
    expect(server.wait_stderr(r"Connection reset by peer", 0.5),
           expected="a warning on stderr naming the error: read from IP:PORT: Connection reset by peer (104)",
           happened=f"stderr was: {server.stderr_text() or '(empty)'}",
           hint="warning(errno, \"read from %s\", who) names it")


@contract("server", "N counts every byte")
@points(1)
def test_server_counts_nul_bytes(lab):
    """server counts bytes, not characters: 4500 bytes with NULs among them are 4500"""
    port = lab.port()
    server = start_server(lab, port)
    peer = lab.connect(port)
    me = peer.local_port()
    peer.send(b"abc\0\0def\0" * 500)
    peer.shutdown_write()
    line = peer.recv_line(what="the answer `received 4500 bytes`")
    expect(line == "received 4500 bytes", expected="the answer `received 4500 bytes`: every byte counts",
           happened=f"it sent `{line}`",
           hint="add up what read() returns: the data is bytes, and strlen() stops at the first NUL")
    server.expect_line(rf"client 127\.0\.0\.1:{me} sent 4500 bytes")


@contract("server", "listens on `0.0.0.0:PORT`")
@points(1)
def test_server_on_port_0_prints_the_port_it_got(lab):
    """server started on port 0 (backlog 9) prints the port the kernel chose, and serves on it"""
    server = lab.start("server", 0, 9)
    m = server.expect_line(r"listening on 0\.0\.0\.0:(\d+) backlog 9",
                           expected="server prints `listening on 0.0.0.0:PORT backlog 9`")
    port = int(m.group(1))
    rows = lab.listening(server, pid=server.pid)
    real = sorted({r.local_port for r in rows})
    expect(port in real, expected=f"the port printed is the one it listens on ({', '.join(map(str, real)) or '?'})",
           happened=f"it printed {port}",
           hint="with PORT 0 the kernel chooses: print local_port(fd) (getsockname), not the argument")
    peer = lab.connect(port)
    peer.shutdown_write()
    expect(peer.recv_line() == "received 0 bytes", expected="the answer `received 0 bytes`",
           happened=f"it sent {peer.buffer!r}")


@contract("server", "SO_REUSEADDR")
@points(1)
def test_server_restarts_over_time_wait(lab):
    """server restarts at once on its port while its old connection waits in TIME_WAIT"""
    port = lab.port()
    server = start_server(lab, port, 0)      # backlog 0 still queues one connection
    peer = lab.connect(port)
    # Wait until the server has accepted (its accept queue is empty), then kill it: the
    # kernel closes its side first, which then waits in TIME_WAIT on the server's port.
    poll_until(lambda: any(r.recv_q == 0 for r in lab.sockets("tcp", state="LISTEN", local_port=port)), 2)
    server.kill()
    peer.wait_close(timeout=2)
    peer.close()
    waiting = poll_until(lambda: lab.sockets("tcp", state="TIME-WAIT", local_port=port), 2)
    if not waiting:
        skip("unsupported", "no TIME_WAIT socket on the server's port came about")
    again = lab.start("server", port, 2147483647)    # the largest int: listen() caps it
    try:
        again.expect_line(rf"listening on 0\.0\.0\.0:{port} backlog 2147483647",
                          expected=f"the restarted server listens on {port} at once, TIME_WAIT or not")
    except GradeFailure:
        again.wait_exit(0.5)
        hint = ("set SO_REUSEADDR on the listening socket before bind() (tcp_listen_or_die does): "
                "without it, bind() refuses a port that a connection in TIME_WAIT still uses"
                if "Address already in use" in again.stderr_text() else None)
        raise GradeFailure(expected=f"the restarted server listens on {port} while its old "
                                    "connection waits in TIME_WAIT",
                           happened=f"it {again.status()}: {again.stderr_text()[-200:]}", hint=hint) from None


@contract("server", "gone by the time its answer is sent")
@points(1)
def test_server_survives_a_client_gone_before_its_answer(lab):
    """server carries on when a client is gone before its answer (no death by SIGPIPE)"""
    port = lab.port()
    server = start_server(lab, port)
    # Freeze the server so that the client has sent, half-closed and reset before the
    # server even reads: it then sees EOF, and its answer meets a reset connection.
    server.signal(signal.SIGSTOP)
    server.wait_stopped()
    quitter = lab.connect(port)
    quitter.send(payload(100))
    quitter.shutdown_write()
    quitter.reset()
    server.signal(signal.SIGCONT)
    hint = ("writing to a connection the client has reset fails with EPIPE and raises SIGPIPE, "
            "which kills by default: ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)), warn about the "
            "failed write and accept the next client")
    try:
        polite = lab.connect(port, timeout=1)
        polite.send("hello")
        polite.shutdown_write()
        line = polite.recv_line(what="the next client is still served: `received 5 bytes`")
    except GradeFailure:
        if server.wait_exit(0.5) is not None:
            raise GradeFailure(expected="server keeps running after a client left before its answer",
                               happened=f"it {server.status()}", hint=hint) from None
        raise
    expect(line == "received 5 bytes", expected="`received 5 bytes`", happened=f"it sent `{line}`")
    server.expect_running("server keeps running after a client left before its answer", hint=hint)


@contract("server", "BACKLOG a decimal number")
@points(1)
def test_server_rejects_invalid_arguments(lab):
    """server refuses a bad port or backlog, and wrong arguments"""
    port = str(lab.port())
    lab.expect_rejected("server", ["65536"], r"invalid port '65536'", "invalid port '65536'",
                        hint="parse_port_or_die() checks it for you")
    for text in ("x", "-1"):
        lab.expect_rejected("server", [port, text], rf"invalid backlog '{re.escape(text)}'",
                            f"invalid backlog '{text}'", hint="parse_backlog_or_die() checks it for you")
    for args in ([], [port, "2", "noaccept"], [port, "2", "no-accept", "extra"]):
        lab.expect_rejected("server", args, r"usage", "a `usage: ...` line (wrong arguments)",
                            hint="check argc and the third argument before anything else")

