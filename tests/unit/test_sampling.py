"""The sampled proof (emulator.models.sampling): how many probe calls the statistics allow,
and the interval the verdict states."""

from __future__ import annotations

import math
import random

import pytest

from emulator.models import sampling
from emulator.models.dilation import host_error


def test_call_times_of_back_to_back_calls():
    assert sampling.call_times(10.0, [12.0, 11.0, 13.5]) == [1.0, 1.0, 1.5]


def test_relative_spread():
    assert sampling.relative_spread([1.0, 1.0, 1.0]) == 0.0
    assert sampling.relative_spread([0.9, 1.1]) == pytest.approx(math.sqrt(0.02) / 1.0)
    assert sampling.relative_spread([1.0]) == math.inf  # nothing to learn a spread from


def test_steady_calls_need_one_probe_call_and_noisy_ones_the_whole_batch():
    assert sampling.probe_calls(0.001, 5, 1000, 2000, 0.02) == 1
    assert sampling.probe_calls(0.02, 5, 1000, 2000, 0.02) == 5
    middle = sampling.probe_calls(0.0035, 10, 1000, 2000, 0.02)
    assert 1 < middle < 10
    # The count chosen is the least that keeps the 95% half-width within half the tolerance.
    def half_width(probed: int) -> float:
        return sampling.t95(9 + probed - 1) * sampling.share_error(0.0035, 10, probed, 1000, 2000)

    assert half_width(middle) <= 0.01 < half_width(middle - 1)


def test_a_single_timed_call_is_probed_whole():
    assert sampling.probe_calls(math.inf, 1, 1000, 2000, 0.02) == 1
    assert sampling.probe_calls(sampling.relative_spread([1.0]), 1, 1000, 2000, 0.02) == 1


def test_the_interval_covers_the_true_share_as_often_as_it_says():
    """Simulated host: T = 100 us, the host adds 1% at D (0.5% at 2D), calls vary by 0.3%.
    The stated 95% half-width must cover the true share in about 95% of batches."""
    rng = random.Random(7)
    d, probe_d, true_t, share = 1000.0, 2000.0, 100e-6, 0.01
    covered, trials = 0, 2000
    for _ in range(trials):
        timed = [true_t * (1 + share) * rng.gauss(1, 0.003) for _ in range(5)]
        k = sampling.probe_calls(sampling.relative_spread(timed), 5, d, probe_d, 0.02)
        probe = [true_t * (1 + share / 2) * rng.gauss(1, 0.003) for _ in range(k)]
        found = sampling.sample(timed, probe, d, probe_d)
        estimate = host_error(sum(timed) / 5, d, sum(probe) / k, probe_d)
        covered += abs(estimate - share) <= found.margin
    assert 0.90 <= covered / trials <= 0.995


def test_t_quantiles():
    assert sampling.t95(1) == 12.706 and sampling.t95(4) == 2.776
    assert sampling.t95(30) == 2.042 and sampling.t95(1000) == 1.96


def test_the_sample_describes_itself():
    whole = sampling.Sample(probed=5, timed=5, spread=0.01, margin=0.004)
    assert whole.describe() == "probed on the whole batch, host share known to within 0.4% (95%)"
    part = sampling.Sample(probed=1, timed=5, spread=0.001, margin=0.003)
    assert part.describe().startswith("probed on 1 of 5 calls")
