"""Grader for chapter 08 -- framing: length prefixes and CRLF lines.

Each test is one behaviour from the README's contract; the docstring's first line is
what the board shows.  The programs run as AddressSanitizer builds (see
grader/sanitized.py), so a write one byte past a buffer stops the program and the
report names the line.
"""
import struct

import pytest

from grader import GradeFailure, expect, needs_netns, points, sanitizer_report, swapped32, use_sanitized_programs

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
                "data leave no room for a '\\0' -- print a frame with \"%.*s\", and count the "
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


# -- framesrv -------------------------------------------------------------------

FRAME_HINT = ("one read() returns whatever has arrived so far -- a piece of a frame, or several "
              "frames: keep reading until you have the 4 header bytes, then exactly LEN payload bytes")


def expect_frame_line(srv, payload, hint=FRAME_HINT):
    text = payload.decode()
    want = f"received {len(payload)} bytes: {text}".strip()
    line = next_line(srv, f"framesrv prints `{want}`", hint=hint)
    hint = swap_hint(line, len(payload)) or hint
    expect(line == want, expected=f"framesrv prints `{want}`", happened=f"it printed `{line}`", hint=hint)


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


@points(2)
def test_framesrv_frame_sent_one_byte_at_a_time(lab):
    """a frame sent one byte at a time is received whole"""
    srv, port = start(lab, "framesrv", 128)
    peer = lab.connect(port)
    payload = b"hello, frames"
    send_slowly(peer, frame(payload), 1, 0.004)
    expect_frame_line(srv, payload)
    expect_echo(srv, peer, payload)


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


@points(2)
def test_framesrv_length_in_network_byte_order(lab):
    """the length is read with ntohl and the echo written with htonl"""
    srv, port = start(lab, "framesrv", 1024)
    peer = lab.connect(port)
    peer.send(frame(b"hello"))
    expect_frame_line(srv, b"hello", hint="the header 00 00 00 05 means 5 in network byte order (big-endian): "
                      "ntohl() turns it into the number 5 on this machine")
    expect_echo(srv, peer, b"hello")


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
    srv.expect_line("connection closed", expected="framesrv prints `connection closed`")
    still_running(srv, "framesrv keeps serving after rejecting a frame",
                  "reject the frame by closing the connection, not by exiting")
    again = lab.connect(port)
    again.send(frame(b"next"))
    expect_frame_line(srv, b"next")
    expect_echo(srv, again, b"next")


@points(2)
def test_framesrv_frame_of_exactly_maxlen(lab):
    """a frame of exactly MAXLEN bytes fits; MAXLEN + 1 does not"""
    srv, port = start(lab, "framesrv", 16)
    peer = lab.connect(port)
    full = b"0123456789abcdef"
    peer.send(frame(full))
    hint = ("MAXLEN bytes must fit: reject only LEN > MAXLEN, and do not store a '\\0' after a "
            "full buffer (print it with \"%.*s\")")
    expect_frame_line(srv, full, hint=hint)
    expect_echo(srv, peer, full)
    still_running(srv, "framesrv survives a frame of exactly MAXLEN bytes")
    peer.send(frame(full + b"!"))
    want = "frame too long: 17 bytes (max 16)"
    line = next_line(srv, f"framesrv prints `{want}`", hint=hint)
    expect(line == want, expected=f"framesrv prints `{want}`", happened=f"it printed `{line}`",
           hint="17 is one more than MAXLEN 16: it must be rejected")
    expect_closed(peer, srv, "framesrv closes the connection after the oversize frame")


@points(2)
def test_framesrv_truncated_frame_then_eof_closes(lab):
    """a frame cut short by EOF is a closed connection, not a message"""
    srv, port = start(lab, "framesrv", 128)
    hint = ("a read() that returns 0 before the frame is complete means the peer closed: "
            "end the connection without printing the partial frame")
    for label, data in (("inside the payload", frame(b"0123456789")[:7]),
                        ("inside the header", b"\x00\x00")):
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
    line = next_line(srv, f"linesrv prints `{want}`", hint=hint)
    if line != want and line.startswith("line: ") and want.endswith(line[len("line: "):]):
        hint = LINE_HINT    # the start of the line went missing with the previous read
    expect(line == want, expected=f"linesrv prints `{want}`", happened=f"it printed `{line}`", hint=hint)


def expect_line_echo(srv, peer, text, hint=LINE_HINT):
    want = (text + "\n").encode()
    try:
        got = peer.recv_exactly(len(want), what=f"the echo {want!r}", hint=hint)
    except GradeFailure as e:
        raise explain_crash(e, srv)
    expect(got == want, expected=f"the echo {want!r}", happened=f"got {got!r}",
           hint="echo the line without its terminator, followed by a single \\n")


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


@points(1)
def test_linesrv_line_split_across_writes(lab):
    """a line that arrives in pieces is received whole"""
    srv, port = start(lab, "linesrv", 64)
    peer = lab.connect(port)
    send_slowly(peer, "hello wide world\n", 5, 0.02)
    hint = "no '\\n' yet means the line is not complete: keep the bytes and read() more"
    expect_line_out(srv, "hello wide world", hint=hint)
    expect_line_echo(srv, peer, "hello wide world", hint=hint)


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
        srv.expect_line("connection closed", expected="linesrv prints `connection closed`")
    still_running(srv, "linesrv keeps serving after an overlong line", "close the connection, do not exit")
    peer = lab.connect(port)
    peer.send("fine\n")
    expect_line_out(srv, "fine")


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
