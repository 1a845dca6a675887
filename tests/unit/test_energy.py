"""Link energy: hand-computed sums with real and fake profiles, and the no-double-count split."""

from __future__ import annotations

import dataclasses

import pytest

from emulator.models.energy import joules_per_bit, link_energy, run_energy
from emulator.models.profiles import catalogue
from foundation.errors import NetwallError

WS_VS_OPTICAL = ("wide-and-slow-800g", "optical-800g")


@pytest.fixture(scope="module")
def cat():
    return catalogue()


@pytest.fixture
def fake(cat):
    """1 W per end, 100 Gb/s, 20 pJ/bit over the link (2 x 1 W / 100 Gb/s)."""
    return dataclasses.replace(
        cat["optical-800g"], name="fake", rate_gbps=100.0, watts_per_end=1.0, pj_per_bit=20.0
    )


def test_shipped_pj_per_bit_is_both_ends_over_one_direction(cat):
    for p in cat.values():
        assert p.pj_per_bit == pytest.approx(2 * p.watts_per_end / p.rate_gbps * 1e3)
        assert joules_per_bit(p) == pytest.approx(p.watts_per_end / (p.rate_gbps * 1e9))


def test_fake_profile_by_hand(fake):
    # 2 links, 1 s: capacity 2 links x 2 directions x 100e9 = 4e11 bits; 1e11 bits = 25% busy.
    static, dynamic = link_energy(fake, 1e11, 1.0, links=2)
    assert dynamic == pytest.approx(1e11 * 10e-12)  # 1.0 J
    assert static == pytest.approx(2 * 2 * 1.0 * 1.0 * 0.75)  # 3.0 J
    assert static + dynamic == pytest.approx(4.0)  # constant power: 4 ends x 1 W x 1 s


def test_real_optical_by_hand(cat):
    # 3 optical-800g cables for 2 ms carrying 1.6e9 bits (capacity 3 x 2 x 800e9 x 2e-3 = 9.6e9).
    optical = cat["optical-800g"]
    watts = optical.watts_per_end
    static, dynamic = link_energy(optical, 1.6e9, 2e-3, links=3)
    assert dynamic == pytest.approx(1.6e9 * optical.pj_per_bit / 2 * 1e-12)  # one direction's
    assert static == pytest.approx(3 * 2 * watts * 2e-3 * (1 - 1.6e9 / 9.6e9))
    assert static + dynamic == pytest.approx(3 * 2 * watts * 2e-3)


def test_run_energy_sums_profiles_and_per_gb(cat):
    bits = {"copper-800g": 8e9, "optical-800g": 2e9}
    counts = {"copper-800g": 8, "optical-800g": 2, "wide-and-slow-800g": 1}
    report = run_energy(bits, counts, cat, 0.01, 500_000_000)
    w = {name: cat[name].watts_per_end for name in counts}
    pj = {name: cat[name].pj_per_bit / 2 * 1e-12 for name in counts}  # per bit, one direction
    copper = 8 * 2 * w["copper-800g"] * 0.01 * (1 - 8e9 / 1.28e11) + 8e9 * pj["copper-800g"]
    optical = 2 * 2 * w["optical-800g"] * 0.01 * (1 - 2e9 / 3.2e10) + 2e9 * pj["optical-800g"]
    idle_ws = 1 * 2 * w["wide-and-slow-800g"] * 0.01
    assert report.joules_by_profile["copper-800g"] == pytest.approx(copper)
    assert report.joules_by_profile["optical-800g"] == pytest.approx(optical)
    assert report.joules_by_profile["wide-and-slow-800g"] == pytest.approx(idle_ws)
    assert report.total_joules == pytest.approx(copper + optical + idle_ws)
    assert report.static_joules + report.dynamic_joules == pytest.approx(report.total_joules)
    assert report.joules_per_gb == pytest.approx(report.total_joules / 0.5)


def test_zero_traffic_is_static_only(cat):
    report = run_energy({}, {"optical-800g": 4}, cat, 1.0, 1)
    assert report.dynamic_joules == 0
    assert report.static_joules == pytest.approx(4 * 2 * cat["optical-800g"].watts_per_end)


def test_doubling_bits_doubles_dynamic(fake):
    _, once = link_energy(fake, 1e10, 1.0)
    _, twice = link_energy(fake, 2e10, 1.0)
    assert twice == pytest.approx(2 * once)


def test_wide_and_slow_beats_optical_for_the_same_traffic(cat):
    ws, optical = (run_energy({n: 4e9}, {n: 4}, cat, 1e-3, 1 << 20) for n in WS_VS_OPTICAL)
    assert ws.total_joules < optical.total_joules
    assert ws.dynamic_joules < optical.dynamic_joules


@pytest.mark.parametrize(
    ("bits", "counts", "seconds", "size", "match"),
    [
        ({"optical-800g": 1e9}, {}, 1.0, 1, "no such link"),
        ({}, {"nope": 1}, 1.0, 1, "unknown link profile 'nope'"),
        ({}, {"optical-800g": 1}, -1.0, 1, ">= 0"),
        ({}, {"optical-800g": 1}, 1.0, 0, "payload"),
        ({"optical-800g": 1e13}, {"optical-800g": 1}, 1.0, 1, "exceed"),
    ],
)
def test_bad_inputs_are_one_line_errors(cat, bits, counts, seconds, size, match):
    with pytest.raises(NetwallError, match=match) as err:
        run_energy(bits, counts, cat, seconds, size)
    assert "\n" not in str(err.value)
