"""The `lab` fixture: everything a lesson test needs, cleaned up afterwards.

    def test_server_greets_each_client(lab):
        port = lab.port()
        server = lab.start("server", port)
        server.expect_line(rf"listening on 0\\.0\\.0\\.0:{port}")
        peer = lab.connect(port)
        ...

Everything started or opened through `lab` is tracked: on failure the report shows
each program's command, exit status and output tail, and each peer's bytes on the
wire; at teardown every process is killed (its whole group, and anything it left
behind) and every socket closed.
"""
import os
import socket
import time
from pathlib import Path

import pytest

from grader import capture, isolation, peers, probes, wire
from grader.failure import GradeFailure
from grader.proc import Program

TAIL_LINES = 8
REPO = Path(__file__).resolve().parent.parent


def build_dir_for(config):
    explicit = config.getoption("socklab_build_dir")
    if explicit:
        return Path(explicit).resolve()
    variant = "solutions" if config.getoption("socklab_solutions") else "student"
    if config.getoption("socklab_sanitize"):
        variant += "-asan"
    return REPO / "build" / variant


def lesson_of(path):
    """chapters/01-sockets/test_x.py -> '01-sockets'."""
    return Path(path).resolve().parent.name


class Lab:
    def __init__(self, request, tmp_path):
        self.request = request
        self.lesson = lesson_of(request.node.fspath)
        self.build_dir = build_dir_for(request.config)
        self.tmp = tmp_path
        self.programs = []
        self.peers = []
        self.recorders = []
        self.notes = []           # extra report sections added by the test
        self.measured = []        # figures a passing test reports (lab.measure)
        # every program's environment starts from these (grader/sanitized.py adds its own)
        self.default_env = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:print_legend=0",
                            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
        self.launcher = []        # a command that runs each program (e.g. setarch -R)
        self._before = set(isolation.descendants())
        self.netns = isolation.enter_fresh_netns()
        if request.node.get_closest_marker("needs_netns") and not self.netns:
            pytest.skip("needs a private network namespace: " + isolation.netns_unavailable_reason())
        # packets, TCP states, pcap: for reports and pictures
        self.wire = wire.Recording(self.lesson, request.node.name, self.build_dir, self.programs, self.netns)
        request.node.user_properties.append(("wire", str(self.wire.wire_path)))

    # -- programs ------------------------------------------------------------

    def program_path(self, name):
        path = self.build_dir / "chapters" / self.lesson / name
        if not path.exists():
            raise GradeFailure(
                expected=f"the program {self.lesson}/{name} is built",
                happened=f"{path} does not exist -- it did not compile, or the build has not run",
                hint=f"the compiler's messages are at the top of ./lab check {self.lesson[:2]}'s output")
        return path

    def start(self, name, *args, stdin=None, env=None, cwd=None):
        """Start chapters/<lesson>/<name> with args; returns a Program."""
        return self._start(name, [self.program_path(name), *args], stdin, env, cwd, self.launcher)

    def start_command(self, name, argv, stdin=None, env=None, cwd=None):
        """Start another command (a reference server, say) under the same rules as the
        student's programs: its output recorded and reported, killed at teardown."""
        return self._start(name, argv, stdin, env, cwd, ())

    def _start(self, name, argv, stdin, env, cwd, launcher):
        full_env = dict(os.environ)
        for key, value in self.default_env.items():
            full_env.setdefault(key, value)
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        prog = Program(name, argv, cwd=cwd or self.tmp, env=full_env, stdin_data=stdin,
                       launcher=launcher)
        self.programs.append(prog)
        return prog

    # -- peers and addresses --------------------------------------------------

    def port(self, type_=socket.SOCK_STREAM):
        return peers.free_port(type_=type_)

    def _track(self, peer):
        self.peers.append(peer)
        self.wire.track(peer)
        return peer

    def connect(self, port, host="127.0.0.1", **kw):
        return self._track(peers.tcp_connect(port, host, **kw))

    def listen(self, host="127.0.0.1", port=0, backlog=16):
        listener = peers.tcp_listener(host, port, backlog)
        listener.on_accept = self.wire.track
        return self._track(listener)

    def udp(self, host="127.0.0.1", port=0):
        return self._track(peers.udp_socket(host, port))

    def unix_connect(self, path, **kw):
        return self._track(peers.unix_connect(path, **kw))

    def unix_listen(self, path, backlog=16):
        listener = peers.unix_listener(path, backlog)
        return self._track(listener)

    def unix_dgram(self, path=None):
        return self._track(peers.unix_dgram_socket(path))

    def wait_listening(self, port, proto="tcp", timeout=2.0, program=None):
        """Wait until a socket LISTENs on `port` here (or `program` exits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probes.find(proto, state="LISTEN" if proto == "tcp" else None, local_port=port):
                return
            if program is not None and not program.running():
                break
            time.sleep(0.01)  # the kernel offers no event for "someone listens"; bounded poll
        raise GradeFailure(expected=f"a socket listening on port {port} within {timeout:g} s",
                           happened=(f"{program.name} {program.status()}" if program and not program.running()
                                     else "no listening socket appeared"),
                           sockets=probes.render(probes.sockets(proto)))

    # -- kernel views -----------------------------------------------------------

    def sockets(self, proto="tcp", **filters):
        return probes.find(proto, **filters)

    def listening(self, program, **filters):
        """The LISTEN sockets matching filters (local_port=, pid=).  When there are none
        because `program` has already exited, that is the failure to report -- not a
        guess about why it listens on the wrong address."""
        found = probes.find("tcp", state="LISTEN", **filters)
        if not found and not program.running():
            program.wait_exit(0.5)
            raise GradeFailure(
                expected=f"{program.name} keeps listening until it is stopped",
                happened=f"it {program.status()} before the grader could look at its socket",
                hint="after listen(), serve clients in a loop; only a signal or an error ends it")
        return found

    def sockets_text(self, proto="tcp"):
        """All sockets of `proto` in this test's namespace, as `ss` shows them."""
        return probes.render(probes.sockets(proto))

    def capture(self):
        """The packets on this test's loopback from now on."""
        if self.wire.recorder:
            return capture.View(self.wire.recorder)
        if not self.netns and os.geteuid() != 0:
            pytest.skip("packet capture needs a private network namespace or root")
        rec = capture.Recorder()
        self.recorders.append(rec)
        return rec

    def note(self, title, text):
        """Add a section to this test's report if it fails."""
        self.notes.append((title, text))

    def measure(self, text):
        """A figure worth showing even when the test passes (e.g. a throughput ratio):
        printed under the test's line on the board and kept in results.json."""
        self.measured.append(text)

    # -- report and cleanup ------------------------------------------------------

    def report_sections(self):
        sections = list(self.notes)
        for p in self.peers:
            wire = getattr(p, "wire", None)
            if wire and wire.events:
                sections.append(("wire", wire.render()))
        sections += self.wire.sections()
        for prog in self.programs:
            prog.settle_output()  # a dead program's last words may still be in the pipe
            sections.append(("program", f"{prog.command()}  -- {prog.status()}"))
            out = [t for _, t, _ in prog.stdout_lines][-TAIL_LINES:]
            err = [t for _, t, _ in prog.stderr_lines][-TAIL_LINES:]
            sections.append(("stdout", "\n".join(out) if out else "(empty)"))
            sections.append(("stderr", "\n".join(err) if err else "(empty)"))
        return sections

    def teardown(self):
        self.wire.finish()      # first: the teardown's own FINs and RSTs are no news
        for rec in self.recorders:
            rec.stop()
        for p in self.peers:
            try:
                p.close() if not hasattr(p, "sock") or p.sock.fileno() >= 0 else None
            except OSError:
                pass
        for prog in self.programs:
            prog.kill()
        isolation.kill_new_descendants(self._before)
        for prog in self.programs:  # pipes are closed now that every holder is dead
            prog.join_output(timeout=1)
