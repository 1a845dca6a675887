"""The topology graph: GPUs and switches joined by links of a named profile.

Link order is meaningful: a node's k-th link (in `Topology.links` order) is its interface
``{node}-eth{k}``, so the network builder, the router and the per-link statistics all agree
on names without passing them around.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIRECT = "direct"  # GPU to GPU, e.g. an NVLink cable
SCALE_UP = "scale-up"  # GPU to switch
SCALE_OUT = "scale-out"  # switch to switch
TIERS = (DIRECT, SCALE_UP, SCALE_OUT)
MAX_GPUS = 1024  # what one host can plausibly emulate; also bounds file-driven allocation


def tier_of(a_is_gpu: bool, b_is_gpu: bool) -> str:
    """The tier a link has by construction, from what its two ends are."""
    if a_is_gpu and b_is_gpu:
        return DIRECT
    return SCALE_UP if a_is_gpu or b_is_gpu else SCALE_OUT


@dataclass(frozen=True)
class Link:
    """An undirected cable; `profile` names a link technology in the profile catalogue."""

    a: str
    b: str
    profile: str
    length_m: float
    tier: str


@dataclass(frozen=True)
class Topology:
    """An immutable graph. Rank r is gpus[r]; switches are L2 bridges, GPUs route IP.

    `nvls` names the switches that can reduce and multicast (NVLink SHARP, an NVSwitch's
    in-switch reduction): a schedule's participant past the GPUs is one of them, in order
    (`node`), so an NVLS call over a domain runs on its switch (traffic.collectives.nvls).
    """

    name: str
    gpus: tuple[str, ...]
    switches: tuple[str, ...]
    links: tuple[Link, ...]
    nvls: tuple[str, ...] = ()
    # Derived indexes and the router's per-destination trees: never compared or hashed.
    _ranks: dict[str, int] = field(init=False, repr=False, compare=False)
    _adjacency: dict[str, list[int]] = field(init=False, repr=False, compare=False)
    _ports: dict[tuple[int, str], int] = field(init=False, repr=False, compare=False)
    _cache: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        adjacency: dict[str, list[int]] = {node: [] for node in self.gpus + self.switches}
        ports: dict[tuple[int, str], int] = {}
        for index, link in enumerate(self.links):
            for node in dict.fromkeys((link.a, link.b)):  # a self-link is one port, not two
                own = adjacency.setdefault(node, [])
                ports[(index, node)] = len(own)
                own.append(index)
        object.__setattr__(self, "_ranks", {gpu: r for r, gpu in enumerate(self.gpus)})
        object.__setattr__(self, "_adjacency", adjacency)
        object.__setattr__(self, "_ports", ports)

    def rank(self, gpu: str) -> int:
        """The rank of a GPU (its position in `gpus`)."""
        try:
            return self._ranks[gpu]
        except KeyError:
            raise KeyError(f"{gpu!r} is not a GPU of topology {self.name}") from None

    def node(self, index: int) -> str:
        """Where a schedule participant runs: rank r on gpus[r], index len(gpus) + k on the
        k-th NVLS switch."""
        return self.gpus[index] if index < len(self.gpus) else self.nvls[index - len(self.gpus)]

    def nvls_switch(self, ranks: tuple[int, ...] | range) -> int | None:
        """The participant index of the NVLS switch every one of `ranks` is cabled to (one
        scale-up domain), or None: NVLS then cannot serve them, as NCCL runs NVLS on one
        node only."""
        for k, switch in enumerate(self.nvls):
            near = {self.other(link, switch) for link in self.links_of(switch)}
            if all(self.gpus[r] in near for r in ranks):
                return len(self.gpus) + k
        return None

    def links_of(self, node: str) -> list[int]:
        """Indices of the links touching node, in link order (position k is {node}-eth{k})."""
        return list(self._adjacency.get(node, ()))

    def port(self, link: int, node: str) -> int:
        """The position of link among node's links, i.e. k in the interface name {node}-eth{k}."""
        try:
            return self._ports[(link, node)]
        except KeyError:
            raise ValueError(f"link {link} does not touch {node!r}") from None

    def interface(self, link: int, node: str) -> str:
        """The Linux interface name of node's end of link."""
        return f"{node}-eth{self.port(link, node)}"

    def other(self, link: int, node: str) -> str:
        """The far end of link as seen from node."""
        end = self.links[link]
        if node == end.a:
            return end.b
        if node == end.b:
            return end.a
        raise ValueError(f"link {link} does not touch {node!r}")

    def directed(self, link: int, sender: str) -> str:
        """One direction of a cable, as reports name it: 'sender->receiver'."""
        return f"{sender}->{self.other(link, sender)}"

    def is_gpu(self, node: str) -> bool:
        """True for GPUs (IP routers), False for switches (L2 bridges)."""
        return node in self._ranks
