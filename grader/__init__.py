"""socklab grader: a pytest plugin and the helpers lesson graders share.

Lesson graders import what they need from here, and only from here (the package's one
public face; docs/architecture.md draws which module may import which):

    from grader import expect, points, contract, GradeFailure, poll_until

The `lab` fixture (grader/lab.py) gives each test its programs, peers, probes and
captures; the modules `grader.probes` (socket states) and `grader.capture` (packets)
are public too.  Names are loaded when first asked for, so the command line (`./lab
hint`, the board) never loads pytest and the test runtime.
"""
import importlib

_PUBLIC = {
    "GradeFailure": "grader.failure", "expect": "grader.failure", "fail": "grader.failure",
    "skip": "grader.failure",
    "contract": "grader.markers", "hidden": "grader.markers", "needs_netns": "grader.markers",
    "points": "grader.markers", "slow": "grader.markers",
    "busy_loop": "grader.helpers", "expect_asleep": "grader.helpers",
    "connect_burst": "grader.helpers", "expect_clients_wait_in_queue": "grader.helpers", "expect_quiet_stderr": "grader.helpers",
    "first_difference": "grader.helpers", "poll_until": "grader.helpers", "time_after_a_miss": "grader.helpers",
    "push_until_blocked": "grader.helpers",
    "rejects_argument": "grader.helpers",
    "swapped16": "grader.helpers", "swapped32": "grader.helpers",
    "which": "grader.host", "proc_stat": "grader.isolation",
    "explain_sanitized": "grader.sanitized", "sanitizer_report": "grader.sanitized",
    "use_sanitized_programs": "grader.sanitized",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'grader' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__():
    return __all__
