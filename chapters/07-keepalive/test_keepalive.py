"""Grader for chapter 07 -- keep-alive ping-pong.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  The order follows the hints: server, keepalive, client.

Timing: a PING's arrival is taken from the kernel's own record (TCP_INFO's
tcpi_last_data_recv), not from when the grader got round to reading it, so a grader
scheduled late on a busy machine neither stretches nor squeezes the gaps it measures.
Lower bounds are measured from events the grader caused itself (the moment it sent a PONG
or a DATA frame), which a PING can only follow.  Upper bounds leave room for a loaded
machine (lab.scaled), and where a wrong program is off by a whole timer the bound sits
half-way between the right moment and the wrong one.  Whenever the grader itself must
answer in time, the timer it races is a few hundred milliseconds long.
"""
import re
import socket
import struct
import subprocess
import time

from grader import (GradeFailure, contract, expect, expect_clients_wait_in_queue, expect_quiet_stderr, needs_netns, points, poll_until,
                    rejects_argument, sanitizer_report, skip, slow, swapped16, swapped32,
                    use_sanitized_programs, which)

PING, PONG, DATA = 1, 2, 3
PAYLOAD = 32
FRAME = 4 + PAYLOAD
TYPE_NAMES = {PING: "PING", PONG: "PONG", DATA: "DATA"}


def frame(type_, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode()
    return struct.pack("!I32s", type_, payload)


def describe_type(raw):
    """'00 00 00 01 (PING)' or a note about byte order."""
    value = struct.unpack("!I", raw)[0]
    text = raw.hex(" ")
    if value in TYPE_NAMES:
        return f"{text} ({TYPE_NAMES[value]})"
    host = struct.unpack("<I", raw)[0]
    if host in TYPE_NAMES:
        return (f"{text} -- that is {TYPE_NAMES[host]} ({host}) in little-endian host order, "
                f"not network order")
    return f"{text} (type {value}: not PING, PONG or DATA)"


def byte_order_hint(raw, want):
    if struct.unpack("<I", raw)[0] == want:
        return ("the type went out in host byte order: store htonl(type) in the frame before "
                "sending it, and ntohl() what you receive")
    return None


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


TCPI_LAST_DATA_RECV = 52   # offset of tcpi_last_data_recv (ms) in struct tcp_info


def kernel_arrival(peer):
    """When the last data reached the grader's socket (on a fresh connection: when the
    handshake completed), on the time.monotonic() clock, as the kernel recorded it.

    None when more data is already waiting: the grader read too late to tell which
    frame the kernel's record belongs to.  A FIN or a RST waiting is fine: only data
    moves the record."""
    info = peer.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    ago = struct.unpack_from("I", info, TCPI_LAST_DATA_RECV)[0] / 1000
    now = time.monotonic()
    if peer.buffer:
        return None
    try:
        waiting = peer.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        waiting = b""           # nothing (EAGAIN) or a reset: no data behind the record
    return None if waiting else now - ago


# -- server: answering the heartbeat ------------------------------------------------

def start_server(lab, *extra):
    port = lab.port()
    server = lab.start("server", port, *extra)
    server.expect_line(rf"listening on {port}", expected=f"server prints `listening on {port}`",
                       hint="print the line once listen() has succeeded")
    return server, port


def ntohl_hint(server):
    m = server.wait_stderr(r"unknown message type (\d+)", 0.05)
    if m and swapped32(int(m.group(1))) in TYPE_NAMES:
        return (f"{m.group(1)} is {swapped32(int(m.group(1)))} with its bytes reversed: "
                "the type arrives in network byte order, so ntohl() it before comparing")
    return None


def expect_pong(peer, ping_payload, server, what, timeout=1.5):
    raw = peer.recv_exactly(FRAME, timeout=timeout, what=f"a 36-byte PONG frame {what}",
                            hint=ntohl_hint(server) or "answer each PING with one 36-byte frame")
    expect(raw[:4] == struct.pack("!I", PONG),
           expected="the PONG starts with the type 00 00 00 02 (network byte order)",
           happened=f"its first 4 bytes were {describe_type(raw[:4])}",
           hint=byte_order_hint(raw[:4], PONG) or "set the type to htonl(2)")
    if raw[4:] != ping_payload:
        text = ping_payload.split(b"\0", 1)[0]
        cut = ping_payload[:len(text)] + bytes(PAYLOAD - len(text))
        expect(False,
               expected=f"the PONG carries the PING's 32 payload bytes back unchanged: "
                        f"{ping_payload.hex(' ')}",
               happened=f"its payload was {raw[4:].hex(' ')}",
               hint="the payload is bytes, not a string: strcpy/strncpy stop at the first NUL byte; "
                    "memcpy all 32 bytes" if raw[4:] == cut else
                    "copy all 32 payload bytes of the PING into the PONG")
    return raw


def expect_connection_line(server, port, what):
    m = server.expect_line(r"connection from ([\d.:a-fA-F\[\]]+):(\d+)", timeout=1.5,
                           expected=f"server prints `connection from 127.0.0.1:{port}` for {what}",
                           hint="print the line after accept(), with the address accept() filled in")
    shown = int(m.group(2))
    expect(m.group(1).endswith("127.0.0.1") and shown == port,
           expected=f"server prints `connection from 127.0.0.1:{port}` for {what} "
                    f"(the grader's address and port)",
           happened=f"it printed `{m.group(0)}`",
           hint=(f"{shown} is {port} with its two bytes swapped: the port in the sockaddr is in "
                 "network byte order, ntohs() it" if shown == swapped16(port) else
                 "print the address and port accept() stored for this client"))


@contract("server", "listens on", "connection from")
@points(1)
def test_server_names_each_client(lab):
    """server listens on 0.0.0.0, names each client, and serves the next one when one leaves"""
    server, port = start_server(lab)
    listening = lab.listening(server, local_port=port)
    expect(listening and listening[0].local_host == "0.0.0.0",
           expected=f"the server listens on 0.0.0.0:{port} (every address)",
           happened=f"it listens on {listening[0].local}" if listening else "no listening socket",
           hint="tcp_listen_or_die(NULL, port, ...) binds INADDR_ANY", sockets=lab.sockets_text)
    first = lab.connect(port)
    expect_connection_line(server, first.local_port(), "the first client")
    first.close()
    server.expect_line(r"client closed", timeout=1.5,
                       expected="server prints `client closed` when the first client leaves",
                       hint="readn() returning 0 means EOF before the first byte of a frame")
    second = lab.connect(port)
    expect_connection_line(server, second.local_port(), "a second client, after the first left")
    expect_clients_wait_in_queue(lab, server, port)


@contract("server", "PING: prints", "client closes between two frames")
@points(3)
def test_server_answers_ping_with_pong_in_network_order(lab):
    """server answers a PING with a PONG in network byte order, echoing its payload"""
    server, port = start_server(lab)
    peer = lab.connect(port)
    payloads = [b"grader ping 7f3a".ljust(PAYLOAD, b"\0"),
                b"bin\0\x01\x02\xff\xfe" + bytes(range(200, 224))]     # NUL and high bytes
    for payload in payloads:
        peer.send(frame(PING, payload))
        expect_pong(peer, payload, server, "in reply to a PING")
    server.expect_line(r"ping received", timeout=1.0, expected="server prints `ping received`")
    peer.close()
    server.expect_line(r"client closed", timeout=1.0,
                       expected="server prints `client closed` when the client leaves between frames",
                       hint="readn() returning 0 means EOF before the first byte of a frame")
    server.expect_running("the server keeps running after a client leaves",
                          hint="return from the client's loop and accept the next one")


@contract("server", "reads whole 36-byte frames")
@points(2)
def test_server_reads_frames_split_across_writes(lab):
    """server reads frames that arrive in pieces or glued together"""
    server, port = start_server(lab)
    peer = lab.connect(port)
    payload = b"pieces of a ping".ljust(PAYLOAD, b"\0")
    hint = ("one read() is not one frame: TCP may deliver 5 bytes now and the rest later; "
            "loop until all 36 bytes are in (readn)")
    try:
        peer.send(frame(PING, payload), pieces=5, delay=0.01)
        expect_pong(peer, payload, server, "after a PING sent in 5-byte pieces")
    except GradeFailure as failure:
        failure.hint = hint
        raise
    expect(peer.expect_silence(0.05),
           expected="exactly one PONG for the PING, and the connection stays open",
           happened=f"then {peer._state() if (peer.eof or peer.error) else 'more bytes arrived'}",
           hint=hint)
    payload2 = b"glued".ljust(PAYLOAD, b"\0")
    peer.send(frame(DATA, "alpha") + frame(PING, payload2))
    server.expect_line(r"data alpha", timeout=1.0,
                       expected="server prints `data alpha` for the first of two frames sent in one write",
                       hint="read exactly 36 bytes per frame: the next frame's bytes belong to the next one")
    expect_pong(peer, payload2, server, "for a PING glued behind a DATA frame")


NUL_HINT = ("AddressSanitizer stopped it: printf(\"%s\") read past the 32 payload bytes, which "
            "hold no NUL when the text fills them: printf(\"%.*s\", (int)strnlen(p, 32), p)")


@contract("server", "DATA: prints")
@points(1)
def test_server_prints_data_up_to_the_first_nul(lab):
    """server prints DATA text up to its first NUL byte, all 32 bytes when there is none"""
    use_sanitized_programs(lab, "address")     # a read past the payload is seen, not luck
    server, port = start_server(lab)
    peer = lab.connect(port)
    full = "0123456789abcdef0123456789ABCDEF"          # 32 bytes: no NUL at all
    for payload, text in ((b"short", "short"),
                          (full.encode(), full),
                          (b"cut here\0not this", "cut here")):
        peer.send(frame(DATA, payload))
        try:
            m = server.expect_line(r"data ?(.*)", timeout=1.5, expected=f"server prints `data {text}`")
        except GradeFailure as failure:
            if sanitizer_report(server):
                failure.hint = NUL_HINT
            raise
        expect(m.group(1) == text,
               expected=f"for a DATA frame whose payload is {payload!r} (NUL-padded), "
                        f"server prints `data {text}`",
               happened=f"it printed `{m.group(0)}`",
               hint=("a payload of 32 text bytes has no NUL: print at most 32 bytes "
                     "(printf(\"%.*s\", (int)strnlen(p, 32), p)), and do not overwrite the last one"
                     if text == full else "print the payload up to its first NUL byte"))
    server.expect_running("the server keeps running after DATA frames",
                          hint=NUL_HINT if sanitizer_report(server) else None)


@contract("server", "any other type N")
@points(1)
def test_server_rejects_an_unknown_type(lab):
    """server drops a client that sends an unknown type and keeps serving others"""
    server, port = start_server(lab)
    bad = lab.connect(port)
    bad.send(frame(9, "what is this"))
    closed = bad.wait_close(1.5)
    expect(closed is not None,
           expected="the server closes the connection after a frame of unknown type 9",
           happened="it stayed open" + (f" and sent {bad.buffer!r}" if bad.buffer else ""),
           hint="a peer that speaks another protocol cannot be resynchronised: close it")
    expect(server.wait_stderr(r"unknown message type 9\b", 0.5),
           expected="stderr says: unknown message type 9",
           happened=f"stderr was: {server.stderr_text() or '(empty)'}",
           hint='warning(0, "unknown message type %u", type) after ntohl()')
    server.expect_running("the server keeps running after rejecting one client",
                          hint="close that client's connection only; exit only for the server's own errors")
    good = lab.connect(port)
    payload = b"still there?".ljust(PAYLOAD, b"\0")
    good.send(frame(PING, payload))
    expect_pong(good, payload, server, "to the next client")


@contract("server", "waits DELAY_MS")
@points(1)
def test_server_waits_delay_ms_before_answering(lab):
    """server given DELAY_MS answers a PING that much later"""
    delay = 200
    server, port = start_server(lab, delay)
    peer = lab.connect(port)
    payload = b"slow".ljust(PAYLOAD, b"\0")
    sent = time.monotonic()
    peer.send(frame(PING, payload))
    expect_pong(peer, payload, server, f"about {delay} ms after the PING")
    waited = time.monotonic() - sent
    expect(waited >= delay / 1000 - 0.01,
           expected=f"the PONG comes {delay} ms after the PING (DELAY_MS)",
           happened=f"it came after {ms(waited)}",
           hint="sleep DELAY_MS (nanosleep or usleep) before sending the PONG: a millisecond is "
                "1,000,000 ns, and tv_nsec must stay below 1,000,000,000")
    # the mistakes this catches are off by a factor of 1000 (seconds for milliseconds):
    # a generous bound, so that a loaded machine never looks like one
    late = delay / 1000 + max(lab.scaled(0.3), 1.5)
    expect(waited <= late,
           expected=f"the PONG comes {delay} ms after the PING (DELAY_MS), not much later",
           happened=f"it came after {ms(waited)}",
           hint="DELAY_MS is in milliseconds: sleep delay_ms / 1000 s and (delay_ms % 1000) * 1000000 ns")


@contract("server", "closes in the middle of")
@points(1)
def test_server_warns_when_a_client_leaves_mid_frame(lab):
    """a client that leaves in the middle of a frame (10 bytes in, or one byte short) gets a warning, not `client closed`"""
    server, port = start_server(lab)
    cut = lab.connect(port)
    expect_connection_line(server, cut.local_port(), "the client")
    for sent in (10, FRAME - 1):
        before_out = len(server.stdout_lines)
        before_err = len(server.stderr_text())
        cut.send(frame(PING, "never finished")[:sent])
        cut.close()
        nxt = lab.connect(port)
        expect_connection_line(server, nxt.local_port(), "the next client, once the one that left "
                                                         "mid-frame is gone")
        between = [t for _, t, _ in server.stdout_lines[before_out:]]
        between = between[:next((i for i, t in enumerate(between) if t.startswith("connection from")),
                                len(between))]
        expect(not any(t.strip() in ("client closed", "ping received") for t in between),
               expected=f"no `client closed` (nor `ping received`) for a client that left {sent} bytes "
                        "into a 36-byte frame: a warning on stderr instead",
               happened="the server printed " + " and ".join(f"`{t.strip()}`" for t in between
                                                            if t.strip() != "connection from"),
               hint="readn() returns how many bytes it got before EOF: 0 is a clean close between "
                    "frames, 1..35 a frame cut short -- warn about that one (and check n against "
                    "36, not 35)")
        expect(poll_until(lambda: len(server.stderr_text()) > before_err, 0.5),
               expected=f"a warning on stderr for the frame cut short ({sent} of 36 bytes)",
               happened="stderr stayed as it was",
               hint="warning(0, \"truncated frame (%zd of 36 bytes)\", n), say")
        cut = nxt
    payload = b"after the cut".ljust(PAYLOAD, b"\0")
    cut.send(frame(PING, payload))
    expect_pong(cut, payload, server, "to the next client")


@contract("server", "resets, or vanishes")
@points(2)
def test_server_survives_clients_that_vanish(lab):
    """a client that resets, or leaves before its PONGs are sent, never kills the server"""
    server, port = start_server(lab, 100)
    # two PINGs, then gone: the first PONG meets a closed socket (its kernel answers
    # RST), the second one is a write to a reset connection -- SIGPIPE unless ignored
    gone = lab.connect(port)
    gone.send(frame(PING, "one") + frame(PING, "two"))
    gone.close()
    rude = lab.connect(port)
    rude.send(frame(PING, "answer me first"))
    hint = ("a write to a connection the peer has closed raises SIGPIPE, which kills the process: "
            "signal(SIGPIPE, SIG_IGN) (given in main) turns it into an EPIPE error to warn about")
    try:
        expect_pong(rude, frame(PING, "answer me first")[4:], server,
                    "to the next client, after one left before its PONGs were sent")
    except GradeFailure as failure:
        if not server.running():
            failure.hint = hint
        raise
    rude.reset()                # RST between two frames
    last = lab.connect(port)
    payload = b"anyone?".ljust(PAYLOAD, b"\0")
    last.send(frame(PING, payload))
    try:
        expect_pong(last, payload, server, "to a client after one that reset its connection")
    except GradeFailure as failure:
        if not server.running():
            failure.hint = ("a read() that fails (ECONNRESET) ends that client's connection, not the "
                            "server: warning(errno, \"read\") and accept the next one")
        raise
    expect(server.wait_stderr(r"\S", 0.5),
           expected="a warning on stderr for the connections that ended in an error",
           happened="stderr stayed empty",
           hint="warning(errno, \"write\") when the PONG cannot be sent, warning(errno, \"read\") "
                "when the read fails")


@contract("server", "DELAY_MS is a whole number")
@points(1)
def test_server_rejects_an_invalid_delay(lab):
    """server refuses a DELAY_MS that is not a whole number of milliseconds, and takes 0 and 3600000"""
    for bad in ("soon", "-5", "3600001"):
        rejects_argument(lab, "server", (lab.port(), bad), "DELAY_MS", bad)
    for good in (0, 3600000):
        try:
            start_server(lab, good)
        except GradeFailure as failure:
            failure.hint = f"DELAY_MS may be anything from 0 to 3600000, both ends included"
            raise


@contract("server", "Without PORT, or with a third argument")
@points(1)
def test_server_refuses_a_wrong_argument_count(lab):
    """server without PORT, or with a third argument, shows its usage and exits 1"""
    for args in ((), (lab.port(), 100, "extra")):
        prog = lab.start("server", *args)
        prog.expect_fatal(r"(?i)usage", expected="stderr shows the usage",
                          exit_expected=f"server with {len(args)} argument(s) exits with status 1",
                          exit_hint="check argc first: PORT is needed, DELAY_MS is the only other "
                                    "argument")


@contract("server", "writes nothing on stderr while no call fails")
@points(1)
def test_server_warns_about_nothing_when_all_goes_well(lab):
    """server writes no warning for a client that pings, sends DATA and closes between frames"""
    server, port = start_server(lab)
    peer = lab.connect(port)
    payload = b"all is well".ljust(PAYLOAD, b"\0")
    peer.send(frame(DATA, "hello") + frame(PING, payload))
    expect_pong(peer, payload, server, "to a PING")
    peer.close()
    server.expect_line(r"client closed", timeout=1.5, expected="server prints `client closed`")
    nxt = lab.connect(port)      # the server is done with the first client once it takes the next
    expect_connection_line(server, nxt.local_port(), "the next client")
    expect_quiet_stderr(server, "a client sent DATA and a PING, got its PONG and closed")


# -- kernel keep-alive ---------------------------------------------------------------

def wait_for_probes(rec, port, n, timeout):
    """Poll the recorder (the kernel offers no event for a probe) until n probes from port."""
    deadline = time.monotonic() + timeout
    while True:
        probes = [s for s in rec.tcp() if s.keepalive and s.sport == port]
        if len(probes) >= n or time.monotonic() >= deadline:
            return probes
        time.sleep(0.02)


def handshake_time(rec, client_port):
    for s in rec.tcp():
        if s.sport == client_port and s.flag_text == "S":
            return s.time
    return 0.0


def start_keepalive(lab, *args, rec=True):
    rec = lab.capture() if rec else None
    listener = lab.listen()
    prog = lab.start("keepalive", "127.0.0.1", listener.port, *args)
    peer = listener.accept(program=prog)
    idle, interval, count = args or (10, 5, 3)
    want = f"keepalive on: idle {idle} s, interval {interval} s, count {count}"
    m = prog.expect_line(r"keepalive on.*", expected=f"keepalive prints `{want}` once the options are set")
    expect(m.group(0) == want, expected=f"keepalive prints `{want}`", happened=f"it printed `{m.group(0)}`",
           hint="the line is given code: keep its format")
    return rec, listener, prog, peer


def seconds_of(timer_left):
    """ss's time left ('680ms', '19sec', '3min19sec', '33min') in seconds; None if
    unreadable.  iproute2 6.1 writes seconds and milliseconds as '9.996ms'."""
    total, found = 0.0, False
    for value, unit in re.findall(r"([\d.]+)(min|sec|ms)", timer_left or ""):
        found = True
        if unit == "ms" and "." not in value:
            total += float(value) / 1000
        else:
            total += float(value) * (60 if unit == "min" else 1)
    return total if found else None


@slow
@needs_netns
@contract("keepalive", "sets `SO_KEEPALIVE`", "the first probe IDLE_S after")
@points(2)
def test_keepalive_probes_an_idle_connection(lab):
    """keepalive: the kernel probes an idle connection after IDLE_S, and a live peer answers"""
    rec, listener, prog, peer = start_keepalive(lab, 1, 3, 5)
    client_port = peer.address[1]
    mine = lab.sockets("tcp", local_port=client_port)
    expect(mine and mine[0].timer == "keepalive",
           expected="`ss -tno` shows timer:(keepalive,...) on the client's socket",
           happened=(f"its timer is {mine[0].timer or 'none'}" if mine else "the socket was not found"),
           hint="setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) switches keep-alive on",
           sockets=lab.sockets_text)
    probes = wait_for_probes(rec, client_port, 1, 2.0)
    expect(probes,
           expected="a keep-alive probe from the client about 1 s (IDLE_S) after the connection",
           happened="no probe within 2 s",
           hint="TCP_KEEPIDLE sets the idle time (at the IPPROTO_TCP level); without it the kernel "
                "waits net.ipv4.tcp_keepalive_time = 7200 s",
           packets=lambda: rec.render(client_port))
    after = probes[0].time - handshake_time(rec, client_port)
    expect(0.9 <= after <= 1.6,
           expected="the first probe after 1 s of silence (IDLE_S = 1; INTERVAL_S = 3 only spaces "
                    "the later probes)",
           happened=f"it went out {ms(after)} after the handshake",
           hint="pass IDLE_S to TCP_KEEPIDLE, in seconds", packets=lambda: rec.render(client_port))
    rec.settle()
    answered = any(s.sport == listener.port and s.time >= probes[0].time and not s.payload
                   for s in rec.tcp(client_port))
    expect(answered, expected="the grader's kernel answers the probe with an ACK",
           happened="no answer seen", packets=lambda: rec.render(client_port))
    prog.expect_running("keepalive keeps running: an answered probe means the peer is alive")


@slow
@needs_netns
@contract("keepalive", "COUNT probes INTERVAL_S apart")
@points(3)
def test_keepalive_detects_an_unreachable_peer(lab):
    """keepalive: a peer that stops answering is reported as ETIMEDOUT after COUNT probes"""
    iptables = which("iptables")          # in /usr/sbin, which a normal user's PATH lacks
    if iptables is None:
        skip("missing-tool", "iptables is not installed: sudo apt-get install iptables")
    idle, interval, count = 1, 1, 1
    rec, listener, prog, peer = start_keepalive(lab, idle, interval, count)
    client_port = peer.address[1]
    # From now on nothing from the grader's port reaches the client: its probes vanish
    # unanswered, as if the server's machine had lost power.
    res = subprocess.run([iptables, "-A", "INPUT", "-p", "tcp", "--sport", str(listener.port),
                          "-j", "DROP"], capture_output=True, text=True, timeout=5)
    ruled_at = rec.now()
    if res.returncode != 0:
        skip("missing-tool", f"iptables could not add a rule here: {res.stderr.strip()}")
    lab.note("firewall", f"iptables -A INPUT -p tcp --sport {listener.port} -j DROP "
                         "(answers from the grader's server dropped)")
    bound = idle + interval * count
    rc = prog.wait_exit(timeout=bound + 1.0)
    probes = [s for s in rec.tcp() if s.keepalive and s.sport == client_port]
    if probes and probes[0].time < ruled_at:
        skip("too-slow", f"this machine is too busy for this check right now: the firewall rule came "
                         f"after the first probe (IDLE_S = {idle} s) had been answered")
    expect(rc is not None,
           expected=f"keepalive gives up within about {bound} s (IDLE_S + COUNT x INTERVAL_S)",
           happened=f"it was still running after {bound + 1} s, having sent {len(probes)} probe(s)",
           hint="TCP_KEEPINTVL and TCP_KEEPCNT set the spacing and number of probes; the defaults "
                "are 75 s and 9 probes" if probes else
                "turn keep-alive on (SO_KEEPALIVE) and set TCP_KEEPIDLE",
           packets=lambda: rec.render(client_port))
    expect(rc == 1 and prog.wait_stderr(r"Connection timed out \(110\)", 0.5),
           expected="keepalive exits 1 and reports `read: Connection timed out (110)`",
           happened=f"it {prog.status()}; stderr: {prog.stderr_text() or '(empty)'}",
           hint="when the probes go unanswered, read() fails with ETIMEDOUT: report it with "
                "fatal(errno, \"read\")")
    expect(len(probes) == count,
           expected=f"{count} probes (COUNT) before giving up",
           happened=f"{len(probes)} probe(s) went out",
           hint="pass COUNT to TCP_KEEPCNT", packets=lambda: rec.render(client_port))
    # after the last unanswered probe the kernel waits one more INTERVAL_S, then gives up
    # (and tells the peer with a RST): the whole wait is IDLE_S + COUNT x INTERVAL_S
    gaps = [b.time - a.time for a, b in zip(probes, probes[1:])]
    resets = [s for s in rec.tcp(client_port) if s.sport == client_port and "R" in s.flag_text]
    if resets:
        gaps.append(resets[0].time - probes[-1].time)
    expect(all(interval - 0.1 <= g <= interval + 0.5 for g in gaps),
           expected=f"probes {interval} s apart (INTERVAL_S), and the verdict {interval} s after the last",
           happened="the gaps were " + ", ".join(ms(g) for g in gaps),
           hint="pass INTERVAL_S to TCP_KEEPINTVL", packets=lambda: rec.render(client_port))


@contract("keepalive", "defaults 10, 5 and 3")
@points(1)
def test_keepalive_defaults(lab):
    """keepalive without timing arguments uses 10 s, 5 s and 3 probes"""
    _, _, prog, peer = start_keepalive(lab, rec=False)
    mine = lab.sockets("tcp", local_port=peer.address[1])
    left = seconds_of(mine[0].timer_left) if mine and mine[0].timer == "keepalive" else None
    expect(left is not None and 8.0 <= left <= 10.0,
           expected="`ss -tno` shows the client's keep-alive timer at about 10 s (IDLE_S's default)",
           happened=(f"its timer is {mine[0].timer or 'none'} {mine[0].timer_left}".strip()
                     if mine else "the socket was not found"),
           hint="switch keep-alive on (SO_KEEPALIVE) and pass idle_s to TCP_KEEPIDLE",
           sockets=lab.sockets_text)
    prog.expect_running("keepalive keeps running while the connection is quiet")


@contract("keepalive", "copies every byte")
@points(1)
def test_keepalive_copies_what_the_server_sends(lab):
    """keepalive copies the server's bytes to stdout, NUL bytes too, and ends at EOF"""
    _, _, prog, peer = start_keepalive(lab, 5, 1, 3, rec=False)
    peer.send(b"hello\0world\n")
    m = prog.expect_line(r"hello.*", timeout=1.5, expected="keepalive prints `hello\\0world` (12 bytes)")
    expect(m.group(0) == "hello\0world",
           expected="the server's bytes on stdout as they are: `hello`, a NUL byte, `world`",
           happened=f"stdout had {m.group(0)!r}",
           hint="the bytes are not a C string: write them with fwrite(buf, 1, n, stdout) or "
                "write(1, buf, n), never printf(\"%s\")")
    peer.send(b"second line\n")
    prog.expect_line(r"second line", timeout=1.5, expected="keepalive prints `second line`")
    peer.send(b"no newline yet")
    expect(prog.wait_stdout_tail("no newline yet", 1.0),
           expected="`no newline yet` (sent without a newline) is on stdout within 1 s, while the "
                    "connection is still open: bytes are copied as they arrive",
           happened=f"stdout does not show it yet; keepalive {prog.status()}",
           hint="stdout is line-buffered: bytes without '\\n' wait in stdio's buffer. "
                "fflush(stdout) after fwrite(), or write(1, buf, n)")
    peer.send(b"\n")                    # so that `server closed` starts a line of its own
    peer.close()
    prog.expect_line(r"server closed", timeout=1.5,
                     expected="keepalive prints `server closed` when the server closes",
                     hint="read() returning 0 is the server's EOF")
    prog.expect_exit(0, timeout=1.0, expected="keepalive exits 0 after `server closed`")


@contract("keepalive", "any other read error")
@points(1)
def test_keepalive_reports_a_reset(lab):
    """keepalive reports a reset connection as a read error and exits 1"""
    _, _, prog, peer = start_keepalive(lab, 5, 1, 3, rec=False)
    peer.reset()
    prog.expect_fatal(r"read: Connection reset by peer \(104\)",
                      expected="stderr says `read: Connection reset by peer (104)`",
                      exit_expected="keepalive exits with status 1 when its read() fails (ECONNRESET)",
                      hint="read() returning -1 is an error, not an end: fatal(errno, \"read\") "
                           "(only 0 means the server closed)")


@contract("keepalive", "IDLE_S and INTERVAL_S are whole numbers")
@points(1)
def test_keepalive_rejects_invalid_options(lab):
    """keepalive refuses times and counts the kernel would refuse, and takes the largest it allows"""
    listener = lab.listen()
    for args, what, bad in (((0, 1, 3), "IDLE_S", "0"),
                            ((1, 32768, 3), "INTERVAL_S", "32768"),
                            ((1, 1, 128), "COUNT", "128")):
        # the kernel refuses what is out of its range: saying so is right too
        rejects_argument(lab, "keepalive", ("127.0.0.1", listener.port, *args), what, bad,
                         or_else=r"setsockopt.*Invalid argument \(22\)")
    try:
        start_keepalive(lab, 32767, 32767, 127, rec=False)
    except GradeFailure as failure:
        failure.hint = "IDLE_S and INTERVAL_S go up to 32767, COUNT to 127: both ends are allowed"
        raise


# -- client: the application heartbeat ------------------------------------------------

def start_client(lab, *timing):
    listener = lab.listen()
    client = lab.start("client", "127.0.0.1", listener.port, *timing)
    peer = listener.accept(program=client, hint="the client connects to HOST PORT from its arguments")
    return client, peer, kernel_arrival(peer)   # None if the grader accepted very late


def recv_ping(peer, client, number, timeout, after, exact=False, hint=None):
    """Receive one PING frame (the number-th); check its type.  Returns its arrival time
    (with exact=True, None when the kernel's record cannot tell: see kernel_arrival)."""
    try:
        raw = peer.recv_exactly(FRAME, timeout=timeout, hint=hint,
                                what=f"PING #{number}: a 36-byte frame within {ms(timeout)} {after}")
    except GradeFailure as failure:
        if "connection dead" in client.stdout_text():
            failure.hint = failure.hint or "the client gave up: see its stdout"
        raise
    arrived = kernel_arrival(peer)
    if arrived is None and not exact:
        arrived = time.monotonic()   # later than the truth: still safe for lower bounds
    expect(struct.unpack("!I", raw[:4])[0] == PING,
           expected=f"PING #{number} starts with the type 00 00 00 01 (PING, network byte order)",
           happened=f"its first 4 bytes were {describe_type(raw[:4])}",
           hint=byte_order_hint(raw[:4], PING) or "a frame is [4-byte type][32-byte payload]: "
                                                   "send exactly 36 bytes per PING")
    peer.last_ping = raw
    return arrived


def expect_ping_line(client, number):
    m = client.expect_line(r"sending ping #(\d+)", timeout=1.0,
                           expected=f"client prints `sending ping #{number}`")
    expect(int(m.group(1)) == number,
           expected=f"client prints `sending ping #{number}`",
           happened=f"it printed `sending ping #{m.group(1)}`",
           hint="number the PINGs of one silent stretch 1, 2, ...; a sign of life from the server "
                "starts the count again at zero")


def printed_dead(client):
    """Did the client print `connection dead`?  Asked after its EOF reached the grader,
    which can happen before its last line reaches us: let it finish first (bounded)."""
    client.wait_exit(0.5)
    return any(t.strip() == "connection dead" for _, t, _ in client.stdout_lines)


@contract("client", "after IDLE_MS without a whole frame", "then every INTERVAL_MS",
          "INTERVAL_MS after PING #COUNT")
@points(3)
def test_client_declares_a_silent_peer_dead(lab):
    """client sends COUNT pings INTERVAL_MS apart to a silent peer, then reports it dead"""
    idle, interval, count = 400, 100, 2
    slack = lab.scaled(0.1)
    # a gap of IDLE_MS instead of INTERVAL_MS is wrong however loaded the machine: the bound
    # never passes half-way between the two
    gap_slack = min(slack, (idle - interval) / 2000)
    client, peer, connected = start_client(lab, idle, interval, count)
    times = []
    for n in range(1, count + 1):
        timeout = (idle if n == 1 else interval) / 1000 + 1.0
        after = f"of connecting (IDLE_MS = {idle})" if n == 1 else f"of the previous one (INTERVAL_MS = {interval})"
        times.append(recv_ping(peer, client, n, timeout, after, exact=True))
        expect_ping_line(client, n)
    if times[0] is not None and connected is not None:
        first = times[0] - connected
        expect(idle / 1000 - 0.05 <= first <= idle / 1000 + slack,
               expected=f"PING #1 after {idle} ms of silence (IDLE_MS)",
               happened=f"it arrived {ms(first)} after the connection was made",
               hint="the first PING waits IDLE_MS of quiet; only the later ones use INTERVAL_MS")
    gaps = [b - a for a, b in zip(times, times[1:]) if a is not None and b is not None]
    if slack > gap_slack and any(g > interval / 1000 + gap_slack for g in gaps):
        skip("too-slow", f"a PING came {ms(max(gaps))} after the one before; on this busy machine "
                         f"that cannot tell INTERVAL_MS ({interval} ms) from IDLE_MS ({idle} ms)")
    expect(all(interval / 1000 - 0.05 <= g <= interval / 1000 + gap_slack for g in gaps),
           expected=f"the PINGs {interval} ms apart (INTERVAL_MS)",
           happened="they came " + ", ".join(ms(g) for g in gaps) + " apart",
           hint="after a PING with no answer, wait INTERVAL_MS (not IDLE_MS) before the next one"
           if any(g > interval / 1000 + gap_slack for g in gaps)
           else "wait for the timer to run out between PINGs: poll() with the time left")
    client.expect_line(r"connection dead", timeout=interval / 1000 + 1.0,
                       expected=f"after {count} unanswered PINGs and {interval} ms more, "
                                "client prints `connection dead`",
                       hint=f"COUNT = {count}: after PING #{count}, one more INTERVAL_MS of silence "
                            "means the peer is gone: print `connection dead` on stdout, then exit(1)")
    dead_at = next(client.started + t for t, text, _ in client.stdout_lines if text.strip() == "connection dead")
    if times[-1] is not None:
        expect(dead_at - times[-1] >= interval / 1000 - 0.05,
               expected=f"`connection dead` only after PING #{count} went unanswered for {interval} ms",
               happened=f"it came {ms(max(0.0, dead_at - times[-1]))} after PING #{count}",
               hint="give the last PING its INTERVAL_MS to be answered before giving up")
    client.expect_exit(1, timeout=1.0, expected="client exits with status 1 after `connection dead`")
    extra = peer.recv_all_until_eof(timeout=1.0)
    expect(not extra,
           expected=f"exactly {count} PINGs (COUNT)",
           happened=f"{len(extra) // FRAME} more frame(s) after PING #{count} ({len(extra)} bytes)",
           hint="stop after COUNT PINGs: compare the count before sending another")


@contract("client", "a whole PONG prints")
@points(2)
def test_client_keeps_a_live_peer(lab):
    """client never gives up on a peer that answers every ping"""
    # INTERVAL_MS is long so the grader surely answers in time (a correct client waits only
    # IDLE_MS per cycle); a client that forgets to move its deadline pings INTERVAL_MS after
    # the last PING instead of IDLE_MS after the PONG
    idle, interval, count = 150, 1000, 2
    client, peer, _ = start_client(lab, idle, interval, count)
    pong_sent = ping_at = None
    for cycle in range(1, 4):
        try:
            arrived = recv_ping(peer, client, 1, interval / 1000 + 1.0, "of the last PONG")
        except GradeFailure as failure:
            if printed_dead(client):
                raise GradeFailure(
                    expected="the client never declares dead a peer that answers every PING",
                    happened=f"after {cycle - 1} answered PINGs it printed `connection dead`",
                    hint="every PONG must reset the count of unanswered PINGs to zero") from failure
            raise
        late = pong_sent is not None and pong_sent - ping_at > interval / 1000 - 0.1
        if late:
            # the grader answered when the client was entitled to ping again: no verdict
            skip("too-slow", f"the grader sent its PONG {ms(pong_sent - ping_at)} after the PING, "
                             f"too close to INTERVAL_MS ({interval} ms) on this busy machine")
        expect_ping_line(client, 1)
        if pong_sent is not None:
            waited = arrived - pong_sent
            expect(waited >= idle / 1000 - 0.02,
                   expected=f"after a PONG, the next PING waits a full IDLE_MS ({idle} ms)",
                   happened=f"it came {ms(waited)} after the PONG",
                   hint="a sign of life restarts the idle timer: the next deadline is IDLE_MS "
                        "from the moment the frame arrived, not INTERVAL_MS")
            # halfway between the right deadline (PONG + IDLE_MS) and the wrong one (PING + INTERVAL_MS)
            bound = ((pong_sent + idle / 1000) + (ping_at + interval / 1000)) / 2 - pong_sent
            expect(waited <= bound,
                   expected=f"after a PONG, the next PING comes IDLE_MS ({idle} ms) later",
                   happened=f"it came {ms(waited)} after the PONG, "
                            f"{ms(arrived - ping_at)} after the PING before (INTERVAL_MS = {interval} ms)",
                   hint="a whole frame moves the deadline too: IDLE_MS from the moment it arrived")
        ping_at = arrived
        pong_sent = time.monotonic()
        peer.send(frame(PONG, peer.last_ping[4:]))
        client.expect_line(r"pong received", timeout=1.0, expected="client prints `pong received`",
                           hint="read the whole 36-byte frame and ntohl() its type: PONG is 2")
    client.expect_running("the client keeps running while the peer answers",
                          hint="a PONG proves the peer alive: reset the unanswered count")


@contract("client", "resets the count to 0")
@points(2)
def test_client_counter_resets_after_a_late_pong(lab):
    """a late pong restarts the count: COUNT more pings before giving up"""
    # COUNT = 1: the PONG comes after the last PING, in the INTERVAL_MS it has to be answered
    idle, interval, count = 150, 300, 1
    client, peer, _ = start_client(lab, idle, interval, count)
    recv_ping(peer, client, 1, idle / 1000 + 1.0, "of connecting")
    expect_ping_line(client, 1)
    pong_sent = time.monotonic()
    peer.send(frame(PONG, peer.last_ping[4:]))
    try:
        client.expect_line(r"pong received", timeout=1.0, expected="client prints `pong received`")
        arrived = recv_ping(peer, client, 1, idle / 1000 + 1.0, "of the PONG")
    except GradeFailure as failure:
        if printed_dead(client):
            raise GradeFailure(
                expected=f"after PING #{count} (COUNT = {count}) the client waits INTERVAL_MS "
                         f"({interval} ms) for an answer; the PONG that came then restarts the count: "
                         f"{count} more PING(s) before it gives up",
                happened=f"the client declared the connection dead {ms(time.monotonic() - pong_sent)} "
                         f"after the grader answered PING #{count}",
                hint="after PING #COUNT wait one more INTERVAL_MS before giving up, and let a PONG "
                     "reset the count of unanswered PINGs to zero") from failure
        raise
    expect_ping_line(client, 1)
    expect(arrived - pong_sent >= idle / 1000 - 0.02,
           expected=f"the first PING after the PONG waits a full IDLE_MS ({idle} ms)",
           happened=f"it came {ms(arrived - pong_sent)} after the PONG",
           hint="a sign of life restarts the idle timer, not only the count")
    client.expect_line(r"connection dead", timeout=interval / 1000 + 1.0,
                       expected="client prints `connection dead` when the fresh PING goes unanswered")
    client.expect_exit(1, timeout=1.0)


@contract("client", "sends nothing while whole frames keep coming")
@points(1)
def test_client_counts_data_as_a_sign_of_life(lab):
    """client sends no ping while data keeps arriving, even split across writes"""
    idle, interval, count = 400, 50, 2      # IDLE_MS well above the grader's pauses, even loaded
    previous = time.monotonic()             # before the client connects: its idle timer starts later
    client, peer, _ = start_client(lab, idle, interval, count)
    words = ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"]
    last_sent, longest = None, 0.0
    for i, word in enumerate(words):
        longest = max(longest, time.monotonic() - previous)
        if i == 1:
            peer.send(frame(DATA, word), pieces=7, delay=0.005)   # a frame in 6 pieces
        elif i == 3:
            peer.send(frame(DATA, word) + frame(DATA, words[4]))   # two frames in one write
        elif i == 4:
            continue
        else:
            peer.send(frame(DATA, word))
        last_sent = previous = time.monotonic()
        # the spacing of the traffic is the behaviour under test (well under IDLE_MS)
        quiet = peer.expect_silence(0.05)
        if not quiet and longest >= idle / 1000 - 0.05:     # the grader itself paused that long
            skip("too-slow", f"this machine is too busy for this check right now: the grader sent "
                             f"nothing for {ms(longest)}, near IDLE_MS ({idle} ms), so a PING was due")
        expect(quiet,
               expected=f"no PING while DATA frames arrive more often than every IDLE_MS ({idle} ms)",
               happened=(f"the client sent {len(peer.buffer)} bytes within 50 ms of DATA `{word}`"
                         if peer.buffer else peer._state()),
               hint="any whole frame from the server proves it alive, not only a PONG: reset the "
                    "idle timer and the count on every frame")
    for word in words:
        client.expect_line(rf"data {word}", timeout=1.0, expected=f"client prints `data {word}`",
                           hint="a frame can arrive in pieces, and two in one read(): keep the "
                                "bytes of a partial frame until all 36 are there, and handle every "
                                "whole frame a read() brought")
    expect(not peer.buffer,
           expected="no PING while DATA frames arrive more often than every IDLE_MS",
           happened=f"the client sent {len(peer.buffer)} bytes while the server was talking",
           hint="any whole frame from the server proves it alive, not only a PONG: reset the idle "
                "timer and the count on every frame")
    arrived = recv_ping(peer, client, 1, idle / 1000 + 1.0, "of the last DATA frame")
    expect(arrived - last_sent >= idle / 1000 - 0.02,
           expected=f"the first PING comes IDLE_MS ({idle} ms) after the last DATA frame",
           happened=f"it came {ms(arrived - last_sent)} after it",
           hint="restart the idle timer whenever a frame arrives")
    expect_ping_line(client, 1)


@contract("client", "a whole PONG prints")
@points(1)
def test_client_prints_data_up_to_the_first_nul(lab):
    """client prints DATA text up to its first NUL byte, all 32 bytes when there is none"""
    use_sanitized_programs(lab, "address")     # a read past the payload is seen, not luck
    client, peer, _ = start_client(lab, 5000, 1000, 3)
    full = "0123456789abcdef0123456789ABCDEF"          # 32 bytes: no NUL at all
    for payload, text in ((b"cut here\0not this", "cut here"), (full.encode(), full)):
        peer.send(frame(DATA, payload))
        try:
            m = client.expect_line(r"data ?(.*)", timeout=1.5, expected=f"client prints `data {text}`")
        except GradeFailure as failure:
            if sanitizer_report(client):
                failure.hint = NUL_HINT
            raise
        expect(m.group(1) == text,
               expected=f"for a DATA frame whose payload is {payload!r} (NUL-padded), "
                        f"client prints `data {text}`",
               happened=f"it printed `{m.group(0)}`",
               hint=NUL_HINT if text == full else "print the payload up to its first NUL byte")
    client.expect_running("the client keeps running after DATA frames",
                          hint=NUL_HINT if sanitizer_report(client) else None)


@contract("client", "waiting for the rest of a frame never holds this timer up")
@points(2)
def test_client_timer_runs_while_a_frame_is_incomplete(lab):
    """half a frame from a server that then hangs: the client still pings and gives up"""
    idle, interval, count = 200, 100, 1
    client, peer, _ = start_client(lab, idle, interval, count)
    peer.send(frame(DATA, "never finished")[:10])
    hint = ("after poll() says readable, read() once and keep what came: blocking in readn() for "
            "the rest of a frame stops the clock, and this server never sends the rest")
    recv_ping(peer, client, 1, idle / 1000 + 1.0, f"of connecting (IDLE_MS = {idle}), though 10 bytes "
              "of a frame arrived and the rest never did", hint=hint)
    expect_ping_line(client, 1)
    client.expect_line(r"connection dead", timeout=interval / 1000 + 1.0,
                       expected="client prints `connection dead`: 10 bytes of a frame are no answer")
    client.expect_exit(1, timeout=1.0)


@contract("client", "Bytes of a frame still incomplete are no sign of life")
@points(2)
def test_client_bytes_of_an_unfinished_frame_are_no_sign_of_life(lab):
    """a server that trickles bytes but never completes a frame still gets pinged on time"""
    idle, interval, count = 300, 200, 2
    client, peer, connected = start_client(lab, idle, interval, count)
    start = connected or time.monotonic()
    trickle = frame(DATA, "one byte at a time, never whole")
    sent = 0
    deadline = time.monotonic() + idle / 1000 + 1.0
    # a byte every 100 ms (a third of IDLE_MS) until the PING comes: 13 bytes at most
    while not peer.buffer and time.monotonic() < deadline and not (peer.eof or peer.error):
        peer.send(trickle[sent:sent + 1])
        sent += 1
        peer._fill(time.monotonic() + 0.1)
    expect(peer.buffer,
           expected=f"PING #1 about {idle} ms (IDLE_MS) after connecting: {sent} bytes of an "
                    "unfinished frame arrived meanwhile, and they prove nothing",
           happened=(f"no PING within {ms(idle / 1000 + 1.0)} while a byte came every 100 ms"
                     if not (peer.eof or peer.error) else peer._state()),
           hint="restart the idle timer only when a whole 36-byte frame has arrived, not whenever "
                "read() returns some bytes")
    arrived = recv_ping(peer, client, 1, 0.5, "", exact=True)
    expect_ping_line(client, 1)
    if arrived is not None and connected is not None:
        expect(arrived - start <= idle / 1000 + lab.scaled(0.1),
               expected=f"PING #1 {idle} ms (IDLE_MS) after connecting, bytes of an unfinished "
                        "frame notwithstanding",
               happened=f"it came {ms(arrived - start)} after connecting",
               hint="restart the idle timer only when a whole 36-byte frame has arrived")


@contract("client", "the server closes the connection", "default to 3000, 1000 and 3")
@points(1)
def test_client_reports_the_server_closing(lab):
    """client reports a server that closes or resets the connection, and exits 1"""
    client, peer, _ = start_client(lab)             # the default timing: IDLE_MS 3000
    peer.send(frame(DATA, "bye"))
    client.expect_line(r"data bye", timeout=1.5, expected="client prints `data bye`")
    expect(peer.expect_silence(0.3),
           expected="no PING in the first 300 ms: without timing arguments IDLE_MS is 3000",
           happened=f"the client sent {peer.buffer[:8].hex(' ')}..." if peer.buffer else peer._state(),
           hint="the defaults are given code: 3000, 1000 and 3")
    peer.close()
    client.expect_fatal(r"server closed the connection",
                        expected="stderr says `server closed the connection`",
                        exit_expected="client exits with status 1 at once when the server closes",
                        exit_hint="read() returning 0 is the server's EOF: "
                                  "fatal(0, \"server closed the connection\")",
                        hint="the message goes to stderr through fatal(), not to stdout",
                        timeout=1.0)
    client, peer, _ = start_client(lab, 5000, 1000, 3)
    client.wait_blocked(2.0)        # connect() has returned: the reset meets its read
    peer.reset()
    if client.wait_exit(1.0) is not None and client.wait_stderr(r"^connect:", 0.2):
        skip("too-slow", "this machine is too busy for this check right now: the reset came "
                         "before the client's connect() had returned")
    client.expect_fatal(r"read: Connection reset by peer \(104\)",
                        expected="stderr says `read: Connection reset by peer (104)`",
                        exit_expected="client exits with status 1 at once when the server resets",
                        exit_hint="read() returning -1 is an error: fatal(errno, \"read\")",
                        timeout=1.0)


@contract("client", "any other type N")
@points(1)
def test_client_rejects_an_unknown_type(lab):
    """client gives up on a server that sends an unknown type"""
    client, peer, _ = start_client(lab, 5000, 1000, 3)
    peer.send(frame(7, "what is this"))
    client.expect_fatal(r"unknown message type 7\b",
                        expected="stderr says `unknown message type 7`",
                        exit_expected="client exits with status 1 at once after a frame of unknown type 7",
                        exit_hint="a server that speaks another protocol is not a sign of life: "
                                  "fatal(0, \"unknown message type %u\", type)",
                        timeout=1.0)


@contract("client", "whole numbers 1..3600000")
@points(1)
def test_client_rejects_invalid_timing(lab):
    """client refuses timings that are not positive whole numbers"""
    listener = lab.listen()
    for args, what, bad in (((0, 100, 3), "IDLE_MS", "0"),
                            ((100, "fast", 3), "INTERVAL_MS", "fast"),
                            ((100, 100, -1), "COUNT", "-1"),
                            ((3600001, 100, 3), "IDLE_MS", "3600001")):
        rejects_argument(lab, "client", ("127.0.0.1", listener.port, *args), what, bad)
    largest = lab.start("client", "127.0.0.1", listener.port, 3600000, 3600000, 3600000)
    try:
        listener.accept(program=largest, what="a connection from `client HOST PORT 3600000 3600000 "
                                              "3600000`")
    except GradeFailure as failure:
        failure.hint = "IDLE_MS, INTERVAL_MS and COUNT go up to 3600000, that end included"
        raise
    largest.expect_running("the client with the largest timing (3600000 for all three) stays connected",
                           hint="IDLE_MS, INTERVAL_MS and COUNT go up to 3600000, that end included")
    prog = lab.start("client", "127.0.0.1", listener.port, 100)
    prog.expect_fatal(r"(?i)usage", expected="stderr shows the usage",
                      exit_expected="client with 3 arguments (IDLE_MS alone) exits with status 1")
