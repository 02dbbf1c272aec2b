"""./lab batch: grade a whole class, each submission in a sandbox, in parallel.

    ./lab batch SUBMISSIONS_DIR --out OUT [--lessons 01,02] [--jobs N]

SUBMISSIONS_DIR holds one entry per student: a directory (a clone of the student
repository, or just its chapters/) or a .zip / .tar / .tar.gz of one.  For each:

  1. a private copy of the course is made (root-owned, so read-only to the sandbox) and
     only the submission's *.c / *.h files of each lesson are put in it: a submission's
     own graders, build files or results files are never used;
  2. it is built and graded as an unprivileged uid of its own (one per worker slot; a
     lock file keeps another batch running at the same time off it),
     with rlimits (processes, CPU, file size, open files), a bound on the memory all its
     processes together hold (MemoryWatchdog), inside a user and mount namespace whose
     /tmp, /var/tmp and /dev/shm are private tmpfs, and with a wall-clock bound; each
     test still gets its own network namespace;
  3. the grader returns its results through an inherited pipe (the grader process is
     made non-dumpable), so a program under test cannot forge them;
  4. afterwards every process of that uid is killed.

OUT gets gradebook.csv, gradebook.html, and students/<id>/{report.txt,result.json}.
Re-running skips submissions whose content and course have not changed (resumable), and
the gradebook is always rebuilt from the per-student results in sorted order
(deterministic).  Without root the uid switch and process limit are not available: the
batch still runs, namespaced, and says so.
"""
import csv
import ctypes
import fcntl
import hashlib
import html
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader import isolation, lessons

REPO = Path(__file__).resolve().parent.parent
COURSE_PARTS = ("CMakeLists.txt", "lib", "grader", "chapters", "pytest.ini", "tools", "lab")
SANDBOX_UID_BASE = 61000
LIMITS = {
    resource.RLIMIT_NPROC: 256,          # per sandbox uid: a fork bomb hits this
    resource.RLIMIT_CPU: 300,
    resource.RLIMIT_FSIZE: 64 << 20,
    resource.RLIMIT_NOFILE: 65536,       # the C10K exercise raises its soft limit to this
    resource.RLIMIT_CORE: 0,
}
SOFT_NOFILE = 4096  # programs start with this; the hard limit above is what they may raise to
BUILD_SECONDS = 120
LESSON_SECONDS = 60
REPORT_LIMIT = 256 << 10
MEMORY_LIMIT_MIB = 1024  # resident, per submission: a correct whole course (ASan, C10K) peaks near 150
MEMORY_POLL_SECONDS = 0.1
OVER_MEMORY = f"used more than {MEMORY_LIMIT_MIB} MiB of memory"


def fingerprint(path):
    """A digest of a submission's content (names and bytes), for resuming."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def course_fingerprint(lesson_names):
    """A digest of what grading depends on: the shared parts and the graded lessons."""
    h = hashlib.sha256()
    parts = [p for p in COURSE_PARTS if p != "chapters"] + [f"chapters/{n}" for n in lesson_names]
    for part in parts:
        p = REPO / part
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()
                                                and "__pycache__" not in x.parts)
        for f in files:
            h.update(str(f.relative_to(REPO)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def safe_extract(archive, dest):
    """Unpack a zip or tar without letting any member escape dest (no links, no ../)."""
    dest = dest.resolve()

    def inside(name):
        target = (dest / name).resolve()
        return target == dest or dest in target.parents

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if inside(info.filename) and not info.is_dir() and info.file_size < (16 << 20):
                    out = dest / info.filename
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(z.read(info))
        return
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile() and inside(m.name) and m.size < (16 << 20):
                out = dest / m.name
                out.parent.mkdir(parents=True, exist_ok=True)
                with t.extractfile(m) as src:
                    out.write_bytes(src.read())


def find_chapter_dir(root, lesson):
    """Where a submission keeps a lesson's files: <root>/[.../]chapters/<lesson> or <root>/<lesson>."""
    for candidate in [root / "chapters" / lesson, root / lesson]:
        if candidate.is_dir():
            return candidate
    for candidate in root.rglob(lesson):
        if candidate.is_dir() and candidate.parent.name == "chapters":
            return candidate
    return None


PRIVATE_DIRS = (b"/tmp", b"/var/tmp", b"/dev/shm")
CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


def user_namespaces_work():
    """Can a process create a user namespace here?  Not in a chroot, nor where a policy
    (Ubuntu's AppArmor restriction, some containers) forbids it."""
    if os.environ.get("SOCKLAB_NO_NAMESPACES"):
        return False
    return subprocess.run(["unshare", "-r", "true"], capture_output=True).returncode == 0


def private_temporary_dirs():
    """In a forked child, as root: a mount namespace of its own with fresh tmpfs over
    /tmp, /var/tmp and /dev/shm, so nothing written there outlives or escapes it."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    for d in PRIVATE_DIRS:
        if os.path.isdir(d) and _libc.mount(b"tmpfs", d, b"tmpfs", 0, b"size=256m,mode=1777") != 0:
            raise OSError(ctypes.get_errno(), f"mount tmpfs on {d.decode()}")


STATUS_FIELDS = re.compile(rb"^(Uid|VmRSS):\s*(\d+)", re.M)


def process_table():
    """(pid, real uid, resident KiB) of every process now, from /proc."""
    table = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                fields = dict(STATUS_FIELDS.findall(f.read()))
            # no VmRSS: a zombie or a kernel thread
            table.append((int(name), int(fields[b"Uid"]), int(fields.get(b"VmRSS", 0))))
        except (OSError, KeyError):
            continue  # it exited meanwhile
    return table


class MemoryWatchdog:
    """Sums the resident memory (VmRSS) of a sandbox's processes every MEMORY_POLL_SECONDS
    and kills them all once the sum passes MEMORY_LIMIT_MIB.

    Why not an rlimit: RLIMIT_AS and RLIMIT_DATA count address space, and the ASan
    programs some lessons grade reserve terabytes of it.  Why not a cgroup memory limit:
    it needs a writable cgroup v1 memory controller or a delegated v2 subtree, which CI
    machines and containers often lack, so the fallback would be needed anyway; and its
    OOM killer ends one process while grading goes on, with a vaguer reason.  Polling
    /proc works everywhere, sees the processes kill_all ends, and stops the whole
    submission.  Its limits: a program can overshoot by what it touches within one poll
    (a few hundred MiB), shared pages (libraries) are counted in every process (so it
    errs high), and memory no process maps (files in the private tmpfs, 256 MiB each;
    kernel socket buffers) is not counted."""

    def __init__(self, sandbox, proc):
        self.sandbox, self.proc = sandbox, proc
        self.peak_kib = 0
        self.exceeded = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while True:
            pids, kib = self.sandbox.resident(self.proc)
            self.peak_kib = max(self.peak_kib, kib)
            if kib > MEMORY_LIMIT_MIB << 10:
                self.exceeded = True
                self.sandbox.signal_all(self.proc, pids)
            if self._stopped.wait(MEMORY_POLL_SECONDS):
                return

    def stop(self):
        self._stopped.set()
        self._thread.join()


class Sandbox:
    """One worker slot: an unprivileged uid (when we are root) and the limits."""

    userns = None  # decided once per batch: user_namespaces_work()

    def __init__(self, slot_uid):
        self.root_mode = os.geteuid() == 0
        self.uid = slot_uid if self.root_mode else os.geteuid()
        self.gid = self.uid if self.root_mode else os.getegid()
        if Sandbox.userns is None:
            Sandbox.userns = user_namespaces_work()

    def preexec(self):
        os.setsid()
        for which, value in LIMITS.items():
            if which == resource.RLIMIT_NPROC and not self.root_mode:
                continue  # would count every process of the user running the batch
            soft = SOFT_NOFILE if which == resource.RLIMIT_NOFILE else value
            try:
                resource.setrlimit(which, (soft, value))
            except (ValueError, OSError):
                pass
        if self.root_mode:
            private_temporary_dirs()  # needs root, not a user namespace
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

    def command(self, argv):
        """As root the temporary directories are made private before the uid switch, and a
        user namespace (when available) only lets the grader give each test its own
        network namespace.  Without root, a user+mount namespace does both."""
        argv = [str(a) for a in argv]
        if self.root_mode:
            return (["unshare", "-r", "--"] if Sandbox.userns else []) + argv
        script = ("set -e; for d in /tmp /var/tmp /dev/shm; do "
                  "[ -d $d ] && mount -t tmpfs -o size=256m,mode=1777 tmpfs $d; done; "
                  "exec \"$@\"")
        return ["unshare", "-r", "-m", "--", "sh", "-c", script, "sandbox", *argv]

    def run(self, argv, cwd, timeout, env, pass_fds=()):
        """Run argv sandboxed; returns (returncode or None on timeout, output capped,
        its MemoryWatchdog: peak_kib and whether it exceeded the limit)."""
        proc = subprocess.Popen(self.command(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=self.preexec, pass_fds=pass_fds)
        memory = MemoryWatchdog(self, proc)
        chunks, size = [], 0

        def drain():
            nonlocal size
            for block in iter(lambda: proc.stdout.read(65536), b""):
                if size < REPORT_LIMIT:
                    chunks.append(block[:REPORT_LIMIT - size])
                size += len(block)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        self.kill_all(proc)
        memory.stop()  # only now: orphans count until kill_all has ended them
        reader.join(timeout=5)
        text = b"".join(chunks).decode("utf-8", "replace")
        if size > REPORT_LIMIT:
            text += f"\n[... output cut at {REPORT_LIMIT // 1024} KiB of {size // 1024} KiB]"
        if memory.exceeded:
            text += f"\n[stopped: its processes together {OVER_MEMORY}, so all were killed]"
        return rc, text, memory

    def members(self, proc, table):
        """The pids of this sandbox: as root every process of its uid, whatever session
        (the same ones kill_all ends); otherwise proc's process tree."""
        if self.root_mode:
            return {pid for pid, uid, _ in table if uid == self.uid}
        return {proc.pid, *isolation.descendants(proc.pid)}

    def resident(self, proc):
        """(pids, their summed resident KiB) of this sandbox's processes."""
        table = process_table()
        pids = self.members(proc, table)
        return pids, sum(kib for pid, _, kib in table if pid in pids)

    def signal_all(self, proc, pids=()):
        """SIGKILL to proc's process group, to pids, and as root to every process of our uid."""
        for kill, target in [(os.killpg, proc.pid), *((os.kill, pid) for pid in pids)]:
            try:
                kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.root_mode:
            # everything the submission started runs as our sandbox uid, whatever session
            subprocess.run(["pkill", "-KILL", "-U", str(self.uid)], capture_output=True)

    def kill_all(self, proc):
        self.signal_all(proc)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.root_mode:
            self.wait_until_uid_is_empty(proc)

    def wait_until_uid_is_empty(self, proc, seconds=10):
        """Killed orphans stay zombies until init reaps them (up to seconds where init polls),
        and the next submission in this slot must not inherit them: they count against its
        RLIMIT_NPROC.  Nothing reports another process's reaping, so poll, bounded."""
        deadline = time.monotonic() + seconds
        while (pids := self.members(proc, process_table())) and time.monotonic() < deadline:
            self.signal_all(proc, pids)  # whatever forked since the last kill
            time.sleep(0.1)


def prepare(sub, work, lesson_names):
    """A root-owned course copy with the submission's C files; returns the list of copied files."""
    if work.exists():
        shutil.rmtree(work)
    course = work / "course"
    for part in COURSE_PARTS:
        src = REPO / part
        if part == "chapters":  # only the lessons being graded: the others need not build
            for name in lesson_names:
                shutil.copytree(src / name, course / part / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_dir():
            shutil.copytree(src, course / part, ignore=shutil.ignore_patterns("__pycache__", "build"))
        else:
            course.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, course / part)
    unpacked = work / "submission"
    unpacked.mkdir(parents=True)
    if sub.is_dir():
        shutil.copytree(sub, unpacked, dirs_exist_ok=True, symlinks=True)
    else:
        safe_extract(sub, unpacked)
    taken = []
    for name in lesson_names:
        found = find_chapter_dir(unpacked, name)
        if not found:
            continue
        # the programs, and the chapter library (lib/) a lesson may have students write
        for sub_dir in ("", "lib"):
            dest = course / "chapters" / name / sub_dir
            for f in sorted((found / sub_dir).glob("*.[ch]")):
                if f.is_file() and not f.is_symlink() and dest.is_dir():
                    shutil.copy(f, dest / f.name)
                    taken.append(f"{name}/{sub_dir + '/' if sub_dir else ''}{f.name}")
    shutil.rmtree(unpacked)
    return taken


def grade_one(sub, out, work_root, lesson_names, slot, course_fp, needed=()):
    student = sub.name.split(".")[0]
    sdir = out / "students" / student
    result_file = sdir / "result.json"
    fp = fingerprint(sub) + course_fp
    if result_file.exists():
        old = json.loads(result_file.read_text())
        if old.get("fingerprint") == fp:
            return old
    sandbox = Sandbox(slot)
    work = work_root / student
    taken = prepare(sub, work, list(dict.fromkeys([*needed, *lesson_names])))
    build = work / "build"
    tmp = work / "tmp"
    for d in (build, tmp):
        d.mkdir(parents=True)
        if sandbox.root_mode:
            os.chown(d, sandbox.uid, sandbox.gid)
    os.chmod(work, 0o755)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    course = work / "course"
    t0 = time.monotonic()
    reasons = []
    rc, build_log, build_memory = sandbox.run(
        ["sh", "-c", f"cmake -S {course} -B {build} -DSOCKLAB_TESTS=OFF >/dev/null && "
                     f"cmake --build {build} -j 1 -- -k"], course, BUILD_SECONDS, env)
    compiled = rc == 0
    if build_memory.exceeded:
        reasons.append(f"the build {OVER_MEMORY}")
    elif rc is None:
        reasons.append(f"the build took more than {BUILD_SECONDS} s")
    elif rc != 0:
        reasons.append("some programs do not compile")

    read_fd, write_fd = os.pipe()
    paths = [course / "chapters" / n for n in lesson_names]
    argv = [sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:xdist", "-c", course / "pytest.ini",
            "--rootdir", course, "--build-dir", build, "--basetemp", tmp / "pytest",
            "--raw-results-fd", write_fd, "-o", "timeout=20", *paths]
    chunks = []

    def read_all():
        with os.fdopen(read_fd, "rb") as f:
            chunks.append(f.read(16 << 20))

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    rc, report, grading_memory = sandbox.run(argv, course, LESSON_SECONDS * len(lesson_names),
                                             dict(env, PYTHONPATH=str(course)), pass_fds=(write_fd,))
    os.close(write_fd)
    reader.join(timeout=5)
    try:
        raw = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        raw = {}
    if grading_memory.exceeded:
        reasons.append(OVER_MEMORY)
    elif rc is None:
        reasons.append("grading hit the wall-clock limit")
    elif rc not in (0, 1):
        reasons.append(f"the grader ended abnormally ({rc})")

    from grader.plugin import lesson_totals
    totals = lesson_totals(raw)
    reasons += notable_statuses(raw)
    scores = {}
    for name in lesson_names:
        t = totals.get(name)
        scores[name] = {"score": t["score"], "max": t["max"]} if t else {"score": 0, "max": None}
    result = {
        "student": student, "fingerprint": fp, "compiled": compiled, "files": taken,
        "scores": scores, "total": sum(v["score"] for v in scores.values()),
        "notes": reasons, "seconds": round(time.monotonic() - t0, 1),
        "peak_memory_mib": max(build_memory.peak_kib, grading_memory.peak_kib) >> 10,
        "sandbox_uid": sandbox.uid,
    }
    sdir.mkdir(parents=True, exist_ok=True)
    (sdir / "report.txt").write_text(
        f"socklab report for {student}\n\n== build ==\n{build_log[-20000:]}\n\n== grading ==\n{report}\n")
    lessons.write_json_atomic(result_file, result)
    shutil.rmtree(work, ignore_errors=True)
    return result


STATUS_PATTERN = re.compile(r"-- ((?:was killed by \w+ \(\d+\))|(?:.*printed more than \d+ KiB)|"
                            r"(?:exited with status 3: stopped at an unfinished TODO))")


def notable_statuses(raw):
    """The ways programs ended that an instructor wants to see in the gradebook."""
    seen = []
    for r in raw.values():
        for m in STATUS_PATTERN.finditer(r.get("text", "")):
            status = m.group(1).split(" -- ")[0].strip()
            if status not in seen:
                seen.append(status)
    return seen[:3]


def write_gradebook(out, lesson_names, results):
    results = sorted(results, key=lambda r: r["student"])
    maxima = {}
    for r in results:
        for n, v in r["scores"].items():
            if v["max"]:
                maxima[n] = max(maxima.get(n, 0), v["max"])
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", *lesson_names, "total", "max", "notes"])
        for r in results:
            w.writerow([r["student"], *[r["scores"][n]["score"] for n in lesson_names], r["total"],
                        sum(maxima.values()), "; ".join(r["notes"])])
    rows = []
    for r in results:
        cells = "".join(
            f"<td class={'full' if r['scores'][n]['score'] == maxima.get(n) else 'part'}>"
            f"{r['scores'][n]['score']}</td>" for n in lesson_names)
        rows.append(f"<tr><td><a href='students/{html.escape(r['student'])}/report.txt'>"
                    f"{html.escape(r['student'])}</a></td>{cells}<td><b>{r['total']}</b></td>"
                    f"<td>{html.escape('; '.join(r['notes']))}</td></tr>")
    head = "".join(f"<th>{html.escape(n)}<br><small>/{maxima.get(n, '?')}</small></th>" for n in lesson_names)
    (out / "gradebook.html").write_text(f"""<!doctype html>
<meta charset="utf-8"><title>socklab gradebook</title>
<style>body{{font-family:sans-serif}} td,th{{padding:4px 8px;border-bottom:1px solid #ddd}}
.full{{background:#dfd}} .part{{background:#fee}}</style>
<h1>socklab gradebook</h1><p>{len(results)} submissions, maximum {sum(maxima.values())} points.</p>
<table><tr><th>student</th>{head}<th>total</th><th>notes</th></tr>
{chr(10).join(rows)}
</table>
""")


def batch(submissions, out, lesson_keys=None, jobs=None):
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if lesson_keys:
        chosen = [lessons.select(k)[0] for k in lesson_keys.split(",")]
    else:
        chosen = lessons.all_lessons()
    names = [l.name for l in chosen]
    # chapters the chosen ones build on are built (with the student's code) but not graded
    needed = list(dict.fromkeys(u for l in chosen for u in l.uses()))
    entries = sorted(p for p in submissions.iterdir() if not p.name.startswith("."))
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    jobs = jobs or max(1, os.cpu_count() or 1)
    if os.geteuid() != 0:
        print("note: not root, so submissions run as your own uid without a process limit; "
              "run as root for the full sandbox")
    course_fp = course_fingerprint(names)
    work_root = make_work_root(out)
    slots, claims = claim_sandbox_uids(jobs)
    lock = threading.Lock()

    def task(sub):
        with lock:
            slot = slots.pop()
        try:
            r = grade_one(sub, out, work_root, names, slot, course_fp, needed)
        except Exception as e:  # one broken submission never stops the batch
            r = {"student": sub.name.split(".")[0], "fingerprint": "", "compiled": False, "files": [],
                 "scores": {n: {"score": 0, "max": None} for n in names}, "total": 0,
                 "notes": [f"could not be graded: {type(e).__name__}: {e}"], "seconds": 0}
        finally:
            with lock:
                slots.append(slot)
        print(f"  {r['student']:<24} {r['total']:>4} points  {'; '.join(r['notes'])}", flush=True)
        return r

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(task, entries))
    write_gradebook(out, names, results)
    elapsed = time.monotonic() - t0
    print(f"graded {len(results)} submissions in {elapsed:.1f} s with {jobs} workers; "
          f"gradebook: {out / 'gradebook.csv'} and {out / 'gradebook.html'}")
    shutil.rmtree(work_root, ignore_errors=True)
    for claim in claims:
        claim.close()
    return 0


def claim_sandbox_uids(count):
    """`count` sandbox uids that no other batch on this machine is using, each held by a
    lock file until this batch ends (or dies: the kernel drops the lock).  Two batches
    sharing a uid would kill each other's programs: every process of a slot's uid is
    killed after each submission.  Without root the uid is our own; slots are numbers."""
    if os.geteuid() != 0:
        return list(range(count)), []
    locks = Path("/run/lock" if Path("/run/lock").is_dir() else tempfile.gettempdir())
    uids, claims = [], []
    for uid in range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + 1000):
        f = open(locks / f"socklab-sandbox-uid-{uid}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        uids.append(uid)
        claims.append(f)
        if len(uids) == count:
            return uids, claims
    raise SystemExit("no free sandbox uid: a thousand batches are running?")


def make_work_root(out):
    """Where submissions are built: reachable by the sandbox uids (so not under a 0700
    home directory) and not under /tmp, /var/tmp or /dev/shm, which the sandbox masks."""
    if os.geteuid() != 0:
        root = out / "work"
        root.mkdir(parents=True, exist_ok=True)
        return root
    base = Path("/var/lib/socklab")
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    root = Path(tempfile.mkdtemp(prefix="batch-", dir=base))
    os.chmod(root, 0o755)
    return root
