"""The grader's own sockets.  They never take a port whose two bytes are equal (0x9898 = 39064):
it reads the same byte-swapped, so a program that forgot htons()/ntohs() would reach it,
or print it, and pass.  Checked in a network namespace whose kernel has only such a port
and one more to give."""
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from grader import peers
from grader.host import path_with_sbin

REPO = Path(__file__).resolve().parent.parent
SAME, NEXT = 0x9898, 0x9899

PROBE = """
import socket
from grader import peers
listener = peers.tcp_listener()
print(listener.sock.getsockname()[1])
listener.sock.close()
udp = peers.udp_socket()
print(udp.sock.getsockname()[1])
udp.sock.close()
print(peers.free_port())
with socket.socket() as server:                 # a connect needs someone to connect to
    server.bind(("127.0.0.1", 5000))
    server.listen()
    client = peers.tcp_connect(5000)
    print(client.local_port())
"""


def test_grader_sockets_avoid_ports_that_read_the_same_swapped():
    env = dict(os.environ, PATH=path_with_sbin())
    unshare = ["unshare", "-rn"] if os.geteuid() else ["unshare", "-n"]
    if not shutil.which("unshare") or subprocess.run([*unshare, "true"], capture_output=True).returncode:
        pytest.skip("needs a private network namespace (unshare -rn)")
    script = (f'ip link set lo up && echo "{SAME} {NEXT}" > /proc/sys/net/ipv4/ip_local_port_range '
              f'&& exec "{sys.executable}" -c "$0"')
    done = subprocess.run([*unshare, "sh", "-c", script, PROBE], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(NEXT)] * 4, done.stdout


@pytest.mark.parametrize("type_", [socket.SOCK_STREAM, socket.SOCK_DGRAM], ids=["tcp", "udp"])
def test_a_closed_port_refuses_and_stays_taken(type_):
    """closed_port: the program under test is refused (a connected UDP socket hears the
    ICMP port unreachable), and while the grader holds it no other socket binds the port
    -- the race a shared loopback (no network namespaces) lost to another test's server."""
    holder, port = peers.closed_port(type_)
    with holder, socket.socket(socket.AF_INET, type_) as client, socket.socket(socket.AF_INET, type_) as other:
        client.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))
            client.send(b"x")
            client.recv(1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for host in ("0.0.0.0", "127.0.0.1"):
            with pytest.raises(OSError):
                other.bind((host, port))
