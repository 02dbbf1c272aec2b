"""The gradebook of a batch, unit by unit: per-test outcomes in result.json, the
statistics and the student pages built from them, regrades that drop nothing, shards
and merges.  No grading here (tests/test_batch.py grades real classes)."""
import csv
import json
import re

import pytest

from grader import batch, gradebook
from conftest import slowed

LESSON = "01-sockets"


def raw(outcome, points, index, text="", lesson=LESSON, **extra):
    return {"outcome": outcome, "points": points, "index": index, "lesson": lesson, "title": f"test {index}",
            "duration": 0.25, "text": text, **extra}


def result(student, outcomes, lesson=LESSON, notes=(), schema=batch.SCHEMA):
    """A result.json as grade_one writes it, from [(outcome, points)]."""
    raws = {f"chapters/{lesson}/test_x.py::test_{i}": raw(o, p, i, lesson=lesson) for i, (o, p) in enumerate(outcomes)}
    tests = batch.test_outcomes(raws)
    score = sum(t["points"] for t in tests)
    most = sum(t["max"] for t in tests if t["outcome"] != "skipped")
    return {"schema": schema, "student": student, "fingerprint": f"fp-{student}", "compiled": True, "files": [],
            "scores": {lesson: {"score": score, "max": most}}, "total": score, "tests": tests,
            "notes": [{"kind": k, "text": t} for k, t in notes], "seconds": 1.0}


def write_tree(out, results):
    for r in results:
        d = out / "students" / r["student"]
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(r))
        (d / "report.txt").write_text(f"report of {r['student']}\n")
    return out


def test_result_json_has_every_test_with_its_outcome():
    raws = {
        "chapters/01-sockets/test_sockets.py::test_b": raw("failed", 2, 1, "expected  a line\nhappened  it "
                                                            "exited with status 3\x1b[31m: TODO\nhint  read"),
        "chapters/01-sockets/test_sockets.py::test_a": raw("passed", 1, 0),
        "chapters/01-sockets/test_sockets.py::test_c": raw("skipped", 1, 2, "needs a network namespace\nmore",
                                                           skip_kind="no-netns"),
    }
    tests = batch.test_outcomes(raws)
    assert [t["nodeid"].split("::")[1] for t in tests] == ["test_a", "test_b", "test_c"]
    a, b, c = tests
    assert a == {"nodeid": "chapters/01-sockets/test_sockets.py::test_a", "title": "test 0", "lesson": LESSON,
                 "index": 0, "outcome": "passed", "points": 1, "max": 1, "duration": 0.25, "note": ""}
    assert (b["outcome"], b["points"], b["max"]) == ("failed", 0, 2)
    assert b["note"] == "it exited with status 3?[31m: TODO"          # what happened, printable only
    assert (c["outcome"], c["points"], c["note"], c["skip_kind"]) == ("skipped", 0, "needs a network namespace",
                                                                      "no-netns")


def test_histogram_bins():
    assert gradebook.histogram([0, 4, 17, 17], 17)[4] == (4, 4, 1)
    assert gradebook.histogram([0, 4, 17, 17], 17)[-1] == (17, 17, 2)
    bins = gradebook.histogram([0, 50, 99, 100], 100)
    assert len(bins) == 10 and sum(c for _, _, c in bins) == 4 and bins[-1][1] == 100
    assert gradebook.histogram([], 0) == []


def test_gradebook_has_statistics_and_a_page_per_student(tmp_path):
    results = [result("alice", [("passed", 2), ("passed", 1)]),
               result("bob", [("failed", 2), ("passed", 1)], notes=[("todo", "01 server stopped at a TODO")]),
               result("<script>x", [("failed", 2), ("skipped", 1)], notes=[("flood", "=1+1 <b>")])]
    old = result("carl", [("passed", 2), ("passed", 1)], schema=2)   # graded before per-test outcomes
    del old["tests"]
    out = write_tree(tmp_path / "out", results + [old])
    gradebook.write(out)
    rows = list(csv.reader(open(out / "gradebook.csv")))
    assert rows[0] == ["student", LESSON, "total", "max", "notes"]
    assert [r[0] for r in rows[1:]] == ["<script>x", "alice", "bob", "carl"]
    assert rows[1][4] == "'=1+1 <b>"
    page = (out / "gradebook.html").read_text()
    assert "<script" not in page and not re.search(r"<b>(?!\d+</b>)", page)
    assert not re.search(r"(src|href)=['\"]?https?:", page), "nothing loaded from elsewhere"
    assert page.count("<svg") >= 1 + 2, "a histogram and a failure bar per test"
    assert "2/3 (67%)" in page          # test 0 failed for bob and <script>x, of 3 graded (carl has no tests)
    assert "0/2 (0%)" in page and "<td>1</td></tr>" in page     # test 1: one skipped, counts for neither
    assert "href='students/%3Cscript%3Ex/index.html'" in page
    bob = (out / "students" / "bob" / "index.html").read_text()
    assert "01 server stopped at a TODO" in bob and "0/2" in bob and "failed" in bob
    assert "&lt;script&gt;x" in (out / "students" / "<script>x" / "index.html").read_text()
    assert (out / "students" / "carl" / "index.html").exists()
    # a function of the results alone: written again, byte for byte the same
    before = {p: p.read_bytes() for p in out.rglob("*.html")} | {out / "gradebook.csv": (out / "gradebook.csv").read_bytes()}
    for r in results:           # durations change between gradings; the pages do not
        for t in r["tests"]:
            t["duration"] *= 3
    gradebook.write(out, results + [old])
    assert {p: p.read_bytes() for p in before} == before


def test_a_regrade_of_other_lessons_keeps_the_earlier_ones():
    old = result("alice", [("passed", 2), ("failed", 1)], lesson="01-sockets")
    old["commits"] = {"01-sockets": {"sha": "a" * 40, "time": "2026-10-01T00:00:00+00:00", "days_late": 0,
                                     "penalty_percent": 0.0}}
    new = result("alice", [("passed", 3)], lesson="02-tcp")
    new["scores"] = {"02-tcp": new["scores"]["02-tcp"]}
    merged = batch.carry_over(new, old, ["02-tcp"])
    assert merged["scores"] == {"01-sockets": {"score": 2, "max": 3}, "02-tcp": {"score": 3, "max": 3}}
    assert merged["total"] == 5 and [t["lesson"] for t in merged["tests"]] == ["01-sockets"] * 2 + ["02-tcp"]
    assert merged["kept"] == {"01-sockets": "fp-alice"} and merged["commits"] == old["commits"]
    again = result("alice", [("passed", 2), ("passed", 1)], lesson="01-sockets")
    assert "kept" not in batch.carry_over(again, old, ["01-sockets"])     # regraded: replaced


def test_only_names_students_of_the_submissions(tmp_path):
    """--only with an id that is not among the submissions is refused before any grading."""
    import subprocess
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    subs = tmp_path / "subs"
    (subs / "s.one").mkdir(parents=True)
    res = subprocess.run([repo / "lab", "batch", subs, "--out", tmp_path / "out", "--lessons", "01",
                          "--only", "s.one,s.two"], capture_output=True, text=True, timeout=slowed(120),
                         stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and "--only: no submission" in res.stdout + res.stderr
    assert "'s.two'" in res.stdout + res.stderr and not (tmp_path / "out" / "students").exists()


def test_shards_split_by_id_and_stay_put_when_the_class_grows():
    ids = [f"s{i}" for i in range(300)]
    before = {s: batch.shard_of(s, 4) for s in ids}
    assert set(before.values()) == {1, 2, 3, 4}
    assert all(30 < list(before.values()).count(k) < 120 for k in (1, 2, 3, 4))
    more = ids + [f"late{i}" for i in range(50)]
    assert {s: batch.shard_of(s, 4) for s in more if s in before} == before     # nobody moves
    assert batch.parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x", "1/0"):
        with pytest.raises(SystemExit):
            batch.parse_shard(bad)


def test_merge_refuses_conflicting_duplicates_and_keeps_identical_ones(tmp_path):
    a = write_tree(tmp_path / "a", [result("alice", [("passed", 2)]), result("bob", [("failed", 2)])])
    b = write_tree(tmp_path / "b", [result("carol", [("passed", 2)]), result("bob", [("failed", 2)])])
    assert gradebook.merge(tmp_path / "out", [a, b]) == 0
    assert [r["student"] for r in gradebook.load_results(tmp_path / "out")] == ["alice", "bob", "carol"]
    assert (tmp_path / "out" / "students" / "carol" / "report.txt").read_text() == "report of carol\n"
    c = write_tree(tmp_path / "c", [result("bob", [("passed", 2)])])
    with pytest.raises(SystemExit, match="'bob' in .* differ"):
        gradebook.merge(tmp_path / "out2", [a, c])
    assert not (tmp_path / "out2").exists()
    with pytest.raises(SystemExit, match="'bob' in .* differ"):     # OUT's own students count too
        gradebook.merge(tmp_path / "out", [c])
    with pytest.raises(SystemExit, match="no students/"):
        gradebook.merge(tmp_path / "out3", [tmp_path / "nothing"])


def test_exports_for_canvas_and_moodle_by_the_roster(tmp_path, capsys):
    from grader import lms
    out = write_tree(tmp_path / "out", [result("s.one", [("passed", 2), ("passed", 1)]),
                                        result("bob", [("failed", 2), ("passed", 1)]),
                                        result("stranger", [("passed", 2)])])
    roster = tmp_path / "roster.csv"
    roster.write_text("\ufeffID,Name,Email,extra\ns.one,Ada King Lovelace,ada@example.org,x\n"
                      "bob,\"Hopper, Grace\",grace@example.org,\ncarol,=cmd|' /C calc'!A0,carol@example.org,\n")
    lms.export(out, roster, "canvas")
    canvas = list(csv.reader(open(out / "canvas.csv")))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"socklab {LESSON}"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "3"]
    assert canvas[2] == ["Ada King Lovelace", "", "s.one", "ada@example.org", "", "3"]
    assert canvas[3] == ["Hopper, Grace", "", "bob", "grace@example.org", "", "1"]
    assert canvas[4] == ["'=cmd|' /C calc'!A0", "", "carol", "carol@example.org", "", ""]   # no submission
    said = capsys.readouterr().out
    assert "no result for 1: carol" in said and "not in the roster, so left out: stranger" in said
    lms.export(out, roster, "moodle", tmp_path / "m.csv")
    moodle = list(csv.reader(open(tmp_path / "m.csv")))
    assert moodle[0] == ["First name", "Last name", "ID number", "Email address", f"socklab {LESSON}"]
    assert moodle[1] == ["Ada King", "Lovelace", "s.one", "ada@example.org", "3"]
    assert moodle[2] == ["Grace", "Hopper", "bob", "grace@example.org", "1"]
    roster.write_text("id,name\nbob,Bob\n")
    with pytest.raises(SystemExit, match="missing: email"):
        lms.export(out, roster, "canvas")
    roster.write_text("id,name,email\nbob,Bob,b@x\nbob,Bobby,b@y\n")
    with pytest.raises(SystemExit, match="twice"):
        lms.export(out, roster, "moodle")


def test_an_empty_shard_merges(tmp_path):
    """A shard that holds nobody still leaves a folder `./lab gradebook merge` takes."""
    import subprocess
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    subs = tmp_path / "subs"
    (subs / "s.one").mkdir(parents=True)
    other = 3 - batch.shard_of("s.one", 2)
    res = subprocess.run([repo / "lab", "batch", subs, "--out", tmp_path / "empty", "--lessons", "01",
                          "--shard", f"{other}/2"], capture_output=True, text=True, timeout=slowed(300),
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "graded 0 submissions" in res.stdout
    assert gradebook.merge(tmp_path / "out", [tmp_path / "empty"]) == 0
    assert list(csv.reader(open(tmp_path / "out" / "gradebook.csv"))) == [["student", "total", "max", "notes"]]


def test_a_roster_names_the_students_and_lists_who_handed_in_nothing(tmp_path, capsys):
    """`batch --roster` (or `merge --roster`) keeps the roster in OUT: the gradebook gains
    name and email columns, and a 'no submission' row for a roster student with no
    result; a merge takes the roster a shard kept; the export needs no --roster then."""
    from grader import lms
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\nbob,Bob Kahn,bob@example.org\ncarol,=HYPERLINK(\"x\"),c@example.org\n"
                      "s.one,Ada,ada@example.org\n")
    shard = write_tree(tmp_path / "shard", [result("s.one", [("passed", 2), ("passed", 1)]),
                                            result("stranger", [("passed", 2), ("failed", 1)])])
    gradebook.set_roster(shard, roster)
    gradebook.write(shard)
    rows = list(csv.reader(open(shard / "gradebook.csv")))
    assert rows[0] == ["student", "name", "email", LESSON, "total", "max", "notes"]
    assert rows[1:] == [["bob", "Bob Kahn", "bob@example.org", "", "", "3", "no submission"],
                        ["carol", "'=HYPERLINK(\"x\")", "c@example.org", "", "", "3", "no submission"],
                        ["s.one", "Ada", "ada@example.org", "3", "3", "3", ""],
                        ["stranger", "", "", "2", "2", "3", ""]]
    page = (shard / "gradebook.html").read_text()
    assert "Roster: 3 students, 2 without a submission, 1 graded but not in it." in page
    assert "<td>Bob Kahn</td>" in page and "=HYPERLINK(&quot;x&quot;)" in page
    assert "Ada &lt;ada@example.org&gt;" in (shard / "students" / "s.one" / "index.html").read_text()
    gradebook.merge(tmp_path / "merged", [shard])
    assert (tmp_path / "merged" / "gradebook.csv").read_bytes() == (shard / "gradebook.csv").read_bytes()
    lms.export(tmp_path / "merged", None, "moodle")
    assert list(csv.reader(open(tmp_path / "merged" / "moodle.csv")))[3][:4] == ["", "Ada", "s.one", "ada@example.org"]
    bare = write_tree(tmp_path / "bare", [result("bob", [("passed", 2)])])
    gradebook.write(bare)                   # no roster: the columns of before
    assert next(csv.reader(open(bare / "gradebook.csv"))) == ["student", LESSON, "total", "max", "notes"]
    with pytest.raises(SystemExit, match="keeps no roster"):
        lms.export(bare, None, "canvas")
