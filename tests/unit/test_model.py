"""Tests for emulator.models.alphabeta: the alpha-beta model evaluated on real topologies
and profiles."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emulator.models.alphabeta import model_time_s, ring_allreduce_time_s, route_latency_s
from emulator.models.metrics import BUSBW_FACTOR, algbw_gbps, busbw_gbps
from emulator.models.profiles import catalogue
from topologies import parse
from traffic.schedule import ring_allreduce


@pytest.fixture(scope="module")
def cat():
    return catalogue()


def hand_delay_s(profile, length_m: float) -> float:
    """One traversal: FEC/DSP latency plus propagation, in seconds."""
    return (profile.fec_delay_ns + profile.delay_ns_per_m * length_m) * 1e-9


def test_closed_form_by_hand():
    # 4 ranks, 1 MB, 1 us per step, 100 Gb/s: 6 us + 1.5 * 8e6 bits / 1e11 = 6 us + 120 us.
    assert ring_allreduce_time_s(4, 1_000_000, 1e-6, 100.0) == pytest.approx(126e-6)
    assert ring_allreduce_time_s(2, 8, 0.0, 1.0) == pytest.approx(64e-9)


@pytest.mark.parametrize(
    "spec,hops,size",
    [("pair", 1, 4 * 2 * 1000), ("ring:4", 1, 1 << 20), ("ring:5", 1, 4 * 5 * 777),
     ("star:8", 2, 16 << 20), ("star:3", 2, 4 * 3 * 1000)],
)
@pytest.mark.parametrize("link", ["copper-800g", "optical-1.6t", "wide-and-slow-800g"])
def test_contention_free_ring_matches_the_closed_form(cat, spec, hops, size, link):
    topo = parse(spec, link)
    profile = cat[link]
    n = len(topo.gpus)
    assert size % (4 * n) == 0  # even segments, so the closed form is exact
    alpha = hops * hand_delay_s(profile, 1.0)  # default GPU cable length is 1 m
    want = ring_allreduce_time_s(n, size, alpha, profile.rate_gbps)
    got = model_time_s(ring_allreduce(n, size), topo, cat)
    assert got == pytest.approx(want, rel=1e-12)
    # The same, spelt out: 2(n-1) alpha + 2(n-1)/n S*8/B.
    by_hand = 2 * (n - 1) * alpha + 2 * (n - 1) / n * size * 8 / (profile.rate_gbps * 1e9)
    assert got == pytest.approx(by_hand, rel=1e-12)


def test_cable_length_enters_the_latency(cat):
    short = parse("ring:4", "optical-800g", length_m=1.0)
    long = parse("ring:4", "optical-800g", length_m=100.0)
    profile = cat["optical-800g"]
    assert route_latency_s(long, cat, 0, 1) == pytest.approx(hand_delay_s(profile, 100.0))
    schedule = ring_allreduce(4, 4096)
    extra = 2 * 3 * (hand_delay_s(profile, 100.0) - hand_delay_s(profile, 1.0))
    assert model_time_s(schedule, long, cat) - model_time_s(schedule, short, cat) == (
        pytest.approx(extra, rel=1e-9))


def test_route_latency_sums_hops(cat):
    copper, optical = cat["copper-800g"], cat["optical-800g"]
    ring = parse("ring:6", "copper-800g")
    for dst, hops in [(1, 1), (2, 2), (3, 3), (4, 2), (5, 1)]:
        assert route_latency_s(ring, cat, 0, dst) == pytest.approx(hops * hand_delay_s(copper, 1))
    assert route_latency_s(ring, cat, 2, 2) == 0.0

    star = parse("star:4", "copper-800g")
    assert route_latency_s(star, cat, 0, 3) == pytest.approx(2 * hand_delay_s(copper, 1))

    racks = parse("racks:2x4", "copper-800g", spine_link="optical-800g", spine_length_m=30.0)
    same_rack = 2 * hand_delay_s(copper, 1.0)
    other_rack = 2 * hand_delay_s(copper, 1.0) + 2 * hand_delay_s(optical, 30.0)
    assert route_latency_s(racks, cat, 0, 3) == pytest.approx(same_rack)
    assert route_latency_s(racks, cat, 1, 6) == pytest.approx(other_rack)
    assert route_latency_s(racks, cat, 6, 1) == pytest.approx(other_rack)


def test_racks_with_a_slower_spine_charge_the_spine(cat):
    gpu_link, spine_link = "copper-1.6t", "optical-800g"
    copper, spine = cat[gpu_link], cat[spine_link]
    assert spine.rate_gbps < copper.rate_gbps  # the premise: the spine is the bottleneck
    topo = parse("racks:2x4", gpu_link, spine_link=spine_link)
    n, size = 8, 8 << 20
    schedule = ring_allreduce(n, size)
    got = model_time_s(schedule, topo, cat)

    segment = size / n
    # Every step has a move crossing the spine (3 -> 4 and 7 -> 0): four hops, 20 m spine
    # cables by default, and the spine link's rate sets the step's bandwidth term.
    alpha = 2 * hand_delay_s(copper, 1.0) + 2 * hand_delay_s(spine, 20.0)
    beta = segment * 8 / (spine.rate_gbps * 1e9)
    assert got == pytest.approx(2 * (n - 1) * (alpha + beta), rel=1e-12)

    all_copper = ring_allreduce_time_s(n, size, 2 * hand_delay_s(copper, 1.0), copper.rate_gbps)
    assert got > all_copper
    # The bandwidth term alone is charged at the spine's rate, not the GPU links'.
    assert got - 2 * (n - 1) * alpha == pytest.approx(
        2 * (n - 1) / n * size * 8 / (spine.rate_gbps * 1e9), rel=1e-9)


def test_sparse_ring_charges_only_the_moves_present(cat):
    # Two elements over eight ranks: six of eight segments are empty, yet every step still
    # moves one non-empty segment (one element) over one one-hop link.
    topo = parse("ring:8", "copper-800g")
    schedule = ring_allreduce(8, 8)
    alpha = hand_delay_s(cat["copper-800g"], 1.0)
    assert all(len(step) == 2 for step in schedule.steps)
    want = 14 * (alpha + 4 * 8 / (cat["copper-800g"].rate_gbps * 1e9))
    assert model_time_s(schedule, topo, cat) == pytest.approx(want, rel=1e-12)


def test_empty_steps_cost_nothing(cat):
    topo = parse("ring:4", "copper-800g")
    one = ring_allreduce(4, 64)
    padded = replace(one, steps=((),) + one.steps + ((),))
    assert model_time_s(padded, topo, cat) == model_time_s(one, topo, cat)
    assert model_time_s(replace(one, steps=()), topo, cat) == 0.0


# --- metrics (nccl-tests' algbw / busbw) ------------------------------------------------------


def test_algbw_is_bytes_per_second_in_gb():
    assert algbw_gbps(1_000_000_000, 1.0) == pytest.approx(1.0)
    assert algbw_gbps(16 << 20, 1e-3) == pytest.approx((16 << 20) / 1e-3 / 1e9)


@pytest.mark.parametrize("n", [2, 4, 8, 64])
def test_busbw_factors_follow_nccl_tests(n):
    size, t = 1 << 24, 2e-3
    alg = size / t / 1e9
    assert busbw_gbps("allreduce", n, size, t) == pytest.approx(alg * 2 * (n - 1) / n)
    for name in ("reducescatter", "allgather", "alltoall"):
        assert busbw_gbps(name, n, size, t) == pytest.approx(alg * (n - 1) / n)
    for name in ("broadcast", "reduce", "sendrecv"):
        assert busbw_gbps(name, n, size, t) == pytest.approx(alg)


def test_allreduce_busbw_of_the_model_is_the_link_rate_without_latency():
    # With alpha = 0 the ring moves 2(n-1)/n S at B, so busbw equals B (in GB/s).
    n, size, rate = 8, 1 << 26, 800.0
    t = ring_allreduce_time_s(n, size, 0.0, rate)
    assert busbw_gbps("allreduce", n, size, t) == pytest.approx(rate / 8)


def test_unknown_collective_has_no_factor():
    assert "allreduce" in BUSBW_FACTOR
    with pytest.raises(KeyError):
        busbw_gbps("gather", 4, 1024, 1.0)
