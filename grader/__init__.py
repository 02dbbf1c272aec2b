"""socklab grader: a pytest plugin and the helpers lesson graders share.

Lesson tests import what they need from here:

    from grader import expect, GradeFailure, points, needs_netns
"""
from grader.failure import GradeFailure, expect, fail
from grader.markers import contract, hidden, needs_netns, points, slow

__all__ = ["GradeFailure", "contract", "expect", "fail", "hidden", "needs_netns", "points", "slow"]
