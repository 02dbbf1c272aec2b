"""A packet recorder on the test namespace's loopback (AF_PACKET, no tcpdump needed).

    rec = lab.capture()            # start before the traffic you care about
    ...
    segs = rec.tcp(port=server_port)   # [Segment(...)] in the order they were sent
    rec.flags_sequence(port)           # ["S", "SA", "A", "FA", ...]

Works inside a private network namespace (CAP_NET_RAW there); elsewhere as real
root.  On loopback each packet passes twice (out and in); we keep the outgoing copy.
"""
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


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
    payload: bytes
    keepalive: bool = False

    @property
    def flag_text(self):
        """tcpdump-style flags: 'S', 'S.', '.', 'P.', 'F.', 'R', 'R.'."""
        out = "".join(c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"))
                      if self.flags & bit)
        return out + ("." if self.flags & ACK else "")

    def describe(self):
        extra = f" len {len(self.payload)}" if self.payload else ""
        ka = " (keep-alive probe)" if self.keepalive else ""
        return f"{self.time * 1000:7.1f} ms  {self.sport} > {self.dport}  [{self.flag_text}]{extra}{ka}"


class Recorder:
    def __init__(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.started = time.monotonic()
        self.segments = []
        self.udp = []
        self._stop = False
        self._lock = threading.Lock()
        self._next_seq = {}   # (src, sport, dst, dport) -> highest seq+len seen
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            try:
                frame, addr = self.sock.recvfrom(65600)
            except OSError:
                return
            if addr[2] != PACKET_OUTGOING:
                continue
            self._parse(frame, time.monotonic() - self.started)

    def _parse(self, frame, t):
        ethertype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        if ethertype == 0x0800:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            proto = ip[9]
            src, dst = socket.inet_ntop(socket.AF_INET, ip[12:16]), socket.inet_ntop(socket.AF_INET, ip[16:20])
            body = ip[ihl:total]
        elif ethertype == 0x86DD:
            proto = ip[6]
            plen = struct.unpack("!H", ip[4:6])[0]
            src, dst = socket.inet_ntop(socket.AF_INET6, ip[8:24]), socket.inet_ntop(socket.AF_INET6, ip[24:40])
            body = ip[40:40 + plen]
        else:
            return
        if proto == 6 and len(body) >= 20:
            sport, dport, seq, ack, off_flags = struct.unpack("!HHIIH", body[:14])
            off = (off_flags >> 12) * 4
            flags = off_flags & 0x3F
            payload = bytes(body[off:])
            key = (src, sport, dst, dport)
            with self._lock:
                nxt = self._next_seq.get(key)
                # a keep-alive probe re-sends the byte before snd_nxt (0 or 1 byte, ACK only)
                ka = (nxt is not None and flags == ACK and len(payload) <= 1
                      and (seq + 1) & 0xFFFFFFFF == nxt)
                end = (seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
                if nxt is None or ((end - nxt) & 0xFFFFFFFF) < 0x80000000:
                    self._next_seq[key] = end
                self.segments.append(Segment(t, src, sport, dst, dport, flags, seq, ack, payload, ka))
        elif proto == 17 and len(body) >= 8:
            sport, dport = struct.unpack("!HH", body[:4])
            with self._lock:
                self.udp.append((t, src, sport, dst, dport, bytes(body[8:])))

    def stop(self):
        self._stop = True
        self._thread.join(timeout=1)
        self.sock.close()

    def settle(self, quiet=0.05, timeout=1.0):
        """Wait until no new packet arrived for `quiet` s (bounded by timeout)."""
        deadline = time.monotonic() + timeout
        count = -1
        while time.monotonic() < deadline:
            with self._lock:
                n = len(self.segments) + len(self.udp)
            if n == count:
                return
            count = n
            time.sleep(quiet)  # polling the recorder's own buffer; bounded

    def tcp(self, port=None):
        with self._lock:
            segs = list(self.segments)
        return [s for s in segs if port is None or port in (s.sport, s.dport)]

    def flags_sequence(self, port=None):
        return [s.flag_text for s in self.tcp(port)]

    def render(self, port=None, limit=20):
        segs = self.tcp(port)
        lines = [s.describe() for s in segs[:limit]]
        if len(segs) > limit:
            lines.append(f"… {len(segs) - limit} more")
        return "\n".join(lines) or "(no TCP segments captured)"
