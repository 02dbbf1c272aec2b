"""Grader for chapter 10 -- the reactor: an event-loop library, tested through two
small servers built on it (echo and linesrv).

Each test is one behaviour of the README's contract; the docstring's first line is
what the board shows.  The servers print `listening on PORT` once every loop runs,
`open N loop K tid T` from the thread that owns connection N, `close N` when it is
closed and (linesrv) `drained N` when its output buffer empties.
"""
import re
import signal
import socket
import time

import pytest

from grader import (GradeFailure, contract, expect, expect_asleep, first_difference, points, poll_until,
                    proc_stat, push_until_blocked, sanitizer_report, skip, use_sanitized_programs)
from grader import probes

TIMEOUT = 2.0
PROMPT = 0.5        # a reply on an idle server: no timeout-driven polling may hide in it
OPEN = re.compile(r"open (\d+) loop (\d+) tid (\d+)")
CLOSE = re.compile(r"close (\d+)")
EOF_LINE = re.compile(r"eof (\d+)")


def start(lab, program, threads=0, backend="epoll"):
    port = lab.port()
    prog = lab.start(program, port, threads, backend)
    prog.expect_line(rf"listening on {port}", timeout=TIMEOUT,
                     hint="print `listening on PORT` once the listening socket and every loop are ready")
    return prog, port


def lines_matching(prog, rx):
    return [m for m in (rx.fullmatch(text.strip()) for _, text, _ in list(prog.stdout_lines)) if m]


def wait_lines(prog, rx, count, timeout=TIMEOUT, expected=None, hint=None):
    """Wait until `count` stdout lines match rx (anywhere in the output); return them."""
    deadline = time.monotonic() + timeout
    with prog.cond:
        while True:
            found = lines_matching(prog, rx)
            left = deadline - time.monotonic()
            if len(found) >= count or left <= 0 or not prog.running():
                break
            prog.cond.wait(min(left, 0.05))
    found = lines_matching(prog, rx)
    if len(found) < count:
        raise GradeFailure(
            expected=expected or f"{count} lines like `{rx.pattern}` within {timeout:g} s",
            happened=(f"{len(found)} such lines" if prog.running()
                      else f"{prog.name} {prog.status()} after {len(found)} such lines"),
            hint=hint)
    return found


def pattern(n):
    """The `big N` reply body: byte i is 'a' + i % 26."""
    alphabet = bytes(range(ord("a"), ord("z") + 1))
    return (alphabet * (n // 26 + 1))[:n]


def slow_reader(lab, port):
    """A client with a tiny receive buffer: the server's output must queue up."""
    return lab.connect(port, rcvbuf=4096)


# -- the single reactor ----------------------------------------------------------

@pytest.mark.parametrize("backend", ["epoll", "poll"])
@points(3)
@contract("echo", "THREADS: number of sub-loops", "listens on 0.0.0.0:PORT", "for each accepted connection N",
          "echoes every byte back")
def test_echo_serves_many_clients_on_one_loop(lab, backend):
    """echo with 0 threads: 40 interleaved clients, each gets exactly its own bytes back"""
    prog, port = start(lab, "echo", 0, backend)
    clients = [lab.connect(port) for _ in range(40)]
    payloads = [(f"client {i:02d} says " * 150).encode()[: 1000 + 37 * i] for i in range(40)]
    for part in range(3):
        for c, data in zip(clients, payloads):
            third = len(data) // 3 + 1
            c.send(data[part * third:(part + 1) * third])
    for i, (c, data) in enumerate(zip(clients, payloads)):
        got = c.recv_exactly(len(data), timeout=TIMEOUT,
                             what=f"client {i} gets its {len(data)} bytes back",
                             hint="each connection has its own input/output buffers; a read of one "
                                  "socket must never be answered on another")
        expect(got == data, expected=f"client {i} gets back exactly the bytes it sent",
               happened=f"the bytes differ from offset {first_difference(got, data)} on",
               hint="echo what was read on this connection, in order, nothing else")
    opens = wait_lines(prog, OPEN, 40)
    wrong = [m.group(0) for m in opens if m.group(2) != "0" or int(m.group(3)) != prog.pid]
    expect(not wrong, expected=f"with THREADS=0 every connection is opened on loop 0 by the main "
                               f"thread (tid {prog.pid})",
           happened="these lines say otherwise: " + "; ".join(wrong[:4]),
           hint="with no sub-loops the acceptor hands every connection to the main loop itself")


@pytest.mark.parametrize("backend", ["epoll", "poll"])
@points(3)
@contract("echo", "for each accepted connection N")
def test_first_message_after_hand_off_answered_at_once(lab, backend):
    """THREADS=2: a new connection's first line is answered at once (the sub-loop was woken up)"""
    prog, port = start(lab, "echo", 2, backend)
    for i in range(8):
        c = lab.connect(port)
        t0 = time.monotonic()
        c.send(f"hello {i}\n")
        try:
            line = c.recv_line(timeout=PROMPT)
        except GradeFailure:
            raise GradeFailure(
                expected=f"connection {i + 1}: `hello {i}` echoed within {PROMPT:g} s",
                happened=f"no echo within {PROMPT:g} s ({c.state()}); the server printed "
                         f"{len(lines_matching(prog, OPEN))} open lines for {i + 1} connections",
                hint="the sub-loop sleeps in poll/epoll_wait: after queueing the new connection for "
                     "it, write to its eventfd so the wait returns and the queue is processed "
                     "(a 1 s poll timeout only hides a lost wakeup)")
        expect(line == f"hello {i}", expected=f"the echo `hello {i}`", happened=f"{line!r}")
        expect(time.monotonic() - t0 < PROMPT, expected="an echo at once",
               happened=f"it took {time.monotonic() - t0:.2f} s")


@points(2)
@contract("linesrv", "requests are lines ending")
def test_lines_split_across_segments_and_pipelined(lab):
    """linesrv: a line sent byte by byte is reassembled; three commands in one write all answered"""
    prog, port = start(lab, "linesrv", 1)
    c = lab.connect(port)
    c.send(b"echo hello\n", pieces=1, delay=0.005)
    line = c.recv_line(timeout=TIMEOUT, what="`hello` once the whole line has arrived",
                       hint="keep a partial line in the connection's input buffer until its newline "
                            "comes; consume only whole lines")
    expect(line == "hello", expected="the reply `hello`", happened=f"the reply {line!r}")
    c.send(b"echo a\necho b\r\nwhere\n")
    got = [c.recv_line(timeout=TIMEOUT, what="three replies to three pipelined commands",
                       hint="one read can carry several lines: loop over every complete line in "
                            "the input buffer before returning to the loop") for _ in range(3)]
    expect(got[:2] == ["a", "b"] and re.fullmatch(r"loop 1 tid \d+", got[2]),
           expected="`a`, `b`, `loop 1 tid T` in that order", happened=f"{got}")


@points(1)
@contract("linesrv", "a longer line gets")
def test_line_of_4096_bytes_served_longer_refused(lab):
    """a 4096-byte line is answered; a longer one gets `error: line too long` and a FIN"""
    prog, port = start(lab, "linesrv", 0)
    c = lab.connect(port)
    text = "x" * (4096 - len("echo "))
    c.send(f"echo {text}\n")
    line = c.recv_line(timeout=TIMEOUT, what="the reply to a line of exactly 4096 bytes",
                       hint="lines of up to 4096 bytes (without the newline) are allowed")
    expect(line == text, expected=f"the {len(text)} x's back", happened=f"{len(line)} bytes")
    c.send(f"echo {text}y\n")
    line = c.recv_line(timeout=TIMEOUT, what="the reply to a line of 4097 bytes")
    expect(line == "error: line too long", expected="`error: line too long`", happened=f"{line[:60]!r}")
    expect(c.wait_close(TIMEOUT) == "eof", expected="a FIN after `error: line too long`",
           happened=c.state(), hint="linesrv (given) ends the connection with rx_conn_shutdown")


@points(2)
@contract("linesrv", "timers fire in the order")
def test_timers_fire_in_order_without_blocking_the_loop(lab):
    """linesrv: `after MS TEXT` replies after MS ms; earlier timers first, equal ones in order; the loop keeps serving"""
    prog, port = start(lab, "linesrv", 0)
    c = lab.connect(port)
    t0 = time.monotonic()
    # the three `after 60` land in the same millisecond (one read, one callback): same due time
    c.send(b"after 300 late\nafter 60 early\nafter 60 early2\nafter 60 early3\necho now\n")
    want = ["now", "early", "early2", "early3", "late"]
    got = []
    for _ in want:
        got.append((c.recv_line(timeout=TIMEOUT, what="five replies: now, early, early2, early3, late",
                                hint="a timer is an entry the loop checks after each wait; the wait's "
                                     "timeout is the time left until the earliest timer"),
                    time.monotonic() - t0))
    texts = [t for t, _ in got]
    expect(texts == want, expected="replies in the order " + ", ".join(want),
           happened=f"{texts}",
           hint="keep timers sorted by due time, a new one after those due at the same time (a "
                "stable insert: `<=` while walking the list), and never sleep inside a callback")
    now, early, late = (round(got[i][1], 3) for i in (0, 1, 4))
    expect(now < 0.2 and 0.05 <= early < 0.3 and 0.28 <= late < 0.8,
           expected="`now` at once, `early` after ~60 ms, `late` after ~300 ms",
           happened=f"they came after {now} s, {early} s and {late} s",
           hint="compute the poll/epoll timeout from the earliest timer (monotonic clock, in ms)")


@points(2)
@contract("linesrv", "`cancel`: the TEXT")
def test_cancelled_timers_never_fire(lab):
    """linesrv: `cancel` stops the pending `after` timers (`cancelled 2`); a later one still fires"""
    prog, port = start(lab, "linesrv", 1)
    c = lab.connect(port)
    t0 = time.monotonic()
    c.send(b"after 150 one\nafter 250 two\ncancel\nafter 60 three\necho now\n")
    hint = ("rx_timer_cancel finds the timer by its id in the loop's list, unlinks it and finishes "
            "it (its `done` runs: linesrv's takes it off the connection's list); -1 only when no "
            "such timer is pending")
    got = [c.recv_line(timeout=TIMEOUT, what="`cancelled 2`, `now`, then `three` ~60 ms later", hint=hint)
           for _ in range(3)]
    expect(got == ["cancelled 2", "now", "three"],
           expected="`cancelled 2` (two timers were pending), `now`, then `three` from the timer "
                    "started after the cancel",
           happened=f"the replies {got}", hint=hint)
    quiet = c.expect_silence(max(0.0, t0 + 0.45 - time.monotonic()))     # past both due times
    expect(quiet, expected="nothing from the cancelled timers (due after 150 and 250 ms)",
           happened=f"then {c.state() if c.eof or c.error else repr(bytes(c.buffer)[:40])}",
           hint="a cancelled timer must leave the loop's list: rx_timer_cancel unlinks it")
    c.send(b"cancel\necho still\n")
    got = [c.recv_line(timeout=TIMEOUT, what="`cancelled 0` and `still`") for _ in range(2)]
    expect(got == ["cancelled 0", "still"], expected="`cancelled 0` (no timer pending), then `still`",
           happened=f"the replies {got}", hint=hint)


@points(2)
@contract("linesrv", "after the client's FIN")
def test_half_closed_client_still_gets_its_timer_replies(lab):
    """linesrv: `after 1000 late`, then the client's FIN: `eof N`, `late` a second later, then FIN"""
    prog, port = start(lab, "linesrv", 1)
    c = lab.connect(port)
    t0 = time.monotonic()
    c.send(b"after 1000 late\necho now\n")
    c.shutdown_write()
    line = c.recv_line(timeout=TIMEOUT, what="`now` at once, before the client's FIN counts")
    expect(line == "now", expected="`now`", happened=f"{line!r}")
    on_eof = ("on read() == 0 the library calls the application's on_eof when it gives one "
              "(linesrv's prints `eof N` and waits for its timers); rx_conn_shutdown is only the "
              "default, for on_eof == NULL")
    wait_lines(prog, EOF_LINE, 1, expected="`eof 1` once the client's FIN arrived", hint=on_eof)
    if time.monotonic() - t0 + 0.3 > 0.8:
        skip("too-slow", "this machine is too slow for this check right now (the idle window "
                         "would reach the timer's due time)")
    expect_asleep(prog, "while the half-closed connection waits for its timer",
                  hint="after read() returned 0, drop read interest (update_interest with peer_eof "
                       "set): a socket at end of stream is readable forever, so the level-triggered "
                       "wait returns at once, again and again")
    try:
        got = c.recv_all_until_eof(timeout=TIMEOUT)
    except GradeFailure as e:
        e.hint = ("once the last pending reply is sent linesrv calls rx_conn_shutdown: the FIN goes "
                  "out when the queue is empty, and with the peer's FIN already read the library "
                  "closes the connection (settle)")
        raise
    late = time.monotonic() - t0
    expect(got == b"late\n", expected="`late` (the pending timer's reply), then EOF",
           happened=f"{got!r}, then EOF" + ("" if got else ": the connection ended at the client's FIN"),
           hint=on_eof)
    expect(late >= 0.95, expected="`late` 1 s after the command", happened=f"after {late:.2f} s")
    closes = wait_lines(prog, CLOSE, 1, expected="`close 1` after the FIN")
    eofs = lines_matching(prog, EOF_LINE)
    expect(len(eofs) == 1 and len(closes) == 1, expected="`eof 1` and `close 1`, once each",
           happened=f"{len(eofs)} eof lines, {len(closes)} close lines",
           hint="the end of stream is reported once: return early when peer_eof is already set")


@points(2)
@contract("echo", "idle, it uses no CPU")
@contract("linesrv", "the same arguments")
def test_idle_connections_cost_no_cpu(lab):
    """30 idle connections and a timer due in a minute: the server sleeps in poll/epoll (no busy loop)"""
    prog, port = start(lab, "linesrv", 2)
    clients = [lab.connect(port) for _ in range(30)]
    for c in clients:
        c.send(b"echo x\n")
    for c in clients:
        c.recv_line(timeout=TIMEOUT)
    expect_asleep(prog, "with 30 idle connections",
                hint="wait with timeout -1 when no timer is pending; register write interest only "
                     "while output is queued (an idle socket is always writable); and read the "
                     "wakeup eventfd each time it fires (left unread it stays readable)")
    clients[0].send(b"after 60000 much later\necho x\n")
    clients[0].recv_line(timeout=TIMEOUT)
    expect_asleep(prog, "with a timer due in a minute",
                hint="the wait's timeout is the time left until the earliest timer (in ms, rounded "
                     "up): a timeout of 0 while a timer is pending, or one that never shrinks, spins")


@points(1)
@contract("linesrv", "waiting for a timer never spins")
def test_timers_due_every_millisecond_cost_little_cpu(lab):
    """linesrv: 500 timers due 1 ms apart: the loop sleeps until each is due, it never spins"""
    prog, port = start(lab, "linesrv", 0)
    c = lab.connect(port)
    count = 500
    c.send(b"".join(b"after %d t%d\n" % (k, k) for k in range(1, count + 1)))
    cpu0, t0 = prog.run_seconds(), time.monotonic()
    for k in range(1, count + 1):
        line = c.recv_line(timeout=TIMEOUT, what=f"the reply `t{k}` of timer {k} of {count}")
        expect(line == f"t{k}", expected=f"`t{k}` (timers in the order they are due)", happened=f"{line!r}")
    elapsed, cpu = time.monotonic() - t0, prog.run_seconds() - cpu0
    bound = 0.25 * (2 if prog.sanitizer() else 1)
    if cpu >= bound * elapsed:      # a slow machine's wake-ups cost more: stretch, or skip where
        bound = lab.scaled(bound, most=3.0)     # the bound would no longer tell a spin from work
    expect(cpu < bound * elapsed,
           expected=f"the server mostly asleep between timers (less than {bound:.0%} of a CPU)",
           happened=f"it ran {cpu * 1000:.0f} ms on a CPU in the {elapsed:.2f} s the {count} timers took",
           hint="run every timer whose due time has come (due <= now, not due < now): a timer due in "
                "this very millisecond that is left for later makes the wait's timeout 0, and the loop "
                "spins until the clock ticks over")


# -- main/sub reactors ------------------------------------------------------------

@points(3)
@contract("echo", "THREADS: number of sub-loops", "for each accepted connection N", "the process has THREADS + 1")
def test_connections_spread_over_sub_loops_round_robin(lab):
    """THREADS=3: 4 threads, connections go to loops 1,2,3,1,2,3; each loop is one thread"""
    prog, port = start(lab, "linesrv", 3)
    threads = prog.thread_count()
    expect(threads == 4 or (prog.sanitizer() and threads == 5), expected="4 threads with THREADS=3 (the main loop + 3 sub-loops)",
           happened=f"{threads} threads in /proc/{prog.pid}/task",
           hint="start one thread per sub-loop before printing `listening on`")
    clients = []
    for i in range(6):
        c = lab.connect(port)
        c.send(b"where\n")
        clients.append((c, c.recv_line(timeout=TIMEOUT, what=f"a reply to `where` on connection {i + 1}")))
    opens = {int(m.group(1)): m for m in wait_lines(prog, OPEN, 6)}
    loops = [int(opens[i].group(2)) for i in sorted(opens)]
    expect(loops == [1, 2, 3, 1, 2, 3], expected="connections 1..6 on loops 1, 2, 3, 1, 2, 3",
           happened=f"on loops {loops}",
           hint="the main loop only accepts; it hands connection N to sub-loop (N-1) % THREADS + 1")
    tids = {}
    for i, (c, where) in enumerate(clients, start=1):
        m = opens[i]
        expect(where == f"loop {m.group(2)} tid {m.group(3)}",
               expected=f"connection {i}'s callbacks all run in its loop's thread: `where` says "
                        f"`loop {m.group(2)} tid {m.group(3)}` like its open line",
               happened=f"`where` said `{where}`",
               hint="after the hand-off only the sub-loop's thread may touch the connection")
        tids.setdefault(m.group(2), set()).add(m.group(3))
    bad = {k: v for k, v in tids.items() if len(v) != 1 or str(prog.pid) in v}
    expect(not bad and len({next(iter(v)) for v in tids.values()}) == 3,
           expected="each sub-loop is one thread of its own, not the main thread",
           happened=f"loop -> tids: { {k: sorted(v) for k, v in tids.items()} } (main {prog.pid})")


# -- the output path ---------------------------------------------------------------

@pytest.mark.parametrize("backend", ["epoll", "poll"])
@points(3)
@contract("echo", "echoes every byte back", "idle, it uses no CPU")
@contract("linesrv", "prints `drained N`")
def test_slow_reader_gets_all_output_and_others_are_not_blocked(lab, backend):
    """linesrv: 8 MB to a client that does not read: queued, others served meanwhile, all of it arrives"""
    prog, port = start(lab, "linesrv", 1, backend)
    slow = slow_reader(lab, port)
    size = 8_000_000
    slow.send(b"big %d\n" % size)
    other = lab.connect(port)
    other.send(b"echo ping\n")
    blocking = ("never block in write: send what the socket takes, queue the rest in the output "
                "buffer and wait for the socket to become writable")
    asked = time.monotonic()
    # a loop blocked in write() never answers while the reader stalls; a busy machine only late
    line = other.recv_line(timeout=lab.scaled(TIMEOUT), what="`ping` for another client on the same loop",
                           hint=blocking)
    waited = time.monotonic() - asked
    expect(line == "ping", expected="`ping`", happened=f"{line!r}")
    if waited > PROMPT:
        lab.scaled(PROMPT, most=1.5)    # skips (too slow) when the machine is busy right now
        expect(False, expected=f"`ping` within {PROMPT} s", happened=f"it came after {waited:.2f} s",
               hint=blocking)
    cpu0 = prog.cpu_seconds()
    time.sleep(0.3)     # the client is stalled on purpose: measuring what the server does meanwhile
    spent = prog.cpu_seconds() - cpu0
    expect(spent < 0.15, expected="the server waits quietly while the reader is stalled",
           happened=f"it used {spent:.2f} s of CPU in 0.3 s",
           hint="with a full socket buffer, wait for writability (level-triggered: keep write "
                "interest only while output is queued) instead of retrying in a loop")
    got = slow.recv_exactly(size + 1, timeout=lab.scaled(5.0), what=f"all {size + 1} bytes of the reply",
                            hint="output that did not fit in the socket buffer must stay queued and "
                                 "be written when the socket becomes writable: check EAGAIN and "
                                 "partial writes, and make sure write interest really reaches the "
                                 "kernel (epoll_ctl EPOLL_CTL_MOD with EPOLLOUT, or POLLOUT in the "
                                 "pollfd) -- else the loop never hears that there is room")
    want = pattern(size) + b"\n"
    if got != want:
        i = first_difference(got, want)
        raise GradeFailure(expected="the reply byte for byte ('a' + i % 26, then a newline)",
                           happened=f"it differs from byte {i} on: {got[i:i + 20]!r} instead of "
                                    f"{want[i:i + 20]!r}",
                           hint="after a partial write, continue exactly where the socket stopped "
                                "taking bytes: nothing dropped, nothing repeated")
    wait_lines(prog, re.compile(r"drained 1"), 1, expected="`drained 1` once connection 1's output "
                                                          "buffer is empty",
               hint="call on_drain when the queued output has all been written")
    drained = lambda: len(lines_matching(prog, re.compile(r"drained 1")))      # noqa: E731
    expect_asleep(prog, "once the queued reply has all been written and the client is idle",
                hint=f"`drained 1` was printed {drained()} times so far: once the output queue is "
                     "empty, drop write interest (RX_WRITE). A socket with room in its buffer is "
                     "always writable: with write interest left on, the level-triggered wait "
                     "returns at once, forever")
    expect(drained() == 1, expected="`drained 1` printed once: the queue drained once",
           happened=f"it was printed {drained()} times",
           hint="on_drain runs when the queue becomes empty after output had to wait, not at every "
                "writable event; drop write interest once the queue is empty")


@points(2)
@contract("linesrv", "`quit`: `bye`")
def test_quit_sends_fin_only_after_queued_output(lab):
    """linesrv: `big` then `quit` to a slow reader: every byte, `bye`, then the FIN"""
    prog, port = start(lab, "linesrv", 1)
    c = slow_reader(lab, port)
    size = 4_000_000
    c.send(b"big %d\nquit\n" % size)
    # the server has read both commands and its output has met the full socket
    probes.wait_stalled(port, c.local_port(), TIMEOUT)
    got = c.recv_all_until_eof(timeout=lab.scaled(5.0))     # 4 MB through a 4 KiB window
    want = pattern(size) + b"\nbye\n"
    expect(got == want, expected=f"{len(want)} bytes (the big reply, then `bye`) and then EOF",
           happened=f"{len(got)} bytes before EOF" + ("" if len(got) != len(want)
                                                      else " (but the bytes differ)"),
           hint="shutdown(SHUT_WR) sends the FIN at once and truncates what is still queued in your "
                "output buffer: remember the request and shut down only when the buffer is empty")


@points(2)
@contract("linesrv", "`quit`: `bye`")
def test_quit_half_closes_until_the_clients_fin(lab):
    """linesrv: after `quit` the client gets `bye` and a FIN, yet the server reads on until the client's FIN"""
    prog, port = start(lab, "linesrv", 0)
    c = lab.connect(port)
    c.send(b"quit\n")
    try:
        got = c.recv_all_until_eof(timeout=TIMEOUT)
    except GradeFailure as e:
        e.hint = ("`quit` calls rx_conn_shutdown: once the queue is empty, shutdown(fd, SHUT_WR) sends "
                  "the FIN (SHUT_RD sends none, and the client, still sending, never closes)")
        raise
    expect(got == b"bye\n", expected="`bye`, then EOF", happened=f"{got!r}, then EOF")
    # A second client on the same loop: once it is answered, the loop has run the rounds in which
    # it would have seen the first one's (non-existent) end of stream.
    other = lab.connect(port)
    other.send(b"echo sync\n")
    expect(other.recv_line(timeout=TIMEOUT) == "sync", expected="`sync` for a second client", happened="another reply")
    wait_lines(prog, OPEN, 2)
    early = [m.group(0) for m in lines_matching(prog, EOF_LINE) + lines_matching(prog, CLOSE)]
    expect(not early, expected="after `quit`, no `eof 1` or `close 1` while client 1 has not sent its FIN",
           happened=f"the server printed {early} before it", hint="our FIN is a half-close: shutdown(fd, "
           "SHUT_WR) only. SHUT_RDWR also ends the reading side, so read() returns 0 at once as if the "
           "client had sent a FIN, and the connection closes too early")
    c.shutdown_write()
    wait_lines(prog, EOF_LINE, 1, expected="`eof 1` once the client's FIN has come")
    wait_lines(prog, CLOSE, 1, expected="`close 1` once both FINs are through")


@points(1)
@contract("echo", "stderr is for errors")
def test_clean_run_prints_nothing_on_stderr(lab):
    """a run with nothing failing (replies, `quit`, FINs both ways, SIGTERM): stderr stays empty"""
    prog, port = start(lab, "linesrv", 1)
    a, b = lab.connect(port), lab.connect(port)
    a.send(b"echo one\nquit\n")
    expect(a.recv_all_until_eof(timeout=TIMEOUT) == b"one\nbye\n", expected="`one`, `bye`, then EOF",
           happened="something else")
    a.shutdown_write()
    b.send(b"echo two\n")
    b.shutdown_write()
    expect(b.recv_all_until_eof(timeout=TIMEOUT) == b"two\n", expected="`two`, then EOF", happened="something else")
    wait_lines(prog, CLOSE, 2)
    prog.signal(signal.SIGTERM)
    prog.expect_exit(0, timeout=TIMEOUT, expected="linesrv exits 0 after SIGTERM")
    err = prog.stderr_text().strip()
    expect(not err, expected="nothing on stderr: no call failed",
           happened=f"stderr says: {err[:200]!r}",
           hint="warn only when a call failed: close(), shutdown() and most calls return -1 on "
                "failure and 0 on success, so the test is `< 0`, not `<= 0`")


@points(2)
@contract("echo", "after the peer's FIN")
def test_echo_half_close_gets_every_echo_then_fin(lab):
    """echo: a client sends MiBs without reading, then FIN; it gets every byte back, then EOF"""
    prog, port = start(lab, "echo", 0)
    c = slow_reader(lab, port)
    # The server must meet our FIN with echo still queued in its output buffer, which holds
    # what its socket's send buffer (MiBs, sized by the kernel) cannot take.  So: 256 KiB
    # at a time, each once the server has read the one before, until its Send-Q stops
    # growing (the send buffer is full and the echo goes to its queue); then 512 KiB more
    # (well under the 1 MiB at which it stops reading), our FIN, and nothing read until the
    # server has read it all.  Then everything must come back.
    chunk = pattern(1 << 18)
    data = bytearray()
    queued = None       # bytes sent since the send buffer was full
    sendq = 0
    while len(data) < (24 << 20) and (queued is None or queued < (512 << 10)):
        c.send(chunk)
        data += chunk
        if not probes.wait_read([c.sock], TIMEOUT):
            break       # it stopped reading (back-pressure): the FIN then waits, fine too
        socks = probes.find("tcp", local_port=port, peer_port=c.local_port())
        now = socks[0].send_q if socks else 0
        if queued is not None:
            queued += len(chunk)
        elif now - sendq < len(chunk) // 2:
            queued = len(chunk) - (now - sendq)
        sendq = now
    data = bytes(data)
    c.shutdown_write()
    probes.wait_read([c.sock], TIMEOUT)     # the server has read our last bytes and the FIN
    got = b""
    try:
        got = c.recv_all_until_eof(timeout=10.0)
    except GradeFailure as e:
        if not (c.eof or c.error):
            e.hint = ("the echo stalled: bytes wait in the server's socket and nobody reads them, or "
                      "output waits in its queue and nobody writes it. Level-triggered readiness "
                      "repeats while data waits; with EPOLLET an event comes once per arrival, so one "
                      "read of 64 KiB per event strands the rest. Keep the backend level-triggered, "
                      "take read interest back when the queue drains below the limit, and keep write "
                      "interest while output is queued")
            raise
        got = c.buffer      # the server closed early: judged below
    expect(got == data, expected=f"all {len(data)} bytes echoed, then EOF",
           happened=f"{len(got)} bytes, then EOF" + ("" if len(got) != len(data) else " (but the bytes differ)"),
           hint="read() returning 0 means the peer will send no more, not that it stopped reading: "
                "write out what is still queued, then close (as rx_conn_shutdown does)")


@points(1)
@contract("echo", "after the peer's FIN")
def test_echo_closes_after_the_clients_fin_by_default(lab):
    """echo (no on_eof): the client's FIN is answered with the echo, then FIN, `close N` once"""
    prog, port = start(lab, "echo", 1)
    c = lab.connect(port)
    c.send(b"last words\n")
    c.shutdown_write()
    try:
        got = c.recv_all_until_eof(timeout=TIMEOUT)
    except GradeFailure as e:
        e.hint = ("echo gives no on_eof: the library's default is rx_conn_shutdown -- FIN once the "
                  "queue is empty -- and, with the peer's FIN read too, the close")
        raise
    expect(got == b"last words\n", expected="the echo, then EOF", happened=f"{got!r}, then EOF")
    wait_lines(prog, CLOSE, 1, expected="`close 1` after both FINs")
    expect(not lab.sockets(state="CLOSE-WAIT", pid=prog.pid), expected="no CLOSE-WAIT socket left",
           happened="the server's socket is still in CLOSE-WAIT", hint="close the socket when the "
           "connection ends")


@points(2)
@contract("echo", "back-pressure")
def test_client_that_never_reads_cannot_fill_the_servers_memory(lab):
    """echo: a client sends without reading: the server stops reading it, its memory stays small"""
    prog, port = start(lab, "echo", 1)
    rss0 = prog.rss_kib()
    c = slow_reader(lab, port)
    cap = 96 << 20
    data = push_until_blocked(c, chunk=pattern(1 << 16), cap=cap)
    grown = (prog.rss_kib() - rss0) // 1024
    if prog.sanitizer():
        lab.note("memory", f"RSS grew by {grown} MiB; not judged under a sanitizer")
    else:
        expect(len(data) < cap and grown < 24,
               expected="the server stops reading a client that does not read its echo (1 MiB "
                        "queued): the client's sending stalls after a few MiB, the server's memory "
                        "grows by less than 24 MiB",
               happened=f"the client sent {len(data) >> 20} MiB without reading; the server's RSS "
                        f"grew by {grown} MiB",
               hint="while more than RX_OUTPUT_HIGH (1 MiB) is queued for a connection, drop its "
                    "read interest; take it back when the queue drains")
    got = c.recv_exactly(len(data), timeout=10.0, what=f"the echo of all {len(data)} bytes, once the "
                         "client reads", hint="reading stops for a while, nothing is dropped")
    expect(got == data, expected="the echo byte for byte",
           happened=f"it differs from byte {first_difference(got, data)} on")


# -- closing -----------------------------------------------------------------------

@points(3)
@contract("echo", "prints `close N` exactly once")
def test_close_and_reset_release_every_connection_once(lab):
    """peer close, reset, and reset with queued output: `close N` once each, fds freed, server alive"""
    prog, port = start(lab, "linesrv", 2)
    probe = lab.connect(port)
    probe.send(b"echo up\n")
    probe.recv_line(timeout=TIMEOUT)
    baseline = len(prog.open_fds())
    clients = [lab.connect(port) for _ in range(10)]
    for c in clients:
        c.send(b"echo hi\n")
        c.recv_line(timeout=TIMEOUT)
    for c in clients[6:]:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(b"big 4000000\n")
    for c in clients[6:]:   # the big replies have met the full socket: queued when the resets come
        probes.wait_stalled(port, c.local_port(), TIMEOUT)
    for c in clients[:3]:
        c.close()
    for c in clients[3:]:
        c.reset()
    once = ("each of the 10 connections closed exactly once (`close N`), the server still running")
    twice = ("a reset can be reported as readable and writable in the same round: once the "
             "connection is closed, skip its other handlers, make a second close do nothing, and "
             "free it only after the round")
    try:
        wait_lines(prog, CLOSE, 10, expected=once,
                   hint="read() returning 0 (FIN) or failing with ECONNRESET ends the connection; "
                        "so does a write failing with EPIPE/ECONNRESET")
    except GradeFailure as e:
        if not prog.running():
            prog.wait_exit(0.5)
            e.hint = SIGPIPE_HINT if prog.proc.returncode == -signal.SIGPIPE else twice
        raise
    time.sleep(0.1)     # a second close of the same connection would show up now
    ids = [m.group(1) for m in lines_matching(prog, CLOSE)]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    expect(not dup and prog.running(), expected=once,
           happened=(f"`close` printed twice for {dup}" if dup else f"the server {prog.status()}"),
           hint=twice)
    deadline = time.monotonic() + TIMEOUT
    while len(prog.open_fds()) > baseline and time.monotonic() < deadline:
        time.sleep(0.02)    # close() is not an event we can wait for; bounded poll
    fds = len(prog.open_fds())
    expect(fds == baseline, expected=f"the server back to {baseline} open fds",
           happened=f"{fds} open fds", hint="close the socket when the connection ends")
    cw = lab.sockets(state="CLOSE-WAIT", pid=prog.pid)
    expect(not cw, expected="no CLOSE-WAIT socket left", happened=f"{len(cw)} in CLOSE-WAIT")
    probe.send(b"echo still\n")
    expect(probe.recv_line(timeout=TIMEOUT) == "still", expected="an old client still served",
           happened="it was not")


SIGPIPE_HINT = ("a write to a connection whose peer has gone raises SIGPIPE, whose default action "
                "kills the whole server: send with MSG_NOSIGNAL (or ignore SIGPIPE), then EPIPE "
                "closes that connection only")


@points(2)
@contract("echo", "a write to a connection the peer has closed")
def test_clients_gone_before_their_replies_do_not_kill_the_server(lab):
    """clients that close before reading a big reply: their connections end, the server lives"""
    prog, port = start(lab, "linesrv", 1)
    other = lab.connect(port)
    other.send(b"echo first\n")
    other.recv_line(timeout=TIMEOUT)
    for i in range(2):
        prog.signal(signal.SIGSTOP)
        try:
            # the request and the FIN wait together: the server's first write of the reply
            # draws a reset from the closed socket, its next one fails with EPIPE
            gone = lab.connect(port)
            gone.send(b"big 4000000\n")
            gone.close()
        finally:
            prog.signal(signal.SIGCONT)
        try:
            wait_lines(prog, CLOSE, i + 1, expected=f"`close {i + 2}` once client {i + 2} has left "
                       "before reading its reply", hint=SIGPIPE_HINT)
        except GradeFailure as e:
            if not prog.running():
                e.hint = SIGPIPE_HINT
            raise
    other.send(b"echo still\n")
    try:
        line = other.recv_line(timeout=TIMEOUT, what="the first client is still answered", hint=SIGPIPE_HINT)
    except GradeFailure:
        prog.expect_running("the server keeps running after clients left before their replies",
                            hint=SIGPIPE_HINT)
        raise
    expect(line == "still", expected="`still`", happened=f"{line!r}")
    prog.expect_running("the server keeps running after clients left before their replies", hint=SIGPIPE_HINT)


@points(2)
@contract("echo", "prints `close N` exactly once")
def test_connect_close_cycles_do_not_grow_memory(lab):
    """600 clients leave with a partial line buffered: RSS stays flat (connections and buffers freed)"""
    prog, port = start(lab, "linesrv", 1)
    request = b"echo hi\n" + b"x" * 4000     # the x's stay in the input buffer: no newline

    def cycles(n, first):
        for i in range(n):
            c = lab.connect(port)
            c.send(request)
            c.recv_line(timeout=TIMEOUT)
            c.close()
            lab.peers.remove(c)
        wait_lines(prog, CLOSE, first + n - 1, timeout=TIMEOUT)

    cycles(100, 1)
    rss0 = prog.rss_kib()
    cycles(600, 101)
    grown = prog.rss_kib() - rss0
    if prog.sanitizer():
        lab.note("memory", f"RSS grew by {grown} KiB; not judged: a sanitizer build keeps freed "
                           "memory in quarantine (its leak checker covers this instead)")
        return
    expect(grown < 1024, expected="RSS grows by less than 1 MiB over 600 more connections",
           happened=f"RSS grew by {grown} KiB ({grown * 1024 // 600} bytes per connection)",
           hint="the loop owns its connections: free the buffers and the connection object when it "
                "closes (after the round in which it closed)")


@points(1)
@contract("echo", "THREADS: number of sub-loops")
def test_bad_arguments_exit_1(lab):
    """THREADS 65 or an unknown BACKEND: usage on stderr, exit 1"""
    for args in [(65, "epoll"), (0, "kqueue")]:
        prog = lab.start("echo", lab.port(), *args)
        prog.expect_fatal(r"(?i)usage", expected=f"`echo PORT {args[0]} {args[1]}` prints a usage line on stderr",
                          exit_expected=f"`echo PORT {args[0]} {args[1]}` exits 1",
                          hint="echo.c's argument checks are given: keep them")


@points(2)
@contract("echo", "other signals do not end it")
def test_stop_and_continue_do_not_end_the_server(lab):
    """SIGSTOP then SIGCONT (Ctrl-Z, a debugger) interrupt the wait: the loops wait again"""
    prog, port = start(lab, "echo", 1)
    c = lab.connect(port)
    c.send(b"before\n")
    expect(c.recv_line(timeout=TIMEOUT) == "before", expected="`before` echoed", happened="it was not")
    for _ in range(2):
        prog.wait_blocked(TIMEOUT)
        prog.signal(signal.SIGSTOP)
        poll_until(lambda: (proc_stat(prog.pid) or ["T"])[0] in "Tt", TIMEOUT)     # stopped
        prog.signal(signal.SIGCONT)
    hint = ("after SIGSTOP and SIGCONT, epoll_wait (and poll, in some kernels) returns -1 with errno "
            "EINTR although no handler ran: that is no error -- wait again")
    c.send(b"after\n")
    try:
        line = c.recv_line(timeout=TIMEOUT, what="`after` echoed once the server was stopped and continued",
                           hint=hint)
    except GradeFailure:
        prog.wait_exit(0.5)
        prog.expect_running("the server keeps running after SIGSTOP and SIGCONT", hint=hint)
        raise
    expect(line == "after", expected="`after` echoed", happened=f"{line!r}")
    prog.expect_running("the server keeps running after SIGSTOP and SIGCONT", hint=hint)


@points(2)
@contract("echo", "on SIGINT/SIGTERM")
def test_sigterm_stops_every_loop_cleanly(lab):
    """THREADS=2 with clients connected: SIGTERM closes them all, prints `bye`, exits 0"""
    prog, port = start(lab, "echo", 2)
    clients = [lab.connect(port) for _ in range(4)]
    for c in clients:
        c.send(b"x\n")
        c.recv_line(timeout=TIMEOUT)
    prog.signal(signal.SIGTERM)
    prog.expect_exit(0, timeout=TIMEOUT,
                     expected="echo exits 0 within 2 s of SIGTERM",
                     hint="turn the signal into an event (signalfd or a flag + wakeup), stop each "
                          "sub-loop, join its thread, then free the loops")
    closed = len(lines_matching(prog, CLOSE))
    bye = lines_matching(prog, re.compile(r"bye"))
    expect(closed == 4 and bye, expected="`close N` for the 4 clients, then `bye`",
           happened=f"{closed} close lines, {'a' if bye else 'no'} `bye` line")
    for c in clients:
        expect(c.wait_close(TIMEOUT) == "eof", expected="every client sees EOF", happened=c.state())


# -- under the sanitizers ------------------------------------------------------------
#
# The grader builds AddressSanitizer+UBSan and ThreadSanitizer copies of linesrv from
# your sources (grader/sanitized.py) and puts the library through every path it has:
# hand-offs to each sub-loop, pipelined commands, timers, output queued behind stalled
# readers, resets with output queued, half-close, `quit`, and a SIGTERM shutdown.

SANITIZER_HINTS = {
    "address": "the report names the line: a use after free usually means a connection freed while "
               "a handler of the same round still runs (free only after the round), or a buffer "
               "grown without updating every pointer into it",
    "thread": "two threads touched the same memory without a lock or a hand-off between them: "
              "only the loop's owner thread may touch a connection; other threads post a task "
              "(under the loop's lock) and wake it",
}


LEAK_HINT = ("the report names where the lost memory was allocated: the loop frees a closed connection "
             "(and its buffers) after its round, a timer once it ran or was cancelled, a posted task "
             "once it ran; rx_loop_free frees the loop and its backend's state")


def sanitizer_failure(prog, kind, doing, hint=None):
    """A GradeFailure quoting the sanitizer, or None if it said nothing."""
    report = sanitizer_report(prog)
    if report is None:
        return None
    name = {"address": "AddressSanitizer/UBSan", "thread": "ThreadSanitizer"}[kind]
    if "LeakSanitizer" in report:
        name, hint = "LeakSanitizer", LEAK_HINT
    return GradeFailure(expected=f"linesrv runs clean under {name} while {doing}",
                        happened=f"{name} reported a bug (see `sanitizer`)",
                        hint=hint or SANITIZER_HINTS[kind], sanitizer=report)


def workout(lab, kind):
    """Every path of the library under one sanitizer, failing on its first report."""
    import signal
    use_sanitized_programs(lab, kind)
    if kind == "address":       # and LeakSanitizer: at exit, everything the library took is freed
        lab.default_env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:print_legend=0"
    slow = 4 * TIMEOUT          # sanitized code runs several times slower
    prog, port = start(lab, "linesrv", 2)

    def step(what, action, hint=None):
        try:
            action()
        except GradeFailure as failure:
            prog.wait_exit(0.5)
            raise sanitizer_failure(prog, kind, what, hint) or failure
        raced = sanitizer_failure(prog, kind, what, hint)
        if raced:
            raise raced

    def pipelined():
        clients = [lab.connect(port) for _ in range(6)]      # three for each sub-loop
        for i, c in enumerate(clients):
            c.send(f"echo c{i}\nafter 20 t{i}\nwhere\n".encode())
        for i, c in enumerate(clients):
            got = [c.recv_line(timeout=slow) for _ in range(3)]
            expect(got[0] == f"c{i}" and got[2] == f"t{i}" and got[1].startswith("loop "),
                   expected=f"client {i}: `c{i}`, `loop K tid T`, then `t{i}` 20 ms later",
                   happened=f"got {got}")

    def resets_with_output_queued():
        stalled = [slow_reader(lab, port) for _ in range(2)]
        for c in stalled:
            c.send(b"big 1000000\n")
        for c in stalled:   # the big replies have met the full socket: queued when the resets come
            probes.wait_stalled(port, c.local_port(), slow)
        for c in stalled:
            c.reset()
        wait_lines(prog, CLOSE, 2, timeout=slow)

    def quit_and_half_close():
        q = slow_reader(lab, port)
        q.send(b"big 300000\nquit\n")
        got = q.recv_all_until_eof(timeout=slow)
        expect(got == pattern(300000) + b"\nbye\n", expected="the big reply, `bye`, then EOF",
               happened=f"{len(got)} bytes before EOF")
        h = lab.connect(port)
        h.send(b"echo half\n")
        h.shutdown_write()
        got = h.recv_all_until_eof(timeout=slow)
        expect(got == b"half\n", expected="`half`, then EOF after the client's FIN",
               happened=f"got {got!r}")

    def timer_of_a_closed_connection():
        gone = lab.connect(port)
        gone.send(b"after 50 too late\necho armed\n")
        expect(gone.recv_line(timeout=slow) == "armed", expected="`armed`", happened="another reply")
        gone.reset()        # a FIN would not do: linesrv answers pending timers after one
        time.sleep(0.2)     # the timer's due time passes: it must have been cancelled with its connection
        other = lab.connect(port)
        other.send(b"echo alive\n")
        expect(other.recv_line(timeout=slow) == "alive", expected="`alive` after the timer was due",
               happened="another reply")

    def cancelled_timers():
        c = lab.connect(port)
        c.send(b"after 40 never\nafter 30 nor this\ncancel\nafter 20 fired\nafter 60000 pending\n")
        got = [c.recv_line(timeout=slow) for _ in range(2)]
        expect(got == ["cancelled 2", "fired"], expected="`cancelled 2`, then `fired` 20 ms later",
               happened=f"{got}")
        c.send(b"echo alive\n")   # the cancelled timers' due times pass meanwhile
        expect(c.recv_line(timeout=slow) == "alive", expected="`alive`", happened="another reply")

    def shutdown():
        lab.connect(port).send(b"echo still here\n")
        prog.signal(signal.SIGTERM)
        prog.expect_exit(0, timeout=slow, expected="linesrv exits 0 after SIGTERM")

    step("connections are handed to both sub-loops and answer pipelined commands", pipelined)
    step("two stalled readers reset their connections with output queued", resets_with_output_queued)
    step("one client quits after a big reply and another half-closes", quit_and_half_close)
    step("a client resets while its `after 50` timer is pending (the timer must be cancelled "
         "with the connection, or it fires on freed memory)", timer_of_a_closed_connection,
         hint="a timer holds a pointer to its connection: when the connection is closed (and "
              "later freed), cancel its pending timers (rx_loop_cancel_conn_timers in "
              "rx_conn_close), or the callback runs on freed memory")
    step("a client cancels two timers, one fires, one is still pending at SIGTERM",
         cancelled_timers,
         hint="rx_timer_cancel: unlink the timer from the loop's list before finish_timer frees it "
              "(else the loop walks freed memory), and let finish_timer run its `done` exactly once "
              "(else its arg leaks)")
    step("SIGTERM stops every loop", shutdown)


@points(2)
@contract("echo", "under AddressSanitizer")
@contract("linesrv", "a timer of a connection")
def test_library_is_memory_safe_under_asan_and_ubsan(lab):
    """linesrv under ASan+UBSan+LeakSanitizer: hand-offs, resets, quit, SIGTERM, no report, no leak"""
    workout(lab, "address")


@points(2)
@contract("echo", "under AddressSanitizer")
def test_library_is_race_free_under_tsan(lab):
    """linesrv under ThreadSanitizer, 2 sub-loops: the same, no data race"""
    workout(lab, "thread")
