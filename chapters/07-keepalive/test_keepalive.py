"""Grader for chapter 07 -- keep-alive ping-pong.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.

Timing: a PING's arrival is taken from the kernel's own record (TCP_INFO's
tcpi_last_data_recv), not from when the grader got round to reading it, so a grader
scheduled late on a busy machine neither stretches nor squeezes the gaps it measures.
Lower bounds are measured from events the grader caused itself (the moment it sent a PONG
or a DATA frame), which a PING can only follow.  Upper bounds are generous.
"""
import select
import socket
import struct
import subprocess
import time

from grader import GradeFailure, expect, needs_netns, points, skip, slow, swapped32, which

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

    None when more bytes are already waiting: the grader read too late to tell which
    frame the kernel's record belongs to."""
    info = peer.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    ago = struct.unpack_from("I", info, TCPI_LAST_DATA_RECV)[0] / 1000
    now = time.monotonic()
    if peer.buffer or select.select([peer.sock], [], [], 0)[0]:
        return None
    return now - ago


def start_client(lab, idle, interval, count):
    listener = lab.listen()
    client = lab.start("client", "127.0.0.1", listener.port, idle, interval, count)
    peer = listener.accept(program=client, hint="the client connects to HOST PORT from its arguments")
    return client, peer, kernel_arrival(peer)   # None if the grader accepted very late


def recv_ping(peer, client, number, timeout, after, exact=False):
    """Receive one PING frame (the number-th); check its type.  Returns its arrival time
    (with exact=True, None when the kernel's record cannot tell: see kernel_arrival)."""
    try:
        raw = peer.recv_exactly(FRAME, timeout=timeout,
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


# -- client: the application heartbeat ------------------------------------------------

@points(3)
def test_client_declares_a_silent_peer_dead(lab):
    """client sends COUNT pings INTERVAL_MS apart to a silent peer, then reports it dead"""
    idle, interval, count = 250, 80, 3
    client, peer, connected = start_client(lab, idle, interval, count)
    times = []
    for n in range(1, count + 1):
        timeout = (idle if n == 1 else interval) / 1000 + 1.0
        after = f"of connecting (IDLE_MS = {idle})" if n == 1 else f"of the previous one (INTERVAL_MS = {interval})"
        times.append(recv_ping(peer, client, n, timeout, after, exact=True))
        expect_ping_line(client, n)
    if times[0] is not None and connected is not None:
        first = times[0] - connected
        expect(first >= idle / 1000 - 0.05,
               expected=f"PING #1 after {idle} ms of silence (IDLE_MS)",
               happened=f"it arrived {ms(first)} after the connection was made",
               hint="the first PING waits IDLE_MS of quiet; only the later ones use INTERVAL_MS")
    gaps = [b - a for a, b in zip(times, times[1:]) if a is not None and b is not None]
    expect(all(interval / 1000 - 0.05 <= g <= interval / 1000 + 0.15 for g in gaps),
           expected=f"the PINGs {interval} ms apart (INTERVAL_MS)",
           happened="they came " + ", ".join(ms(g) for g in gaps) + " apart",
           hint="after a PING with no answer, wait INTERVAL_MS (not IDLE_MS) before the next one"
           if any(g > interval / 1000 + 0.15 for g in gaps)
           else "wait for the timer to run out between PINGs: poll() with the time left")
    client.expect_line(r"connection dead", timeout=interval / 1000 + 1.0,
                       expected=f"after {count} unanswered PINGs and {interval} ms more, "
                                "client prints `connection dead`",
                       hint=f"COUNT = {count}: after PING #{count}, one more INTERVAL_MS of silence "
                            "means the peer is gone: print `connection dead` on stdout, then exit(1)")
    dead_at = next(client.started + t for t, text, _ in client.stdout_lines if text.strip() == "connection dead")
    last = times[-1] if times[-1] is not None else 0.0
    expect(dead_at - last >= interval / 1000 - 0.05,
           expected=f"`connection dead` only after PING #{count} went unanswered for {interval} ms",
           happened=f"it came {ms(max(0.0, dead_at - last))} after PING #{count}",
           hint="give the last PING its INTERVAL_MS to be answered before giving up")
    client.expect_exit(1, timeout=1.0, expected="client exits with status 1 after `connection dead`")
    extra = peer.recv_all_until_eof(timeout=1.0)
    expect(not extra,
           expected=f"exactly {count} PINGs (COUNT)",
           happened=f"{len(extra) // FRAME} more frame(s) after PING #{count} ({len(extra)} bytes)",
           hint="stop after COUNT PINGs: compare the count before sending another")


@points(2)
def test_client_keeps_a_live_peer(lab):
    """client never gives up on a peer that answers every ping"""
    idle, interval, count = 120, 50, 2
    client, peer, _ = start_client(lab, idle, interval, count)
    pong_sent = None
    for cycle in range(1, 4):
        try:
            arrived = recv_ping(peer, client, 1, idle / 1000 + 1.0, "of the last PONG")
        except GradeFailure as failure:
            if printed_dead(client):
                raise GradeFailure(
                    expected="the client never declares dead a peer that answers every PING",
                    happened=f"after {cycle - 1} answered PINGs it printed `connection dead`",
                    hint="every PONG must reset the count of unanswered PINGs to zero") from failure
            raise
        expect_ping_line(client, 1)
        if pong_sent is not None:
            waited = arrived - pong_sent
            expect(waited >= idle / 1000 - 0.02,
                   expected=f"after a PONG, the next PING waits a full IDLE_MS ({idle} ms)",
                   happened=f"it came {ms(waited)} after the PONG",
                   hint="a sign of life restarts the idle timer: the next deadline is IDLE_MS "
                        "from the moment the frame arrived, not INTERVAL_MS")
        pong_sent = time.monotonic()
        peer.send(frame(PONG, peer.last_ping[4:]))
        client.expect_line(r"pong received", timeout=1.0, expected="client prints `pong received`",
                           hint="read the whole 36-byte frame and ntohl() its type: PONG is 2")
    client.expect_running("the client keeps running while the peer answers",
                          hint="a PONG proves the peer alive: reset the unanswered count")


@points(2)
def test_client_counter_resets_after_a_late_pong(lab):
    """a late pong restarts the count: COUNT more pings before giving up"""
    idle, interval, count = 120, 50, 2
    client, peer, _ = start_client(lab, idle, interval, count)
    recv_ping(peer, client, 1, idle / 1000 + 1.0, "of connecting")
    expect_ping_line(client, 1)
    recv_ping(peer, client, 2, interval / 1000 + 1.0, "of PING #1")
    expect_ping_line(client, 2)
    pong_sent = time.monotonic()
    peer.send(frame(PONG, peer.last_ping[4:]))
    client.expect_line(r"pong received", timeout=1.0, expected="client prints `pong received`")
    try:
        arrived = recv_ping(peer, client, 1, idle / 1000 + 1.0, "of the PONG")
    except GradeFailure as failure:
        if printed_dead(client):
            raise GradeFailure(
                expected=f"after the PONG, {count} fresh PINGs before the client gives up",
                happened="the client declared the connection dead without another PING: "
                         "it still counted the PINGs from before the PONG",
                hint="a PONG must reset the count of unanswered PINGs to zero") from failure
        raise
    expect_ping_line(client, 1)
    expect(arrived - pong_sent >= idle / 1000 - 0.02,
           expected=f"the first PING after the PONG waits a full IDLE_MS ({idle} ms)",
           happened=f"it came {ms(arrived - pong_sent)} after the PONG",
           hint="a sign of life restarts the idle timer, not only the count")
    recv_ping(peer, client, 2, interval / 1000 + 1.0, "of PING #1")
    expect_ping_line(client, 2)
    client.expect_line(r"connection dead", timeout=interval / 1000 + 1.0,
                       expected="client prints `connection dead` when the fresh PINGs go unanswered")
    client.expect_exit(1, timeout=1.0)


@points(1)
def test_client_counts_data_as_a_sign_of_life(lab):
    """client sends no ping while data keeps arriving, even split across writes"""
    # the grader's own sends must come well within IDLE_MS: on a slower machine the
    # timings stretch (lab.scaled), on a far slower one the test skips as too slow
    factor = lab.scaled(1.0)
    idle, interval, count = round(200 * factor), round(50 * factor), 2
    spacing = 0.05 * factor
    client, peer, _ = start_client(lab, idle, interval, count)
    words = ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"]
    last_sent = None
    for i, word in enumerate(words):
        if i == 1:
            peer.send(frame(DATA, word), pieces=7, delay=0.005)   # a frame in 6 pieces
        elif i == 3:
            peer.send(frame(DATA, word) + frame(DATA, words[4]))   # two frames in one write
        elif i == 4:
            continue
        else:
            peer.send(frame(DATA, word))
        last_sent = time.monotonic()
        # the spacing of the traffic is the behaviour under test (well under IDLE_MS)
        quiet = peer.expect_silence(spacing)
        expect(quiet,
               expected=f"no PING while DATA frames arrive more often than every IDLE_MS ({idle} ms)",
               happened=(f"the client sent {len(peer.buffer)} bytes within {ms(spacing)} of DATA `{word}`"
                         if peer.buffer else peer._state()),
               hint="any whole frame from the server proves it alive, not only a PONG: reset the "
                    "idle timer and the count on every frame")
    for word in words:
        client.expect_line(rf"data {word}", timeout=factor, expected=f"client prints `data {word}`",
                           hint="a frame can arrive in pieces, and two in one read(): keep the "
                                "bytes of a partial frame until all 36 are there")
    expect(not peer.buffer,
           expected="no PING while DATA frames arrive more often than every IDLE_MS",
           happened=f"the client sent {len(peer.buffer)} bytes while the server was talking",
           hint="any whole frame from the server proves it alive, not only a PONG: reset the idle "
                "timer and the count on every frame")
    arrived = recv_ping(peer, client, 1, idle / 1000 + factor, "of the last DATA frame")
    expect(arrived - last_sent >= idle / 1000 - 0.02,
           expected=f"the first PING comes IDLE_MS ({idle} ms) after the last DATA frame",
           happened=f"it came {ms(arrived - last_sent)} after it",
           hint="restart the idle timer whenever a frame arrives")
    expect_ping_line(client, 1)


# -- server: answering the heartbeat ------------------------------------------------

def start_server(lab, *extra):
    port = lab.port()
    server = lab.start("server", port, *extra)
    server.expect_line(rf"listening on {port}", expected=f"server prints `listening on {port}`",
                       hint="print the line once listen() has succeeded")
    return server, port


def expect_pong(peer, ping_payload, server, what):
    raw = peer.recv_exactly(FRAME, timeout=1.5, what=f"a 36-byte PONG frame {what}",
                            hint=ntohl_hint(server) or "answer each PING with one 36-byte frame")
    expect(raw[:4] == struct.pack("!I", PONG),
           expected="the PONG starts with the type 00 00 00 02 (network byte order)",
           happened=f"its first 4 bytes were {describe_type(raw[:4])}",
           hint=byte_order_hint(raw[:4], PONG) or "set the type to htonl(2)")
    expect(raw[4:] == ping_payload,
           expected=f"the PONG carries the PING's payload back: {ping_payload.rstrip(bytes(1))!r}",
           happened=f"its payload was {raw[4:]!r}",
           hint="copy all 32 payload bytes of the PING into the PONG")
    return raw


def ntohl_hint(server):
    m = server.wait_stderr(r"unknown message type (\d+)", 0.05)
    if m and swapped32(int(m.group(1))) in TYPE_NAMES:
        return (f"{m.group(1)} is {swapped32(int(m.group(1)))} with its bytes reversed: "
                "the type arrives in network byte order, so ntohl() it before comparing")
    return None


@points(3)
def test_server_answers_ping_with_pong_in_network_order(lab):
    """server answers a PING with a PONG in network byte order, echoing its payload"""
    server, port = start_server(lab)
    peer = lab.connect(port)
    payload = b"grader ping 7f3a".ljust(PAYLOAD, b"\0")
    for _ in range(2):
        peer.send(frame(PING, payload))
        expect_pong(peer, payload, server, "in reply to a PING")
    server.expect_line(r"ping received", timeout=1.0, expected="server prints `ping received`")
    peer.close()
    server.expect_line(r"client closed", timeout=1.0,
                       expected="server prints `client closed` when the client leaves between frames",
                       hint="readn() returning 0 means EOF before the first byte of a frame")
    server.expect_running("the server keeps running after a client leaves",
                          hint="return from the client's loop and accept the next one")


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
           hint="sleep DELAY_MS (nanosleep or usleep) before sending the PONG")


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


def start_keepalive(lab, idle, interval, count):
    rec = lab.capture()
    listener = lab.listen()
    prog = lab.start("keepalive", "127.0.0.1", listener.port, idle, interval, count)
    peer = listener.accept(program=prog)
    prog.expect_line(r"keepalive on.*", expected="keepalive prints `keepalive on: ...` once the "
                                                 "options are set")
    return rec, listener, prog, peer


@slow
@needs_netns
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
    t0 = time.monotonic()
    res = subprocess.run([iptables, "-A", "INPUT", "-p", "tcp", "--sport", str(listener.port),
                          "-j", "DROP"], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t0
    if res.returncode != 0:
        skip("missing-tool", f"iptables could not add a rule here: {res.stderr.strip()}")
    if took > idle / 2:
        # the first probes went out, and were answered, before the rule was in place
        skip("too-slow", f"this machine is too slow for this check right now: iptables took "
                         f"{took:.1f} s to add a rule, the connection idles only {idle} s (IDLE_S)")
    lab.note("firewall", f"iptables -A INPUT -p tcp --sport {listener.port} -j DROP "
                         "(answers from the grader's server dropped)")
    bound = idle + interval * count
    rc = prog.wait_exit(timeout=bound + 1.0)
    probes = [s for s in rec.tcp() if s.keepalive and s.sport == client_port]
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
