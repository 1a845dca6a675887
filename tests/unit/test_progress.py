"""Progress output: clean lines where stderr is not a terminal (logs, pipes)."""

from __future__ import annotations

import io

import pytest

from foundation.text.progress import Progress, clock


@pytest.mark.parametrize("seconds,want", [(0, "0 s"), (59.9, "59 s"), (61, "1m01s"),
                                          (3599, "59m59s"), (7260, "2h01m"), (-3, "0 s")])
def test_clock(seconds, want):
    assert clock(seconds) == want


def test_a_log_gets_one_clean_line_per_item_with_an_estimate():
    out = io.StringIO()
    progress = Progress("run", total=10.0, items=3, out=out)
    progress.working_on("copper-800g, 1048576 B")  # a log shows nothing until it ends
    progress.advance("copper-800g, 1048576 B at dilation 5000", 1.0)
    progress.advance("copper-800g, 4194304 B at dilation 2000", 4.0)
    progress.note("a note of its own")
    progress.advance("copper-800g, 16777216 B at dilation 1000", 5.0)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()  # no redrawing, no colour
    assert lines[0].startswith("netwall: run 1/3: copper-800g, 1048576 B at dilation 5000 (")
    assert "elapsed, about" in lines[0] and "left)" in lines[0]
    assert lines[2] == "a note of its own"
    assert lines[3].startswith("netwall: run 3/3:") and "left" not in lines[3]  # done


def test_units_count_weight_and_skipped_items_do_not_set_the_pace():
    out = io.StringIO()
    progress = Progress("campaign", total=4, done=1, unit="points", out=out)
    progress.advance("skipped: pair", paced=False)
    assert "2/4 points" in out.getvalue() and "left" not in out.getvalue()
    progress.advance("pair copper-800g")
    assert "3/4 points" in out.getvalue().splitlines()[-1]
    assert "left" in out.getvalue().splitlines()[-1]


def test_the_estimate_counts_down_and_says_when_it_is_passed():
    progress = Progress("run", total=4.0, items=4, out=io.StringIO())
    assert progress.remaining() == ""  # no pace yet: no guess
    progress.advance("one", 1.0)
    due = progress.due
    assert due is not None
    assert progress.remaining(due - 90) == "about 1m30s left"
    assert progress.remaining(due + 125) == "2m05s over the estimate"
    progress.advance("two", 3.0)
    assert progress.remaining(due + 500) == ""  # done: nothing left to guess
