"""Small helpers several lessons' graders share: bounded polling, byte orders, byte
comparisons.  Import them from the package: `from grader import poll_until`."""
import struct
import time


def poll_until(probe, timeout, interval=0.01):
    """Call probe() until it returns something truthy or `timeout` seconds pass; returns
    its last value.  For what the kernel gives no event for (a socket's state, a process
    or thread count, a packet seen): bounded, never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def swapped16(value):
    """A 16-bit value with its two bytes swapped: what a program prints or sends when it
    forgets ntohs/htons on a little-endian machine."""
    return struct.unpack("<H", struct.pack(">H", value))[0]


def swapped32(value):
    """The same for 32 bits (ntohl/htonl forgotten)."""
    return struct.unpack("<I", struct.pack(">I", value))[0]


def first_difference(got, want):
    """The index of the first byte where `got` and `want` differ (the shorter one's
    length when one is a prefix of the other), or None when they are equal."""
    if got == want:
        return None
    n = min(len(got), len(want))
    for start in range(0, n, 65536):        # compare in blocks, then find the byte
        if got[start:start + 65536] != want[start:start + 65536]:
            for i in range(start, min(start + 65536, n)):
                if got[i] != want[i]:
                    return i
    return n
