"""Running the graders: pytest on some lessons, as the board and the reports need it --
in a user namespace of our own when we are not root (so each test gets a network
namespace), a temporary folder of our own, xdist's noise left out, and Ctrl-C letting
pytest's teardown kill what it started."""
import codecs
import os
import shutil
import signal
import subprocess
import sys

from grader import isolation
from grader.build import BUILD, REPO


def isolation_prefix():
    """Run the grader as root in a user namespace when we are not root, so each test
    can have its own network namespace.  Empty when that is impossible or not needed."""
    if os.geteuid() == 0 or not shutil.which("unshare") or os.environ.get("SOCKLAB_NO_NAMESPACES"):
        return []
    probe = subprocess.run(["unshare", "-r", "-n", "true"], capture_output=True)
    return ["unshare", "-r", "--"] if probe.returncode == 0 else []


def pytest_cmd(paths, extra=(), workers=None, results=None, quiet=False, raw=None):
    # a temporary directory of our own: under `unshare -r` pytest thinks it is root and
    # would otherwise pick /tmp/pytest-of-root, which may belong to someone else
    basetemp = BUILD / "tmp" / f"pytest-{os.getpid()}"
    basetemp.parent.mkdir(parents=True, exist_ok=True)
    cmd = isolation_prefix() + [sys.executable, "-m", "pytest", "-q", "--no-header", "-rN",
                                "--tb=no", "-c", str(REPO / "pytest.ini"), "--rootdir", str(REPO),
                                "--basetemp", str(basetemp)]
    if workers:
        cmd += ["-n", str(workers)]
    if results:
        cmd += ["--results-json", str(results)]
    if raw:
        cmd += ["--raw-results", str(raw)]
    if quiet:
        cmd += ["--socklab-quiet"]
    return cmd + list(extra) + [str(p) for p in paths]


NOISE = ("bringing up nodes...",)  # pytest-xdist's start-up line: nothing a student needs


def run_pytest(paths, extra=(), workers=None, results=None, quiet=False, capture=False, raw=None):
    cmd = pytest_cmd(paths, extra, workers, results, quiet, raw)
    # Orphans of a worker that died before its teardown (Ctrl-C reaches xdist's workers
    # too) come to us rather than to init, and are killed once pytest has ended.
    isolation.become_subreaper()
    before = set(isolation.descendants())
    try:
        return run_filtered(cmd, capture)
    finally:
        isolation.kill_new_descendants(before)
        shutil.rmtree(cmd[cmd.index("--basetemp") + 1], ignore_errors=True)


def run_filtered(cmd, capture, started=None):
    """Run pytest; `started(proc)`, if given, learns its Popen as soon as it exists."""
    if capture:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        cmd.insert(cmd.index("-q"), "--color=yes")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if started:
        started(proc)
    try:
        _pass_on(proc.stdout.fileno())
    except KeyboardInterrupt:
        _let_it_clean_up(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.wait())


def _pass_on(fd):
    """Copy pytest's output to ours as it comes, without the NOISE lines.  Not line by
    line: a line of progress dots ends only after ~80 tests, which on a slow machine (a
    VM under software emulation) is an hour of seeing nothing."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    while True:
        block = os.read(fd, 65536)
        pending += decoder.decode(block, final=not block)
        *lines, pending = pending.split("\n")
        out = "".join(line + "\n" for line in lines if line.strip() not in NOISE)
        # a partial line goes out now, unless it may still become a NOISE line
        if pending and not any(n.startswith(pending.strip()) for n in NOISE) or not block:
            out, pending = out + pending, ""
        if out:
            sys.stdout.write(out)
            sys.stdout.flush()
        if not block:
            return


def _let_it_clean_up(proc, timeout=15):
    """After Ctrl-C: pytest's teardown kills every program it started, so wait for it
    (quietly: its KeyboardInterrupt tracebacks are no news) rather than leave it behind."""
    proc.send_signal(signal.SIGINT)     # in case the interrupt reached only us
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bad_k_expression(expr):
    """Why pytest would reject `-k expr` (under xdist it crashes instead of saying so)."""
    try:
        from _pytest.mark.expression import Expression, ParseError
    except ImportError:     # another pytest: let it judge for itself
        return None
    try:
        Expression.compile(expr)
    except ParseError as e:
        return str(e)
    return None
