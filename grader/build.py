"""Building the course's C programs: one CMake build per variant (build/student,
build/solutions, build/solutions-asan...), only the lessons asked for, one build of a
tree at a time; and keeping build/ usable for the checkout's owner.

A variant's name is made here and only here (Variant): the command line, the grader
plugin (--solutions, --sanitize) and the tests all ask this module.
"""
import fcntl
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from grader import host, lessons

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
JOBS = str(max(1, min(os.cpu_count() or 1, 4)))


@dataclass(frozen=True)
class Variant:
    """Which sources (the skeletons a student edits, or the reference solutions) built
    how (plainly, or with ASan+UBSan)."""
    solutions: bool = False
    sanitize: bool = False

    @property
    def name(self):
        return ("solutions" if self.solutions else "student") + ("-asan" if self.sanitize else "")

    @property
    def path(self):
        return BUILD / self.name

    def cmake_options(self):
        return [f"-DSOCKLAB_SOLUTIONS={'ON' if self.solutions else 'OFF'}",
                f"-DSOCKLAB_SANITIZE={'ON' if self.sanitize else 'OFF'}"]


STUDENT, SOLUTIONS = Variant(), Variant(solutions=True)


def build(variant, lesson_list=None):
    """Configure (once) and build one variant -- only the given lessons' programs, if any
    (make need not look at the others); returns (ok, compiler output).

    A lock file beside the build directory keeps two builds of one tree (./lab watch and
    ./lab check, or parallel tests) from running make at the same time."""
    out = variant.path
    out.mkdir(parents=True, exist_ok=True)
    targets = [f"{l.name}__{p}" for l in lesson_list or [] for p in l.programs()]
    with open(BUILD / f".{variant.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(variant, out, targets)


def _build_locked(variant, out, targets):
    if not (out / "CMakeCache.txt").exists():
        cfg = subprocess.run(["cmake", "-S", str(REPO), "-B", str(out), "-DSOCKLAB_TESTS=OFF",
                              *variant.cmake_options()], capture_output=True, text=True)
        if cfg.returncode != 0:
            return False, cfg.stdout + cfg.stderr
    # -k: one lesson that does not compile must not stop the others from building
    target_args = ["--target", *targets] if targets else []
    res = subprocess.run(["cmake", "--build", str(out), "-j", JOBS, *target_args, "--", "-k"],
                         capture_output=True, text=True)
    if res.returncode != 0 and "No rule to make target" in res.stdout + res.stderr:
        # a lesson added since the build was configured: make knows only the old targets
        subprocess.run(["cmake", str(out)], capture_output=True)
        res = subprocess.run(["cmake", "--build", str(out), "-j", JOBS, *target_args, "--", "-k"],
                             capture_output=True, text=True)
    if res.returncode != 0:
        remove_stale_binaries(out, REPO / ("solutions" if variant.solutions else "chapters"))
    return res.returncode == 0, res.stdout + res.stderr


def remove_stale_binaries(out, source_root):
    """After a failed build, delete every program older than one of its sources.

    make leaves the last good binary in place when a compile fails; grading (or running)
    it would report the previous version's results for code that does not compile."""
    shared = list((REPO / "lib").glob("*.[ch]"))
    for lesson in lessons.all_lessons():
        src_dir = source_root / lesson.name
        deps = shared + list((src_dir / "lib").glob("*.[ch]"))
        for used in lesson.uses():
            deps += list((source_root / used / "lib").glob("*.[ch]"))
        newest_dep = max((p.stat().st_mtime for p in deps), default=0)
        for src in src_dir.glob("*.c"):
            binary = out / "chapters" / lesson.name / src.stem
            if binary.exists() and max(newest_dep, src.stat().st_mtime) > binary.stat().st_mtime:
                binary.unlink()


def compiler_errors(log, lesson=None):
    """The compiler's diagnostics, for one lesson's files if given."""
    keep = []
    for line in log.splitlines():
        if ("error" in line or "warning" in line or line.startswith(" ")) and "make" not in line.split(":")[0]:
            if lesson is None or lesson in line or (keep and line.startswith(" ")):
                keep.append(line)
    if not keep and lesson is None:
        # not a compiler diagnostic (CMake, the linker, make itself): show the end of the log
        keep = [l for l in log.splitlines() if l.strip()][-20:]
    return "\n".join(keep[-40:])


def give_build_back():
    """After a run as root in a user's checkout (`sudo ./lab check`): what it made under
    build/ goes back to the checkout's owner, whose next run must write there."""
    if not host.real_root() or not BUILD.exists():
        return
    uid, gid = host.checkout_owner(REPO)
    if uid == 0:
        return
    for path in [BUILD, *BUILD.rglob("*")]:
        try:
            if path.lstat().st_uid == 0:
                os.lchown(path, uid, gid)
        except OSError:
            pass


def build_dir_is_ours():
    """False, after saying what to do, when build/ holds folders we cannot write (left
    by a run as root from before ./lab gave them back)."""
    if not BUILD.is_dir():
        return True
    stuck = [p for p in [BUILD, *BUILD.iterdir()] if p.is_dir() and not os.access(p, os.W_OK | os.X_OK)]
    if not stuck:
        return True
    print(f"{', '.join(str(p.relative_to(REPO)) + '/' for p in stuck)} belong to another user "
          f"(a run with sudo?); give them back with:\n    sudo chown -R {pwd.getpwuid(os.getuid()).pw_name}: {BUILD}")
    return False
