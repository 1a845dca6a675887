"""Tests for emulator.models.accounting: which bytes the ring all-reduce puts on which link."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from emulator.models.accounting import link_loads, wire_loads
from topologies import parse
from traffic.header import HEADER, frames_for
from traffic.schedule import ring_allreduce, segments

OVERHEAD = 14 + 20 + 8 + HEADER.size  # Ether + IPv4 + UDP + Netwall header, per frame


def all_moves(schedule):
    return [m for step in schedule.steps for m in step]


def test_star_uplinks_and_downlinks_carry_two_n_minus_one_over_n():
    n, size = 4, 1 << 20
    topo = parse("star:4", "copper-800g")
    loads = link_loads(topo, all_moves(ring_allreduce(n, size)))
    share = 2 * (n - 1) * size // n  # size divides into n segments of whole elements
    for r, gpu in enumerate(topo.gpus):
        (link,) = topo.links_of(gpu)
        assert loads[(link, gpu)] == share  # uplink: GPU -> switch
        assert loads[(link, "nvs0")] == share  # downlink: switch -> GPU
        assert topo.links[link].a == gpu and r == topo.rank(gpu)
    assert set(loads) == {(link, end) for link in range(n) for end in (f"gpu{link}", "nvs0")}
    assert sum(loads.values()) == 2 * n * share


def test_ring_uses_each_link_in_one_direction_only():
    n, size = 4, 4 * 4 * 1000
    topo = parse("ring:4", "copper-800g")
    loads = link_loads(topo, all_moves(ring_allreduce(n, size)))
    share = 2 * (n - 1) * size // n
    for i, link in enumerate(topo.links):
        # ring:N links are gpu_i -- gpu_(i+1); rank i always sends to rank i+1.
        assert (link.a, link.b) == (f"gpu{i}", f"gpu{(i + 1) % n}")
        assert loads[(i, link.a)] == share
        assert loads[(i, link.b)] == 0
        assert (i, link.b) not in loads
    assert len(loads) == n


def test_racks_spine_links_carry_one_segment_per_step_and_direction():
    n, size = 4, 4 * 4 * 25
    topo = parse("racks:2x2", "copper-800g")
    schedule = ring_allreduce(n, size)
    segs = segments(size, n)
    spine_links = [i for i, link in enumerate(topo.links) if "spine0" in (link.a, link.b)]
    assert len(spine_links) == 2
    for step in schedule.steps:
        loads = link_loads(topo, step)
        # The ring crosses racks twice per step: gpu1 -> gpu2 and gpu3 -> gpu0.
        crossing = {m.src: m.length for m in step if (m.src, m.dst) in ((1, 2), (3, 0))}
        assert set(crossing) == {1, 3}
        for link in spine_links:
            rack = topo.other(link, "spine0")
            up, down = loads[(link, rack)], loads[(link, "spine0")]
            outbound = crossing[1] if rack == "rack0" else crossing[3]
            inbound = crossing[3] if rack == "rack0" else crossing[1]
            assert up == outbound
            assert down == inbound
            assert up in {length for _, length in segs}  # exactly one segment's bytes
            assert down in {length for _, length in segs}
        # Within a rack, the local move never reaches the spine.
        for m in step:
            if (m.src, m.dst) in ((0, 1), (2, 3)):
                rack_link = topo.links_of(f"gpu{m.src}")[0]
                assert loads[(rack_link, f"gpu{m.src}")] == m.length


def test_link_loads_of_no_moves_is_empty():
    assert link_loads(parse("star:4", "copper-800g"), []) == Counter()


@pytest.mark.parametrize("payload", [1000, 4096, 64940])
def test_wire_loads_add_framing_per_move(payload):
    n, size = 4, 4 * 4 * 3001  # 12004 bytes per segment
    topo = parse("star:4", "copper-800g")
    schedule = ring_allreduce(n, size)
    seg = size // n
    # Each move: its frames, and one header-only ACK frame back along the reverse route.
    per_move = seg + frames_for(seg, payload) * OVERHEAD + OVERHEAD
    assert frames_for(seg, payload) == -(-seg // payload)
    wire = wire_loads(topo, schedule, payload)
    for gpu in topo.gpus:
        (link,) = topo.links_of(gpu)
        assert wire[(link, gpu)] == 2 * (n - 1) * per_move
        assert wire[(link, "nvs0")] == 2 * (n - 1) * per_move
    payload_only = link_loads(topo, all_moves(schedule))
    assert set(wire) == set(payload_only)
    assert all(wire[k] > payload_only[k] for k in wire)


def test_wire_loads_on_a_multi_hop_route_count_every_hop():
    # ring:6 with a hand-built move from rank 0 to rank 3 (three hops) carried via neighbours.
    topo = parse("ring:6", "copper-800g")
    base = ring_allreduce(6, 4 * 6)
    move = replace(base.steps[0][0], src=0, dst=3, length=100)
    schedule = replace(base, steps=((move,),))
    wire = wire_loads(topo, schedule, 64940)
    # Three hops out with the data, three hops back with the ACK.
    assert len(wire) == 6
    forward = {k: v for k, v in wire.items() if v > OVERHEAD}
    assert len(forward) == 3 and all(v == 100 + OVERHEAD for v in forward.values())
    assert all(v == OVERHEAD for k, v in wire.items() if k not in forward)
    assert sum(link_loads(topo, [move]).values()) == 300
