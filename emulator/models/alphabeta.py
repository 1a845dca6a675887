"""The alpha-beta cost model that every measurement is put beside.

Thakur, Rabenseifner and Gropp (2005) cost a collective as steps of latency alpha plus bytes
over bandwidth beta. netwall evaluates that model on the actual topology, step by step: a
step costs its slowest route's latency plus its busiest link's bytes over that link's rate.
On a contention-free ring this is exactly the textbook 2(n-1)a + 2(n-1)/n S/B; on shared
links (a spine, an oversubscribed switch) it charges the sharing, as the wire will.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from emulator.models.accounting import link_loads
from emulator.models.profiles import LinkProfile
from topologies import Topology, path
from traffic.schedule import Schedule


def route_latency_s(topo: Topology, catalogue: Mapping[str, LinkProfile], src: int,
                    dst: int) -> float:
    """Propagation plus FEC/DSP delay along the route from rank src to rank dst."""
    total_ns = 0.0
    for hop in path(topo, topo.gpus[src], topo.gpus[dst]):
        link = topo.links[hop.link]
        total_ns += catalogue[link.profile].delay_ns(link.length_m)
    return total_ns * 1e-9


def model_time_s(schedule: Schedule, topo: Topology,
                 catalogue: Mapping[str, LinkProfile], latency: bool = True) -> float:
    """Modelled time of one call, in real seconds; latency=False drops the alpha terms (what
    a kernel without netem emulates)."""
    total = 0.0
    for step in schedule.steps:
        if not step:
            continue
        alpha = max(route_latency_s(topo, catalogue, m.src, m.dst) for m in step) \
            if latency else 0.0
        beta = max(
            load * 8 / (catalogue[topo.links[link].profile].rate_gbps * 1e9)
            for (link, _sender), load in link_loads(topo, step).items()
        )
        total += alpha + beta
    return total


def globalize(schedule: Schedule, group: tuple[int, ...]) -> Schedule:
    """The same schedule with its communicator's local ranks renamed to global ranks."""
    steps = tuple(tuple(replace(m, src=group[m.src], dst=group[m.dst]) for m in step)
                  for step in schedule.steps)
    return replace(schedule, steps=steps)


def ring_allreduce_time_s(ranks: int, size: int, alpha_s: float, bandwidth_gbps: float) -> float:
    """Thakur et al.'s closed form for ring all-reduce: 2(n-1)a + 2(n-1)/n * S/B."""
    return 2 * (ranks - 1) * alpha_s + 2 * (ranks - 1) / ranks * size * 8 / (bandwidth_gbps * 1e9)
