"""socklab grader: a pytest plugin and the helpers lesson graders share.

Lesson graders import what they need from here, and only from here (the package's one
public face; docs/architecture.md says which module may import which):

    from grader import expect, points, contract, GradeFailure, poll_until

The `lab` fixture (grader/lab.py) gives each test its programs, peers, probes and
captures; the modules `grader.probes` (socket states), `grader.capture` (packets) and
`grader.sanitized` (ASan/TSan copies) are public too.
"""
from grader.failure import GradeFailure, expect, fail, skip
from grader.helpers import first_difference, poll_until, swapped16, swapped32
from grader.host import which
from grader.isolation import proc_stat
from grader.markers import contract, hidden, needs_netns, points, slow
from grader.sanitized import sanitizer_report, use_sanitized_programs

__all__ = ["GradeFailure", "contract", "expect", "fail", "first_difference", "hidden",
           "needs_netns", "points", "poll_until", "proc_stat", "skip", "slow", "swapped16",
           "swapped32", "sanitizer_report", "use_sanitized_programs", "which"]
