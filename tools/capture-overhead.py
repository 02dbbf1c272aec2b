#!/usr/bin/env python3
"""What the always-on packet capture costs: each lesson's check timed with and without it.

    tools/capture-overhead.py 02 05 06 07 [--runs 5]

Runs `./lab check NN --solutions` alternately with SOCKLAB_CAPTURE=0 (no tap, no state
sampler, no pcap: the grader as it was before) and =1 (the default), and prints the
median wall time of each, and pytest's own figure.  Alternating spreads the noise of a
shared machine over both columns evenly.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(lesson, capture):
    env = dict(os.environ, SOCKLAB_CAPTURE="1" if capture else "0")
    start = time.monotonic()
    out = subprocess.run([str(REPO / "lab"), "check", lesson, "--solutions"], cwd=REPO, env=env,
                         capture_output=True, text=True).stdout
    wall = time.monotonic() - start
    m = re.search(r"passed in ([\d.]+)s", out)
    if "failed" in out.splitlines()[-1] or not m:
        sys.exit(f"lesson {lesson} did not pass (capture={capture}):\n{out[-2000:]}")
    return wall, float(m.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lessons", nargs="+")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    print(f"{'lesson':<8}{'without':>10}{'with':>10}{'change':>9}   (median wall s of {args.runs} "
          "runs; pytest's own s in brackets)")
    for lesson in args.lessons:
        runs = {False: [], True: []}
        for i in range(args.runs):
            for capture in ((False, True) if i % 2 == 0 else (True, False)):
                runs[capture].append(one_run(lesson, capture))
        off = statistics.median(w for w, _ in runs[False])
        on = statistics.median(w for w, _ in runs[True])
        off_py = statistics.median(p for _, p in runs[False])
        on_py = statistics.median(p for _, p in runs[True])
        print(f"{lesson:<8}{off:>10.2f}{on:>10.2f}{(on - off) / off * 100:>+8.1f}%"
              f"   [{off_py:.2f} -> {on_py:.2f}]", flush=True)


if __name__ == "__main__":
    main()
