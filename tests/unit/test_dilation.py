"""Tests for emulator.models.dilation: choosing D and scaling one link direction by it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from emulator.models.dilation import (
    BURST_REAL_S,
    CATCH_UP_WALL_S,
    HELD_STEP_WAKES,
    MAX_AUTO,
    SWITCH_CROWDING,
    CallCost,
    at_rate,
    choose,
    fixing_dilation,
    host_error,
    injection_gbps,
    link_shape,
    next_above,
    nice_ceiling,
    probe_dilation,
    retry_dilation,
    validate,
)
from foundation.errors import NetwallError


@pytest.mark.parametrize("x", [-5.0, 0.0, 0.3, 0.999, 1.0])
def test_nice_ceiling_is_one_at_or_below_one(x):
    assert nice_ceiling(x) == 1.0


@pytest.mark.parametrize("exponent", range(0, 10))
def test_nice_ceiling_keeps_exact_series_values(exponent):
    for mantissa in (1, 2, 5):
        value = float(mantissa * 10**exponent)
        assert nice_ceiling(value) == value


@pytest.mark.parametrize(
    "x,want",
    [(1.01, 2.0), (1.9, 2.0), (2.0001, 5.0), (3, 5.0), (4.99, 5.0), (5.01, 10.0), (9.9, 10.0),
     (11, 20.0), (25, 50.0), (51, 100.0), (101, 200.0), (999, 1000.0), (1001, 2000.0),
     (123456, 200000.0), (7.5e6, 1e7)],
)
def test_nice_ceiling_rounds_up_to_the_125_series(x, want):
    assert nice_ceiling(x) == want


@pytest.mark.parametrize("x", [1.5, 3.3, 7, 13, 42, 77.7, 640, 3200, 9999, 1.7e8])
def test_nice_ceiling_is_the_smallest_series_value_not_below_x(x):
    series = sorted(m * 10.0**e for e in range(-1, 12) for m in (1, 2, 5))
    want = min(v for v in series if v >= x)
    assert nice_ceiling(x) == want


def test_injection_sums_every_link_of_every_gpu():
    rates = {"gpu0": [800.0], "gpu1": [800.0, 1600.0], "gpu2": []}
    assert injection_gbps(rates) == 3200.0
    assert injection_gbps({}) == 0


# Ring all-reduce on 8 ranks of 800 Gb/s: 14 steps of size/8 bytes per rank.
RING_1M = CallCost(model_s=14 * (1 << 17) * 8 / 800e9, steps=14,
                   sent_bytes=8 * 14 * (1 << 17), ranks=8)
RING_16M = CallCost(model_s=14 * (1 << 21) * 8 / 800e9, steps=14,
                    sent_bytes=8 * 14 * (1 << 21), ranks=8)


def test_choose_a_bandwidth_bound_call_fits_the_host_capacity():
    # 16 MiB on 8 x 800 Gb/s: 6.4 Tb/s of injection over 6.4 Gb/s of capacity.
    d = choose(RING_16M, capacity_gbps=6.4, step_s=1e-9, calibrated_ranks=8, tolerance=0.02)
    assert d == 1000.0
    assert RING_16M.sent_bytes * 8 / RING_16M.model_s / d / 1e9 <= 6.4 * (1 + 1e-9)


def test_choose_a_latency_bound_call_keeps_the_steps_cost_within_half_the_tolerance():
    d = choose(RING_1M, capacity_gbps=1e6, step_s=50e-6, calibrated_ranks=8, tolerance=0.02)
    # 14 steps x 50 us of host time must be at most 1% of the dilated call.
    assert 0.01 * RING_1M.model_s * d >= 14 * 50e-6
    assert d == nice_ceiling(14 * 50e-6 / (0.01 * RING_1M.model_s))
    # A looser tolerance needs less dilation; more ranks than calibrated need more.
    assert choose(RING_1M, 1e6, 50e-6, 8, tolerance=0.2) < d
    crowded = CallCost(RING_1M.model_s, RING_1M.steps, RING_1M.sent_bytes, ranks=64)
    assert choose(crowded, 1e6, 50e-6, 8, tolerance=0.02) > d


def test_choose_gives_a_call_with_an_nvls_switch_its_agents_crowding():
    nvls = replace(RING_16M, switches=1)
    assert choose(nvls, 6.4, 1e-9, 8, 0.02) == nice_ceiling(1000.0 * SWITCH_CROWDING) > \
        choose(RING_16M, 6.4, 1e-9, 8, 0.02)
    # and on its steps: the switch's agent is in every step with every rank
    steps = choose(RING_1M, 1e6, 50e-6, 8, 0.02)
    assert choose(replace(RING_1M, switches=1), 1e6, 50e-6, 8, 0.02) == nice_ceiling(
        14 * 50e-6 * SWITCH_CROWDING / (0.01 * RING_1M.model_s)) > steps


def test_choose_charges_a_step_the_endpoints_hold_a_second_wake():
    once = choose(RING_1M, 1e6, 50e-6, 8, 0.02)
    held = choose(replace(RING_1M, held=True), 1e6, 50e-6, 8, 0.02)
    assert held == nice_ceiling(14 * 50e-6 * HELD_STEP_WAKES / (0.01 * RING_1M.model_s)) > once
    # a bandwidth-bound call's dilation is its injection's, held or not
    assert choose(replace(RING_16M, held=True), 6.4, 1e-9, 8, 0.02) == 1000.0


def test_choose_is_bounded_and_never_below_one():
    tiny = CallCost(model_s=1e-12, steps=1000, sent_bytes=1, ranks=8)
    assert choose(tiny, 6.4, 1e-3, 8, 0.02) == MAX_AUTO
    idle = CallCost(model_s=1.0, steps=1, sent_bytes=1, ranks=2)
    assert choose(idle, 6.4, 1e-9, 8, 0.02) == 1.0
    assert choose(CallCost(0.0, 0, 0, 8), 6.4, 1e-6, 8, 0.02) == 1.0


@pytest.mark.parametrize("d,want", [(1, 2), (2, 5), (5, 10), (1000, 2000), (2000, 5000),
                                    (3000, 10000), (5000, 10000)])
def test_next_above_climbs_the_series(d, want):
    assert next_above(d) == want


@pytest.mark.parametrize("d,want", [(1, 2), (500, 1000), (1000, 2000), (2000, 5000),
                                    (5000, 10000), (250, 500), (300, 1000)])
def test_probe_dilation_is_at_least_twice(d, want):
    assert probe_dilation(d) == want and want >= 2 * d


def test_host_error_recovers_a_1_over_d_cost():
    true_s, host_wall_s = 100e-6, 0.004  # the host adds 4 ms of wall time to every call
    for d, probe in [(1000, 2000), (2000, 5000), (500, 20000)]:
        t, tp = true_s + host_wall_s / d, true_s + host_wall_s / probe
        assert host_error(t, d, tp, probe) == pytest.approx(host_wall_s / d / true_s)


def test_host_error_of_an_invariant_result_is_zero():
    assert host_error(1e-3, 1000, 1e-3, 2000) == 0.0


def test_host_error_counts_a_disturbed_probe_as_disagreement():
    # The probe (less dilated by the host) came out slower: the host disturbed it, and the
    # disagreement must not pass as faithful.
    assert host_error(1.00e-3, 1000, 1.05e-3, 2000) == pytest.approx(0.05)


def test_host_error_of_a_host_dominated_result_is_infinite():
    # Twice the dilation halved the real time: nothing of it was the links'.
    assert host_error(2e-3, 1000, 1e-3, 2000) == math.inf
    assert host_error(0.0, 1000, 1e-3, 2000) == math.inf
    with pytest.raises(ValueError):
        host_error(1e-3, 2000, 1e-3, 1000)


def test_fixing_dilation_follows_1_over_d_and_climbs_at_least_one_step():
    assert fixing_dilation(250, 1.6, 0.02) == nice_ceiling(250 * 1.6 / 0.02)  # 20000
    assert fixing_dilation(1000, 0.021, 0.02) == 2000  # at least the next value
    assert fixing_dilation(1000, math.inf, 0.02) == 5000


def test_retry_dilation_takes_one_step_or_two():
    assert retry_dilation(1000, 0.03, 0.02) == 2000
    assert retry_dilation(1000, 0.5, 0.02) == 5000
    assert retry_dilation(1000, math.inf, 0.02) == 5000


@pytest.mark.parametrize("d", [1, 1.0, 2.5, 1000, 1e6])
def test_check_accepts_numbers_at_least_one(d):
    assert validate(d) == d


@pytest.mark.parametrize("d", [0.999, 0, -1, float("nan"), float("inf"), float("-inf")])
def test_check_rejects_with_one_line(d):
    with pytest.raises(NetwallError) as info:
        validate(d)
    message = str(info.value)
    assert "\n" not in message
    assert "--dilation" in message


def shape(**overrides):
    args = dict(rate_gbps=800.0, delay_ns=104.5, frame_loss=1e-9, queue_bytes=2_000_000,
                dilation=100.0, frame_bytes=65014)
    args.update(overrides)
    return link_shape(**args)


@pytest.mark.parametrize("rate,d", [(800.0, 100.0), (800.0, 1.0), (1600.0, 500.0), (0.2, 20.0)])
def test_rate_is_divided_by_dilation(rate, d):
    assert shape(rate_gbps=rate, dilation=d).rate_bps == pytest.approx(rate * 1e9 / d, abs=1)
    assert isinstance(shape(rate_gbps=rate, dilation=d).rate_bps, int)


@pytest.mark.parametrize("delay_ns,d", [(104.5, 100.0), (250.0, 1.0), (0.0, 50.0)])
def test_delay_is_multiplied_by_dilation(delay_ns, d):
    assert shape(delay_ns=delay_ns, dilation=d).delay_us == pytest.approx(delay_ns * d / 1000)


@pytest.mark.parametrize("loss", [0.0, 1e-9, 0.01, 0.5])
def test_loss_is_a_percentage_and_not_dilated(loss):
    assert shape(frame_loss=loss, dilation=1.0).loss_percent == pytest.approx(100 * loss)
    assert shape(frame_loss=loss, dilation=1000.0).loss_percent == pytest.approx(100 * loss)


def test_queue_in_frames_rounds_up_with_a_floor_of_eight():
    assert shape(queue_bytes=2_000_000, frame_bytes=65014).queue_packets == math.ceil(
        2_000_000 / 65014)  # 31 frames; not dilated
    assert shape(queue_bytes=2_000_000, dilation=1.0).queue_packets == shape(
        queue_bytes=2_000_000, dilation=1000.0).queue_packets
    assert shape(queue_bytes=10 * 1000 + 1, frame_bytes=1000).queue_packets == 11
    assert shape(queue_bytes=1, frame_bytes=65014).queue_packets == 8
    assert shape(queue_bytes=65014 * 3, frame_bytes=65014).queue_packets == 8


def test_burst_holds_one_frame_at_low_rates():
    s = shape(rate_gbps=1.0, dilation=100.0, frame_bytes=65014)  # 1 us of 1 Gb/s: 125 B
    assert s.burst_bytes == 65014


def test_burst_is_a_microsecond_of_real_link_time_at_high_rates():
    s = shape(rate_gbps=1600.0, dilation=1.0, frame_bytes=1514)  # 1 us of 1.6 Tb/s: 200 KB
    assert s.burst_bytes == 200_000


@pytest.mark.parametrize("rate", [1.0, 400.0, 800.0, 1600.0])
def test_burst_bytes_do_not_depend_on_the_dilation(rate):
    # The probe compares dilations: the shaper must allow the same bytes at each.
    assert len({shape(rate_gbps=rate, dilation=d).burst_bytes for d in (1, 100, 5000)}) == 1


@pytest.mark.parametrize("d", [1e9, 1e12, 2e8])
def test_absurd_dilation_is_an_error(d):
    # 800 Gb/s / 2e8 = 4000 bit/s, below the 8000 bit/s floor.
    with pytest.raises(NetwallError) as info:
        shape(rate_gbps=800.0, dilation=d)
    assert "\n" not in str(info.value)
    assert "--dilation" in str(info.value)


def test_dilation_just_leaving_8000_bits_is_allowed():
    s = shape(rate_gbps=800.0, dilation=1e8)  # exactly 8000 bit/s
    assert s.rate_bps == 8000


def test_a_degraded_link_shapes_its_rate_and_its_bucket_alike():
    """Lab 4: with a bucket kept at the healthy rate a degraded link ran 0.2-1% faster than
    its rate allows after every gap. Both follow the rate the fault left."""
    healthy = link_shape(800.0, 100.0, 0.0, 1 << 20, 2000.0, 65014)
    degraded = at_rate(healthy, 432.0, 2000.0, 65014)
    assert degraded.rate_bps == int(432e9 / 2000)
    assert degraded.burst_bytes == max(65014, int(432e9 / 8 * 1e-6)) < healthy.burst_bytes
    assert (degraded.delay_us, degraded.queue_packets) == (healthy.delay_us, healthy.queue_packets)


@pytest.mark.parametrize("catch_up", [False, True])
def test_a_degraded_links_bucket_keeps_its_time(catch_up):
    """A GPU link's catch-up bucket (CATCH_UP_WALL_S) stays that long at the degraded rate,
    as a switch link's microsecond does: neither falls back to the other."""
    healthy = link_shape(800.0, 100.0, 0.0, 1 << 20, 500.0, 1514, catch_up=catch_up)
    seconds = CATCH_UP_WALL_S / 500.0 if catch_up else BURST_REAL_S  # of real link time
    assert healthy.burst_bytes == pytest.approx(800e9 / 8 * seconds, abs=1)
    degraded = at_rate(healthy, 200.0, 500.0, 1514)
    assert degraded.rate_bps == int(200e9 / 500)
    assert degraded.burst_bytes == pytest.approx(200e9 / 8 * seconds, abs=1)
    assert at_rate(healthy, 800.0, 500.0, 1514) == healthy  # healed: the bucket it had


def test_a_degraded_links_bucket_still_holds_a_frame():
    healthy = link_shape(800.0, 100.0, 0.0, 1 << 20, 500.0, 65014)  # 1 us: 100 KB
    assert at_rate(healthy, 100.0, 500.0, 65014).burst_bytes == 65014  # not 12.5 KB
