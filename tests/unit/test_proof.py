"""The proof loop (emulator.models.proof) with fake batches: which dilation each attempt gets,
when a distorted result is measured again, and when it is left flagged. No network: the
batches are numbers, the verdicts the real judges' where a run or a trace is meant."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from emulator.models import dilation as dil
from emulator.models.proof import MAX_ATTEMPTS, Rule, prove
from emulator.models.verdict import Probe, judge, judge_trace

TOLERANCE = 0.02


@dataclass(frozen=True)
class Fake:
    """A verdict the loop reads: the host's share of the time (None: not proven)."""

    host_error: float | None


class Host:
    """A fake host that adds `added_s` of wall time to every batch: at dilation d a batch of
    true time `true_s` takes true_s + added_s / d in real units. Records what ran."""

    def __init__(self, true_s: float = 1e-3, added_s: float = 0.0) -> None:
        self.true_s, self.added_s = true_s, added_s
        self.measured: list[tuple[float, int]] = []
        self.probed: list[float] = []
        self.proved: list[float] = []  # the batch each probe was handed

    def time_s(self, d: float) -> float:
        return self.true_s + self.added_s / d

    def measure(self, d: float, attempt: int) -> float:
        self.measured.append((d, attempt))
        return self.time_s(d)

    def probe(self, d: float, batch: float) -> float:
        self.probed.append(d)
        self.proved.append(batch)
        return self.time_s(d)


def share(time_s: float, probe_s: float | None, d: float, probe_d: float) -> Fake:
    return Fake(None if probe_s is None else dil.host_error(time_s, d, probe_s, probe_d))


def test_a_faithful_batch_is_measured_once_and_probed_at_the_probe_dilation():
    host = Host()
    trials = prove(1000.0, host.measure, host.probe, share, Rule(TOLERANCE, chase=True))
    assert [t.dilation for t in trials] == [1000.0]
    assert host.measured == [(1000.0, 0)]
    assert host.probed == [dil.probe_dilation(1000.0)] == [trials[0].probe_dilation]
    assert trials[0].verdict.host_error == pytest.approx(0.0, abs=1e-12)


def test_a_distorted_batch_is_measured_again_at_the_dilation_its_verdict_asks_for():
    host = Host(true_s=1e-3, added_s=0.5)  # 50% of the time at d=1000, 10% at d=5000
    trials = prove(1000.0, host.measure, host.probe, share, Rule(TOLERANCE, chase=True))
    first, second = trials[0], trials[1]
    assert first.verdict.host_error > TOLERANCE
    assert second.dilation == min(dil.MAX_AUTO, dil.retry_dilation(
        1000.0, first.verdict.host_error, TOLERANCE))
    assert second.dilation > first.dilation
    # every attempt is measured at its own dilation and probed at that one's probe dilation,
    # each probe handed the batch it proves
    assert host.proved == [t.batch for t in trials]
    assert host.measured == [(t.dilation, i) for i, t in enumerate(trials)]
    assert host.probed == [dil.probe_dilation(t.dilation) for t in trials]
    assert [t.batch for t in trials] == [host.time_s(t.dilation) for t in trials]


def test_the_loop_stops_at_the_attempt_limit_and_leaves_the_last_verdict_flagged():
    host = Host()

    def distorted(_time_s, _probe_s, _d, _probe_d) -> Fake:
        return Fake(0.5)  # no dilation fixes this host

    trials = prove(100.0, host.measure, host.probe, distorted, Rule(TOLERANCE, chase=True))
    assert len(trials) == MAX_ATTEMPTS
    assert [t.dilation for t in trials] == sorted({t.dilation for t in trials})  # rising
    assert trials[-1].verdict.host_error == 0.5


def test_the_loop_stops_at_the_largest_automatic_dilation():
    host = Host()
    trials = prove(dil.MAX_AUTO, host.measure, host.probe, lambda *_: Fake(0.5),
                   Rule(TOLERANCE, chase=True))
    assert [t.dilation for t in trials] == [dil.MAX_AUTO]
    near = prove(dil.MAX_AUTO / 2, host.measure, host.probe, lambda *_: Fake(1e9),
                 Rule(TOLERANCE, chase=True))
    assert [t.dilation for t in near] == [dil.MAX_AUTO / 2, dil.MAX_AUTO]  # capped, then done


@pytest.mark.parametrize("why", ["the user fixed the dilation", "frames are repaired"])
def test_no_retry_where_the_rule_does_not_chase(why):
    """A fixed --dilation, or faults and lossy links (Emulation.measure passes chase=False
    for both): a distorted result is flagged, not measured again."""
    host = Host(added_s=0.5)
    trials = prove(1000.0, host.measure, host.probe, share, Rule(TOLERANCE, chase=False))
    assert len(trials) == 1 and trials[0].verdict.host_error > TOLERANCE


def test_an_unproven_batch_is_not_chased_and_nothing_is_probed():
    host = Host(added_s=0.5)
    trials = prove(1000.0, host.measure, None, share, Rule(TOLERANCE, chase=True))
    assert len(trials) == 1 and host.probed == []
    assert trials[0].probe is None and trials[0].verdict.host_error is None


def test_most_of_the_time_the_hosts_is_chased_as_far_as_the_rule_allows():
    """A share of inf (the host took all of it) asks for the largest retry dilation."""
    host = Host()
    trials = prove(1000.0, host.measure, host.probe, lambda *_: Fake(float("inf")),
                   Rule(TOLERANCE, chase=True, max_attempts=2))
    assert trials[1].dilation == min(dil.MAX_AUTO, dil.retry_dilation(1000.0, float("inf"),
                                                                      TOLERANCE))


def test_a_run_is_judged_by_verdict_judge_in_the_loop():
    """The run's own judge, as Emulation.measure wires it: a probe slower by 10% flags the
    batch and asks for more dilation; the same time at the probe proves it."""
    def run_judge(time_s, probe_s, d, probe_d):
        return judge([(0, 100)], [(10, 200)], [], {}, 1.0, 0, False, time_s, d,
                     Probe(probe_d, probe_s, TOLERANCE))

    host = Host(added_s=0.2)
    trials = prove(1000.0, host.measure, host.probe, run_judge, Rule(TOLERANCE, chase=True))
    assert not trials[0].verdict.faithful and len(trials) > 1
    assert trials[0].verdict.fix_dilation is not None
    honest = prove(1000.0, Host().measure, Host().probe, run_judge,
                   Rule(TOLERANCE, chase=True))
    assert len(honest) == 1 and honest[0].verdict.faithful


def test_a_trace_is_chased_on_its_total_and_checked_on_its_first_attempt_only():
    """As Emulation.measure_trace wires it: the batch is a trace (per call times and a
    total), the verdict judge_trace's, and only attempt 0 checks the data."""
    host = Host(added_s=0.5)
    checked: list[bool] = []

    def measure(d: float, attempt: int) -> tuple[list[float], float]:
        checked.append(attempt == 0)
        return [host.time_s(d)], host.time_s(d)

    def probe(d: float, _run) -> tuple[list[float], float]:
        return [host.time_s(d)], host.time_s(d)

    def trace_judge(run, probed, d, probe_d):
        return judge_trace(run[0], probed and probed[0], run[1], probed and probed[1], d,
                           probe_d, TOLERANCE)

    trials = prove(1000.0, measure, probe, trace_judge, Rule(TOLERANCE, chase=True))
    assert len(trials) > 1 and checked == [True] + [False] * (len(trials) - 1)
    assert trials[0].verdict.host_error > TOLERANCE and not trials[0].verdict.faithful


def _trace_judge(run, probed, d, probe_d):
    return judge_trace(run[0], probed and probed[0], run[1], probed and probed[1], d, probe_d,
                       TOLERANCE)


@pytest.mark.parametrize("disturbed", [1, 2])
def test_a_trace_whose_calls_alone_were_distorted_is_measured_once_more_at_the_same_dilation(
        disturbed):
    """One late wake-up slows a call (here by 10%) while the trace's total keeps time: the
    trace is run again at the same dilation, once. A disturbance that passed leaves the
    second attempt proven; one that stays leaves it flagged, with no third attempt."""
    measured: list[float] = []

    def measure(d: float, attempt: int) -> tuple[list[float], float]:
        measured.append(d)
        slow = 1.1 if attempt < disturbed else 1.0
        return [1e-4, 1e-4 * slow], 1e-2

    def probe(d: float, _run) -> tuple[list[float], float]:
        return [1e-4, 1e-4], 1e-2

    trials = prove(1000.0, measure, probe, _trace_judge,
                   Rule(TOLERANCE, chase=True, repeat=True))
    assert measured == [1000.0, 1000.0]
    assert trials[0].verdict.host_error == pytest.approx(0.0, abs=1e-12)
    assert not trials[0].verdict.faithful
    assert trials[-1].verdict.faithful == (disturbed == 1)


def test_calls_distorted_alone_are_not_repeated_where_the_rule_does_not_chase_or_repeat():
    def measure(d: float, attempt: int) -> tuple[list[float], float]:
        return [1e-4, 1.1e-4], 1e-2

    def probe(d: float, _run) -> tuple[list[float], float]:
        return [1e-4, 1e-4], 1e-2

    for rule in (Rule(TOLERANCE, chase=False, repeat=True), Rule(TOLERANCE, chase=True)):
        trials = prove(1000.0, measure, probe, _trace_judge, rule)
        assert len(trials) == 1 and not trials[0].verdict.faithful


def test_a_repeated_trace_whose_total_is_then_distorted_goes_up_the_series():
    """The repeat does not use up the chase: a total distorted on the second attempt at D is
    measured at a larger dilation."""
    def measure(d: float, attempt: int) -> tuple[list[float], float]:
        if attempt == 0:
            return [1e-4, 1.1e-4], 1e-2
        return [1e-4, 1e-4], 1e-2 * (1.1 if d == 1000.0 else 1.0)

    def probe(d: float, _run) -> tuple[list[float], float]:
        return [1e-4, 1e-4], 1e-2

    trials = prove(1000.0, measure, probe, _trace_judge,
                   Rule(TOLERANCE, chase=True, repeat=True))
    assert [t.dilation for t in trials][:2] == [1000.0, 1000.0]
    assert trials[2].dilation > 1000.0 and trials[2].verdict.faithful
