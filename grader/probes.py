"""What the kernel says about sockets: `ss`, as a student would run it.

Inside a test's network namespace `ss` lists only that test's sockets, so a probe
never confuses them with another test's.
"""
import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

_TIMER = re.compile(r"timer:\((\w+),([^,)]*)(?:,(\d+))?\)")


@dataclass
class SocketState:
    proto: str          # "tcp", "udp", "unix"
    state: str          # "LISTEN", "ESTAB", "TIME-WAIT", "UNCONN", ...
    recv_q: int
    send_q: int
    local: str          # "127.0.0.1:8080", "[::1]:8080", "/tmp/x.sock", "@abstract"
    peer: str
    timer: str = ""     # "timewait", "keepalive", "on" (retransmit), ...
    timer_left: str = ""
    inode: int = 0      # the socket's inode: which process holds it is read from /proc
    peer_inode: int = 0  # Unix sockets: the inode of the connected peer, 0 if none

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


_INODE = re.compile(r"\bino:(\d+)")


def sockets(proto="tcp"):
    """All sockets of one protocol in this network namespace.  TCP and UDP from `ss
    -Hanoe`, whose rows hold only numbers (no -p: process names are the programs' own
    text, and a newline in one forges a row); Unix sockets from sock_diag, since their
    names are the programs' text too."""
    if proto == "unix":
        return unix_sockets()
    flag = {"tcp": "-t", "udp": "-u"}[proto]
    out = subprocess.run(["ss", "-H", "-a", "-n", "-o", "-e", flag], capture_output=True,
                         text=True, timeout=5, check=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        st = SocketState(proto, parts[0], int(parts[1]), int(parts[2]), parts[3], parts[4])
        m = _TIMER.search(line)
        if m:
            st.timer, st.timer_left = m.group(1), m.group(2)
        m = _INODE.search(line)
        st.inode = int(m.group(1)) if m else 0
        result.append(st)
    return result


def socket_inodes(pid):
    """The inodes of the sockets process `pid` holds (from /proc/PID/fd); none once it
    is gone."""
    return {int(t[8:-1]) for t in fd_targets(pid).values() if t.startswith("socket:[")}


def fd_targets(pid):
    """{fd: link target} of process `pid`, {} once it is gone.  A program running as
    another uid is read as that uid where the grader may not (a container without
    CAP_SYS_PTRACE): an empty answer there would grade a correct program as holding
    no socket."""
    try:
        return _fd_targets(pid)
    except PermissionError:
        from grader import identity
        if identity.runner() is None:
            return {}
        try:
            return {int(k): v for k, v in identity.read_as_runner(lambda: _fd_targets(pid, strict=False)).items()}
        except PermissionError:
            return {}


def _fd_targets(pid, strict=True):
    out = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except PermissionError:
        if strict:
            raise
        return out
    except OSError:
        return out
    for fd in fds:
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except PermissionError:
            if strict:
                raise
        except OSError:
            continue
    return out


def find(proto="tcp", state=None, local_port=None, peer_port=None, pid=None):
    """Sockets matching every filter given; pid= keeps those that process holds."""
    held = socket_inodes(pid) if pid is not None else None
    return [s for s in sockets(proto)
            if (state is None or s.state == state)
            and (local_port is None or s.local_port == local_port)
            and (peer_port is None or s.peer_port == peer_port)
            and (held is None or s.inode in held)]


# -- Unix sockets, from sock_diag -------------------------------------------------------

UDIAG_SHOW_NAME, UDIAG_SHOW_PEER, UDIAG_SHOW_RQLEN = 0x01, 0x04, 0x10
UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_RQLEN = 0, 2, 4
NLM_F_DUMP, NLMSG_DONE = 0x300, 3
_UNIX_STATES = {1: "ESTAB", 7: "UNCONN", 10: "LISTEN"}
_UNIX_TYPES = {socket.SOCK_STREAM: "u_str", socket.SOCK_DGRAM: "u_dgr", socket.SOCK_SEQPACKET: "u_seq"}


def _unix_name(raw):
    """A Unix socket's name as ss shows it: the path, '@' + an abstract name, or '*'."""
    if not raw:
        return "*"
    if raw[0] == 0:
        return "@" + raw[1:].decode("utf-8", "replace")
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def unix_sockets():
    """Every Unix socket of this network namespace, from the kernel (sock_diag): names
    as raw bytes of known length, never parsed out of text."""
    req = struct.pack("=BBHIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0,
                      UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN, 0) + struct.pack("=I", 0)
    req = req[:24]      # unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
    header = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    out = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.send(header + req)
        done = False
        while not done:
            data = nl.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                    done = True
                    break
                out.append(_unix_record(data[offset + 16:offset + length]))
                offset += (length + 3) & ~3
    return out


def _unix_record(msg):
    family, type_, state, _pad, ino = struct.unpack_from("=BBBBI", msg, 0)
    name, peer, rq, sq = b"", 0, 0, 0
    offset = 16                         # unix_diag_msg is 16 bytes, then attributes
    while offset + 4 <= len(msg):
        alen, atype = struct.unpack_from("=HH", msg, offset)
        if alen < 4:
            break
        body = msg[offset + 4:offset + alen]
        if atype == UNIX_DIAG_NAME:
            name = body
        elif atype == UNIX_DIAG_PEER:
            peer = struct.unpack_from("=I", body)[0]
        elif atype == UNIX_DIAG_RQLEN:
            rq, sq = struct.unpack_from("=II", body)
        offset += (alen + 3) & ~3
    state_name = _UNIX_STATES.get(state, str(state))
    st = SocketState("unix", state_name, rq, sq, _unix_name(name), str(peer) if peer else "*",
                     inode=ino, peer_inode=peer)
    st.kind = _UNIX_TYPES.get(type_, str(type_))
    return st


def render(states):
    if not states:
        return "(no sockets)"
    return "\n".join(str(s) for s in states)


# -- has the program read what the grader sent? ---------------------------------------
#
# A test that sends a message in pieces wants the program to see the pieces in
# separate read()s.  Sleeping between them only makes that likely; waiting until the
# program has read each piece makes it certain.  The kernel shows it: for TCP, ours has
# nothing unacknowledged (SIOCOUTQ) and the program's socket nothing in its receive
# queue -- asked of sock_diag for that one connection, which costs microseconds however
# many sockets the machine has (/proc/net/tcp lists them all: with 10,000 TIME-WAIT
# entries about, reading it took longer than a test's timing allows).  For a Unix stream
# socket the bytes we sent stay charged to our socket (SIOCOUTQ) until the reader
# consumes them.

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
TCP_CLOSE = 7                # tcpi_state of a connection that was reset
_RQUEUE_OFFSET = 16 + 56     # nlmsghdr, then inet_diag_msg's idiag_rqueue


def _outq(sock):
    """Bytes we sent that the other side has not taken (TCP: not acknowledged; Unix:
    not consumed by the reader)."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


def _packed(family, host):
    raw = socket.inet_pton(family, host.split("%", 1)[0])
    return raw + b"\0" * (16 - len(raw))


def _receive_queue(family, local, peer):
    """Bytes waiting unread in the receive queue of the TCP socket bound to `local` and
    connected to `peer` (in this thread's network namespace), or None if there is none."""
    sockid = (struct.pack("!HH", local[1], peer[1]) + _packed(family, local[0])
              + _packed(family, peer[0]) + struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE))
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.send(header + request)
        reply = nl.recv(65536)
    if struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR or len(reply) < _RQUEUE_OFFSET + 4:
        return None     # ENOENT: the program has closed it
    return struct.unpack_from("=I", reply, _RQUEUE_OFFSET)[0]


def unread_count(socks):
    """How many of the grader's connected stream sockets `socks` hold bytes that the
    program at the other end has not read yet (a socket it has closed counts as read)."""
    count = 0
    for s in socks:
        if s.fileno() < 0:
            continue
        tcp = s.family in (socket.AF_INET, socket.AF_INET6)
        if tcp and s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE:
            continue    # reset: what we sent will never be read, and SIOCOUTQ stays stale
        if _outq(s) > 0:
            count += 1
        elif tcp:
            try:
                theirs = _receive_queue(s.family, s.getpeername(), s.getsockname())
            except OSError:
                continue
            count += bool(theirs)
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


def wait_stalled(port, peer_port, timeout=3.0):
    """Wait until the program's socket (local `port`, connected to the grader's `peer_port`)
    holds bytes and stops changing: replies stuck in its send queue because the grader does
    not read (the program has met a full socket: write() said EAGAIN, or blocks), or
    requests stuck in its receive queue because it stopped reading.  Returns (Send-Q,
    Recv-Q) as last seen, or None once the program has closed the socket.  Polled,
    bounded: the kernel has no event for "nothing more moves"."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        socks = find("tcp", local_port=port, peer_port=peer_port)
        if not socks:
            return None
        seen.append((socks[0].send_q, socks[0].recv_q))
        if len(seen) >= 4 and any(seen[-1]) and len(set(seen[-4:])) == 1:
            break
        time.sleep(0.03)
    return seen[-1] if seen else (0, 0)
