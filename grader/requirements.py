"""What a lesson needs from the kernel beyond sockets, and whether this machine has it.

A lesson lists its needs in chapters/NN-slug/needs.txt, one name a line (lesson 14:
`io_uring`).  Where a need is unmet every test of the lesson is skipped with one line
saying why and how to get it, the board says so instead of "not started", and verify
reports the lesson as not checked here rather than failed.  Each probe is one cheap
system call, asked once per process.
"""
import ctypes
import errno
import functools
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SYS_IO_URING_SETUP = {"x86_64": 425, "aarch64": 425, "riscv64": 425, "armv7l": 425}
IO_URING_PARAMS_SIZE = 120      # sizeof(struct io_uring_params)
MULTISHOT_ACCEPT = (5, 19)      # the first kernel with IORING_ACCEPT_MULTISHOT
HOW_TO_GET_IT = ("run the lab on Linux 5.19 or later with io_uring enabled: the course VM "
                 "(vagrant up) has it; in Docker, --security-opt seccomp=unconfined")


def _kernel_version():
    release = os.uname().release
    parts = []
    for piece in release.split("-", 1)[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (2 - len(parts))), release


@functools.lru_cache(maxsize=None)
def io_uring_unavailable_reason():
    """None where a program can set up an io_uring with multishot accept; else why not.
    SOCKLAB_NO_IO_URING=1 pretends it is missing (to see what students without it see)."""
    if os.environ.get("SOCKLAB_NO_IO_URING"):
        return f"needs io_uring: switched off by SOCKLAB_NO_IO_URING; {HOW_TO_GET_IT}"
    nr = SYS_IO_URING_SETUP.get(os.uname().machine)
    if nr is None:
        return f"io_uring is not probed on {os.uname().machine}; {HOW_TO_GET_IT}"
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(IO_URING_PARAMS_SIZE)
    fd = libc.syscall(nr, ctypes.c_uint(1), params)
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            why = "this kernel has no io_uring (io_uring_setup: ENOSYS)"
        elif err == errno.EPERM:
            try:
                disabled = Path("/proc/sys/kernel/io_uring_disabled").read_text().strip()
            except OSError:
                disabled = "0"
            why = ("io_uring is switched off here (io_uring_setup: EPERM; sysctl "
                   f"kernel.io_uring_disabled = {disabled})" if disabled != "0" else
                   "io_uring is forbidden here (io_uring_setup: EPERM, as a container's default "
                   "seccomp filter does)")
        else:
            why = f"io_uring_setup fails here ({errno.errorcode.get(err, err)})"
        return f"needs io_uring: {why}; {HOW_TO_GET_IT}"
    os.close(fd)
    header = Path("/usr/include/liburing.h")
    if not header.exists():
        return ("needs liburing: /usr/include/liburing.h is missing "
                "(sudo apt-get install liburing-dev; tools/setup.sh installs it)")
    if "io_uring_prep_multishot_accept" not in header.read_text(errors="replace"):
        return ("needs liburing 2.2 or later (this liburing-dev has no multishot accept; Debian 12 "
                "has 2.3); " + HOW_TO_GET_IT)
    version, release = _kernel_version()
    if version < MULTISHOT_ACCEPT:
        return (f"needs io_uring with multishot accept (Linux 5.19 or later; this is {release}); "
                + HOW_TO_GET_IT)
    return None


PROBES = {"io_uring": io_uring_unavailable_reason}


def needs(lesson_dir):
    """The names in a lesson's needs.txt."""
    f = Path(lesson_dir) / "needs.txt"
    if not f.exists():
        return []
    return [l.strip() for l in f.read_text().splitlines() if l.strip() and not l.startswith("#")]


def unmet_reason(lesson_dir):
    """Why this machine cannot grade the lesson, or None when it can."""
    for name in needs(lesson_dir):
        probe = PROBES.get(name)
        reason = probe() if probe else f"needs {name}, which this grader cannot check for"
        if reason:
            return reason
    return None
