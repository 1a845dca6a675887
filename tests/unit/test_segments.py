"""Tests for topologies.segments: the one switch-segment search plan and validation share."""

from __future__ import annotations

from pathlib import Path

import pytest

from topologies import SCALE_OUT, Link, Topology, parse, segment, switch_segments
from topologies.graph import tier_of

TWO_TIER = str(Path(__file__).resolve().parents[2] / "topologies/examples/two-tier.yaml")
SPECS = ["pair", "ring:6", "mesh:4", "star:8", "racks:2x4", "racks:3x2", TWO_TIER]


def topo_of(gpus, switches, pairs) -> Topology:
    links = tuple(Link(a, b, "copper-800g", 1.0, tier_of(a in gpus, b in gpus))
                  for a, b in pairs)
    return Topology("t", tuple(gpus), tuple(switches), links)


def test_star_is_one_segment_of_one_switch():
    star = parse("star:8", "copper-800g")
    assert segment(star, "nvs0") == {"nvs0": None}
    assert switch_segments(star) == {"nvs0": frozenset({"nvs0"})}


def test_racks_are_one_segment_reached_through_the_uplinks():
    racks = parse("racks:2x4", "copper-800g")
    up0, up1 = (racks.links.index(link) for link in racks.links if link.tier == SCALE_OUT)
    assert segment(racks, "rack0") == {"rack0": None, "spine0": up0, "rack1": up0}
    assert segment(racks, "rack1") == {"rack1": None, "spine0": up1, "rack0": up1}
    assert segment(racks, "spine0") == {"spine0": None, "rack0": up0, "rack1": up1}
    everything = frozenset({"rack0", "rack1", "spine0"})
    assert switch_segments(racks) == dict.fromkeys(everything, everything)


def test_two_tier_example():
    topo = parse(TWO_TIER, "copper-800g")
    trunk = next(i for i, link in enumerate(topo.links) if link.tier == SCALE_OUT)
    assert segment(topo, "sw0") == {"sw0": None, "sw1": trunk}
    assert segment(topo, "sw1") == {"sw1": None, "sw0": trunk}
    assert set(switch_segments(topo)["sw0"]) == {"sw0", "sw1"}


def test_direct_topologies_have_no_segments():
    for spec in ("pair", "ring:6", "mesh:4"):
        assert switch_segments(parse(spec, "copper-800g")) == {}


def test_gpus_do_not_bridge_segments():
    # gpu0 and gpu1 each hang off both switches, yet the switches stay two segments.
    topo = topo_of(("gpu0", "gpu1"), ("sw0", "sw1"),
                   [("gpu0", "sw0"), ("gpu1", "sw0"), ("gpu0", "sw1"), ("gpu1", "sw1")])
    assert segment(topo, "sw0") == {"sw0": None}
    assert switch_segments(topo) == {"sw0": frozenset({"sw0"}), "sw1": frozenset({"sw1"})}


def test_a_chain_is_reached_through_the_first_link_only():
    topo = topo_of(("gpu0", "gpu1"), ("a", "b", "c", "d"),
                   [("gpu0", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "gpu1")])
    assert segment(topo, "a") == {"a": None, "b": 1, "c": 1, "d": 1}
    assert segment(topo, "c") == {"c": None, "d": 3, "b": 2, "a": 2}


def test_the_search_ends_on_a_switch_loop():
    # Validation rejects this, but the search must not spin before it gets the chance.
    topo = topo_of(("gpu0", "gpu1"), ("sw0", "sw1", "sw2"),
                   [("gpu0", "sw0"), ("gpu1", "sw1"), ("sw0", "sw1"), ("sw1", "sw2"),
                    ("sw2", "sw0")])
    assert set(segment(topo, "sw0")) == {"sw0", "sw1", "sw2"}


@pytest.mark.parametrize("spec", SPECS)
def test_segments_partition_the_switches_along_switch_links(spec):
    topo = parse(spec, "copper-800g")
    segments = switch_segments(topo)
    assert set(segments) == set(topo.switches)
    for switch in topo.switches:
        found = segment(topo, switch)
        assert set(found) == segments[switch]
        assert next(iter(found)) == switch and found[switch] is None
        for other, link in found.items():
            if other != switch:  # a port of `switch` leading to another switch
                assert link in topo.links_of(switch)
                assert not topo.is_gpu(topo.other(link, switch))
    for link in topo.links:  # a switch-switch link never joins two segments
        if link.tier == SCALE_OUT:
            assert segments[link.a] is segments[link.b]
