"""Instructor tools: the student release and the Gradescope bundle work end to end."""
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from grader import instructor

REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, NO_COLOR="1")


def run(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, env=kw.pop("env", ENV), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, **kw)


def test_hidden_tests_are_stripped_from_a_release():
    src = ("from grader import hidden, points\n\n"
           "@points(2)\ndef test_visible(lab):\n    pass\n\n\n"
           "@hidden\n@points(3)\ndef test_secret(lab):\n    '''doc'''\n    assert 1\n\n\n"
           "def test_last(lab):\n    pass\n")
    out, n = instructor.strip_hidden_tests(src)
    assert n == 1 and "test_secret" not in out
    assert "def test_visible" in out and "def test_last" in out and "@points(2)" in out
    compile(out, "x.py", "exec")


def test_release_has_no_solutions_fails_as_shipped_and_passes_with_them(tmp_path):
    out = tmp_path / "release"
    res = run([REPO / "lab", "release", out], REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (out / "solutions").exists() and not (out / "tests" / "selftest").exists()
    wf = (out / ".github" / "workflows" / "classroom.yml").read_text()
    assert "autograding-command-grader" in wf and "max-score" in wf
    lesson = "01-sockets"
    shipped = run([out / "lab", "check", lesson[:2]], out)
    assert shipped.returncode == 1 and "Score: 0/" in shipped.stdout, shipped.stdout[-2000:]
    # shutil.copy, not copy2: fresh mtimes, as an editor would leave them, so make rebuilds
    shutil.copytree(REPO / "solutions" / lesson, out / "chapters" / lesson, dirs_exist_ok=True,
                    copy_function=shutil.copy)
    solved = run([out / "lab", "check", lesson[:2]], out)
    assert solved.returncode == 0, solved.stdout[-3000:]
    # a compile error must never be graded with the last good binary
    client = out / "chapters" / lesson / "client.c"
    client.write_text(client.read_text().replace("return 0;", "return 0", 1))
    broken = run([out / "lab", "check", lesson[:2]], out)
    assert broken.returncode == 1 and "did not compile" in broken.stdout, broken.stdout[-3000:]


def test_gradescope_bundle_grades_a_submission_and_ignores_tampering(tmp_path):
    bundle = tmp_path / "autograder.zip"
    assert run([REPO / "lab", "gradescope", bundle], REPO).returncode == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        assert "setup.sh" in names and "run_autograder" in names
        assert not any(n.startswith("socklab/solutions/") for n in names)
        z.extractall(root / "source")
    shutil.copytree(root / "source" / "socklab", root / "socklab")  # what setup.sh does
    os.chmod(root / "socklab" / "lab", 0o755)
    os.chmod(root / "socklab" / "tools" / "setup.sh", 0o755)
    sub = root / "submission" / "chapters" / "01-sockets"
    sub.mkdir(parents=True)
    for src in (REPO / "solutions" / "01-sockets").glob("*.c"):
        shutil.copy(src, sub / src.name)
    # a tampered grader and a fake results file in the submission must change nothing
    (sub / "test_sockets.py").write_text("def test_free_points():\n    pass\n")
    (root / "results").mkdir()
    res = run(["bash", root / "source" / "run_autograder"], tmp_path,
              env=dict(ENV, AUTOGRADER_ROOT=str(root)))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    assert instructor.results_valid(data)
    graded = [t for t in data["tests"] if t["name"] != "compile"]
    assert any("01 sockets" in t["name"] for t in graded)
    assert all("free points" not in t["name"] for t in graded)
    ours = [t for t in graded if t["name"].startswith("01 sockets")]
    assert ours and all(t["status"] == "passed" for t in ours)
