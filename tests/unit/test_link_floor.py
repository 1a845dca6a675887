"""Never faster than the links allow: a link that lost channels paces its frames at the rate
it has (Go.routes), and a result below what the links' bytes need at their rates is flagged,
whatever the probe says."""

from __future__ import annotations

import pytest

from emulator.kernel.links import Injector, LinkStates
from emulator.models.accounting import Floor, LinkReport, floor
from emulator.models.alphabeta import routes_to
from emulator.models.faults import fastest_gbps, parse
from emulator.models.profiles import catalogue
from emulator.models.verdict import Probe, judge
from topologies import parse as topology

CAT = catalogue()
WS = CAT["wide-and-slow-800g"]  # 400 channels of 2 Gb/s and 16 spares
LOST_56 = (400 + 16 - 56) * WS.lane_rate_gbps  # 360 channels carry data


@pytest.mark.parametrize("faults, standing, fastest", [
    ([], [], WS.rate_gbps),
    (["channels=56:a--b@0"], [], LOST_56),  # from the first instant to the end
    (["channels=56:a--b@0+50us"], [], WS.rate_gbps),  # healthy again after 50 us
    (["channels=56:a--b@20us"], [], WS.rate_gbps),  # healthy for the first 20 us
    ([], ["channels=56:a--b@0"], LOST_56),  # left standing by the console
    (["channels=16:a--b@0", "channels=40:a--b@0"], [], LOST_56),  # struck together
    (["down:a--b@0"], [], 0.0),
])
def test_a_links_fastest_rate_over_a_program(faults, standing, fastest):
    assert fastest_gbps(WS, [parse(s) for s in standing], [parse(f) for f in faults]) == \
        pytest.approx(fastest)


def test_the_floor_is_the_busiest_link_at_its_rate():
    topo = topology("pair", "wide-and-slow-800g")
    before = {(0, topo.gpus[0]): {"bytes": 0}, (0, topo.gpus[1]): {"bytes": 0}}
    after = {(0, topo.gpus[0]): {"bytes": 3_000_000}, (0, topo.gpus[1]): {"bytes": 30_000}}
    got = floor(topo, before, after, {0: 720.0}, iters=3)
    assert got == Floor(1_000_000 * 8 / 720e9, topo.directed(0, topo.gpus[0]), 1_000_000,
                        720.0)
    assert floor(topo, before, before, {0: 720.0}, 3) is None  # nothing moved
    assert floor(topo, before, after, {0: 0.0}, 3) is None  # a dead link holds no floor


FLOOR = Floor(46.60e-6, "gpu0->gpu1", 4_194_304, 720.0)


def judged(time_s):
    links = [LinkReport("gpu0->gpu1", "wide-and-slow-800g", 4_194_304, None, 500, 0)]
    return judge([(0, 0)], [(1, 100)], links, {"gpu0->gpu1": (720e9, 0)}, 1.0, 0, True,
                 time_s, 1000.0, Probe(2000.0, time_s, 0.02), floor=FLOOR)


def test_a_time_below_the_links_floor_is_flagged_even_when_the_probe_agrees():
    # Lab 4's step 2b read 46.31 us where the degraded link alone needs 46.60 us.
    verdict = judged(46.31e-6)
    assert verdict.host_error == 0.0 and not verdict.faithful
    (flag,) = verdict.flags
    assert "faster than the links allow: gpu0->gpu1" in flag
    assert "46.60 us at the 720 Gb/s" in flag and "-0.6% below" in flag


def test_a_time_at_or_above_the_floor_is_not():
    assert judged(46.60e-6).faithful and judged(47.0e-6).faithful


def test_routes_carry_a_slowed_links_rate_on_every_route_through_it():
    topo = topology("star:4", "wide-and-slow-800g")
    (up0,) = [i for i, c in enumerate(topo.links) if topo.gpus[0] in (c.a, c.b)]
    healthy = routes_to(topo, CAT, 1)
    slowed = routes_to(topo, CAT, 1, {up0: 720.0})
    assert healthy[0].rate_bps == WS.rate_gbps * 1e9
    assert slowed[0].rate_bps == 720e9  # gpu0's frames cross its slowed uplink
    assert slowed[2] == healthy[2]  # gpu2's do not
    into0 = routes_to(topo, CAT, 0, {up0: 720.0})
    assert {r.link_rate_bps for r in into0.values()} == {720e9}  # they arrive on it


def test_the_agents_are_told_the_rates_faults_leave_at_the_start():
    topo = topology("pair", "wide-and-slow-800g")
    links = LinkStates(topo, CAT, netem=False, faultable=True)
    assert links.slowed({}) == {}
    faults = [parse("channels=56:gpu0--gpu1@0"), parse("down:gpu0--gpu1@1ms+1us")]
    injector = Injector(links, faults, {"gpu0--gpu1": 0}, 1000.0)
    assert injector.opening() == {0: [faults[0]]}
    assert links.slowed(injector.opening()) == {0: pytest.approx(LOST_56)}
    assert injector.fastest() == {0: pytest.approx(LOST_56)}
    links.standing[0] = [parse("channels=416:gpu0--gpu1@0")]  # every channel and spare
    assert links.slowed({}) == {}  # a dead link paces nothing
