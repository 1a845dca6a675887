"""Everything the emulated network will be, computed before anything is built.

From a validated topology, the profile catalogue and the dilation factor this derives every
interface name and MAC, every GPU's address and static routes, and the shaping of every link
direction. It is pure data, so tests check it without root; network.py only executes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from emulator.models import dilation as dil
from emulator.models.profiles import LinkProfile
from topologies import Topology, next_hops, segment, switch_segments
from traffic.protocol import Peer

#: MTU of every emulated interface. Real links carry 4-9 KB frames, but bytes are what count:
#: a 65000-byte frame carries 7x a 9000-byte jumbo frame for the same per-frame cost of the
#: software data plane (a system call, a header, a wake-up).
EMULATION_MTU = 65000
#: Bytes of one full emulated frame on the wire (Ethernet header included).
FRAME_BYTES = EMULATION_MTU + 14
#: The repair timeout's margin for the host's scheduling noise, in real seconds.
RTO_MARGIN_REAL_S = 10e-6
#: ...but never under 20 ms of wall time: below D = 2000 the host's scheduling noise, not the
#: emulated link, decides what is late (at D = 1 a 10 us margin makes every frame late).
RTO_FLOOR_WALL_S = 0.02


@dataclass(frozen=True)
class Interface:
    node: str
    name: str
    mac: str
    link: int


@dataclass(frozen=True)
class Route:
    """On a GPU host: reach rank `dst` out of `iface` through the GPU owning `via_ip`/`via_mac`."""

    dst: int
    dst_ip: str
    iface: str
    src_mac: str
    via_ip: str
    via_mac: str


@dataclass(frozen=True)
class Plan:
    topology: Topology
    dilation: float
    interfaces: dict[tuple[int, str], Interface]  # (link, node) -> that node's end of the link
    ips: dict[str, str]  # GPU -> its address (one /32 on all its interfaces)
    routes: dict[str, list[Route]]  # GPU -> its static routes, one per other GPU
    shapes: dict[tuple[int, str], dil.LinkShape]  # (link, node) -> shaping of node's egress
    fdb: dict[str, list[tuple[str, str]]]  # switch -> static (port, GPU MAC) forwarding entries
    #: NVLS switch -> (address, MAC) of its bridge's own port, where its agent runs
    nvls: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: GPU -> its routes to the NVLS switches it is cabled to (rank: participant index)
    nvls_routes: dict[str, list[Route]] = field(default_factory=dict)

    def retransmit_timeout_s(self) -> float:
        """How long a stalled transfer waits before asking for repairs (emulated seconds).

        Long enough for the fullest possible queue of the slowest link to drain twice, plus
        delay, plus a margin for scheduling noise: a NACK then means a frame is lost, not late.
        Every term scales with the dilation, so a repair costs the same real time at any D, as
        the dilation probe requires, down to D = 2000; below it the margin stays 20 ms of wall
        time, the host's own noise (a repair there costs more real time at smaller D, which
        the probe then sees and flags).
        """
        drain = max((s.limit_packets + 2) * FRAME_BYTES * 8 / s.rate_bps
                    for s in self.shapes.values())
        delay = max(s.delay_us for s in self.shapes.values()) * 1e-6
        return 2 * drain + 8 * delay + max(RTO_MARGIN_REAL_S * self.dilation,
                                           RTO_FLOOR_WALL_S)

    def send_buffer_bytes(self) -> int:
        """An agent's data socket buffer (the kernel doubles it): frames_in_flight frames."""
        return frames_in_flight(self.shapes.values()) * (FRAME_BYTES + 512) // 2

    def racks(self) -> list[list[int]] | None:
        """Ranks grouped by the switch their GPU hangs off (racks), if every GPU has one and
        the groups are equal: what hierarchical algorithms split on."""
        return self._by_switch(lambda _switch: True)

    def groups(self) -> list[list[int]] | None:
        """Where built-in workloads place their tensor, expert and pipeline groups: the
        racks, or on a two-fabric cluster the scale-up domains (the GPUs on one switch that
        joins only GPUs); None if neither splits the ranks into equal groups."""
        t = self.topology
        return self.racks() or self._by_switch(
            lambda switch: all(t.is_gpu(t.other(k, switch)) for k in t.links_of(switch)))

    def _by_switch(self, counts: Callable[[str], bool]) -> list[list[int]] | None:
        """Ranks grouped by the one switch next to each GPU that `counts`, if every GPU has
        exactly one and the groups are more than one and equal."""
        t = self.topology
        groups: dict[str, list[int]] = {}
        for rank, gpu in enumerate(t.gpus):
            own = [s for s in (t.other(link, gpu) for link in t.links_of(gpu))
                   if not t.is_gpu(s) and counts(s)]
            if len(own) != 1:
                return None
            groups.setdefault(own[0], []).append(rank)
        sizes = {len(g) for g in groups.values()}
        return list(groups.values()) if len(groups) > 1 and len(sizes) == 1 else None

    def ip_batch(self, gpu: str, mtu: int) -> str:
        """The GPU host's links, address, static neighbours and routes as `ip -batch` input."""
        lines = ["link set dev lo up"]
        for link in self.topology.links_of(gpu):
            name = self.interfaces[(link, gpu)].name
            lines.append(f"link set dev {name} mtu {mtu} up")
            lines.append(f"addr add {self.ips[gpu]}/32 dev {name}")
        routes = self.routes[gpu] + self.nvls_routes.get(gpu, [])
        for r in routes:
            lines.append(f"neigh replace {r.via_ip} lladdr {r.via_mac} dev {r.iface} nud permanent")
        one_wire = len({r.iface for r in routes}) == 1 and all(r.via_ip == r.dst_ip for r in routes)
        if one_wire:  # every peer on this GPU's one wire (a switched fabric): one route
            lines.append(f"route add {GPU_BLOCK} dev {routes[0].iface} scope link")
        else:
            for r in routes:
                if r.via_ip == r.dst_ip:
                    lines.append(f"route add {r.dst_ip}/32 dev {r.iface} scope link")
                else:  # onlink: the next hop is on this wire, though no subnet says so
                    lines.append(f"route add {r.dst_ip}/32 via {r.via_ip} dev {r.iface} onlink")
        return "\n".join(lines) + "\n"

    def peers(self, gpu: str) -> dict[int, Peer]:
        """What the agent on `gpu` needs to address a frame to each other rank (and to the
        NVLS switches it is cabled to)."""
        links = {i.name: i.link for i in self.interfaces.values() if i.node == gpu}
        return {
            route.dst: Peer(iface=route.iface, src_mac=route.src_mac, dst_mac=route.via_mac,
                            src_ip=self.ips[gpu], dst_ip=route.dst_ip,
                            link=links[route.iface])
            for route in self.routes[gpu] + self.nvls_routes.get(gpu, [])
        }

    def switch_peers(self, switch: str) -> dict[int, Peer]:
        """What an NVLS switch's agent needs to address each GPU cabled to it: it sends on
        the bridge's own port, so the bridge forwards each copy out of the GPU's port, through
        that port's shaping."""
        t = self.topology
        ip, own_mac = self.nvls[switch]
        return {t.rank(gpu): Peer(iface=switch, src_mac=own_mac,
                                  dst_mac=self.interfaces[(link, gpu)].mac, src_ip=ip,
                                  dst_ip=self.ips[gpu], link=link)
                for link in t.links_of(switch) if t.is_gpu(gpu := t.other(link, switch))}

    def switch_batch(self, switch: str) -> str:
        """The NVLS switch's own port: its address and a neighbour and route per GPU, as
        `ip -batch` input (its MAC is set as the bridge is made)."""
        ip, _ = self.nvls[switch]
        lines = [f"addr add {ip}/32 dev {switch}"]
        for peer in self.switch_peers(switch).values():
            lines.append(f"neigh replace {peer.dst_ip} lladdr {peer.dst_mac} dev {switch} "
                         "nud permanent")
            lines.append(f"route add {peer.dst_ip}/32 dev {switch} scope link")
        return "\n".join(lines) + "\n"


def frames_in_flight(shapes) -> int:
    """Frames one sender may have queued at its port: what the smallest profile buffer holds
    less a few (room for ACKs), at most 16 (enough to keep an unshaped link busy)."""
    return max(2, min(16, min(s.queue_packets for s in shapes) - 4))


def lossless(shapes: dict, senders: int) -> dict:
    """Give every queue room for all the frames every sender can have in flight at once:
    `senders` shares of frames_in_flight (a GPU has one, an NVLS switch's agent one per
    GPU link: traffic.protocol.Setup.send_buffer).

    Scale-up fabrics do not drop on congestion (NVLink's credit-based flow control, PFC
    under RoCE): a burst waits. So queues here never overflow and only bit errors lose
    frames; the profile's buffer still paces each sender (frames_in_flight).
    """
    limit = senders * (frames_in_flight(shapes.values()) + 4) + 8
    return {key: replace(shape, limit_packets=limit) for key, shape in shapes.items()}


GPU_BLOCK = "10.77.0.0/16"  # every GPU address (rank_ip), and the NVLS switches' after them
#: The port number in the MAC (mac()) of an NVLS switch's own port on its bridge.
OWN_PORT = 0xFFFF


def rank_ip(rank: int) -> str:
    """GPU addresses: 10.77.0.1 for rank 0, counting up (inside the hosts' own namespaces)."""
    n = rank + 1
    return f"10.77.{n >> 8}.{n & 255}"


def mac(node_index: int, port: int) -> str:
    """A locally administered MAC that names its node and port: 02:4e:NN:NN:PP:PP."""
    return f"02:4e:{node_index >> 8:02x}:{node_index & 255:02x}:{port >> 8:02x}:{port & 255:02x}"


def gpu_link_rates(topo: Topology, catalogue: Mapping[str, LinkProfile]) -> dict[str, list[float]]:
    """Each GPU's link rates in Gb/s: what it could inject at once."""
    return {
        gpu: [catalogue[topo.links[i].profile].rate_gbps for i in topo.links_of(gpu)]
        for gpu in topo.gpus
    }


def make_plan(
    topo: Topology, catalogue: Mapping[str, LinkProfile], dilation: float
) -> Plan:
    nodes = topo.gpus + topo.switches
    index = {node: i for i, node in enumerate(nodes)}
    interfaces = {}
    for link in range(len(topo.links)):
        for node in (topo.links[link].a, topo.links[link].b):
            interfaces[(link, node)] = Interface(
                node, topo.interface(link, node), mac(index[node], topo.port(link, node)), link
            )
    ips = {gpu: rank_ip(r) for r, gpu in enumerate(topo.gpus)}
    routes: dict[str, list[Route]] = {}
    segments = switch_segments(topo)
    for gpu, table in next_hops(topo).items():
        routes[gpu] = [
            Route(topo.rank(dst), ips[dst], interfaces[(link, gpu)].name,
                  interfaces[(link, gpu)].mac, ips[via],
                  _mac_toward(topo, interfaces, segments, link, gpu, via))
            for dst, (link, via) in sorted(table.items(), key=lambda kv: topo.rank(kv[0]))
        ]
    fdb = {switch: _forwarding(topo, interfaces, switch) for switch in topo.switches}
    nvls = {switch: (rank_ip(len(topo.gpus) + k), mac(index[switch], OWN_PORT))
            for k, switch in enumerate(topo.nvls)}
    nvls_routes: dict[str, list[Route]] = {}
    for k, switch in enumerate(topo.nvls):
        ip, own_mac = nvls[switch]
        for link in topo.links_of(switch):
            gpu = topo.other(link, switch)
            if topo.is_gpu(gpu):
                end = interfaces[(link, gpu)]
                nvls_routes.setdefault(gpu, []).append(
                    Route(len(topo.gpus) + k, ip, end.name, end.mac, ip, own_mac))
    return Plan(topo, dilation, interfaces, ips, routes,
                _shapes(topo, catalogue, interfaces, dilation), fdb, nvls, nvls_routes)


def redilated(plan: Plan, catalogue: Mapping[str, LinkProfile], dilation: float) -> Plan:
    """The same network at another dilation: only the shaping changes."""
    return replace(plan, dilation=dilation,
                   shapes=_shapes(plan.topology, catalogue, plan.interfaces, dilation))


def _shapes(topo: Topology, catalogue: Mapping[str, LinkProfile], interfaces,
            dilation: float) -> dict[tuple[int, str], dil.LinkShape]:
    """Every link end's shaping at this dilation, with lossless queues."""
    shapes = {}
    for link, node in interfaces:
        cable = topo.links[link]
        profile = catalogue[cable.profile]
        shapes[(link, node)] = dil.link_shape(
            rate_gbps=profile.rate_gbps,
            delay_ns=profile.delay_ns(cable.length_m),
            frame_loss=profile.frame_loss(FRAME_BYTES),
            queue_bytes=profile.queue_bytes,
            dilation=dilation,
            frame_bytes=FRAME_BYTES,
            catch_up=topo.is_gpu(cable.a) or topo.is_gpu(cable.b),
        )
    switch_links = sum(topo.is_gpu(topo.other(link, switch))
                       for switch in topo.nvls for link in topo.links_of(switch))
    return lossless(shapes, len(topo.gpus) + switch_links)


def _forwarding(topo: Topology, interfaces, switch: str) -> list[tuple[str, str]]:
    """Static forwarding entries: every GPU MAC on the segment, and the port toward it.

    A learning bridge floods frames for MACs it has not seen yet, and in a ring some MACs are
    never seen as sources on some bridges: the flood copies would load links the schedule
    does not use. Static entries (and flooding off) make every frame take its one path.
    """
    first_port = segment(topo, switch)  # each switch of the segment -> `switch`'s port toward it
    entries = []
    for other, via in first_port.items():
        for link in topo.links_of(other):
            gpu = topo.other(link, other)
            if topo.is_gpu(gpu):
                port = link if via is None else via
                entries.append((interfaces[(port, switch)].name, interfaces[(link, gpu)].mac))
    return entries


def _mac_toward(topo: Topology, interfaces, segments: dict[str, frozenset[str]], link: int,
                gpu: str, via: str) -> str:
    """The MAC of `via`'s interface on the segment that `gpu` reaches through `link`."""
    far = topo.other(link, gpu)
    if far == via:
        return interfaces[(link, via)].mac
    for via_link in topo.links_of(via):
        if topo.other(via_link, via) in segments[far]:
            return interfaces[(via_link, via)].mac
    raise AssertionError(f"{via} has no interface on the segment of {far}")

