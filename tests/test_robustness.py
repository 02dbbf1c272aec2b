"""The grader survives hostile programs: floods, crashes, hangs, orphans holding a
port, death by SIGPIPE.  Each is reported as such, the run stays bounded in time, and
no process of the run is left behind."""
import subprocess
import sys
import time
from pathlib import Path
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "robustness" / "99-robustness"


def live_processes_under(path):
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(path) in line]


def test_hostile_programs_are_reported_and_cleaned_up(tmp_path):
    bindir = tmp_path / "build" / "chapters" / "99-robustness"
    bindir.mkdir(parents=True)
    for src in HERE.glob("*.c"):
        subprocess.run(["gcc", "-O1", "-w", "-o", bindir / src.stem, src], check=True)
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-c", REPO / "pytest.ini",
         "--rootdir", REPO, "--build-dir", tmp_path / "build", HERE / "test_robustness.py"],
        cwd=REPO, capture_output=True, text=True, timeout=slowed(120))
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert elapsed < slowed(30), f"the hostile run took {elapsed:.1f} s"
    assert not live_processes_under(bindir), live_processes_under(bindir)
