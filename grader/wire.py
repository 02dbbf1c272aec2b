"""What one test saw of the wire: recorded while it runs, drawn when it fails, kept after.

    tw = Recording(lesson, test, build_dir, programs, netns)   # the `lab` fixture makes one
    tw.track(peer)              # a grader socket (so it is drawn on the grader's side)
    tw.sections()               # [("ladder", text), ("pcap", path)] for a failure report
    tw.finish()                 # teardown: write <test>.pcap and <test>.wire.json

In a test with its own network namespace a tap records every packet on its loopback
(grader.tap: in the kernel, no thread) and a sampler follows the TCP states of the
grader's connections (grader.states).  At teardown -- before anything is killed, so the
teardown's own FINs and RSTs stay out -- the packets go to a pcap file and the rest
(the grader's addresses, the state changes, Unix-socket transcripts, the programs'
output) to a JSON file beside it:

    <build>/captures/<lesson>/<test>.pcap        tcpdump -r, Wireshark
    <build>/captures/<lesson>/<test>.wire.json   for ./lab report

load() turns the two files back into a ladder.Wire.  SOCKLAB_CAPTURE=0 turns the
recording off (to measure what it costs); lab.capture() then records on demand as before.
"""
import json
import os
import re
import socket
import time
from pathlib import Path

from grader import capture, ladder, pcap, states
from grader.tap import Gap

TERMINAL_WIDTH = 66          # 80 columns, less the report's indent (2) and titles (12)
TERMINAL_ROWS = 24           # a longer conversation is elided in the middle
TAIL = 40                    # program output lines kept for the HTML report


def enabled():
    return os.environ.get("SOCKLAB_CAPTURE", "1") != "0"


def file_stem(name):
    """test_x[param-1] -> test_x-param-1: a file name any shell takes as it is."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")


def paths(build_dir, lesson, test_name):
    base = Path(build_dir) / "captures" / lesson / file_stem(test_name)
    return base.with_name(base.name + ".pcap"), base.with_name(base.name + ".wire.json")


class Recording:
    def __init__(self, lesson, name, build_dir, programs, netns, sample_every=states.INTERVAL):
        """lesson and name (the test's) place its files under build_dir; programs is the
        list the test's programs are added to (to name the other endpoint); netns: the
        test has a namespace of its own, so its loopback is its alone to record."""
        self.lesson, self.programs = lesson, programs
        self.recorder = self.sampler = None
        if enabled() and netns:
            try:
                self.recorder = capture.Recorder()
            except OSError:
                self.recorder = None          # no AF_PACKET here: transcripts only
        self.t0 = self.recorder.started if self.recorder else time.monotonic()
        self.t0_real = self.recorder.t0 if self.recorder else time.time()
        self._peers = []                      # grader peers and listeners, in order
        self._addresses = {}                  # id(peer) -> (local, remote or None)
        self.notes = []                       # (time, "left"/"right", text)
        self.followed = []                    # more connections to sample: (local, remote, None)
        self.pcap_path, self.wire_path = paths(build_dir, lesson, name)
        if self.recorder:
            try:
                self.sampler = states.Sampler(self._connections, self.t0, sample_every)
            except OSError:
                self.sampler = None           # no sock_diag here: no states beside the arrows

    # -- the grader's sockets ------------------------------------------------------

    def track(self, peer):
        """Follow a grader socket from now on; its state is sampled at once (a connection
        may be over before the sampler's next tick)."""
        if peer not in self._peers:
            self._peers.append(peer)
        self._learn(peer)
        if self.sampler:
            self.sampler.sample()

    def _learn(self, peer):
        """A grader socket's (local, remote) addresses, learned once, while it is open (a
        closed one has none; a reset one has no remote, but an accepted peer knows it)."""
        key = id(peer)
        if key in self._addresses or peer.sock.family not in (socket.AF_INET, socket.AF_INET6):
            return self._addresses.get(key)
        sock = peer.sock
        try:
            local = sock.getsockname()[:2]
        except OSError:
            return None                       # closed already
        remote = None
        if sock.type == socket.SOCK_STREAM and not hasattr(peer, "accepted"):     # not a listener
            try:
                remote = sock.getpeername()[:2]
            except OSError:                   # reset already
                remote = getattr(peer, "address", None)
                remote = tuple(remote[:2]) if remote else None
        self._addresses[key] = (local, remote)
        return self._addresses[key]

    def _stream_peers(self):
        seen = set()
        for p in list(self._peers):
            for q in [p] + list(getattr(p, "accepted", ())):
                if id(q) not in seen:
                    seen.add(id(q))
                    yield q

    def _connections(self):
        """The grader's TCP connections, for the state sampler (any thread)."""
        out = []
        for p in self._stream_peers():
            if hasattr(p, "accepted") or p.sock.type != socket.SOCK_STREAM:
                continue                      # a listener, or UDP
            known = self._learn(p)
            if known and known[1]:
                out.append((*known, p.sock))
        return out + self.followed

    def _grader_endpoints(self):
        for p in self._stream_peers():
            self._learn(p)
        return {local for local, _ in self._addresses.values()}

    def note(self, side, text):
        """A remark beside one endpoint at this moment (the lesson diagrams use these)."""
        self.notes.append((time.monotonic() - self.t0, side, text))

    # -- what was seen ---------------------------------------------------------------

    def _transcripts(self):
        out = []
        for p in self._stream_peers():
            wire = getattr(p, "wire", None)
            if not wire or not wire.events:
                continue
            if self.recorder and p.sock.family != socket.AF_UNIX:
                continue                      # its packets tell more than its transcript
            times = getattr(wire, "times", [])
            events = [(t - self.t0, d, bytes(item) if isinstance(item, bytearray) else item)
                      for t, (d, item) in zip(times, wire.events)]
            out.append(ladder.Transcript(p.label, events))
        return out

    def _program(self):
        names = {prog.name for prog in self.programs}
        return names.pop() if len(names) == 1 else "program"

    def wire(self, packets=True):
        """A snapshot of everything seen so far, as a ladder.Wire (packets=False: without
        the packets, which are then only taken from the kernel, not decoded)."""
        w = ladder.Wire(grader=self._grader_endpoints(), program=self._program(),
                        transcripts=self._transcripts(), notes=list(self.notes),
                        until=time.monotonic() - self.t0)
        if self.recorder:
            if packets:
                w.segments, w.datagrams = self.recorder.segments, self.recorder.udp
                w.unreachable = self.recorder.unreachable
            else:
                self.recorder.poll()
            w.gaps = [g._replace(time=g.time - self.t0_real) for g in self.recorder.tap.gaps]
        if self.sampler:
            self.sampler.sample()
            w.changes = list(self.sampler.changes)
        return w

    def sections(self):
        """The failure report's picture: the conversation that went on last.  A picture
        that cannot be drawn must not cost the student the rest of the report."""
        try:
            return self._sections()
        except Exception as e:      # noqa: BLE001 -- whatever it is, the report goes on
            return [("ladder", f"(not drawn: {type(e).__name__}: {e})")]

    def _sections(self):
        ladders = ladder.conversations(self.wire())
        if not ladders:
            return []
        pick = max(ladders, key=lambda l: (l.last_event, len(l.rows)))
        unicode = ladder.unicode_ok()
        how = "captured" if pick.source == "capture" else "as the grader's socket saw it"
        charset = ladder.UNICODE if unicode else ladder.ASCII
        caption = ladder._fit(ladder._asciify(f"{how}: {pick.title}", charset), TERMINAL_WIDTH, charset)
        text = caption + "\n" + ladder.to_text(pick, TERMINAL_WIDTH, unicode, TERMINAL_ROWS)
        if len(ladders) > 1:
            text += (f"\n({len(ladders) - 1} more conversation{'s' if len(ladders) > 2 else ''} in "
                     f"this test: ./lab report {self.lesson[:2]} draws every one)")
        out = [("ladder", text)]
        if self.recorder:
            out.append(("pcap", f"{_shown(self.pcap_path)}\n(written as the test ends: tcpdump -nr FILE, "
                                "or Wireshark)"))
        return out

    # -- kept after the test -----------------------------------------------------------

    def finish(self):
        """Stop recording and write the files; returns their paths (pcap may be None).
        Never fails the test: a report is worth less than the grade."""
        try:
            if self.sampler:
                self.sampler.stop()
            return self._save()
        except Exception:           # noqa: BLE001 -- no file, but the grade stands
            return None, None
        finally:
            if self.recorder:
                self.recorder.stop()

    def _save(self):
        w = self.wire(packets=False)      # the pcap has them; decoding 16000 costs 0.2 s
        self.wire_path.parent.mkdir(parents=True, exist_ok=True)
        pcap_file = None
        if self.recorder:
            pcap.write(self.pcap_path, self.recorder.tap.frames)
            pcap_file = self.pcap_path.name
        record = {
            "t0": self.t0_real, "until": w.until, "pcap": pcap_file, "program": w.program,
            "grader": sorted(list(ep) for ep in w.grader),
            "changes": [[c.time, *c.local, *c.peer, c.state] for c in w.changes],
            "gaps": [list(g) for g in w.gaps],
            "notes": [list(n) for n in w.notes],
            "transcripts": [{"title": t.title, "events": [
                [when, d, "bytes", item.decode("latin-1")] if isinstance(item, bytes) else
                [when, d, "mark", str(item)] for when, d, item in t.events]} for t in w.transcripts],
            "programs": [{"name": p.name, "command": p.command(), "status": p.status(),
                          "stdout": [t for _, t, _ in p.stdout_lines][-TAIL:],
                          "stderr": [t for _, t, _ in p.stderr_lines][-TAIL:]}
                         for p in self.programs],
        }
        pcap.overwrite(self.wire_path, json.dumps(record).encode())
        return (self.pcap_path if pcap_file else None), self.wire_path


def _shown(path):
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load(wire_path):
    """(ladder.Wire, the JSON record) from a <test>.wire.json and the pcap beside it."""
    wire_path = Path(wire_path)
    record = json.loads(wire_path.read_text())
    w = ladder.Wire(grader={tuple(ep) for ep in record["grader"]}, program=record["program"],
                    notes=[tuple(n) for n in record["notes"]], until=record.get("until", 0.0))
    w.changes = [states.Change(c[0], (c[1], c[2]), (c[3], c[4]), c[5]) for c in record["changes"]]
    w.gaps = [Gap(*g) for g in record["gaps"]]
    w.transcripts = [ladder.Transcript(t["title"], [
        (e[0], e[1], e[3].encode("latin-1") if e[2] == "bytes" else e[3]) for e in t["events"]])
        for t in record["transcripts"]]
    if record.get("pcap"):
        frames = pcap.read(wire_path.with_name(record["pcap"]))
        decoded = capture.decode(frames, record["t0"])
        w.segments, w.datagrams, w.unreachable = decoded.segments, decoded.datagrams, decoded.unreachable
    return w, record
