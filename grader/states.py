"""TCP socket states as the grader saw them, sampled through sock_diag all test long.

    sampler = Sampler(connections, t0)   # in the test's network namespace
    ...
    sampler.stop()
    sampler.changes      # [Change(time, local, peer, state)]: state None once it is gone

`connections()` names the connections to follow: the grader's own TCP connections, as
(local, remote, socket) with local and remote (ip, port) pairs.  For each, one thread
asks the kernel for the state of both ends -- the grader's socket through TCP_INFO while
it is open, the other end (or a closed one of ours: FIN-WAIT, TIME-WAIT) through one
sock_diag lookup, tens of microseconds, where a dump of every socket (what `ss` does)
walks the machine's whole connection table and takes milliseconds -- and keeps only the
changes: ESTAB, FIN-WAIT-2, CLOSE-WAIT, TIME-WAIT, ... as they come and go.  It asks
every 5 ms after a change, slowing to every 50 ms while nothing changes, and slower
still when samples get slow (thousands of sockets): sampling costs a few per cent of a
core at most.  A state shorter than a sample (SYN-SENT on loopback) is not seen: these
are the states the grader saw.
"""
import socket
import struct
import threading
import time
from collections import namedtuple

Change = namedtuple("Change", "time local peer state")   # local/peer: (ip, port)

INTERVAL = 0.005             # seconds between samples, at least: just after a change
SLOWEST = 0.05               # ... at most, once nothing has changed for a while
MAX_CONNECTIONS = 64         # connections followed per test; later ones are not
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
ALL_STATES = 0xFFFFFFFF
NO_COOKIE = 0xFFFFFFFF

# tcp_states.h, named as `ss` prints them
NAMES = {1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2",
         6: "TIME-WAIT", 7: "CLOSED", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN",
         11: "CLOSING", 12: "SYN-RECV"}


def _packed(family, ip):
    raw = socket.inet_pton(family, ip)
    return raw + bytes(16 - len(raw))


def own_state(sock):
    """The state of a socket we hold, or None once it is closed (any thread)."""
    try:
        return NAMES.get(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0])
    except OSError:
        return None


def lookup(nl, local, peer):
    """The state of the TCP socket bound to `local` and connected to `peer`, or None."""
    family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
    sockid = (struct.pack("!HH", local[1], peer[1]) + _packed(family, local[0])
              + _packed(family, peer[0]) + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE))
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, ALL_STATES) + sockid
    nl.send(struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
            + request)
    reply = nl.recv(65536)
    if len(reply) < 24 or struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR:
        return None             # ENOENT: no such socket (any more)
    if struct.unpack_from("!H", reply, 22)[0] != peer[1]:
        return None             # the kernel fell back to the listener on that port
    return NAMES.get(reply[17], str(reply[17]))


class Sampler:
    def __init__(self, connections, t0=None, interval=INTERVAL):
        """interval None: only the samples asked for (sample()); else one every interval or
        so (see tick), taken by the process's sampling thread (one thread, started once: starting one per
        test would cost the test a scheduler round trip)."""
        self.connections = connections
        self.t0 = time.monotonic() if t0 is None else t0
        self.changes = []
        self._last = {}                 # (local, peer) -> state last seen
        self._followed = []             # connections followed (bounded, in order seen)
        self._over = set()              # ... of which both ends are gone
        # the netlink socket belongs to the namespace of the thread that opens it: ours
        self._nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        self._lock = threading.Lock()
        self.pace, self.due, self._fresh = interval, time.monotonic(), False
        if interval:
            _ticker.add(self)

    def tick(self, now):
        """The sampling thread's call: a sample if one is due.  Sockets change state around
        events, so the pace doubles while nothing changes (up to SLOWEST) and is back to
        INTERVAL after a change; and a slow sample (thousands of sockets) slows it too."""
        if now >= self.due:
            took = self.sample()
            self.pace = INTERVAL if self._fresh else min(self.pace * 2, SLOWEST)
            self._fresh = False
            self.due = now + max(self.pace, 20 * took)                # at most ~5 % of a core

    def sample(self):
        """Take one sample now (from any thread); returns how long it took."""
        with self._lock:
            if self._nl.fileno() < 0:
                return 0.0
            start = time.monotonic()
            for conn in self.connections():
                if conn not in self._followed and len(self._followed) < MAX_CONNECTIONS:
                    self._followed.append(conn)
            t = start - self.t0
            try:
                for local, peer, sock in self._followed:
                    if (local, peer) in self._over:
                        continue
                    mine = own_state(sock) if sock and sock.fileno() >= 0 else None
                    if mine in (None, "CLOSED"):        # or its TIME-WAIT entry lives on
                        mine = lookup(self._nl, local, peer) or mine
                    theirs = lookup(self._nl, peer, local)
                    self._record(t, (local, peer), mine)
                    self._record(t, (peer, local), theirs)
                    if mine is None and theirs is None:
                        self._over.add((local, peer))   # both ends gone: nothing more to see
            except OSError:
                pass
            return time.monotonic() - start

    def _record(self, t, key, state):
        if self._last.get(key) != state:
            self.changes.append(Change(t, key[0], key[1], state))
            self._last[key] = state
            self._fresh = True

    def stop(self):
        """One last sample, then no more."""
        _ticker.discard(self)
        self.sample()
        with self._lock:
            self._nl.close()


class _Ticker:
    """The one thread that takes every running Sampler's periodic samples."""

    def __init__(self):
        self.samplers = set()
        self.lock = threading.Lock()
        self.thread = None

    def add(self, sampler):
        with self.lock:
            self.samplers.add(sampler)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="socklab-states", daemon=True)
                self.thread.start()

    def discard(self, sampler):
        with self.lock:
            self.samplers.discard(sampler)

    def _run(self):
        while True:
            with self.lock:
                running = list(self.samplers)
            now = time.monotonic()
            for sampler in running:
                sampler.tick(now)
            # until the next sample is due: a sampling period, not a wait for anything
            due = min([s.due for s in running] + [now + SLOWEST])
            time.sleep(min(max(due - time.monotonic(), INTERVAL / 5), SLOWEST))


_ticker = _Ticker()
