"""What a test is and how it ended, as records: the metadata of a collected test
(lesson, title, points), the results ./lab keeps (the "raw results": one record per
test), per-lesson totals, and the formats they are reported in (Gradescope's
results.json, JUnit XML).  No pytest here: the command line, the batch and the
instructor tools read results without loading the test runtime.

A raw result: {"outcome": "passed" | "failed" | "skipped", "text": the report,
"duration": s, "lesson", "title", "points", "hidden", "index", and where they apply
"skip_kind" (grader/failure.py), "measured", "programs" (grader/proc.py's summary)}.
"""
import json
import os
from pathlib import Path

from grader import feedback_md

SCHEMA = 1      # of a raw result record ("schema" field): raised when a field changes meaning


def title(item):
    """The line the board shows: the docstring's first line, [param] when parametrized."""
    doc = getattr(item.function, "__doc__", None) if hasattr(item, "function") else None
    if doc and doc.strip():
        title = doc.strip().splitlines()[0].rstrip(".")
    else:
        title = item.originalname.removeprefix("test_").replace("_", " ")
    callspec = getattr(item, "callspec", None)
    return f"{title} [{callspec.id}]" if callspec else title  # one line per parameter


def lesson(item):
    """The lesson a test belongs to: its file's folder (chapters/01-sockets -> 01-sockets)."""
    return Path(str(item.fspath)).resolve().parent.name


def points(item):
    """@points(n) of the test, 1 without it."""
    m = item.get_closest_marker("points")
    return m.args[0] if m and m.args else 1


def lesson_totals(results):
    """{lesson: {"score": s, "max": m, "passed": p, "failed": f, "skipped": k, "tests": [...]}}"""
    totals = {}
    for nodeid, r in sorted(results.items(), key=lambda kv: (kv[1].get("lesson", ""), kv[1].get("index", 0))):
        if "lesson" not in r:
            continue
        t = totals.setdefault(r["lesson"], {"score": 0, "max": 0, "passed": 0, "failed": 0,
                                            "skipped": 0, "tests": [], "duration": 0.0,
                                            "slowest": 0.0, "count": 0})
        t["duration"] += r.get("duration", 0.0)
        t["slowest"] = max(t["slowest"], r.get("duration", 0.0))
        t["count"] += 1
        pts = r["points"]
        if r["outcome"] != "skipped":
            t["max"] += pts
        if r["outcome"] == "passed":
            t["score"] += pts
        t[r["outcome"]] += 1
        t["tests"].append(dict(r, nodeid=nodeid))
    return totals


def lesson_skip_reason(totals):
    """The reason every test of a lesson was skipped, when the machine lacks what the
    lesson is about (skip kind `unsupported`, the same reason for all); None otherwise."""
    tests = totals["tests"]
    if not tests or any(r.get("skip_kind") != "unsupported" for r in tests):
        return None
    reasons = {(r["text"] or "").strip().splitlines()[0] for r in tests}
    return reasons.pop() if len(reasons) == 1 else None


def gradescope_results(results, elapsed):
    tests = []
    not_graded = []
    for lesson, t in lesson_totals(results).items():
        unmet = lesson_skip_reason(t)
        if unmet:
            not_graded.append(f"{lesson.replace('-', ' ', 1)}: not graded here, {unmet}")
        for r in t["tests"]:
            if r["outcome"] == "skipped":
                continue
            output, output_format = feedback_md.gradescope_output(r)   # Markdown for a failure
            tests.append({
                "name": f"{lesson.replace('-', ' ', 1)} › {r['title']}",
                "number": f"{lesson[:2]}.{len([x for x in tests if x['tags'][0] == lesson]) + 1}",
                "score": r["points"] if r["outcome"] == "passed" else 0,
                "max_score": r["points"],
                "status": "passed" if r["outcome"] == "passed" else "failed",
                "output": output,
                "output_format": output_format,
                "visibility": "after_due_date" if r.get("hidden") else "visible",
                "tags": [lesson],
            })
    return {
        "score": sum(t["score"] for t in tests),
        "execution_time": round(elapsed, 2),
        "output": "\n".join(not_graded),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def junit_xml(results):
    """JUnit XML of raw results, points, title and lesson as properties of each testcase
    (what pytest's --junitxml gives with this plugin, for results graded in a sandbox)."""
    from xml.etree import ElementTree as ET
    suite = ET.Element("testsuite", name="socklab")
    for lesson, t in lesson_totals(results).items():
        for r in t["tests"]:
            case = ET.SubElement(suite, "testcase", classname=lesson, name=r["nodeid"].split("::")[-1],
                                 time=f"{r.get('duration', 0.0):.3f}")
            props = ET.SubElement(case, "properties")
            for key in ("points", "title", "lesson"):
                ET.SubElement(props, "property", name=key, value=str(r.get(key, "")))
            if r["outcome"] == "failed":
                ET.SubElement(case, "failure", message=r["title"]).text = r.get("text", "")
            elif r["outcome"] == "skipped":
                ET.SubElement(case, "skipped", message=(r.get("text") or "").strip()[:200])
    suite.set("tests", str(len(suite)))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def write_json_atomic(path, data):
    """Write to a temporary file and rename, so readers never see half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)
