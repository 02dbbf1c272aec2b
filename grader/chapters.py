"""What a chapter's small text files say about building it (CMakeLists.txt reads the same):

    chapters/NN-slug/uses.txt    earlier chapters whose lib/ this one builds on, in order
    chapters/NN-slug/links.txt   system libraries its programs link (-l names)

One name a line; blank lines and lines starting with # are left out.
"""
from pathlib import Path

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"


def _names(path):
    if not path.exists():
        return []
    return [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.strip().startswith("#")]


def uses(lesson):
    """The earlier chapters `lesson` builds on (uses.txt), in order."""
    return _names(CHAPTERS / lesson / "uses.txt")


def chain(lesson):
    """The lesson, then the chapters it builds on."""
    return [lesson, *uses(lesson)]


def link_flags(lesson):
    """-l flags for the system libraries of the lesson and the chapters it builds on."""
    return [f"-l{name}" for c in chain(lesson) for name in _names(CHAPTERS / c / "links.txt")]
