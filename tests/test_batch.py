"""./lab batch over a prepared class: honest and hostile submissions (partial, broken and
empty ones are in tests/test_batch_scale.py's class).

The hostile ones are the attacks an instructor must not fear (docs/instructor.md,
"Threat model"), each in one of lesson 01's programs, the rest of the submission being
the skeleton (so a contained attack scores 0): a fork bomb, endless output, a program
that never ends, a daemon holding a port, writes outside its folder, stealing the
grader's result pipe, killing every process it can, including the instructor's
solutions, reading the instructor's and other students' files, links into the
instructor's checkout, memory without bound, leftovers (shared memory, files), output
made to look like a formula or like a status.  Each must score 0 with a note naming
what it did, the honest students keep their grades, and the machine is left as it was.
"""
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader import sandbox
from grader.batch import expected_tests
from grader.host import real_root
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
SOL = REPO / "solutions" / "01-sockets"
SKEL = REPO / "chapters" / "01-sockets"
FULL = sum(expected_tests(["01-sockets"]).values())   # lesson 01's points
SHM_KEY = 0x5011AB
# uids of this test's own, 1000 below the installation's range: another test's batch may
# take the same slots once this batch has let them go, and its processes must not look
# like leftovers of this one.  Below *this installation's* range, never a fixed number: an
# installation sharing the kernel (a container with SOCKLAB_UID_BASE set) must not share
# them, or one batch's last sweep -- kill(-1) as each slot uid -- kills the other's grader.
OWN_UIDS = dict(os.environ, SOCKLAB_UID_BASE=str(int(os.environ.get("SOCKLAB_UID_BASE", 63000)) - 1000))
MEMORY_MIB = 384        # the batch's memory bound here: a correct lesson 01 needs far less
needs_real_root = pytest.mark.skipif(not real_root(), reason="the full sandbox (other uids, cgroups) needs root")

LISTEN = ('int fd = tcp_listen_or_die(NULL, parse_port_or_die(v[1]), 4); '
          'printf("listening on 0.0.0.0:%d\\n", local_port(fd)); fflush(stdout);')
ATTACKS = {
    # student: (program replaced, its main, the note that must name it)
    "frank": ("addr", "int main(void) { for (;;) fork(); }", r"processes and threads at once"),
    "grace": ("server", 'int main(void) { for (;;) puts("flood flood flood flood flood flood"); }',
              r"01 server printed more than 1 MiB"),
    "heidi": ("server", "int main(void) { signal(SIGTERM, SIG_IGN); signal(SIGINT, SIG_IGN); for (;;) pause(); }",
              r"01 server printed nothing and never ended"),
    "ivan": ("server", "int main(int c, char **v) { " + LISTEN.replace("printf", "if (fork() == 0) { setsid(); "
             "if (fork() == 0) for (;;) pause(); _exit(0); } printf") + " for (;;) pause(); }", None),
    "judy": ("addr", r"""int main(void) {
        FILE *f;
        const char *targets[] = {"/tmp/socklab-escape-marker", "/var/tmp/socklab-escape-marker",
            "/dev/shm/socklab-escape-marker", "/run/socklab-escape-marker",
            "/var/lib/socklab/socklab-escape-marker", "/socklab/course/grader/plugin.py",
            "/socklab/course/chapters/01-sockets/test_sockets.py", "../results.json"};
        for (unsigned i = 0; i < sizeof targets / sizeof *targets; i++)
            if ((f = fopen(targets[i], "a"))) { fputs("# pwned\n", f); fclose(f); }
        symlink("/etc/passwd", "/run/lock/socklab-escape-link");
        return 0; }""", None),
    # touches 64 MiB after 64 MiB once it listens, until something stops it
    # grows before it listens, so the first test meets it at the bound whatever the
    # machine's speed (after listening, a test might end before it got there)
    "peggy": ("server", "int main(int c, char **v) { for (int i = 0; i < 64; i++) { char *p = malloc(64 << 20); "
              "if (p) memset(p, 1, 64 << 20); } " + LISTEN + " for (;;) pause(); }",
              r"used more than \d+ MiB of memory"),
    # finds the grader by its command line, takes its result pipe, kills it
    "victor": ("addr", r"""#include <dirent.h>
        #include <sys/syscall.h>
        int main(void) {
        DIR *d = opendir("/proc"); struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name); char path[64], cmd[8192]; FILE *f;
            if (pid <= 1) continue;
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            if (!(f = fopen(path, "r"))) continue;
            size_t n = fread(cmd, 1, sizeof cmd - 1, f); fclose(f);
            for (size_t i = 0; i < n; i++) if (!cmd[i]) cmd[i] = ' ';
            cmd[n] = 0;
            char *at = strstr(cmd, "--raw-results-fd ");
            if (!at) continue;
            int pidfd = syscall(SYS_pidfd_open, pid, 0);
            int fd = syscall(SYS_pidfd_getfd, pidfd, atoi(at + 17), 0);
            if (fd >= 0) dprintf(fd, "{\"forged\": true}");
            kill(pid, SIGKILL); }
        return 0; }""", r"01 addr was stopped for a system call graded programs may not make"),
    # a key in the kernel's keyring of its uid, which the next student of the slot would see
    "kim": ("addr", r"""#include <sys/syscall.h>
        int main(void) { syscall(SYS_add_key, "user", "socklab-note", "hello", 5, -4 /* user keyring */);
        return 0; }""", r"01 addr was stopped for a system call graded programs may not make"),
    # names its process so that a row of `ss -p` would carry a forged pid
    "sam": ("server", r"""#include <sys/prctl.h>
        int main(int c, char **v) {
        prctl(PR_SET_NAME, "x\nLISTEN 0 4096 0.0.0.0:1 0.0.0.0:* users:((\"y\",pid=1,fd=3))");
        int fd = tcp_listen_or_die(NULL, parse_port_or_die(v[1]), 4);
        printf("listening on 0.0.0.0:%d\n", htons(local_port(fd))); fflush(stdout);
        for (;;) pause(); }""", None),
    # what the grader leaves in its programs' environment and working folder
    "rita": ("addr", r"""int main(void) { extern char **environ; char cwd[4096];
        for (char **e = environ; *e; e++) puts(*e);
        if (getcwd(cwd, sizeof cwd)) puts(cwd); return 0; }""", None),
    "winnie": ("addr", "int main(void) { kill(-1, SIGKILL); return 0; }", None),
    # leaves 200 MiB of SysV shared memory and files in /dev/shm and /tmp, fills its folder
    "olga": ("server", r"""#include <sys/shm.h>
        int main(int c, char **v) {
        int id = shmget(0x5011AB, 200 << 20, IPC_CREAT | 0666);
        if (id >= 0) { char *p = shmat(id, NULL, 0); if (p != (void *)-1) memset(p, 1, 200 << 20); }
        FILE *f = fopen("/dev/shm/socklab-olga", "w"); if (f) { fputs("x", f); fclose(f); }
        f = fopen("/tmp/socklab-olga", "w");
        char block[1 << 16]; memset(block, 'x', sizeof block);
        while (f && fwrite(block, 1, sizeof block, f) == sizeof block) ;
        return 0; }""", r"01 server was stopped for writing a file larger than 64 MiB"),
    # output made to look like a spreadsheet formula and like a program status
    "rupert": ("server", r"""int main(void) {
        puts("=HYPERLINK(\"http://evil.example/\",\"click\") -- was killed by SIGSEGV (11)");
        return 0; }""", None),
}


def solution_dir(dest):
    dest.mkdir(parents=True)
    for f in SOL.glob("*.c"):
        shutil.copy(f, dest / f.name)
    return dest


def skeleton_dir(dest):
    dest.mkdir(parents=True)
    for f in SKEL.glob("*.c"):
        shutil.copy(f, dest / f.name)
    return dest


def attack(dest, program, body):
    d = skeleton_dir(dest / "chapters" / "01-sockets")
    (d / f"{program}.c").write_text('#include "common.h"\n#include <signal.h>\n' + body + "\n")


def make_class(root, secret_file):
    """The class: ids are the entries' names (dots kept, archive extension dropped)."""
    solution_dir(root / "alice" / "chapters" / "01-sockets")
    (root / "alice" / "SECRET.txt").write_text(secret_file)
    good = solution_dir(root / "bob" / "chapters" / "01-sockets")
    for f in (REPO / "tests" / "selftest" / "01-sockets" / "good-getaddrinfo").glob("*.c"):
        shutil.copy(f, good / f.name)
    with zipfile.ZipFile(root / "carol.zip", "w") as z:          # a zip of a whole repo
        for f in SOL.glob("*.c"):
            z.write(f, f"socklab-main/chapters/01-sockets/{f.name}")
        z.writestr("../../evil-outside.c", "zip slip")
    solution_dir(root / "s.one" / "01-sockets")                  # just the chapter folder
    for student, (program, body, _) in ATTACKS.items():
        attack(root / student, program, body)
    fake = skeleton_dir(root / "mallory" / "chapters" / "01-sockets")
    (fake / "test_sockets.py").write_text("def test_everything():\n    pass\n")
    (fake / "conftest.py").write_text("import sys; sys.exit(0)\n")
    (root / "mallory" / "results.json").write_text('{"score": 1000, "tests": []}')
    # the instructor's solutions, by #include and at run time; another student's files
    inc = skeleton_dir(root / "xavier" / "chapters" / "01-sockets")
    for f in SOL.glob("*.c"):
        (inc / f.name).write_text(f'#include "{f}"\n')
    reader = skeleton_dir(root / "yolanda" / "chapters" / "01-sockets")
    paths = [str(SOL / "server.c"), str(root / "alice" / "SECRET.txt"), "/etc/shadow", "/root/.bash_history"]
    (reader / "addr.c").write_text('#include "common.h"\nint main(void) {\n' + "".join(
        f'    {{ FILE *f = fopen("{p}", "r"); int ch; while (f && (ch = fgetc(f)) != EOF) putchar(ch); }}\n'
        for p in paths) + "    return 0;\n}\n")
    # links: a file into the instructor's solutions, and a whole lesson folder
    linked = skeleton_dir(root / "zack" / "chapters" / "01-sockets")
    (linked / "server.c").unlink()
    (linked / "server.c").symlink_to(SOL / "server.c")
    (root / "zoe" / "chapters").mkdir(parents=True)
    (root / "zoe" / "chapters" / "01-sockets").symlink_to(SOL)
    (root / "zeke").mkdir()                                        # a link higher up the path
    (root / "zeke" / "chapters").symlink_to(SOL.parent)
    with zipfile.ZipFile(root / "bomber.zip", "w", zipfile.ZIP_DEFLATED) as z:   # 1 MB -> 200 MB
        for i in range(100):
            z.writestr(f"chapters/01-sockets/x{i}.c", b"\0" * (2 << 20))
    sid = skeleton_dir(root / "sid" / "chapters" / "01-sockets")  # sam's server without the names
    (sid / "server.c").write_text('#include "common.h"\nint main(int c, char **v) {\n'
                                  '    int fd = tcp_listen_or_die(NULL, parse_port_or_die(v[1]), 4);\n'
                                  '    printf("listening on 0.0.0.0:%d\\n", htons(local_port(fd))); fflush(stdout);\n'
                                  '    for (;;) pause();\n}\n')
    solution_dir(root / "=HYPERLINK(1)" / "chapters" / "01-sockets")   # an id like a formula


def digest(paths):
    h = hashlib.sha256()
    for p in paths:
        for f in sorted(p.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(f.read_bytes())
    return h.hexdigest()


def uid_processes(uids):
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.split() and int(l.split()[0]) in uids]


def shm_keys():
    out = subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout
    return {int(k, 16) for k in re.findall(r"^(0x[0-9a-f]+)\s", out, re.M)}


def ended_batches(paths, pattern):
    """Those of paths whose name (pattern: its groups are PID, pid namespace) says a batch
    that has ended made it: our pid namespace, PID gone. A concurrent batch's (another
    test's) are not leftovers."""
    ns = str(os.stat("/proc/self/ns/pid").st_ino)
    left = []
    for p in paths:
        m = re.match(pattern, p.name)
        if m and m.group(2) == ns and not Path(f"/proc/{m.group(1)}").exists():
            left.append(p)
    return left


def leftover_cgroups():
    return ended_batches((p for p in Path("/sys/fs/cgroup").glob("**/socklab/grading-*") if p.is_dir()),
                         r"grading-\d+-(\d+)-(\d+)$")


MARKERS = ["/tmp/socklab-escape-marker", "/var/tmp/socklab-escape-marker", "/dev/shm/socklab-escape-marker",
           "/run/socklab-escape-marker", "/var/lib/socklab/socklab-escape-marker", "/run/lock/socklab-escape-link",
           "/dev/shm/socklab-olga", "/tmp/socklab-olga"]


@pytest.mark.slow       # minutes: started first, so it is not the run's tail
@needs_real_root
@pytest.mark.timeout(1800)      # its own bounds: 900 s for the batch, 600 for the re-run, 120 more
def test_batch_grades_a_class_with_hostile_submissions(tmp_path):
    secret = f"secret-{os.getpid()}-{time.time_ns()}"
    subs = tmp_path / "submissions"
    make_class(subs, secret)
    out = tmp_path / "out"
    before = digest([REPO / "grader", REPO / "chapters" / "01-sockets", REPO / "lib", REPO / "solutions"])
    for m in MARKERS:
        Path(m).unlink(missing_ok=True)
    keys_before = shm_keys()
    work = Path("/var/lib/socklab/work")

    t0 = time.monotonic()
    res = subprocess.run([REPO / "lab", "batch", subs, "--out", out, "--lessons", "01", "--jobs", "2",
                          "--memory", str(MEMORY_MIB)], env=OWN_UIDS,
                         capture_output=True, text=True, timeout=slowed(900), stdin=subprocess.DEVNULL)
    first = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    print(res.stdout)
    rows = {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv"))}
    results = {p.parent.name: json.loads(p.read_text()) for p in (out / "students").glob("*/result.json")}
    assert len(rows) == len(results) == 13 + len(ATTACKS)
    score = {s: r["scores"]["01-sockets"]["score"] for s, r in results.items()}
    notes = {s: "; ".join(n["text"] for n in r["notes"]) for s, r in results.items()}

    # honest students keep their grades; dots in ids are kept
    for s in ("alice", "bob", "carol", "s.one", "=HYPERLINK(1)"):
        assert score[s] == FULL, (s, notes[s])
    assert "not taken: ../../evil-outside.c" in notes["carol"]
    for s in ("alice", "bob"):              # correct programs stay far below the memory bound
        assert results[s]["peak_memory_mib"] is None or results[s]["peak_memory_mib"] < MEMORY_MIB // 2, results[s]

    # every attack scores 0 (the daemons do listen as they should: their
    # listening is worth its points), and its note names what it did
    passed = {s: [t["title"] for t in r["tests"] if t["outcome"] == "passed"] for s, r in results.items()}
    if not any("CPU share for the programs" in w for w in results["frank"]["sandbox"]["not_enforced"]):
        # the fork bomb spins in a CPU cgroup of its own: the grader ends each test and kills it
        assert "grading took more than" not in notes["frank"], notes["frank"]
    for s, (_, _, note) in ATTACKS.items():
        assert score[s] == 0 or s in ("ivan", "sam") and score[s] < FULL, (s, notes[s], passed[s])
        if note:
            assert re.search(note, notes[s]), (s, notes[s])
    assert score["mallory"] == 0
    assert score["xavier"] == 0 and "includes " + str(SOL) in notes["xavier"]
    assert score["zack"] == 0 and "01-sockets/server.c: not a regular file" in notes["zack"]
    assert score["zoe"] == 0 and "chapters/01-sockets: behind a link" in notes["zoe"]
    assert score["zeke"] == 0 and "chapters/01-sockets: behind a link" in notes["zeke"]
    assert "larger than" in notes["bomber"] and score["bomber"] == 0
    # forged names change nothing: a test sam passes and sid does not is named, with why
    differ = {t["title"]: (t["outcome"], u["outcome"], u["note"])
              for t, u in zip(results["sam"]["tests"], results["sid"]["tests"]) if t["outcome"] != u["outcome"]}
    assert score["sam"] <= score["sid"] < FULL, differ
    # the grader outlived the killers: every test has its own result, not "did not report"
    for s in ("victor", "winnie"):
        assert "did not report" not in (out / "students" / s / "report.txt").read_text() + notes[s]
        assert "grader ended" not in notes[s]
    # nothing read that the sandbox must not show
    reports = {s: (out / "students" / s / "report.txt").read_text() for s in results}
    assert "PYTEST_CURRENT_TEST=" not in reports["rita"] and "/test_addr" not in reports["rita"]
    solution_line = next(l for l in (SOL / "server.c").read_text().splitlines() if len(l.strip()) > 30)
    for s, text in reports.items():
        assert secret not in text, s
        if s not in ("alice", "bob", "carol", "s.one", "=HYPERLINK(1)"):
            assert solution_line not in text, s
    # notes are fields, never the program's words; no cell starts a formula
    assert "SIGSEGV" not in notes["rupert"] and "HYPERLINK" not in notes["rupert"]
    for row in csv.reader(open(out / "gradebook.csv")):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    assert "'=HYPERLINK(1)" in (out / "gradebook.csv").read_text()
    assert (out / "gradebook.html").read_text().count("<tr><td><a href=") == len(rows)
    assert all((out / "students" / s / "index.html").exists() for s in results)
    assert all(len(r["tests"]) == len(expected_tests(["01-sockets"])) for r in results.values())   # each student
    assert os.stat(out).st_mode & 0o077 == 0, "the output folder is readable by others"

    # the machine is as it was
    for m in MARKERS:
        assert not os.path.lexists(m), m
    assert not (tmp_path / "evil-outside.c").exists()
    assert digest([REPO / "grader", REPO / "chapters" / "01-sockets", REPO / "lib", REPO / "solutions"]) == before
    uids = {u for r in results.values() if "sandbox" in r for u in r["sandbox"]["uids"]}
    assert uids and os.geteuid() not in uids
    assert not uid_processes(uids), uid_processes(uids)
    assert SHM_KEY not in shm_keys() and shm_keys() <= keys_before | shm_keys() - {SHM_KEY}
    assert not ended_batches(work.glob("s-*"), r"s-(\d+)-(\d+)-"), "work folders left"
    assert not leftover_cgroups(), leftover_cgroups()
    locks = Path("/var/lib/socklab/locks")
    assert os.stat(locks).st_mode & 0o777 == 0o700 and os.stat(locks).st_uid == 0
    assert all(p.is_file() and not p.is_symlink() for p in locks.iterdir())

    # a re-run resumes (nothing regraded) and gives the same gradebook
    t0 = time.monotonic()
    again = subprocess.run([REPO / "lab", "batch", subs, "--out", out, "--lessons", "01", "--jobs", "2",
                            "--memory", str(MEMORY_MIB)], env=OWN_UIDS,
                           capture_output=True, text=True, timeout=slowed(600), stdin=subprocess.DEVNULL)
    assert again.returncode == 0
    assert time.monotonic() - t0 < first / 2 + 5
    assert {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv"))} == rows


def test_two_entries_for_one_student_are_refused(tmp_path):
    subs = tmp_path / "subs"
    (subs / "s.one").mkdir(parents=True)
    zipfile.ZipFile(subs / "s.one.zip", "w").close()
    res = subprocess.run([REPO / "lab", "batch", subs, "--out", tmp_path / "out", "--lessons", "01"],
                         capture_output=True, text=True, timeout=slowed(120), stdin=subprocess.DEVNULL)
    assert res.returncode != 0
    assert "s.one and s.one.zip are both 's.one'" in res.stdout + res.stderr


@needs_real_root
def test_two_batches_at_once_never_share_a_slot():
    """Every process of a slot's uids is killed after each submission: a second batch
    running at the same time must get other slots (a lock file each), not the first one's."""
    first = sandbox.claim_slots(2)
    second = sandbox.claim_slots(2)
    try:
        uids = {u for s in first + second for u in s.uids}
        assert len(uids) == 12
    finally:
        for s in first + second:
            s.release()


@needs_real_root
def test_killing_a_uid_kills_its_processes_and_nobody_else():
    """The last sweep kills by uid -- kill(-1) run as that uid -- never by a pid that may
    have been reused."""
    from grader import identity
    victim = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: identity.become(61998))
    bystander = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: identity.become(61999))
    try:
        sandbox.kill_every_process_of(61998)
        assert victim.wait(timeout=5) == -9
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_only_regular_source_files_are_taken(tmp_path):
    """A lesson's *.c and *.h and its lib/ are copied over the course copy; a link, to a
    file or a folder, is refused and named -- never followed."""
    sub = tmp_path / "sub" / "chapters" / "04-unix-sockets"
    (sub / "lib").mkdir(parents=True)
    (sub / "lib" / "unixlab.c").write_text("/* the student's own */\n")
    (sub / "pair.c").write_text("/* the student's program */\n")
    (sub / "test_unix_sockets.py").write_text("def test_free():\n    pass\n")
    (sub / "stream-server.c").symlink_to("/etc/passwd")
    course = tmp_path / "course"
    sandbox.copy_course(course, ["04-unix-sockets"])
    taken, refused = sandbox.take_sources(tmp_path / "sub", course, ["04-unix-sockets"], tmp_path / "x")
    here = course / "chapters" / "04-unix-sockets"
    assert sorted(taken) == ["04-unix-sockets/lib/unixlab.c", "04-unix-sockets/pair.c"]
    assert refused == [("04-unix-sockets/stream-server.c", "not a regular file (links are never followed)")]
    assert (here / "lib" / "unixlab.c").read_text() == "/* the student's own */\n"
    assert not (here / "test_unix_sockets.py").read_text().startswith("def test_free")
    assert os.stat(here / "test_unix_sockets.py").st_mode & 0o077 == 0, "graders readable by the submission"


def test_a_grading_that_ran_out_of_time_is_graded_again_alone(tmp_path, monkeypatch, capsys):
    """On a busy machine a grading can run out of time, or skip a timed test as too slow,
    through no fault of the student's: such a submission is graded once more after the
    others, alone (no CPU share), and its notes say so; one that hit its memory bound is
    not (that was its own doing).  Graded alone, it is graded: a re-run keeps that grade,
    even one that ran out again."""
    from grader import batch
    calls = []

    class FakeSession:
        def __init__(self, slot, names, built=(), limits=None, expected=None):
            self.slot, self.lessons, self.fair_share = slot, names, False

        def grade(self, entry):
            calls.append((entry.name, self.fair_share))
            out = sandbox.Outcome(build_ok=True, seconds=1.0)
            first = sum(1 for name, _ in calls if name == entry.name) == 1
            if entry.name == "slow" and first or entry.name == "stuck":
                out.events.append(("time", "the sandbox ran for more than 240 s and was stopped"))
            if entry.name == "rushed" and first:
                out.results = {"t::x": {"lesson": "01-sockets", "outcome": "skipped", "points": 1,
                                        "skip_kind": "too-slow", "text": "too slow right now"}}
            if entry.name == "hog":
                out.events += [("memory", "used more than 1024 MiB"), ("grader", "the grader ended")]
            return out

    monkeypatch.setattr(sandbox, "Session", FakeSession)
    monkeypatch.setattr(sandbox, "claim_slots", lambda n: [sandbox.Slot(i, os.open(os.devnull, os.O_RDONLY))
                                                           for i in range(n)])
    subs = tmp_path / "subs"
    for name in ("quick", "slow", "hog", "rushed", "stuck"):
        (subs / name / "chapters" / "01-sockets").mkdir(parents=True)
    assert batch.batch(subs, tmp_path / "out", "01", jobs=2) == 0
    assert sorted(n for n, _ in calls) == ["hog", "quick", "rushed", "rushed", "slow", "slow", "stuck", "stuck"]
    assert sorted(calls[-3:]) == [("rushed", False), ("slow", False), ("stuck", False)], \
        "graded again alone, with every CPU"
    for name, kind in (("slow", "time"), ("rushed", "too-slow")):
        result = json.loads((tmp_path / "out" / "students" / name / "result.json").read_text())
        assert result["notes"][0]["kind"] == "regraded" and not any(n["kind"] == kind for n in result["notes"])
    assert "grading 3 submission(s) again" in capsys.readouterr().out
    stuck = (tmp_path / "out" / "students" / "stuck" / "result.json").read_bytes()
    calls.clear()
    assert batch.batch(subs, tmp_path / "out", "01", jobs=2) == 0
    assert calls == [] and "submission(s) again" not in capsys.readouterr().out, "a re-run resumes every grading"
    assert (tmp_path / "out" / "students" / "stuck" / "result.json").read_bytes() == stuck


def test_no_zombie_is_left_to_a_subreaper_by_the_bubblewrap_probe():
    """bubblewrap's outer process exits without waiting for its inner one, which is then
    re-parented to the nearest child subreaper (`./lab test` is one, and so is a batch):
    the probe of whether bubblewrap works reaps it, or it stays a zombie of a sandbox uid."""
    code = ("import os, subprocess, sys; sys.path.insert(0, sys.argv[1]);"
            "from grader import isolation, sandbox; isolation.become_subreaper();"
            "slot = sandbox.claim_slots(1)[0];"
            "print('bwrap' if sandbox._bwrap_works(slot) else 'none');"
            "print(subprocess.run(['ps', '--ppid', str(os.getpid()), '-o', 'stat=,args='],"
            "                     capture_output=True, text=True).stdout)")
    out = subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True,
                         env=OWN_UIDS, timeout=slowed(120)).stdout
    if out.startswith("none"):
        pytest.skip("bubblewrap cannot make a sandbox here")
    assert "defunct" not in out and "bwrap" not in out.splitlines()[1:], out
