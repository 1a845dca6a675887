"""Plain Mininet scripts, as Mininet's walkthrough and examples write them.

Each function takes a started Mininet `net` and uses only Mininet's public API (net.get,
net.hosts, pingAll, ping, pingFull, iperf, configLinkStatus, Host.IP/MAC/intf/cmd/popen/
sendCmd/waitOutput, dumpNodeConnections): nothing of netwall. tests/root/test_mininet_api.py
runs them unchanged on netwall's networks (`emu.net`) and checks what they find against the
links netwall configured, so a Mininet user's script that works on Mininet works here.
"""

from __future__ import annotations

import re

from mininet.util import dumpNodeConnections

UNITS = {"bits/sec": 1, "Kbits/sec": 1e3, "Mbits/sec": 1e6, "Gbits/sec": 1e9}


def first_steps(net) -> dict[str, dict]:
    """What the walkthrough looks at first (`nodes`, `dump`, `h1 ifconfig`): every host's
    interfaces, address, prefix length and MAC, as Mininet reports them and as the host's own
    `ip` command does."""
    dumpNodeConnections(net.hosts)
    seen = {}
    for host in net.hosts:
        intf = host.intf()
        seen[host.name] = {
            "ip": host.IP(), "mac": host.MAC(), "intf_ip": intf.IP(),
            "prefix": intf.prefixLen, "intfs": host.intfNames(), "same_node": net.get(host.name),
            "kernel": host.cmd(f"ip -o -4 addr show dev {intf.name}"),
            "kernel_mac": host.cmd(f"cat /sys/class/net/{intf.name}/address").strip(),
        }
    return seen


def reachability(net) -> tuple[float, float, list]:
    """pingAll, ping among the first two hosts, and pingFull: Mininet's loss in per cent for
    the first two and the full records of the last."""
    return net.pingAll(timeout="1"), net.ping(net.hosts[:2], timeout="1"), \
        net.pingFull(net.hosts[:2], timeout="1")


def ping_by_name(net, src: str, dst: str) -> str:
    """A host pings another by the address Mininet gives for it."""
    source, target = net.get(src, dst)
    return source.cmd(f"ping -c1 -W1 {target.IP()}")


def bandwidth(net, src: str, dst: str, seconds: int = 2) -> float:
    """iperf TCP between two hosts (net.iperf, iperf 2): the server's goodput in bit/s."""
    server, _client = net.iperf(net.get(src, dst), seconds=seconds)
    value, unit = re.fullmatch(r"([\d.]+) (\S+)", server).groups()
    return float(value) * UNITS[unit]


def link_down_and_up(net, a: str, b: str, src: str, dst: str) -> tuple[float, float]:
    """Take the link a--b down, ping src -> dst, bring it up, ping again: the two losses."""
    hosts = list(net.get(src, dst))
    net.configLinkStatus(a, b, "down")
    down = net.ping(hosts, timeout="1")
    net.configLinkStatus(a, b, "up")
    return down, net.ping(hosts, timeout="1")


def shells(net, name: str) -> tuple[str, str, str]:
    """A host's shell three ways: cmd, popen, and sendCmd with waitOutput."""
    host = net.get(name)
    by_cmd = host.cmd("hostname -I")
    by_popen = host.popen(["ip", "-br", "-4", "addr"]).communicate()[0].decode()
    host.sendCmd("echo $((6 * 7))")
    return by_cmd, by_popen, host.waitOutput()
