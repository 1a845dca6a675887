"""Partitioning a cluster over hosts, and the NIC check of such a plan: pure, no root."""

from __future__ import annotations

import pytest

from emulator.models.partition import (
    VXLAN_OVERHEAD,
    check_nic,
    min_dilation,
    nic_load_gbps,
    partition,
)
from emulator.models.plan import FRAME_BYTES
from emulator.models.profiles import catalogue
from foundation.errors import NetwallError
from topologies import parse

CAT = catalogue()


def topo(spec: str):
    return parse(spec, "nvlink5", spine_link="optical-800g")


@pytest.mark.parametrize(("spec", "hosts"), [("racks:2x8", 2), ("racks:4x4", 2),
                                              ("racks:3x4", 3), ("cluster:2x4", 2),
                                              ("cluster:4x2", 3)])
def test_racks_and_domains_stay_whole(spec, hosts):
    t = topo(spec)
    part = partition(t, hosts)
    for switch in t.switches:
        if switch.startswith(("rack", "nvs")):
            members = [t.other(link, switch) for link in t.links_of(switch)
                       if t.is_gpu(t.other(link, switch))]
            assert {part.host[g] for g in members} == {part.host[switch]}
    counts = [len(part.ranks_of(h)) for h in range(hosts)]
    assert max(counts) - min(counts) <= max(len(g) for g in [t.gpus]) // hosts
    assert all(counts)


def test_racks_2x8_over_two_hosts_is_one_cable_between_them():
    part = partition(topo("racks:2x8"), 2)
    assert [len(part.ranks_of(h)) for h in (0, 1)] == [8, 8]
    assert len(part.cross_links()) == 1


def test_metis_cuts_a_ring_into_arcs():
    t = topo("ring:12")
    part = partition(t, 3)
    assert [len(part.ranks_of(h)) for h in range(3)] == [4, 4, 4]
    assert len(part.cross_links()) == 3  # the fewest a ring cut in three allows


def test_one_host_holds_everything():
    t = topo("racks:2x8")
    part = partition(t, 1)
    assert part.cross_links() == [] and part.nodes_of(0) == list(t.gpus + t.switches)


def test_the_same_input_gives_the_same_partition():
    assert partition(topo("mesh:6"), 2).host == partition(topo("mesh:6"), 2).host


@pytest.mark.parametrize(("spec", "hosts", "message"), [
    ("racks:2x8", 3, "2 racks or domains, fewer than the 3 hosts"),
    ("ring:4", 5, "4 GPUs, fewer than the 5 hosts"),
    ("ring:4", 0, "host list is empty"),
])
def test_partitions_that_cannot_be_are_one_line(spec, hosts, message):
    with pytest.raises(NetwallError, match=message):
        partition(topo(spec), hosts)


def test_nic_load_counts_each_cross_cable_at_both_hosts_with_vxlan():
    part = partition(topo("racks:2x8"), 2)
    rate = CAT["optical-800g"].rate_gbps
    expected = rate / 100 * (FRAME_BYTES + VXLAN_OVERHEAD) / FRAME_BYTES
    assert nic_load_gbps(part, CAT, 100) == pytest.approx([expected, expected])


def test_the_nic_check_refuses_below_the_least_dilation_only():
    part = partition(topo("racks:2x8"), 2)
    least = min_dilation(part, CAT, 25.0)
    check_nic(part, CAT, least * 1.001, 25.0, ["a", "b"])
    with pytest.raises(NetwallError, match=r"more than its 25 Gb/s NIC: use --dilation 32"):
        check_nic(part, CAT, least * 0.9, 25.0, ["a", "b"])


def test_one_host_never_loads_a_nic():
    assert min_dilation(partition(topo("racks:2x8"), 1), CAT, 1.0) == 0.0
