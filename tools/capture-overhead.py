#!/usr/bin/env python3
"""What the always-on packet capture costs: each lesson's check timed with and without it.

    tools/capture-overhead.py 02 05 06 07 [--runs 5]
    tools/capture-overhead.py 02 05 06 07 --before /tmp/socklab-before

(--before TREE: "without" is another checkout -- the commit before the capture, say:
git clone --shared . /tmp/socklab-before && git -C /tmp/socklab-before checkout COMMIT --
and "with" is this one.)

Runs `./lab check NN --solutions` alternately with SOCKLAB_CAPTURE=0 (no tap, no state
sampler, no pcap: the grader as it was before) and =1 (the default), and prints for each
the median wall time, pytest's own figure, and the CPU time (user + system) of the
whole run.  Alternating spreads the noise of a shared machine over both columns evenly;
on a busy machine the CPU time is the steadier figure.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(lesson, capture, before_tree=None):
    env = dict(os.environ, SOCKLAB_CAPTURE="1" if capture else "0")
    tree = before_tree if before_tree and not capture else REPO
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run([str(tree / "lab"), "check", lesson, "--solutions"], cwd=tree, env=env,
                         capture_output=True, text=True).stdout
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"passed in ([\d.]+)s", out)
    if "failed" in out.splitlines()[-1] or not m:
        sys.exit(f"lesson {lesson} did not pass (capture={capture}):\n{out[-2000:]}")
    return wall, float(m.group(1)), cpu


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lessons", nargs="+")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--before", type=Path, help="a checkout to time as 'without' (see above)")
    args = p.parse_args()
    print(f"{'lesson':<8}{'wall without':>13}{'with':>7}{'change':>9}   {'pytest s':>14}   "
          f"{'CPU s without':>14}{'with':>7}{'change':>9}   (medians of {args.runs} runs)")
    for lesson in args.lessons:
        runs = {False: [], True: []}
        for i in range(args.runs):
            for capture in ((False, True) if i % 2 == 0 else (True, False)):
                runs[capture].append(one_run(lesson, capture, args.before))
        med = {c: [statistics.median(r[i] for r in runs[c]) for i in range(3)] for c in runs}
        (off, off_py, off_cpu), (on, on_py, on_cpu) = med[False], med[True]
        print(f"{lesson:<8}{off:>13.2f}{on:>7.2f}{(on - off) / off * 100:>+8.1f}%   "
              f"{off_py:>6.2f} -> {on_py:<5.2f}  {off_cpu:>14.2f}{on_cpu:>7.2f}"
              f"{(on_cpu - off_cpu) / off_cpu * 100:>+8.1f}%", flush=True)


if __name__ == "__main__":
    main()
