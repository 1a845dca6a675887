"""The alpha-beta cost model that every measurement is put beside.

Thakur, Rabenseifner and Gropp (2005) cost a collective as steps of latency alpha plus bytes
over bandwidth beta. netwall evaluates that model on the actual topology, step by step: a
step costs its slowest route's latency plus its busiest link's bytes over that link's rate.
On a contention-free ring this is exactly the textbook 2(n-1)a + 2(n-1)/n S/B; on shared
links (a spine, an oversubscribed switch) it charges the sharing, as the wire will.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from emulator.models import endpoints, nccltuning
from emulator.models.accounting import link_loads
from emulator.models.endpoints import FREE, CallCosts, GpuProfile
from emulator.models.nccltuning import DESCRIBED
from emulator.models.profiles import LinkProfile
from foundation.units import format_size
from topologies import Topology, path, path_totals
from traffic.collectives.nvls import ALGORITHM as NVLS
from traffic.protocol import Route
from traffic.schedule import Schedule, default_algorithm


def route_latency_s(topo: Topology, catalogue: Mapping[str, LinkProfile], src: int,
                    dst: int) -> float:
    """Propagation plus FEC/DSP delay along the route from rank src to rank dst."""
    total_ns = 0.0
    for hop in path(topo, topo.node(src), topo.node(dst)):
        link = topo.links[hop.link]
        total_ns += catalogue[link.profile].delay_ns(link.length_m)
    return total_ns * 1e-9


def routes_to(topo: Topology, catalogue: Mapping[str, LinkProfile], dst: int,
              rates: Mapping[int, float] | None = None) -> dict[int, Route]:
    """From every other rank to rank dst: the route's link delay (propagation plus FEC/DSP,
    real seconds), its slowest link's rate (bit/s), the link it arrives on (index) with
    that link's rate, and whether agents pace all of it (at most two links: the sender's
    and dst's). What dst's agent holds and paces each frame by (routes). `rates`: real Gb/s
    of links that carry less than their profile's now (lost channels)."""

    def delay(link: int) -> float:
        cable = topo.links[link]
        return catalogue[cable.profile].delay_ns(cable.length_m) * 1e-9

    def rate(link: int) -> float:
        return (rates or {}).get(link, catalogue[topo.links[link].profile].rate_gbps) * 1e9

    def first_seen(toward_dst: int, link: int) -> int:
        return link if toward_dst < 0 else toward_dst

    rank = {node: r for r, node in enumerate(topo.gpus + topo.nvls)}  # NVLS switches too
    dst_gpu = topo.node(dst)
    delays = path_totals(topo, dst_gpu, delay)
    slowest = path_totals(topo, dst_gpu, rate, min, math.inf)
    last = path_totals(topo, dst_gpu, lambda link: link, first_seen, -1)
    hops = path_totals(topo, dst_gpu, lambda link: 1)
    return {rank[gpu]: Route(delays[gpu], slowest[gpu], last[gpu], rate(last[gpu]),
                             paced=hops[gpu] <= 2)
            for gpu in delays}


def routes(topo: Topology, catalogue: Mapping[str, LinkProfile], hold_delay: bool,
           rates: Mapping[int, float] | None = None) -> list[dict[int, Route]]:
    """Per participant (GPUs, then NVLS switches), from every other: the link delay its agent
    holds each frame for (`hold_delay`: the kernel has no netem to delay frames itself), the
    route's slowest rate, and the link frames arrive on with its rate.

    The agent also paces what arrives at those rates (traffic.pacing): a token-bucket shaper
    releases a frame as soon as it may start, and a burst after an idle gap for free, where a
    wire delivers frames one transmission time apart, each once its last bit is across.
    `rates` (link -> real Gb/s): links degraded now, paced at the rate they have."""
    keep = 1.0 if hold_delay else 0.0
    return [{src: replace(route, delay_s=route.delay_s * keep)
             for src, route in routes_to(topo, catalogue, r, rates).items()}
            for r in range(len(topo.gpus) + len(topo.nvls))]


def model_time_s(schedule: Schedule, topo: Topology,
                 catalogue: Mapping[str, LinkProfile], costs: CallCosts = FREE) -> float:
    """Modelled time of one call, in real seconds, with its endpoints' costs (none: links
    only). A step costs the endpoint's step latency, then the longer of its slowest route
    (latency plus the busiest link's wire bytes, padding included) and its largest
    reduction, as the agents pay them."""
    total = costs.start_s
    for step in schedule.steps:
        if not step:
            continue
        alpha = max(route_latency_s(topo, catalogue, m.src, m.dst) for m in step)
        beta = max(
            load * 8 / (catalogue[topo.links[link].profile].rate_gbps * 1e9)
            for (link, _sender), load in link_loads(topo, step).items()
        ) / costs.efficiency
        reduced: dict[int, int] = {}
        for m in step:
            if m.reduce:
                reduced[m.dst] = reduced.get(m.dst, 0) + m.length
        reduce = max(reduced.values(), default=0) * costs.reduce_s_per_byte
        total += costs.step_s + max(alpha + beta, reduce)
    return total


def call_costs(schedule: Schedule, topo: Topology, catalogue: Mapping[str, LinkProfile],
               gpu: GpuProfile) -> tuple[CallCosts, float]:
    """The protocol NCCL would run this call with on `gpu`, what it costs, and the call's
    modelled time with it: as NCCL's tuner does (src/graph/tuning.cc), the one with the
    lowest modelled time, here on the emulated topology itself. An NVLS call (its switch a
    participant) runs Simple with NVLS's own terms, as NCCL's does."""
    if schedule.switches:
        nvls = endpoints.nvls_costs(gpu, schedule.ranks)
        return nvls, model_time_s(schedule, topo, catalogue, nvls)
    options = [endpoints.costs(gpu, name) for name in gpu.protocols]
    timed = [(model_time_s(schedule, topo, catalogue, c), i) for i, c in enumerate(options)]
    best_s, best = min(timed)
    return options[best], best_s


@dataclass(frozen=True)
class Choice:
    """The algorithm a call runs, and why: what run, compare and replay say beside it."""

    algorithm: str
    why: str


def nccl_choice(collective: str, size: int, group: tuple[int, ...], topo: Topology,
                gpu: GpuProfile, named: str | None = None) -> Choice:
    """The algorithm a call runs: `named` if given; else as NCCL picks it, NVLS for an
    all-reduce whose ranks share an NVLS switch where NCCL's own tuning model runs it faster
    than the ring (emulator.models.nccltuning, with the GPU profile's `nccl` terms: from
    2 MiB on 8 x H100, as nccl-tests issue 309 shows NCCL doing), else the collective's
    default."""
    default = default_algorithm(collective)  # an unknown name: build() says so in one line
    if named is not None:
        return Choice(named, "named")
    if collective != "allreduce":
        return Choice(default, f"the default for {collective}")
    if topo.nvls_switch(group) is None:
        return Choice(default, "no NVLS switch under every rank")
    if gpu.nvls is None or gpu.nccl is None:
        return Choice(default, f"{gpu.name} has no NVLS terms")
    ranks = len(group)
    span = nvls_span(gpu, ranks)
    if nccltuning.picks_nvls(gpu.nccl, ranks, size):
        return Choice(NVLS, f"NCCL's choice {span} on {ranks} GPUs")
    picked = nccltuning.nvls_sizes(gpu.nccl, ranks)
    where = ("never NVLS" if picked is None else
             f"below {format_size(picked[0], spaced=True)}" if size < picked[0] else
             f"above {format_size(picked[1], spaced=True)}")
    return Choice(default, f"NCCL's choice {where} on {ranks} GPUs")


def nvls_span(gpu: GpuProfile, ranks: int) -> str:
    """Where NCCL's model runs an all-reduce on `ranks` GPUs of one domain with NVLS: 'from
    2 MiB', 'from 2 MiB to 64 MiB', 'at every size' or 'never' (powers of two)."""
    picked = nccltuning.nvls_sizes(gpu.nccl, ranks) if gpu.nccl and gpu.nvls else None
    if picked is None:
        return "never"
    first, last = picked
    if (first, last) == (DESCRIBED[0], DESCRIBED[-1]):
        return "at every size"
    if last == DESCRIBED[-1]:
        return f"from {format_size(first, spaced=True)}"
    return f"from {format_size(first, spaced=True)} to {format_size(last, spaced=True)}"


def protocol_ranges(sizes: list[int], schedule_of: Callable[[int], Schedule], topo: Topology,
                    catalogue: Mapping[str, LinkProfile],
                    gpu: GpuProfile) -> list[tuple[str, int, int]]:
    """Which protocol `gpu` runs each of `sizes` (ascending) with, as runs of sizes:
    (protocol, first size, last size). `schedule_of(size)` builds the call."""
    ranges: list[tuple[str, int, int]] = []
    for size in sizes:
        name = call_costs(schedule_of(size), topo, catalogue, gpu)[0].protocol
        if ranges and ranges[-1][0] == name:
            ranges[-1] = (name, ranges[-1][1], size)
        else:
            ranges.append((name, size, size))
    return ranges


def globalize(schedule: Schedule, group: tuple[int, ...]) -> Schedule:
    """The same schedule with its communicator's local ranks renamed to global ranks."""
    steps = tuple(tuple(replace(m, src=group[m.src], dst=group[m.dst]) for m in step)
                  for step in schedule.steps)
    return replace(schedule, steps=steps)


def members(topo: Topology, schedule: Schedule, group: tuple[int, ...]) -> tuple[int, ...]:
    """Who plays a schedule's participants: its ranks' global ranks, then (NVLS) the switch
    they share, numbered after the GPUs (Topology.node), whose agent runs on it."""
    if not schedule.switches:
        return tuple(group)
    return tuple(group) + (topo.nvls_switch(group),)


def ring_allreduce_time_s(ranks: int, size: int, alpha_s: float, bandwidth_gbps: float) -> float:
    """Thakur et al.'s closed form for ring all-reduce: 2(n-1)a + 2(n-1)/n * S/B."""
    return 2 * (ranks - 1) * alpha_s + 2 * (ranks - 1) / ranks * size * 8 / (bandwidth_gbps * 1e9)
