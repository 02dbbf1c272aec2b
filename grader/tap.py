"""A packet tap on the test namespace's loopback that costs nothing while the test runs.

    tap = Tap()            # from now on the kernel keeps every packet sent on lo
    ...
    tap.poll()             # move what the kernel kept into tap.frames (time order)
    tap.frames, tap.gaps   # pcap.Frame(time, data, length); Gap(time, count, why)
    tap.close()

No thread reads packets as they pass: the kernel stamps each one with the time it was
sent, cuts it to SNAPLEN bytes and queues it on an AF_PACKET socket, and Python reads
the queue only when someone asks (a test polling for a keep-alive probe, a failure
report, the pcap written at teardown).  The stamp is taken at send time only while the
kernel's packet timestamping is switched on -- a system-wide switch that the first
socket asking for timestamps turns on a moment later -- so a socket of ours asks once
per process and keeps it on, and each Tap checks that it is on before it starts.
Closing an AF_PACKET socket waits for an RCU grace period (10-20 ms here): a Tap closes
its sockets in the background, each on a thread of its own.  A classic BPF filter in the kernel keeps only outgoing
packets (on loopback each one passes twice), and splits them over two sockets:

    control   TCP segments carrying SYN, FIN or RST: what opens and ends connections
    data      everything else (data and pure ACKs, UDP, ...)

Both are bounded.  A queue that fills before it is read drops packets (the kernel counts
them: a gap, drawn where it happened); once MAX_FRAMES of a kind are kept, that socket
is closed and the kernel stops copying for it.  A test that moves megabytes therefore
keeps its first thousands of data packets and still every SYN, FIN and RST.
"""
import _thread
import bisect
import ctypes
import select
import socket
import struct
import time
from collections import namedtuple

from grader.pcap import Frame

Gap = namedtuple("Gap", "time count why")

SNAPLEN = 256                  # Ethernet + IP + TCP headers and the first ~150 payload bytes
MAX_FRAMES = 8000              # per socket: at most ~2 MiB each kept in memory and in the pcap
RCVBUF = 4 << 20               # the kernel queue between two polls (SO_RCVBUFFORCE)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
ANCILLARY = 256                # room for a timespec and a tpacket_auxdata

# classic BPF (linux/filter.h)
LD_W_ABS, LD_H_ABS, LD_B_ABS, LD_B_IND, LDX_B_MSH = 0x20, 0x28, 0x30, 0x50, 0xB1
JEQ, JSET, RET = 0x15, 0x45, 0x06
SKF_AD_PKTTYPE = -0x1000 + 4   # "load the packet type" (PACKET_OUTGOING, ...)
TCP_CONTROL = 0x07             # FIN | SYN | RST


def _program(control):
    """The filter of one socket: outgoing packets, TCP control segments or the rest."""
    ctl, rest = ("keep", "drop") if control else ("drop", "keep")
    return [
        (LD_W_ABS, SKF_AD_PKTTYPE), (JEQ, PACKET_OUTGOING, None, "drop"),
        (LD_H_ABS, 12), (JEQ, 0x0800, "ipv4", None), (JEQ, 0x86DD, "ipv6", rest),
        "ipv4",
        (LD_B_ABS, 23), (JEQ, 6, None, rest),                 # protocol TCP?
        (LD_H_ABS, 20), (JSET, 0x1FFF, rest, None),           # a later fragment: no TCP header
        (LDX_B_MSH, 14), (LD_B_IND, 14 + 13),                 # flags byte after the IP header
        (JSET, TCP_CONTROL, ctl, rest),
        "ipv6",
        (LD_B_ABS, 20), (JEQ, 6, None, rest),                 # next header TCP (no extensions)
        (LD_B_ABS, 14 + 40 + 13), (JSET, TCP_CONTROL, ctl, rest),
        "keep", (RET, SNAPLEN),
        "drop", (RET, 0),
    ]


def _fprog(program):
    """The struct sock_fprog for SO_ATTACH_FILTER, and the buffer it points into (keep
    it alive until the setsockopt returns)."""
    code, count = assemble(program)
    buf = ctypes.create_string_buffer(code, len(code))
    return struct.pack("HL", count, ctypes.addressof(buf)), buf


def assemble(program):
    """[(code, k[, jt, jf]) or "label"] -> (struct sock_filter[] bytes, count).
    Jump targets are labels (forward only, as BPF wants) or None for "the next one"."""
    labels, code = {}, []
    for line in program:
        if isinstance(line, str):
            labels[line] = len(code)
        else:
            code.append(line)
    out = []
    for i, (op, k, *jumps) in enumerate(code):
        jt, jf = (jumps + [None, None])[:2]
        rel = [0 if target is None else labels[target] - i - 1 for target in (jt, jf)]
        out.append(struct.pack("HBBI", op, rel[0], rel[1], k & 0xFFFFFFFF))
    return b"".join(out), len(code)


_stamps = {"holder": None, "on": False}


def _timestamps_on(timeout=0.5):
    """Switch the kernel's packet timestamps on for as long as this process lives, and
    wait (bounded) until they are: a datagram to ourselves is then stamped on arrival,
    before we ask for it, rather than when we read it."""
    if _stamps["on"]:
        return True
    if _stamps["holder"] is None:
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _stamps["holder"] = holder
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        probe.bind(("127.0.0.1", 0))
        while time.monotonic() < deadline:
            probe.sendto(b"?", probe.getsockname())        # loopback: it arrives right away
            select.select([probe], [], [], 0.1)
            asked = time.time()
            _, ancillary, _, _ = probe.recvmsg(1, ANCILLARY)
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack_from("qq", value)
                    if sec + nsec * 1e-9 < asked:          # stamped on arrival: on
                        _stamps["on"] = True
                        return True
            time.sleep(0.002)       # the switch flips in a kernel worker; bounded poll
    return False                    # the times will be when we read, not when sent


def _open(control):
    # protocol 0 until bind(): nothing is queued before the filter is in place
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    fprog, _buf = _fprog(_program(control))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except PermissionError:     # no CAP_NET_ADMIN here: as much as net.core.rmem_max allows
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind(("lo", ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Tap:
    def __init__(self, max_frames=MAX_FRAMES):
        _timestamps_on()
        self.max_frames = max_frames
        self.frames = []            # pcap.Frame, in time order
        self.gaps = []              # Gap: packets the kernel dropped, or the limit reached
        self._socks = {"control": _open(True), "data": _open(False)}
        self._kept = {"control": 0, "data": 0}

    def poll(self):
        """Take what the kernel queued into self.frames; returns the index of the first
        frame that changed (len(frames) when nothing did) -- usually the old length, but
        a frame of one socket may be older than the last one taken from the other."""
        new = []
        for kind, sock in list(self._socks.items()):
            batch = _drain(sock, self.max_frames - self._kept[kind])
            self._kept[kind] += len(batch)
            new += batch
            dropped = _dropped(sock)
            if dropped:
                at = batch[-1].time if batch else time.time()
                self.gaps.append(Gap(at, dropped, "the capture queue was full"))
            if self._kept[kind] >= self.max_frames:
                self.gaps.append(Gap(batch[-1].time if batch else time.time(), None,
                                     f"capture limit: later {kind} packets not kept"))
                del self._socks[kind]
                _close_later(sock)
        if not new:
            return len(self.frames)
        new.sort(key=lambda f: f.time)
        if not self.frames or new[0].time >= self.frames[-1].time:
            first = len(self.frames)
            self.frames += new
        else:
            first = bisect.bisect_right([f.time for f in self.frames], new[0].time)
            self.frames = sorted(self.frames + new, key=lambda f: f.time)
        return first

    def close(self):
        """Stop capturing; the sockets close in the background (see above)."""
        for sock in self._socks.values():
            _close_later(sock)
        self._socks = {}


def _close_later(sock):
    """Close an AF_PACKET socket on a thread of its own, not waited for: each close waits
    for an RCU grace period (10-20 ms here), and closes on separate threads share one --
    twenty in a row took 290 ms, twenty at once 22 ms.  With no thread to be had (a fork
    bomb holds every task the sandbox allows), here and now."""
    try:
        _thread.start_new_thread(_close, (sock,))
    except RuntimeError:
        _close(sock)


def _close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, _DROP_ALL)   # no more copies
    finally:
        sock.close()


_DROP_ALL_PROGRAM = _fprog([(RET, 0)])
_DROP_ALL = _DROP_ALL_PROGRAM[0]


def _drain(sock, room):
    frames = []
    while len(frames) < room:
        try:
            data, ancillary, _, _ = sock.recvmsg(SNAPLEN, ANCILLARY)
        except (BlockingIOError, InterruptedError):
            break
        stamp, length = None, len(data)
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack_from("qq", value)
                stamp = sec + nsec * 1e-9
            elif level == SOL_PACKET and kind == PACKET_AUXDATA:
                length = struct.unpack_from("I", value, 4)[0]     # tp_len: before the cut
        frames.append(Frame(stamp if stamp is not None else time.time(), data, length))
    return frames


def _dropped(sock):
    """Packets the kernel dropped on this socket since the last call (the counters reset)."""
    return struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
