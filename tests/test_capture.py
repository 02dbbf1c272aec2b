"""The tap under every test: packets in order from its two kernel queues, bounded, and
what a test's View of it sees.  Each case runs in a thread of its own that enters a
fresh network namespace (where `unshare` works: as root, or under ./lab test)."""
import socket
import threading

import pytest

from grader import capture, isolation, tap


def in_fresh_namespace(fn):
    out = {}

    def run():
        if not isolation.enter_fresh_netns():
            out["skip"] = isolation.netns_unavailable_reason()
            return
        try:
            out["value"] = fn()
        except BaseException as e:      # handed to the test's thread
            out["error"] = e
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "skip" in out:
        pytest.skip(out["skip"])
    if "error" in out:
        raise out["error"]
    return out["value"]


def conversation(sends=1, size=10):
    """A connection with `sends` writes each way, then a normal close."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    conn, _ = server.accept()
    for s in (client, conn):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(sends):
        client.sendall(b"x" * size)
        conn.recv(65536)
    client.close()
    conn.recv(1)
    conn.close()
    return server.getsockname()[1]


def test_control_and_data_packets_come_back_in_the_order_they_were_sent():
    def scene():
        rec = capture.Recorder()
        port = conversation()
        rec.settle()
        flags = rec.flags_sequence(port)
        rec.stop()
        return flags
    assert in_fresh_namespace(scene) == ["S", "S.", ".", "P.", ".", "F.", "F.", "."]


def test_the_tap_is_bounded_and_says_where_packets_are_missing():
    def scene():
        t = tap.Tap(max_frames=6)
        rec = capture.Recorder(t)
        port = conversation(sends=20)
        rec.settle()
        segs, gaps = rec.tcp(port), list(t.gaps)
        rec.stop()
        return segs, gaps
    segs, gaps = in_fresh_namespace(scene)
    assert sum(1 for s in segs if not s.flags & (capture.SYN | capture.FIN | capture.RST)) == 6
    assert [s.flag_text for s in segs if s.flags & capture.FIN] == ["F.", "F."]   # kept
    assert any("capture limit" in g.why for g in gaps)


def test_a_view_sees_only_what_came_after_it():
    def scene():
        rec = capture.Recorder()
        first = conversation()
        view = capture.View(rec)
        second = conversation()
        view.settle()
        return view.tcp(first), view.flags_sequence(second)
    before, after = in_fresh_namespace(scene)
    assert before == [] and after[:3] == ["S", "S.", "."]
