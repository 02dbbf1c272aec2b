"""Ladder diagrams: what two endpoints said to each other, time going down.

    ladders = conversations(wire)           # a Wire: what one test saw (see below)
    print(to_text(ladders[0], width=66))    # Unicode arrows, or ASCII with unicode=False

       ms  grader 127.0.0.1:41234                 graceclient 127.0.0.1:5000
      0.0  │────────────────── SYN seq 0 ──────────────────▶│
      0.0  │◀──────────── SYN-ACK seq 0 ack 1 ─────────────│
      ...
      3.1  │◀═════════════ RST-ACK seq 13 ack 11 ══════════│
      3.2  │ [CLOSE]                                        │

One Ladder per TCP connection, UDP endpoint pair, or stream the grader's own socket
saw (a Unix socket, or TCP where no packets could be captured).  The grader is drawn
on the left, the program on the right.  Sequence and acknowledgement numbers are
relative to each side's SYN, as Wireshark shows them; each data segment shows its
length and first bytes; keep-alive probes and retransmissions are named; the TCP
states the grader sampled (grader.states) sit beside their endpoint as [STATE] rows.
to_text() and grader.ladder_svg.to_svg() draw the same rows.
"""
import codecs
import locale
import os
from dataclasses import dataclass, field

from grader.capture import ACK, FIN, PSH, RST, SYN

ARROW, STATES, NOTE, GAP = "arrow", "states", "note", "gap"
NOTE_LEAD = 0.1             # a note this long before a conversation's first packet belongs to it
QUIET = 0.2                 # a silence this long at the end of a conversation is drawn
ANY_ADDRESS = ("0.0.0.0", "::")


@dataclass
class Row:
    time: float                 # seconds since the test began
    kind: str                   # ARROW, STATES, NOTE, GAP
    rightward: bool = True      # ARROW: from the left endpoint to the right one
    label: str = ""             # ARROW: "PSH-ACK seq 1 ack 1 len 6"; GAP: what is missing
    detail: str = ""            # ARROW: the payload's first bytes, quoted
    left: str = ""              # STATES / NOTE: text beside the left endpoint
    right: str = ""             # ... and beside the right one
    reset: bool = False         # ARROW: an RST, drawn heavier


@dataclass
class Ladder:
    left: str                   # "grader 127.0.0.1:41234"
    right: str                  # "graceclient 127.0.0.1:5000"
    title: str                  # "TCP 127.0.0.1:41234 ⇄ 127.0.0.1:5000"
    rows: list = field(default_factory=list)
    source: str = "capture"     # or "socket": what the grader's own socket saw

    @property
    def arrows(self):
        return [r for r in self.rows if r.kind == ARROW]

    @property
    def start(self):
        return self.rows[0].time if self.rows else 0.0

    @property
    def end(self):
        return self.rows[-1].time if self.rows else 0.0

    @property
    def last_event(self):
        """When the last thing happened (a trailing "nothing more" row is no event)."""
        events = [r.time for r in self.rows if r.kind != GAP]
        return events[-1] if events else 0.0


@dataclass
class Wire:
    """Everything one test saw of the wire, with times in seconds since it began."""
    segments: list = field(default_factory=list)       # capture.Segment
    datagrams: list = field(default_factory=list)      # capture.Datagram
    unreachable: list = field(default_factory=list)    # capture.Unreachable (ICMP)
    gaps: list = field(default_factory=list)           # tap.Gap (times since the test began)
    changes: list = field(default_factory=list)        # states.Change
    grader: set = field(default_factory=set)           # {(ip, port)}: the grader's sockets
    names: dict = field(default_factory=dict)          # {(ip, port): "server"}
    program: str = "program"                           # who the other endpoints are
    transcripts: list = field(default_factory=list)    # Transcript
    notes: list = field(default_factory=list)          # (time, "left"/"right", text)
    until: float = 0.0                                 # when this was seen: now, or the test's end


@dataclass
class Transcript:
    """A grader socket's own record (peers.Transcript) when there are no packets."""
    title: str                  # "unix /tmp/x.sock"
    events: list                # [(time, "→" sent / "←" received, bytes or marker text)]


def unicode_ok():
    """Unicode arrows when the locale is UTF-8 (SOCKLAB_ASCII=1 forces ASCII)."""
    if os.environ.get("SOCKLAB_ASCII"):
        return False
    try:
        return codecs.lookup(locale.getpreferredencoding(False)).name == "utf-8"
    except LookupError:
        return False


# -- building ------------------------------------------------------------------------

def endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def is_grader(wire, ep):
    return ep in wire.grader or any((a, ep[1]) in wire.grader for a in ANY_ADDRESS)


def who(wire, ep, other=None):
    """What to call an endpoint: its name if it has one, the grader, the program -- or a
    peer, when the endpoint it talks to (`other`) is not the grader's either: then that
    one is the program's, and this is something else (a closed port, another program)."""
    if ep in wire.names:
        return wire.names[ep]
    if is_grader(wire, ep):
        return "grader"
    return "peer" if other is not None and not is_grader(wire, other) else wire.program


def conversations(wire):
    """Every conversation in the wire, in the order they began."""
    ladders = _tcp_ladders(wire) + _udp_ladders(wire) + [_transcript_ladder(t, wire) for t in wire.transcripts]
    ladders = [l for l in ladders if l.rows]
    for ladder in ladders:
        _add_notes_and_gaps(ladder, wire)
        if wire.until - ladder.end >= QUIET:
            ladder.rows.append(Row(wire.until, GAP, label=f"nothing more for "
                                                          f"{_duration(wire.until - ladder.end)}"))
    return sorted(ladders, key=lambda l: l.start)


def _duration(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _orient(wire, a, b, opener):
    """(left, right): the grader's endpoint on the left, else whoever opened."""
    if is_grader(wire, b) and not is_grader(wire, a):
        return b, a
    if is_grader(wire, a) and not is_grader(wire, b):
        return a, b
    return (opener, b if opener == a else a) if opener else (a, b)


def _split_connections(segments):
    """[(key, [segments])]: one entry per connection; a new SYN on a used 4-tuple
    (a port reused after the last connection ended) starts another."""
    current, out = {}, []
    for s in segments:
        key = frozenset({(s.src, s.sport), (s.dst, s.dport)})
        conn = current.get(key)
        fresh_syn = s.flags & SYN and not s.flags & ACK
        if conn is None or (fresh_syn and any(not (x.flags & SYN) for x in conn)):
            conn = current[key] = []
            out.append((key, conn))
        conn.append(s)
    return out


def flag_name(flags):
    names = [n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"))
             if flags & bit]
    return "-".join(names) or "none"


def preview(data, length=None, limit=40):
    """The first bytes of a payload, quoted the way the report's wire lines are."""
    length = len(data) if length is None else length
    shown = repr(bytes(data[:limit]))[1:]
    return shown + ("…" if length > min(limit, len(data)) else "")


def _tcp_ladders(wire):
    ladders = []
    for _, segs in _split_connections(wire.segments):
        first = segs[0]
        a, b = (first.src, first.sport), (first.dst, first.dport)
        opener = next(((s.src, s.sport) for s in segs if s.flags & SYN and not s.flags & ACK), None)
        left, right = _orient(wire, a, b, opener)
        ladder = Ladder(f"{who(wire, left)} {endpoint(*left)}", f"{who(wire, right, left)} {endpoint(*right)}",
                        f"TCP {endpoint(*left)} ⇄ {endpoint(*right)}")
        ladder.rows = _tcp_rows(segs, left)
        ladder.rows += _state_rows(wire.changes, left, right, ladder.start)
        ladder.rows.sort(key=lambda r: r.time)
        ladders.append(ladder)
    return ladders


def _tcp_rows(segs, left):
    base = {}                   # side -> the sequence number counted as 0
    for s in segs:
        side = (s.src, s.sport)
        if side not in base:
            base[side] = s.seq if s.flags & SYN else (s.seq - 1) & 0xFFFFFFFF
    highest = {}                # side -> highest sequence number sent so far
    probes = {}                 # side -> unanswered keep-alive probes in a row
    rows = []
    for s in segs:
        side, other = (s.src, s.sport), (s.dst, s.dport)
        rel_seq = (s.seq - base[side]) & 0xFFFFFFFF
        label = f"{flag_name(s.flags)} seq {rel_seq}"
        if s.flags & ACK:
            label += f" ack {(s.ack - base.get(other, 0)) & 0xFFFFFFFF}"
        if s.length:
            label += f" len {s.length}"
        end = rel_seq + s.length + (1 if s.flags & (SYN | FIN) else 0)
        probes[other] = 0       # the other side hears from this one: its probes are answered
        if s.keepalive:
            probes[side] = probes.get(side, 0) + 1
            retry = probes[side] - 1            # probes before this one went unanswered
            label += " keep-alive probe" + (f" retry {retry}" if retry else "")
        elif end > rel_seq and end <= highest.get(side, 0):
            label += " retransmission"
        highest[side] = max(highest.get(side, 0), end)
        detail = preview(s.payload, s.length) if s.length and not s.keepalive else ""
        rows.append(Row(s.time, ARROW, side == left, label, detail, reset=bool(s.flags & RST)))
    return rows


def _state_rows(changes, left, right, start):
    """[STATES] rows for the two sockets of one connection, from the sampled changes."""
    mine = {(left, right): "left", (right, left): "right"}
    now, rows = {"left": "", "right": ""}, []
    for c in changes:
        side = mine.get((c.local, c.peer))
        if side is None or c.time < start - 0.05:
            continue
        now[side] = c.state or "CLOSED"
        if rows and abs(rows[-1].time - c.time) < 1e-6:       # one sample: one row
            rows[-1].left, rows[-1].right = now["left"], now["right"]
        else:
            rows.append(Row(c.time, STATES, left=now["left"], right=now["right"]))
    return rows


def _udp_ladders(wire):
    pairs = {}
    for d in wire.datagrams:
        key = frozenset({(d.src, d.sport), (d.dst, d.dport)})
        pairs.setdefault(key, []).append(d)
    ladders = []
    for key, dgrams in pairs.items():
        first = dgrams[0]
        left, right = _orient(wire, (first.src, first.sport), (first.dst, first.dport),
                              (first.src, first.sport))
        ladder = Ladder(f"{who(wire, left)} {endpoint(*left)}", f"{who(wire, right, left)} {endpoint(*right)}",
                        f"UDP {endpoint(*left)} ⇄ {endpoint(*right)}")
        ladder.rows = [Row(d.time, ARROW, (d.src, d.sport) == left, f"UDP len {d.length}",
                           preview(d.payload, d.length) if d.length else "") for d in dgrams]
        ladder.rows += [Row(u.time, ARROW, (u.dst, u.dport) == left, "ICMP port unreachable", reset=True)
                        for u in wire.unreachable
                        if frozenset({(u.src, u.sport), (u.dst, u.dport)}) == key]
        ladder.rows.sort(key=lambda r: r.time)
        ladders.append(ladder)
    return ladders


def _transcript_ladder(t, wire):
    ladder = Ladder("grader", wire.program, t.title, source="socket")
    for when, direction, item in t.events:
        rightward = direction == "→"
        if isinstance(item, (bytes, bytearray)):
            ladder.rows.append(Row(when, ARROW, rightward, f"{len(item)} bytes", preview(item)))
        else:
            ladder.rows.append(Row(when, ARROW, rightward, str(item), reset="RST" in str(item)))
    return ladder


def _add_notes_and_gaps(ladder, wire):
    start, end = ladder.start, ladder.end
    for when, side, text in wire.notes:
        if start - NOTE_LEAD <= when <= end + 0.001 or ladder.source == "socket":
            ladder.rows.append(Row(when, NOTE, left=text if side == "left" else "",
                                   right=text if side == "right" else ""))
    if ladder.source == "capture":
        for gap in wire.gaps:
            if start <= gap.time <= end:
                count = f"{gap.count} packets" if gap.count else "packets"
                ladder.rows.append(Row(gap.time, GAP, label=f"{count} not recorded: {gap.why}"))
    ladder.rows.sort(key=lambda r: r.time)


# -- drawing as text -------------------------------------------------------------------

UNICODE = dict(bar="│", shaft="─", heavy="═", right="▶", left="◀", more="⋮", cut="…", gap="┄")
ASCII = dict(bar="|", shaft="-", heavy="=", right=">", left="<", more=":", cut="...", gap="~")
TIME_WIDTH = 7


def _time(t):
    ms = max(t, 0.0) * 1000
    return f"{ms:{TIME_WIDTH}.1f}" if ms < 100000 else f"{t:{TIME_WIDTH - 1}.1f}s"


def _fit(text, width, cs):
    if len(text) <= width:
        return text
    return text[:max(0, width - len(cs["cut"]))] + cs["cut"]


def _asciify(text, cs):
    if cs is ASCII:
        return (text.replace("…", "...").replace("⇄", "<->").replace("→", "->")
                .replace("←", "<-").encode("ascii", "replace").decode())
    return text


def elide(rows, max_rows):
    """Keep the first and last rows; the middle becomes one count (None in the list)."""
    if len(rows) <= max_rows:
        return rows
    head = (max_rows - 1) // 2
    tail = max_rows - 1 - head
    return rows[:head] + [None] + rows[len(rows) - tail:]


def to_text(ladder, width=66, unicode=True, max_rows=30):
    """The ladder as lines of at most `width` columns."""
    cs = UNICODE if unicode else ASCII
    inner = width - TIME_WIDTH - 3          # between the two bars
    pad = " " * (TIME_WIDTH + 1)
    left, right = _asciify(ladder.left, cs), _asciify(ladder.right, cs)
    lines = []
    if len(left) + len(right) + 2 <= inner + 2:
        lines.append(f"{'ms':>{TIME_WIDTH}} " + left + " " * (inner + 2 - len(left) - len(right)) + right)
    else:
        lines.append(f"{'ms':>{TIME_WIDTH}} " + _fit(left, inner + 2, cs))
        lines.append(pad + _fit(right, inner + 2, cs).rjust(inner + 2))
    rows = elide(ladder.rows, max_rows)
    for i, row in enumerate(rows):
        if row is None:
            hidden = ladder.rows[i:len(ladder.rows) - (len(rows) - i - 1)]
            n = sum(1 for r in hidden if r.kind == ARROW)
            text = f" {cs['more']} {n} more {'segments' if ladder.source == 'capture' else 'events'}" \
                   f" not shown {cs['more']} "
            lines.append(pad + cs["bar"] + _fit(text, inner, cs).center(inner) + cs["bar"])
            continue
        stamp = _time(row.time) + " "
        if row.kind == ARROW:
            lines.append(stamp + _arrow(row, inner, cs))
            if row.detail:
                detail = _fit(_asciify(row.detail, cs), inner - 2, cs)
                lines.append(pad + cs["bar"] + detail.center(inner) + cs["bar"])
        elif row.kind == GAP:
            text = f" {cs['gap'] * 2} {_asciify(row.label, cs)} {cs['gap'] * 2} "
            lines.append(stamp + cs["bar"] + _fit(text, inner, cs).center(inner) + cs["bar"])
        else:
            l_text = f"[{row.left}]" if row.kind == STATES and row.left else _asciify(row.left, cs)
            r_text = f"[{row.right}]" if row.kind == STATES and row.right else _asciify(row.right, cs)
            l_text = _fit(l_text, inner // 2 - 1, cs) if r_text else _fit(l_text, inner - 2, cs)
            r_text = _fit(r_text, inner - 3 - len(l_text), cs)
            middle = " " + l_text + " " * (inner - 2 - len(l_text) - len(r_text)) + r_text + " "
            lines.append(stamp + cs["bar"] + middle + cs["bar"])
    return "\n".join(lines)


def _arrow(row, inner, cs):
    shaft = cs["heavy"] if row.reset else cs["shaft"]
    body = inner - 1                        # the shaft, without the head
    label = " " + _fit(_asciify(row.label, cs), body - 4, cs) + " "
    before = (body - len(label)) // 2
    line = shaft * before + label + shaft * (body - before - len(label))
    if row.rightward:
        return cs["bar"] + line + cs["right"] + cs["bar"]
    return cs["bar"] + cs["left"] + line + cs["bar"]
