"""What the kernel says about sockets: `ss`, as a student would run it.

Inside a test's network namespace `ss` lists only that test's sockets, so a probe
never confuses them with another test's.
"""
import fcntl
import re
import shutil
import socket
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

_TIMER = re.compile(r"timer:\((\w+),([^,)]*)(?:,(\d+))?\)")
_PIDS = re.compile(r"pid=(\d+)")


@dataclass
class SocketState:
    proto: str          # "tcp", "udp", "unix"
    state: str          # "LISTEN", "ESTAB", "TIME-WAIT", "UNCONN", ...
    recv_q: int
    send_q: int
    local: str          # "127.0.0.1:8080", "[::1]:8080", "/tmp/x.sock"
    peer: str
    timer: str = ""     # "timewait", "keepalive", "on" (retransmit), ...
    timer_left: str = ""
    pids: tuple = ()    # processes holding the socket (ss -p)

    @property
    def local_port(self):
        return _port_of(self.local)

    @property
    def peer_port(self):
        return _port_of(self.peer)

    @property
    def local_host(self):
        return self.local.rsplit(":", 1)[0].strip("[]")

    def __str__(self):
        timer = f" timer:({self.timer},{self.timer_left})" if self.timer else ""
        return (f"{self.state:<10} {self.recv_q:>6} {self.send_q:>6}  "
                f"{self.local:<22} {self.peer}{timer}")


def _port_of(addr):
    tail = addr.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def ss_available():
    return shutil.which("ss") is not None


def sockets(proto="tcp"):
    """All sockets of one protocol in this network namespace (`ss -Hano`)."""
    flag = {"tcp": "-t", "udp": "-u", "unix": "-x"}[proto]
    out = subprocess.run(["ss", "-H", "-a", "-n", "-o", "-p", flag], capture_output=True,
                         text=True, timeout=5, check=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.split()
        if proto == "unix":
            # Netid-less form for -x: State Recv-Q Send-Q Local Port Peer Port
            if len(parts) < 7:
                continue
            if parts[0] in ("u_str", "u_dgr", "u_seq"):
                parts = parts[1:]
            state, rq, sq, local, peer = parts[0], parts[1], parts[2], parts[3], parts[5]
            result.append(SocketState(proto, state, int(rq), int(sq), local, peer,
                                      pids=tuple(int(p) for p in _PIDS.findall(line))))
            continue
        if len(parts) < 5:
            continue
        st = SocketState(proto, parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4],
                         pids=tuple(int(p) for p in _PIDS.findall(line)))
        m = _TIMER.search(line)
        if m:
            st.timer, st.timer_left = m.group(1), m.group(2)
        result.append(st)
    return result


def find(proto="tcp", state=None, local_port=None, peer_port=None, pid=None):
    """Sockets matching every filter given; pid= keeps those a process holds (ss -p)."""
    return [s for s in sockets(proto)
            if (state is None or s.state == state)
            and (local_port is None or s.local_port == local_port)
            and (peer_port is None or s.peer_port == peer_port)
            and (pid is None or pid in s.pids)]


def render(states):
    if not states:
        return "(no sockets)"
    return "\n".join(str(s) for s in states)


# -- has the program read what the grader sent? ---------------------------------------
#
# A test that sends a message in pieces wants the program to see the pieces in
# separate read()s.  Sleeping between them only makes that likely; waiting until the
# program has read each piece makes it certain.  The kernel shows it: for TCP, the
# program's socket has nothing left in its receive queue (/proc/net/tcp rx_queue) and
# ours nothing unacknowledged; for a Unix stream socket, the bytes we sent stay charged
# to our socket (SIOCOUTQ) until the reader consumes them.

def _tcp_queues():
    """{(local_port, remote_port): (tx_queue, rx_queue)} in this thread's namespace."""
    queues = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/thread-self/net/{name}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    key = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
                    tx, rx = (int(x, 16) for x in fields[4].split(":"))
                    old = queues.get(key, (0, 0))
                    queues[key] = (max(tx, old[0]), max(rx, old[1]))
        except (FileNotFoundError, StopIteration):
            pass
    return queues


def _unix_outq(sock):
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


def unread_count(socks):
    """How many of the grader's connected stream sockets `socks` hold bytes that the
    program at the other end has not read yet (sockets we cannot see count as read)."""
    queues = None
    count = 0
    for s in socks:
        if s.fileno() < 0:
            continue
        if s.family == socket.AF_UNIX:
            count += _unix_outq(s) > 0
            continue
        if queues is None:
            queues = _tcp_queues()
        try:
            mine, theirs = s.getsockname()[1], s.getpeername()[1]
        except OSError:
            continue
        unacked = queues.get((mine, theirs), (0, 0))[0]
        unread = queues.get((theirs, mine), (0, 0))[1]
        count += unacked + unread > 0
    return count


def wait_read(socks, timeout):
    """Wait until the program has read everything sent on `socks`; False on timeout.
    Polls the kernel's counters (there is no event for "the other process read it")."""
    socks = list(socks)
    deadline = time.monotonic() + timeout
    while unread_count(socks):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
    return True
