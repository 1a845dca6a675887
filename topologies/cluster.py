"""Two-fabric clusters: every GPU on a scale-up domain switch and on a scale-out network.

This is how large AI clusters are cabled: a GPU's NVLink-class bundle goes to the switch of
its scale-up domain (NVL72: one rack over copper; optical or wide-and-slow cables let a
domain span racks), and its NIC goes to a leaf of a leaf/spine network that joins the
domains. Traffic between GPUs of one domain stays on the scale-up fabric; the rest crosses
the NICs.

The scale-out network is rail-optimized, as NVIDIA's DGX SuperPOD is: GPU i of every
domain sits on leaf i (rail i), and the leaves meet at one spine. Rails are what make the
router's shortest paths keep the fabrics apart: no two GPUs of a domain share a leaf, so a
domain peer is 2 hops away over the domain switch and 4 over the NICs. Where two paths
tie (a GPU on another rail of another domain: 4 hops over the NICs, or 4 via a domain
peer on the right rail, which NCCL calls PXN), the router's lowest-link-index rule decides,
so links are ordered leaf-to-spine first, then the NICs, then the scale-up cables: a
GPU then prefers its NIC and a leaf its spine, and cross-domain traffic never enters a
domain switch. tests/unit/test_cluster.py checks every pair. Each leaf's uplink is a
bundle of D cables of the NICs' profile (emulator.models.profiles.bundle), as many as the
leaf has GPUs, so the scale-out network is non-blocking, as a fat tree is.

Cable lengths come from the rack layout (topologies/layout.py): a domain of G GPUs fills
ceil(G / gpus_per_rack) consecutive racks with its switch mid-height in the middle one,
the leaves and the spine share a network rack in the middle of the first row (as the spine
of racks:RxG), and the reach check names the first cable a technology cannot make.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foundation.errors import NetwallError
from foundation.inputs import MAX_CABLES, is_whole, shown

from .graph import MAX_GPUS, SCALE_OUT, SCALE_UP, Link, Topology
from .layout import (
    Layout,
    cable_length_gpu_to_rack,
    cable_length_in_rack,
    parse_layout,
    rack_slot,
    spine_slot,
)

SPINE = "spine0"
USAGE = "use cluster:DxG: D domains of G >= 2 GPUs"


@dataclass(frozen=True)
class Cluster:
    """A two-fabric cluster: `domains` scale-up domains of `domain_gpus` GPUs each, on
    `scale_up` cables (a profile name, or a bundle such as 9xoptical-800g), each GPU's NIC on
    `scale_out`, racks of `layout.gpus_per_rack` GPUs."""

    domains: int
    domain_gpus: int
    scale_up: str
    scale_out: str
    layout: Layout

    def __post_init__(self) -> None:
        for what, value, low in (("domains", self.domains, 1),
                                 ("GPUs per domain", self.domain_gpus, 2)):
            if not is_whole(value, low, MAX_GPUS):
                raise NetwallError(f"cluster: {what} must be a whole number from {low} to "
                                   f"{MAX_GPUS}, got {shown(value)}")
        if self.domains * self.domain_gpus > MAX_GPUS:
            raise NetwallError(f"cluster: {self.domains} domains of {self.domain_gpus} GPUs "
                               f"is more than {MAX_GPUS} GPUs")

    @property
    def racks_per_domain(self) -> int:
        """Racks one domain fills."""
        return -(-self.domain_gpus // self.layout.gpus_per_rack)

    def domain_of(self, rank: int) -> int:
        """The domain of a rank (ranks are domain-major)."""
        return rank // self.domain_gpus


def parse_spec(spec: str, scale_up: str, scale_out: str, layout: str | None = None) -> Cluster:
    """cluster:DxG with the given profiles; the layout text defaults to one rack per
    domain (gpus_per_rack = G)."""
    found = re.fullmatch(r"cluster:([0-9]+)x([0-9]+)", spec)
    if not found:
        raise NetwallError(f"topology {spec!r}: {USAGE}, e.g. cluster:2x4")
    domains, gpus = int(found.group(1)), int(found.group(2))
    return Cluster(domains, gpus, scale_up, scale_out, parse_layout(layout or "", gpus))


def topology(cluster: Cluster, name: str) -> Topology:
    """The cluster's graph: GPUs domain-major (rank r is GPU r % G of domain r // G), domain
    switches nvs<d>, leaves leaf<i> (rail i), spine0; links ordered as the module says."""
    d, g, layout = cluster.domains, cluster.domain_gpus, cluster.layout
    per_rack, racks = layout.gpus_per_rack, cluster.racks_per_domain
    network = spine_slot(layout, d * racks)
    gpus = tuple(f"gpu{r}" for r in range(d * g))
    leaves = tuple(f"leaf{i}" for i in range(g))
    uplink = cluster.scale_out if d == 1 else f"{d}x{cluster.scale_out}"  # non-blocking
    links = [Link(leaf, SPINE, uplink, cable_length_in_rack(layout), SCALE_OUT)
             for leaf in leaves]
    up = []
    for r, gpu in enumerate(gpus):
        domain, i = divmod(r, g)
        rack = rack_slot(domain * racks + i // per_rack, network)
        switch_rack = rack_slot(domain * racks + (racks - 1) // 2, network)
        k = i % per_rack
        links.append(Link(gpu, leaves[i], cluster.scale_out,
                          cable_length_gpu_to_rack(layout, k, rack, network), SCALE_UP))
        up.append(Link(gpu, f"nvs{domain}", cluster.scale_up,
                       cable_length_gpu_to_rack(layout, k, rack, switch_rack), SCALE_UP))
    domain_switches = tuple(f"nvs{k}" for k in range(d))  # NVSwitches: NVLS-capable
    return Topology(name, gpus, domain_switches + leaves + (SPINE,), tuple(links + up),
                    nvls=domain_switches)


def check_reach(cluster: Cluster, topo: Topology, catalogue: Mapping[str, Any]) -> None:
    """Refuse a domain its technology cannot cable, naming the first cable too long for it
    (validate() would refuse it too, in words that do not say why a domain cannot be)."""
    for index, link in enumerate(topo.links):
        profile = catalogue.get(link.profile)
        if profile is None or link.length_m <= profile.reach_m:
            continue  # an unknown profile is validate()'s to name
        span = (f"a domain of {cluster.domain_gpus} GPUs over {cluster.racks_per_domain} "
                f"racks of {cluster.layout.gpus_per_rack}"
                if fabric(topo, index) == "scale-up" else "its scale-out network")
        raise NetwallError(f"{topo.name}: {profile.name} cannot cable {span}: "
                           f"{link.a}--{link.b} is {link.length_m:g} m long but "
                           f"{profile.name} reaches {profile.reach_m:g} m")


def fabric(topo: Topology, link: int) -> str:
    """'scale-up' for a cable to a domain switch, else 'scale-out' (NICs, leaf to spine)."""
    cable = topo.links[link]
    return "scale-up" if cable.a.startswith("nvs") or cable.b.startswith("nvs") else "scale-out"


#: The keys of a cluster's YAML form (a topology file's `cluster:`, a design file's design).
KEYS = ("domains", "domain_gpus", "scale_up", "scale_out", "layout")


def from_mapping(doc: Mapping[str, Any], link: str = "nvlink5",
                 spine_link: str = "optical-800g") -> Cluster:
    """A Cluster from its YAML form; `link` and `spine_link` are the profiles of a missing
    scale_up and scale_out. scale_up is a profile name or {profile: NAME, cables: N}, N
    cables of it side by side (a bundle, e.g. 9 x optical-800g = NVLink 5's 7200 Gb/s)."""
    unknown = [key for key in doc if key not in KEYS]
    if unknown:
        raise NetwallError(f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    for key, low in (("domains", 1), ("domain_gpus", 2)):
        value = doc.get(key)
        if not is_whole(value, low, MAX_GPUS):
            raise NetwallError(f"key {key!r}: expected a whole number from {low} to "
                               f"{MAX_GPUS}, got {shown(value)}")
    layout = doc.get("layout", "")
    if not isinstance(layout, str):
        raise NetwallError(f"key 'layout': expected a layout such as gpus=4,pitch=0.6, "
                           f"got {shown(layout)}")
    return Cluster(doc["domains"], doc["domain_gpus"],
                   _profile(doc.get("scale_up", link), "scale_up"),
                   _profile(doc.get("scale_out", spine_link), "scale_out"),
                   parse_layout(layout, doc["domain_gpus"]))


def _profile(value: Any, key: str) -> str:
    """A profile name, or a bundle's name from {profile, cables}."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and set(value) <= {"profile", "cables"} and \
            isinstance(value.get("profile"), str):
        cables = value.get("cables", 1)
        if not is_whole(cables, 1, MAX_CABLES):
            raise NetwallError(f"key '{key}': cables must be a whole number 1..{MAX_CABLES}, "
                               f"got {shown(cables)}")
        return value["profile"] if cables == 1 else f"{cables}x{value['profile']}"
    raise NetwallError(f"key '{key}': expected a profile name or {{profile: NAME, cables: N}}, "
                       f"got {shown(value)}")
