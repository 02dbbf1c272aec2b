"""The ./lab command line, as a student and an instructor use it."""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def lab(tmp_path):
    env = dict(os.environ, SOCKLAB_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1")

    def run(*args, check=True):
        res = subprocess.run([REPO / "lab", *args], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=240, stdin=subprocess.DEVNULL)
        if check:
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res
    return run


def test_board_lists_the_lessons_and_what_to_do_next(lab):
    out = lab().stdout
    assert "01  Sockets and addresses" in out and "not started" in out
    assert "./lab check 01" in out


def test_hints_come_one_at_a_time(lab):
    first = lab("hint", "01").stdout
    assert "Hint 1/" in first and "Hint 2/" not in first
    second = lab("hint", "1").stdout
    assert "Hint 2/" in second
    again = lab("hint", "sockets", "--reset").stdout
    assert "Hint 1/" in again and "Hint 2/" not in again


def test_unknown_lesson_is_named_with_the_choices(lab):
    res = lab("check", "77", check=False)
    assert res.returncode == 2
    assert "no lesson '77'" in res.stdout and "01-sockets" in res.stdout


def test_check_reports_progress_on_the_board(lab):
    res = lab("check", "01", check=False)
    assert res.returncode == 1
    assert "Score: 0/" in res.stdout
    assert "expected" in res.stdout and "hint" in res.stdout
    assert "failing" in lab().stdout


def test_grade_writes_gradescope_results(lab, tmp_path):
    out = tmp_path / "results.json"
    lab("grade", "--solutions", "--json", str(out), "01")
    data = json.loads(out.read_text())
    assert {"score", "execution_time", "tests", "output", "visibility"} <= set(data)
    tests = [t for t in data["tests"] if t["name"] != "compile"]
    assert tests and all(t["status"] == "passed" for t in tests)
    assert data["score"] == sum(t["max_score"] for t in tests)
    for t in tests:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)


def test_run_executes_one_program(lab):
    res = lab("run", "--solutions", "01", "addr", "127.0.0.1", "80", check=False)
    assert "port 80 bytes 00 50" in res.stdout, res.stdout + res.stderr
