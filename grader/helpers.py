"""Small helpers several lessons' graders share: bounded polling, byte orders, byte
comparisons, argument refusals, a quiet stderr.  Import them from the package: `from grader import poll_until`."""
import re
import selectors
import struct
import time

from grader.failure import expect


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


def push_until_blocked(peer, chunk=b"Slow Reader 0123456789 abcdefghijklmnopqrstuvwxyz\n" * 1300,
                       cap=32 << 20, quiet=0.3, limit=5.0):
    """Send `chunk` again and again from a client that never reads, until the kernel
    takes nothing for `quiet` seconds, `cap` bytes went or `limit` seconds passed; returns
    the bytes sent (all of them shown in the peer's wire transcript).  A server that
    stops reading a client which does not read its replies stalls the sender after a few
    MiB (socket buffers and its own queue); one that reads on regardless never does."""
    sock = peer.sock
    sock.setblocking(False)
    sent = bytearray()
    deadline = time.monotonic() + limit
    try:
        while len(sent) < cap and time.monotonic() < deadline:
            try:
                n = sock.send(chunk[:cap - len(sent)])
                sent += chunk[:n]
                peer.wire.sent(chunk[:n])
            except BlockingIOError:
                with selectors.DefaultSelector() as sel:
                    sel.register(sock, selectors.EVENT_WRITE)
                    if not sel.select(quiet):
                        break
    finally:
        sock.setblocking(True)
    return bytes(sent)


def expect_quiet_stderr(prog, during, hint=None):
    """Stop `prog` and check that it wrote nothing on stderr while `during` (exchanges in
    which no call failed).  The program is ended first, so all it wrote has been read: a
    running program's last line may still be in the pipe.  A warning printed when nothing
    failed is most often an error test that also fires on success (`<= 0` for `< 0`)."""
    prog.kill()
    prog.settle_output()
    text = prog.stderr_text().strip()
    expect(not text, expected=f"nothing on stderr while {during}: no call failed, so there is "
                              "nothing to warn about",
           happened="stderr said: " + text[-300:],
           hint=hint or "warn only when a call has failed: close(), setsockopt() and most calls "
                        "return 0 on success and -1 on failure, so test `< 0` (not `<= 0`); "
                        "a write() that wrote some bytes returns their count")


def rejects_argument(lab, name, args, what, text, or_else=None):
    """The program exits 1 with `invalid WHAT 'TEXT'` on stderr (or a message matching
    the regex or_else), given args."""
    prog = lab.start(name, *args)
    prog.expect_fatal(rf"invalid {what} '{re.escape(text)}'" + (f"|{or_else}" if or_else else ""),
                      expected=f"{name} {' '.join(map(str, args))}: stderr says invalid {what} '{text}'",
                      exit_expected=f"{name} {' '.join(map(str, args))} exits with status 1: "
                                    f"{text!r} is not a valid {what}",
                      exit_hint=f"check {what} as the Contract says before using it, and refuse "
                                f"anything else: `invalid {what} '{text}'` through fatal() (exit 1)",
                      hint="the argument checks are given code: keep them (and their messages)")
