"""Faults as data: parsing, timelines, and what each technology does when lanes fail."""

from __future__ import annotations

import pytest

from emulator.models.faults import link_state, parse, timeline
from emulator.models.profiles import catalogue
from foundation.errors import NetwallError


@pytest.fixture(scope="module")
def cat():
    return catalogue()


def test_parse_every_kind():
    down = parse("down:gpu0--nvs0@50us+200us")
    assert (down.kind, down.link) == ("down", ("gpu0", "nvs0"))
    assert (down.at_s, down.duration_s) == (pytest.approx(50e-6), pytest.approx(200e-6))
    assert parse("channels=56:gpu0--gpu1@0").channels == 56
    assert parse("channels=56:gpu0--gpu1@0").duration_s is None
    assert parse("ber=1e-7:a--b@1ms+2s").ber == 1e-7
    flap = parse("flap=3:a--b@0+20us")
    assert (flap.count, flap.duration_s) == (3, pytest.approx(20e-6))


@pytest.mark.parametrize("spec, words", [
    ("melt:a--b@0", "unknown kind 'melt'"),
    ("down:a-b@0", "use KIND"),
    ("down:a--b@soon", "use KIND"),
    ("down:a--b@5parsecs", "the start must be a time"),
    ("channels:a--b@0", "needs a value"),
    ("channels=0:a--b@0", "bad value '0'"),
    ("ber=2:a--b@0", "bad value '2'"),
    ("flap=2:a--b@0", "needs a duration"),
    ("down=3:a--b@0", "takes no value"),
])
def test_bad_faults_are_one_line(spec, words):
    with pytest.raises(NetwallError) as info:
        parse(spec)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_timeline_orders_starts_and_ends_and_unrolls_flaps():
    events = timeline([parse("flap=2:a--b@10us+5us"), parse("down:c--d@0+12us")])
    got = [(round(e.t_s * 1e6, 6), e.fault.kind, e.active) for e in events]
    assert got == [(0, "down", True), (10, "flap", True), (12, "down", False),
                   (15, "flap", False), (20, "flap", True), (25, "flap", False)]


def test_one_lane_takes_a_narrow_and_fast_link_down(cat):
    for name in ("copper-800g", "optical-800g"):
        state = link_state(cat[name], [parse("channels=1:a--b@0")])
        assert state.rate_gbps == 0 and "narrow-and-fast" in state.note


def test_wide_and_slow_spares_absorb_then_capacity_falls_by_one_channel_each(cat):
    p = cat["wide-and-slow-800g"]
    within = link_state(p, [parse(f"channels={p.spare_lanes}:a--b@0")])
    assert within.rate_gbps == p.rate_gbps
    past = link_state(p, [parse(f"channels={p.spare_lanes + 40}:a--b@0")])
    assert past.rate_gbps == pytest.approx(p.rate_gbps * (p.lanes - 40) / p.lanes)
    gone = link_state(p, [parse(f"channels={p.lanes + p.spare_lanes}:a--b@0")])
    assert gone.rate_gbps == 0


def test_down_and_ber_states(cat):
    p = cat["optical-800g"]
    assert link_state(p, [parse("down:a--b@0")]).rate_gbps == 0
    noisy = link_state(p, [parse("ber=1e-6:a--b@0")])
    assert noisy.rate_gbps == p.rate_gbps and noisy.ber == 1e-6
    assert link_state(p, []).ber == p.post_fec_ber
