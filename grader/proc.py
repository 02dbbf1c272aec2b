"""Running a student program: its own process group, bounded output, deadlines.

A Program records everything it prints (stdout line by line, stderr as text) with
timestamps, so a failure report can show the tail of both.  Every wait has a
deadline; when the program exits early, waits stop at once and say so.
"""
import os
import re
import resource
import signal
import subprocess
import threading
import time

from grader import identity
from grader.failure import GradeFailure
from grader.helpers import time_after_a_miss
from grader.isolation import kill_group, proc_stat

TODO_EXIT_STATUS = 3
# After the program exits, how long its output may still be arriving.  A child it left
# behind can hold the pipe open forever, so we cannot wait for EOF; but a loaded
# machine can delay the reader threads, so be generous (it costs only in that case).
DRAIN_SECONDS = 1.0
OUTPUT_LIMIT = 1 << 20          # bytes per stream before we call it a flood
CPU_LIMIT_SECONDS = 60          # RLIMIT_CPU: a runaway loop dies instead of heating the box
FILE_SIZE_LIMIT = 64 << 20      # RLIMIT_FSIZE
PF_EXITING = 0x4                # linux/sched.h: the task is in do_exit()
# System call numbers of the calls a test may find a program blocked in (blocked_syscall).
SYSCALL_NAMES = {
    "x86_64": {0: "read", 1: "write", 7: "poll", 19: "readv", 20: "writev", 23: "select",
               43: "accept", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg",
               232: "epoll_wait", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait",
               288: "accept4"},
    "aarch64": {63: "read", 64: "write", 65: "readv", 66: "writev", 72: "pselect6", 73: "ppoll",
                202: "accept", 206: "sendto", 207: "recvfrom", 211: "sendmsg", 212: "recvmsg",
                22: "epoll_pwait", 242: "accept4"},
}


def describe_status(returncode):
    if returncode is None:
        return "is still running"
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        extra = {
            signal.SIGPIPE: " -- it wrote to a connection the peer had closed; "
                            "ignore SIGPIPE or use MSG_NOSIGNAL and handle EPIPE",
            signal.SIGSEGV: " -- a crash (bad pointer or buffer overflow)",
            signal.SIGABRT: " -- aborted (assert, or a sanitizer found a bug: see stderr)",
            signal.SIGXCPU: " -- it used more than its CPU-time limit (a busy loop?)",
        }.get(sig, "")
        return f"was killed by {name} ({sig}){extra}"
    if returncode == TODO_EXIT_STATUS:
        return f"exited with status {TODO_EXIT_STATUS}: stopped at an unfinished TODO"
    return f"exited with status {returncode}"


def _student_program():
    _limits()
    identity.as_runner()    # last: gives up root when grading for a grade that counts


def _tool():
    _limits()
    identity.as_builder()   # nginx, wrk and the like: never with the grader's rights


def _limits():
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_SECONDS, CPU_LIMIT_SECONDS + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # the grader ignores nothing, but make sure the child starts with default
    # dispositions whatever the parent did (Python ignores SIGPIPE itself)
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)


# Whose rights a program runs with (grader/identity.py): the submission's programs as
# the runner; tools that face them (a reference server, a load generator) as the builder;
# the grader's own helpers (strace, which must trace the runner) as the grader.
PREEXEC = {"student": _student_program, "tool": _tool, "grader": _limits}


class _StreamReader(threading.Thread):
    """Reads one pipe to EOF, never blocking the program; keeps at most OUTPUT_LIMIT."""

    def __init__(self, pipe, on_line, cond):
        super().__init__(daemon=True)
        self.pipe, self.on_line, self.cond = pipe, on_line, cond
        self.total = 0
        self.flooded = False
        self.tail = ""      # what came after the last '\n' so far (a line still being written)

    def run(self):
        partial = b""
        while True:
            chunk = os.read(self.pipe.fileno(), 65536)
            if not chunk:
                break
            self.total += len(chunk)
            if self.flooded:
                continue  # keep draining so the program never blocks on a full pipe
            if self.total > OUTPUT_LIMIT:
                self.flooded = True
                with self.cond:
                    self.cond.notify_all()
                continue
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for line in lines:
                self.on_line(line.decode("utf-8", "replace"), complete=True)
            with self.cond:
                self.tail = partial.decode("utf-8", "replace")
                self.cond.notify_all()
        if partial:
            with self.cond:
                self.tail = ""
            self.on_line(partial.decode("utf-8", "replace"), complete=False)
        self.pipe.close()
        with self.cond:
            self.cond.notify_all()


class Program:
    """A running student program.  Create through the `lab` fixture: lab.start(...)."""

    def __init__(self, name, argv, cwd=None, env=None, stdin_data=None, launcher=(), rights="student"):
        self.name = name
        self.argv = [str(a) for a in argv]      # what reports show; `launcher` execs it
        self.rights = rights                    # "student", "tool" or "grader": PREEXEC
        self.cond = threading.Condition()
        self.stdout_lines = []      # [(time, text, complete)]
        self.stderr_lines = []
        self.cursor = 0             # stdout lines already consumed by expect_line
        self.started = time.monotonic()
        self.exited_at = None
        self.stretch = None         # seconds -> seconds on this machine (Lab.scaled), if known
        self.proc = subprocess.Popen(
            [*launcher, *self.argv], cwd=cwd, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=PREEXEC[rights],
            close_fds=True)
        self.pgid = self.proc.pid
        self._out = _StreamReader(self.proc.stdout, self._add(self.stdout_lines), self.cond)
        self._err = _StreamReader(self.proc.stderr, self._add(self.stderr_lines), self.cond)
        self._out.start()
        self._err.start()
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()
        if stdin_data is not None:
            self.write_stdin(stdin_data)

    # -- bookkeeping -------------------------------------------------------

    def _add(self, sink):
        def add(text, complete):
            with self.cond:
                sink.append((time.monotonic() - self.started, text, complete))
                self.cond.notify_all()
        return add

    def _wait(self):
        self.proc.wait()
        with self.cond:
            self.exited_at = time.monotonic()
            self.cond.notify_all()

    def _drained(self, reader):
        """True once no more output can be expected from the (exited) program."""
        if not reader.is_alive():
            return True
        return self.exited_at is not None and time.monotonic() - self.exited_at > DRAIN_SECONDS

    def join_output(self, timeout=DRAIN_SECONDS):
        self._out.join(timeout=timeout)
        self._err.join(timeout=timeout)

    def settle_output(self):
        """If the program has exited, let both readers reach EOF (bounded by DRAIN_SECONDS
        from the exit, in all), so what we report is everything it printed.  Never call
        this holding self.cond: the readers need it to store their lines."""
        if self.proc.poll() is None:
            return
        end = (self.exited_at or time.monotonic()) + DRAIN_SECONDS
        for reader in (self._out, self._err):
            reader.join(timeout=max(0.0, end - time.monotonic()))

    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.returncode

    def running(self):
        """False once the program has begun to exit, not only once it is reaped: a server
        that dies of an error on one connection may already have closed its sockets (so a
        test sees that connection end) while the kernel has not finished the exit."""
        if self.proc.poll() is not None:
            return False
        if not self._exiting():
            return True
        try:
            self.proc.wait(timeout=1.0)     # only the reaping is left
        except subprocess.TimeoutExpired:
            pass
        return False

    def _exiting(self):
        """The kernel's PF_EXITING flag on the main thread (/proc/PID/stat, field 9)."""
        fields = proc_stat(self.pid)
        return fields is None or fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)

    @property
    def flooded(self):
        return self._out.flooded or self._err.flooded

    def status(self):
        text = describe_status(self.proc.poll())
        if self.flooded:
            text += f"; it printed more than {OUTPUT_LIMIT // 1024} KiB (an output loop?)"
        return text

    def summary(self):
        """How the program ended, as fields (results.json, gradebook notes): never parsed
        back from the words of status()."""
        rc = self.proc.poll()
        out = {"name": self.name, "state": "running" if rc is None else "signal" if rc < 0 else "exit",
               "printed": bool(self.stdout_lines or self.stderr_lines), "flooded": self.flooded}
        if rc is not None and rc < 0:
            try:
                out["signal"] = signal.Signals(-rc).name
            except ValueError:
                out["signal"] = f"signal {-rc}"
        elif rc is not None:
            out["code"] = rc
        return out

    def command(self):
        return " ".join(self.argv_display())

    def argv_display(self):
        return [os.path.basename(self.argv[0])] + self.argv[1:]

    def stdout_text(self):
        self.settle_output()
        return self._text(self.stdout_lines)

    def stdout_bytes(self):
        """What the program wrote to stdout as text, its line ends included (a last line
        without its newline stays without one): for exact comparisons."""
        self.settle_output()
        with self.cond:
            lines = list(self.stdout_lines)
        text = "\n".join(t for _, t, _ in lines)
        return text + "\n" if lines and lines[-1][2] else text

    def stdout_unterminated(self):
        """What the program has written to stdout after its last newline (while it runs,
        stdout_bytes() holds such a line back until the program ends)."""
        with self.cond:
            last = self.stdout_lines[-1:]
            return last[0][1] if last and not last[0][2] else self._out.tail

    def stderr_text(self):
        self.settle_output()
        return self._text(self.stderr_lines)

    def _text(self, lines):
        with self.cond:
            return "\n".join(t for _, t, _ in lines)

    # -- input and signals -------------------------------------------------

    def write_stdin(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the program is gone or closed stdin; its status tells the story

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    def signal(self, sig):
        if self.running():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """Kill the whole process group and collect the status."""
        kill_group(self.pgid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.close_stdin()

    # -- waiting -----------------------------------------------------------

    def expect_line(self, pattern, timeout=2.0, expected=None, hint=None):
        """Wait for a stdout line (after those already matched) that matches `pattern`.

        pattern is a regex matched against the whole line (re.fullmatch) with
        surrounding whitespace ignored.  Returns the match.  Fails when the deadline
        passes, or when the program exits without printing such a line.
        """
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                while self.cursor < len(self.stdout_lines):
                    _, text, _ = self.stdout_lines[self.cursor]
                    self.cursor += 1
                    m = rx.fullmatch(text.strip())
                    if m:
                        return m
                exited = self.proc.poll() is not None and self._drained(self._out)
                left = deadline - time.monotonic()
                if exited or left <= 0 or self.flooded:
                    break
                self.cond.wait(min(left, 0.1))
        why = (f"it {self.status()} without printing it" if exited or self.proc.poll() is not None
               else f"nothing like it within {timeout:g} s")
        raise GradeFailure(
            expected=expected or f"{self.name} prints a line matching  {rx.pattern}",
            happened=why, hint=hint)

    def wait_exit(self, timeout=2.0):
        """Wait for the program to end; returns its returncode or None if still running."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.settle_output()
        return self.proc.returncode

    def wait_expected_exit(self, timeout=2.0):
        """wait_exit for a program that should end by itself: still running after
        `timeout`, it gets what the machine's slowness adds (`stretch`, Lab.scaled: a skip
        as too slow on a very slow machine) -- asked only then, so a quick machine pays nothing."""
        rc = self.wait_exit(timeout)
        if rc is None and (extra := time_after_a_miss(self.stretch, timeout)):
            rc = self.wait_exit(extra)
        return rc

    def expect_exit(self, status, timeout=2.0, expected=None, hint=None):
        """Wait for the program to exit with `status` (an int, or -SIG for a signal)."""
        rc = self.wait_expected_exit(timeout)
        if rc == status:
            return
        want = describe_status(status)
        raise GradeFailure(
            expected=expected or f"{self.name} {want} within {timeout:g} s",
            happened=f"it {self.status()}" + ("" if rc is not None else f" after {timeout:g} s"),
            hint=hint)

    def expect_fatal(self, pattern, expected, hint=None, timeout=2.0, exit_hint=None, exit_expected=None):
        """The program exits 1 with a stderr message matching `pattern` (re.search): what
        fatal() prints, e.g. r"bind.*Address already in use \\(98\\)".

        exit_expected/exit_hint are shown if it does not exit 1; expected/hint if the
        message is not there."""
        self.expect_exit(1, timeout=timeout, expected=exit_expected, hint=exit_hint)
        if self.wait_stderr(pattern, 0.5) is None:
            raise GradeFailure(expected=expected,
                               happened=f"stderr was: {self.stderr_text() or '(empty)'}", hint=hint)

    def wait_stdout_tail(self, text, timeout=2.0):
        """Wait until the program's stdout ends with `text` with no newline after it, or
        has printed it as a last line; True if so.  For output that is not a whole line:
        it shows whether the program writes at once or keeps a stdio buffer."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self._out.tail.endswith(text) or any(
                        t.endswith(text) for _, t, _ in self.stdout_lines[-1:]):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and self._drained(self._out)):
                    return False
                self.cond.wait(min(left, 0.1))

    def expect_running(self, expected, hint=None):
        if not self.running():
            self.wait_exit(0.5)
            raise GradeFailure(expected=expected, happened=f"{self.name} {self.status()}", hint=hint)

    def wait_stderr(self, pattern, timeout=2.0):
        """Wait until stderr contains a match of `pattern` (re.search); returns it or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self._text(self.stderr_lines))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and self._drained(self._err)):
                    return None
                self.cond.wait(min(left, 0.1))

    # -- resource use (from /proc) -----------------------------------------

    def cpu_seconds(self):
        """User+system CPU time of the program's main process so far."""
        fields = proc_stat(self.pid)
        if fields is None:
            raise ProcessLookupError(f"{self.name} is gone")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run_seconds(self):
        """Time the program's live threads have spent on a CPU so far, to the nanosecond
        (/proc/PID/task/*/schedstat).  cpu_seconds() counts clock ticks (10 ms); this one
        also sees a loop that spins at a few per cent of a busy machine's CPU."""
        total = 0
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            raise ProcessLookupError(f"{self.name} is gone")
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass        # a thread that ended meanwhile
        return total / 1e9

    def runnable_seconds(self):
        """Time the main thread has spent running or waiting for a CPU so far
        (/proc/PID/schedstat), or None where the kernel keeps no such count.  Unlike CPU
        time it does not depend on the machine's load: a busy loop is runnable all the
        time even when it gets little CPU, a program asleep in poll() not at all."""
        try:
            with open(f"/proc/{self.pid}/schedstat") as f:
                run, wait = f.read().split()[:2]
        except (OSError, ValueError):
            return None
        return (int(run) + int(wait)) / 1e9

    def wait_blocked(self, timeout=1.0):
        """Wait until the program sleeps in a system call (state S: accept, read,
        recvfrom...), e.g. before sending a signal that must interrupt that call: sent
        a moment earlier it would land between two calls.  Returns False on timeout.
        Polled, bounded: the kernel has no event for "went to sleep"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = proc_stat(self.pid)
            if fields is None or fields[0] == "S":
                return fields is not None
            time.sleep(0.002)
        return False

    def wait_stopped(self, timeout=1.0):
        """Wait until a SIGSTOP sent to the program has taken effect (state T, or t under a
        tracer): from then on it runs no code of its own until SIGCONT, while the kernel
        still completes handshakes and queues data for it.  Returns False on timeout.
        Polled, bounded: there is no event for it that another process can wait on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = proc_stat(self.pid)
            if fields is None or fields[0] in ("T", "t"):
                return fields is not None
            time.sleep(0.001)
        return False

    def stop_and_continue(self, timeout=1.0):
        """Ctrl-Z then `fg`: wait (bounded) until the program sleeps in a system call,
        SIGSTOP it, wait until that took effect, SIGCONT it.  A few waits (epoll_wait, a
        blocking write) then fail with EINTR although the program installed no handler --
        a correct program retries them.  A program that never sleeps (a busy loop, which
        other tests report) is stopped wherever it is.  Returns False if it did not stop
        in time (the caller skips: the machine was too slow, not the program wrong)."""
        self.wait_blocked(timeout)
        self.signal(signal.SIGSTOP)
        stopped = self.wait_stopped(timeout)
        self.signal(signal.SIGCONT)
        return stopped

    def blocked_syscall(self):
        """(name, [arguments]) of the system call the program's main thread sleeps in,
        from /proc/PID/syscall -- e.g. ("write", [3, buf, 10000, ...]) while a blocking
        write waits for room -- or None when it is running, gone, or the call is not in
        SYSCALL_NAMES.  Arguments are as passed: write's third is the size asked for."""
        try:
            with open(f"/proc/{self.pid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            return None
        if not fields or not fields[0].lstrip("-").isdigit():
            return None                     # "running"
        name = SYSCALL_NAMES.get(os.uname().machine, {}).get(int(fields[0]))
        return (name, [int(a, 16) for a in fields[1:7]]) if name else None

    def open_fds(self):
        """{fd: link target} of the program's main process (read as its own uid where
        the grader may not: grader/probes.py); OSError once it is gone."""
        if not os.path.isdir(f"/proc/{self.pid}/fd"):
            raise ProcessLookupError(self.pid)
        from grader import probes
        return probes.fd_targets(self.pid)

    def set_limit(self, which, limits):
        """prlimit(2) on the program: as the grader where it may; else (the program runs
        as another uid, and this machine denies the grader CAP_SYS_RESOURCE, as Docker
        does) from a short-lived child that becomes the program's uid first."""
        try:
            resource.prlimit(self.pid, which, limits)
        except PermissionError:
            identity.call_as_runner(lambda: resource.prlimit(self.pid, which, limits))

    def fd_count(self):
        """How many descriptors the program's main process holds, or None once it is gone."""
        try:
            return len(self.open_fds())
        except OSError:
            return None

    def children(self):
        """The pids of the program's live child processes (its forks), [] once it is gone."""
        pids = []
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/children") as f:
                    pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def rss_kib(self):
        """The program's resident memory (VmRSS) in KiB; 0 once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def sanitizer(self):
        """'address' or 'thread' when the program is a sanitizer build (which runs helper
        threads of its own and keeps freed memory in quarantine), else None."""
        if not hasattr(self, "_sanitizer"):
            from grader.sanitized import KINDS, is_instrumented
            try:
                self._sanitizer = next((k for k in KINDS if is_instrumented(self.argv[0], k)), None)
            except OSError:
                self._sanitizer = None
        return self._sanitizer

    def thread_count(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))
