"""python3 -m grader.session: build and grade one submission, inside its sandbox.

grader/sandbox.py starts this as the grader (root of the sandbox's user namespace, or
the instructor without root) inside the view it made, with a job (JSON) on stdin.  It

  1. builds the course copy -- the submission's sources in it -- as the *builder* uid
     (the compiler never runs with the grader's rights);
  2. runs the graders (pytest) as root, each program under test as the *runner* uid
     (grader/identity.py);
  3. writes one JSON record to the result pipe: the build's outcome and log, every
     test's raw result, and how the grader ended.

Its standard output is the grading report.  Nothing the submission runs can reach the
result pipe: only this process and pytest hold it, both as root, neither dumpable.
"""
import json
import os
import subprocess
import sys
import threading
import time

from grader import identity, isolation

LOG_LIMIT = 64 << 10     # of the build log kept in the record
RESULTS_LIMIT = 16 << 20


def _capped_run(argv, timeout, **kw):
    """(returncode or None on timeout, output cut at LOG_LIMIT); the whole process group
    is killed at the end, whatever it left behind."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kw)
    chunks, size = [], 0

    def drain():
        nonlocal size
        for block in iter(lambda: proc.stdout.read(65536), b""):
            if size < LOG_LIMIT:
                chunks.append(block[:LOG_LIMIT - size])
            size += len(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    isolation.kill_group(proc.pid) if rc is None else None
    proc.wait()
    reader.join(timeout=5)
    text = b"".join(chunks).decode("utf-8", "replace")
    if size > LOG_LIMIT:
        text += f"\n[... cut at {LOG_LIMIT >> 10} KiB of {size >> 10} KiB]"
    return rc, text


def build(job):
    os.makedirs(job["build"], exist_ok=True)
    if job.get("builder") is not None:
        os.chown(job["build"], job["builder"], job["builder"])
    t0 = time.monotonic()
    rc, log = _capped_run(
        ["sh", "-c", 'cmake -S "$1" -B "$2" -DSOCKLAB_TESTS=OFF >/dev/null && cmake --build "$2" -j 1 -- -k',
         "build", job["course"], job["build"]],
        job["build_seconds"], cwd=job["course"], preexec_fn=identity.as_builder)
    return {"ok": rc == 0, "returncode": rc, "log": log, "seconds": round(time.monotonic() - t0, 1)}


def grade(job):
    """Run pytest; returns (raw results or None, how it ended)."""
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "pytest", "-q", "-rN", "--tb=no", "-p", "no:xdist",
            "-c", os.path.join(job["course"], "pytest.ini"), "--rootdir", job["course"],
            "--build-dir", job["build"], "--basetemp", os.path.join(job["tmp"], "pytest"),
            "--raw-results-fd", str(write_fd), "-o", "timeout=20"]
    if job.get("runner") is not None:
        argv += ["--runner-uid", str(job["runner"]), "--builder-uid", str(job["builder"])]
    kept = [write_fd]
    if job.get("programs_cgroup_fd") is not None:       # the programs' CPU share (grader/cgroups.py)
        argv += ["--programs-cgroup-fd", str(job["programs_cgroup_fd"])]
        kept.append(job["programs_cgroup_fd"])
    argv += [os.path.join(job["course"], "chapters", name) for name in job["lessons"]]
    chunks = []

    def read_all():
        with os.fdopen(read_fd, "rb") as f:
            chunks.append(f.read(RESULTS_LIMIT))

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    proc = subprocess.Popen(argv, cwd=job["course"], stdin=subprocess.DEVNULL,
                            pass_fds=tuple(kept), start_new_session=True)
    os.close(write_fd)
    try:
        rc = proc.wait(timeout=job["grade_seconds"])
        ended = {"returncode": rc}
    except subprocess.TimeoutExpired:
        isolation.kill_group(proc.pid)
        proc.wait()
        ended = {"returncode": None, "timed_out": job["grade_seconds"]}
    isolation.kill_new_descendants(set())   # whatever a program left behind
    reader.join(timeout=5)
    try:
        raw = json.loads(b"".join(chunks)) if chunks and chunks[0] else None
    except ValueError:
        raw = None
    return raw, ended


def main(argv):
    job = json.loads(sys.stdin.read())          # on stdin: a command line is anyone's to read
    identity.configure(job.get("runner"), job.get("builder"))
    result = os.fdopen(job["result_fd"], "w")
    isolation.make_undumpable()
    isolation.become_subreaper()
    os.makedirs(job["tmp"], exist_ok=True)
    record = {"build": build(job)}
    sys.stdout.write(f"== build ==\n{record['build']['log']}\n== grading ==\n")
    sys.stdout.flush()
    record["results"], record["grader"] = grade(job)
    json.dump(record, result)
    result.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
