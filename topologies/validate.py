"""Checks that a topology can be built as described and behaves as the router predicts.

Why each rule exists: names become Linux interface names ("{node}-eth{k}", at most 15
characters); bridges run without STP, so a loop among switches would storm; and a GPU
with two ports in one L2 segment would make the bridges' MAC learning (and our predicted
path) ambiguous.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from foundation.errors import NetwallError

from .graph import MAX_GPUS, Topology, tier_of
from .segments import switch_segments

IFNAMSIZ = 15  # characters Linux allows in an interface name
BRIDGE_PORTS = 1023  # ports a Linux bridge takes (BR_MAX_PORTS is 1024, port 0 unused)
_NAME = re.compile(r"[a-z][a-z0-9]{0,7}")


def validate(topo: Topology, catalogue: Mapping[str, Any]) -> None:
    """Raise NetwallError (one line) for the first problem found, else return None.

    catalogue maps profile names to objects with `.name` and `.reach_m`.
    """
    _check_nodes(topo)
    _check_links(topo, catalogue)
    _check_switch_forest(topo)
    _check_segments(topo)
    _check_connected(topo)


def _check_nodes(topo: Topology) -> None:
    seen: set[str] = set()
    for node in topo.gpus + topo.switches:
        if not _NAME.fullmatch(node):
            raise NetwallError(
                f"bad node name {node!r}: use a lowercase letter then up to 7 lowercase "
                f"letters or digits (interface names like {node[:8]}-eth999 must fit 15 characters)"
            )
        if node in seen:
            raise NetwallError(f"node name {node!r} is used twice")
        seen.add(node)
        degree = len(topo.links_of(node))
        last = f"{node}-eth{degree - 1}"
        if len(last) > IFNAMSIZ:
            raise NetwallError(
                f"{node} has {degree} links; its last interface name {last} would pass the "
                f"{IFNAMSIZ} characters Linux allows (a shorter node name leaves more room)"
            )
    if not 2 <= len(topo.gpus) <= MAX_GPUS:
        raise NetwallError(
            f"topology {topo.name} has {len(topo.gpus)} GPUs; use 2 to {MAX_GPUS}"
        )
    for switch in topo.switches:
        if not topo.links_of(switch):
            raise NetwallError(f"switch {switch} has no links")
        if len(topo.links_of(switch)) > BRIDGE_PORTS:
            raise NetwallError(
                f"switch {switch} has {len(topo.links_of(switch))} links; a Linux bridge takes "
                f"at most {BRIDGE_PORTS} (spread the GPUs over racks)"
            )


def _check_links(topo: Topology, catalogue: Mapping[str, Any]) -> None:
    nodes = set(topo.gpus) | set(topo.switches)
    pairs: dict[frozenset[str], int] = {}
    for index, link in enumerate(topo.links):
        label = f"link {link.a}--{link.b}"
        for end in (link.a, link.b):
            if end not in nodes:
                raise NetwallError(f"{label}: unknown node {end!r}")
        if link.a == link.b:
            raise NetwallError(f"{label} joins {link.a} to itself")
        pair = frozenset((link.a, link.b))
        if pair in pairs:
            raise NetwallError(
                f"{label}: {link.a} and {link.b} are already joined (links {pairs[pair]} "
                f"and {index}); use one link"
            )
        pairs[pair] = index
        expected = tier_of(topo.is_gpu(link.a), topo.is_gpu(link.b))
        if link.tier != expected:
            raise NetwallError(f"{label}: tier is {link.tier!r} but should be {expected!r}")
        length = link.length_m
        if isinstance(length, bool) or not isinstance(length, int | float) or not (
            math.isfinite(length) and length > 0
        ):
            raise NetwallError(f"{label}: length must be a positive number of metres, got {length}")
        if link.profile not in catalogue:
            known = ", ".join(sorted(catalogue))
            raise NetwallError(f"{label}: unknown link profile {link.profile!r} (known: {known})")
        profile = catalogue[link.profile]
        if length > profile.reach_m:
            raise NetwallError(
                f"{label} is {length:g} m long but {profile.name} reaches {profile.reach_m:g} m"
            )


def _check_switch_forest(topo: Topology) -> None:
    """Union-find over switch-switch links: a link whose ends are already joined is a loop."""
    root = {switch: switch for switch in topo.switches}

    def find(node: str) -> str:
        while root[node] != node:
            root[node] = root[root[node]]
            node = root[node]
        return node

    for link in topo.links:
        if link.a in root and link.b in root:
            a, b = find(link.a), find(link.b)
            if a == b:
                raise NetwallError(
                    f"link {link.a}--{link.b} closes a loop among switches; switch links "
                    "must form a tree because the bridges run without STP"
                )
            root[a] = b


def _check_segments(topo: Topology) -> None:
    segments = switch_segments(topo)
    for gpu in topo.gpus:
        entered: dict[frozenset[str], str] = {}
        for link in topo.links_of(gpu):
            switch = topo.other(link, gpu)
            if switch not in segments:
                continue
            segment = segments[switch]
            if segment in entered:
                raise NetwallError(
                    f"{gpu} has two links into one L2 segment (via {entered[segment]} and "
                    f"{switch}); connect a GPU to each switch tree at most once"
                )
            entered[segment] = switch


def _check_connected(topo: Topology) -> None:
    start = topo.gpus[0]
    reached = {start}
    todo = [start]
    while todo:
        node = todo.pop()
        for link in topo.links_of(node):
            far = topo.other(link, node)
            if far not in reached:
                reached.add(far)
                todo.append(far)
    for node in topo.gpus + topo.switches:
        if node not in reached:
            kind = "GPU" if topo.is_gpu(node) else "switch"
            raise NetwallError(
                f"topology {topo.name} is disconnected: {kind} {node} cannot reach {start}"
            )
