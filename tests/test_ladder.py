"""Ladder diagrams of known conversations, line by line; pcap files; the README diagrams.

The conversations are crafted as Ethernet frames (so the decoder is tested too) or are
captures kept in tests/data/wire/ (recorded by `./lab diagrams --keep tests/data/wire`
from the reference programs): a handshake, a FIN close, an RST close, and a keep-alive
probe sent again because the first was not answered.
"""
import shutil
import socket
import struct
from pathlib import Path

import pytest

from conftest import tcpdump_read
from grader import capture, diagrams, feedback_md, ladder, pcap, results, wire
from grader.capture import ACK, FIN, PSH, RST, SYN
from grader.states import Change

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "wire"
G, P = ("127.0.0.1", 41000), ("127.0.0.1", 5000)      # the grader's socket, the program's
T0 = 1000.0


def frame(t, src, dst, flags, seq, ack, payload=b""):
    """An outgoing IPv4 TCP packet on loopback, as the tap delivers it."""
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0])) + tcp
    return pcap.Frame(T0 + t, bytes(12) + b"\x08\x00" + ip, 14 + len(ip))


def draw(frames, changes=(), unicode=True, **kw):
    decoded = capture.decode(frames, T0)
    w = ladder.Wire(segments=decoded.segments, grader={G}, program="server", changes=list(changes))
    [conversation] = ladder.conversations(w)
    return ladder.to_text(conversation, width=66, unicode=unicode, **kw)


HANDSHAKE = [frame(0.0001, G, P, SYN, 1000, 0), frame(0.0002, P, G, SYN | ACK, 7000, 1001),
             frame(0.0003, G, P, ACK, 1001, 7001)]
HEADER = "     ms grader 127.0.0.1:41000               server 127.0.0.1:5000"


def test_a_handshake():
    assert draw(HANDSHAKE).splitlines() == [
        HEADER,
        "    0.1 │────────────────────── SYN seq 0 ──────────────────────▶│",
        "    0.2 │◀───────────────── SYN-ACK seq 0 ack 1 ─────────────────│",
        "    0.3 │─────────────────── ACK seq 1 ack 1 ───────────────────▶│",
    ]


FIN_CLOSE = HANDSHAKE + [
    frame(0.001, G, P, PSH | ACK, 1001, 7001, b"3\n"), frame(0.0011, P, G, ACK, 7001, 1003),
    frame(0.002, P, G, PSH | ACK, 7001, 1003, b"abc"), frame(0.0021, G, P, ACK, 1003, 7004),
    frame(0.0022, P, G, FIN | ACK, 7004, 1003), frame(0.0400, G, P, ACK, 1003, 7005),
    frame(0.0500, G, P, FIN | ACK, 1003, 7005), frame(0.0501, P, G, ACK, 7005, 1004)]
FIN_STATES = [Change(0.0005, G, P, "ESTAB"), Change(0.0005, P, G, "ESTAB"),
              Change(0.045, G, P, "CLOSE-WAIT"), Change(0.045, P, G, "FIN-WAIT-2"),
              Change(0.06, G, P, None), Change(0.06, P, G, "TIME-WAIT")]


def test_a_fin_close_with_the_states_beside_it():
    assert draw(FIN_CLOSE, FIN_STATES).splitlines() == [
        HEADER,
        "    0.1 │────────────────────── SYN seq 0 ──────────────────────▶│",
        "    0.2 │◀───────────────── SYN-ACK seq 0 ack 1 ─────────────────│",
        "    0.3 │─────────────────── ACK seq 1 ack 1 ───────────────────▶│",
        "    0.5 │ [ESTAB]                                        [ESTAB] │",
        "    1.0 │────────────── PSH-ACK seq 1 ack 1 len 2 ──────────────▶│",
        "        │                         '3\\n'                          │",
        "    1.1 │◀─────────────────── ACK seq 1 ack 3 ───────────────────│",
        "    2.0 │◀────────────── PSH-ACK seq 1 ack 3 len 3 ──────────────│",
        "        │                         'abc'                          │",
        "    2.1 │─────────────────── ACK seq 3 ack 4 ───────────────────▶│",
        "    2.2 │◀───────────────── FIN-ACK seq 4 ack 3 ─────────────────│",
        "   40.0 │─────────────────── ACK seq 3 ack 5 ───────────────────▶│",
        "   45.0 │ [CLOSE-WAIT]                              [FIN-WAIT-2] │",
        "   50.0 │───────────────── FIN-ACK seq 3 ack 5 ─────────────────▶│",
        "   50.1 │◀─────────────────── ACK seq 5 ack 4 ───────────────────│",
        "   60.0 │ [CLOSED]                                   [TIME-WAIT] │",
    ]


def test_an_rst_close_in_ascii():
    frames = HANDSHAKE + [frame(0.001, G, P, PSH | ACK, 1001, 7001, b"data1\n"),
                          frame(0.0011, P, G, ACK, 7001, 1007), frame(0.002, P, G, RST | ACK, 7001, 1007)]
    assert draw(frames, unicode=False).splitlines() == [
        HEADER,
        "    0.1 |---------------------- SYN seq 0 ---------------------->|",
        "    0.2 |<----------------- SYN-ACK seq 0 ack 1 -----------------|",
        "    0.3 |------------------- ACK seq 1 ack 1 ------------------->|",
        "    1.0 |-------------- PSH-ACK seq 1 ack 1 len 6 -------------->|",
        "        |                       'data1\\n'                        |",
        "    1.1 |<------------------- ACK seq 1 ack 7 -------------------|",
        "    2.0 |<================= RST-ACK seq 1 ack 7 =================|",
    ]


def test_a_keepalive_probe_sent_again_when_unanswered():
    # probes carry the sequence number before snd_nxt; the first is answered, then none
    frames = HANDSHAKE + [frame(1.0003, P, G, ACK, 7000, 1001), frame(1.0004, G, P, ACK, 1001, 7001),
                          frame(2.0004, P, G, ACK, 7000, 1001), frame(3.0004, P, G, ACK, 7000, 1001),
                          frame(4.0004, P, G, RST | ACK, 7001, 1001)]
    assert draw(frames).splitlines()[4:] == [
        " 1000.3 │◀────────── ACK seq 0 ack 1 keep-alive probe ───────────│",
        " 1000.4 │─────────────────── ACK seq 1 ack 1 ───────────────────▶│",
        " 2000.4 │◀────────── ACK seq 0 ack 1 keep-alive probe ───────────│",
        " 3000.4 │◀────── ACK seq 0 ack 1 keep-alive probe retry 1 ───────│",
        " 4000.4 │◀═════════════════ RST-ACK seq 1 ack 1 ═════════════════│",
    ]


def test_a_long_conversation_is_elided_in_the_middle_with_a_count():
    lines = draw(FIN_CLOSE, FIN_STATES, max_rows=6).splitlines()
    assert lines[3] == "        │             ⋮ 7 more segments not shown ⋮              │"
    assert lines[1].endswith("SYN seq 0 ──────────────────────▶│")
    assert lines[-1] == "   60.0 │ [CLOSED]                                   [TIME-WAIT] │"


def test_every_line_fits_the_width_asked_for():
    long_payload = [frame(0.001, G, P, PSH | ACK, 1001, 7001, b"x" * 300)]
    for width in (50, 66, 100):
        for unicode in (True, False):
            decoded = capture.decode(HANDSHAKE + long_payload, T0)
            w = ladder.Wire(segments=decoded.segments, grader={("0.0.0.0", 41000)}, program="a-long-program-name")
            text = ladder.to_text(ladder.conversations(w)[0], width=width, unicode=unicode)
            assert max(len(line) for line in text.splitlines()) <= width, text
            assert unicode or text.isascii()


def test_udp_datagrams_and_unix_transcripts_are_drawn_the_same_way():
    udp = ladder.Wire(datagrams=[capture.Datagram(0.001, *G, *P, b"ping", 4),
                                 capture.Datagram(0.002, *P, *G, b"pong", 4)], grader={G})
    [lad] = ladder.conversations(udp)
    assert [(r.rightward, r.label, r.detail) for r in lad.rows] == [
        (True, "UDP len 4", "'ping'"), (False, "UDP len 4", "'pong'")]
    unix = ladder.Wire(transcripts=[ladder.Transcript("unix /tmp/s", [
        (0.1, "→", b"hello\n"), (0.2, "←", b"Hi, hello\n"), (0.3, "←", "FIN")])])
    text = ladder.to_text(ladder.conversations(unix)[0], width=66)
    assert text.splitlines()[0].endswith("program")
    assert text.splitlines()[-1] == "  300.0 │◀───────────────────────── FIN ─────────────────────────│"
    assert "─ 6 bytes ─" in text and "'Hi, hello\\n'" in text


def test_a_datagram_to_a_closed_port_and_its_icmp_refusal():
    def ip(proto, src, dst, body):
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0,
                           socket.inet_aton(src[0]), socket.inet_aton(dst[0])) + body
    udp = struct.pack("!HHHH", P[1], G[1], 8 + 2, 0) + b"g1"
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + ip(17, P, G, udp)
    frames = [pcap.Frame(T0 + t, bytes(12) + b"\x08\x00" + packet, 14 + len(packet))
              for t, packet in ((0.001, ip(17, P, G, udp)), (0.0011, ip(1, G, P, icmp)))]
    decoded = capture.decode(frames, T0)
    w = ladder.Wire(datagrams=decoded.datagrams, unreachable=decoded.unreachable, program="udpclient")
    assert ladder.to_text(ladder.conversations(w)[0], width=66).splitlines() == [
        "     ms udpclient 127.0.0.1:5000              peer 127.0.0.1:41000",
        "    1.0 │────────────────────── UDP len 2 ──────────────────────▶│",
        "        │                          'g1'                          │",
        "    1.1 │◀════════════════ ICMP port unreachable ════════════════│",
    ]


# -- captures kept as files -------------------------------------------------------------

def test_a_recorded_rst_close_reads_back_from_its_pcap():
    w, record = wire.load(DATA / "rst-on-close.wire.json")
    [lad] = ladder.conversations(w)
    assert ladder.to_text(lad, width=66).splitlines() == [
        "     ms grader 127.0.0.1:5000          graceclient 127.0.0.1:51434",
        "   12.4 │◀────────────────────── SYN seq 0 ──────────────────────│",
        "   12.4 │───────────────── SYN-ACK seq 0 ack 1 ─────────────────▶│",
        "   12.4 │◀─────────────────── ACK seq 1 ack 1 ───────────────────│",
        "   12.8 │ [ESTAB]                                        [ESTAB] │",
        "   13.0 │◀────────────── PSH-ACK seq 1 ack 1 len 6 ──────────────│",
        "        │                       'data1\\n'                        │",
        "   13.0 │─────────────────── ACK seq 1 ack 7 ───────────────────▶│",
        "   13.0 │───────────── PSH-ACK seq 1 ack 7 len 10 ──────────────▶│",
        "        │                     'Hi, data1\\n'                      │",
        "   13.1 │◀────────────────── ACK seq 7 ack 11 ───────────────────│",
        "   13.1 │              a `close` line: close(), the reply unread │",
        "   13.1 │◀════════════════ RST-ACK seq 7 ack 11 ═════════════════│",
        "   15.9 │ [CLOSED]                                      [CLOSED] │",
    ]


def test_pcap_files_round_trip_and_tcpdump_reads_them(tmp_path):
    frames = pcap.read(DATA / "keepalive.pcap")
    copy = tmp_path / "copy.pcap"
    pcap.write(copy, frames)
    assert copy.read_bytes() == (DATA / "keepalive.pcap").read_bytes()
    if not shutil.which("tcpdump"):
        pytest.skip("tcpdump is not installed (tools/packages.txt lists it)")
    out = tcpdump_read(DATA / "keepalive.pcap")
    assert out.returncode == 0, out.stderr
    flags = [line.split("Flags [", 1)[1].split("]", 1)[0] for line in out.stdout.splitlines()]
    assert flags == ["S", "S.", ".", ".", ".", ".", ".", "R."], out.stdout


# -- the lessons' generated diagrams, and Gradescope -------------------------------------

@pytest.mark.parametrize("readme", diagrams.readmes(), ids=lambda p: p.parent.name)
def test_readme_diagrams_are_well_formed(readme):
    """Every marked block names a scene and holds a drawn ladder that fits 80 columns
    (that it matches a fresh capture: test_report.py)."""
    for name, body in diagrams.blocks(readme.read_text()):
        assert name in diagrams.SCENES, f"{readme}: no scene '{name}'"
        assert body and body.splitlines()[0].startswith("     ms "), f"{readme}: '{name}' is not drawn"
        assert max(map(len, body.splitlines())) <= 80
        assert [f for f in diagrams.facts(body) if f[0] != "states"], f"{readme}: '{name}' has no arrows"


def test_a_failure_goes_to_gradescope_as_markdown_with_the_diagram_fenced():
    sections = [("expected", "EOF (a FIN) <within> 1 s"), ("happened", "a reset (RST)"),
                ("ladder", draw(FIN_CLOSE)), ("hint", "shutdown(fd, SHUT_WR) sends FIN")]
    result = {"outcome": "failed", "points": 3, "title": "t", "lesson": "06-shutdown", "text": "x",
              "sections": sections}
    [test] = results.gradescope_results({"n": result}, 1.0)["tests"]
    assert test["output_format"] == "md"
    md = test["output"]
    assert "**expected** EOF (a FIN) \\<within\\> 1 s" in md
    assert "**ladder**\n\n```text\n" + draw(FIN_CLOSE) + "\n```" in md
    assert feedback_md.gradescope_output({"outcome": "passed", "measured": "2x"}) == ("measured: 2x", "text")

