"""The proof loop: measure a batch, probe it at a larger dilation, judge it, and measure it
again where the host distorted it; one loop for `run` and `replay`.

A result is only as good as the host that made it (emulator.models.verdict): the same batch
at the probe dilation must take the same real time. With an automatic dilation a distorted
result is measured again at the dilation the verdict says fixes it, a few times at most; what
stays distorted is flagged, not chased. A trace whose calls were distorted on their own
while its total kept time is measured once more at the same dilation: that is a disturbance
passing (one late wake-up of an agent, carried into a rank's later calls), which a second
run is likely to miss and a larger dilation is not needed for. Each attempt's dilation is a
value the loop hands to `measure` and `probe`, never state they share: the caller puts the
network at it.

The loop is pure: what a batch is, how it is probed and judged, are the caller's (a run's
timed calls, a replayed trace's program, or fakes in a unit test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from emulator.models import dilation as dil

#: Dilations a batch is measured at, at most, before its flag is left to the user.
MAX_ATTEMPTS = 3


class Judged(Protocol):
    """What the loop reads of a verdict: the host's share of the measured time (inf: most;
    None: not proven, so nothing to chase), and whether anything flagged the result."""

    @property
    def host_error(self) -> float | None: ...

    @property
    def faithful(self) -> bool: ...


B = TypeVar("B")  # a measured batch
P = TypeVar("P")  # the same batch at the probe dilation
V = TypeVar("V", bound=Judged)


@dataclass(frozen=True)
class Rule:
    """When a distorted result is measured again: never when the user fixed the dilation,
    nor where frames are repaired (faults, lossy links), because which frames a fault or a
    bit error catches depends on the host's timing at any dilation, so such a batch differs
    by more than the tolerance from run to run at every dilation."""

    tolerance: float
    chase: bool  # False: keep the first attempt's dilation whatever the verdict
    max_attempts: int = MAX_ATTEMPTS
    max_dilation: float = dil.MAX_AUTO
    #: Measure once more at the same dilation a proven result flagged though its host share
    #: is within the tolerance (a trace's calls distorted on their own).
    repeat: bool = False

    def next(self, dilation: float, verdict: Judged, attempts: int, repeated: bool = False
             ) -> float | None:
        """The dilation to measure at next, or None: this verdict stands. `repeated`: this
        dilation was measured before."""
        error = verdict.host_error
        if not (self.chase and error is not None and attempts < self.max_attempts):
            return None
        if error > self.tolerance:
            if dilation >= self.max_dilation:
                return None
            return min(self.max_dilation, dil.retry_dilation(dilation, error, self.tolerance))
        if self.repeat and not verdict.faithful and not repeated:
            return dilation
        return None


@dataclass(frozen=True)
class Trial(Generic[B, P, V]):
    """One attempt: the batch at `dilation`, its probe at `probe_dilation` (None: the probe
    was off), and the verdict on the two."""

    dilation: float
    probe_dilation: float
    batch: B
    probe: P | None
    verdict: V


def prove(first: float, measure: Callable[[float, int], B],
          probe: Callable[[float, B], P] | None,
          judge: Callable[[B, P | None, float, float], V], rule: Rule) -> list[Trial[B, P, V]]:
    """Every attempt, the result's last. `measure(dilation, attempt)` runs the batch (attempt
    0 first), `probe(dilation, batch)` the same batch at the probe dilation (None: no probe;
    it sees the batch it proves, so it may repeat only as much of it as the batch's own
    spread requires: emulator.models.sampling), `judge(batch, probe, dilation,
    probe_dilation)` says how far the host distorted it."""
    trials: list[Trial[B, P, V]] = []
    dilation: float | None = first
    while dilation is not None:
        batch = measure(dilation, len(trials))
        probe_d = dil.probe_dilation(dilation)
        probed = probe(probe_d, batch) if probe is not None else None
        verdict = judge(batch, probed, dilation, probe_d)
        trials.append(Trial(dilation, probe_d, batch, probed, verdict))
        dilation = rule.next(dilation, verdict, len(trials),
                             repeated=any(t.dilation == dilation for t in trials[:-1]))
    return trials
