"""The fidelity verdict: each check can flag a run, with its reason; the dilation probe
flags every result the host distorted, and only those."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from emulator.models.accounting import LinkReport
from emulator.models.verdict import Probe, busy_share, cpu_times, judge, judge_trace

LINKS = [LinkReport("gpu0->nvs0", "copper-800g", 1_000_000, None, 700, 0),
         LinkReport("nvs0->gpu1", "copper-800g", 500_000, None, 350, 0)]
RATES = {"gpu0->nvs0": (8e6, 0), "nvs0->gpu1": (8e6, 0)}  # 1 MB/s each, no burst
TRUE_S = 100e-6  # what the links alone would take, real seconds


def verdict(time_s=TRUE_S, probe_s=TRUE_S, links=LINKS, cpu=([(100, 1000)], [(150, 2000)]),
            retransmits=0, loss_expected=False, tolerance=0.02, d=1000.0, probe_d=2000.0):
    probe = Probe(probe_d, probe_s, tolerance)
    return judge(*cpu, links, RATES, wall_s=1.25, retransmitted_frames=retransmits,
                 loss_expected=loss_expected, time_s=time_s, dilation=d, probe=probe)


def test_a_calm_invariant_run_is_faithful():
    v = verdict()
    assert v.cpu_busy == 0.05 and v.max_link_utilization == 0.8
    assert v.host_error == 0.0 and v.faithful and v.flags == []
    assert v.to_dict()["faithful"] is True


@pytest.mark.parametrize("host_wall_s", [0.0025, 0.01, 0.1])
def test_a_host_bound_result_is_flagged_with_the_fix(host_wall_s):
    # The host adds wall time that shrinks as 1/D in real units: at D=1000 it is 2.5%+.
    d, probe_d = 1000.0, 2000.0
    v = verdict(TRUE_S + host_wall_s / d, TRUE_S + host_wall_s / probe_d, d=d, probe_d=probe_d)
    assert v.host_error == pytest.approx(host_wall_s / d / TRUE_S)
    assert not v.faithful
    (flag,) = v.flags
    assert "host software added about" in flag and f"--dilation {v.fix_dilation:g}" in flag
    assert v.fix_dilation >= d * v.host_error / 0.02  # where the 1/D rule puts it in tolerance


def test_a_host_bound_result_is_flagged_even_with_idle_cpus():
    # The failure the old verdict missed: CPUs half idle, wake-up latency setting the pace.
    v = verdict(TRUE_S * 1.5, TRUE_S * 1.25, cpu=([(0, 0)], [(50, 100)]))
    assert v.cpu_busy == 0.5 and not v.faithful


def test_a_spread_cluster_reports_its_busiest_host():
    """One reading per host: the share is the most loaded host's, not an average that an
    idle host would dilute."""
    v = verdict(cpu=([(0, 0), (0, 0), (10, 100)], [(20, 100), (90, 100), (20, 200)]))
    assert v.cpu_busy == 0.9
    assert busy_share([(0, 0)], [(30, 100)]) == 0.3


def test_a_busy_cpu_alone_does_not_flag_an_invariant_result():
    v = verdict(cpu=([(0, 0)], [(99, 100)]))
    assert v.cpu_busy == 0.99 and v.faithful


def test_a_disturbed_probe_means_not_proven():
    v = verdict(TRUE_S, TRUE_S * 1.1)
    assert not v.faithful and "host software" in v.flags[0]


def test_within_tolerance_is_faithful_and_the_tolerance_is_the_users():
    almost = verdict(TRUE_S * 1.009, TRUE_S * 1.0045)  # 0.9% at D, 0.45% at 2D
    assert almost.host_error == pytest.approx(0.009) and almost.faithful
    strict = verdict(TRUE_S * 1.009, TRUE_S * 1.0045, tolerance=0.005)
    assert not strict.faithful and "tolerance 0.5%" in strict.flags[0]


def test_without_a_probe_nothing_is_proven():
    v = judge([(0, 0)], [(1, 100)], LINKS, RATES, 1.25, 0, False, TRUE_S, 1000.0,
              Probe(2000.0, None, 0.02, "the probe was turned off"))
    assert v.host_error is None and not v.faithful
    assert v.flags == ["not proven: the probe was turned off"]


def test_a_host_dominated_result_serialises_as_strict_json():
    v = verdict(TRUE_S * 3, TRUE_S * 1.5)  # doubling D halved the time: all host
    assert math.isinf(v.host_error)
    data = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert data["host_error"] is None and data["faithful"] is False
    assert "host software added most" in data["flags"][0]


def test_each_other_violation_is_flagged_with_its_reason():
    drops = [replace(LINKS[0], drops=3), LINKS[1]]
    v = judge([(0, 0)], [(95, 100)], drops, RATES, wall_s=0.5, retransmitted_frames=7,
              loss_expected=False, time_s=TRUE_S, dilation=1000.0,
              probe=Probe(2000.0, TRUE_S, 0.02))
    text = " | ".join(v.flags)
    assert "gpu0->nvs0 carried 200%" in text  # 2 MB/s on a 1 MB/s link
    assert "3 frames dropped" in text and "7 frames resent" in text
    assert v.to_dict()["faithful"] is False


def test_the_shapers_burst_is_not_over_rate():
    # 1.25 s at 1 MB/s is 1.25 MB; a 0.3 MB burst on top of it is what htb allows.
    burst = {"gpu0->nvs0": (8e6, 300_000), "nvs0->gpu1": (8e6, 300_000)}
    links = [replace(LINKS[0], bytes=1_500_000), LINKS[1]]
    v = judge([(0, 0)], [(1, 100)], links, burst, 1.25, 0, False, TRUE_S, 1000.0,
              Probe(2000.0, TRUE_S, 0.02))
    assert v.max_link_utilization == pytest.approx(0.96) and v.faithful


def test_repairs_are_expected_on_lossy_links():
    v = verdict(retransmits=7, loss_expected=True)
    assert v.unexpected_retransmits == 0 and not v.flags


def test_a_repaired_result_off_the_probe_asks_for_repeats_not_a_dilation():
    """Which frames a fault or a bit error catches differs from run to run at every
    dilation, so a repaired batch's disagreement with its probe is no host share a larger
    dilation removes: the flag says to repeat the run (lab 4's outages), and no --dilation."""
    d, probe_d = 1000.0, 2000.0
    probe = Probe(probe_d, TRUE_S * 0.9, 0.02)
    v = judge([(100, 1000)], [(150, 2000)], LINKS, RATES, wall_s=1.25, retransmitted_frames=9,
              loss_expected=True, time_s=TRUE_S, dilation=d, probe=probe, repaired=True)
    assert not v.faithful and "repeat the run" in v.flags[0]
    assert "--dilation" not in v.flags[0]
    fault_free = judge([(100, 1000)], [(150, 2000)], LINKS, RATES, wall_s=1.25,
                       retransmitted_frames=0, loss_expected=False, time_s=TRUE_S,
                       dilation=d, probe=probe)
    assert "--dilation" in fault_free.flags[0] and "repeat" not in fault_free.flags[0]


def test_a_trace_is_judged_call_by_call_and_as_a_whole():
    times = [1e-3, 2e-3, 10e-6]
    honest = judge_trace(times, times, 5e-3, 5e-3, 1000.0, 2000.0, 0.02)
    assert honest.faithful and honest.call_errors == [0.0, 0.0, 0.0]
    # The small call paid 5 us of real time at D=1000 that halved at 2000: 100% host.
    skewed = judge_trace([1e-3, 2e-3, 15e-6], [1e-3, 2e-3, 12.5e-6], 5e-3, 5e-3, 1000.0,
                         2000.0, 0.02)
    assert not skewed.faithful and skewed.call_errors[2] == pytest.approx(0.5)
    assert "1 of 3 calls" in skewed.flags[0] and "call 2: 50%" in skewed.flags[0]
    whole = judge_trace(times, times, 5.5e-3, 5.25e-3, 1000.0, 2000.0, 0.02)
    assert not whole.faithful and "the trace's time" in whole.flags[0]
    unproven = judge_trace(times, None, 5e-3, None, 1000.0, 2000.0, 0.02)
    assert not unproven.faithful and unproven.call_errors == [None] * 3


def test_cpu_times_count_up():
    busy, total = cpu_times()
    assert 0 <= busy <= total
