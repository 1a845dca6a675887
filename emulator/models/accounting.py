"""Which bytes a schedule puts on which link: what the kernel counters are checked against.

Every move crosses the links of its route (topologies.routing.path); each directed link is
named by (link index, sending node), the same key as the network's egress counters. An NVLS
switch's moves (Topology.node) start or end at the switch: a multicast is one move, so one
copy, per port.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from topologies import Topology, path
from traffic.header import FRAME_OVERHEAD, wire_bytes
from traffic.schedule import Move, Schedule


@dataclass(frozen=True)
class LinkReport:
    """What one directed link carried during a batch, by its kernel counters, held against
    what the batch's schedule puts on it (`expected_bytes`; None: no one schedule to hold
    them against, as in a replayed trace)."""

    link: str  # the directed link, 'sender->receiver' (Topology.directed)
    profile: str
    bytes: int
    expected_bytes: int | None
    packets: int
    drops: int


#: A reading of the network's egress counters: (link, sending node) -> counter -> value.
Counters = Mapping[tuple[int, str], Mapping[str, int]]


def link_reports(topo: Topology, before: Counters, after: Counters,
                 expected: Mapping[tuple[int, str], int] | None, iters: int) -> list[LinkReport]:
    """Per directed link that carried traffic between two readings: its bytes against
    `expected` (one call's wire_loads, times `iters`), in the counters' key order."""
    reports = []
    for key in sorted(after):
        link, sender = key
        moved = {k: after[key][k] - before[key][k] for k in ("bytes", "packets", "drops")}
        want = (expected or {}).get(key, 0)
        if moved["bytes"] or want:
            reports.append(LinkReport(topo.directed(link, sender), topo.links[link].profile,
                                      moved["bytes"], want * iters if expected is not None
                                      else None, moved["packets"], moved["drops"]))
    return reports


@dataclass(frozen=True)
class Floor:
    """The least real time one call could take on wires: the busiest directed link's bytes
    (as its kernel counters saw them, every header and repair included) over the fastest
    rate that link had while the calls ran. A result below it is wrong, whatever the proof
    says (emulator.models.verdict)."""

    time_s: float
    link: str  # the directed link that sets it, 'sender->receiver'
    bytes: int  # what it carried per call
    rate_gbps: float


def floor(topo: Topology, before: Counters, after: Counters, rates_gbps: Mapping[int, float],
          iters: int) -> Floor | None:
    """The Floor of a batch of `iters` calls between two counter readings, each link at
    `rates_gbps` (real, its fastest in the batch; a link at 0 carried nothing it could be
    held to). None: no link carried anything."""
    best = None
    for key in after:
        link, sender = key
        moved = (after[key]["bytes"] - before[key]["bytes"]) / iters
        rate = rates_gbps[link]
        if moved > 0 and rate > 0 and (best is None or moved / rate > best[0] / best[1]):
            best = (moved, rate, key)
    if best is None:
        return None
    moved, rate, (link, sender) = best
    return Floor(moved * 8 / (rate * 1e9), topo.directed(link, sender), round(moved), rate)


def link_loads(topo: Topology, moves: Iterable[Move]) -> Counter:
    """Payload bytes per directed link (link, sending node) for a set of moves."""
    loads: Counter = Counter()
    for m in moves:
        for hop in path(topo, topo.node(m.src), topo.node(m.dst)):
            loads[(hop.link, hop.src)] += m.length
    return loads


def wire_loads(topo: Topology, schedule: Schedule, frame_payload: int,
               efficiency: float = 1.0) -> Counter:
    """Bytes on the wire per directed link for one loss-free call of `schedule`: every move's
    frames, headers and its protocol's padding included, and the one ACK frame that comes
    back for it."""
    loads: Counter = Counter()
    for step in schedule.steps:
        for m in step:
            for hop in path(topo, topo.node(m.src), topo.node(m.dst)):
                loads[(hop.link, hop.src)] += wire_bytes(m.length, frame_payload, efficiency)
            for hop in path(topo, topo.node(m.dst), topo.node(m.src)):
                loads[(hop.link, hop.src)] += FRAME_OVERHEAD
    return loads
