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
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from grader import calibrate, capture, host, identity, isolation, peers, probes, requirements, wire
from grader.failure import GradeFailure, expect, skip
from grader.proc import Program

TAIL_LINES = 8
LINE_CHARS = 300        # a longer line (a 4 KiB argument, a 60 KB reply) is shown cut in the middle


def clipped(line, limit=LINE_CHARS):
    """`line`, or its start and end around a note of how much was left out."""
    if len(line) <= limit:
        return line
    return f"{line[:limit - 80]} …({len(line) - limit + 20} characters)… {line[-60:]}"
# What of the grader's environment a program gets; the rest (PYTEST_CURRENT_TEST names
# the test, say) is the grader's business.
ENV_KEPT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER", "LOGNAME", "TMPDIR", "HOME")
# Beyond this many times slower than the machine the time bounds were set on, a timed
# check is skipped, not stretched: too slow to judge a program fairly.
MOST_SLOWNESS = 10.0
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


def close_peer(p):
    """Close a peer of the test's, once (an accepted connection may be closed already);
    a peer that cannot close is gone anyway."""
    try:
        if not hasattr(p, "sock") or p.sock.fileno() >= 0:
            p.close()
    except OSError:
        pass


class Lab:
    def __init__(self, request, tmp_path):
        self.request = request
        self.lesson = lesson_of(request.node.fspath)
        self.build_dir = build_dir_for(request.config)
        self._basetemp = request.getfixturevalue("tmp_path_factory").getbasetemp()
        if identity.runner() is None:
            self.tmp = tmp_path
        else:
            # graded for a grade that counts: the programs' folder is theirs, and its name
            # does not say which test this is (a program could tell a hidden test)
            self.tmp = Path(tempfile.mkdtemp(prefix="t", dir=self._basetemp))
            identity.give_to_runner(self.tmp, within=self._basetemp)
        self._data_dir = None
        self.programs = []
        self.peers = []
        self.recorders = []
        self.notes = []           # extra report sections added by the test
        self.measured = []        # figures a passing test reports (lab.measure)
        # every program's environment starts from these (grader/sanitized.py adds its own)
        self.default_env = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:print_legend=0",
                            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
        self.launcher = []        # a command that runs each program (e.g. setarch -R)
        self._slowness = None
        self._short_dir = None
        unmet = requirements.unmet_reason(Path(str(request.node.fspath)).resolve().parent)
        if unmet:
            skip("unsupported", unmet)
        self._before = set(isolation.descendants())
        self.netns = isolation.enter_fresh_netns()
        if request.node.get_closest_marker("needs_netns") and not self.netns:
            skip("no-netns", "needs a private network namespace: " + isolation.netns_unavailable_reason())
        # packets, TCP states, pcap: for reports and pictures
        self.wire = wire.Recording(self.lesson, request.node.name, self.build_dir, self.programs, self.netns)
        request.node.user_properties.append(("wire", str(self.wire.wire_path)))

    # -- programs ------------------------------------------------------------

    def program_path(self, name):
        path = self.build_dir / "chapters" / self.lesson / name
        if not path.exists():
            raise GradeFailure(
                expected=f"the program {self.lesson}/{name} is built",
                # the path as the student's tree names it: a batch builds in a temporary
                # folder whose name is nobody's business and differs every run
                happened=f"chapters/{self.lesson}/{name} was not built -- it did not compile, or "
                         "the build has not run",
                hint=f"the compiler's messages are at the top of ./lab check {self.lesson[:2]}'s output")
        return path

    def start(self, name, *args, stdin=None, env=None, cwd=None):
        """Start chapters/<lesson>/<name> with args; returns a Program."""
        return self._start(name, [self.program_path(name), *args], stdin, env, cwd, self.launcher,
                           "student")

    def expect_rejected(self, name, args, message, why, hint=None):
        """Start program `name` with arguments it must refuse: it exits 1 at once with a
        line on stderr that matches `message` (re.search) and prints nothing on stdout.
        `why` says what is wrong with the arguments, for the report."""
        prog = self.start(name, *args)
        shown = " ".join(str(a) for a in args) or "(no arguments)"
        prog.expect_fatal(message, expected=f"`{name} {shown}`: stderr says {why}", hint=hint,
                          exit_expected=f"`{name} {shown}` exits 1 at once: {why}", exit_hint=hint)
        expect(not prog.stdout_text(), expected=f"`{name} {shown}` prints nothing on stdout",
               happened=f"it printed: {prog.stdout_text()[:200]}",
               hint="check the arguments before doing anything else; the message goes to stderr")
        return prog

    def start_command(self, name, argv, stdin=None, env=None, cwd=None, rights="tool"):
        """Start another command (a reference server, a tracer) under the same rules as
        the student's programs: its output recorded and reported, killed at teardown.
        rights="tool" (a server or client facing the programs) runs it with no more rights
        than the submission's compile; "grader" (strace, which must trace the programs)
        with the grader's -- then never on a file the programs can change."""
        return self._start(name, argv, stdin, env, cwd or self.data_dir(), (), rights)

    def run_tool(self, argv, timeout, **kw):
        """subprocess.run of a tool facing the programs (wrk, curl), with the tool's
        rights (see start_command) and the programs' environment."""
        return subprocess.run([str(a) for a in argv], timeout=timeout, env=self.environment(),
                              preexec_fn=identity.as_builder, cwd=self.data_dir(), **kw)

    def environment(self, env=None):
        """A program's environment: a few of the grader's variables, the lab's defaults
        (sanitizer options), then `env`."""
        full = {k: v for k, v in os.environ.items() if k in ENV_KEPT}
        if identity.runner() is not None:
            full["HOME"] = str(self.tmp)
        full.update(self.default_env)
        full.update({k: str(v) for k, v in (env or {}).items()})
        return full

    def _start(self, name, argv, stdin, env, cwd, launcher, rights):
        prog = Program(name, argv, cwd=cwd or self.tmp, env=self.environment(env), stdin_data=stdin,
                       launcher=launcher, rights=rights)
        prog.stretch = self.scaled
        self.programs.append(prog)
        return prog

    def discard(self, prog):
        """Stop a run the grader throws away for a reason of its own (not the program's):
        it is not shown in the report."""
        prog.kill()
        prog.join_output(timeout=1)
        self.programs.remove(prog)

    def data_dir(self):
        """A folder the grader fills for the programs to read (files to serve) and its
        tools write (a reference server's own files): the programs cannot change it."""
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="d", dir=self._basetemp))
            self._data_dir.chmod(0o755)
            identity.give_to(identity.builder(), self._data_dir, within=self._basetemp)
        return self._data_dir

    # -- peers and addresses --------------------------------------------------

    def port(self, type_=socket.SOCK_STREAM):
        return peers.free_port(type_=type_)

    def closed_port(self, type_=socket.SOCK_STREAM):
        """A port where nothing listens, kept so until the test ends: no other test's
        program can bind it, even on a loopback they share."""
        sock, port = peers.closed_port(type_)
        self.peers.append(sock)
        return port

    def _track(self, peer):
        self.peers.append(peer)
        self.wire.track(peer)
        return peer

    def connect(self, port, host="127.0.0.1", **kw):
        return self._track(peers.tcp_connect(port, host, **kw))

    def listen(self, host="127.0.0.1", port=0, backlog=16):
        listener = peers.tcp_listener(host, port, backlog)
        listener.on_accept = self.wire.track
        listener.stretch = self.scaled
        return self._track(listener)

    def udp(self, host="127.0.0.1", port=0):
        return self._track(peers.udp_socket(host, port))

    def unix_connect(self, path, **kw):
        return self._track(peers.unix_connect(path, **kw))

    def unix_listen(self, path, backlog=16):
        listener = peers.unix_listener(path, backlog)
        listener.stretch = self.scaled
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

    def short_dir(self):
        """A folder with a short path, the same for the whole test: a Unix socket's path
        must fit in sun_path's 108 bytes, and pytest's folders can be longer.  The
        programs' own; removed after the test."""
        if self._short_dir is None:
            self._short_dir = Path(tempfile.mkdtemp(prefix="sl-", dir="/tmp" if os.path.isdir("/tmp") else None))
            identity.give_to_runner(self._short_dir, within=self._short_dir.parent)
        return self._short_dir

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

    def can_capture(self):
        """Packets can be recorded: on this test's own loopback, or as real root on the
        host's (the root `unshare -r` makes has no say over the host's network)."""
        return self.netns or host.real_root()

    def capture(self):
        """The packets on this test's loopback from now on."""
        if self.wire.recorder:
            return capture.View(self.wire.recorder)
        if not self.can_capture():
            skip("no-netns", "packet capture needs a private network namespace or root")
        rec = capture.Recorder()
        self.recorders.append(rec)
        return rec

    # -- the machine's speed -----------------------------------------------------

    def slowness(self):
        """How many times slower than the machine the time bounds were set on this one
        is right now (>= 1; grader/calibrate.py), measured once per test, when first asked."""
        if self._slowness is None:
            self._slowness = calibrate.slowness()
        return self._slowness

    def scaled(self, seconds, most=MOST_SLOWNESS):
        """A time bound set on the reference machine, stretched to this one.  On a machine
        more than `most` times slower the test is skipped as too slow -- never failed."""
        factor = self.slowness()
        if factor > most:
            skip("too-slow", f"this machine is too slow for this check right now "
                             f"({calibrate.describe(factor)})")
        return seconds * factor

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
        # every peer's bytes, those a listener of the grader accepted included; with more
        # than one conversation, each says whose it is
        talking = [p for q in self.peers for p in [q, *getattr(q, "accepted", [])]
                   if getattr(p, "wire", None) and p.wire.events]
        for p in talking:
            label = f"{p.label}\n" if len(talking) > 1 else ""
            sections.append(("wire", label + p.wire.render()))
        sections += self.wire.sections()
        for prog in self.programs:
            prog.settle_output()  # a dead program's last words may still be in the pipe
            sections.append(("program", f"{clipped(prog.command())}  -- {prog.status()}"))
            out = [clipped(t) for _, t, _ in prog.stdout_lines][-TAIL_LINES:]
            err = [clipped(t) for _, t, _ in prog.stderr_lines][-TAIL_LINES:]
            sections.append(("stdout", "\n".join(out) if out else "(empty)"))
            sections.append(("stderr", "\n".join(err) if err else "(empty)"))
        return sections

    def teardown(self):
        """Close the peers, kill the programs, remove the test's folders.  Every step runs
        whatever the steps before it met (a fork bomb leaves the grader no thread to
        start): a program left alive would spoil every test after this one.  The first
        error is raised at the end."""
        errors = []

        def step(fn, *args):
            try:
                fn(*args)
            except Exception as e:
                errors.append(e)

        step(self.wire.finish)      # first: the teardown's own FINs and RSTs are no news
        for rec in self.recorders:
            step(rec.stop)
        for p in [a for q in self.peers for a in getattr(q, "accepted", [])] + self.peers:
            step(close_peer, p)
        for prog in self.programs:
            step(prog.kill)
        step(isolation.kill_new_descendants, self._before)
        for prog in self.programs:  # pipes are closed now that every holder is dead
            step(prog.join_output, 1)
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
        if identity.runner() is not None:
            # graded for a grade that counts: what the test's programs wrote goes with it --
            # the folders are bounded, and nothing seen in one test (a hidden one) may be
            # shown in another
            for d in (self.tmp, self._data_dir):
                if d is not None:
                    shutil.rmtree(d, ignore_errors=True)
            step(identity.remove_runner_files)
        if errors:
            raise errors[0]
