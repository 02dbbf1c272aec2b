"""./lab batch over a prepared class: correct, partial and hostile submissions.

Every hostile kind from the instructor's point of view: does not compile, fork bomb,
infinite output, never exits, leaves a child holding a port, writes outside its
directory, tampers with the grader, ships a fake results file, allocates memory without
bound.  The batch must grade each as a failure with a reason, finish in bounded time,
leave nothing running, and give the same gradebook when re-run (resuming)."""
import csv
import hashlib
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from grader.batch import MEMORY_LIMIT_MIB
from grader.host import real_root

REPO = Path(__file__).resolve().parent.parent
SOL = REPO / "solutions" / "01-sockets"
SKEL = REPO / "chapters" / "01-sockets"
FULL = 17

HOSTILE_MAIN = {
    "forkbomb": "int main(void) { for (;;) fork(); }",
    "flood": "int main(void) { for (;;) puts(\"flood flood flood flood flood flood flood\"); }",
    "hang": ("#include <signal.h>\nint main(void) { signal(SIGTERM, SIG_IGN); signal(SIGINT, SIG_IGN);"
             " for (;;) pause(); }"),
    "orphan": ("int main(int c, char **v) { int fd = tcp_listen_or_die(NULL, parse_port_or_die(v[1]), 4);"
               " if (fork() == 0) { setsid(); for (;;) pause(); } printf(\"listening on 0.0.0.0:%d\\n\","
               " local_port(fd)); for (;;) pause(); }"),
    "escape": ("int main(void) { FILE *f = fopen(\"/tmp/socklab-escape-marker\", \"w\"); if (f) fputs(\"x\", f);"
               " f = fopen(\"/var/tmp/socklab-escape-marker\", \"w\"); if (f) fputs(\"x\", f);"
               " char p[4096]; snprintf(p, sizeof p, \"%s/../../course/grader/plugin.py\", getenv(\"PWD\") ? getenv(\"PWD\") : \".\");"
               " f = fopen(\"../course/grader/plugin.py\", \"a\"); if (f) fputs(\"# pwned\", f);"
               " f = fopen(\"../results.json\", \"w\"); if (f) fputs(\"{}\", f); return 0; }"),
    # touches 64 MiB after 64 MiB once it listens; it stops at 4 GiB only so that a broken
    # memory bound fails this test instead of exhausting the machine
    "memhog": ("int main(int c, char **v) { int fd = tcp_listen_or_die(NULL, parse_port_or_die(v[1]), 4);"
               " printf(\"listening on 0.0.0.0:%d\\n\", local_port(fd)); fflush(stdout);"
               " for (size_t used = 0; used < (4UL << 30); used += 64 << 20) {"
               " char *p = malloc(64 << 20); if (p) memset(p, 1, 64 << 20); }"
               " for (;;) pause(); }"),
}


def solution_dir(dest):
    dest.mkdir(parents=True)
    for f in SOL.glob("*.c"):
        shutil.copy(f, dest / f.name)
    return dest


def hostile(dest, program, body):
    d = solution_dir(dest / "chapters" / "01-sockets")
    (d / f"{program}.c").write_text('#include "common.h"\n#include <signal.h>\n' + body + "\n")


def make_class(root):
    solution_dir(root / "alice" / "chapters" / "01-sockets")
    good = root / "bob" / "chapters" / "01-sockets"
    solution_dir(good)
    for f in (REPO / "tests" / "selftest" / "01-sockets" / "good-getaddrinfo").glob("*.c"):
        shutil.copy(f, good / f.name)
    with zipfile.ZipFile(root / "carol.zip", "w") as z:          # a zip of a whole repo
        for f in SOL.glob("*.c"):
            z.write(f, f"socklab-main/chapters/01-sockets/{f.name}")
        z.writestr("../../evil-outside.txt", "zip slip")
    partial = root / "dave" / "chapters" / "01-sockets"
    partial.mkdir(parents=True)
    shutil.copy(SOL / "addr.c", partial / "addr.c")              # addr done, the rest TODO
    for name in ("server.c", "client.c"):
        shutil.copy(SKEL / name, partial / name)
    broken = solution_dir(root / "erin" / "chapters" / "01-sockets")
    (broken / "server.c").write_text("int main(void) { return 0 }\n")
    hostile(root / "frank", "addr", HOSTILE_MAIN["forkbomb"])
    hostile(root / "grace", "server", HOSTILE_MAIN["flood"])
    hostile(root / "heidi", "server", HOSTILE_MAIN["hang"])
    hostile(root / "ivan", "server", HOSTILE_MAIN["orphan"])
    hostile(root / "judy", "addr", HOSTILE_MAIN["escape"])
    hostile(root / "peggy", "server", HOSTILE_MAIN["memhog"])
    fake = solution_dir(root / "mallory" / "chapters" / "01-sockets")
    (fake / "addr.c").write_text('#include "common.h"\nint main(void) { return 0; }\n')
    (fake / "test_sockets.py").write_text("def test_everything():\n    pass\n")
    (root / "mallory" / "results.json").write_text('{"score": 1000, "tests": []}')
    (root / "nobody").mkdir()                                      # an empty submission


def digest(paths):
    h = hashlib.sha256()
    for p in paths:
        for f in sorted(p.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(f.read_bytes())
    return h.hexdigest()


def kernel_oom_kills():
    """How many processes the kernel's OOM killer has ended since boot."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def sandbox_processes(uids):
    """Processes still running as the batch's sandbox uids (those its results name: a
    batch running beside this one has uids of its own)."""
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.split() and int(l.split()[0]) in uids]


@pytest.mark.skipif(not real_root(), reason="the full sandbox (uid switch, process limit) needs root")
def test_batch_grades_a_class_with_hostile_submissions(tmp_path):
    subs = tmp_path / "submissions"
    make_class(subs)
    out = tmp_path / "out"
    before = digest([REPO / "grader", REPO / "chapters" / "01-sockets", REPO / "lib"])
    for marker in ("/tmp/socklab-escape-marker", "/var/tmp/socklab-escape-marker"):
        Path(marker).unlink(missing_ok=True)
    oom_kills = kernel_oom_kills()

    t0 = time.monotonic()
    res = subprocess.run([REPO / "lab", "batch", subs, "--out", out, "--lessons", "01", "--jobs", "2"],
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    first = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    print(res.stdout)
    rows = {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv"))}
    assert len(rows) == 13
    score = {s: int(r["01-sockets"]) for s, r in rows.items()}
    for s in ("alice", "bob", "carol"):
        assert score[s] == FULL, (s, rows[s])
    assert 0 < score["dave"] < FULL
    assert score["erin"] < FULL and "compile" in rows["erin"]["notes"]
    for s in ("frank", "grace", "heidi", "ivan", "judy", "mallory", "nobody", "peggy"):
        assert score[s] < FULL, (s, rows[s])
    assert f"used more than {MEMORY_LIMIT_MIB} MiB of memory" in rows["peggy"]["notes"], rows["peggy"]
    assert "memory" in (out / "students" / "peggy" / "report.txt").read_text()
    for s in ("alice", "bob"):  # correct programs stay far below the bound
        peak = json.loads((out / "students" / s / "result.json").read_text())["peak_memory_mib"]
        assert "memory" not in rows[s]["notes"] and peak < MEMORY_LIMIT_MIB // 4, (s, peak)
    assert (out / "gradebook.html").read_text().count("<tr>") == 14
    assert "flood" in (out / "students" / "grace" / "report.txt").read_text()

    # nothing escaped, nothing was tampered with, nothing is left running
    assert not Path("/tmp/socklab-escape-marker").exists()
    assert not Path("/var/tmp/socklab-escape-marker").exists()
    assert not (tmp_path / "evil-outside.txt").exists()
    assert digest([REPO / "grader", REPO / "chapters" / "01-sockets", REPO / "lib"]) == before
    uids = {json.loads((out / "students" / s / "result.json").read_text())["sandbox_uid"] for s in rows}
    assert uids and all(uid != os.geteuid() for uid in uids)
    assert not sandbox_processes(uids), sandbox_processes(uids)
    assert kernel_oom_kills() == oom_kills  # the batch's bound stopped peggy, not the kernel

    # a re-run resumes (nothing regraded) and gives the same gradebook
    t0 = time.monotonic()
    again = subprocess.run([REPO / "lab", "batch", subs, "--out", out, "--lessons", "01", "--jobs", "2"],
                           capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert again.returncode == 0
    assert time.monotonic() - t0 < first / 2 + 5
    assert {s: r for s, r in ((r["student"], r) for r in csv.DictReader(open(out / "gradebook.csv")))} == rows


@pytest.mark.skipif(not real_root(), reason="sandbox uids are claimed only as root")
def test_two_batches_at_once_never_share_a_sandbox_uid():
    """Each slot's uid is killed wholesale after a submission: a second batch running at
    the same time must get other uids (a lock file per uid), not the first one's."""
    from grader import batch
    first, held = batch.claim_sandbox_uids(2)
    second, held2 = batch.claim_sandbox_uids(2)
    try:
        assert len(set(first) | set(second)) == 4
    finally:
        for f in held + held2:
            f.close()


def test_batch_takes_a_submissions_chapter_library(tmp_path):
    """A lesson whose students write a library (lib/) gets the student's version graded."""
    from grader import batch
    sub = tmp_path / "sub" / "chapters" / "04-unix-sockets" / "lib"
    sub.mkdir(parents=True)
    (sub / "unixlab.c").write_text("/* the student's own */\n")
    (sub.parent / "pair.c").write_text("/* the student's program */\n")
    taken = batch.prepare(tmp_path / "sub", tmp_path / "work", ["04-unix-sockets"])
    course = tmp_path / "work" / "course" / "chapters" / "04-unix-sockets"
    assert "04-unix-sockets/lib/unixlab.c" in taken and "04-unix-sockets/pair.c" in taken
    assert (course / "lib" / "unixlab.c").read_text() == "/* the student's own */\n"
    assert not (course / "test_unix_sockets.py").read_text().startswith("/*")
