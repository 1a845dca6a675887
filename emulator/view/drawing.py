"""The live view's picture of a cluster, as its designer draws it: pure, from the topology.

From the top: the spine (switches joined only to switches), then the leaves (switches that
GPUs reach through their NICs, and that join other switches: a rail's leaf, a rack's
top-of-rack switch), then the racks with their GPUs stacked as trays, GPU 0 lowest
(topologies/layout.py), and under each scale-up domain its scale-up switch (a switch joined
only to GPUs, such as an NVSwitch), inside the rack the layout puts it in. GPUs joined only
to each other (pair, ring, mesh) sit on a circle. A GPU's cable to a leaf starts at a NIC
drawn beside the GPU.

Every cable is one edge, named as reports name it (`a--b`), coloured by its profile's
family and drawn by its length class, so that what decides a design (which technology,
how far) is what the eye sees first. The page (static/view.js) places the nodes where this
module says; nothing here knows about a browser.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from emulator.models.profiles import LinkProfile
from topologies import Topology

#: Upper bounds of each length class, metres: copper's reach (one rack's height and
#: slack), wide-and-slow's reach (a row), and beyond: only optics (emulator/models/profiles).
LENGTH_CLASSES = ((2.0, "short"), (50.0, "medium"), (math.inf, "long"))
#: Pixels between GPUs in a rack, between racks, and between tiers.
TRAY, RACK_GAP, TIER = 46.0, 70.0, 130.0
#: The least pixels between two switches of a row.
SPREAD = 80.0
#: GPUs in one column of a rack before the next column starts.
COLUMN = 12


def length_class(length_m: float) -> str:
    """'short' (<= 2 m: in a rack, copper reaches), 'medium' (<= 50 m: a row,
    wide-and-slow reaches) or 'long' (optics only)."""
    return next(name for bound, name in LENGTH_CLASSES if length_m <= bound)


def roles(topo: Topology) -> dict[str, str]:
    """Each node's part in the picture: gpu, scale-up (a switch joined only to GPUs), leaf
    (joined to GPUs and switches) or spine (joined only to switches)."""
    out = {gpu: "gpu" for gpu in topo.gpus}
    for switch in topo.switches:
        ends = [topo.is_gpu(topo.other(k, switch)) for k in topo.links_of(switch)]
        out[switch] = ("scale-up" if all(ends) else "spine" if not any(ends) else "leaf")
    return out


def drawing(topo: Topology, catalogue: Mapping[str, LinkProfile],
            racks: Sequence[Sequence[int]] | None = None) -> dict[str, Any]:
    """Nodes with positions and parents (racks are compound nodes) and one edge per cable.

    `racks`: the ranks in each physical rack, in floor order (from the rack layout: see
    `racks_of`); None draws no racks. The result is JSON-ready; its `id` changes whenever
    anything drawn does, so a page knows when to draw again.
    """
    role = roles(topo)
    nodes: dict[str, dict[str, Any]] = {}
    if not topo.switches:
        _circle(topo, nodes)
    else:
        _tiers(topo, role, racks, nodes)
    edges = []
    for index, cable in enumerate(topo.links):
        profile = catalogue[cable.profile]
        a, b = cable.a, cable.b
        for gpu, other in ((a, b), (b, a)):  # a GPU reaches a leaf through its NIC
            if role.get(gpu) == "gpu" and role.get(other) == "leaf":
                nic = _nic(nodes, gpu)
                a, b = (nic, b) if gpu == cable.a else (a, nic)
        edges.append({"id": f"link{index}", "index": index, "source": a, "target": b,
                      "name": f"{cable.a}--{cable.b}", "profile": cable.profile,
                      "family": profile.family, "rate_gbps": profile.rate_gbps,
                      "length_m": cable.length_m, "length_class": length_class(cable.length_m),
                      "tier": cable.tier})
    out = {"topology": topo.name, "nodes": list(nodes.values()), "links": edges,
           "families": sorted({e["family"] for e in edges}),
           "length_classes": [name for _, name in LENGTH_CLASSES]}
    out["id"] = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:16]
    return out


def racks_of(topo: Topology, gpus_per_rack: int | None = None,
             racks: Sequence[Sequence[int]] | None = None) -> list[list[int]] | None:
    """The ranks in each rack. With the layout's `gpus_per_rack`: each scale-up domain (the
    GPUs on one scale-up switch) fills racks of that many in rank order, as
    topologies.cluster places them; without it, `racks` as the plan groups them (the GPUs
    on one rack switch: Plan.racks), or None."""
    if gpus_per_rack is None:
        return [list(r) for r in racks] if racks else None
    role = roles(topo)
    domains: dict[str | None, list[int]] = {}
    for rank, gpu in enumerate(topo.gpus):
        ups = [s for s in (topo.other(k, gpu) for k in topo.links_of(gpu))
               if role[s] == "scale-up"]
        domains.setdefault(ups[0] if ups else None, []).append(rank)
    return [g[i:i + gpus_per_rack] for g in domains.values()
            for i in range(0, len(g), gpus_per_rack)]


def _node(nodes: dict, name: str, kind: str, x: float, y: float,
          parent: str | None = None, label: str | None = None) -> None:
    nodes[name] = {"id": name, "label": label or name, "kind": kind, "x": round(x, 1),
                   "y": round(y, 1), "parent": parent}


def _nic(nodes: dict, gpu: str) -> str:
    """The NIC beside a GPU (made once, however many cables leave it)."""
    name = f"{gpu}.nic"
    if name not in nodes:
        at = nodes[gpu]
        _node(nodes, name, "nic", at["x"] + 24, at["y"] - 14, at["parent"], "NIC")
    return name


def _circle(topo: Topology, nodes: dict) -> None:
    """GPUs wired to each other only: a circle, rank 0 on top, clockwise."""
    n = len(topo.gpus)
    radius = max(120.0, n * TRAY / (2 * math.pi))
    for rank, gpu in enumerate(topo.gpus):
        angle = 2 * math.pi * rank / n - math.pi / 2
        _node(nodes, gpu, "gpu", radius * math.cos(angle), radius * math.sin(angle))


def _tiers(topo: Topology, role: dict[str, str], racks, nodes: dict) -> None:
    """Racks side by side, each a compound node with its GPUs as trays, its scale-up
    switch at mid-height on the left and its top-of-rack switch on the right (so every
    cable to them is a line of its own); leaves and spines in rows above. Without racks,
    the GPUs stand in one row with their scale-up switch under it."""
    placed = racks or [list(range(len(topo.gpus)))]
    side = 3 * TRAY if racks else 0.0  # room beside a rack's GPUs for its switches
    neighbours = {s: {topo.other(k, s) for k in topo.links_of(s)} for s in topo.switches}
    x = 0.0
    rack_of: dict[str, str | None] = {}
    span: dict[str | None, tuple[float, float, float]] = {}  # left, right, middle height
    for r, ranks in enumerate(placed):
        rack = f"rack:{r}" if racks else None
        if rack:
            _node(nodes, rack, "rack", 0, 0, label=f"rack {r}")
        columns = -(-len(ranks) // COLUMN) if racks else len(ranks)  # no racks: one row
        rows = -(-len(ranks) // columns)
        x += side
        for i, rank in enumerate(ranks):
            column, row = divmod(i, rows)
            gpu = topo.gpus[rank]
            _node(nodes, gpu, "gpu", x + column * 2 * TRAY, (rows - 1 - row) * TRAY, rack)
            rack_of[gpu] = rack
        width = (columns - 1) * 2 * TRAY
        span[rack] = (x, x + width, (rows - 1) * TRAY / 2)
        x += width + side + RACK_GAP
    for switch in topo.switches:  # a top-of-rack switch: a leaf joining its rack's GPUs
        gpus = {n for n in neighbours[switch] if role.get(n) == "gpu"}
        homes = {rack_of.get(g) for g in gpus}
        home = homes.pop() if len(homes) == 1 else None
        if role[switch] == "leaf" and home and gpus == {g for g, r in rack_of.items()
                                                         if r == home}:
            _node(nodes, switch, "leaf", span[home][1] + side, span[home][2], home)
    middle = max(x - RACK_GAP, 0.0) / 2
    y = -TRAY
    for kind in ("leaf", "spine"):  # a row each, above the racks, if any are left to place
        free = [s for s in topo.switches if role[s] == kind and s not in nodes]
        y -= TIER if free else 0
        pitch = max(2 * middle / len(free), SPREAD) if free else 0
        for i, switch in enumerate(free):
            _node(nodes, switch, kind, middle + (i - (len(free) - 1) / 2) * pitch, y)
    for switch in topo.switches:  # scale-up switches beside their GPUs, in the middle rack
        if role[switch] != "scale-up":
            continue
        gpus = sorted((n for n in neighbours[switch] if role.get(n) == "gpu"), key=topo.rank)
        homes = list(dict.fromkeys(rack_of.get(g) for g in gpus))
        home = homes[(len(homes) - 1) // 2]
        if racks:
            _node(nodes, switch, "scale-up", span[home][0] - side, span[home][2], home)
        else:
            xs = [nodes[g]["x"] for g in gpus]
            _node(nodes, switch, "scale-up", sum(xs) / len(xs), 2 * TRAY)
