"""NCCL's per-call channel count and the bound on additive models in bench/validation
(issue 15's hypothesis, tested on the model alone by `--channels`)."""

import pytest

from bench import validation
from emulator.models.metrics import BUSBW_FACTOR
from emulator.models.profiles import catalogue


@pytest.mark.parametrize(("size", "protocol", "ranks", "channels"), [
    (64 << 10, "Simple", 8, 2),  # 512 threads x 64 B = 32 KiB a channel
    (512 << 10, "Simple", 8, 16),
    ((768 << 10) - 1, "Simple", 8, 23),
    (768 << 10, "Simple", 8, 24),  # all 24 from 24 x 32 KiB
    (1 << 30, "Simple", 8, 24),
    (64 << 10, "LL", 8, 2),  # LL's 8 B a thread times 8 ranks: as Simple at 8 ranks
    (64 << 10, "LL", 2, 8),  # ... and four times as many channels at 2 ranks
    (64 << 10, "LL128", 8, 12),  # 640 threads x 8 B = 5 KiB a channel
    (120 << 10, "LL128", 8, 24),
    (1, "Simple", 8, 1),  # never fewer than one
])
def test_nccl_gives_a_small_call_fewer_channels(size, protocol, ranks, channels):
    assert validation.nccl_channels(size, protocol, ranks) == channels


def test_a_step_takes_at_least_its_bytes_over_the_calls_channels():
    steps = {(64 << 10, "Simple"): [(1e-6, 8192)] * 14}  # 2 channels at 64 KiB
    slow = validation._link_times(steps, 8, 1.0)[(64 << 10, "Simple")]
    assert slow == (pytest.approx(14 * 8192 / 2e9), 14)
    fast = validation._link_times(steps, 8, 1000.0)[(64 << 10, "Simple")]
    assert fast == (pytest.approx(14e-6), 14)
    assert validation._link_times(steps, 8, 0.0)[(64 << 10, "Simple")] == fast


def _table(rows):
    return validation.Table("synthetic", "https://example.org", "check", "h100", "nvlink4",
                            "star:8", "allgather", rows)


def test_the_bound_is_met_by_a_curve_that_is_a_fixed_cost_plus_bytes_over_a_bandwidth():
    busbw = 300.0
    factor = BUSBW_FACTOR["allgather"](8)
    rows = {s: (10.0 + s * factor / busbw / 1e3, 0.0) for s in (1 << 20, 8 << 20, 64 << 20)}
    need, small, large = validation.additive_bound(_table(rows))
    assert 0 < need < busbw
    assert small < large


def test_a_larger_call_much_faster_than_a_smaller_one_cannot_be_followed():
    rows = {1 << 20: (100.0, 0.0), 2 << 20: (50.0, 0.0)}
    assert validation.additive_bound(_table(rows)) == (float("inf"), 1 << 20, 2 << 20)


def test_the_published_allgather_needs_more_than_nvlink_carries_where_all_channels_run():
    """Why NCCL's channel count cannot bring it within 10%: from 768 KiB every protocol runs
    all 24 channels, and there no fixed cost plus a bandwidth up to NVLink 4's line rate
    follows the published all-gather."""
    (allgather,) = [t for t in validation.load()
                    if t.name == "h100x8-allgather-ring-8B-8G-together"]
    full = max(validation.H100_CHANNELS * validation.channel_bytes(p, 8)
               for p in validation.NCCL_RING_THREADS)
    assert full == 768 << 10
    line_gbytes = catalogue()["nvlink4"].rate_gbps / 8
    assert validation.additive_bound(allgather, least=full)[0] > line_gbytes


def test_a_channel_bandwidth_searched_with_none_fits_at_least_as_well():
    tables = validation.load()
    without = validation.fit(tables)
    searched = validation.fit(tables, channel_gbps=(0.0, 15.0, 30.0))
    assert searched["channel_gbps"] in (0.0, 15.0, 30.0)
    assert searched["worst_error"] <= without["worst_error"]
