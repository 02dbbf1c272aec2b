"""Test isolation: a private network namespace per test, and no process left behind.

Network namespace
    Each test calls enter_fresh_netns() before it starts anything.  That unshares a
    new network namespace for the calling thread (so every program, peer socket and
    `ss` started by the test lives in it) and brings its loopback up.  Ports, TIME-WAIT
    entries, firewall rules and captured packets therefore never leak between tests.
    It needs CAP_SYS_ADMIN in the current user namespace: real root has it, and
    `./lab` runs the grader under `unshare -r` (a user namespace mapping the user to
    root) when it is not root.  Where neither works (a chroot, Ubuntu's AppArmor
    restriction) tests run on the host loopback with ephemeral ports, and only the
    tests marked needs_netns are skipped.

Processes
    The grader process makes itself a child subreaper, so anything a student program
    forks and abandons is re-parented to us rather than to init.  At teardown we kill
    every descendant that appeared during the test, then reap them.
"""
import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct
import threading
import time

CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_netns_state = {"checked": False, "ok": False, "why": ""}


def _unshare_net():
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _bring_loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def enter_fresh_netns():
    """Move this thread into a new network namespace with lo up.

    Returns True on success; False (once decided, always False) when namespaces
    are not available here.
    """
    st = _netns_state
    if st["checked"] and not st["ok"]:
        return False
    if os.environ.get("SOCKLAB_NO_NAMESPACES"):
        st.update(checked=True, ok=False, why="SOCKLAB_NO_NAMESPACES is set; running on the shared "
                                              "loopback instead")
        return False
    try:
        _unshare_net()
        _bring_loopback_up()
    except OSError as e:
        st.update(checked=True, ok=False,
                  why=f"cannot create a network namespace ({e.strerror}); "
                      "running on the shared loopback instead")
        return False
    st.update(checked=True, ok=True)
    return True


def netns_available():
    return _netns_state["ok"]


def netns_unavailable_reason():
    return _netns_state["why"]


PR_SET_DUMPABLE = 4


def make_undumpable():
    """Other processes of our uid can no longer open /proc/<pid>/fd/* or ptrace us."""
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def become_subreaper():
    try:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:  # not fatal: we still kill process groups we started
        pass


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name, decoded -- [0] is the state
    letter (field 3 in proc(5)), [1] the parent pid, [6] the flags, [11]/[12] utime and
    stime -- or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    return stat[stat.rfind(b")") + 2:].decode().split()


def _children_map():
    """{ppid: [pid, ...]} for every process we can see."""
    kids = {}
    for name in os.listdir("/proc"):
        fields = proc_stat(name) if name.isdigit() else None
        if fields:
            kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def descendants(pid=None):
    pid = os.getpid() if pid is None else pid
    kids = _children_map()
    out, stack = [], list(kids.get(pid, []))
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def kill_new_descendants(before, grace=0.0):
    """SIGKILL every descendant of this process not in `before`; reap them.

    Returns the pids that had to be killed (other than those already dead).
    """
    killed = []
    for _ in range(3):  # a dying process may still fork once; sweep again
        victims = [p for p in descendants() if p not in before]
        if not victims:
            break
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
                killed.append(p)
            except ProcessLookupError:
                pass
        reap_children(timeout=1.0)
    return killed


class OrphanReaper:
    """What init does for the orphans re-parented to it, for a child subreaper that has
    other work to do: a thread reaps, by pid, every zombie child of ours -- except those
    in `keep`, the children a Popen of ours will wait for (a status taken from a Popen
    would read as success)."""

    def __init__(self, period=0.2):
        self.keep, self.period = set(), period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = os.getpid()
        while not self._stop.wait(self.period):
            for pid in _children_map().get(me, []):
                if pid not in self.keep and _is_zombie_or_dying(pid):
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass


def reap_children(timeout=1.0):
    """Reap our direct children that have exited (including adopted orphans)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            # live children remain; wait a little for SIGKILLed ones to die
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
            if not any(_is_zombie_or_dying(p) for p in _children_map().get(os.getpid(), [])):
                return


def _is_zombie_or_dying(pid):
    fields = proc_stat(pid)
    return fields is not None and fields[0] in ("Z", "X")


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    except OSError as e:
        if e.errno != errno.ESRCH:
            raise
