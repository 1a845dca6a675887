"""Mininet's own objects, filled in with what netwall's network really has.

netwall configures interfaces, addresses and routes by netlink, not through Mininet's
`ifconfig` calls, so Mininet would never learn them: `h.IP()` would be None and `pingAll`,
`iperf` and every script built on them would talk to nobody. The classes here record each
setting where Mininet's own setIP and setMAC record it, and route what Mininet does to a
link (`configLinkStatus`, the console's `link`) through netwall's link state, so a Mininet
user's first commands work on netwall's network as on any other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from mininet.link import Intf, Link
from mininet.log import output
from mininet.net import Mininet
from mininet.util import waitListening

from foundation.errors import NetwallError
from topologies import Topology, path


class NetlinkIntf(Intf):
    """A Mininet interface whose settings netwall applies by netlink.

    Mininet's Link gives it its MAC, and it records its address as Mininet's setIP does
    (`ip`, and `prefixLen` as the string after the slash), without running ifconfig.
    `ifconfig('down')` and `ifconfig('up')`, which Mininet's configLinkStatus sends to both
    ends, take the whole cable down or up the way a netwall fault does: the interfaces stay
    up, so the static routes and neighbours netwall installed survive, and the cable carries
    nothing until it is up again.
    """

    def config(self, ip=None, **_params) -> dict:
        if ip is not None:
            self.ip, self.prefixLen = ip.split("/")
        return {}

    def ifconfig(self, *args) -> str:
        if args in (("up",), ("down",)) and isinstance(self.link, NetlinkLink):
            self.link.set_status(args[0] == "up")
            return ""
        return super().ifconfig(*args)


class NetlinkLink(Link):
    """A Mininet Link over a veth pair that Network has already made (see _make_veth_pairs).

    `cable` is its index in the topology; `status(cable, up)` takes it down or up through
    netwall's link state (the emulation's, so `links`, counters and faults all see it)."""

    def __init__(self, node1, node2, cable: int, status: Callable[[int, bool], None],
                 **params) -> None:
        self.cable = cable
        self.status_hook = status
        params["intf"] = NetlinkIntf
        super().__init__(node1, node2, **params)

    @staticmethod
    def makeIntfPair(*_args, **_kwargs) -> None:  # noqa: N802 - Mininet's name
        """Nothing to do: the pair exists."""

    def set_status(self, up: bool) -> None:
        self.status_hook(self.cable, up)


class NetwallMininet(Mininet):
    """Mininet, with an iperf that finishes on today's iperf 2 and never waits on a dead cable.

    Mininet 2.3.0's iperf waits for two bandwidth lines from the server, the first for its
    telnet probe (waitListening); iperf 2.0.14 and later (Debian 12 has 2.1.8) print none for
    a connection that carries no data, so it waits forever, on any network (Mininet issue
    1060). This iperf takes the same arguments, prints the same lines and returns the same
    list, but reads the line of the client's own connection. A cable that is down here drops
    every frame (as a cut cable does) instead of losing its routes, so an iperf across one is
    refused at once, naming the cable.
    """

    def __init__(self, *, topology: Topology, is_down: Callable[[int], bool], **kwargs) -> None:
        self.topology = topology
        self.is_down = is_down
        super().__init__(**kwargs)

    def iperf(self, hosts=None, l4Type="TCP", udpBw="10M", fmt=None,  # noqa: N803 - Mininet's
              seconds=5, port=5001) -> list[str]:
        client, server = hosts or (self.hosts[0], self.hosts[-1])
        self.check_route(client.name, server.name)
        output("*** Iperf: testing", l4Type, "bandwidth between", client, "and", server, "\n")
        command = f"iperf -p {port} "
        if l4Type not in ("TCP", "UDP"):
            raise NetwallError(f"Unexpected l4 type: {l4Type}")
        command += "-u " if l4Type == "UDP" else ""
        command += f"-f {fmt} " if fmt else ""
        server.sendCmd(command + "-s")
        servout = ""
        try:
            if l4Type == "TCP" and not waitListening(client, server.IP(), port, timeout=10):
                raise NetwallError(f"Could not connect to iperf on port {port}")
            # UDP has no connection to wait for: wait for the server to say it listens, or
            # the first datagrams (and the report) may be sent to a closed port.
            deadline = time.monotonic() + 10
            while l4Type == "UDP" and "listening" not in servout and \
                    time.monotonic() < deadline:
                servout += server.monitor(timeoutms=100)
            bandwidth = f" -b {udpBw}" if l4Type == "UDP" else ""
            cliout = client.cmd(f"{command}-t {seconds} -c {server.IP()}{bandwidth}")
            connected = re.search(r"local \S+ port (\d+) connected with", cliout)
            if connected is None:
                raise NetwallError(f"iperf {client.name} -> {server.name} did not connect: "
                                   f"{cliout.strip().splitlines()[-1:]}")
            mine = re.compile(rf"port {connected[1]}\b[^\n]*\n[\s\S]*/sec")
            deadline = time.monotonic() + 10
            while not mine.search(servout) and time.monotonic() < deadline:
                servout += server.monitor(timeoutms=500)
        finally:
            server.sendInt()
            servout += server.waitOutput()
        found = mine.search(servout)
        result = [self._parseIperf(found[0] if found else ""), self._parseIperf(cliout)]
        if l4Type == "UDP":
            result.insert(0, udpBw)
        output(f"*** Results: {result}\n")
        return result

    def check_route(self, client: str, server: str) -> None:
        """Refuse at once a measurement from client to server across a cable that is down."""
        for hop in path(self.topology, client, server):
            if self.is_down(hop.link):
                cable = self.topology.links[hop.link]
                raise NetwallError(f"iperf {client} -> {server}: link {cable.a}--{cable.b} is "
                                   f"down, so iperf could never connect (bring it up: link "
                                   f"{cable.a} {cable.b} up)")
