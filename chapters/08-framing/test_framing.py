"""Grader for chapter 08 -- framing: length prefixes and CRLF lines.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  The programs run as AddressSanitizer builds (see
grader/sanitized.py), so a write one byte past a buffer stops the program and the
report names the line.
"""
import re
import struct

import pytest

from grader import (GradeFailure, contract, expect, expect_clients_wait_in_queue, expect_quiet_stderr,
                    needs_netns, points, poll_until, skip, time_after_a_miss,
                    rejects_argument, sanitizer_report, swapped32, use_sanitized_programs)

TIMEOUT = 2.0
PROMPT = 1.0          # "promptly": a rejection must not wait for bytes that never come


@pytest.fixture(autouse=True)
def asan(lab):
    use_sanitized_programs(lab, "address")


def frame(payload, length=None):
    if isinstance(payload, str):
        payload = payload.encode()
    return struct.pack("!I", len(payload) if length is None else length) + payload


def crash_hint(prog):
    """A hint for a program that died: the sanitizer's words when it spoke."""
    if sanitizer_report(prog):
        return ("AddressSanitizer stopped it at the line named under `sanitizer`: a write or read "
                "past the end of a buffer. A buffer of N bytes has indexes 0..N-1, so N bytes of "
                "data leave no room for a '\\0' -- print a frame with fwrite(), and count the "
                "'\\0' and the \"\\r\\n\" when you size or check a line")
    return None


def explain_crash(failure, prog):
    report = sanitizer_report(prog)
    if report:
        failure.sections["sanitizer"] = report
        failure.hint = crash_hint(prog)
    return failure


def next_line(prog, what, timeout=TIMEOUT, hint=None):
    """The next stdout line, whatever it says (the caller judges it)."""
    try:
        return prog.expect_line(r".*", timeout=timeout, expected=what, hint=hint).group(0)
    except GradeFailure as e:
        raise explain_crash(e, prog)


def still_running(prog, expected, hint=None):
    try:
        prog.expect_running(expected, hint=hint)
    except GradeFailure as e:
        raise explain_crash(e, prog)


def swap_hint(line, sent):
    """When `frame too long: N` shows the length `sent` with its bytes reversed, say so."""
    words = line.split()
    if line.startswith("frame too long:") and len(words) > 3 and words[3].isdigit():
        announced = int(words[3])
        if announced == swapped32(sent) and announced != sent:
            return (f"{announced} is {announced:#010x}: the length {sent} with its four bytes "
                    "reversed. The header is in network byte order: convert it with ntohl()")
    return None


def send_slowly(peer, data, pieces, delay):
    """Send in pieces; a program that gives up half-way is judged by what it printed."""
    try:
        peer.send(data, pieces=pieces, delay=delay)
    except GradeFailure:
        pass    # the transcript shows the failed send; the stdout check explains it


def start(lab, name, limit):
    port = lab.port()
    prog = lab.start(name, port, limit)
    prog.expect_line(rf"listening on {port}",
                     expected=f"{name} prints `listening on {port}` once it listens",
                     hint="print the line after tcp_listen_or_die() returns")
    return prog, port


# -- both servers ----------------------------------------------------------------
# The servers differ in their messages only: what a test sends and expects back.

def message(name, text):
    return frame(text) if name == "framesrv" else (text + "\n").encode()


def printed(name, text):
    return f"received {len(text)} bytes: {text}" if name == "framesrv" else f"line: {text}"


def expect_served(srv, name, peer, text, what):
    srv.expect_line(re.escape(printed(name, text)), timeout=TIMEOUT,
                    expected=f"{name} prints `{printed(name, text)}` {what}")
    want = message(name, text)
    try:
        got = peer.recv_exactly(len(want), what=f"the echo {want!r} {what}")
    except GradeFailure as e:
        raise explain_crash(e, srv)
    expect(got == want, expected=f"the echo {want!r} {what}", happened=f"got {got!r}")


def expect_answer(srv, name, peer, text):
    """The line printed next and the echo, judged as each program's own tests do."""
    if name == "framesrv":
        expect_frame_line(srv, text.encode())
        expect_echo(srv, peer, text.encode())
    else:
        expect_line_out(srv, text)
        expect_line_echo(srv, peer, text)


def serves_clients_in_turn(lab, name, limit):
    srv, port = start(lab, name, limit)
    listening = lab.listening(srv, local_port=port)
    expect(listening and listening[0].local_host == "0.0.0.0",
           expected=f"{name} listens on 0.0.0.0:{port} (every address)",
           happened=f"it listens on {listening[0].local}" if listening else "no listening socket",
           hint="tcp_listen_or_die(NULL, port, ...) binds INADDR_ANY", sockets=lab.sockets_text)
    first = lab.connect(port)
    second = lab.connect(port)      # waits in the backlog while the first is served
    first.send(message(name, "first client"))
    expect_answer(srv, name, first, "first client")
    expect_clients_wait_in_queue(lab, srv, port)    # behind `second`: five wait in all
    first.close()
    line = next_line(srv, f"{name} prints `connection closed` when the first client leaves")
    expect(line == "connection closed",
           expected=f"{name} prints `connection closed` when the first client leaves",
           happened=f"it printed `{shown(line)}`")
    second.send(message(name, "second client"))
    expect_answer(srv, name, second, "second client")


def survives_a_client_that_leaves(lab, name, limit):
    srv, port = start(lab, name, limit)
    busy = lab.connect(port)
    busy.send(message(name, "hold on"))
    expect_served(srv, name, busy, "hold on", "to the first client")
    # while the server serves `busy`, `gone` sends three messages, its FIN (the server's
    # socket, still waiting to be accepted, goes to CLOSE-WAIT) and then a RST: a reset in
    # CLOSE-WAIT makes the server's first echo fail with EPIPE -- SIGPIPE unless ignored.
    # Each step is waited for, so no scheduling can let that echo leave before the RST.
    gone = lab.connect(port)
    gone.send(b"".join(message(name, f"message {i}") for i in range(1, 4)))
    gone.shutdown_write()
    pair = dict(local_port=port, peer_port=gone.local_port())

    def fin_arrived():          # CLOSE-WAIT; or gone: a server that served `gone` already
        socks = lab.sockets("tcp", **pair)
        return not socks or any(s.state != "ESTAB" for s in socks)

    def within_a_second(probe, what):   # the machine's slowness is asked only after a miss
        if not (poll_until(probe, 1.0) or poll_until(probe, time_after_a_miss(lab.scaled, 1.0))):
            skip("too-slow", f"this machine is too busy for this check right now: {what} did not "
                             "reach the server's socket within a second")
    within_a_second(fin_arrived, "a FIN")
    gone.reset()
    within_a_second(lambda: not lab.sockets("tcp", **pair), "a RST")
    busy.close()
    try:
        last = lab.connect(port)
        last.send(message(name, "anyone there?"))
        expect_served(srv, name, last, "anyone there?",
                      "to the client after one that left without reading its echoes")
    except GradeFailure as failure:
        if srv.wait_exit(0.3) is None:
            raise
        raise GradeFailure(
            expected=f"{name} keeps serving after a client closed before reading its echoes",
            happened=f"it {srv.status()}",
            hint="a write to a connection the peer has closed raises SIGPIPE, which kills the "
                 "process: signal(SIGPIPE, SIG_IGN) (given in main) turns it into an EPIPE error "
                 "that ends that connection only") from failure


def warns_about_nothing(lab, name, limit):
    srv, port = start(lab, name, limit)
    for text in ("first client", "second client"):
        peer = lab.connect(port)
        peer.send(message(name, "hello") + message(name, text))
        for sent in ("hello", text):
            expect_served(srv, name, peer, sent, f"to the {text}")
        peer.close()
        srv.expect_line("connection closed", timeout=TIMEOUT,
                        expected=f"{name} prints `connection closed` when the {text} leaves")
    expect_quiet_stderr(srv, f"two clients each sent two whole {'frames' if name == 'framesrv' else 'lines'}, "
                             "read the echoes and closed")


# -- framesrv -------------------------------------------------------------------

FRAME_HINT = ("one read() returns whatever has arrived so far -- a piece of a frame, or several "
              "frames: keep reading until you have the 4 header bytes, then exactly LEN payload bytes")


def shown(text):
    """A line as the report shows it: NUL and CR bytes visible."""
    return text.replace("\0", "\\0").replace("\r", "\\r")


def cut_at_nul(line):
    """The line as printf("%.*s") prints it: up to the first NUL byte (allowed)."""
    return line.split("\0", 1)[0].strip()


def expect_frame_line(srv, payload, hint=FRAME_HINT):
    text = payload.decode()
    want = f"received {len(payload)} bytes: {text}".strip()
    line = next_line(srv, f"framesrv prints `{shown(want)}`", hint=hint)
    hint = swap_hint(line, len(payload)) or hint
    if line.startswith(want) and line != want:
        hint = ("more than the payload was printed: it is not NUL-terminated, so printf(\"%s\") "
                "reads on past its end -- print exactly LEN bytes (fwrite, or \"%.*s\")")
    expect(line in (want, cut_at_nul(want)), expected=f"framesrv prints `{shown(want)}`",
           happened=f"it printed `{shown(line)}`", hint=hint)


def expect_echo(srv, peer, payload, hint=None):
    want = frame(payload)
    try:
        got = peer.recv_exactly(len(want), what=f"the frame echoed back: {want!r}",
                                hint=hint or "send each frame back: header (htonl of the length) and payload")
    except GradeFailure as e:
        raise explain_crash(e, srv)
    expect(got == want, expected=f"the echo {want!r}", happened=f"got {got!r}",
           hint=hint or (f"the reply header must be htonl(length): the bytes "
                         f"{struct.pack('!I', len(payload)).hex(' ')} for {len(payload)}"
                         if got[:4] == struct.pack("<I", len(payload)) else
                         "send back exactly the header and the payload you received"))


def expect_closed(peer, srv, what):
    how = peer.wait_close(TIMEOUT)
    if how is None:
        raise GradeFailure(expected=what, happened="the connection stayed open",
                           hint="return from the connection's loop and close() the socket")


@contract("framesrv", "listening on PORT")
@points(1)
def test_framesrv_serves_clients_one_after_another(lab):
    """framesrv listens on every address and serves a second client after the first"""
    serves_clients_in_turn(lab, "framesrv", 128)


@contract("framesrv", "reads frames:", "for each frame prints")
@points(2)
def test_framesrv_frame_sent_one_byte_at_a_time(lab):
    """a frame sent one byte at a time is received whole"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    payload = b"hello, frames"
    send_slowly(peer, frame(payload), 1, 0.004)
    expect_frame_line(srv, payload)
    expect_echo(srv, peer, payload)


@contract("framesrv", "reads frames:", "for each frame prints")
@points(2)
def test_framesrv_frames_coalesced_in_one_write(lab):
    """three frames in one write come out as three frames"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    payloads = [b"first", b"the second frame", b"3rd"]
    peer.send(b"".join(frame(p) for p in payloads))
    for p in payloads:
        expect_frame_line(srv, p, hint=FRAME_HINT + "; bytes after the end of one frame are the "
                          "start of the next: read only LEN bytes of payload, not all you can get")
    for p in payloads:
        expect_echo(srv, peer, p)


@contract("framesrv", "NUL bytes included")
@points(1)
def test_framesrv_payload_with_nul_bytes(lab):
    """a payload with NUL bytes is echoed whole"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    payload = b"\0lead\0 middle\0end"
    peer.send(frame(payload))
    expect_frame_line(srv, payload, hint="print the LEN payload bytes and nothing after them: the "
                      "payload is not NUL-terminated, so printf(\"%s\") reads on past it")
    expect_echo(srv, peer, payload, hint="send back all LEN bytes of the payload, NUL bytes included")


@contract("framesrv", "reads frames:")
@points(2)
def test_framesrv_split_at_the_header_payload_boundary(lab):
    """a frame split after its header, and inside its payload, is received whole"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    payload = b"split across segments"
    data = frame(payload)
    # the pauses are the behaviour under test: separate segments, separate read()s
    send_slowly(peer, data[:4], 4, 0.03)
    send_slowly(peer, data[4:12], 8, 0.03)
    send_slowly(peer, data[12:], None, 0)
    expect_frame_line(srv, payload)
    expect_echo(srv, peer, payload)


@contract("framesrv", "a 4-byte length in network byte order")
@points(2)
def test_framesrv_length_in_network_byte_order(lab):
    """the length is read with ntohl and the echo written with htonl"""
    srv, port = start(lab, "framesrv", 1024)
    peer = lab.connect(port)
    peer.send(frame(b"hello"))
    expect_frame_line(srv, b"hello", hint="the header 00 00 00 05 means 5 in network byte order (big-endian): "
                      "ntohl() turns it into the number 5 on this machine")
    expect_echo(srv, peer, b"hello")


@contract("framesrv", "0 is a valid length")
@points(1)
def test_framesrv_empty_frame_is_a_frame(lab):
    """a frame of length 0 is a message, not the end of the connection"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    peer.send(frame(b"") + frame(b"x"))
    hint = ("reading 0 bytes of payload returns 0 at once: that is not EOF. Only a read() that "
            "returns 0 when you asked for more than 0 bytes means the peer closed")
    line = next_line(srv, "framesrv prints `received 0 bytes:`", hint=hint)
    expect(line.rstrip() == "received 0 bytes:", expected="framesrv prints `received 0 bytes: `",
           happened=f"it printed `{line}`", hint=hint)
    expect_frame_line(srv, b"x", hint=hint)
    expect_echo(srv, peer, b"")
    expect_echo(srv, peer, b"x")


@contract("framesrv", "a length greater than MAXLEN", "whoever ends it")
@points(2)
def test_framesrv_oversize_length_rejected_promptly(lab):
    """a length above MAXLEN is rejected at once, and the server goes on"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    peer.send(frame(b"", length=65535) + b"x" * 10)
    want = "frame too long: 65535 bytes (max 128)"
    hint = ("check LEN against the buffer size right after reading the header: waiting for 65535 "
            "bytes that never come blocks the server; reading them overflows the buffer")
    line = next_line(srv, f"framesrv prints `{want}` within {PROMPT:g} s", timeout=PROMPT, hint=hint)
    expect(line == want, expected=f"framesrv prints `{want}`", happened=f"it printed `{line}`",
           hint=swap_hint(line, 65535) or hint)
    expect_closed(peer, srv, "framesrv closes that connection")
    srv.expect_line("connection closed", expected="framesrv prints `connection closed` after rejecting a frame",
                    hint="every connection's end prints `connection closed`, whoever ended it: print "
                         "it after close(), on every path out of the connection's loop")
    still_running(srv, "framesrv keeps serving after rejecting a frame",
                  "reject the frame by closing the connection, not by exiting")
    again = lab.connect(port)
    again.send(frame(b"next"))
    expect_frame_line(srv, b"next")
    expect_echo(srv, again, b"next")


@contract("framesrv", "exactly MAXLEN bytes is accepted")
@points(2)
def test_framesrv_frame_of_exactly_maxlen(lab):
    """a frame of exactly MAXLEN bytes fits; MAXLEN + 1 does not"""
    srv, port = start(lab, "framesrv", 16)
    peer = lab.connect(port)
    full = b"0123456789abcdef"
    peer.send(frame(full))
    hint = ("MAXLEN bytes must fit: reject only LEN > MAXLEN, and do not store a '\\0' after a "
            "full buffer (print it with fwrite())")
    expect_frame_line(srv, full, hint=hint)
    expect_echo(srv, peer, full)
    still_running(srv, "framesrv survives a frame of exactly MAXLEN bytes")
    peer.send(frame(full + b"!"))
    want = "frame too long: 17 bytes (max 16)"
    line = next_line(srv, f"framesrv prints `{want}`", hint=hint)
    expect(line == want, expected=f"framesrv prints `{want}`", happened=f"it printed `{line}`",
           hint="17 is one more than MAXLEN 16: it must be rejected")
    expect_closed(peer, srv, "framesrv closes the connection after the oversize frame")


@contract("framesrv", "EOF between frames", "whoever ends it")
@points(2)
def test_framesrv_truncated_frame_then_eof_closes(lab):
    """a frame cut short by EOF is a closed connection, not a message"""
    srv, port = start(lab, "framesrv", 128)
    hint = ("a read() that returns 0 before the frame is complete means the peer closed: "
            "end the connection without printing the partial frame")
    for label, data in (("inside the payload", frame(b"0123456789")[:7]),
                        # three of the four header bytes: they announce a frame of 4096+
                        # bytes, which is no frame at all until its fourth byte comes
                        ("inside the header, one byte short", b"\x00\x10\x00")):
        peer = lab.connect(port)
        peer.send(data)
        peer.shutdown_write()
        line = next_line(srv, f"framesrv prints `connection closed` (frame cut {label})", hint=hint)
        expect(line == "connection closed",
               expected=f"after a frame cut {label} and EOF, framesrv prints `connection closed`",
               happened=f"it printed `{line}`", hint=hint)
        expect_closed(peer, srv, "framesrv closes its side too")
    still_running(srv, "framesrv keeps serving after a truncated frame",
                  "a truncated frame ends that connection, not the server")
    peer = lab.connect(port)
    peer.send(frame(b"whole"))
    expect_frame_line(srv, b"whole")


@contract("framesrv", "writes nothing on stderr")
@points(1)
def test_framesrv_warns_about_nothing_when_all_goes_well(lab):
    """framesrv writes no warning for clients that send whole frames and close between two"""
    warns_about_nothing(lab, "framesrv", 128)


@contract("framesrv", "leaves without reading its echoes")
@points(2)
def test_framesrv_survives_a_client_that_leaves_without_reading(lab):
    """a client that closes before reading its echoes never kills framesrv"""
    survives_a_client_that_leaves(lab, "framesrv", 128)


@contract("framesrv", "MAXLEN is decimal digits only")
@points(1)
def test_framesrv_rejects_an_invalid_maxlen(lab):
    """framesrv refuses a MAXLEN that is not a whole number 1..1048576"""
    for bad in ("12abc", "0", "1048577"):
        rejects_argument(lab, "framesrv", (lab.port(), bad), "MAXLEN", bad)
    start(lab, "framesrv", 1048576)     # the largest is fine


@contract("framesrv", "in one piece")
@needs_netns
@points(1)
def test_framesrv_echo_leaves_in_one_segment(lab):
    """each echoed frame leaves as one TCP segment (writev)"""
    srv, port = start(lab, "framesrv", 128)
    rec = lab.capture()
    peer = lab.connect(port)
    payloads = [b"one", b"two!", b"three"]
    for p in payloads:
        peer.send(frame(p))
        expect_echo(srv, peer, p)
    rec.settle()
    sizes = [s.length for s in rec.tcp(port) if s.sport == port and s.length]
    want = [4 + len(p) for p in payloads]
    expect(sizes == want,
           expected=f"the server's data segments carry {want} bytes: header and payload together",
           happened=f"they carried {sizes} bytes",
           hint="two write()s send the header and the payload as two segments (and with Nagle on, "
                "the second one can wait for an ACK): give both buffers to one writev()",
           packets=lambda: rec.render(port))


# -- linesrv --------------------------------------------------------------------

LINE_HINT = ("keep one buffer per connection: bytes that arrived after the end of a line are the "
             "start of the next line(s) -- hand them out before calling read() again")


def expect_line_out(srv, text, hint=LINE_HINT):
    want = f"line: {text}".strip()
    line = next_line(srv, f"linesrv prints `{shown(want)}`", hint=hint)
    if line != want and line.startswith("line: ") and want.endswith(line[len("line: "):]):
        hint = LINE_HINT    # the start of the line went missing with the previous read
    if not text and line != want:
        hint = "an empty line (a lone \"\\n\" or \"\\r\\n\") is a line too: print `line: ` and echo \"\\n\""
    expect(line in (want, cut_at_nul(want)), expected=f"linesrv prints `{shown(want)}`",
           happened=f"it printed `{shown(line)}`", hint=hint)


def expect_line_echo(srv, peer, text, hint=LINE_HINT):
    want = (text + "\n").encode()
    try:
        got = peer.recv_exactly(len(want), what=f"the echo {want!r}", hint=hint)
    except GradeFailure as e:
        raise explain_crash(e, srv)
    expect(got == want, expected=f"the echo {want!r}", happened=f"got {got!r}",
           hint="echo the line without its terminator, followed by a single \\n")


@contract("linesrv", "listening on PORT")
@points(1)
def test_linesrv_serves_clients_one_after_another(lab):
    """linesrv listens on every address and serves a second client after the first"""
    serves_clients_in_turn(lab, "linesrv", 64)


@contract("linesrv", "arrive in one segment are all handled")
@points(2)
def test_linesrv_pipelined_lines_in_one_write(lab):
    """three lines sent in one write are all received"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    lines = ["alpha", "beta", "gamma"]
    peer.send("".join(l + "\n" for l in lines))
    for l in lines:
        expect_line_out(srv, l)
    for l in lines:
        expect_line_echo(srv, peer, l)


@contract("linesrv", "split over many segments")
@points(1)
def test_linesrv_line_split_across_writes(lab):
    """a line that arrives in pieces is received whole"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    send_slowly(peer, "hello wide world\n", 5, 0.02)
    hint = "no '\\n' yet means the line is not complete: keep the bytes and read() more"
    expect_line_out(srv, "hello wide world", hint=hint)
    expect_line_echo(srv, peer, "hello wide world", hint=hint)


@contract("linesrv", "a line ends at", "an empty one too")
@points(1)
def test_linesrv_crlf_ends_a_line(lab):
    """CRLF and LF both end a line; the terminator is not part of it"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    peer.send("GET / HTTP/1.0\r\nHost: example\r\n\r\nbare\n")
    hint = "a line ends at '\\n'; drop one '\\r' right before it (\"\\r\\n\" is one terminator)"
    for text in ("GET / HTTP/1.0", "Host: example", "", "bare"):
        expect_line_out(srv, text, hint=hint)
    for text in ("GET / HTTP/1.0", "Host: example", "", "bare"):
        expect_line_echo(srv, peer, text, hint=hint)


@contract("linesrv", "anywhere else is ordinary data")
@points(1)
def test_linesrv_lone_cr_is_data(lab):
    """a \\r that is not right before the \\n is part of the line"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    peer.send("a\rb\n\rlead\n")
    hint = ("only '\\n' ends a line (with one '\\r' right before it): a lone '\\r' is an ordinary "
            "byte of the line")
    expect_line_out(srv, "a\rb", hint=hint)
    expect_line_out(srv, "\rlead", hint=hint)
    expect_line_echo(srv, peer, "a\rb", hint=hint)
    expect_line_echo(srv, peer, "\rlead", hint=hint)


@contract("linesrv", "NUL bytes included")
@points(1)
def test_linesrv_line_with_nul_bytes(lab):
    """a line with NUL bytes is echoed whole"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    peer.send(b"nul\0in the\0line\n")
    expect_line_out(srv, "nul\0in the\0line")
    expect_line_echo(srv, peer, "nul\0in the\0line",
                     hint="the line is bytes, not a C string: echo all its bytes (keep its length), "
                          "not strlen() of it")


@contract("linesrv", "up to MAXLINE bytes")
@points(2)
def test_linesrv_line_of_exactly_maxline(lab):
    """a line of exactly MAXLINE bytes fits, with LF or CRLF"""
    srv, port = start(lab, "linesrv", 10)
    peer = lab.connect(port)
    peer.send("0123456789\n9876543210\r\n")
    hint = ("MAXLINE counts the line without its terminator: a 10-byte line needs 10 bytes, plus "
            "2 for \"\\r\\n\" while it is in the connection buffer, plus 1 for a '\\0' when you copy it out")
    expect_line_out(srv, "0123456789", hint=hint)
    expect_line_out(srv, "9876543210", hint=hint)
    expect_line_echo(srv, peer, "0123456789", hint=hint)
    expect_line_echo(srv, peer, "9876543210", hint=hint)
    still_running(srv, "linesrv survives lines of exactly MAXLINE bytes")


@contract("linesrv", "line too long (max MAXLINE)", "the end of every connection")
@points(2)
def test_linesrv_overlong_line_rejected(lab):
    """a line longer than MAXLINE is rejected without overflowing"""
    srv, port = start(lab, "linesrv", 10)
    want = "line too long (max 10)"
    hint = ("check the length before you copy: the buffer holds MAXLINE + 2 bytes, and once it is "
            "full with no '\\n' in it the line is too long -- do not wait for more")
    for label, data in (("01234567890\n", b"01234567890\n"),          # 11 bytes: one too many
                        ("200 bytes and no newline", b"y" * 200)):   # never ends: reject at once
        peer = lab.connect(port)
        peer.send(data)
        line = next_line(srv, f"linesrv prints `{want}` for {label!r} within {PROMPT:g} s",
                         timeout=PROMPT, hint=hint)
        expect(line == want, expected=f"for {label!r}, linesrv prints `{want}`",
               happened=f"it printed `{line}`", hint=hint)
        expect_closed(peer, srv, "linesrv closes that connection")
        srv.expect_line("connection closed", expected="linesrv prints `connection closed` after rejecting a line",
                        hint="every connection's end prints `connection closed`: print it after close(), "
                             "on every path out of the connection's loop")
    still_running(srv, "linesrv keeps serving after an overlong line", "close the connection, do not exit")
    peer = lab.connect(port)
    peer.send("fine\n")
    expect_line_out(srv, "fine")


@contract("linesrv", "EOF closes the connection", "the end of every connection")
@points(1)
def test_linesrv_unterminated_line_then_eof_dropped(lab):
    """an unfinished line cut by EOF is dropped and the connection ends"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    peer.send("whole\npart")
    peer.shutdown_write()
    hint = "read() returning 0 ends the connection; bytes without a '\\n' are not a line"
    expect_line_out(srv, "whole", hint=hint)
    line = next_line(srv, "linesrv prints `connection closed`", hint=hint)
    expect(line == "connection closed", expected="then linesrv prints `connection closed`",
           happened=f"it printed `{line}`", hint=hint)
    expect_line_echo(srv, peer, "whole", hint=hint)
    expect_closed(peer, srv, "linesrv closes its side too")


@contract("linesrv", "writes nothing on stderr")
@points(1)
def test_linesrv_warns_about_nothing_when_all_goes_well(lab):
    """linesrv writes no warning for clients that send whole lines and close after one"""
    warns_about_nothing(lab, "linesrv", 64)


@contract("linesrv", "leaves without reading its echoes")
@points(2)
def test_linesrv_survives_a_client_that_leaves_without_reading(lab):
    """a client that closes before reading its echoes never kills linesrv"""
    survives_a_client_that_leaves(lab, "linesrv", 64)


@contract("linesrv", "MAXLINE is decimal digits only")
@points(1)
def test_linesrv_rejects_an_invalid_maxline(lab):
    """linesrv refuses a MAXLINE that is not a whole number 1..1048576"""
    for bad in ("0", "12abc", "1048577"):
        rejects_argument(lab, "linesrv", (lab.port(), bad), "MAXLINE", bad)
    start(lab, "linesrv", 1048576)      # the largest is fine
