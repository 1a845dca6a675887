"""A cheaper proof: how many calls the probe must repeat, and how sure its verdict is.

A result is proven by timing the same call again at a larger dilation (the probe): the host's
share of the time is what shrinks (emulator.models.dilation.host_error). Repeating the whole
timed batch costs twice its wall time at twice the dilation, most of a run. But the calls of
a batch are back to back and alike, so the batch itself says how much one call varies: where
calls are steady, a few probe calls estimate the host's share as well as the whole batch
would. The probe repeats the fewest calls for which the host share's 95% interval is at most
half the tolerance wide on each side, and the verdict states that interval.

Pure arithmetic on wall-clock times; the run loop times the calls and runs the probe.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Two-sided 95% quantiles of Student's t by degrees of freedom (1-30; any table of the t
#: distribution): a spread learnt from a handful of calls is itself uncertain. Beyond 30, the
#: normal distribution's 1.96.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t95(freedom: int) -> float:
    """The two-sided 95% quantile for `freedom` degrees of freedom (at least one)."""
    return _T95[min(max(freedom, 1), len(_T95)) - 1] if freedom <= len(_T95) else 1.96


def _freedom(timed: int, probed: int) -> int:
    """Degrees of freedom of the spread: from the timed calls, and the probe's where it has
    more than one."""
    return timed - 1 + max(0, probed - 1)


def call_times(start: float, ends: Sequence[float]) -> list[float]:
    """Each call's wall time in a batch of back-to-back calls that began at `start`: the time
    from one call's end (the batch's start for the first) to the next one's."""
    ordered = sorted(ends)
    return [end - before for before, end in zip([start, *ordered[:-1]], ordered, strict=True)]


def relative_spread(times: Sequence[float]) -> float:
    """The calls' sample standard deviation over their mean (0 for fewer than two calls:
    nothing to learn the spread from, so the probe repeats the whole batch)."""
    if len(times) < 2:
        return math.inf
    mean = statistics.fmean(times)
    return statistics.stdev(times) / mean if mean > 0 else math.inf


def share_error(spread: float, timed: int, probed: int, d: float, probe_d: float) -> float:
    """Standard error of the host share estimated from `timed` calls at d and `probed` at
    probe_d, each varying by `spread` of its mean.

    The share is about (t_d - t_p) / t_d / (1 - d/probe_d) (dilation.host_error, for small
    shares), so its error is the error of the two means' difference, scaled alike.
    """
    if timed < 1 or probed < 1 or not math.isfinite(spread):
        return math.inf
    return spread * math.sqrt(1 / timed + 1 / probed) / (1 - d / probe_d)


def probe_calls(spread: float, timed: int, d: float, probe_d: float,
                tolerance: float) -> int:
    """The fewest probe calls (at most the whole batch) for which the host share's 95%
    interval reaches at most half the tolerance either side."""
    for probed in range(1, timed):
        if t95(_freedom(timed, probed)) * share_error(spread, timed, probed, d, probe_d) \
                <= tolerance / 2:
            return probed
    return max(1, timed)


@dataclass(frozen=True)
class Sample:
    """What the probe measured and how sure it is: the verdict states it."""

    probed: int  # calls repeated at the probe dilation
    timed: int  # calls in the timed batch
    spread: float  # the timed calls' relative standard deviation
    margin: float  # 95% half-width of the host share

    def describe(self) -> str:
        how = "the whole batch" if self.probed >= self.timed else \
            f"{self.probed} of {self.timed} calls"
        margin = "unknown" if not math.isfinite(self.margin) else f"{self.margin:.1%}"
        return f"probed on {how}, host share known to within {margin} (95%)"


def sample(times: Sequence[float], probe_times: Sequence[float], d: float,
           probe_d: float) -> Sample:
    """The interval of a probe that ran: the spread of both sets of calls, the larger one."""
    spread = max(relative_spread(times), relative_spread(probe_times)
                 if len(probe_times) > 1 else 0.0)
    timed, probed = len(times), len(probe_times)
    return Sample(probed, timed, spread, t95(_freedom(timed, probed))
                  * share_error(spread, timed, probed, d, probe_d))
