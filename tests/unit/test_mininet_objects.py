"""Mininet's objects as netwall fills them in, and Mininet's link up/down as netwall's link
state, without building anything (tests/root/test_mininet_api.py does it on real networks)."""

from __future__ import annotations

from emulator import Emulation
from emulator.kernel.capabilities import Capabilities
from emulator.kernel.mininet_api import NetlinkIntf
from emulator.models.faults import parse

CAPS = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=False, bpf_loss=True,
                    ovs=False)


def test_an_interface_records_its_address_as_mininets_setip_does():
    intf = NetlinkIntf("gpu0-eth0", mac="02:4e:00:00:00:00", ip="10.77.0.1/32")
    assert (intf.IP(), intf.prefixLen, intf.MAC()) == ("10.77.0.1", "32", "02:4e:00:00:00:00")
    port = NetlinkIntf("nvs0-eth0", mac="02:4e:00:04:00:00")  # a switch port: no address
    assert (port.IP(), port.MAC()) == (None, "02:4e:00:04:00:00")


class FakeNetwork:
    """Records what the emulation asks of the live network."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def set_link(self, link: int, rate_gbps: float, _loss: float) -> None:
        self.calls.append((link, rate_gbps))


def test_link_down_and_up_is_netwalls_down_fault_and_keeps_the_others():
    emu = Emulation("star:2", "wide-and-slow-800g", capabilities=CAPS, dilation=1000)
    network = FakeNetwork()
    emu.links.attach(network)  # as a built Network or Cluster attaches itself
    emu.set_faults(0, [])
    assert emu.links.status(0, up=False).note == "down"
    assert [f.kind for f in emu.faults[0]] == ["down"] and emu.link_state(0).rate_gbps == 0
    emu.links.status(0, up=False)  # Mininet downs both ends: still one fault
    assert [f.kind for f in emu.faults[0]] == ["down"]
    assert emu.links.status(0, up=True).note == "up" and emu.faults[0] == []
    # Up clears Mininet's down, not failed channels: those wait for `restore`.
    emu.set_faults(0, [parse("channels=56:gpu0--nvs0@0")])
    emu.links.status(0, up=False)
    assert emu.links.status(0, up=True).rate_gbps == 720
    assert network.calls == [(0, 800), (0, 0), (0, 0), (0, 800), (0, 720), (0, 0), (0, 720)]
