"""Which tests a course has: pytest collects them, with the grader plugin, the one way
every tool asks (the Classroom workflow, the gradebook's expected tests, the Contract
map, `./lab check --only`), so a parametrized test is one case per parameter and names,
titles and points are the ones the reports give."""
import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from grader import results

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    lesson: str         # "01-sockets"
    name: str           # pytest's item name: "test_x" or "test_x[param]"
    nodeid: str
    path: str           # the test file
    title: str          # as results.json names it: "01 sockets › addr stores ..."
    points: int
    contract: tuple     # ((program, phrase), ...) of its @contract markers


def _contract(item):
    refs = []
    for m in item.iter_markers("contract"):
        program, *phrases = m.args
        refs += [(program, p) for p in phrases]
    return tuple(refs)


def cases(paths, root=REPO):
    """Every test case under `paths` (lesson folders or test files), in the files' order,
    collected with root's pytest.ini."""
    import pytest

    found = []

    class Collector:
        @pytest.hookimpl(tryfirst=True)     # before the grader plugin moves slow tests first
        def pytest_collection_modifyitems(self, items):
            for item in items:
                lesson = results.lesson(item)
                title = f"{lesson.replace('-', ' ', 1)} › {results.title(item)}"
                found.append(Case(lesson, item.name, item.nodeid, str(item.fspath), title,
                                  results.points(item), _contract(item)))

    args = ["--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-c", str(Path(root) / "pytest.ini"),
            "--rootdir", str(root), *map(str, paths)]
    with contextlib.redirect_stdout(io.StringIO()) as said:
        rc = pytest.main(args, plugins=[Collector()])
    if rc not in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SystemExit(f"collecting the graders failed:\n{said.getvalue()}")
    return found
