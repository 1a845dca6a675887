"""The fidelity verdict: each check can flag a run, with its reason."""

from __future__ import annotations

from emulator.fidelity import cpu_times, judge

LINKS = [{"link": "gpu0->nvs0", "bytes": 1_000_000, "drops": 0},
         {"link": "nvs0->gpu1", "bytes": 500_000, "drops": 0}]
RATES = {"gpu0->nvs0": 8e6, "nvs0->gpu1": 8e6}  # 1 MB/s each


def test_a_calm_run_is_faithful():
    v = judge((100, 1000), (150, 2000), LINKS, RATES, wall_s=1.25, retransmitted_frames=0,
              loss_expected=False)
    assert v.cpu_busy == 0.05 and v.max_link_utilization == 0.8
    assert v.to_dict()["faithful"] and v.flags == []


def test_each_violation_is_flagged_with_its_reason():
    drops = [dict(LINKS[0], drops=3), LINKS[1]]
    v = judge((0, 0), (95, 100), drops, RATES, wall_s=0.5, retransmitted_frames=7,
              loss_expected=False)
    text = " | ".join(v.flags)
    assert "95% busy" in text  # saturated host
    assert "gpu0->nvs0 carried 200%" in text  # 2 MB/s on a 1 MB/s link
    assert "3 frames dropped" in text and "7 frames resent" in text
    assert v.to_dict()["faithful"] is False


def test_repairs_are_expected_on_lossy_links():
    v = judge((0, 0), (1, 100), LINKS, RATES, wall_s=2.0, retransmitted_frames=7,
              loss_expected=True)
    assert v.unexpected_retransmits == 0 and not v.flags


def test_cpu_times_count_up():
    busy, total = cpu_times()
    assert 0 <= busy <= total
