"""Which host builds which node, when one emulated cluster spreads over several machines.

Every link whose two ends land on different hosts becomes a VXLAN tunnel over the hosts'
real NICs, so the partition keeps such links few: whole racks or scale-up domains stay on
one host (a built-in racks:RxG or cluster:DxG, or any topology whose GPUs each hang off one
switch), and any other graph is cut by METIS (pymetis), GPUs weighted so every host carries
a fair share of agents. Pure: the same topology and host count give the same partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pymetis

from emulator.models.plan import FRAME_BYTES
from emulator.models.profiles import LinkProfile
from foundation.errors import NetwallError
from topologies import Topology
from topologies.cluster import fabric

#: Bytes VXLAN adds to each frame on an IPv4 underlay (outer Ethernet, IP, UDP, VXLAN).
VXLAN_OVERHEAD = 50
#: A GPU (an agent, a shell, its links) weighs this many switches when balancing hosts.
GPU_WEIGHT = 8


@dataclass(frozen=True)
class Partition:
    """host[node] is the index (in the host list) of the host that builds the node."""

    topology: Topology
    hosts: int
    host: dict[str, int]

    def cross_links(self) -> list[int]:
        """Links whose ends are on two hosts: each one VXLAN tunnel."""
        return [i for i, link in enumerate(self.topology.links)
                if self.host[link.a] != self.host[link.b]]

    def nodes_of(self, host: int) -> list[str]:
        """The nodes one host builds, GPUs first, each in topology order."""
        topo = self.topology
        return [n for n in topo.gpus + topo.switches if self.host[n] == host]

    def ranks_of(self, host: int) -> list[int]:
        return [r for r, gpu in enumerate(self.topology.gpus) if self.host[gpu] == host]


def partition(topo: Topology, hosts: int) -> Partition:
    """Spread `topo` over `hosts` hosts, each with at least one GPU."""
    if hosts < 1:
        raise NetwallError("the host list is empty")
    if hosts > len(topo.gpus):
        raise NetwallError(f"{topo.name} has {len(topo.gpus)} GPUs, fewer than the {hosts} "
                           "hosts: use fewer hosts")
    if hosts == 1:
        return Partition(topo, 1, dict.fromkeys(topo.gpus + topo.switches, 0))
    groups = _groups(topo)
    placed = _place_groups(topo, groups, hosts) if groups else _metis(topo, hosts)
    empty = [h for h in range(hosts) if not any(placed[g] == h for g in topo.gpus)]
    if empty:
        raise NetwallError(f"{topo.name} cannot be spread over {hosts} hosts: host "
                           f"{empty[0] + 1} would hold no GPU; use fewer hosts")
    return Partition(topo, hosts, placed)


def _home(topo: Topology, gpu: str) -> str | None:
    """The switch a GPU's rack or scale-up domain is built around, if it has one."""
    switches = [(link, topo.other(link, gpu)) for link in topo.links_of(gpu)
                if not topo.is_gpu(topo.other(link, gpu))]
    if len(switches) > 1:  # a two-fabric cluster: the domain switch, not the NIC's leaf
        switches = [(link, s) for link, s in switches if fabric(topo, link) == "scale-up"]
    return switches[0][1] if len(switches) == 1 else None


def _groups(topo: Topology) -> dict[str, list[str]] | None:
    """Racks or domains: each home switch with its GPUs; None if some GPU has no home."""
    groups: dict[str, list[str]] = {}
    for gpu in topo.gpus:
        home = _home(topo, gpu)
        if home is None:
            return None
        groups.setdefault(home, []).append(gpu)
    return groups if len(groups) > 1 else None


def _place_groups(topo: Topology, groups: dict[str, list[str]], hosts: int) -> dict[str, int]:
    """Whole groups to hosts, largest first onto the least loaded (ties: the lowest index);
    every other switch (spine, leaves) joins the host most of its neighbours are on."""
    if len(groups) < hosts:
        raise NetwallError(f"{topo.name} has {len(groups)} racks or domains, fewer than the "
                           f"{hosts} hosts (each stays whole on one host): use fewer hosts")
    load = [0] * hosts
    placed: dict[str, int] = {}
    for switch, gpus in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        host = min(range(hosts), key=lambda h: (load[h], h))
        load[host] += len(gpus)
        placed.update(dict.fromkeys([switch, *gpus], host))
    rest = [s for s in topo.switches if s not in placed]
    while rest:  # nearest first: a leaf (next to GPUs) before the spine behind it
        ready = [s for s in rest if any(topo.other(link, s) in placed
                                        for link in topo.links_of(s))] or rest[:1]
        for switch in ready:
            votes = [0] * hosts
            for link in topo.links_of(switch):
                other = topo.other(link, switch)
                if other in placed:
                    votes[placed[other]] += 1
            placed[switch] = max(range(hosts), key=lambda h: (votes[h], -h))
            rest.remove(switch)
    return placed


def _metis(topo: Topology, hosts: int) -> dict[str, int]:
    """A balanced cut with few cut links, by METIS (GPUs weigh GPU_WEIGHT, switches 1)."""
    nodes = list(topo.gpus + topo.switches)
    index = {n: i for i, n in enumerate(nodes)}
    adjacency: list[list[int]] = [[] for _ in nodes]
    for link in topo.links:
        if link.a != link.b:
            adjacency[index[link.a]].append(index[link.b])
            adjacency[index[link.b]].append(index[link.a])
    weights = [GPU_WEIGHT if topo.is_gpu(n) else 1 for n in nodes]
    _, parts = pymetis.part_graph(hosts, adjacency=adjacency, vweights=weights)
    return {n: int(parts[index[n]]) for n in nodes}


def nic_load_gbps(part: Partition, catalogue: Mapping[str, LinkProfile],
                  dilation: float) -> list[float]:
    """Per host, the most its cross-host links can put on its NIC each way (Gb/s of real
    time): their rates over the dilation, plus VXLAN's bytes on every frame."""
    load = [0.0] * part.hosts
    for i in part.cross_links():
        link = part.topology.links[i]
        rate = catalogue[link.profile].rate_gbps / dilation
        for end in (link.a, link.b):
            load[part.host[end]] += rate * (FRAME_BYTES + VXLAN_OVERHEAD) / FRAME_BYTES
    return load


def min_dilation(part: Partition, catalogue: Mapping[str, LinkProfile],
                 nic_gbps: float) -> float:
    """The least dilation at which no host's cross-host links can outrun its NIC."""
    return max(nic_load_gbps(part, catalogue, 1.0), default=0.0) / nic_gbps


def check_nic(part: Partition, catalogue: Mapping[str, LinkProfile], dilation: float,
              nic_gbps: float, names: list[str]) -> None:
    """Refuse, in one line, a dilation at which some host's cross-host links could carry
    more than its physical NIC (`names`: the hosts as the user named them)."""
    for host, load in enumerate(nic_load_gbps(part, catalogue, dilation)):
        if load > nic_gbps:
            need = min_dilation(part, catalogue, nic_gbps)
            raise NetwallError(
                f"at dilation {dilation:g} the links {names[host]} carries to other hosts "
                f"need up to {load:.3g} Gb/s, more than its {nic_gbps:g} Gb/s NIC: use "
                f"--dilation {need:.3g} or more, a faster --nic-gbps, or fewer hosts")
