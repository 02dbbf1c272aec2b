#!/usr/bin/env python3
"""Screenshots of ./lab report pages for the docs, from the grader's self-test programs.

    tools/report-screenshots.py docs/img 06-shutdown/wrong-close-instead-of-shutdown ...

For each tests/selftest/<lesson>/<case>: build it as the self-tests do (the reference
solution with the case's mistake), grade the lesson, write its report page, and take a
headless-Chromium screenshot of the page of its first failing test: <out>/report-<lesson>.png.
Needs the solutions build (./lab check NN --solutions makes it) and chromium
(tools/setup.sh --report).
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from grader import html_report  # noqa: E402
from test_report import CHROMIUM_FLAGS  # noqa: E402
from test_selftests import build_case  # noqa: E402


def shoot(case, out_dir, size="1000,1500"):
    lesson = case.parent.name
    with tempfile.TemporaryDirectory(prefix="socklab-shot-") as tmp:
        tmp = Path(tmp)
        build_case(case, REPO / "build" / "solutions", tmp / "build")
        subprocess.run([sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:xdist", "-c",
                        REPO / "pytest.ini", "--rootdir", REPO, "--build-dir", tmp / "build",
                        "--raw-results", tmp / "raw.json", REPO / "chapters" / lesson],
                       cwd=REPO, capture_output=True, timeout=300)
        # the page of the first failing test alone: what a student looks at first
        raw = json.loads((tmp / "raw.json").read_text())
        failing = sorted((r.get("index", 0), node) for node, r in raw.items()
                         if r.get("lesson") == lesson and r["outcome"] == "failed")
        first = {failing[0][1]: raw[failing[0][1]]}
        (tmp / "first.json").write_text(json.dumps(first))
        page = html_report.write(lesson, tmp / "first.json", tmp / "report", "student")
        png = out_dir / f"report-{lesson}.png"
        subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
                        f"--window-size={size}", f"--screenshot={png}", page.as_uri()],
                       capture_output=True, timeout=120, check=True, stdin=subprocess.DEVNULL)
        return png


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:]:
        print(shoot(REPO / "tests" / "selftest" / name, out))


if __name__ == "__main__":
    main()
