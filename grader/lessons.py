"""Lessons on disk: discovery, titles, hints, and the student's saved progress.

A lesson is a directory chapters/NN-slug/ holding README.md (its first heading is
the title), test_*.py graders, skeleton *.c files and optionally hints.md, whose
`## ` headings split it into progressive hints.
"""
import json
import os
import re
from pathlib import Path

from grader.results import lesson_totals, write_json_atomic

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = REPO / "chapters"
# where ./lab keeps your progress and hint state (tests point it elsewhere)
PROGRESS = Path(os.environ.get("SOCKLAB_STATE_DIR", REPO / "build" / "progress"))


class UnknownLesson(Exception):
    pass


class Lesson:
    def __init__(self, path):
        self.path = path
        self.name = path.name                       # "01-sockets"
        self.number = self.name.split("-", 1)[0]    # "01"

    @property
    def title(self):
        readme = self.path / "README.md"
        if readme.exists():
            for line in readme.read_text().splitlines():
                if line.startswith("# "):
                    return re.sub(r"^\d+\s*[-—·:]\s*", "", line[2:].strip())
        return self.name.split("-", 1)[-1].replace("-", " ")

    def programs(self):
        return sorted(p.stem for p in self.path.glob("*.c"))

    def uses(self):
        """Earlier chapters whose lib/ this one builds on (uses.txt), in order."""
        f = self.path / "uses.txt"
        if not f.exists():
            return []
        return [l.strip() for l in f.read_text().splitlines() if l.strip() and not l.startswith("#")]

    def hints(self):
        f = self.path / "hints.md"
        if not f.exists():
            return []
        parts = re.split(r"^## +(.*)$", f.read_text(), flags=re.M)
        return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]

    def __repr__(self):
        return f"Lesson({self.name})"


def all_lessons():
    return [Lesson(p) for p in sorted(CHAPTERS.iterdir())
            if p.is_dir() and any(p.glob("test_*.py"))]


def select(key):
    """None -> all lessons; '01', '1', '01-sockets' or 'sockets' -> that one."""
    lessons = all_lessons()
    if not key:
        return lessons
    for lesson in lessons:
        slug = lesson.name.split("-", 1)[-1]
        if key in (lesson.name, lesson.number, slug) or (key.isdigit() and int(key) == int(lesson.number)):
            return [lesson]
    names = ", ".join(l.name for l in lessons)
    raise UnknownLesson(f"no lesson '{key}'; the lessons are: {names}")


def after(lesson):
    lessons = all_lessons()
    i = [l.name for l in lessons].index(lesson.name)
    return lessons[i + 1] if i + 1 < len(lessons) else None


def results_by_node(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def totals_from_results(path):
    return lesson_totals(results_by_node(path))


def save_progress(raw_results):
    """Split a run's raw results into one progress file per lesson."""
    for lesson, t in totals_from_results(raw_results).items():
        if t["count"] and t["skipped"] == t["count"]:
            continue        # not run here at all (io_uring missing): no progress either way
        summary = {k: t[k] for k in ("score", "max", "passed", "failed", "skipped", "count")}
        PROGRESS.mkdir(parents=True, exist_ok=True)
        write_json_atomic(PROGRESS / f"{lesson}.summary.json", summary)


def load_progress(lesson):
    try:
        return json.loads((PROGRESS / f"{lesson.name}.summary.json").read_text())
    except (OSError, ValueError):
        return None


def first_unfinished():
    for lesson in all_lessons():
        p = load_progress(lesson)
        if p is None or p["failed"] or p["score"] < p["max"]:
            return lesson
    return all_lessons()[0]


def hint_state():
    try:
        return json.loads((PROGRESS / "hints.json").read_text())
    except (OSError, ValueError):
        return {}


def save_hint_state(state):
    PROGRESS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(PROGRESS / "hints.json", state)
