"""Which bytes a schedule puts on which link: what the kernel counters are checked against.

Every move crosses the links of its route (topologies.routing.path); each directed link is
named by (link index, sending node), the same key as the network's egress counters. An NVLS
switch's moves (Topology.node) start or end at the switch: a multicast is one move, so one
copy, per port.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from topologies import Topology, path
from traffic.header import FRAME_OVERHEAD, wire_bytes
from traffic.schedule import Move, Schedule


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
