"""Grading on many machines (grader/oci.py, grader/prairielearn.py): what can be checked
in seconds without building the image -- the Kubernetes manifests render and pass the
offline checks, the shard and merge entrypoints pick the right shard, PrairieLearn's
results come right out of a Gradescope results.json, the PrairieLearn entrypoint stages
a submission and always leaves a results file.  Building the image and grading in it
takes minutes: that test is marked `image` and runs only with SOCKLAB_IMAGE_TESTS=1."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from grader import host, instructor, oci, prairielearn
from conftest import slowed

REPO = Path(__file__).resolve().parent.parent


# -- Kubernetes ---------------------------------------------------------------------------------

def test_manifests_render_an_indexed_job_of_shards_and_a_merge(tmp_path):
    """`./lab image k8s` writes an Indexed Job with one pod per shard, each running
    `./lab image shard` on the read-only class volume, and a merge Job."""
    kw = dict(image="registry.example/socklab:1", shards=4, lessons="01,02", deadlines="deadlines.toml",
              roster="roster.csv")
    files = oci.write_manifests(tmp_path, **kw)
    assert [f.name for f in files] == ["grade.yaml", "merge.yaml"]
    grade, merge = oci.manifests(**kw)       # what those files hold (the YAML: see the round trip)
    for f, doc in zip(files, (grade, merge)):
        assert f.read_text().endswith(oci.to_yaml(doc) + "\n")
    spec = grade["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    pod = spec["template"]["spec"]
    c, = pod["containers"]
    assert c["command"] == ["/opt/socklab/lab", "image", "shard"] and c["image"] == "registry.example/socklab:1"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["SOCKLAB_SHARDS"] == "4" and env["SOCKLAB_LESSONS"] == "01,02"
    assert env["SOCKLAB_DEADLINES"] == "/class/deadlines.toml" and env["SOCKLAB_SUBMISSIONS"] == "/class/submissions"
    assert c["securityContext"] == {"privileged": True}
    assert {m["mountPath"]: m.get("readOnly", False) for m in c["volumeMounts"]} == {"/class": True, "/results": False}
    m, = merge["spec"]["template"]["spec"]["containers"]
    assert m["command"][-1] == "merge" and "completionMode" not in merge["spec"]
    assert {e["name"]: e["value"] for e in m["env"]}["SOCKLAB_ROSTER"] == "/class/roster.csv"
    assert "securityContext" not in m            # merging runs no student code


def test_the_yaml_writer_round_trips():
    """The manifests' YAML (written without python3-yaml) reads back as what was written."""
    yaml = pytest.importorskip("yaml")
    data = {"a": {}, "b": [], "c": [{"x": 1, "y": [1, "two", True]}, [1, 2]], "d": 'q"uote: x # no comment',
            "e": {"f": {"g": None}}, "h": [{"i": [{"j": "k"}]}], "n": "007"}
    assert yaml.safe_load(oci.to_yaml(data)) == data
    for doc in oci.manifests(image="socklab:1", shards=2, lessons="01", roster="r.csv"):
        assert yaml.safe_load(oci.to_yaml(doc)) == doc


def test_manifests_pass_the_offline_checks(tmp_path, capsys):
    """Both variants (privileged, capabilities) pass kubectl's parse and the schema of
    python3-kubernetes -- whichever of them this machine has; the others are skipped."""
    if not shutil.which("kubectl") and oci.schema_errors({"apiVersion": "batch/v1", "kind": "Job"}) is None:
        pytest.skip("neither kubectl nor python3-kubernetes is installed (tools/setup.sh --k8s)")
    oci.write_manifests(tmp_path / "p", image="socklab:1", shards=3)
    oci.write_manifests(tmp_path / "c", image="socklab:1", shards=3, privileged=False)
    assert oci.check_k8s([tmp_path / "p", tmp_path / "c"]) == 0
    said = capsys.readouterr().out
    assert said.count("1 document(s)") == 4 and "refuses" not in said


def test_the_schema_check_finds_unknown_fields_wrong_types_and_missing_names(tmp_path):
    """The offline schema check is worth running: a misspelt field, a string for a
    number and a container without a name are each reported."""
    grade, _ = oci.manifests(image="socklab:1", shards=2)
    if oci.schema_errors(grade) is None:
        pytest.skip("python3-kubernetes is not installed (tools/setup.sh --k8s)")
    assert oci.schema_errors(grade) == []
    grade["spec"]["ttlSecondsAfterFinishd"] = grade["spec"].pop("ttlSecondsAfterFinished")
    grade["spec"]["completions"] = "2"
    errors = oci.schema_errors(grade)
    assert any("ttlSecondsAfterFinishd: no such field in V1JobSpec" in e for e in errors)
    assert any("completions: expected int, got str" in e for e in errors)
    grade, _ = oci.manifests(image="socklab:1", shards=2)
    del grade["spec"]["template"]["spec"]["containers"][0]["name"]
    assert any("name" in e for e in oci.schema_errors(grade))


def test_kubectl_parses_without_a_cluster(tmp_path):
    """kubectl reads the manifest offline (annotate --local asks no server); broken YAML
    and metadata of the wrong shape are refused (a missing apiVersion is not: the schema
    check is the other half)."""
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    good, _ = oci.write_manifests(tmp_path, image="socklab:1", shards=2)
    ok, out = oci.kubectl_parse(good)
    assert ok, out
    assert json.loads(out)["metadata"]["annotations"] == {"socklab/checked": "yes"}
    bad = tmp_path / "bad.yaml"
    for text in ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x\n", "apiVersion: batch/v1\nkind: Job\nmetadata: [1]\n"):
        bad.write_text(text)
        assert oci.kubectl_parse(bad)[0] is False, text


# -- the entrypoints of a shard and of the merge --------------------------------------------------

def test_a_pod_grades_the_shard_of_its_completion_index():
    """Kubernetes numbers an Indexed Job's pods from 0, --shard from 1; each shard gets
    uids of its own (pods on one node share the kernel's per-uid process counts)."""
    argv, extra = oci.shard_plan({"JOB_COMPLETION_INDEX": "2", "SOCKLAB_SHARDS": "3", "SOCKLAB_LESSONS": "01",
                                  "SOCKLAB_JOBS": "2", "SOCKLAB_DEADLINES": "/class/d.toml"})
    assert argv == ["batch", "/class/submissions", "--out", "/results/shard-3", "--shard", "3/3",
                    "--lessons", "01", "--jobs", "2", "--deadlines", "/class/d.toml"]
    bases = {int(oci.shard_plan({"JOB_COMPLETION_INDEX": str(i), "SOCKLAB_SHARDS": "3"})[1]["SOCKLAB_UID_BASE"])
             for i in range(3)}
    assert len(bases) == 3 and min(b2 - b1 for b1, b2 in zip(sorted(bases), sorted(bases)[1:])) >= 3 * 500
    assert oci.shard_plan({"JOB_COMPLETION_INDEX": "0", "SOCKLAB_SHARDS": "1", "SOCKLAB_UID_BASE": "7000"})[1] == {}
    for env, words in (({"SOCKLAB_SHARDS": "3"}, "JOB_COMPLETION_INDEX is not set"),
                       ({"JOB_COMPLETION_INDEX": "3", "SOCKLAB_SHARDS": "3"}, "not in 0..2"),
                       ({"JOB_COMPLETION_INDEX": "x", "SOCKLAB_SHARDS": "3"}, "whole numbers")):
        with pytest.raises(SystemExit, match=words):
            oci.shard_plan(env)


def test_the_merge_refuses_a_shard_that_left_nothing(tmp_path):
    """A failed pod leaves no shard folder: the merge says which, rather than publish a
    gradebook without its students."""
    for i in (1, 3):
        (tmp_path / f"shard-{i}" / "students").mkdir(parents=True)
    env = {"SOCKLAB_SHARDS": "3", "SOCKLAB_RESULTS": str(tmp_path)}
    with pytest.raises(SystemExit, match="shard-2"):
        oci.merge_plan(env)
    (tmp_path / "shard-2" / "students").mkdir(parents=True)
    out, shards, roster = oci.merge_plan({**env, "SOCKLAB_ROSTER": "/class/roster.csv"})
    assert out == tmp_path / "gradebook" and len(shards) == 3 and roster == "/class/roster.csv"


# -- the image's recipe ------------------------------------------------------------------------------

def test_the_base_comes_from_this_machines_debian_mirrors_only(tmp_path):
    """mmdebstrap gets the Debian 12 entries of apt's sources (one-line and deb822),
    never a third party's repository; Debian's own mirrors when there is none."""
    apt = tmp_path / "etc" / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("# a comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main contrib\n"
                                      "deb-src http://mirror.example/debian bookworm main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\n"
        "URIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n")
    (apt / "sources.list.d" / "vendor.sources").write_text(
        "Types: deb\nURIs: https://vendor.example/apt\nSuites: bookworm\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/vendor.gpg\n")
    assert oci.debian_mirrors(tmp_path) == ["deb http://mirror.example/debian bookworm main",
                                            "deb http://mirror.example/debian bookworm-updates main",
                                            "deb http://security.example/debian-security bookworm-security main"]
    assert oci.debian_mirrors(tmp_path / "nothing") == oci.DEFAULT_MIRRORS
    cmd = oci.mmdebstrap_cmd("/x/rootfs.tar")
    assert "--variant=minbase" in cmd and "--format=tar" in cmd
    include = next(a for a in cmd if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert {"python3-pytest", "bubblewrap", "similarity-tester", "nginx"} <= set(include)


def test_the_image_keeps_gradescopes_layout_with_the_course_elsewhere(tmp_path):
    """The image's /autograder/run_autograder is the bundle's own script, told by
    SOCKLAB_COURSE where the course is; the course leaves out the solutions and tests."""
    assert 'cd "${SOCKLAB_COURSE:-$root/socklab}"' in instructor.RUN_AUTOGRADER
    text = oci.containerfile("abc")
    assert text.splitlines()[1] == "FROM scratch" and "ADD rootfs.tar /" in text
    assert f"SOCKLAB_COURSE={oci.COURSE}" in text and "COPY autograder/ /autograder/" in text
    files = oci.course_files()
    assert "lab" in files and "grader/prairielearn.py" in files and "tools/image/prairielearn" in files
    assert not [f for f in files if f.startswith(("solutions/", "tests/", ".ci/"))]


# -- PrairieLearn -----------------------------------------------------------------------------------------

def gradescope_json(compiled=True, hidden=False):
    fail_md = ("**expected** a line `Hi, you`\n\n**happened** the server closed the connection \\[RST\\]\n\n"
               "**wire**\n\n```text\n→ \"you\\n\"\n```\n\n**hint** read the README\n")
    tests = [{"name": "compile", "score": 0, "max_score": 0, "status": "passed" if compiled else "failed",
              "output": "all programs compiled" if compiled else "server.c:3: error: expected ';'",
              "output_format": "text", "visibility": "visible", "tags": ["build"]},
             {"name": "01 sockets › greets", "score": 2, "max_score": 2, "status": "passed", "output": "",
              "output_format": "text", "visibility": "visible", "tags": ["01-sockets"]},
             {"name": "01 sockets › replies", "score": 0, "max_score": 3, "status": "failed", "output": fail_md,
              "output_format": "md", "visibility": "visible", "tags": ["01-sockets"]},
             {"name": "01 sockets › secret", "score": 0, "max_score": 1, "status": "failed", "output": "secret words",
              "output_format": "text", "visibility": "after_due_date" if hidden else "visible",
              "tags": ["01-sockets"]}]
    return {"score": 2, "output": "", "tests": tests}


def test_prairielearn_results_from_a_gradescope_results_json():
    """score is the fraction of the points; each test has name, points, max_points,
    message (what happened) and output (the report as plain text); a hidden test counts
    but shows nothing until the due date."""
    pl = prairielearn.from_gradescope(gradescope_json(hidden=True))
    assert pl["gradable"] is True and pl["score"] == round(2 / 6, 4)
    assert [(t["name"], t["points"], t["max_points"]) for t in pl["tests"]] == [
        ("01 sockets › greets", 2, 2), ("01 sockets › replies", 0, 3), ("hidden test 1", 0, 1)]
    replies = pl["tests"][1]
    assert replies["message"] == "the server closed the connection [RST]"
    assert "happened  the server closed the connection [RST]" in replies["output"]
    assert "```" not in replies["output"] and "**" not in replies["output"]
    assert "secret words" not in json.dumps(pl)
    from grader import feedback_md
    block = prairielearn.plain(feedback_md.markdown([("happened", "it printed:\nfamily AF_INET"), ("hint", "try")]))
    assert block == "happened\n    it printed:\n    family AF_INET\n\nhint      try\n"
    assert prairielearn.first_line(block) == "it printed:"
    assert set(pl) >= {"gradable", "score", "message", "output", "tests"}


def test_a_test_this_machine_cannot_run_counts_for_nothing():
    """PrairieLearn's containers have no network namespaces: those tests are listed with
    0 of 0 points and the reason, so a perfect program still scores 1."""
    gs = gradescope_json()
    gs["tests"][2].update(output="not run on this grading machine: needs a private network namespace")
    gs["tests"][3].update(score=1, status="passed")
    pl = prairielearn.from_gradescope(gs)
    assert pl["score"] == 1.0
    assert pl["tests"][1]["max_points"] == 0 and "network namespace" in pl["tests"][1]["message"]
    assert "1 test could not run on this grading machine" in pl["message"]


def test_a_submission_that_does_not_compile_is_not_gradable_unless_it_scored():
    """Nothing compiled and nothing scored: PrairieLearn is told `gradable: false` (the
    attempt is not counted) with the compiler's errors; a partly compiling submission
    that scored is graded, with the errors as a test."""
    gs = gradescope_json(compiled=False)
    for t in gs["tests"][1:]:
        t.update(score=0, status="failed")
    pl = prairielearn.from_gradescope(gs)
    assert pl["gradable"] is False and pl["format_errors"] == ["server.c:3: error: expected ';'"]
    pl = prairielearn.from_gradescope(gradescope_json(compiled=False))
    assert pl["gradable"] is True and pl["tests"][0]["name"] == "compile"
    assert "expected ';'" in pl["tests"][0]["output"]


def test_results_stay_under_prairielearns_megabyte():
    gs = gradescope_json()
    for t in gs["tests"][1:]:
        t["output"] = "x" * 400_000
    pl = prairielearn.from_gradescope(gs)
    assert len(json.dumps(pl).encode()) <= prairielearn.RESULTS_LIMIT


def fake_lab(tmp_path, body):
    """A stand-in for ./lab: records its arguments and the files it was given."""
    script = tmp_path / "fake-lab"
    script.write_text("#!/usr/bin/env python3\nimport json, os, sys\nfrom pathlib import Path\n"
                      "a = sys.argv[1:]\nsub = Path(a[a.index('--submission') + 1])\n"
                      f"Path({str(tmp_path / 'seen.json')!r}).write_text(json.dumps({{'argv': a, "
                      "'files': sorted(str(p.relative_to(sub)) for p in sub.rglob('*') if p.is_file())}))\n"
                      + body)
    script.chmod(0o755)
    return [str(script)]


def test_the_prairielearn_entrypoint_stages_the_files_and_always_leaves_results(tmp_path):
    """Flat files from /grade/student go under chapters/<lesson>/ (links are not taken);
    the lesson comes from data.json when no argument names it; results.json is
    PrairieLearn's; a grader that leaves nothing leaves the not-gradable fallback; the
    entrypoint exits 0 either way (PrairieLearn drops the results of a failing one)."""
    grade = tmp_path / "grade"
    (grade / "student").mkdir(parents=True)
    (grade / "student" / "server.c").write_text("int main(void) { return 0; }\n")
    (grade / "student" / "notes.txt").write_text("not C\n")
    (grade / "student" / "addr.c").symlink_to("/etc/hostname")
    (grade / "data").mkdir()
    (grade / "data" / "data.json").write_text(json.dumps({"params": {"socklab_lesson": "01"}}))
    gs_out = json.dumps(gradescope_json())
    lab = fake_lab(tmp_path, f"Path(a[a.index('--json') + 1]).write_text({gs_out!r})\n")
    assert prairielearn.main([], grade_root=grade, lab=lab) == 0
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["files"] == ["chapters/01-sockets/server.c"]
    assert seen["argv"][0] == "grade" and seen["argv"][-1] == "01-sockets"
    pl = json.loads((grade / "results" / "results.json").read_text())
    assert pl["score"] == round(2 / 6, 4) and pl["gradable"] is True
    lab = fake_lab(tmp_path, "sys.exit(3)\n")
    assert prairielearn.main(["01"], grade_root=grade, lab=lab) == 0
    assert json.loads((grade / "results" / "results.json").read_text()) == prairielearn.FALLBACK


def test_the_lesson_comes_from_the_argument_then_the_environment_then_the_data():
    assert prairielearn.choose_lesson(["02"], {"SOCKLAB_LESSON": "03"}, None) == "02"
    assert prairielearn.choose_lesson([], {"SOCKLAB_LESSON": "03"}, {"params": {"socklab_lesson": "04"}}) == "03"
    assert prairielearn.choose_lesson([], {}, {"params": {"socklab_lesson": 4}}) == "4"
    with pytest.raises(SystemExit, match="no lesson"):
        prairielearn.choose_lesson([], {}, {"params": {}})


def test_a_student_tree_is_graded_as_it_is(tmp_path):
    """A submission that already has chapters/ (a zip of the repository, unpacked) is
    passed on as it is."""
    student = tmp_path / "student"
    (student / "chapters" / "01-sockets").mkdir(parents=True)
    assert prairielearn.stage(student, "01-sockets", tmp_path / "stage") == student
    assert not (tmp_path / "stage").exists()


# -- the image itself (minutes: SOCKLAB_IMAGE_TESTS=1) -----------------------------------------------------

@pytest.mark.image
@pytest.mark.timeout(3600)
def test_the_image_grades_a_solution_as_gradescope_and_prairielearn_run_it(tmp_path):
    """Build the image (mmdebstrap's root is cached after the first time), then grade
    lesson 01's reference solution in it the way Gradescope and PrairieLearn start a
    container -- unprivileged, PrairieLearn's without a network: every lesson-01 test that
    can run there passes (Gradescope's run grades every lesson), and PrairieLearn's score
    is 1."""
    if not host.real_root():
        pytest.skip("building the image needs root")
    for tool in ("mmdebstrap", "buildah", "podman"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (tools/setup.sh --image)")
    tag = "localhost/socklab-grader:test"
    assert subprocess.run([str(REPO / "lab"), "image", "build", "--tag", tag]).returncode == 0
    run = oci.podman_run()
    sub = tmp_path / "submission"
    shutil.copytree(REPO / "solutions" / "01-sockets", sub / "chapters" / "01-sockets")
    (tmp_path / "results").mkdir()
    r = subprocess.run([*run, "-v", f"{sub}:/autograder/submission:ro", "-v", f"{tmp_path / 'results'}:/autograder/results",
                        tag, "/autograder/run_autograder"], capture_output=True, text=True, timeout=slowed(1800))
    gs = json.loads((tmp_path / "results" / "results.json").read_text())
    ours = [t for t in gs["tests"] if t["tags"] == ["01-sockets"] and not t["output"].startswith(prairielearn.NOT_RUN)]
    assert sum(t["score"] for t in ours) == sum(t["max_score"] for t in ours) > 0, r.stdout[-3000:]
    job = tmp_path / "grade"
    shutil.copytree(REPO / "solutions" / "01-sockets", job / "student")
    (job / "data").mkdir()
    (job / "data" / "data.json").write_text("{}")
    r = subprocess.run([*run, "--network", "none", "-v", f"{job}:/grade", tag,
                        "/opt/socklab/tools/image/prairielearn", "01"], capture_output=True, text=True, timeout=slowed(1800))
    assert r.returncode == 0, r.stdout[-3000:]
    pl = json.loads((job / "results" / "results.json").read_text())
    assert pl["gradable"] is True and pl["score"] == 1.0, r.stdout[-3000:]
    if not os.environ.get("SOCKLAB_KEEP_IMAGE"):
        subprocess.run(["podman", "rmi", tag], capture_output=True)
