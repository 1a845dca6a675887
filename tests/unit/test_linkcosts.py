"""What a cluster's links cost besides time (emulator/models/linkcosts.py): power per GPU,
failures per day at a fleet size, what one failure does."""

from __future__ import annotations

import pytest

from emulator.models.linkcosts import cable_counts, failures_per_day, one_failure, power_per_gpu_w
from emulator.models.profiles import HOURS_PER_YEAR, catalogue, with_bundles
from topologies import parse

CAT = with_bundles(catalogue(), ("9xoptical-800g", "9xwide-and-slow-800g", "2xoptical-800g"))


def test_power_per_gpu_counts_every_cable_at_both_ends():
    topo = parse("cluster:2x4", "nvlink5", "optical-800g")
    assert cable_counts(topo) == {"2xoptical-800g": 4, "optical-800g": 8, "nvlink5": 8}
    nv, op = CAT["nvlink5"].watts_per_end, CAT["optical-800g"].watts_per_end
    by_hand = (8 * 2 * nv + 8 * 2 * op + 4 * 2 * 2 * op) / 8  # uplinks: 2 cables each
    assert power_per_gpu_w(topo, CAT) == pytest.approx(by_hand)
    optical = parse("cluster:1x8", "9xoptical-800g", "optical-800g", layout="gpus=4")
    assert power_per_gpu_w(optical, CAT) == pytest.approx((8 * 2 * 9 * op + 16 * 2 * op) / 8)


def test_failures_scale_with_the_fleet_and_only_narrow_links_stall():
    copper = parse("cluster:2x4", "nvlink5", "optical-800g")
    events, stalls = failures_per_day(copper, CAT, 100_000)
    per_link_day = 24 / HOURS_PER_YEAR
    nics = 100_000 * (8 + 4 * 2) / 8 * CAT["optical-800g"].afr * per_link_day
    up = 100_000 * CAT["nvlink5"].afr * per_link_day
    assert events == pytest.approx(nics + up) and stalls == pytest.approx(events)
    assert failures_per_day(copper, CAT, 200_000)[0] == pytest.approx(2 * events)
    wide = parse("cluster:1x8", "9xwide-and-slow-800g", "optical-800g", layout="gpus=4")
    events, stalls = failures_per_day(wide, CAT, 100_000)
    optics = 100_000 * (8 + 8) / 8 * CAT["optical-800g"].afr * per_link_day  # 8 rails
    assert stalls == pytest.approx(optics, rel=1e-6)  # spares absorb every channel loss
    assert events > stalls
    optical = parse("cluster:1x8", "9xoptical-800g", "optical-800g", layout="gpus=4")
    assert failures_per_day(optical, CAT, 100_000)[1] > 5 * stalls  # 9 optics per GPU


def test_one_failure():
    assert one_failure(CAT["nvlink5"]) == "stall"
    assert one_failure(CAT["9xoptical-800g"]) == "stall"
    assert one_failure(CAT["wide-and-slow-800g"]) == "-0%"  # a spare takes the channel over
    assert one_failure(CAT["9xwide-and-slow-800g"]) == "-0%"
