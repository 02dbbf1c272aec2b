"""Markers a lesson test uses to declare its points, visibility and what it checks.

    @points(2)            the test is worth 2 points (default 1)
    @hidden               not shown to students before the deadline (Gradescope
                          visibility "after_due_date"); `./lab release` drops it
    @needs_netns          needs a private network namespace (packet capture,
                          firewall rules); skipped with one line when unavailable
    @slow                 waits on (kernel) timers for seconds: started first so
                          parallel workers overlap it with the quick tests
    @contract("server", "listening on", ...)
                          the Contract bullets this test checks: the program (the
                          first word of its `### ` heading in the lesson README) and,
                          for each bullet, a phrase that occurs in that bullet only.
                          Stack the marker for bullets of several programs.
"""
import pytest

points = pytest.mark.points
hidden = pytest.mark.hidden
needs_netns = pytest.mark.needs_netns
slow = pytest.mark.slow
contract = pytest.mark.contract
