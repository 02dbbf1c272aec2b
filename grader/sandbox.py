"""Grading one submission for a grade that counts (batch, Gradescope, `./lab grade` as
root): its code runs with less privilege than its grader, sees almost nothing of the
machine, and is bounded by the kernel.  docs/instructor.md, "Threat model", says the
same for instructors; this is how.

privilege   Each worker slot has three unprivileged uids of its own: the *builder*
            compiles the submission (and runs the tools that face it: nginx, wrk), the
            *runner* runs its programs (grader/identity.py), the *grader* runs pytest --
            as root of a user namespace that maps just these three uids, so it can give
            each test a network namespace and switch to the other two, yet holds no
            capability over anything of the machine's (its sysctls, devices, files).
            The runner and the builder cannot ptrace, pidfd_getfd, signal or write
            anything of the grader's.  Results travel through a pipe only the grader
            holds (grader/session.py), and are checked against the tests the graders
            collect; their points are the graders' own.
view        bubblewrap makes a new root: /usr and /etc read-only, the course copy with
            the submission's sources read-only at /socklab/course, size-bounded tmpfs
            for the build, the tests' folders, /tmp, /var/tmp, /dev/shm and /run; new
            pid, IPC and UTS namespaces.  The instructor's checkout, other submissions,
            the gradebook and the host's /run are not in it.  The graders' own files in
            the copy are root's alone (hidden tests stay hidden).
resources   A cgroup per submission (grader/cgroups.py): memory (shared memory, tmpfs and
            socket buffers included), process count and CPU time; rlimits besides.  The end: the sandbox's pid
            namespace dies with its first process (a child of ours, never reaped before
            it is killed), then cgroup.kill or pidfds checked against the cgroup, then
            kill(-1) *as* each uid of the slot -- no pid that may have been reused is
            ever signalled.

Where the machine lacks a part (no root: no uid switch; no namespaces, or a container's
masked /proc: no view; no cgroup, or a read-only one: a polling memory watchdog), the
grading still runs and `Outcome.not_enforced` says what was missing and why; the batch
prints it once.
"""
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import cgroups, host, identity, isolation

REPO = Path(__file__).resolve().parent.parent
STATE = Path("/var/lib/socklab")       # root's: slot locks and work folders
# Slot i's uids: runner UID_BASE + 3i, builder + 1, grader + 2.  Slots are claimed with
# lock files under /var/lib/socklab; installations that share a kernel but not that
# folder (containers) must each set SOCKLAB_UID_BASE to a range of their own.
UID_BASE = int(os.environ.get("SOCKLAB_UID_BASE", 63000))
MOST_SLOTS = 500
SOURCE_SUFFIXES = (".c", ".h")
SOURCE_LIMIT = 1 << 20                  # bytes of one source file taken from a submission
INSIDE = Path("/socklab")               # where the sandbox sees its course, build and tmp
CLONE_NEWUSER = 0x10000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Limits:
    memory_mib: int = 1024      # resident memory of the whole session (a correct course peaks near 150)
    pids: int = 256             # processes and threads of the whole session, grader included
    build_seconds: int = 120
    lesson_seconds: int = 60
    build_mib: int = 512        # the build folder (tmpfs, counted in memory too)
    tmp_mib: int = 128          # each of /tmp, /var/tmp, /dev/shm and the tests' folder
    report_bytes: int = 256 << 10


@dataclass
class Outcome:
    build_ok: bool = False
    build_log: str = ""
    results: dict = field(default_factory=dict)   # nodeid -> raw result (grader/results.py)
    report: str = ""
    events: list = field(default_factory=list)    # [(kind, words)]: what the session did
    taken: list = field(default_factory=list)     # source files taken from the submission
    refused: list = field(default_factory=list)   # [(path, why)]
    peak_mib: int = None
    seconds: float = 0.0
    not_enforced: list = field(default_factory=list)
    outside: list = field(default_factory=list)   # [(file, path)] of #includes from outside
    sources: dict = field(default_factory=dict)   # {taken path: bytes}, for the similarity report
    lessons: list = field(default_factory=list)


# -- worker slots ------------------------------------------------------------------------

class Slot:
    """A worker slot: its three uids, held by a lock while this process uses them (the
    kernel drops the lock if it dies).  Two batches sharing a uid would kill each
    other's programs."""

    def __init__(self, index, lock):
        self.index, self._lock = index, lock
        self.runner = UID_BASE + 3 * index
        self.builder = self.runner + 1
        self.grader = self.runner + 2

    @property
    def uids(self):
        return (self.runner, self.builder, self.grader)

    def release(self):
        os.close(self._lock)


def state_dir(*parts, mode=0o700):
    """A folder under /var/lib/socklab that root owns; the last one gets `mode` (the
    work folder is passable, not listable: each session's own folder in it has an
    unguessable name and lets in only its grader)."""
    path = STATE.joinpath(*parts)
    chain = [STATE, *[STATE.joinpath(*parts[:i + 1]) for i in range(len(parts))]]
    for p in chain:
        p.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(p)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
            raise SystemExit(f"{p} is not a folder of root's: refusing to use it")
        os.chmod(p, mode if p == path else 0o711)
    return path


def sweep_work(work_dir):
    """Remove the work folders of killed batches of this pid namespace (s-PID-NS-x)."""
    for d in work_dir.glob("s-*-*-*"):
        _, pid, namespace, _ = d.name.split("-", 3)
        if cgroups.owner_ended(pid, namespace):
            shutil.rmtree(d, ignore_errors=True)     # rmtree never follows a link


def claim_slots(count):
    """`count` slots no other batch on this machine holds.  Without root: slots without
    uids of their own (everything runs as the instructor)."""
    if not host.real_root():
        return [Slot(i, os.open(os.devnull, os.O_RDONLY)) for i in range(count)]
    locks = state_dir("locks")
    slots = []
    for index in range(MOST_SLOTS):
        # O_NOFOLLOW and no O_TRUNC: the folder is root's, and even so a lock file is
        # never a link and never emptied
        fd = os.open(locks / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        slots.append(Slot(index, fd))
        if len(slots) == count:
            return slots
    raise SystemExit(f"no free sandbox slot: {MOST_SLOTS} are in use")


# -- the course copy and the submission's sources -------------------------------------------

def course_parts(lesson_names):
    return ["CMakeLists.txt", "cmake", "lib", "grader", "pytest.ini", *[f"chapters/{n}" for n in lesson_names]]


def _is_grader_file(rel):
    """What the submission's uids must not read: the graders (hidden tests), hints."""
    name = rel.name
    return rel.parts[0] == "grader" or name == "pytest.ini" or name == "hints.md" or \
        (name.startswith("test_") and name.endswith(".py")) or name == "conftest.py"


def copy_course(dest, lesson_names, owner=None):
    """The parts of the course grading needs, owned by `owner` (the grader's uid; None:
    whoever runs this, no chown -- a normal user may not give files away): sources
    readable by all, the graders by it alone."""
    for part in course_parts(lesson_names):
        src = REPO / part
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()
                                                    and "__pycache__" not in p.parts)
        for f in files:
            rel = f.relative_to(REPO)
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out)
            os.chmod(out, 0o600 if _is_grader_file(rel) else 0o644)
            if owner is not None:
                os.lchown(out, owner, owner)
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        os.chmod(d, 0o700 if "grader" in d.relative_to(dest).parts[:1] else 0o755)
        if owner is not None:
            os.lchown(d, owner, owner)


def _is_dir(path):
    """A real folder (a link to one is not)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _no_link_between(root, path):
    """True when no component of `path` below `root` (nor root) is a link."""
    parts = path.relative_to(root).parts
    return all(not os.path.islink(root.joinpath(*parts[:i])) for i in range(len(parts) + 1))


def find_chapter_dir(root, lesson):
    """Where a submission keeps a lesson's files: <root>/[.../]chapters/<lesson> or
    <root>/<lesson> -- never through a link, at any depth."""
    for candidate in (root / "chapters" / lesson, root / lesson):
        if _is_dir(candidate) and _no_link_between(root, candidate):
            return candidate
    for top, dirs, _ in os.walk(root):              # does not follow links
        if Path(top).name == "chapters" and lesson in dirs and _is_dir(Path(top) / lesson):
            return Path(top) / lesson
    return None


ARCHIVE_MEMBERS = 5000          # members looked at, at most
ARCHIVE_BYTES = 32 << 20        # bytes written, at most


def unpack(archive, dest, refused):
    """The C sources of a zip or tar (*.c, *.h: what grading takes), regular files each
    at most SOURCE_LIMIT, ARCHIVE_BYTES in all, none outside dest; links, odd members
    and names outside dest refused.  An archive of anything else costs nothing."""
    dest = dest.resolve()
    budget = {"members": ARCHIVE_MEMBERS, "bytes": ARCHIVE_BYTES}

    def place(name, size):
        budget["members"] -= 1
        if budget["members"] < 0 or not name.endswith(SOURCE_SUFFIXES):
            return None
        target = (dest / name).resolve()
        if dest not in target.parents:
            refused.append((name, "outside the archive's folder"))
            return None
        if size > SOURCE_LIMIT or size > budget["bytes"]:
            refused.append((name, f"larger than {SOURCE_LIMIT >> 10} KiB, or past the archive's "
                                  f"{ARCHIVE_BYTES >> 20} MiB"))
            return None
        budget["bytes"] -= size
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    refused.append((info.filename, "a link (links are never followed)"))
                    continue
                target = place(info.filename, info.file_size)
                if target is not None:
                    with z.open(info) as src:   # the size the header claims, not a byte more
                        target.write_bytes(src.read(info.file_size))
        return
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isdir():
                continue
            if not m.isfile():
                if m.name.endswith(SOURCE_SUFFIXES):
                    refused.append((m.name, "a link or a device (only regular files are taken)"))
                continue
            target = place(m.name, m.size)
            if target is not None:
                with t.extractfile(m) as src:
                    target.write_bytes(src.read())


def _read_regular(path):
    """A regular file's bytes, opened without following a link (None if it is not one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(SOURCE_LIMIT + 1)


def take_sources(sub, course, lesson_names, staging):
    """Copy the submission's *.c and *.h of each lesson (and its lib/) over the course
    copy's.  Returns (taken, refused): only regular files are taken; a link, anywhere,
    is refused and named."""
    taken, refused = [], []
    if os.path.islink(sub):
        return taken, [(sub.name, "a link (links are never followed)")]
    if _is_dir(sub):
        root = sub
    else:
        root = staging
        unpack(sub, staging, refused)
    for name in lesson_names:
        for where in (root / "chapters" / name, root / name):
            if not _no_link_between(root, where) and os.path.lexists(where):
                refused.append((str(where.relative_to(root)), "behind a link (links are never followed)"))
                break
        found = find_chapter_dir(root, name)
        if found is None:
            continue
        for sub_dir in ("", "lib"):
            here = found / sub_dir
            dest = course / "chapters" / name / sub_dir
            if sub_dir and os.path.islink(here):
                refused.append((f"{name}/lib", "a link to a folder (links are never followed)"))
                continue
            if not _is_dir(here) or not _is_dir(dest):
                continue
            for entry in sorted(os.scandir(here), key=lambda e: e.name):
                if not entry.name.endswith(SOURCE_SUFFIXES):
                    continue
                rel = f"{name}/{sub_dir + '/' if sub_dir else ''}{entry.name}"
                data = _read_regular(entry.path)
                if data is None:
                    refused.append((rel, "not a regular file (links are never followed)"))
                elif len(data) > SOURCE_LIMIT:
                    refused.append((rel, f"larger than {SOURCE_LIMIT >> 10} KiB"))
                else:
                    out = dest / entry.name
                    out.write_bytes(data)
                    os.chmod(out, 0o644)
                    taken.append(rel)
    return taken, refused


KEPT_SOURCES_LIMIT = 4 << 20     # bytes of a submission's *.c kept for the similarity report


def kept_sources(course, taken):
    """{path: bytes} of the programs taken (read before anything of the submission ran),
    up to KEPT_SOURCES_LIMIT in all."""
    kept, size = {}, 0
    for rel in taken:
        if rel.endswith(".c"):
            data = (course / "chapters" / rel).read_bytes()
            if size + len(data) <= KEPT_SOURCES_LIMIT:
                kept[rel] = data
                size += len(data)
    return kept


# -- running the session -----------------------------------------------------------------

INCLUDE = re.compile(rb'^[ \t]*#[ \t]*(?:include|include_next|embed)[ \t]*[<"]((?:/|\.\./)[^>"]*)[>"]', re.M)


def includes_outside(course, taken):
    """[(file, path)]: the submission's #includes of files outside the course copy and
    the system's headers (the instructor's solutions, say: the sandbox does not show
    them, and the note says what was tried)."""
    found = []
    allowed = (course.resolve(), Path("/usr/include"))
    for rel in taken:
        source = course / "chapters" / rel
        try:
            text = source.read_bytes()
        except OSError:
            continue
        for m in INCLUDE.finditer(text):
            path = m.group(1).decode("utf-8", "replace")
            target = Path(os.path.normpath(source.parent / path))
            if not any(a == target or a in target.parents for a in allowed):
                found.append((rel, path))
    return found


def _bwrap_works(slot):
    """bwrap, if it can make the view here the way a session will: as root, from inside a
    user namespace of the slot's uids (ours while we hold it: no other batch kills the
    probe).  In a container whose /proc has masked parts (Docker's and podman's
    /proc/kcore and the like, or bwrap's own read-only /proc/sys), a user namespace may
    not mount a new /proc: then there is no private view, and the session says so, with
    why (`_bwrap_works.why`).  A success is remembered for the process; a failure, which
    a moment's load may cause, is tried again by the next session."""
    bwrap = shutil.which("bwrap")
    if not bwrap or os.environ.get("SOCKLAB_NO_NAMESPACES"):
        _bwrap_works.why = "bubblewrap is not installed" if not bwrap else "SOCKLAB_NO_NAMESPACES is set"
        return None
    with _bwrap_lock:
        if bwrap in _bwrap_ok:
            return bwrap
        root = host.real_root()
        probe = [bwrap, *_bwrap_base(Limits(), userns=not root), "--", "true"]
        preexec = (lambda: enter_user_namespace(slot)) if root else None
        isolation.become_subreaper()    # the probe's orphan (below) comes to us, not to init
        try:
            r = subprocess.run(probe, capture_output=True, preexec_fn=preexec, timeout=60)
            ok, err = r.returncode == 0, r.stderr.decode("utf-8", "replace").strip()
        except (OSError, subprocess.SubprocessError) as e:
            ok, err = False, str(e)
        reap_adopted(())                # bubblewrap's inner process, never waited for by its outer one
        if ok:
            _bwrap_ok.add(bwrap)
            _bwrap_works.why = None
            return bwrap
        _bwrap_works.why = "bubblewrap cannot make one here: " + (
            err.splitlines()[0].removeprefix("bwrap: ") if err else "it failed")
        return None


_bwrap_lock = threading.Lock()
_bwrap_ok = set()                       # the bwrap paths a probe found working
_bwrap_works.why = None


def _bwrap_base(limits, userns):
    """The view: the machine's programs and settings read-only, everything writable a
    size-bounded tmpfs of the sandbox's own."""
    args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--new-session"]
    if userns:
        args += ["--unshare-user", "--uid", "0", "--gid", "0"]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    size = str(limits.tmp_mib << 20)
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        args += ["--size", size, "--perms", "1777", "--tmpfs", d]
    args += ["--size", str(1 << 20), "--perms", "0755", "--tmpfs", "/run"]
    return args


class Session:
    """One submission graded in one slot: the lessons `graded`, and the ones they build
    on (`built`: their libraries, with the submission's sources, are built too)."""

    def __init__(self, slot, graded, built=(), limits=None, expected=None):
        self.slot, self.lessons = slot, list(graded)
        self.chapters = list(dict.fromkeys([*graded, *built]))
        self.limits = limits or Limits()
        self.expected = expected        # {(lesson, test name): points} the graders collect, if known
        self.root = host.real_root()
        self.bwrap = _bwrap_works(slot)
        self.fair_share = False         # an equal CPU share beside the other sessions (cgroup weight)

    def grade(self, sub):
        isolation.become_subreaper()    # orphans of a killed session come to us, to be reaped
        out = Outcome()
        out.lessons = self.chapters
        t0 = time.monotonic()
        work_dir = state_dir("work", mode=0o711) if self.root else None
        if work_dir:
            sweep_work(work_dir)
        # s-PID-NS-random: whose it is, so a killed batch's folder can be told from a live one's
        work = Path(tempfile.mkdtemp(prefix=f"s-{cgroups.owner_tag()}-", dir=work_dir))
        try:
            course = work / "course"
            copy_course(course, self.chapters, owner=self.slot.grader if self.root and self.bwrap else None)
            out.taken, out.refused = take_sources(sub, course, self.chapters, work / "unpacked")
            shutil.rmtree(work / "unpacked", ignore_errors=True)
            out.sources = kept_sources(course, out.taken)
            out.outside = includes_outside(course, out.taken)
            self._run(work, course, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out.seconds = round(time.monotonic() - t0, 1)
        return out

    def _job(self, course, build, tmp, result_fd, grade_seconds):
        return {"lessons": self.lessons, "course": str(course), "build": str(build), "tmp": str(tmp),
                "runner": self.slot.runner if self.root else None,
                "builder": self.slot.builder if self.root else None,
                "build_seconds": self.limits.build_seconds, "grade_seconds": grade_seconds,
                "result_fd": result_fd}

    def _preexec(self, cg):
        """In the session's first process: into the cgroup (as root), then -- with
        bubblewrap, as root -- into a user namespace where it is root over nothing but
        what it creates, mapped to the slot's grader uid."""
        def run():
            if cg.directories():
                cg.join()
            if self.root and self.bwrap:
                enter_user_namespace(self.slot)
        return run

    def _run(self, work, course, out):
        limits = self.limits
        grade_seconds = limits.lesson_seconds * len(self.lessons)
        wall = limits.build_seconds + grade_seconds + 30
        cg = cgroups.Cgroup(f"grading-{self.slot.index}-{cgroups.owner_tag()}", limits.memory_mib << 20, limits.pids,
                            fair_share=self.fair_share)
        out.not_enforced += cg.missing()
        if not self.root:
            out.not_enforced.append("other uids for the submission's code (needs root)")
        read_fd, write_fd = os.pipe()
        bwrap = self.bwrap
        env = {"PATH": host.path_with_sbin("/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1",
               # the instructor's settings of the grader (SOCKLAB_NO_IO_URING, SOCKLAB_SLOWNESS...)
               **{k: v for k, v in os.environ.items() if k.startswith("SOCKLAB_")}}
        if bwrap:
            if self.root:
                os.chown(work, self.slot.grader, self.slot.grader)
                os.chmod(work, 0o700)   # the grader's alone (bubblewrap binds it as the grader)
            job = self._job(INSIDE / "course", INSIDE / "build", INSIDE / "tmp", write_fd, grade_seconds)
            argv = [bwrap, *_bwrap_base(limits, userns=not self.root),
                    "--ro-bind", "/proc/sys", "/proc/sys", "--perms", "0755", "--dir", str(INSIDE),
                    "--ro-bind", str(course), str(INSIDE / "course"),
                    "--size", str(limits.build_mib << 20), "--perms", "0755", "--tmpfs", str(INSIDE / "build"),
                    "--size", str(limits.tmp_mib << 20), "--perms", "0755", "--tmpfs", str(INSIDE / "tmp"),
                    "--chdir", str(INSIDE / "course"), "--clearenv",
                    *[a for k, v in dict(env, HOME=str(INSIDE / "tmp"), PYTHONPATH=str(INSIDE / "course")).items()
                      for a in ("--setenv", k, v)],
                    "--", "/usr/bin/python3", "-m", "grader.session"]
            run_env = None
        else:
            out.not_enforced.append(f"a private view of the machine ({_bwrap_works.why or 'no bubblewrap'}: "
                                    "the submission sees what its uids may read); the grader runs "
                                    "as root")
            os.chmod(work, 0o711)       # passable for the slot's uids; its name is unguessable
            for d in ("build", "tmp"):
                (work / d).mkdir()
            job = self._job(course, work / "build", work / "tmp", write_fd, grade_seconds)
            argv = [sys.executable, "-m", "grader.session"]
            run_env = dict(env, HOME=str(work / "tmp"), PYTHONPATH=str(course))
        watchdog_needed = "memory" not in cg.dirs
        programs_fd = cg.open_programs()
        job["programs_cgroup_fd"] = programs_fd
        # the job on stdin, not argv: a command line is anyone's to read in /proc
        proc = subprocess.Popen(argv, cwd=course, env=run_env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                pass_fds=tuple(fd for fd in (write_fd, programs_fd) if fd is not None),
                                preexec_fn=self._preexec(cg), start_new_session=True)
        os.close(write_fd)
        if programs_fd is not None:
            os.close(programs_fd)
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        watchdog = MemoryWatchdog(proc, limits.memory_mib) if watchdog_needed else None
        record, report = _collect(proc, read_fd, limits.report_bytes, wall)
        timed_out = proc.returncode is None
        self._kill(proc, cg)
        if watchdog:
            watchdog.stop()
        out.report = report
        self._read(record, timed_out, proc.returncode, cg, watchdog, out, wall)
        cg.remove()

    def _kill(self, proc, cg):
        """Everything the session started, gone -- see the module's docstring."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)    # our child, not yet reaped: never a stranger
        proc.wait()
        cg.kill()
        reap_adopted(self.slot.uids)
        if self.root:
            for uid in self.slot.uids:
                kill_every_process_of(uid)
            reap_adopted(self.slot.uids)    # what that killed among the orphans we adopted
            if not self.bwrap:          # no private tmpfs and IPC: remove what they left
                sweep_leftovers(self.slot.uids)

    def _read(self, record, timed_out, returncode, cg, watchdog, out, wall):
        limits = self.limits
        if record:
            build = record.get("build", {})
            out.build_ok, out.build_log = bool(build.get("ok")), build.get("log", "")
            out.results = record.get("results") or {}
            grader = record.get("grader", {})
            if not build.get("ok"):
                out.events.append(("build", "some programs do not compile" if build.get("returncode") is not None
                                   else f"the build took more than {limits.build_seconds} s"))
            if grader.get("timed_out"):
                out.events.append(("time", f"grading took more than {grader['timed_out']} s and was stopped"))
            elif grader.get("returncode") not in (0, 1):
                out.events.append(("grader", f"the grader ended abnormally (status {grader.get('returncode')})"))
        if cg.memory_exceeded() or (watchdog and watchdog.exceeded):
            out.events.append(("memory", f"used more than {limits.memory_mib} MiB of memory: the kernel "
                                         "stopped its largest program"))
        if cg.pids_exceeded():
            out.events.append(("processes", f"tried to run more than {limits.pids} processes and threads at "
                                            "once (a fork bomb?): forks were refused"))
        if timed_out:
            out.events.append(("time", f"the sandbox ran for more than {wall} s and was stopped"))
        elif not record:
            out.events.append(("grader", "the grader ended without a result "
                                         f"({describe_returncode(returncode)})"))
        peak = cg.peak_memory()
        out.peak_mib = (peak >> 20) if peak is not None else (watchdog.peak_kib >> 10 if watchdog else None)
        self._check_results(out)

    def _check_results(self, out):
        """Every test the graders collect has a result, and no other: a test the grader
        never reported is failed, with the reason the session gives."""
        if self.expected is None:
            return
        key = lambda nodeid, r: (r.get("lesson"), nodeid.split("::")[-1])
        out.results = {n: r for n, r in out.results.items() if key(n, r) in self.expected}
        for n, r in out.results.items():        # the graders' points, never the record's
            r["points"] = self.expected[key(n, r)]
            if r.get("outcome") not in ("passed", "failed", "skipped"):
                r["outcome"] = "failed"
        seen = {key(n, r) for n, r in out.results.items()}
        why = next((words for kind, words in out.events if kind in ("time", "grader", "memory")),
                   "it stopped before reaching it")
        for (lesson, name), points in sorted(self.expected.items()):
            if (lesson, name) not in seen:
                out.results[f"chapters/{lesson}::{name}"] = {
                    "outcome": "failed", "lesson": lesson, "points": points, "title": name,
                    "duration": 0.0, "text": f"the grader did not report this test: {why}"}


def _collect(proc, read_fd, report_bytes, wall):
    """(the session's result record or None, its report cut at report_bytes)."""
    chunks, size, record = [], 0, []

    def drain():
        nonlocal size
        for block in iter(lambda: proc.stdout.read(65536), b""):
            if size < report_bytes:
                chunks.append(block[:report_bytes - size])
            size += len(block)

    def read_record():
        with os.fdopen(read_fd, "rb") as f:
            record.append(f.read(32 << 20))

    threads = [threading.Thread(target=drain, daemon=True), threading.Thread(target=read_record, daemon=True)]
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=wall)
    except subprocess.TimeoutExpired:
        pass
    if proc.returncode is not None:
        for t in threads:
            t.join(timeout=10)
    report = b"".join(chunks).decode("utf-8", "replace")
    if size > report_bytes:
        report += f"\n[... report cut at {report_bytes >> 10} KiB of {size >> 10} KiB]"
    try:
        parsed = json.loads(record[0]) if record and record[0] else None
    except ValueError:
        parsed = None
    return (parsed if isinstance(parsed, dict) else None), report


def describe_returncode(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        return f"killed by {signal.Signals(-rc).name}" if -rc in signal.valid_signals() else f"signal {-rc}"
    return f"exit status {rc}"


def reap_adopted(uids, seconds=5):
    """Reap the processes that were re-parented to us (the grading process is a child
    subreaper) when their parent died before them: our children running as one of the
    slot's uids, or living in a pid namespace below ours -- bubblewrap's first process
    inside, which its outer process never waits for: we start nothing there ourselves.
    Each is waited for by its pid, never by waitpid(-1), so no child a Popen waits for
    is taken from it.  Without this they would stay zombies, counted against the
    slot's process limit (or the user's, without root)."""
    me = os.getpid()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        adopted = [pid for pid, ppid, uid, nested in _process_parents()
                   if ppid == me and (uid in uids or nested)]
        if not adopted:
            return
        for pid in adopted:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.01)                # no event tells when a killed process becomes a zombie


def _process_parents():
    """(pid, parent pid, real uid, in a pid namespace below ours) of every process we can see."""
    out, depth = [], None
    for name in ["self", *os.listdir("/proc")]:
        if not name.isdigit() and name != "self":
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f if b":" in line)
            levels = len(fields.get(b"NSpid", b"0").split())
            if name == "self":
                depth = levels
                continue
            out.append((int(name), int(fields[b"PPid"]), int(fields[b"Uid"].split()[0]), levels > depth))
        except (OSError, KeyError, ValueError):
            continue
    return out


def enter_user_namespace(slot):
    """Between fork and exec, as root: become root of a new user namespace that maps the
    slot's grader uid to root and its runner and builder uids to themselves.  A helper
    still outside writes the maps (a process cannot map uids other than its own)."""
    ready_r, ready_w = os.pipe()
    me = os.getpid()
    helper = os.fork()
    if helper == 0:
        os.close(ready_w)
        os.read(ready_r, 1)             # until the namespace exists
        mapping = f"0 {slot.grader} 1\n{slot.runner} {slot.runner} 1\n{slot.builder} {slot.builder} 1\n"
        for kind in ("uid", "gid"):
            with open(f"/proc/{me}/{kind}_map", "w") as f:
                f.write(mapping)
        os._exit(0)
    os.close(ready_r)
    if _libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
    os.write(ready_w, b"x")
    os.close(ready_w)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("could not map the sandbox's uids")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def sweep_leftovers(uids, places=("/tmp", "/var/tmp", "/dev/shm", "/run")):
    """Without a private view: delete the files and SysV IPC objects the slot's uids
    left on the machine (their processes are gone by now).  All of /run, not only
    /run/lock: a container may mount it writable for all."""
    for place in places:
        for top, dirs, files in os.walk(place, topdown=False):
            for name in files + dirs:
                path = os.path.join(top, name)
                try:
                    st = os.lstat(path)
                    if st.st_uid in uids:
                        os.rmdir(path) if stat.S_ISDIR(st.st_mode) else os.unlink(path)
                except OSError:
                    pass
    for kind, id_field in (("shm", "shmid"), ("sem", "semid"), ("msg", "msqid")):
        try:
            head, *rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        for row in rows:
            fields = dict(zip(head.split(), row.split()))
            if int(fields.get("uid", -1)) in uids:
                ipc_remove(kind, int(fields[id_field]))


IPC_RMID = 0


def ipc_remove(kind, ident):
    if kind == "sem":
        _libc.semctl(ident, 0, IPC_RMID)
    else:
        getattr(_libc, f"{kind}ctl")(ident, IPC_RMID, None)


def kill_every_process_of(uid):
    """kill(-1, SIGKILL) as `uid`: every process of that uid, and nothing else, without
    ever naming a pid.  A short-lived child does it (root cannot be made to ask)."""
    pid = os.fork()
    if pid == 0:
        try:
            identity.become(uid)
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


class MemoryWatchdog:
    """Where no memory cgroup can be had: sums the resident memory of the session's
    processes (its process tree, from /proc) every 50 ms and kills the session once it
    passes the limit.  It can overshoot by what a program touches between two looks,
    and it misses memory no process maps (tmpfs files, shared memory): the cgroup is
    what the batch relies on, this is only better than nothing."""

    POLL = 0.05

    def __init__(self, proc, limit_mib):
        self.proc, self.limit_kib = proc, limit_mib << 10
        self.peak_kib = 0
        self.exceeded = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        from grader.isolation import descendants
        while not self._stopped.wait(self.POLL):
            pids = {self.proc.pid, *descendants(self.proc.pid)}
            kib = sum(_resident_kib(p) for p in pids)
            self.peak_kib = max(self.peak_kib, kib)
            if kib > self.limit_kib:
                self.exceeded = True
                if self.proc.poll() is None:
                    self.proc.send_signal(signal.SIGKILL)

    def stop(self):
        self._stopped.set()
        self._thread.join()


def _resident_kib(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
