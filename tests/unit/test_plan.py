"""Tests for emulator.models.plan: names, addresses, routes, forwarding and shaping, without
root."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

import pytest

from emulator.models.dilation import BURST_REAL_S, CATCH_UP_WALL_S, link_shape
from emulator.models.plan import (
    FRAME_BYTES,
    RTO_FLOOR_WALL_S,
    frames_in_flight,
    mac,
    make_plan,
    rank_ip,
)
from emulator.models.profiles import catalogue, with_bundles
from topologies import MAX_GPUS, parse
from traffic.protocol import Peer, Setup

SPECS = ["pair", "ring:3", "ring:6", "star:4", "star:8", "mesh:4", "racks:2x2", "racks:3x2"]


@pytest.fixture(scope="module")
def cat():
    return catalogue()


@pytest.fixture(scope="module")
def plans(cat):
    return {spec: make_plan(parse(spec, "copper-800g"), cat, 100.0) for spec in SPECS}


def iface_by_name(plan):
    return {(i.node, i.name): i for i in plan.interfaces.values()}


@pytest.mark.parametrize("spec", SPECS)
def test_interface_names_and_macs(plans, spec):
    plan = plans[spec]
    topo = plan.topology
    macs = [i.mac for i in plan.interfaces.values()]
    assert len(macs) == len(set(macs))
    assert len(plan.interfaces) == 2 * len(topo.links)
    for (link, node), iface in plan.interfaces.items():
        assert iface.node == node and iface.link == link
        assert node in (topo.links[link].a, topo.links[link].b)
        match = re.fullmatch(rf"{re.escape(node)}-eth(\d+)", iface.name)
        assert match, iface.name
        # Position k among the node's links, in link order.
        assert topo.links_of(node)[int(match.group(1))] == link
        assert iface.mac.startswith("02:4e:")
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", iface.mac)
    # A node's interface names are unique on that node.
    for node in topo.gpus + topo.switches:
        names = [i.name for i in plan.interfaces.values() if i.node == node]
        assert len(names) == len(set(names)) == len(topo.links_of(node))


@pytest.mark.parametrize("spec", SPECS)
def test_ips_are_unique_addresses_of_the_gpus(plans, spec):
    plan = plans[spec]
    assert set(plan.ips) == set(plan.topology.gpus)
    assert len(set(plan.ips.values())) == len(plan.ips)
    for ip in plan.ips.values():
        assert ipaddress.ip_address(ip).version == 4


def test_addresses_and_macs_stay_unique_up_to_max_gpus():
    # make_plan on a 1024-GPU star is slow, so check the address functions it uses directly.
    ips = [rank_ip(r) for r in range(MAX_GPUS)]
    assert len(set(ips)) == MAX_GPUS
    assert ips[0] == "10.77.0.1" and ips[255] == "10.77.1.0" and ips[256] == "10.77.1.1"
    network = ipaddress.ip_network("10.77.0.0/16")
    assert all(ipaddress.ip_address(ip) in network for ip in ips)
    macs = {mac(node, port) for node in range(MAX_GPUS + 2) for port in (0, 1, 255, 256)}
    assert len(macs) == (MAX_GPUS + 2) * 4
    assert mac(0x1234, 0x0506) == "02:4e:12:34:05:06"


def test_plan_ips_are_rank_ips(plans):
    plan = plans["racks:3x2"]
    assert plan.ips == {gpu: rank_ip(r) for r, gpu in enumerate(plan.topology.gpus)}


@pytest.mark.parametrize("spec", SPECS)
def test_every_gpu_routes_to_every_other_gpu(plans, spec):
    plan = plans[spec]
    topo = plan.topology
    names = iface_by_name(plan)
    owner_of_ip = {ip: gpu for gpu, ip in plan.ips.items()}
    mac_owner = {i.mac: i for i in plan.interfaces.values()}
    for gpu in topo.gpus:
        routes = plan.routes[gpu]
        rank = topo.rank(gpu)
        assert sorted(r.dst for r in routes) == [r for r in range(len(topo.gpus)) if r != rank]
        for route in routes:
            assert route.dst_ip == plan.ips[topo.gpus[route.dst]]
            out = names[(gpu, route.iface)]  # the egress interface exists on this GPU
            assert route.src_mac == out.mac
            # via_mac is an interface of the GPU that owns via_ip ...
            via = mac_owner[route.via_mac]
            assert via.node == owner_of_ip[route.via_ip]
            assert topo.is_gpu(via.node) and via.node != gpu
            # ... reachable from the egress link: the same cable, or the same switched segment.
            if topo.is_gpu(topo.other(out.link, gpu)):
                assert via.link == out.link
            else:
                assert not topo.is_gpu(topo.other(via.link, via.node))


def test_ring6_opposite_gpu_goes_via_a_neighbour(plans):
    plan = plans["ring:6"]
    for r in range(6):
        gpu = f"gpu{r}"
        by_dst = {route.dst: route for route in plan.routes[gpu]}
        for d in ((r + 1) % 6, (r - 1) % 6):
            assert by_dst[d].via_ip == by_dst[d].dst_ip  # neighbours are reached directly
        far = by_dst[(r + 3) % 6]
        assert far.via_ip != far.dst_ip
        assert far.via_ip in (plan.ips[f"gpu{(r + 1) % 6}"], plan.ips[f"gpu{(r - 1) % 6}"])
        two = by_dst[(r + 2) % 6]
        assert two.via_ip == plan.ips[f"gpu{(r + 1) % 6}"]


def test_star_routes_go_straight_to_the_destination(plans):
    plan = plans["star:8"]
    for gpu in plan.topology.gpus:
        for route in plan.routes[gpu]:
            dst = plan.topology.gpus[route.dst]
            assert route.via_ip == route.dst_ip
            assert route.via_mac == plan.interfaces[(plan.topology.links_of(dst)[0], dst)].mac
            assert route.iface == f"{gpu}-eth0"


@pytest.mark.parametrize("spec", ["racks:2x2", "racks:3x2", "star:4"])
def test_fdb_covers_every_gpu_mac_once_per_switch(plans, spec):
    plan = plans[spec]
    topo = plan.topology
    gpu_macs = {i.mac for i in plan.interfaces.values() if topo.is_gpu(i.node)}
    for switch in topo.switches:
        entries = plan.fdb[switch]
        macs = [mac for _, mac in entries]
        assert sorted(macs) == sorted(gpu_macs)
        own_ports = {i.name for i in plan.interfaces.values() if i.node == switch}
        assert {port for port, _ in entries} <= own_ports


def test_fdb_ports_point_toward_the_gpu(plans):
    plan = plans["racks:2x2"]
    topo = plan.topology
    names = iface_by_name(plan)

    def port_toward(switch, neighbour):
        """The switch's interface on its link to `neighbour`."""
        (link,) = [k for k in topo.links_of(switch) if topo.other(k, switch) == neighbour]
        return plan.interfaces[(link, switch)].name

    def gpu_mac(gpu):
        return plan.interfaces[(topo.links_of(gpu)[0], gpu)].mac

    rack_of = {"gpu0": "rack0", "gpu1": "rack0", "gpu2": "rack1", "gpu3": "rack1"}
    for switch in topo.switches:
        table = {mac: port for port, mac in plan.fdb[switch]}
        for gpu, rack in rack_of.items():
            if switch == "spine0":
                want = port_toward("spine0", rack)
            elif switch == rack:
                want = port_toward(rack, gpu)
            else:
                want = port_toward(switch, "spine0")
            assert table[gpu_mac(gpu)] == want, (switch, gpu)
            assert (switch, want) in names
    # Spelled out for one entry: on spine0, gpu0's MAC leaves toward rack0.
    spine = dict((mac, port) for port, mac in plan.fdb["spine0"])
    rack0_link = [k for k in topo.links_of("spine0") if topo.other(k, "spine0") == "rack0"][0]
    assert spine[gpu_mac("gpu0")] == plan.interfaces[(rack0_link, "spine0")].name


def test_direct_topologies_have_no_fdb(plans):
    assert plans["ring:6"].fdb == {}
    assert plans["pair"].fdb == {}


@pytest.mark.parametrize("dilation", [1.0, 100.0, 2500.0])
def test_shapes_scale_every_interface(cat, dilation):
    topo = parse("racks:2x2", "copper-800g", spine_link="optical-800g")
    plan = make_plan(topo, cat, dilation)
    assert plan.dilation == dilation
    assert set(plan.shapes) == set(plan.interfaces)
    for (link, _node), shape in plan.shapes.items():
        cable = topo.links[link]
        profile = cat[cable.profile]
        assert shape.rate_bps == int(profile.rate_gbps * 1e9 / dilation)
        delay_ns = profile.fec_delay_ns + profile.delay_ns_per_m * cable.length_m
        assert shape.delay_us == pytest.approx(delay_ns * dilation / 1000)
        gpu_end = topo.is_gpu(cable.a) or topo.is_gpu(cable.b)
        want = link_shape(profile.rate_gbps, delay_ns, profile.frame_loss(FRAME_BYTES),
                          profile.queue_bytes, dilation, FRAME_BYTES, catch_up=gpu_end)
        # Lossless queues: room for every GPU's frames in flight, on every link alike.
        in_flight = max(2, min(16, min(s.queue_packets for s in plan.shapes.values()) - 4))
        assert shape == replace(want, limit_packets=len(topo.gpus) * (in_flight + 4) + 8)
    spine_shape = plan.shapes[(4, "rack0")]
    assert topo.links[4].profile == "optical-800g"
    assert spine_shape.delay_us > plan.shapes[(0, "gpu0")].delay_us  # 20 m optical vs 1 m


def test_a_gpu_links_bucket_holds_its_catch_up_time_a_switch_to_switch_links_a_microsecond(cat):
    """The agents pace a GPU's link themselves, so its bucket lets a late sender catch up
    (CATCH_UP_WALL_S of wall time at the dilated rate); a link between switches, whose flows
    no agent sees whole, keeps the kernel's pace (BURST_REAL_S of real time)."""
    topo = parse("racks:2x2", "copper-800g", spine_link="optical-800g")
    bytes_per_s = {name: cat[name].rate_gbps * 1e9 / 8 for name in ("copper-800g", "optical-800g")}
    for dilation in (500.0, 5000.0):
        shapes = make_plan(topo, cat, dilation).shapes
        switches = {(link, end) for (link, end) in shapes
                    if not any(topo.is_gpu(n) for n in (topo.links[link].a, topo.links[link].b))}
        assert switches == {(4, "rack0"), (4, "spine0"), (5, "rack1"), (5, "spine0")}
        for (link, end), shape in shapes.items():
            rate = bytes_per_s[topo.links[link].profile]
            want = rate * BURST_REAL_S if (link, end) in switches else \
                rate / dilation * CATCH_UP_WALL_S
            assert shape.burst_bytes == pytest.approx(want, abs=1)
            assert shape.burst_bytes > FRAME_BYTES  # 800 Gb/s: the time, not the one-frame floor


@pytest.mark.parametrize("spec", SPECS)
def test_peers_agree_with_routes(plans, spec):
    plan = plans[spec]
    topo = plan.topology
    n = len(topo.gpus)
    ips = {**plan.ips, **{s: ip for s, (ip, _) in plan.nvls.items()}}
    for gpu in topo.gpus:
        peers = plan.peers(gpu)
        # every other GPU, and the NVLS switch it is cabled to (participant n)
        assert len(peers) == n - 1 + len(plan.nvls_routes.get(gpu, []))
        assert topo.rank(gpu) not in peers
        routes = {route.dst: route for route in plan.routes[gpu] + plan.nvls_routes.get(gpu, [])}
        for dst, peer in peers.items():
            route = routes[dst]
            assert isinstance(peer, Peer)
            assert peer.iface == route.iface
            assert peer.src_mac == route.src_mac
            assert peer.dst_mac == route.via_mac
            assert peer.src_ip == plan.ips[gpu]
            assert peer.dst_ip == ips[topo.node(dst)] == route.dst_ip
            assert peer.src_mac != peer.dst_mac
    for switch, (ip, own) in plan.nvls.items():  # its agent reaches every GPU on its ports
        peers = plan.switch_peers(switch)
        assert sorted(peers) == list(range(n))
        assert {(p.iface, p.src_mac, p.src_ip) for p in peers.values()} == {(switch, own, ip)}
        assert all(plan.peers(topo.gpus[r])[n].dst_mac == own for r in peers)


def test_an_nvls_switchs_agent_keeps_a_share_in_flight_per_gpu_link_and_queues_hold_them(cat):
    topo = parse("star:8", "optical-800g")
    plan = make_plan(topo, cat, 1000.0)
    switch = plan.switch_peers("nvs0")
    setup = Setup(rank=8, ranks=9, peers=switch, mtu=65000, rto=1.0, sndbuf=100, routes={})
    assert setup.send_buffer("nvs0") == 8 * 100  # one port, eight GPU links behind it
    gpu = Setup(rank=0, ranks=9, peers=plan.peers("gpu0"), mtu=65000, rto=1.0, sndbuf=100,
                routes={})
    assert {gpu.send_buffer(p.iface) for p in gpu.peers.values()} == {100}  # one link each
    in_flight = frames_in_flight(plan.shapes.values())
    for shape in plan.shapes.values():  # 8 GPUs' shares and the switch's 8
        assert shape.limit_packets == 16 * (in_flight + 4) + 8


def test_the_repair_timeout_scales_with_d_but_never_under_the_hosts_noise(cat):
    """Above D = 2000 a repair costs the same real time at any D; below, the wall-clock floor
    keeps frames the host merely delayed from being called lost (D = 1 once stalled)."""
    topo = parse("star:8", "copper-800g")
    real = {d: make_plan(topo, cat, d).retransmit_timeout_s() / d for d in (2000, 4000, 8000)}
    assert max(real.values()) == pytest.approx(min(real.values()), rel=1e-9)
    for d in (1, 10, 500):
        assert make_plan(topo, cat, d).retransmit_timeout_s() >= RTO_FLOOR_WALL_S
    assert make_plan(topo, cat, 1).retransmit_timeout_s() < 2 * RTO_FLOOR_WALL_S


@pytest.mark.parametrize("spec, groups", [
    ("racks:3x2", [[0, 1], [2, 3], [4, 5]]),  # the racks
    ("cluster:3x2", [[0, 1], [2, 3], [4, 5]]),  # the scale-up domains, not the rails' leaves
    ("star:4", None), ("ring:6", None),
])
def test_workload_groups_are_racks_or_scale_up_domains(spec, groups):
    topo = parse(spec, "copper-800g", spine_link="optical-800g")
    cat = with_bundles(catalogue(), [c.profile for c in topo.links])
    assert make_plan(topo, cat, 100.0).groups() == groups
