"""Carry a cable between two hosts over a point-to-point VXLAN tunnel, as containerlab and
Kathara do.

The cable's near end is a veth in its node's namespace, shaped there like any other link end;
its peer (`stub`) is in the host's own namespace, where a VXLAN device to the far host carries
it. Two tc redirects (a match-everything u32 filter on the ingress of each, mirred to the
other) stitch them: no bridge, so no
learning, flooding or netfilter between the cable and the tunnel. The tunnel's MTU is the
emulation's, with no lower device to cap it: on a NIC whose MTU is under the emulation's
frame plus VXLAN's 50 bytes, the kernel fragments the outer UDP datagram (docs/multihost.md).
"""

from __future__ import annotations

import contextlib

from emulator.models.plan import EMULATION_MTU

INGRESS = 0xFFFF0000
ETH_P_ALL = 0x0003
#: VXLAN's IANA port; every host of a cluster must let it through (docs/multihost.md).
DEFAULT_PORT = 4789


def stub_name(link: int) -> str:
    """The host-side peer of cable `link`'s near end (15 characters at most, as IFNAMSIZ)."""
    return f"nwx{link}"


def tunnel_name(link: int) -> str:
    return f"nwv{link}"


def vni(link: int) -> int:
    """The cable's VXLAN network identifier: one per cable, the same on both hosts."""
    return 1 + link


def stitch(ipr, link: int, local: str, remote: str, port: int = DEFAULT_PORT) -> None:
    """Tunnel cable `link` from this host (`local` address) to `remote`; its stub exists."""
    ipr.link("add", ifname=tunnel_name(link), kind="vxlan", vxlan_id=vni(link),
             vxlan_local=local, vxlan_group=remote, vxlan_port=port, vxlan_learning=0)
    stub = ipr.link_lookup(ifname=stub_name(link))[0]
    tunnel = ipr.link_lookup(ifname=tunnel_name(link))[0]
    for name in (stub_name(link), tunnel_name(link)):
        # No IPv6: its link-local chatter would cross the tunnel and count as traffic.
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
    for index in (stub, tunnel):
        ipr.link("set", index=index, mtu=EMULATION_MTU, state="up")
    for here, there in ((stub, tunnel), (tunnel, stub)):
        ipr.tc("add", "ingress", here, 0xFFFF0000)
        # u32 matching every frame: this kernel has cls_u32 (not every kernel has matchall).
        ipr.tc("add-filter", "u32", here, parent=INGRESS, protocol=ETH_P_ALL,
               keys=["0x0/0x0+0"], target=0x10000,
               action={"kind": "mirred", "direction": "egress", "action": "redirect",
                       "ifindex": there})


def remove(ipr, names: list[str]) -> list[str]:
    """Delete these devices where they still exist (a stub goes with its node's namespace);
    returns those deleted."""
    gone = []
    for name in names:
        for index in ipr.link_lookup(ifname=name):
            with contextlib.suppress(Exception):  # removed meanwhile: nothing to do
                ipr.link("del", index=index)
                gone.append(name)
    return gone
