#!/usr/bin/python3
"""Benchmark: the lesson-10 reference echo server against libevent and libuv echo servers,
with two limit rows: a bare epoll echo server (no library at all) and the lesson-14
io_uring echo server.

    bench/run.py [--seconds 2] [--rounds 3] [--idle 10000] [--out FILE]

Builds everything with gcc -O2 into /tmp/socklab-bench (needs libevent-dev and
libuv1-dev: sudo bash tools/setup.sh --bench), then for each server and each
concurrency (1, 100, 1000 connections) runs bench/loadgen for SECONDS, ROUNDS times
interleaved, and prints the medians of requests/s, p50/p99 latency and RSS growth per
connection, with ratios to libevent.
Finally each server holds 10,000 idle connections and its RSS is reported.
Every server runs single-threaded (ours with THREADS=0), on the same machine as the
load generator.  Takes about a minute.
"""
import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = Path("/tmp/socklab-bench")
CFLAGS = ["-O2", "-D_GNU_SOURCE", "-std=gnu11", "-pthread"]


def build():
    OUT.mkdir(parents=True, exist_ok=True)
    for hdr, pkg in (("/usr/include/event2/event.h", "libevent-dev"), ("/usr/include/uv.h", "libuv1-dev")):
        if not Path(hdr).exists():
            sys.exit(f"{hdr} missing: apt-get install {pkg}")
    jobs = {
        "loadgen": ["bench/loadgen.c"],
        "echo_libevent": ["bench/echo_libevent.c", "-levent"],
        "echo_libuv": ["bench/echo_libuv.c", "-luv"],
        "echo_socklab": [*map(str, reference_reactor_sources()),
                         *map(str, sorted((REPO / "lib").glob("*.c"))),
                         "-I", str(REPO / "solutions" / "10-reactor" / "lib"),
                         "-I", str(REPO / "chapters" / "10-reactor" / "lib"), "-I", str(REPO / "lib")],
        "echo_epoll": ["bench/echo_epoll.c"],
    }
    if io_uring_missing() is None:
        uring = REPO / "chapters" / "14-io-uring"
        jobs["echo_uring"] = [str(REPO / "solutions" / "14-io-uring" / "uecho.c"),
                              *map(str, sorted((uring / "lib").glob("*.c"))),
                              *map(str, sorted((REPO / "lib").glob("*.c"))),
                              "-I", str(uring / "lib"), "-I", str(REPO / "lib"), "-luring"]
    for name, args in jobs.items():
        subprocess.run(["gcc", *CFLAGS, "-o", str(OUT / name), *args], cwd=REPO, check=True)


def io_uring_missing():
    """Why the io_uring row cannot run here (grader/requirements.py's probe), or None."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("requirements", REPO / "grader" / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not Path("/usr/include/liburing.h").exists():
        return "liburing-dev is not installed"
    return module.io_uring_unavailable_reason()


def reference_reactor_sources():
    """echo.c and the library, as the solutions build takes them: solutions/10-reactor
    holds only what differs from the chapter's given code (the CMake rule, too)."""
    chapter, solution = REPO / "chapters" / "10-reactor", REPO / "solutions" / "10-reactor"
    given = [chapter / "echo.c", *sorted((chapter / "lib").glob("*.c"))]
    return [solution / f.relative_to(chapter) if (solution / f.relative_to(chapter)).exists() else f
            for f in given]


def free_port():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))     # free on every address, as the server binds it
        return s.getsockname()[1]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, name):
        for attempt in range(5):    # a free port can be taken by someone else before we bind it
            self.port = free_port()
            args = [str(OUT / name), str(self.port)] + (["0", "epoll"] if name == "echo_socklab" else [])
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         preexec_fn=raise_nofile, text=True)
            line = self.proc.stdout.readline()
            if line.startswith("listening on"):
                break
            err = self.proc.stderr.read()
            self.proc.wait()
        else:
            sys.exit(f"{name} did not start: {line!r} {err}")
        # drain the per-connection lines in the background so the pipe never fills
        self.drain = [subprocess.Popen(["cat"], stdin=pipe, stdout=subprocess.DEVNULL)
                      for pipe in (self.proc.stdout, self.proc.stderr)]
        self.rss0 = rss_kib(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for d in self.drain:
            d.wait(timeout=3)
        self.proc.stdout.close()
        self.proc.stderr.close()


def load(server, conns, seconds):
    """Run loadgen; sample the server's RSS half-way through."""
    lg = subprocess.Popen([str(OUT / "loadgen"), str(server.port), str(conns), str(seconds)],
                          stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
    time.sleep(seconds / 2)
    rss = rss_kib(server.proc.pid)
    out, _ = lg.communicate(timeout=seconds + 10)
    if lg.returncode != 0:
        sys.exit(f"loadgen failed against {server.proc.args[0]}")
    f = out.split()
    res = dict(zip(f[0::2], f[1::2]))
    return {"rps": float(res["rps"]), "p50": int(res["p50_us"]), "p99": int(res["p99_us"]),
            "rss_per_conn": (rss - server.rss0) * 1024 / conns}


def idle(server, conns, hold=2.0):
    lg = subprocess.Popen([str(OUT / "loadgen"), str(server.port), str(conns), str(hold + 20), "idle"],
                          stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
    line = lg.stdout.readline()
    if not line.startswith("connected"):
        lg.kill()
        sys.exit(f"idle connections failed against {server.proc.args[0]}")
    time.sleep(hold)     # let the server accept and settle
    rss = rss_kib(server.proc.pid)
    lg.kill()
    lg.wait()
    return rss, (rss - server.rss0) * 1024 / conns


def main():
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--out")
    ap.add_argument("--build-only", action="store_true", help="build everything, measure nothing")
    ap.add_argument("--build-dir", default=str(OUT), help=f"where the programs go (default {OUT})")
    a = ap.parse_args()
    OUT = Path(a.build_dir)
    build()
    if a.build_only:
        return
    servers = ["echo_libevent", "echo_libuv", "echo_socklab", "echo_epoll"]
    missing = io_uring_missing()
    if missing is None:
        servers.append("echo_uring")
    lines = [f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
             f"median of {a.rounds} interleaved rounds of {a.seconds:g} s per point, 64-byte echo, "
             f"1 request in flight per connection, load average {os.getloadavg()[0]:.1f}"]
    if missing:
        lines.append(f"# no echo_uring row: {missing}")
    # Interleaved rounds, median per metric: a shared machine's noise hits every server alike
    runs = {}
    for _ in range(a.rounds):
        for conns in (1, 100, 1000):
            for name in servers:
                s = Server(name)
                try:
                    runs.setdefault((name, conns), []).append(load(s, conns, a.seconds))
                finally:
                    s.stop()
    results = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for key, rs in runs.items()}
    lines.append(f"{'server':15} {'conns':>5} {'req/s':>9} {'p50 us':>7} {'p99 us':>7} "
                 f"{'B/conn':>8} | {'req/s':>6} {'p50':>6} {'p99':>6} {'B/conn':>6}  (ratio to libevent)")
    for conns in (1, 100, 1000):
        base = results["echo_libevent", conns]
        for name in servers:
            r = results[name, conns]
            ratio = lambda k: r[k] / base[k] if base[k] else float("nan")
            lines.append(f"{name:15} {conns:5} {r['rps']:9.0f} {r['p50']:7} {r['p99']:7} "
                         f"{r['rss_per_conn']:8.0f} | {ratio('rps'):6.2f} {ratio('p50'):6.2f} "
                         f"{ratio('p99'):6.2f} {ratio('rss_per_conn'):6.2f}")
    lines.append(f"idle: {a.idle} connections held")
    for name in servers:
        s = Server(name)
        try:
            rss, per = idle(s, a.idle)
        finally:
            s.stop()
        lines.append(f"{name:15} RSS {rss / 1024:7.1f} MiB  {per:7.0f} B/conn")
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
