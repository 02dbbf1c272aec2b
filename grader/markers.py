"""Markers a lesson test uses to declare its points and visibility.

    @points(2)            the test is worth 2 points (default 1)
    @hidden               not shown to students before the deadline (Gradescope
                          visibility "after_due_date"); `./lab release` drops it
    @needs_netns          needs a private network namespace (packet capture,
                          firewall rules); skipped with one line when unavailable
    @slow                 waits on (kernel) timers for seconds: started first so
                          parallel workers overlap it with the quick tests
"""
import pytest

points = pytest.mark.points
hidden = pytest.mark.hidden
needs_netns = pytest.mark.needs_netns
slow = pytest.mark.slow
