"""GradeFailure: the one exception a grader raises to say what went wrong.

A failure carries three parts a student can act on -- what we expected, what
happened, and a hint -- plus optional extra sections (bytes on the wire, socket
states, packets).  The plugin adds the programs' output and exit status itself.
"""
import pytest


class GradeFailure(AssertionError):
    def __init__(self, expected, happened, hint=None, **sections):
        super().__init__(happened)
        self.expected = expected
        self.happened = happened
        self.hint = hint
        # extra titled sections, e.g. wire="...", sockets="..." (kept in order)
        self.sections = {k: v for k, v in sections.items() if v}


def fail(expected, happened, hint=None, **sections):
    raise GradeFailure(expected, happened, hint, **sections)


def expect(condition, expected, happened, hint=None, **sections):
    """Fail with a teaching message unless condition holds.

    `happened` and any section may be callables, so costly descriptions (running
    `ss`, rendering captures) are built only on failure.
    """
    if not condition:
        if callable(happened):
            happened = happened()
        sections = {k: v() if callable(v) else v for k, v in sections.items()}
        raise GradeFailure(expected, happened, hint, **sections)


# Why a test did not run, as a field the reports, verify and the gradebook read (never
# parsed from the reason's wording):
#   no-netns      it needs a private network namespace, and this machine gives none
#   missing-tool  a program it drives is not installed (the reason names the package)
#   too-slow      the machine is too slow right now for a check bound by wall-clock time
#   system-limit  a limit of this machine is below what the check needs
#   unsupported   the kernel (or a container's seccomp) refuses what the lesson is about
SKIP_KINDS = ("no-netns", "missing-tool", "too-slow", "system-limit", "unsupported")


class Skipped(pytest.skip.Exception):
    """pytest's skip, with the kind of reason attached."""

    def __init__(self, kind, reason):
        assert kind in SKIP_KINDS, kind
        super().__init__(reason)
        self.kind = kind


def skip(kind, reason):
    """Skip the running test for a reason of `kind` (one of SKIP_KINDS)."""
    raise Skipped(kind, reason)
