"""The classic pcap file format: what tcpdump -r and Wireshark open.

    pcap.write(path, frames)     frames: Frame(time, data, length), time in seconds
                                 since the epoch, data the captured bytes (maybe cut
                                 short), length the packet's real length
    pcap.read(path)              -> [Frame]

Link type Ethernet: an AF_PACKET socket on Linux's loopback delivers each packet
behind a 14-byte Ethernet header with zero addresses, which is what we keep.
Microsecond timestamps (magic a1b2c3d4), the format every tool reads.
"""
import os
import struct
from collections import namedtuple

Frame = namedtuple("Frame", "time data length")

MAGIC = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D          # nanosecond variant: read, never written
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144               # the header's promise; frames we keep are shorter
_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


def write(path, frames, snaplen=SNAPLEN):
    """Write frames (in time order) as a pcap file; returns the number of bytes written."""
    out = [_HEADER.pack(MAGIC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)]
    for f in frames:
        usec_total = round(f.time * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        data = bytes(f.data[:snaplen])
        out.append(_RECORD.pack(sec, usec, len(data), max(f.length, len(data))))
        out.append(data)
    blob = b"".join(out)
    overwrite(path, blob)
    return len(blob)


def overwrite(path, data):
    """Write data over a file in place, then cut it to length.  The cheap way on ext4:
    truncating to 0 (O_TRUNC), replacing by rename, or unlinking each make it flush or
    discard the old blocks there and then -- 1 to 4 ms a file, every test."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def read(path):
    """The frames of a pcap file (either byte order, micro- or nanosecond stamps)."""
    with open(path, "rb") as fh:
        blob = fh.read()
    if len(blob) < _HEADER.size:
        raise ValueError(f"{path}: too short for a pcap file")
    for order in "<>":
        magic = struct.unpack_from(order + "I", blob)[0]
        if magic in (MAGIC, MAGIC_NS):
            break
    else:
        raise ValueError(f"{path}: not a pcap file (magic {blob[:4].hex()})")
    scale = 1e-9 if magic == MAGIC_NS else 1e-6
    linktype = struct.unpack_from(order + "I", blob, 20)[0]
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
    record = struct.Struct(order + "IIII")
    frames, at = [], _HEADER.size
    while at + record.size <= len(blob):
        sec, frac, incl, orig = record.unpack_from(blob, at)
        at += record.size
        frames.append(Frame(sec + frac * scale, blob[at:at + incl], orig))
        at += incl
    return frames
