"""Instructor tools: the student release and the Gradescope bundle work end to end."""
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from grader import instructor
from grader.host import real_root
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, NO_COLOR="1")
# all that GitHub Classroom's command grader passes on to a step's command
CLASSROOM_ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
                 "FORCE_COLOR": "true"}
STUDENT_COMMANDS = {"check", "hint", "watch", "run", "help", "docs", "board"}


def run(cmd, cwd, timeout=slowed(300), **kw):
    return subprocess.run(cmd, cwd=cwd, env=kw.pop("env", ENV), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def make_release(out):
    res = run([REPO / "lab", "release", out], REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def copy_solutions_into(out, lessons=None):
    """shutil.copy, not copy2: fresh mtimes, as an editor would leave them, so make rebuilds."""
    for sol in sorted((REPO / "solutions").iterdir()):
        if lessons is None or sol.name in lessons:
            shutil.copytree(sol, out / "chapters" / sol.name, dirs_exist_ok=True,
                            copy_function=shutil.copy)


def workflow_steps(out):
    """[(test-name, command, max-score)] of the release's Classroom workflow, in order."""
    text = (out / ".github" / "workflows" / "classroom.yml").read_text()
    names = [json.loads(m) for m in re.findall(r'^ +test-name: (".*")$', text, re.M)]
    commands = [json.loads(m) for m in re.findall(r'^ +command: (".*")$', text, re.M)]
    scores = [int(m) for m in re.findall(r"^ +max-score: (\d+)$", text, re.M)]
    assert len(names) == len(commands) == len(scores) > 0
    return list(zip(names, commands, scores))


def grade(out, tmp_path, name):
    """`./lab grade --json` in a release: ({test name: (status, max_score)}, results.json)."""
    results = tmp_path / name
    res = run([out / "lab", "grade", "--json", results], out, timeout=slowed(900))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads(results.read_text())
    graded = {t["name"]: (t["status"], t["max_score"])
              for t in data["tests"] if t["name"] != "compile"}
    return graded, data


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A fresh release, made a git repository as the template repository made from it is."""
    out = make_release(tmp_path_factory.mktemp("release") / "socklab")
    subprocess.run(["git", "init", "-q"], cwd=out, check=True)
    return out


@pytest.fixture(scope="module")
def solved_release(tmp_path_factory):
    """A release with every reference solution copied back in."""
    out = make_release(tmp_path_factory.mktemp("solved") / "socklab")
    copy_solutions_into(out)
    return out


def test_hidden_tests_are_stripped_from_a_release():
    src = ("from grader import hidden, points\n\n"
           "@points(2)\ndef test_visible(lab):\n    pass\n\n\n"
           "@hidden\n@points(3)\ndef test_secret(lab):\n    '''doc'''\n    assert 1\n\n\n"
           "def test_last(lab):\n    pass\n")
    out, n = instructor.strip_hidden_tests(src)
    assert n == 1 and "test_secret" not in out
    assert "def test_visible" in out and "def test_last" in out and "@points(2)" in out
    compile(out, "x.py", "exec")


def test_a_step_runs_exactly_its_one_case():
    """A step names its case with --only (pytest -k would match every name containing
    it): one parameter of a parametrized test runs alone."""
    steps = instructor.classroom_workflow([instructor.GradedCase("09-x", "test_echo[poll]", "t", 2)])
    assert "./lab check 09 --only 'test_echo[poll]' --fail-on-skip" in steps
    res = run([REPO / "lab", "check", "09", "--solutions", "--only",
               "test_server_answers_each_line_in_rot13[pollsrv]"], REPO)
    assert res.returncode == 0 and re.search(r"^1 passed", res.stdout, re.M), res.stdout[-2000:]


def test_release_leaves_out_the_solutions_and_what_needs_them(release):
    """No solutions/, no maintainer self-tests, no project test that uses the solutions."""
    assert not (release / "solutions").exists() and not (release / "tests" / "selftest").exists()
    assert not (release / "bench").exists()
    for name in ("test_fallback.py", "test_batch.py", "test_selftests.py", "test_instructor.py"):
        assert not (release / "tests" / name).exists(), name
    for test_file in (release / "tests").glob("test_*.py"):
        assert not re.search(r"\bsolutions\b", test_file.read_text()), test_file.name
    assert (release / "tests" / "test_cli.py").exists()


@pytest.mark.slow       # minutes: started first, so it is not the run's tail
@pytest.mark.timeout(900)
def test_lab_test_passes_in_a_student_repository(release):
    """`./lab test` in a release runs what applies there (the lib unit tests and the tests
    that need no solutions), skips verify, and passes."""
    res = run([release / "lab", "test"], release, timeout=slowed(800))
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-3000:]
    assert "verify skipped" in res.stdout and "socklab: 2 passed, 0 failed" in res.stdout


def test_release_readme_is_for_students_and_follows_the_release(release):
    """The README names only what a student has: the lessons present, every top-level
    entry, student commands, and the Classroom workflow's own step count and total."""
    readme = (release / "README.md").read_text()
    for maintainer_only in ("solutions/", "./lab verify", "./lab test", ".ci/", "bench/"):
        assert maintainer_only not in readme
    assert set(re.findall(r"\./lab (\w+)", readme)) <= STUDENT_COMMANDS
    for lesson in instructor.released_lessons(release):
        assert f"**{lesson.number}** {lesson.title}" in readme
        assert f"(chapters/{lesson.name}/README.md)" in readme
    described = re.findall(r"^\| `([^`]+)` \|", readme, re.M)
    assert described and all((release / path).exists() for path in described)
    for entry in release.iterdir():
        if entry.name not in (".git", ".gitignore", "build", "README.md"):
            assert any(p.rstrip("/") == entry.name or p.startswith(entry.name + "/")
                       for p in described), f"the README's layout leaves out {entry.name}"
    steps = workflow_steps(release)
    assert f"{len(steps)} steps" in readme and f"{sum(s for _, _, s in steps)} points" in readme


def test_the_workflow_is_yaml_with_one_step_per_case_and_a_reporter_for_all(release):
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load((release / ".github" / "workflows" / "classroom.yml").read_text())
    steps = wf["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if "autograding-command-grader" in s.get("uses", "")]
    assert [(s["with"]["test-name"], s["with"]["command"], s["with"]["max-score"])
            for s in graders] == workflow_steps(release)
    assert steps[-1]["with"]["runners"].split(",") == [s["id"] for s in graders]


def lesson_sources(root):
    """{path: bytes} of the C files under root/chapters."""
    return {p.relative_to(root): p.read_bytes() for p in sorted((root / "chapters").glob("*/*.[ch]"))}


@pytest.mark.timeout(600)
def test_release_skeletons_fail_and_a_compile_error_is_never_graded_with_the_last_binary(tmp_path):
    """A release's lesson sources are the checkout's skeletons, byte for byte (./lab verify
    grades every one and sees it fail); in the release, lesson 01's scores 0, passes once
    its solution is copied in, and a compile error then is reported, never graded with
    the last binary."""
    out = make_release(tmp_path / "release")
    assert lesson_sources(out) == lesson_sources(REPO)
    lesson = "01-sockets"
    shipped = run([out / "lab", "check", lesson[:2]], out)
    assert shipped.returncode == 1 and "Score: 0/" in shipped.stdout, shipped.stdout[-2000:]
    copy_solutions_into(out, [lesson])
    solved = run([out / "lab", "check", lesson[:2]], out)
    assert solved.returncode == 0, solved.stdout[-3000:]
    client = out / "chapters" / lesson / "client.c"
    client.write_text(client.read_text().replace("return 0;", "return 0", 1))
    broken = run([out / "lab", "check", lesson[:2]], out)
    assert broken.returncode == 1 and "did not compile" in broken.stdout, broken.stdout[-3000:]


@pytest.mark.slow       # minutes: started first, so it is not the run's tail
@pytest.mark.timeout(900)
def test_classroom_points_are_exactly_what_lab_grade_gives_the_solutions(solved_release, tmp_path):
    """One step per graded case (each parameter its own), named and scored as in
    results.json: the solutions pass every one, and the totals agree."""
    graded, data = grade(solved_release, tmp_path, "solutions.json")
    # a test this machine cannot run is listed with 0 points and why (and fails its step)
    not_run = {t["name"] for t in data["tests"] if t["output"].startswith("not run on this grading machine")}
    assert all(status == "passed" or name in not_run for name, (status, _) in graded.items()), \
        [t for t in data["tests"] if t["status"] != "passed"]
    steps = workflow_steps(solved_release)
    assert len(steps) == len(graded)
    assert {name: score for name, _, score in steps} == {n: m for n, (_, m) in graded.items()}
    # the tests this machine could not run are steps of their own that fail here
    assert sum(score for _, _, score in steps) == data["score"] + sum(graded[n][1] for n in not_run)
    assert any("[" in name for name, _, _ in steps)  # the parametrized cases are steps too


def needs_netns_test(root):
    """(lesson, test name) of the first test marked @needs_netns in root's graders."""
    for test_file in sorted(root.glob("chapters/*/test_*.py")):
        m = re.search(r"^@needs_netns\n(?:@.*\n)*def (test_\w+)", test_file.read_text(), re.M)
        if m:
            return test_file.parent.name, m.group(1)
    pytest.skip("no grader needs a network namespace")


@pytest.mark.timeout(600)
def test_a_skipped_test_earns_nothing_in_its_classroom_step(solved_release):
    """Where namespaces are forbidden a @needs_netns test is skipped: its step fails and
    says why, instead of passing; where they work, the same step passes."""
    lesson, name = needs_netns_test(solved_release)
    command = next(cmd for _, cmd, _ in workflow_steps(solved_release)
                   if f" {lesson[:2]} --only {name} " in cmd)

    def step(env):  # as the command grader runs it: sh -c, its environment
        return run(["sh", "-c", command], solved_release, env=env)

    forbidden = step(dict(CLASSROOM_ENV, SOCKLAB_NO_NAMESPACES="1"))
    assert forbidden.returncode != 0, forbidden.stdout[-3000:]
    assert "skipped: needs a private network namespace" in forbidden.stdout
    assert "earns no points" in forbidden.stdout
    allowed = step(CLASSROOM_ENV)
    assert allowed.returncode == 0, allowed.stdout[-3000:] + allowed.stderr[-2000:]


@pytest.mark.slow       # minutes: started first, so it is not the run's tail
@pytest.mark.skipif(not real_root(), reason="Gradescope runs run_autograder as root: its sandbox needs "
                                             "real root (sudo ./lab test runs this)")
def test_gradescope_bundle_grades_a_submission_and_ignores_tampering(tmp_path):
    """A bundle for lesson 01's assignment grades that lesson alone, in the sandbox: the
    submission's solution gets every point, its own grader and results file count for nothing."""
    bundle = tmp_path / "autograder.zip"
    assert run([REPO / "lab", "gradescope", "--lesson", "01", bundle], REPO).returncode == 0
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
    assert graded and all(t["name"].startswith("01 sockets") and t["status"] == "passed" for t in graded), \
        [(t["name"], t["status"]) for t in graded if t["status"] != "passed" or not t["name"].startswith("01 ")]


def test_a_gradescope_bundle_for_the_course_grades_every_lesson(tmp_path):
    """Without --lesson the bundle's run_autograder grades the whole course; with it, that
    lesson alone; an unknown lesson writes no bundle."""
    assert "./lab grade --submission" in instructor.run_autograder()
    assert "./lab grade 07-keepalive --submission" in instructor.run_autograder("07-keepalive")
    res = run([REPO / "lab", "gradescope", "--lesson", "99", tmp_path / "x.zip"], REPO)
    assert res.returncode == 2 and "no lesson '99'" in res.stdout and not (tmp_path / "x.zip").exists()
    assert run([REPO / "lab", "gradescope", tmp_path / "all.zip"], REPO).returncode == 0
    with zipfile.ZipFile(tmp_path / "all.zip") as z:
        assert z.read("run_autograder").decode() == instructor.RUN_AUTOGRADER


def test_release_refuses_lesson_files_git_does_not_track(tmp_path):
    """A release takes tracked files only: a new lesson file not yet committed would be
    silently missing, so release names it and stops."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "chapters" / "01-x").mkdir(parents=True)
    (tmp_path / "chapters" / "01-x" / "server.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    (tmp_path / "chapters" / "01-x" / "test_new.py").write_text("def test_x(): pass\n")
    assert instructor.untracked_course_files(tmp_path) == ["chapters/01-x/test_new.py"]
