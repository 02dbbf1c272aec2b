"""The course's C compiler flags, read from cmake/flags.txt -- the one place they are
defined, for CMake's builds and the grader's own (overlays, sanitizer copies)."""
import functools
import shlex
from pathlib import Path

FILE = Path(__file__).resolve().parent.parent / "cmake" / "flags.txt"


@functools.lru_cache(maxsize=None)
def _sets():
    sets = {}
    for line in FILE.read_text().splitlines():
        name, sep, flags = line.partition(":")
        if sep and name.strip().isidentifier() and not line.startswith("#"):
            sets[name.strip()] = tuple(shlex.split(flags))
    return sets


def flags(*names):
    """The flags of the named sets, in order: flags("common", "warnings")."""
    return [f for name in names for f in _sets()[name]]
