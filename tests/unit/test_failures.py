"""Link failures: closed form, Monte Carlo, the 100k-GPU sanity figure, and input checks."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest

from emulator.models.profiles import HOURS_PER_YEAR, catalogue
from emulator.models.reliability import expected, fleet, hourly_rates, simulate
from foundation.errors import NetwallError

BIG = {"optical-800g": 3.0}  # one cable per GPU per tier of a non-blocking 3-tier Clos


@pytest.fixture(scope="module")
def cat():
    return catalogue()


def test_100k_gpu_optical_fails_every_6_to_12_hours(cat):
    hours = expected(fleet(100_000, BIG), cat, 7)["optical-800g"]["hours_between_failures"]
    assert 6 <= hours <= 12
    assert hours == pytest.approx(HOURS_PER_YEAR / (300_000 * 3.2e-3))


def test_wide_and_slow_fails_100x_less_and_spares_absorb_it(cat):
    out = expected(fleet(100_000, {"optical-800g": 3.0, "wide-and-slow-800g": 3.0}), cat, 7)
    optical, ws = out["optical-800g"], out["wide-and-slow-800g"]
    assert ws["hours_between_failures"] / optical["hours_between_failures"] == pytest.approx(100)
    assert ws["degradations_per_day"] == pytest.approx(ws["failures_per_day"])
    assert ws["link_down_per_day"] < 1e-100  # 17 channels lost within a day: never
    assert optical["degradations_per_day"] == 0


def test_common_mode_failures_take_wide_and_slow_links_down(cat):
    fl = fleet(100_000, {"wide-and-slow-800g": 3.0})
    ws = expected(fl, cat, 7, common_mode=1.0)["wide-and-slow-800g"]
    assert ws["hours_between_link_down"] == pytest.approx(913.125)
    assert ws["degradations_per_day"] == 0


def test_spares_exhaust_when_channels_fail_fast(cat):
    # No spares: every channel loss is a link-down event.
    bare = dataclasses.replace(cat["wide-and-slow-800g"], spare_lanes=0)
    assert hourly_rates(bare) == (pytest.approx(3.2e-5 / HOURS_PER_YEAR), 0.0)
    # Channel losses every hour on average with 1 spare and a 24 h window: almost all exhaust.
    hot = dataclasses.replace(cat["wide-and-slow-800g"], afr=HOURS_PER_YEAR, spare_lanes=1)
    down, degrade = hourly_rates(hot, repair_hours=24.0)
    assert down == pytest.approx(-math.expm1(-24), rel=1e-6)
    assert down + degrade == pytest.approx(1.0)


def test_monte_carlo_mean_matches_closed_form(cat):
    fl = fleet(100_000, {"optical-800g": 3.0, "copper-800g": 3.0})
    trials, days = 20_000, 7
    mc = simulate(fl, cat, days, trials, seed=1, job_gpus=25_000)
    cf = expected(fl, cat, days, job_gpus=25_000)

    def close(got: float, want: float, events_per_trial: float) -> None:
        # within 4 standard errors of the Poisson count summed over all trials
        assert got == pytest.approx(want, rel=4 / (events_per_trial * trials) ** 0.5)

    for name in ("optical-800g", "copper-800g"):
        row, ref = mc[name], cf[name]
        close(row["link_down_per_day"], ref["link_down_per_day"], ref["link_down_per_day"] * days)
        close(row["interruptions"], ref["interruptions"], ref["interruptions"])
    total = cf["total"]["interruptions"]
    close(mc["total"]["interruptions"], total, total)


def test_job_share_scales_interruptions(cat):
    fl = fleet(100_000, BIG)
    whole = expected(fl, cat, 7)["optical-800g"]
    quarter = expected(fl, cat, 7, job_gpus=25_000)["optical-800g"]
    assert quarter["interruptions"] == pytest.approx(whole["interruptions"] / 4)
    assert whole["hours_between_interruptions"] == pytest.approx(whole["hours_between_failures"])


def test_seed_reproducible_and_percentiles_ordered(cat):
    fl = fleet(100_000, BIG)
    a, b = simulate(fl, cat, 7, 500, seed=7), simulate(fl, cat, 7, 500, seed=7)
    assert a == b
    assert a != simulate(fl, cat, 7, 500, seed=8)
    row = a["optical-800g"]
    assert row["link_down_per_day_p5"] <= row["link_down_per_day"] <= row["link_down_per_day_p95"]


def test_zero_afr_gives_zero(cat):
    cat = {"optical-800g": dataclasses.replace(cat["optical-800g"], afr=0.0)}
    row = simulate(fleet(1000, BIG), cat, 30, 100, seed=0)["optical-800g"]
    assert row["link_down_per_day_p95"] == 0 and row["interruptions"] == 0
    assert row["hours_between_interruptions"] == float("inf")


def test_fast_for_a_100k_gpu_week(cat):
    fl = fleet(100_000, {"optical-800g": 3.0, "wide-and-slow-800g": 3.0, "copper-800g": 3.0})
    start = time.perf_counter()
    simulate(fl, cat, 7, 1000, seed=0)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: fleet(0, BIG), "gpus"),
        (lambda c: fleet(-5, BIG), "gpus"),
        (lambda c: fleet(8, {"optical-800g": -1.0}), "must be 0 to 1000"),
        (lambda c: fleet(8, {"optical-800g": math.nan}), "must be 0 to 1000"),
        (lambda c: fleet(10**15, BIG), "gpus must be an integer from 1 to"),
        (lambda c: expected(fleet(8, BIG), c, 1e9), "days must be > 0 and <= 36525"),
        (lambda c: simulate(fleet(8, BIG), c, 7, 100_000_000, seed=0), "trials"),
        (lambda c: simulate(fleet(8, BIG), c, 7, 10, seed=-1), "seed must be an integer"),
        (lambda c: simulate(fleet(8, BIG), c, 7, 10, seed=2**64), "seed"),
        (lambda c: simulate(fleet(100_000_000, {"optical-800g": 1000.0}),
                            {"optical-800g": dataclasses.replace(c["optical-800g"], afr=1e6)},
                            36_525, 10, seed=0), "times a trial; use fewer GPUs"),
        (lambda c: expected(fleet(8, BIG), c, -1), "days"),
        (lambda c: simulate(fleet(8, BIG), c, 7, 0, seed=0), "trials"),
        (lambda c: simulate(fleet(8, BIG), c, 7, 10, seed=0, job_gpus=9), "job GPUs"),
        (lambda c: expected(fleet(8, {"nope": 1.0}), c, 7), "unknown link profile 'nope'"),
        (lambda c: expected(fleet(8, BIG), c, 7, repair_hours=-1), "repair"),
        (lambda c: expected(fleet(8, BIG), c, 7, common_mode=2), "common-mode"),
    ],
)
def test_bad_inputs_are_one_line_errors(cat, call, match):
    with pytest.raises(NetwallError, match=match) as err:
        call(cat)
    assert "\n" not in str(err.value)
