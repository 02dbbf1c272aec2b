"""socklab grader: a pytest plugin and the helpers lesson graders share.

Lesson tests import what they need from here:

    from grader import expect, GradeFailure, points
"""
from grader.failure import GradeFailure, expect, fail  # noqa: F401
from grader.markers import points, hidden, needs_netns  # noqa: F401
