"""Grader for chapter 02 -- the TCP handshake, the accept queue, blocking writes, EOF.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.
"""
import select
import time

from grader import GradeFailure, expect, first_difference, needs_netns, points

BIG = 10_240_000            # far more than a send buffer plus a receive buffer hold
ALPHABET = bytes(range(ord("a"), ord("z") + 1))


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


def start_server(lab, port, *args):
    server = lab.start("server", port, *args)
    server.expect_line(rf"listening on 0\.0\.0\.0:{port} backlog \d+",
                       expected=f"server prints `listening on 0.0.0.0:{port} backlog B` once it listens",
                       hint="print the line after listen() succeeds, with the port from local_port()")
    return server


# -- client ---------------------------------------------------------------------

@points(1)
def test_client_reports_a_refused_connection(lab):
    """client exits 1 with `connect: Connection refused (111)` when nobody listens"""
    client = start_client(lab, lab.port(), 100)
    client.expect_exit(1, timeout=2,
                       expected="client exits 1 at once: nothing listens on that port, so the "
                                "kernel answers the SYN with RST and connect() fails",
                       hint="check connect()'s return value: -1 with errno ECONNREFUSED; "
                            "fatal(errno, \"connect\") reports it and exits 1")
    expect(client.wait_stderr(r"connect.*Connection refused \(111\)", 0.5),
           expected="stderr names the call and the reason: connect: Connection refused (111)",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}",
           hint="fatal(errno, \"connect\") prints strerror(errno) and the number for you")
    expect("sent" not in client.stdout_text() and "connected" not in client.stdout_text(),
           expected="nothing on stdout: no connection was made, so nothing was sent",
           happened=f"stdout was: {client.stdout_text()}",
           hint="stop at the failed connect(); everything after it assumes a connection")


@needs_netns
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


@points(3)
def test_client_sends_a_large_buffer_completely(lab):
    """client sends 10240000 bytes to a slow reader: every byte, in order, `sent` once"""
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
    data = receive_stream(peer, timeout=5, limit=BIG)
    want = payload(BIG)
    expect(len(data) == BIG,
           expected=f"exactly {BIG} bytes, then the client's FIN",
           happened=f"got {len(data)} bytes ({len(data) - BIG:+d})",
           hint="add write()'s return value to your progress: it may be less than you asked")
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


@points(1)
def test_client_writes_in_chunks_without_repeating(lab):
    """client with CHUNK 10000 sends 250000 bytes as consecutive pieces of the buffer"""
    count, chunk = 250_000, 10_000
    listener = lab.listen()
    client = start_client(lab, listener.port, count, chunk)
    peer = listener.accept(program=client)
    data = receive_stream(peer, timeout=3, limit=count * 30)
    problem = describe_content_error(data, payload(count))
    expect(problem is None, expected=f"{count} bytes, byte i = 'a' + i % 26, then FIN",
           happened=problem,
           hint="each write() continues where the previous one stopped: buf + sent, "
                f"at most min({chunk}, count - sent) bytes")
    peer.send(f"received {count} bytes\n")
    peer.close()
    client.expect_line(rf"sent {count} bytes")
    client.expect_exit(0)


@points(1)
def test_client_reads_until_the_server_closes(lab):
    """client prints the whole answer, then `server closed`, and exits 0"""
    listener = lab.listen()
    client = start_client(lab, listener.port, 100)
    peer = listener.accept(program=client)
    data = peer.recv_all_until_eof(timeout=2)
    expect(len(data) == 100, expected="100 bytes then FIN", happened=f"got {len(data)} bytes")
    try:
        peer.send("received 100 bytes\nthank ", pieces=3, delay=0.01)
        peer.send("you\n")
    except GradeFailure:
        raise GradeFailure(
            expected="after sending, the client keeps its read side open for the answer",
            happened="the grader's answer could not be delivered: the client's socket was "
                     "already closed (the kernel answered with RST)",
            hint="shutdown(fd, SHUT_WR) ends only your sending side (the server sees EOF); "
                 "close() ends both") from None
    peer.close()
    client.expect_line(r"received 100 bytes",
                       hint="keep reading after shutdown(SHUT_WR): the read side is still open")
    client.expect_line(r"thank you", hint="one read() may return part of a line: print it and read again")
    client.expect_line(r"server closed", hint="read() returns 0 when the server closes: print `server closed`")
    client.expect_exit(0, timeout=1, hint="after read() returned 0, close and exit 0 -- do not read again")


# -- server -------------------------------------------------------------------

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
        line = peer.recv_line(what=f"the answer `received {size} bytes`",
                              hint="after read() returns 0, write the answer to the same connection")
        expect(line == f"received {size} bytes", expected=f"the answer `received {size} bytes`",
               happened=f"it sent `{line}`",
               hint="add up the return values of every read() until it returns 0")
        expect(peer.wait_close(timeout=1) == "eof",
               expected="the server closes the connection after its answer",
               happened="the connection stayed open", hint="close() the accepted socket when done")
        server.expect_line(rf"client 127\.0\.0\.1:{me} sent {size} bytes",
                           expected=f"server prints `client 127.0.0.1:{me} sent {size} bytes`",
                           hint="accept() gives you the client's address; format_addr() prints it")
    server.expect_running("server keeps listening after serving clients",
                          hint="accept() in a loop; close only the accepted socket")
    expect(lab.listening(server, local_port=port),
           expected=f"the listening socket on port {port} is still open",
           happened="it is gone", sockets=lab.sockets_text)


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


@points(1)
def test_server_survives_a_client_reset(lab):
    """server carries on when a client aborts with RST"""
    port = lab.port()
    server = start_server(lab, port)
    rude = lab.connect(port)
    rude.send(payload(100))
    rude.reset()
    hint = ("read() fails with ECONNRESET when the client aborts: that is the client's "
            "problem -- warn, close that socket, accept the next")
    try:
        polite = lab.connect(port)
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
