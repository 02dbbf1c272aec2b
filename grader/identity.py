"""Who runs a submission's code, when it is graded for a grade that counts.

In batch grading, the Gradescope bundle and `./lab grade` as root, the grader runs as
root and the submission's code never does: its programs run as a *runner* uid and its
compiles as a *builder* uid, both unprivileged and different from the grader's.  A
program can then neither ptrace, pidfd_getfd nor signal the grader, nor write its
files, results or build; and since the builder owns the build, a program cannot swap
a binary another test will run.  `./lab check` on a student's own machine configures
nothing here, and everything runs as the student.

The pytest plugin calls configure() from its --runner-uid/--builder-uid options; the
programs (grader/proc.py), the test's folders (grader/lab.py) and the sanitizer copies
(grader/sanitized.py) ask this module what to do.
"""
import ctypes
import json
import os
import platform
import resource
import shutil
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_libc = ctypes.CDLL(None, use_errno=True)
_ids = {"runner": None, "builder": None, "programs_cgroup": None}
# the runner's processes (threads count too) at once: where the machine gives no cgroup
# process limit, a fork bomb stops here (the sandbox's cgroup allows as many in all)
RUNNER_PROCESSES = 256

# System calls that only serve to reach into another process -- take its descriptors
# (pidfd_getfd), read or write its memory (process_vm_readv/writev) -- which no lesson
# needs.  A graded program that calls one is killed with SIGSYS, and the gradebook says
# why (the kernel refuses it the grader's anyway: another uid; this makes the attempt
# visible).  Per machine: (AUDIT_ARCH_*, {name: number}).
# Also the kernel's keyrings (add_key, request_key, keyctl): a user's keyring outlives
# its processes, and a slot's uid serves one student after another.
_ARCH = {  # machine: (AUDIT_ARCH_*, {name: number})
    "x86_64": (0xC000003E, {"process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
                            "add_key": 248, "request_key": 249, "keyctl": 250}),
    "aarch64": (0xC00000B7, {"process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
                             "add_key": 217, "request_key": 218, "keyctl": 219}),
}
X32_SYSCALL_BIT = 0x40000000


def _seccomp_program():
    """A classic-BPF filter: on this architecture, the FORBIDDEN calls (and any x32 call
    on x86_64, which could dodge the numbers) kill the process; everything else runs."""
    arch, numbers = _ARCH[platform.machine()]
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000      # SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS
    nrs = sorted(numbers.values())
    code = [(ld, 0, 0, 4),                            # A = seccomp_data.arch
            (jeq, 1, 0, arch),                        # our arch: go on; else allow
            (ret, 0, 0, allow),
            (ld, 0, 0, 0)]                            # A = seccomp_data.nr
    kill_at = 4 + 1 + len(nrs) + 1                    # index of the final `ret kill`
    code.append((jge, kill_at - 5, 0, X32_SYSCALL_BIT))
    for i, nr in enumerate(nrs):
        code.append((jeq, kill_at - (6 + i), 0, nr))
    code += [(ret, 0, 0, allow), (ret, 0, 0, kill)]
    return b"".join(struct.pack("HBBI", *insn) for insn in code), len(code)


def forbid_reaching_other_processes():
    """Install the filter (needs no_new_privs).  A machine we have no numbers for keeps
    only the kernel's own refusal."""
    if platform.machine() not in _ARCH:
        return
    raw, count = _seccomp_program()
    buf = ctypes.create_string_buffer(raw)
    prog = struct.pack("HxxxxxxP", count, ctypes.addressof(buf))
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def configure(runner_uid=None, builder_uid=None, programs_cgroup_fd=None):
    """The uids of grading that counts, and the descriptor a program writes "0" to, to
    move into the programs' cgroup (grader/cgroups.py) -- kept from every program's exec."""
    if programs_cgroup_fd is not None:
        os.set_inheritable(programs_cgroup_fd, False)
    _ids.update(runner=runner_uid, builder=builder_uid, programs_cgroup=programs_cgroup_fd)


def runner():
    """The uid a submission's programs run as, or None (they run as the grader)."""
    return _ids["runner"]


def builder():
    """The uid a submission's code is compiled as, or None."""
    return _ids["builder"]


def become(uid):
    """In a child between fork and exec: give up root for good -- no groups, `uid` as
    real, effective and saved uid and gid (which clears every capability), and
    no_new_privs, so no set-uid program can give any of it back."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def as_runner():
    """preexec step for a submission's program: first in line for the OOM killer (the
    grader shares its memory limit), into the programs' cgroup (its own CPU share), a
    process limit, then the runner's uid."""
    uid = runner()
    if uid is None:
        return
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    if _ids["programs_cgroup"] is not None:
        try:
            os.write(_ids["programs_cgroup"], b"0")
        except OSError:
            pass                # then it shares the grader's cgroup, as without the split
    resource.setrlimit(resource.RLIMIT_NPROC, (RUNNER_PROCESSES, RUNNER_PROCESSES))
    become(uid)
    forbid_reaching_other_processes()


def as_builder():
    """preexec step for a compiler run on the submission's sources, and for the tools a
    test runs against the submission's programs (nginx, wrk, curl): with no more rights
    than the submission's own compile, never the grader's."""
    if builder() is not None:
        become(builder())
        forbid_reaching_other_processes()


def call_as_runner(fn):
    """Run fn() in a child that has become the runner (prlimit on a program, say).
    Raises PermissionError if it failed there."""
    pid = os.fork()
    if pid == 0:
        try:
            become(runner())
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise PermissionError(f"{fn} failed as uid {runner()}")


def read_as_runner(fn):
    """fn()'s result (JSON-able), computed in a child that has become the runner: what
    only the program's own uid may read -- its /proc/PID/fd, where this machine denies
    the grader CAP_SYS_PTRACE (Docker's and podman's default capabilities).  Raises
    PermissionError if it failed there too."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            become(runner())
            data = json.dumps(fn()).encode()
            while data:
                data = data[os.write(write_fd, data):]
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise PermissionError(f"{fn} failed as uid {runner()}")
    return json.loads(data)


def remove_runner_files(places=("/tmp", "/var/tmp", "/dev/shm")):
    """Delete what the runner left at the top of the shared temporary folders (the
    sandbox's own tmpfs: between two tests, not between two students)."""
    uid = runner()
    if uid is None:
        return
    for place in places:
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def give_to(uid, path, within):
    """A folder for `uid`: its own, and the folders between it and `within` (none
    outside) passable, not listable, so it can reach it."""
    if uid is None:
        return
    os.chown(path, uid, uid)
    for parent in path.parents:
        if parent == within.parent or within not in (parent, *parent.parents):
            break
        st = parent.stat()
        if st.st_mode & 0o001 == 0 and st.st_uid == os.geteuid():
            parent.chmod((st.st_mode & 0o777) | 0o111)


def give_to_runner(path, within):
    """A folder the submission's programs work in (the test's tmp)."""
    give_to(runner(), path, within)
