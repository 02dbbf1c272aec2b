"""Bounds the kernel enforces on one submission: memory, processes, and a kill that
reaches every process of it.

A cgroup per submission holds the whole grading session.  Its limits are the kernel's,
so a loaded machine cannot make them late (a watchdog polling /proc can be), they count
what no process maps (shared memory, tmpfs files, socket buffers), and afterwards the
cgroup says what happened: the memory limit was hit (the kernel's OOM killer then ended
a student program: the grader is protected with oom_score_adj), or the process limit
stopped a fork.

Machines differ, so each part comes from whichever hierarchy can give it:
  - cgroup v2 (at /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid machine):
    memory.max, pids.max and their *.events files, and cgroup.kill (Linux 5.14);
  - cgroup v1 memory and pids hierarchies, where v2's controllers are not available
    (memory.limit_in_bytes, memory.failcnt, pids.max, pids.events).
What none can give is reported by `missing()`, and the batch says it once.

The submission's programs have a CPU cgroup of their own inside the session's, of the
weight of one process: however many processes a submission runs (a fork bomb spins 250 of
them), the grader keeps its share of the session's CPU time, so it can still end the test
and kill them.  In v2, where a cgroup with children holds no process, the grader has a
leaf of its own beside the programs' (equal weights: half each when both want it); in v1
the programs' group competes with each of the grader's processes.
"""
import os
import re
import signal
import time
from pathlib import Path

PARENT = "socklab"


def _mounts():
    """[(mount point, fstype, super options)] of the cgroup file systems we can see."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, rest = pre.split(), post.split()
        if rest and rest[0] in ("cgroup", "cgroup2"):
            out.append((Path(fields[4]), rest[0], set(rest[2].split(",")) if len(rest) > 2 else set()))
    return out


def _all_read_only():
    """Every cgroup file system we see is mounted read-only (Docker's and podman's way
    without --privileged)."""
    found = False
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, rest = pre.split(), post.split()
        if rest and rest[0] in ("cgroup", "cgroup2"):
            found = True
            if "ro" not in fields[5].split(","):
                return False
    return found


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


# The weight of all the batch's sessions together beside the machine's other processes:
# as much as one busy process per CPU.  A cgroup of the default weight would get the
# share of a single process: on a machine loaded by others (200 runnable tasks here),
# grading ran 2-3 times slower than the same processes outside any cgroup.
PARENT_CPUS = os.cpu_count() or 1


def _v2_parent(root, controllers):
    """<root>/socklab with `controllers` enabled for its children, or None when this
    machine does not let us (no such controller, not root, a container's cgroup)."""
    try:
        available = (root / "cgroup.controllers").read_text().split()
        if not set(controllers) <= set(available):
            return None
        parent = root / PARENT
        parent.mkdir(exist_ok=True)
        enable = " ".join(f"+{c}" for c in controllers)
        _write(root / "cgroup.subtree_control", enable)
        _write(parent / "cgroup.subtree_control", enable)
        if "cpu" in controllers:
            _write(parent / "cpu.weight", str(min(10000, 100 * PARENT_CPUS)))
        return parent
    except OSError:
        return None


LEAVES = ("grader", "programs")


class Cgroup:
    """One submission's cgroup (in every hierarchy that gives a part of it)."""

    def __init__(self, name, memory_bytes, pids, fair_share=False):
        self.name = name
        self.memory_bytes, self.pids, self.fair_share = memory_bytes, pids, fair_share
        self.dirs = {}          # part ("memory", "pids", "kill") -> (version, directory)
        self.leaves = {}        # "programs" (and in v2 "grader") -> directory, in the cpu hierarchy
        mounts = _mounts()
        v2_root = next((m for m, kind, _ in mounts if kind == "cgroup2"), None)
        if v2_root is not None and os.access(v2_root, os.W_OK):
            parent = (_v2_parent(v2_root, ("cpu", "memory", "pids")) or _v2_parent(v2_root, ("memory", "pids"))
                      or _v2_parent(v2_root, ()))
            if parent is not None:
                d = self._make(parent)
                if d is not None:
                    if (d / "memory.max").exists():
                        self.dirs["memory"] = (2, d)
                    if (d / "pids.max").exists():
                        self.dirs["pids"] = (2, d)
                    if (d / "cpu.max").exists():
                        self.dirs["cpu"] = (2, d)
                    if (d / "cgroup.kill").exists():
                        self.dirs["kill"] = (2, d)
                    self.dirs.setdefault("procs", (2, d))
        for part in ("memory", "pids", "cpu"):
            if part in self.dirs:
                continue
            mount = next((m for m, kind, opts in mounts if kind == "cgroup" and part in opts), None)
            if mount is not None and os.access(mount, os.W_OK):
                try:
                    (mount / PARENT).mkdir(exist_ok=True)
                    if part == "cpu":
                        _write(mount / PARENT / "cpu.shares", str(1024 * PARENT_CPUS))
                except OSError:
                    continue
                d = self._make(mount / PARENT)
                if d is not None:
                    self.dirs[part] = (1, d)
        if "cpu" in self.dirs:
            self.leaves = _make_leaves(*self.dirs["cpu"])
        self._limit()

    def _make(self, parent):
        d = parent / self.name
        _sweep_stale(parent)
        try:
            if d.exists():              # left by a batch that was killed: empty it first
                _remove_tree(d, kill=True)
            d.mkdir()
            return d
        except OSError:
            return None

    def _limit(self):
        for part, (version, d) in list(self.dirs.items()):
            try:
                if part == "memory" and version == 2:
                    _write(d / "memory.max", str(self.memory_bytes))
                    if (d / "memory.swap.max").exists():
                        _write(d / "memory.swap.max", "0")
                elif part == "memory":
                    _write(d / "memory.limit_in_bytes", str(self.memory_bytes))
                    # v1 counts socket buffers only once a TCP limit is set
                    if (d / "memory.kmem.tcp.limit_in_bytes").exists():
                        _write(d / "memory.kmem.tcp.limit_in_bytes", str(self.memory_bytes))
                elif part == "cpu" and self.fair_share:
                    # a share, not a cap: each submission's cgroup has the same weight, so
                    # one that spins takes CPU from its own grading, never from another's;
                    # a hard quota (cpu.max) measured twice as slow on a busy machine
                    _write(d / ("cpu.weight" if version == 2 else "cpu.shares"),
                           "100" if version == 2 else "1024")
                elif part == "pids":
                    _write(d / "pids.max", str(self.pids))
            except OSError:
                del self.dirs[part]     # a limit we cannot set is not enforced

    def missing(self):
        """The parts this machine could not give, in words (empty: all enforced); when
        every cgroup file system is mounted read-only (a container not given them), the
        last word says so."""
        words = {"memory": "a kernel memory limit", "pids": "a kernel process limit",
                 "kill": "killing by cgroup", "cpu": "a share of the CPUs"}
        missing = [w for part, w in words.items() if part not in self.dirs and (part != "cpu" or self.fair_share)]
        if "programs" not in self.leaves:
            missing.append("a CPU share for the programs apart from the grader's (a fork bomb may "
                           "then slow its grading until it is stopped)")
        if missing and not self.dirs and _all_read_only():
            missing[-1] += " (the cgroup file systems are mounted read-only here)"
        return missing

    def directories(self):
        return sorted({d for _, d in self.dirs.values()})

    def _every_directory(self):
        return self.directories() + list(self.leaves.values())

    def join(self):
        """Put the calling process in every directory -- in v2, in the grader's leaf when
        there are leaves (a child before exec: preexec_fn)."""
        split = self.leaves["grader"].parent if "grader" in self.leaves else None
        for d in self.directories():
            _write((self.leaves["grader"] if d == split else d) / "cgroup.procs", "0")

    def open_programs(self):
        """A descriptor open for writing on the programs' leaf's cgroup.procs, or None.
        Opened here, as root: the kernel checks a migration against the credentials of
        whoever opened the file, so the grader (root of nothing outside its sandbox) moves
        each program there by writing "0" to it before the program's exec."""
        leaf = self.leaves.get("programs")
        try:
            return os.open(leaf / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) if leaf else None
        except OSError:
            return None

    # -- what happened --------------------------------------------------------------

    def memory_exceeded(self):
        """True once the memory limit has made the kernel's OOM killer act (hitting the
        limit alone only reclaims caches, which harms nobody)."""
        version, d = self.dirs.get("memory", (None, None))
        try:
            if version == 2:
                events = _counters(d / "memory.events")
                return events.get("oom", 0) > 0 or events.get("oom_kill", 0) > 0
            if version == 1:
                control = _counters(d / "memory.oom_control")
                return control.get("oom_kill", 0) > 0 or control.get("under_oom", 0) > 0
        except (OSError, ValueError):
            pass
        return False

    def pids_exceeded(self):
        """True once the process limit refused a fork or a thread (Linux before 6.2 counts
        the refusal in the cgroup of the process that forked: a leaf, when there are)."""
        _, d = self.dirs.get("pids", (None, None))
        if d is None:
            return False
        for where in [d, *self.leaves.values()]:
            try:
                if _counters(where / "pids.events").get("max", 0) > 0:
                    return True
            except OSError:
                pass
        return False

    def peak_memory(self):
        """The most memory the cgroup held at once, in bytes (None if unknown)."""
        version, d = self.dirs.get("memory", (None, None))
        name = {2: "memory.peak", 1: "memory.max_usage_in_bytes"}.get(version)
        try:
            return int((d / name).read_text()) if name else None
        except (OSError, ValueError):
            return None

    # -- the end ----------------------------------------------------------------------

    def kill(self, seconds=10):
        """SIGKILL every process in the cgroup and wait (bounded) until none is left:
        cgroup.kill where the kernel has it, otherwise each member until the cgroup is
        empty (through pidfds checked against the cgroup: never a stranger's pid)."""
        if "kill" in self.dirs:
            try:
                _write(self.dirs["kill"][1] / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + seconds
        for d in self._every_directory():
            while _kill_members(d) and time.monotonic() < deadline:
                time.sleep(0.02)        # the kernel offers no event for "cgroup empty" in v1

    def remove(self):
        self.kill()
        for d in self.directories():
            try:
                _remove_tree(d)
            except OSError:
                pass


def _make_leaves(version, d):
    """The children of the session's cpu cgroup d (see the module's docstring), or {}
    where the kernel will not: then the programs share the grader's CPU time."""
    leaves = {}
    try:
        if version == 2:
            _write(d / "cgroup.subtree_control", "+cpu")
        for name in (LEAVES if version == 2 else ("programs",)):
            (d / name).mkdir()
            leaves[name] = d / name
        return leaves
    except OSError:
        for leaf in leaves.values():
            try:
                leaf.rmdir()
            except OSError:
                pass
        return {}


def _remove_tree(d, kill=False):
    """Remove cgroup d and its leaves (LEAVES), SIGKILLing their members first if asked;
    OSError where one is not empty."""
    for where in [*(d / n for n in LEAVES if (d / n).is_dir()), d]:
        if kill:
            _kill_members(where)
        where.rmdir()


def _pid_namespace():
    return str(os.stat("/proc/self/ns/pid").st_ino)


def owner_tag():
    """PID-NAMESPACE of this process, for the names of what a batch makes (its cgroups, its
    work folders): two batches in different pid namespaces (a container sharing /sys) may
    have the same pid, never the same tag."""
    return f"{os.getpid()}-{_pid_namespace()}"


def owner_ended(pid, namespace):
    """The batch of tag PID-NAMESPACE was one of this pid namespace's, and has ended.
    Another namespace's is not ours to judge."""
    return namespace == _pid_namespace() and pid.isdigit() and not Path(f"/proc/{pid}").exists()


def _sweep_stale(parent):
    """Remove the cgroups a killed batch of this pid namespace left (grading-N-PID-NS):
    they hold limits nobody uses.  Only empty ones (rmdir refuses others): when a batch
    dies its sandboxes' pid namespaces die with it, and nothing here kills."""
    for d in parent.glob("grading-*-*-*"):
        pid, _, namespace = d.name.split("-", 2)[2].partition("-")
        if owner_ended(pid, namespace):
            try:
                _remove_tree(d)
            except OSError:
                pass                    # not empty yet: the next batch tries again


def _counters(path):
    return {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", path.read_text(), re.M)}


def _members(d):
    try:
        return {int(p) for p in (d / "cgroup.procs").read_text().split()}
    except OSError:
        return set()


def _kill_members(d):
    """SIGKILL the cgroup's processes; returns how many were still there.  Each pid is
    opened as a pidfd first and signalled only if, once opened, it is still listed in
    the cgroup: a pid freed and reused meanwhile is never signalled."""
    pids = _members(d)
    handles = {}
    for pid in pids:
        try:
            handles[pid] = os.pidfd_open(pid)
        except OSError:
            pass                        # gone already
    still = _members(d)
    for pid, fd in handles.items():
        try:
            if pid in still:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)
    return len(pids)
