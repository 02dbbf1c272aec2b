"""Grader for chapter 03 -- UDP and connected UDP.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  The grader plays the other side with its own UDP sockets:
a client when it grades the servers, a server when it grades the client.
"""
import errno
import re
import select
import signal
import socket
import time

from grader import GradeFailure, contract, expect, poll_until, points

HOST = "127.0.0.1"
REFUSED_RX = r"\w.*: Connection refused \(111\)"


# -- helpers ------------------------------------------------------------------

def udp_port(lab):
    return lab.port(socket.SOCK_DGRAM)


def port_of(peer):
    return peer.sock.getsockname()[1]


def start_server(lab, name, port):
    """Start a server and wait for `bound to 0.0.0.0:PORT`."""
    server = lab.start(name, port)
    m = server.expect_line(r"bound to (\S+):(\d+)",
                           expected=f"{name} prints `bound to 0.0.0.0:{port}` once its socket is bound",
                           hint="print the line right after bind() succeeds")
    expect((m.group(1), int(m.group(2))) == ("0.0.0.0", port),
           expected=f"`bound to 0.0.0.0:{port}`",
           happened=f"it printed `{m.group(0)}`",
           hint="bind INADDR_ANY and the PORT argument (htons); print the port getsockname() reports")
    return server


def describe_reply(data, payload):
    """A hint naming the usual mistake when a reply is not exactly b'Hi, ' + payload."""
    want = b"Hi, " + payload
    if data == want + b"\0":
        return "the reply carries a NUL byte: send the length of the text, not strlen()+1 or sizeof"
    if data.rstrip(b"\r\n") == want:
        return "no newline: a datagram is a message on its own, it needs no terminator"
    if want.startswith(data) and len(data) >= 4:
        return (f"the reply stops after {len(data) - 4} of the {len(payload)} bytes: receive into a "
                "buffer of 65507 bytes (the largest UDP payload) -- recvfrom() silently drops the "
                "rest of a datagram that does not fit")
    if data.startswith(want):
        return ("the reply has leftovers of an earlier, longer datagram: recvfrom() does not "
                "NUL-terminate, so use the length it returns")
    if data == payload:
        return "echo with the \"Hi, \" prefix in front"
    return "reply with the 4 bytes \"Hi, \" followed by exactly the bytes received"


def expect_reply(peer, payload, program, who="the server", hint=None):
    """Receive one datagram on peer and check it is exactly b'Hi, ' + payload."""
    want = b"Hi, " + payload
    shown = repr(want) if len(want) < 80 else f"`Hi, ` + the {len(payload)} bytes"
    data, _ = peer.recvfrom(program=program, timeout=2,
                            what=f"{who} answers {payload!r} with the datagram {shown}" if len(payload) < 80
                            else f"{who} answers the {len(payload)}-byte datagram with {shown}",
                            hint=hint or "sendto() the reply to the address recvfrom() filled in")
    expect(data == want, expected=f"the reply datagram {shown}",
           happened=f"got {data!r}" if len(data) < 80 else f"got {len(data)} bytes",
           hint=describe_reply(data, payload), wire=peer.wire.render())
    return data


def outcome(peer, timeout):
    """What a *connected* grader socket gets next: ('data', bytes), ('refused', None) or
    ('nothing', None)."""
    r, _, _ = select.select([peer.sock], [], [], timeout)
    if not r:
        return "nothing", None
    try:
        data = peer.sock.recv(65536)
    except OSError as e:
        peer.wire.mark("←", f"error {errno.errorcode.get(e.errno, e.errno)}")
        return ("refused" if e.errno == errno.ECONNREFUSED else f"error {e.strerror}"), None
    peer.wire.mark("←", f"datagram {data!r}")
    return "data", data


def start_client(lab, *args):
    return lab.start("udpclient", *map(str, args))


# -- udpserver ----------------------------------------------------------------

@contract("udpserver", "for each datagram")
@points(2)
def test_server_answers_a_datagram_with_hi(lab):
    """udpserver answers the datagram "g1" with exactly "Hi, g1" and prints it"""
    port = udp_port(lab)
    server = start_server(lab, "udpserver", port)
    peer = lab.udp()
    peer.sendto(b"g1", (HOST, port))
    expect_reply(peer, b"g1", server)
    server.expect_line(r"received 2 bytes: g1",
                       expected="udpserver prints `received 2 bytes: g1`",
                       hint="print the count recvfrom() returned and that many bytes")


@contract("udpserver", "for each datagram")
@points(2)
def test_server_keeps_message_boundaries(lab):
    """udpserver answers three back-to-back datagrams with three separate replies"""
    port = udp_port(lab)
    server = start_server(lab, "udpserver", port)
    peer = lab.udp()
    payloads = [b"a longer first datagram", b"g2", b"third"]
    for p in payloads:          # all three are queued before the server reads one
        peer.sendto(p, (HOST, port))
    for p in payloads:
        expect_reply(peer, p, server)
    for p in payloads:
        server.expect_line(rf"received {len(p)} bytes: {p.decode()}",
                           expected=f"udpserver prints `received {len(p)} bytes: {p.decode()}`",
                           hint="one recvfrom() returns exactly one datagram: print what it returned")


@contract("udpserver", "for each datagram")
@points(1)
def test_server_treats_an_empty_datagram_as_a_message(lab):
    """udpserver answers an empty datagram with "Hi, " and keeps running"""
    port = udp_port(lab)
    server = start_server(lab, "udpserver", port)
    peer = lab.udp()
    peer.sendto(b"", (HOST, port))
    expect_reply(peer, b"", server)
    server.expect_line(r"received 0 bytes:",
                       hint="recvfrom() returning 0 means a 0-byte datagram arrived, not EOF: "
                            "UDP has no connection to end")
    peer.sendto(b"g2", (HOST, port))
    expect_reply(peer, b"g2", server)


@contract("udpserver", "for each datagram")
@points(1)
def test_server_replies_to_each_sender(lab):
    """udpserver sends each reply to the peer that sent the datagram"""
    port = udp_port(lab)
    server = start_server(lab, "udpserver", port)
    a, b = lab.udp(), lab.udp()
    for peer, payload in ((a, b"from-a"), (b, b"from-b"), (a, b"again-a")):
        peer.sendto(payload, (HOST, port))
        data, _ = peer.recvfrom(program=server, timeout=2,
                                what=f"the reply to {payload!r} reaches the socket that sent it "
                                     f"(port {port_of(peer)})",
                                hint="every recvfrom() tells you who sent that datagram: reply to "
                                     "that address, and reset the length argument before each call")
        expect(data == b"Hi, " + payload, expected=f"{b'Hi, ' + payload!r}", happened=f"got {data!r}",
               hint=describe_reply(data, payload))


def skip_cut_reply(peer, payload, wait=0.5):
    """The Contract allows a reply too big for a datagram to be cut to 65507 bytes: if
    one arrives (before the next reply), take it."""
    r, _, _ = select.select([peer.sock], [], [], wait)
    if r:
        data = peer.sock.recv(65536, socket.MSG_PEEK)
        if data == (b"Hi, " + payload)[:65507]:
            peer.sock.recv(65536)
            peer.wire.mark("←", "the reply, cut to 65507 bytes")


def expect_received_line(server, payload, who="udpserver"):
    """The line `received N bytes: <payload>`, the payload's bytes as they are."""
    want = f"received {len(payload)} bytes: " + payload.decode("latin-1")
    m = server.expect_line(r"received \d+ bytes:.*", expected=f"{who} prints `received {len(payload)} bytes: ...`")
    got = m.group(0)
    if got in (want.strip(), want.split("\0")[0].strip()):     # printing may stop at a NUL
        return
    shown = (lambda t: repr(t) if len(t) < 100 else repr(t[:60]) + f"... ({len(t)} characters)")
    expect(False, expected=f"{who} prints {shown(want)}", happened=f"it printed {shown(got)}",
           hint="print the count recvfrom() returned and exactly that many bytes (fwrite(buf, 1, n, stdout))")


@contract("udpserver", "for each datagram")
@points(1)
def test_server_payload_is_bytes(lab):
    """udpserver prints and answers every byte: NUL bytes, 65503 bytes; a too big reply is skipped"""
    port = udp_port(lab)
    server = start_server(lab, "udpserver", port)
    peer = lab.udp()
    peer.sendto(b"a\0b", (HOST, port))
    expect_reply(peer, b"a\0b", server)
    expect_received_line(server, b"a\0b")
    largest = (bytes(range(33, 127)) * 700)[:65503]     # "Hi, " + 65503 bytes = 65507, the most
    peer.sendto(largest, (HOST, port))
    expect_reply(peer, largest, server)
    expect_received_line(server, largest)
    # 65507 bytes arrive, but "Hi, " + 65507 bytes do not fit in one datagram
    peer.sendto(largest + b"yyyy", (HOST, port))
    server.expect_line(r"received 65507 bytes:.*", expected="udpserver prints `received 65507 bytes: ...`",
                       hint="receive into a buffer of 65507 bytes, the largest UDP payload")
    peer.sendto(b"g2", (HOST, port))
    skip_cut_reply(peer, largest + b"yyyy")
    expect_reply(peer, b"g2", server,
                 hint="a reply that does not fit in a datagram fails (EMSGSIZE): warn and go on")


@contract("udpserver", "on SIGINT")
@points(2)
def test_server_counts_datagrams_on_sigint(lab):
    """udpserver prints `received 3 datagrams` on Ctrl-C and exits 0"""
    port = udp_port(lab)
    server = start_server(lab, "udpserver", port)
    a, b = lab.udp(), lab.udp()
    for peer, payload in ((a, b"g1"), (b, b"g2"), (a, b"g3")):
        peer.sendto(payload, (HOST, port))
        expect_reply(peer, payload, server)
    server.wait_blocked()   # back in recvfrom(), where the signal must wake it
    server.signal(signal.SIGINT)
    rc = server.wait_exit(1.5)
    if rc is None:
        raise GradeFailure(
            expected="after SIGINT, udpserver prints `received 3 datagrams` and exits 0",
            happened="it is still running 1.5 s after SIGINT",
            hint="glibc's signal() sets SA_RESTART, so recvfrom() silently restarts and your loop "
                 "never sees the flag: install the handler with sigaction() and sa_flags = 0, "
                 "then treat EINTR from recvfrom() as \"check the flag\"")
    expect(rc != -signal.SIGINT,
           expected="udpserver catches SIGINT, prints `received 3 datagrams` and exits 0",
           happened="it was killed by SIGINT: no handler was installed",
           hint="sigaction(SIGINT, ...) with a handler that sets a volatile sig_atomic_t flag")
    lines = [t.strip() for _, t, _ in server.stdout_lines]
    counts = [ln for ln in lines if ln.endswith(" datagrams")]
    expect("received 3 datagrams" in lines,
           expected="udpserver prints `received 3 datagrams` (the grader sent 3)",
           happened=f"it printed {counts[-1]!r}" if counts else "no `received N datagrams` line",
           hint="count every datagram recvfrom() returns; print the count after the loop ends")
    server.expect_exit(0, hint="return 0 from main after printing the count")


@contract("udpserver", "UDP socket bound to")
@points(1)
def test_server_reports_a_port_in_use(lab):
    """udpserver reports `bind: Address already in use (98)` when the port is taken"""
    taken = lab.udp("0.0.0.0")
    server = lab.start("udpserver", port_of(taken))
    server.expect_fatal(r"bind.*Address already in use \(98\)",
                        expected="stderr says: bind: Address already in use (98)",
                        exit_hint="check bind()'s return value: fatal(errno, \"bind\")")


# -- udpclient: unconnected ---------------------------------------------------

@contract("udpclient", "for each line on stdin", "after each datagram, waits", "at the end of stdin: exits 0")
@points(2)
def test_client_sends_each_line_as_one_datagram(lab):
    """udpclient sends each line as one datagram without its newline and prints the reply's bytes"""
    server = lab.udp()
    client = start_client(lab, HOST, port_of(server), 900)
    steps = ((b"g1\n", b"g1", b"Hi, g1", 0.0), (b"two words\n", b"two words", b"Hi, two\0words", 0.2),
             (b"cr\r\n", b"cr\r", b"Hi, cr\r", 0.0), (b"\n", b"", b"Hi, ", 0.0),
             (b"silence\n", b"silence", b"", 0.0),       # an empty reply: an empty line
             (b"big\n", b"big", b"Hi, " + b"b" * 65503, 0.0),   # the largest datagram
             (b"no newline", b"no newline", b"Hi, no newline", 0.0))
    for i, (text, line, reply, delay) in enumerate(steps):
        client.write_stdin(text)
        if i == len(steps) - 1:
            client.close_stdin()            # the last line ends with stdin, not with \n
        data, addr = server.recvfrom(program=client, what=f"the datagram {line!r} from udpclient",
                                     hint="a last line without \\n at the end of stdin is a line too: send it"
                                     if i == len(steps) - 1 else "sendto() each line to HOST:PORT from the arguments")
        if data == line[:-1] and i == len(steps) - 1:
            hint = "only remove the last byte if it is a \\n: the last line may end without one"
        elif data.rstrip(b"\0\n") == line:
            hint = "strip the trailing '\\n' and send exactly the remaining bytes: no NUL, no newline"
        elif data == line.rstrip(b"\r"):
            hint = "send every byte of the line but its \\n: a \\r before it is part of the line"
        else:
            hint = "one line of stdin = one datagram"
        expect(data == line, expected=f"the datagram {line!r} (the line without its newline)",
               happened=f"got {data!r}", hint=hint)
        if delay:
            time.sleep(delay)    # a reply that takes a while must still be waited for
        server.sendto(reply, addr)
        full, cut = reply.decode().strip(), reply.split(b"\0")[0].decode().strip()
        client.expect_line(f"(?:{re.escape(full)}|{re.escape(cut)})",
                           expected=f"udpclient prints the reply {reply.decode()!r} on its own line",
                           hint="recvfrom() the reply and print exactly the n bytes it returned and a "
                                "newline (it does not NUL-terminate: %s would print leftovers of a longer "
                                "earlier reply); wait up to TIMEOUT_MS milliseconds")
    client.expect_exit(0, hint="at the end of stdin, exit 0")


@contract("udpclient", "after each datagram, waits")
@points(2)
def test_client_times_out_without_a_server(lab):
    """udpclient with no server prints `no reply within 300 ms` per line instead of hanging"""
    client = start_client(lab, HOST, lab.closed_port(socket.SOCK_DGRAM), 300)
    client.write_stdin("g1\ng2\n")
    client.close_stdin()
    hint = ("recvfrom() waits forever unless you bound it: set SO_RCVTIMEO (it then fails with "
            "EAGAIN) or poll() the socket with the timeout first. A struct timeval of {0, 0} means "
            "no timeout at all: 300 ms is tv_sec 0, tv_usec 300000")
    try:
        client.expect_line(r"no reply within 300 ms", hint=hint,
                           expected="udpclient prints `no reply within 300 ms` about 0.3 s after sending g1")
    except GradeFailure:
        if "refused" not in client.stderr_text().lower():
            raise
        raise GradeFailure(expected="udpclient without -c prints `no reply within 300 ms`: nothing listens, "
                                    "and an unconnected socket is never told so",
                           happened=f"it {client.status()}: {client.stderr_text()[-200:]}",
                           hint="without -c, do not connect() the socket: a connected UDP socket gets the "
                                "ICMP port unreachable as ECONNREFUSED; an unconnected one only waits") from None
    client.expect_line(r"no reply within 300 ms", hint=hint,
                       expected="a second `no reply within 300 ms` for g2: a timeout is not the end")
    client.expect_exit(0, hint="after a timeout go on with the next line; exit 0 at the end of stdin")
    times = [t for t, text, _ in client.stdout_lines if "no reply" in text]
    most = lab.scaled(0.3) + 0.3
    # times count from the program's start, and a line is seen at or after its printing:
    # a correct client is never early by these bounds, however busy the machine
    expect(times[0] >= 0.29 and times[1] >= 0.58 and times[1] - times[0] <= most,
           expected=f"each timeout line comes after waiting 300 ms (the second at most {most:.2f} s after the first)",
           happened=f"they came {times[0]:.2f} s and {times[1]:.2f} s after the start",
           hint="TIMEOUT_MS is in milliseconds: tv_sec = ms / 1000, tv_usec = (ms % 1000) * 1000")
    expect("refused" not in client.stderr_text().lower() and "refused" not in client.stdout_text().lower(),
           expected="no `Connection refused`: an unconnected socket is never told about the ICMP error",
           happened="the program reported one",
           hint="without -c, do not connect() the socket")


@contract("udpclient", "after each datagram, waits")
@points(1)
def test_client_waits_a_timeout_over_a_second(lab):
    """udpclient with TIMEOUT_MS 1200 waits 1.2 s for a reply, no less and not forever"""
    server = lab.udp()
    client = start_client(lab, HOST, port_of(server), 1200)
    # Timed from before the line is written: the client cannot send before it reads it,
    # so a correct wait never looks shorter than 1.2 s, however busy the machine.
    start = time.monotonic()
    client.write_stdin("g1\n")
    client.close_stdin()
    most = lab.scaled(1.2) + 0.5
    edom = ("SO_RCVTIMEO takes a struct timeval whose tv_usec must be below 1000000: setsockopt() "
            "fails with EDOM for 1200 ms put in tv_usec alone. Use tv_sec = ms / 1000, tv_usec = "
            "(ms % 1000) * 1000, and check setsockopt's return value")
    try:
        server.recvfrom(program=client, what="the datagram b'g1' from udpclient")
    except GradeFailure:
        if "out of domain" not in client.stderr_text():
            raise
        raise GradeFailure(expected="udpclient with TIMEOUT_MS 1200 sends the line g1",
                           happened=f"it {client.status()}: {client.stderr_text()[-200:]}", hint=edom) from None
    try:
        client.expect_line(r"no reply within 1200 ms", timeout=most + 1.0,
                           expected="udpclient prints `no reply within 1200 ms` about 1.2 s after sending")
    except GradeFailure as e:
        if client.running() or "out of domain" in client.stderr_text():
            raise GradeFailure(expected=f"udpclient prints `no reply within 1200 ms` within {most:.1f} s",
                               happened=f"it {client.status()}" + ("" if not client.running()
                                                                   else f" {most + 1.0:.1f} s later, still waiting"),
                               hint=edom) from None
        raise e
    took = time.monotonic() - start
    expect(1.19 <= took <= most,
           expected=f"the timeout line comes 1.2 s after the line was sent (at most {most:.2f} s)",
           happened=f"it came after {took:.2f} s",
           hint="TIMEOUT_MS is in milliseconds: tv_sec = ms / 1000 and tv_usec = (ms % 1000) * 1000 "
                "-- whole seconds alone lose the 200 ms" if took < 1.19 else edom)
    client.expect_exit(0)


@contract("udpclient", "HOST an IPv4 or IPv6 address")
@points(1)
def test_client_rejects_invalid_arguments(lab):
    """udpclient refuses a bad host, port or timeout, and wrong arguments"""
    port = str(udp_port(lab))
    for text in ("127.0.0.256", "localhost"):
        lab.expect_rejected("udpclient", [text, port], r"invalid address '" + re.escape(text) + "'",
                            f"invalid address '{text}'", hint="check what fill_sockaddr() (inet_pton) returns")
    lab.expect_rejected("udpclient", ["127.0.0.1", "65536"], r"invalid port '65536'", "invalid port '65536'",
                        hint="parse_port_or_die() checks it for you")
    for text in ("0", "-5", "1s"):
        lab.expect_rejected("udpclient", ["127.0.0.1", port, text], rf"invalid timeout '{re.escape(text)}'",
                            f"invalid timeout '{text}' (TIMEOUT_MS is a number of at least 1)",
                            hint="strtol() with an end pointer; refuse anything but a whole number >= 1")
    for args in ([], ["-c", "127.0.0.1"], ["127.0.0.1", port, "100", "extra"]):
        lab.expect_rejected("udpclient", args, r"usage", "a `usage: ...` line (wrong number of arguments)",
                            hint="check argc (after -c) before anything else")


@contract("udpclient", "without `-c`")
@points(2)
def test_client_carries_on_across_a_server_restart(lab):
    """udpclient keeps working when the server goes away and comes back"""
    first = lab.udp()
    port = port_of(first)
    client = start_client(lab, HOST, port, 300)
    client.write_stdin("g1\n")
    data, addr = first.recvfrom(program=client, what="the datagram b'g1' from udpclient")
    first.sendto(b"Hi, " + data, addr)
    client.expect_line(r"Hi, g1", expected="udpclient prints `Hi, g1`")

    first.close()                       # the server is gone: nothing listens on the port
    client.write_stdin("g2\n")
    client.expect_line(r"no reply within 300 ms",
                       expected="with the server gone, udpclient prints `no reply within 300 ms` "
                                "and keeps running",
                       hint="without -c the socket is not connected: no error ever comes back, "
                            "only silence; treat the timeout as \"no reply\" and go on")

    again = lab.udp(port=port)          # the server is back, on the same port
    client.write_stdin("g3\n")
    data, addr2 = again.recvfrom(program=client, what="b'g3' reaches the restarted server",
                                 hint="keep using the same socket and the same server address")
    expect(addr2 == addr, expected=f"g3 comes from the same client socket as g1 (port {addr[1]})",
           happened=f"it came from port {addr2[1]}",
           hint="UDP has no connection to rebuild: keep the socket you have")
    again.sendto(b"Hi, " + data, addr2)
    client.expect_line(r"Hi, g3", expected="udpclient prints `Hi, g3` from the restarted server")
    client.close_stdin()
    client.expect_exit(0)


# -- udpclient -c: connected --------------------------------------------------

@contract("udpclient", "with `-c`")
@points(2)
def test_connected_client_reports_connection_refused(lab):
    """udpclient -c with no server reports `Connection refused (111)` and exits 1 at once"""
    client = start_client(lab, "-c", HOST, lab.closed_port(socket.SOCK_DGRAM), 5000)
    client.write_stdin("g1\n")
    client.close_stdin()
    no_timeout = ("a connected UDP socket learns from the ICMP \"port unreachable\" that nothing "
                  "listens: recv() fails with ECONNREFUSED at once.  connect() the socket in -c mode "
                  "and report the error with fatal(errno, \"recv\")")
    client.expect_exit(1, timeout=2.0, hint=no_timeout,
                       expected="udpclient -c exits 1 well before its 5 s timeout")
    expect(client.wait_stderr(REFUSED_RX, 0.5),
           expected="stderr says `recv: Connection refused (111)` (or `send: ...`)",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}",
           hint="name the call that failed: fatal(errno, \"recv\")")


@contract("udpclient", "with `-c`")
@points(1)
def test_connected_client_hears_only_its_server(lab):
    """udpclient -c never prints a datagram from a peer other than HOST:PORT"""
    server, stranger = lab.udp(), lab.udp()
    client = start_client(lab, "-c", HOST, port_of(server))       # the default timeout, 3000 ms
    client.write_stdin("g1\n")
    data, addr = server.recvfrom(program=client, what="the datagram b'g1' from udpclient -c")
    stranger.sendto(b"Hi, spoofed", addr)   # arrives first, from the wrong port
    server.sendto(b"Hi, g1", addr)
    m = client.expect_line(r".*", expected="udpclient -c prints the server's reply")
    expect(m.group(0) == "Hi, g1",
           expected=f"`Hi, g1` from the server (port {port_of(server)}); the datagram from "
                    f"port {port_of(stranger)} is dropped by the kernel",
           happened=f"it printed `{m.group(0)}`",
           hint="a connected UDP socket only receives from its peer: connect() it in -c mode")
    client.close_stdin()
    client.expect_exit(0)


@contract("udpclient", "with `-c`")
@points(1)
def test_connected_client_notices_its_server_is_gone(lab):
    """udpclient -c exits 1 with `Connection refused` once its server has gone"""
    server = lab.udp()
    client = start_client(lab, "-c", HOST, port_of(server), 5000)
    client.write_stdin("g1\n")
    data, addr = server.recvfrom(program=client, what="the datagram b'g1' from udpclient -c")
    server.sendto(b"Hi, " + b"g" * 65503, addr)          # the largest datagram
    client.expect_line(r"Hi, g{65503}", expected="udpclient -c prints the whole 65507-byte reply",
                       hint="receive into a buffer of 65507 bytes, the largest UDP payload")
    server.close()
    client.write_stdin("g2\n")
    client.expect_exit(1, timeout=2.0, expected="udpclient -c exits 1 soon after the server has gone",
                       hint="the next send/recv on the connected socket fails with ECONNREFUSED")
    expect(client.wait_stderr(REFUSED_RX, 0.5),
           expected="stderr says `recv: Connection refused (111)` (or `send: ...`)",
           happened=f"stderr was: {client.stderr_text() or '(empty)'}")


# -- connserver ----------------------------------------------------------------

def first_peer(lab, server, port):
    """A grader socket that becomes connserver's peer; returns it."""
    a = lab.udp()
    a.sendto(b"g1", (HOST, port))
    expect_reply(a, b"g1", server, who="connserver")
    server.expect_line(r"received 2 bytes: g1", expected="connserver prints `received 2 bytes: g1`")
    server.expect_line(rf"connected to 127\.0\.0\.1:{port_of(a)}",
                       expected=f"connserver prints `connected to 127.0.0.1:{port_of(a)}` (its first peer)",
                       hint="connect() the socket to the address recvfrom() filled in, then print it")
    return a


@contract("connserver", "waits for a datagram from anyone", "from then on hears only")
@points(2)
def test_connserver_connects_to_its_first_peer(lab):
    """connserver connects its socket to the first peer and keeps answering it"""
    port = udp_port(lab)
    server = start_server(lab, "connserver", port)
    a = first_peer(lab, server, port)
    states = lab.sockets("udp", local_port=port)
    expect(states and states[0].state == "ESTAB" and states[0].peer_port == port_of(a),
           expected=f"`ss -uan` shows the server's socket ESTAB with peer 127.0.0.1:{port_of(a)}",
           happened=f"it shows: {states[0] if states else 'no socket on that port'}",
           hint="connect() on a UDP socket records the peer; ss shows it as ESTAB",
           sockets=lambda: lab.sockets_text("udp"))
    a.sendto(b"g2", (HOST, port))
    expect_reply(a, b"g2", server, who="connserver")
    server.expect_line(r"received 2 bytes: g2")
    a.sendto(b"x\0y", (HOST, port))
    expect_reply(a, b"x\0y", server, who="connserver")
    a.sendto(b"", (HOST, port))
    expect_reply(a, b"", server, who="connserver",
                 hint="recv() returning 0 is an empty datagram from the peer, not a sign it left: "
                      "UDP has no connection to close -- print it and answer `Hi, `")
    server.expect_line(r"received 0 bytes:")


@contract("connserver", "from then on hears only")
@points(2)
def test_connserver_ignores_a_second_peer(lab):
    """connserver does not hear a second peer, which gets `Connection refused`"""
    port = udp_port(lab)
    server = start_server(lab, "connserver", port)
    a = first_peer(lab, server, port)
    b = lab.udp()
    b.sock.connect((HOST, port))
    b.send(b"from-b")
    what, data = outcome(b, 1.0)
    expect(what == "refused",
           expected="the second peer gets ECONNREFUSED: the server's socket is connected to the first "
                    "peer, so the kernel finds no socket for this datagram and answers ICMP port "
                    "unreachable",
           happened={"data": f"the second peer got a reply: {data!r}",
                     "nothing": "the second peer got neither a reply nor an error within 1 s"}.get(what, what),
           hint="after the first datagram, connect() the server socket to its sender; from then on "
                "use send()/recv()", wire=b.wire.render())
    a.sendto(b"g3", (HOST, port))
    expect_reply(a, b"g3", server, who="connserver")
    server.expect_line(r"received 2 bytes: g3")
    expect("from-b" not in server.stdout_text(),
           expected="connserver never prints the second peer's datagram",
           happened="it printed `from-b`")


@contract("connserver", "the 7-byte datagram `goodbye`")
@points(1)
def test_connserver_exits_on_goodbye(lab):
    """connserver answers `goodbye\\n` like any datagram, and exits 0 on `goodbye` without answering"""
    port = udp_port(lab)
    server = start_server(lab, "connserver", port)
    a = first_peer(lab, server, port)
    a.sendto(b"goodbye\n", (HOST, port))         # what `nc -u` sends: 8 bytes
    try:
        expect_reply(a, b"goodbye\n", server, who="connserver")
    except GradeFailure:
        if server.wait_exit(0.5) is None:
            raise
        raise GradeFailure(expected="connserver answers the 8 bytes `goodbye\\n` and keeps running: only "
                                    "the 7-byte datagram `goodbye` ends it",
                           happened=f"it {server.status()}",
                           hint="compare the length too: n == 7 && memcmp(buf, \"goodbye\", 7) == 0") from None
    a.sendto(b"goodbye", (HOST, port))
    server.expect_line(r"received 7 bytes: goodbye")
    server.expect_exit(0, timeout=1.0, hint="compare the 7 bytes received with \"goodbye\" "
                                            "(the datagram has no NUL: use the length recv() returned)")
    r, _, _ = select.select([a.sock], [], [], 0.05)   # it has exited: any reply is here by now
    expect(not r, expected="`goodbye` is not answered",
           happened=f"the peer got {a.sock.recv(65536)!r}" if r else "",
           hint="check for goodbye before replying")


@contract("connserver", "fails with `ECONNREFUSED`")
@points(2)
def test_connserver_serves_a_new_peer_after_the_first_is_gone(lab):
    """connserver disconnects (AF_UNSPEC) when its peer is gone and serves the next one"""
    port = udp_port(lab)
    server = start_server(lab, "connserver", port)
    a = lab.udp()
    a_port = port_of(a)
    # Freeze the server so that its first peer is gone before the reply leaves: the
    # reply then bounces (ICMP port unreachable) and recv() reports ECONNREFUSED.
    server.signal(signal.SIGSTOP)
    a.sendto(b"g1", (HOST, port))
    a.close()
    server.signal(signal.SIGCONT)
    server.expect_line(rf"connected to 127\.0\.0\.1:{a_port}",
                       expected=f"connserver prints `connected to 127.0.0.1:{a_port}`")
    server.expect_line(rf"disconnected from 127\.0\.0\.1:{a_port}",
                       expected=f"connserver prints `disconnected from 127.0.0.1:{a_port}` when its peer's "
                                "port turns out to be closed",
                       hint="send() or recv() on a connected UDP socket fails with ECONNREFUSED when the "
                            "peer's port is closed: then connect() with sa_family = AF_UNSPEC to "
                            "dissolve the association, and wait for any peer again")
    states = lab.sockets("udp", local_port=port)
    expect(states and states[0].state == "UNCONN",
           expected="once it printed `disconnected from ...`, `ss -uan` shows the server's socket "
                    "UNCONN: unconnected, for peers from any address",
           happened=f"it shows: {states[0] if states else 'no socket on that port'}",
           hint="connect() to an address whose sa_family is AF_UNSPEC dissolves the association; "
                "connecting to AF_INET 0.0.0.0:0 instead connects the socket to 127.0.0.1",
           sockets=lambda: lab.sockets_text("udp"))
    b = lab.udp("127.0.0.2")                # a new peer from another address, an empty datagram first
    b.sendto(b"", (HOST, port))
    expect_reply(b, b"", server, who="connserver")
    server.expect_line(rf"connected to 127\.0\.0\.2:{port_of(b)}",
                       expected=f"connserver prints `connected to 127.0.0.2:{port_of(b)}` (the new peer)")
    b.sendto(b"g3", (HOST, port))
    expect_reply(b, b"g3", server, who="connserver")
    server.expect_line(r"received 2 bytes: g3")
    gone = [t for _, t, _ in server.stdout_lines if t.startswith("disconnected from 127.0.0.2")]
    expect(not gone, expected="the new peer stays connected: its datagrams are answered, nothing failed",
           happened=f"connserver printed `{gone[0] if gone else ''}`",
           hint="disconnect only when send() or recv() really failed with ECONNREFUSED (check the "
                "return value before errno: errno keeps its old value after a call that succeeded)")



@contract("connserver", "from then on hears only")
@points(1)
def test_connserver_carries_on_past_a_reply_too_big(lab):
    """connserver survives a 65507-byte datagram, whose reply cannot fit in a datagram"""
    port = udp_port(lab)
    server = start_server(lab, "connserver", port)
    big = bytes(range(33, 127)) * 696 + b"y" * 83       # 65507 bytes: the largest UDP payload
    a = lab.udp()
    for first in (True, False):     # as the first datagram, then on the connected socket
        a.sendto(big, (HOST, port))
        server.expect_line(r"received 65507 bytes:.*", expected="connserver prints `received 65507 bytes: ...`",
                           hint="receive into a buffer of 65507 bytes, the largest UDP payload")
        if first:
            server.expect_line(rf"connected to 127\.0\.0\.1:{port_of(a)}")
    a.sendto(b"g3", (HOST, port))
    for _ in range(2):              # the two replies, if cut rather than skipped
        skip_cut_reply(a, big)
    expect_reply(a, b"g3", server, who="connserver",
                 hint="\"Hi, \" + 65507 bytes do not fit in a datagram: send() fails with EMSGSIZE -- "
                      "warn and carry on; only ECONNREFUSED means the peer is gone")


# -- both servers -------------------------------------------------------------

@contract("udpserver", "PORT a decimal number")
@contract("connserver", "arguments, the socket")
@points(1)
def test_servers_reject_invalid_arguments(lab):
    """udpserver and connserver refuse a bad port and wrong arguments"""
    for name in ("udpserver", "connserver"):
        for text in ("65536", "x"):
            lab.expect_rejected(name, [text], rf"invalid port '{text}'", f"invalid port '{text}'",
                                hint="parse_port_or_die() checks it for you")
        for args in ([], [str(udp_port(lab)), "extra"]):
            lab.expect_rejected(name, args, r"usage", "a `usage: ...` line (wrong number of arguments)",
                                hint="check argc before anything else")
