"""Shortest-path routes between GPUs, as the emulated network will forward them.

GPUs are IP routers and switches are L2 bridges, so a route is a chain of L3 hops: from a
GPU out of one interface, across one L2 segment (or a direct cable) to the next GPU. The
network builder installs next_hops() as static routes; path() predicts the links a frame
crosses, so both must come from the same trees.

Per destination we run one BFS (hop count) and let every node pick, among its links that
lead one hop closer, the one with the lowest index. Those picks form a tree rooted at the
destination, so forwarding is consistent hop by hop. They also make routes consistent
between destinations: if B lies on the route from A to C, every link that is a shortest
first step from A toward B is also one toward C, so A's lowest pick toward C is its lowest
pick toward B as well; hence path(A, C) == path(A, B) + path(B, C).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from foundation.errors import NetwallError

from .graph import Topology


@dataclass(frozen=True)
class Hop:
    """One directed traversal of topo.links[link], from src to dst."""

    link: int
    src: str
    dst: str


def path(topo: Topology, src_gpu: str, dst_gpu: str) -> tuple[Hop, ...]:
    """The hops a packet from src_gpu to dst_gpu crosses, in order (empty if src == dst)."""
    _check_gpu(topo, src_gpu)
    toward = _tree(topo, dst_gpu)
    if src_gpu not in toward and src_gpu != dst_gpu:
        raise NetwallError(f"topology {topo.name}: {src_gpu} cannot reach {dst_gpu}")
    hops = []
    node = src_gpu
    while node != dst_gpu:
        link = toward[node]
        far = topo.other(link, node)
        hops.append(Hop(link, node, far))
        node = far
    return tuple(hops)


def next_hops(topo: Topology) -> dict[str, dict[str, tuple[int, str]]]:
    """For every GPU and every other reachable GPU: (egress link index, next GPU on the path).

    The next GPU is the L3 next hop: the far end of the egress link, or the first GPU met
    after crossing the switches of that link's segment.
    """
    table: dict[str, dict[str, tuple[int, str]]] = {gpu: {} for gpu in topo.gpus}
    for dst in topo.gpus:
        toward = _tree(topo, dst)
        first_gpu: dict[str, str] = {}
        for node in toward:  # insertion order is BFS order: a node's parent comes first
            far = topo.other(toward[node], node)
            first_gpu[node] = far if topo.is_gpu(far) else first_gpu[far]
            if topo.is_gpu(node):
                table[node][dst] = (toward[node], first_gpu[node])
    return table


def path_totals(topo: Topology, dst_gpu: str, cost: Callable[[int], float],
                combine: Callable[[float, float], float] = operator.add,
                start: float = 0.0) -> dict[str, float]:
    """For every GPU (and NVLS switch) that reaches dst_gpu: cost(link) over its path there,
    combined (summed, or e.g. min for a bottleneck) from `start`; one pass over the route
    tree, not one path per GPU."""
    toward = _tree(topo, dst_gpu)
    total = {dst_gpu: start}
    for node in toward:  # BFS order: the next node toward dst_gpu is already done
        link = toward[node]
        total[node] = combine(total[topo.other(link, node)], cost(link))
    return {gpu: total[gpu] for gpu in topo.gpus + topo.nvls if gpu in total and gpu != dst_gpu}


def _check_gpu(topo: Topology, gpu: str) -> None:
    """A route ends at a GPU, or at an NVLS switch (which takes part in its collectives)."""
    if not topo.is_gpu(gpu) and gpu not in topo.nvls:
        raise NetwallError(f"topology {topo.name} has no GPU {gpu!r}")


def _tree(topo: Topology, dst: str) -> dict[str, int]:
    """node -> the link it forwards on toward dst, for every node that can reach dst.

    Keys are in BFS order from dst. Cached on the topology, which is immutable.
    """
    _check_gpu(topo, dst)
    key = ("route-tree", dst)
    if key not in topo._cache:
        topo._cache[key] = _build_tree(topo, dst)
    return topo._cache[key]


def _build_tree(topo: Topology, dst: str) -> dict[str, int]:
    """One BFS pass; a node's pick is lowered whenever another link reaches it from closer."""
    neighbours = _neighbours(topo)
    distance = {dst: 0}
    toward: dict[str, int] = {}
    order = deque([dst])
    while order:
        node = order.popleft()
        further = distance[node] + 1
        for link, far in neighbours[node]:
            seen = distance.get(far)
            if seen is None:
                distance[far] = further
                toward[far] = link
                order.append(far)
            elif seen == further and link < toward[far]:
                toward[far] = link
    return toward


def _neighbours(topo: Topology) -> dict[str, list[tuple[int, str]]]:
    """node -> [(link, far end)] in link order, cached: the BFS inner loop reads it a lot."""
    key = "route-neighbours"
    if key not in topo._cache:
        topo._cache[key] = {
            node: [(link, topo.other(link, node)) for link in topo.links_of(node)]
            for node in topo.gpus + topo.switches
        }
    return topo._cache[key]
