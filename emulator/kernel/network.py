"""Build a Plan as a running Mininet network, configured through netlink.

Mininet gives each GPU a host (a shell in its own network namespace) and keeps the `net`
object users know. Everything else goes through pyroute2 on one reused netlink socket per
namespace: veth pairs, bridges, MTU, addresses, static routes and neighbours, and shaping.
That avoids Mininet's fork per `ip`/`tc`/`ifconfig` command and its 1 Gb/s TCLink ceiling.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

from mininet.node import Host, Switch

from emulator.kernel import loss, nlbatch, shaping, vxlan
from emulator.kernel import records as state
from emulator.kernel.links import LinkStates
from emulator.kernel.mininet_api import NetlinkLink, NetwallMininet
from emulator.kernel.netns import inside, iproute
from emulator.models.dilation import at_rate
from emulator.models.plan import EMULATION_MTU, FRAME_BYTES, Interface, Plan
from emulator.models.verdict import cpu_times

#: Host sysctls: forward for multi-hop topologies, no reverse-path filter on our /32s,
#: and no IPv6 so no stray neighbour-discovery frames disturb the per-link byte counts.
NUD_NOARP = 0x40  # a static bridge forwarding entry (`bridge fdb add ... static`)
NTF_MASTER = 0x04

IDLE = {"bytes": 0, "packets": 0, "drops": 0, "backlog": 0}  # counters of an unshaped end

HOST_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/ipv4/conf/all/rp_filter": "0",
    "net/ipv4/conf/default/rp_filter": "0",
    "net/ipv4/conf/all/send_redirects": "0",
    "net/ipv6/conf/all/disable_ipv6": "1",
    "net/ipv6/conf/default/disable_ipv6": "1",
}


class Bridge(Switch):
    """A Linux bridge, made by netlink inside the switch's own network namespace.

    In its own namespace a switch's name clashes with nothing: two emulations (or a plain
    Mininet) can each have an `nvs0`, and nothing of netwall's appears in the host's own
    namespace. No STP: topologies are checked loop-free.
    """

    def start(self, _controllers) -> None:
        ipr = _ipr(self)
        # An NVLS switch's own port gets the MAC its agent and the GPUs address it by.
        own = {"address": self.params["own_mac"]} if self.params.get("own_mac") else {}
        # No STP, no multicast snooping: either would put frames of its own on the links.
        ipr.link("add", ifname=self.name, kind="bridge", br_stp_state=0, br_forward_delay=0,
                 br_mcast_snooping=0, **own)
        indexes = {link.get_attr("IFLA_IFNAME"): link["index"] for link in ipr.get_links()}
        ports = self.params["ports"]  # cables to other hosts too, which Mininet never saw
        with inside(self.pid):
            state.disable_bridge_netfilter()
            for name in [self.name, *ports]:
                # No IPv6 on switch ports: its link-local chatter would count as traffic.
                with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
                    f.write("1")

        bridge = indexes[self.name]
        port, entry = _bridge_templates(bridge)
        requests = [nlbatch.stamp(port, indexes[name]) for name in ports]
        requests.append(nlbatch.compile_requests(
            lambda batch: batch.link("set", index=bridge, mtu=EMULATION_MTU, state="up")))
        requests += [nlbatch.stamp(entry, indexes[name], mac) for name, mac in self.params["fdb"]]
        nlbatch.send(self.pid, b"".join(requests), f"starting {self.name}")


@functools.cache
def _bridge_templates(bridge: int) -> tuple[bytes, bytes]:
    """A port's requests (join bridge `bridge`, forward by static entries only, come up)
    and a static forwarding entry's, compiled once for nlbatch.stamp."""
    def port(batch) -> None:
        batch.link("set", index=nlbatch.PLACEHOLDER, master=bridge, mtu=EMULATION_MTU)
        # Forward by the static entries only: no learning, no flooding of unknown MACs.
        batch.brport("set", index=nlbatch.PLACEHOLDER, learning=0, unicast_flood=0)
        batch.link("set", index=nlbatch.PLACEHOLDER, state="up")

    def entry(batch) -> None:
        batch.fdb("add", ifindex=nlbatch.PLACEHOLDER, lladdr=nlbatch.PLACEHOLDER_MAC,
                  state=NUD_NOARP, flags=NTF_MASTER)

    return nlbatch.compile_requests(port), nlbatch.compile_requests(entry)


class GpuHost(Host):
    """A Mininet host whose shell start-up overlaps with the others'.

    Mininet's startShell spawns bash and then blocks until its prompt appears, and runs a
    first command: a round trip per host, one host after another. Here the spawn happens as
    usual but the wait and the command are deferred: Network resumes every shell, then waits
    for them all. Mininet's config (an `ifconfig lo up` per host) is skipped: Network sets
    interfaces, addresses and routes in one `ip -batch` per host.
    """

    _deferred: list | None = None

    def startShell(self, mnopts=None) -> None:  # noqa: N802 - Mininet's name
        self._deferred = []
        super().startShell(mnopts)

    def read(self, size: int = 1024) -> str:
        if self._deferred is not None:
            return chr(127)  # the prompt sentinel: "ready", for now
        return super().read(size)

    def cmd(self, *args, **kwargs) -> str:
        if self._deferred is not None:
            self._deferred.append(" ".join(str(a) for a in args))
            return ""
        return super().cmd(*args, **kwargs)

    def resume(self) -> None:
        """Wait for the real prompt, then send what startShell asked for meanwhile (its
        output is awaited by waitOutput())."""
        deferred, self._deferred = self._deferred or [], None
        while not self.read(1024).endswith(chr(127)):
            self.pollOut.poll()
        self.sendCmd("; ".join(deferred) or "true")

    def config(self, **_params) -> dict:
        return {}


def _finish(loaders: list[tuple[str, subprocess.Popen]], check: bool = True) -> None:
    """Wait for every `ip -batch` loader; with `check`, the first that failed raises."""
    failed = []
    for gpu, loader in loaders:
        error = loader.stderr.read().strip()
        loader.stderr.close()
        if loader.wait() != 0:
            failed.append(f"configuring {gpu} failed: {error}")
    if failed and check:
        raise RuntimeError(failed[0])


def _ipr(node):
    """The netlink socket for a node's namespace, opened once and kept on the node."""
    if getattr(node, "_netwall_ipr", None) is None:
        node._netwall_ipr = iproute(_netns_pid(node))
    return node._netwall_ipr


def _netns_pid(node) -> int | None:
    """The process whose network namespace is the node's (None: this process's)."""
    return node.pid if node.inNamespace else None


def _netns_fd(node) -> int:
    return os.open(f"/proc/{_netns_pid(node) or 'self'}/ns/net", os.O_RDONLY)


@dataclass(frozen=True)
class Share:
    """The part of a cluster spread over several hosts that this host builds: its `nodes`,
    and for each cable to a node elsewhere the address of the host at its far end (`remote`),
    reached from `local` over VXLAN on UDP `port` (emulator.kernel.vxlan)."""

    nodes: frozenset[str]
    remote: dict[int, str] = field(default_factory=dict)
    local: str = ""
    port: int = vxlan.DEFAULT_PORT


class Network:
    """The emulated cluster (or, with a Share, this host's part of it): a started Mininet
    built from a Plan, torn down by stop(). A Fabric (emulator.kernel.links)."""

    def __init__(self, plan: Plan, netem: bool, links: LinkStates | None = None,
                 share: Share | None = None) -> None:
        """`links`: the emulation's link state, which changes links on this network from now
        on, Mininet's link up and down included (None: no link state, changes refused)."""
        self.plan = plan
        topo = plan.topology
        self.share = share or Share(frozenset(topo.gpus + topo.switches))
        #: The nodes built here, GPUs in rank order then switches.
        self.gpus = [g for g in topo.gpus if g in self.share.nodes]
        self.switches = [s for s in topo.switches if s in self.share.nodes]
        self.netem = netem
        self.links = links or LinkStates(topo, {}, netem, faultable=False)  # refuses changes
        if links is not None:
            links.attach(self)
        self.net: NetwallMininet | None = None
        self.hosts: list[Host] = []
        self.record: state.Record | None = None

    def start(self) -> None:
        topo = self.plan.topology
        # Each GPU costs the controller a few descriptors (shell, agent pipes, netlink socket):
        # past ~300 GPUs a 1024 soft limit runs out, so take what the hard limit allows.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        net = NetwallMininet(topology=topo, is_down=self.is_down, topo=None, build=False,
                             controller=None, switch=Bridge, host=GpuHost, link=NetlinkLink,
                             autoSetMacs=False, autoStaticArp=False, waitConnected=False,
                             cleanup=False)
        self.net = net
        self.record = state.Record(topo.name)
        for gpu in self.gpus:
            net.addHost(gpu, ip=None)
        for switch in self.switches:
            net.addSwitch(switch, inNamespace=True, fdb=self.plan.fdb[switch],
                          own_mac=self.plan.nvls.get(switch, (None, None))[1],
                          ports=[self.plan.interfaces[(link, switch)].name
                                 for link in topo.links_of(switch)])
        self.hosts = [net.get(gpu) for gpu in self.gpus]
        for host in self.hosts:
            host.resume()
        for host in self.hosts:
            host.waitOutput()
        # Once every shell is in its namespace (a GPU's is, once its prompt came), which
        # the record proves it by; until then a teardown kills them through Mininet.
        self.record.add("hosts", [node.pid for node in net.hosts + net.switches])
        self._make_veth_pairs()
        self._tunnel()
        for link, cable in enumerate(topo.links):
            if not {cable.a, cable.b} <= self.share.nodes:
                continue  # an end is another host's: Mininet sees no link
            a = self.plan.interfaces[(link, cable.a)]
            b = self.plan.interfaces[(link, cable.b)]
            net.addLink(cable.a, cable.b, port1=topo.port(link, cable.a),
                        port2=topo.port(link, cable.b), intfName1=a.name, intfName2=b.name,
                        addr1=a.mac, addr2=b.mac, params1=self._address(cable.a),
                        params2=self._address(cable.b), cable=link, status=self.links.status)
        loaders = self._configure_gpus()  # on the other core, while this one goes on
        try:
            net.build()
            net.start()  # starts the bridges (Bridge.start), which shape nothing yet
            loaders += self._configure_nvls()
            self.index: dict[tuple[int, str], int] = {}
            for name in self.gpus + self.switches:
                self._shape_node(name, net.get(name))
            self.loss_now = {key: 0.0 for key in self.index}
            self.rate_now: dict[int, float] = {}  # cables a fault left at another rate, Gb/s
            if not self.netem:
                self._drop_frames()
        except BaseException:
            _finish(loaders, check=False)  # the first error is the one to report
            raise
        _finish(loaders)

    def _address(self, node: str) -> dict:
        """What Mininet records on a node's interface: a GPU's one address (a /32 on each of
        its interfaces, see Plan.ip_batch); a switch port has none."""
        ip = self.plan.ips.get(node)
        return {} if ip is None else {"ip": f"{ip}/32"}

    def is_down(self, link: int) -> bool:
        """True while cable `link` carries nothing (a fault, or Mininet's link down)."""
        cable = self.plan.topology.links[link]
        return any(self.loss_now.get((link, end), 0.0) >= 1.0 for end in (cable.a, cable.b))

    def _make_veth_pairs(self) -> None:
        """Every link's veth pair, in one netlink write per namespace: a pair is made in the
        namespace of its cable's first end, with the peer put straight into the other's."""
        topo = self.plan.topology
        targets = {name: _netns_fd(self.node(name)) for name in self.gpus + self.switches}
        here = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            pairs: dict[str, list[tuple]] = {}
            for link, cable in enumerate(topo.links):
                if link in self.share.remote:  # the near end, its peer a stub on this host
                    near = cable.a if cable.a in self.share.nodes else cable.b
                    stub = Interface(near, vxlan.stub_name(link), "", link)
                    pairs.setdefault(near, []).append(
                        (self.plan.interfaces[(link, near)], stub, here))
                elif cable.a in self.share.nodes:
                    pairs.setdefault(cable.a, []).append(
                        (self.plan.interfaces[(link, cable.a)],
                         self.plan.interfaces[(link, cable.b)], targets[cable.b]))
            for name, ends in pairs.items():
                def requests(batch, ends=ends) -> None:
                    for a, b, target in ends:
                        peer = {"ifname": b.name, "net_ns_fd": target}
                        batch.link("add", ifname=a.name, address=a.mac, kind="veth",
                                   peer=peer | ({"address": b.mac} if b.mac else {}))

                nlbatch.send(_netns_pid(self.node(name)), nlbatch.compile_requests(requests),
                             f"linking {name}")
        finally:
            for fd in [*targets.values(), here]:
                os.close(fd)

    def _tunnel(self) -> None:
        """Each cable to another host: its stub stitched to a VXLAN tunnel there (recorded
        first, so a killed run's tunnels are cleaned too)."""
        if not self.share.remote:
            return
        self.record.add("devices", [vxlan.tunnel_name(link) for link in self.share.remote])
        ipr = iproute(None)
        try:
            for link, remote in sorted(self.share.remote.items()):
                vxlan.stitch(ipr, link, self.share.local, remote, self.share.port)
        finally:
            ipr.close()

    def _configure_gpus(self) -> list[tuple[str, subprocess.Popen]]:
        """Sysctls, then addresses, routes and neighbours: O(GPUs^2) entries in all, so each
        host loads its share in one `ip -batch` process, all hosts at once. Returns the
        running loaders, for _finish."""
        loaders = []
        for gpu, host in zip(self.gpus, self.hosts, strict=True):
            with inside(host.pid):  # a child started here is born in the host's namespace
                for key, value in HOST_SYSCTLS.items():
                    with open(f"/proc/sys/{key}", "w") as f:
                        f.write(value)
                loader = subprocess.Popen(["ip", "-batch", "-"], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True)
            loader.stdin.write(self.plan.ip_batch(gpu, EMULATION_MTU))
            loader.stdin.close()
            loaders.append((gpu, loader))
        return loaders

    def _configure_nvls(self) -> list[tuple[str, subprocess.Popen]]:
        """Each NVLS switch's own port on its bridge (where its agent runs): its address, a
        neighbour and a route per GPU (Plan.switch_batch), one `ip -batch` each."""
        loaders = []
        for switch in self.switches:
            if switch not in self.plan.nvls:
                continue
            with inside(_netns_pid(self.node(switch))):
                for key in ("net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"):
                    with open(f"/proc/sys/{key}", "w") as f:
                        f.write("0")
                loader = subprocess.Popen(["ip", "-batch", "-"], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True)
            loader.stdin.write(self.plan.switch_batch(switch))
            loader.stdin.close()
            loaders.append((switch, loader))
        return loaders

    def _shape_node(self, name: str, node) -> None:
        """Every link end of a node shaped, in one netlink write (see emulator.kernel.nlbatch)."""
        links = self.plan.topology.links_of(name)
        with inside(_netns_pid(node)):  # names resolve in the node's namespace
            indexes = [socket.if_nametoindex(self.plan.interfaces[(link, name)].name)
                       for link in links]
        requests = []
        for link, index in zip(links, indexes, strict=True):
            self.index[(link, name)] = index
            tree = shaping.compiled(self.plan.shapes[(link, name)], self.netem, FRAME_BYTES)
            requests.append(nlbatch.stamp(tree, index))
        nlbatch.send(_netns_pid(node), b"".join(requests),
                     f"shaping the links of {name}")

    def _drop_frames(self) -> None:
        """Without netem, bit-error loss comes from an eBPF classifier on the far end (one
        loaded program per loss probability, shared by every interface that needs it; one
        netlink write per namespace)."""
        programs: dict[float, int] = {}
        templates: dict[float, bytes] = {}
        requests: dict[str, list[bytes]] = {}
        try:
            for (link, sender), shape in self.plan.shapes.items():
                receiver = self.plan.topology.other(link, sender)
                if shape.loss_percent > 0 and receiver in self.share.nodes:
                    probability = shape.loss_percent / 100
                    if probability not in programs:
                        programs[probability] = loss.load(probability)
                        templates[probability] = loss.first_filter(programs[probability])
                    requests.setdefault(receiver, []).append(
                        nlbatch.stamp(templates[probability], self.index[(link, receiver)]))
                    self.loss_now[(link, receiver)] = probability
            for name, batch in requests.items():
                nlbatch.send(_netns_pid(self.node(name)), b"".join(batch),
                             f"loss filters of {name}")
        finally:
            for fd in programs.values():
                os.close(fd)

    def redilate(self, plan: Plan) -> None:
        """Move every live link to `plan`'s dilation (the same network, rates and delays
        scaled anew), one netlink write per node, between programs: netwall chooses the
        dilation per call."""
        if plan.dilation == self.plan.dilation:
            return
        requests: dict[str, list[bytes]] = {}
        for (link, name), index in self.index.items():
            tree = shaping.compiled(self._shape(plan, link, name), self.netem, FRAME_BYTES,
                                    change=True)
            requests.setdefault(name, []).append(nlbatch.stamp(tree, index))
        for name, batch in requests.items():
            nlbatch.send(_netns_pid(self.node(name)), b"".join(batch),
                         f"re-dilating the links of {name}")
        self.plan = plan

    def set_link(self, link: int, rate_gbps: float, loss_probability: float) -> None:
        """Change a live cable, both directions, by netlink: its rate (0: down, carrying
        nothing) and the fraction of frames it loses. Routes and queues stay as they are."""
        for sender in (self.plan.topology.links[link].a, self.plan.topology.links[link].b):
            receiver = self.plan.topology.other(link, sender)
            if rate_gbps > 0 and sender in self.share.nodes:
                self.rate_now[link] = rate_gbps
                shaping.change_rate(_ipr(self.node(sender)), self.index[(link, sender)],
                                    self._shape(self.plan, link, sender), FRAME_BYTES)
            drop = 1.0 if rate_gbps <= 0 else loss_probability
            if receiver in self.share.nodes and self.loss_now[(link, receiver)] != drop:
                loss.attach(_ipr(self.node(receiver)), self.index[(link, receiver)], drop)
                self.loss_now[(link, receiver)] = drop

    def _shape(self, plan: Plan, link: int, sender: str):
        """A link end's shaping in `plan`, at the rate a fault left the cable at, if any:
        re-dilating keeps a degraded link degraded."""
        shape = plan.shapes[(link, sender)]
        if link in self.rate_now:
            shape = at_rate(shape, self.rate_now[link], plan.dilation, FRAME_BYTES)
        return shape

    def node(self, name: str):
        assert self.net is not None
        return self.net.get(name)

    def cpu_times(self) -> list[tuple[int, int]]:
        """This host's (busy, total) CPU jiffies, one entry as a spread cluster has one per
        host (emulator.remote.cluster)."""
        return [cpu_times()]

    def counters(self, settle: float = 2.0) -> dict[tuple[int, str], dict[str, int]]:
        """Per directed link (link, sending node): egress bytes, packets, queue drops, read
        once every queue is empty (twice in a row, up to `settle` seconds), so that frames
        still draining from the last program are not counted in the next."""
        deadline = time.monotonic() + settle
        quiet = 0
        while True:
            by_node = {name: shaping.counters(_ipr(self.node(name)))
                       for name in {name for _, name in self.index}}
            snapshot = {(link, name): by_node[name].get(index, IDLE)
                        for (link, name), index in self.index.items()}
            quiet = quiet + 1 if not any(c["backlog"] for c in snapshot.values()) else 0
            if quiet == 2 or time.monotonic() > deadline:
                return snapshot
            time.sleep(0.001)

    def stop(self) -> None:
        """Tear everything down: killing the node shells destroys their namespaces, and the
        kernel removes every veth pair and bridge in them in one batch (deleting pairs one
        by one costs a ~20 ms RCU wait each)."""
        with state.shielded():  # a second Ctrl-C must not cut teardown short
            self._stop()

    def _stop(self) -> None:
        net, self.net = self.net, None
        if net is None:
            if self.record is not None:
                self.record.close()
            return
        for node in net.hosts + net.switches:
            ipr = getattr(node, "_netwall_ipr", None)
            if ipr is not None:
                ipr.close()
        if self.record is not None:
            # The agents and anything a console command left running, while the node
            # shells still prove their namespaces are this run's.
            self.record.kill()
        for node in net.hosts + net.switches:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(node.pid, signal.SIGKILL)
            node.terminate()
        if self.share.remote:
            ipr = iproute(None)
            try:
                # The stubs too: the kernel removes a killed node's namespace (and the
                # stub's peer with it) some time later, and stop() means gone now.
                vxlan.remove(ipr, [name(link) for link in self.share.remote
                                   for name in (vxlan.tunnel_name, vxlan.stub_name)])
            finally:
                ipr.close()
        if self.record is not None:
            self.record.close()  # last: only once everything it names is gone
