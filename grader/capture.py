"""Packets on the test namespace's loopback, decoded (no tcpdump needed).

    rec = lab.capture()            # the packets from now on (the test's tap runs already)
    ...
    segs = rec.tcp(port=server_port)   # [Segment(...)] in the order they were sent
    rec.flags_sequence(port)           # ["S", "S.", ".", "F.", ...]

The packets come from a grader.tap.Tap (kernel timestamps, no thread); decode() turns
frames from a tap or a pcap file into the same Segments.  Works inside a private network
namespace (CAP_NET_RAW there); elsewhere as real root.  Times are seconds since the
recording began.
"""
import socket
import struct
import time
from collections import namedtuple
from dataclasses import dataclass

from grader.tap import Tap

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# a UDP datagram; payload may be cut short (SNAPLEN), length is the real one
Datagram = namedtuple("Datagram", "time src sport dst dport payload length")
# an ICMP "port unreachable" sent back for the UDP datagram src:sport -> dst:dport
Unreachable = namedtuple("Unreachable", "time src sport dst dport")


@dataclass
class Segment:
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    flags: int
    seq: int
    ack: int
    payload: bytes          # the bytes captured: the first SNAPLEN of the packet at most
    keepalive: bool = False
    length: int = -1        # the real payload length (defaults to len(payload))

    def __post_init__(self):
        if self.length < 0:
            self.length = len(self.payload)

    @property
    def flag_text(self):
        """tcpdump-style flags: 'S', 'S.', '.', 'P.', 'F.', 'R', 'R.'."""
        out = "".join(c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"))
                      if self.flags & bit)
        return out + ("." if self.flags & ACK else "")

    def describe(self):
        extra = f" len {self.length}" if self.length else ""
        ka = " (keep-alive probe)" if self.keepalive else ""
        return f"{self.time * 1000:7.1f} ms  {self.sport} > {self.dport}  [{self.flag_text}]{extra}{ka}"


class Decoder:
    """Ethernet frames -> Segments and Datagrams, in order, keep-alive probes marked."""

    def __init__(self, t0):
        self.t0 = t0                # the moment times are counted from (epoch seconds)
        self.segments = []
        self.datagrams = []
        self.unreachable = []
        self._next_seq = {}         # (src, sport, dst, dport) -> highest seq+len seen

    def feed(self, frame):
        data, t = frame.data, frame.time - self.t0
        if len(data) < 14:
            return
        ethertype = struct.unpack_from("!H", data, 12)[0]
        ip = data[14:]
        if ethertype == 0x0800 and len(ip) >= 20:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack_from("!H", ip, 2)[0]
            proto = ip[9]
            src, dst = socket.inet_ntop(socket.AF_INET, ip[12:16]), socket.inet_ntop(socket.AF_INET, ip[16:20])
            body, body_len = ip[ihl:total], total - ihl
        elif ethertype == 0x86DD and len(ip) >= 40:
            proto = ip[6]
            body_len = struct.unpack_from("!H", ip, 4)[0]
            src, dst = socket.inet_ntop(socket.AF_INET6, ip[8:24]), socket.inet_ntop(socket.AF_INET6, ip[24:40])
            body = ip[40:40 + body_len]
        else:
            return
        if proto == 6 and len(body) >= 20:
            self._tcp(t, src, dst, body, body_len)
        elif proto == 17 and len(body) >= 8:
            sport, dport, udp_len = struct.unpack_from("!HHH", body)
            self.datagrams.append(Datagram(t, src, sport, dst, dport, bytes(body[8:]), udp_len - 8))
        elif (proto, body[:2]) in ((1, b"\x03\x03"), (58, b"\x01\x04")):
            self._unreachable(t, proto, body[8:])

    def _tcp(self, t, src, dst, body, body_len):
        sport, dport, seq, ack, off_flags = struct.unpack_from("!HHIIH", body)
        off = (off_flags >> 12) * 4
        flags = off_flags & 0x3F
        length = max(0, body_len - off)
        key = (src, sport, dst, dport)
        nxt = self._next_seq.get(key)
        # a keep-alive probe re-sends the byte before snd_nxt (0 or 1 byte, ACK only)
        ka = (nxt is not None and flags == ACK and length <= 1 and (seq + 1) & 0xFFFFFFFF == nxt)
        end = (seq + length + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        if nxt is None or ((end - nxt) & 0xFFFFFFFF) < 0x80000000:
            self._next_seq[key] = end
        self.segments.append(Segment(t, src, sport, dst, dport, flags, seq, ack,
                                     bytes(body[off:off + length]), ka, length))


    def _unreachable(self, t, proto, quoted):
        """ICMP (v4 type 3 code 3, v6 type 1 code 4) quotes the datagram it refuses."""
        family, header = (socket.AF_INET, (quoted[0] & 0x0F) * 4) if proto == 1 else (socket.AF_INET6, 40)
        size = 4 if family == socket.AF_INET else 16
        at = 12 if family == socket.AF_INET else 8
        if len(quoted) < header + 4 or (quoted[9] if proto == 1 else quoted[6]) != 17:
            return
        src = socket.inet_ntop(family, quoted[at:at + size])
        dst = socket.inet_ntop(family, quoted[at + size:at + 2 * size])
        sport, dport = struct.unpack_from("!HH", quoted, header)
        self.unreachable.append(Unreachable(t, src, sport, dst, dport))


def decode(frames, t0):
    """Decode pcap.Frames (a tap's, or a pcap file's) counting time from t0."""
    dec = Decoder(t0)
    for f in frames:
        dec.feed(f)
    return dec


def render(segs, limit=20):
    lines = [s.describe() for s in segs[:limit]]
    if len(segs) > limit:
        lines.append(f"… {len(segs) - limit} more")
    return "\n".join(lines) or "(no TCP segments captured)"


class _Segments:
    """What a test asks of recorded TCP segments (`self.segments`)."""

    def tcp(self, port=None):
        return [s for s in self.segments if port is None or port in (s.sport, s.dport)]

    def flags_sequence(self, port=None):
        return [s.flag_text for s in self.tcp(port)]

    def render(self, port=None, limit=20):
        return render(self.tcp(port), limit)


class Recorder(_Segments):
    """A tap and its decoded packets, brought up to date whenever they are asked for."""

    def __init__(self, tap=None):
        self.started = time.monotonic()
        self.t0 = time.time()
        self.tap = tap or Tap()
        self._dec = Decoder(self.t0)
        self._fed = 0               # frames decoded so far
        self._changed = 0           # the first frame that changed since the last decoding

    def poll(self):
        """Take the kernel's packets without decoding them (yet)."""
        self._changed = min(self._changed, self.tap.poll())

    def _update(self):
        self.poll()
        first, self._changed = self._changed, len(self.tap.frames)
        if first < self._fed:       # an older frame arrived late: decode again from scratch
            self._dec, self._fed = Decoder(self.t0), 0
        for frame in self.tap.frames[self._fed:]:
            self._dec.feed(frame)
        self._fed = len(self.tap.frames)
        return self._dec

    @property
    def segments(self):
        return list(self._update().segments)

    @property
    def udp(self):
        return list(self._update().datagrams)

    @property
    def unreachable(self):
        return list(self._update().unreachable)

    def now(self):
        """The recorder's clock: seconds since it started."""
        return time.time() - self.t0

    def stop(self):
        self.tap.close()

    def settle(self, quiet=0.05, timeout=1.0):
        """Wait until no new packet arrived for `quiet` s (bounded by timeout)."""
        deadline = time.monotonic() + timeout
        count = -1
        while time.monotonic() < deadline:
            dec = self._update()
            n = len(dec.segments) + len(dec.datagrams)
            if n == count:
                return
            count = n
            time.sleep(quiet)  # the kernel has no event for "nothing more comes"; bounded


class View(_Segments):
    """A recorder's packets from one moment on: what lab.capture() returns while the
    test's own recorder runs (so a test sees just the traffic it started recording)."""

    def __init__(self, recorder):
        self.recorder = recorder
        self.since = recorder.now()

    def now(self):
        """The recorder's clock (the packets' times are on it)."""
        return self.recorder.now()

    @property
    def segments(self):
        return [s for s in self.recorder.segments if s.time >= self.since]

    @property
    def udp(self):
        return [d for d in self.recorder.udp if d.time >= self.since]

    def stop(self):
        pass                    # the test's recorder stops at teardown

    def settle(self, quiet=0.05, timeout=1.0):
        self.recorder.settle(quiet, timeout)
