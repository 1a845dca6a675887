"""Tests for emulator.dilation: choosing D and scaling one link direction by it."""

from __future__ import annotations

import math

import pytest

from emulator.dilation import (
    CAPACITY_GBPS_PER_CORE,
    capacity_gbps,
    check,
    choose,
    injection_gbps,
    link_shape,
    nice_ceiling,
)
from emulator.errors import NetwallError


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


def test_capacity_scales_with_cores_and_never_reaches_zero():
    assert capacity_gbps(4) == 4 * CAPACITY_GBPS_PER_CORE
    assert capacity_gbps(0) == CAPACITY_GBPS_PER_CORE
    assert capacity_gbps(-3) == CAPACITY_GBPS_PER_CORE


def test_injection_sums_every_link_of_every_gpu():
    rates = {"gpu0": [800.0], "gpu1": [800.0, 1600.0], "gpu2": []}
    assert injection_gbps(rates) == 3200.0
    assert injection_gbps({}) == 0


@pytest.mark.parametrize(
    "injection,capacity,want",
    [(6400.0, 2.0, 5000.0), (6400.0, 4.0, 2000.0), (800.0, 8.0, 100.0), (1.0, 4.0, 1.0),
     (1000.0, 1.0, 1000.0)],
)
def test_choose_is_the_nice_ceiling_of_injection_over_capacity(injection, capacity, want):
    d = choose(injection, capacity)
    assert d == want
    assert injection / d <= capacity * (1 + 1e-9)  # the dilated traffic fits the host


@pytest.mark.parametrize("d", [1, 1.0, 2.5, 1000, 1e6])
def test_check_accepts_numbers_at_least_one(d):
    assert check(d) == d


@pytest.mark.parametrize("d", [0.999, 0, -1, float("nan"), float("inf"), float("-inf")])
def test_check_rejects_with_one_line(d):
    with pytest.raises(NetwallError) as info:
        check(d)
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
    s = shape(rate_gbps=1.0, dilation=100.0, frame_bytes=65014)  # 10 Mbit/s: 1 ms = 1250 B
    assert s.burst_bytes == 65014


def test_burst_is_a_millisecond_of_traffic_at_high_rates():
    s = shape(rate_gbps=800.0, dilation=1.0, frame_bytes=1514)  # 800 Gbit/s: 1 ms = 100 MB
    assert s.burst_bytes == 800e9 / 8 / 1000
    assert s.burst_bytes >= 1514


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
