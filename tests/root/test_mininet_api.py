"""Plain Mininet scripts (tests/mininet_scripts.py) on netwall's networks, checked against
the links netwall configured (root only).

The scripts know nothing of netwall; these tests hand them `emu.net` on four topologies and
compare what Mininet reports with netwall's plan: addresses, MACs, reachability, iperf's
goodput against the shaped rate of the route's slowest link, and a link taken down and up
with Mininet's configLinkStatus, seen in netwall's own link state and byte counters.
"""

from __future__ import annotations

import pytest

from emulator import Emulation
from emulator.models.plan import EMULATION_MTU, FRAME_BYTES
from tests import mininet_scripts as scripts
from topologies import path

pytestmark = pytest.mark.root

#: 800 Gb/s / 8000 = 100 Mb/s per link: an eighth of what this host carries faithfully
#: (BENCHMARKS.md), so iperf meets the shaper, not the CPU.
DILATION = 8000

#: topology, the cable cut (as Mininet names its ends), and a route that crosses it.
CASES = [
    ("pair", ("gpu0", "gpu1"), ("gpu0", "gpu1")),
    ("ring:4", ("gpu1", "gpu2"), ("gpu1", "gpu2")),
    ("star:4", ("gpu0", "nvs0"), ("gpu3", "gpu0")),
    ("racks:2x2", ("rack0", "spine0"), ("gpu0", "gpu3")),
]


@pytest.fixture(scope="module", params=CASES, ids=[case[0] for case in CASES])
def case(request):
    spec, cut, route = request.param
    with Emulation(spec, "copper-800g", dilation=DILATION) as emu:
        yield emu, cut, route


def test_hosts_report_what_the_kernel_has(case):
    emu, _cut, _route = case
    seen = scripts.first_steps(emu.net)
    assert list(seen) == list(emu.topology.gpus)  # net.hosts: the GPUs, in rank order
    assert [s.name for s in emu.net.switches] == list(emu.topology.switches)
    assert len(emu.net.links) == len(emu.topology.links)
    for gpu, host in seen.items():
        ip = emu.plan.ips[gpu]
        first = emu.topology.links_of(gpu)[0]
        assert host["ip"] == host["intf_ip"] == ip
        assert host["prefix"] == "32"  # as Mininet's setIP records "10.0.0.1/8": a string
        assert f"inet {ip}/32 " in host["kernel"]
        assert host["mac"] == host["kernel_mac"] == emu.plan.interfaces[(first, gpu)].mac
        assert host["intfs"] == [emu.plan.interfaces[(link, gpu)].name
                                 for link in emu.topology.links_of(gpu)]
        assert host["same_node"] is emu.net.get(gpu)


def test_every_host_reaches_every_other(case):
    emu, _cut, (src, dst) = case
    loss_all, loss_two, full = scripts.reachability(emu.net)
    assert loss_all == 0 and loss_two == 0
    assert [outputs[:2] for _a, _b, outputs in full] == [(1, 1), (1, 1)]  # sent, received
    assert " 0% packet loss" in scripts.ping_by_name(emu.net, src, dst)


def test_iperf_meets_the_configured_rate(case):
    emu, _cut, (src, dst) = case
    hops = path(emu.topology, src, dst)
    configured = min(emu.plan.shapes[(hop.link, hop.src)].rate_bps for hop in hops)
    goodput = scripts.bandwidth(emu.net, src, dst)
    # The shaper's wire rate carries TCP payload plus 52 header bytes in each 65014-byte
    # frame. A lone TCP flow on an idle, lossless, shaped path fills it but for slow start,
    # well under a tenth of two seconds at this rate: 90% leaves room for the host's noise.
    # It can beat the shaper only by its bucket (a GPU link's holds 10 ms of the rate, so
    # 0.5% of 2 s: dilation.CATCH_UP_WALL_S); 2% covers that, iperf's rounding to three
    # digits and the edges of its interval.
    wire = goodput * FRAME_BYTES / (EMULATION_MTU - 52)
    assert 0.9 * configured < wire < 1.02 * configured


def test_link_down_and_up_go_through_netwall(case):
    emu, (a, b), (src, dst) = case
    assert scripts.link_down_and_up(emu.net, a, b, src, dst) == (100.0, 0.0)
    link = emu.link_index(f"{a}--{b}")
    near, far = next((h.src, h.dst) for h in path(emu.topology, src, dst) if h.link == link)
    emu.net.configLinkStatus(a, b, "down")
    try:
        assert emu.link_state(link).note == "down" and emu.link_state(link).rate_gbps == 0
        assert [f.kind for f in emu.faults[link]] == ["down"]
        before = emu.network.counters(settle=0)
        assert " 0 received" in emu.net.get(src).cmd(f"ping -c1 -W1 {emu.plan.ips[dst]}")
        after = emu.network.counters(settle=0)
        # The request left over the cut cable and was lost there: nothing came back.
        assert after[(link, near)]["packets"] > before[(link, near)]["packets"]
        assert after[(link, far)]["packets"] == before[(link, far)]["packets"]
        with pytest.raises(Exception, match=f"{a}--{b} is down"):
            emu.net.iperf(emu.net.get(src, dst))
    finally:
        emu.net.configLinkStatus(a, b, "up")
    assert emu.link_state(link).note == "up" and emu.faults[link] == []


def test_host_shells(case):
    emu, _cut, (src, _dst) = case
    by_cmd, by_popen, by_send = scripts.shells(emu.net, src)
    ip = emu.plan.ips[src]
    assert ip in by_cmd and f"{ip}/32" in by_popen and "42" in by_send
