"""Mininet's own console commands on netwall's network, as a Mininet tutorial types them
(root only): the nodes, their addresses, pingall, iperf, and a link taken down and up."""

from __future__ import annotations

import re

import pytest

from tests.root.test_console import console

pytestmark = pytest.mark.root


def test_mininet_first_steps_and_link_down_up():
    out = console(["nodes", "net", "dump", "intfs", "pingall", "gpu0 ping -c1 gpu2", "iperf",
                   "link gpu0 nvs0 down", "links", "pingpair", "iperf gpu0 gpu1",
                   "iperf gpu1 gpu0 1", "link gpu0 nvs0 up", "links", "iperfudp 10M gpu1 gpu2",
                   "pingpair"],
                  "--topology", "star:3", "--link", "copper-800g", "--dilation", "8000")
    assert "gpu0 gpu1 gpu2 nvs0" in out  # nodes
    assert "gpu0 gpu0-eth0:nvs0-eth0" in out and "nvs0 nvs0-eth0:gpu0-eth0 " in out  # net
    assert re.search(r"<GpuHost gpu2: gpu2-eth0:10\.77\.0\.3 pid=\d+>", out)  # dump
    assert "gpu1: gpu1-eth0" in out  # intfs
    assert "*** Results: 0% dropped (6/6 received)" in out  # pingall: every GPU reaches all
    assert "1 packets transmitted, 1 received" in out  # gpu2's name became its address
    assert "*** Iperf: testing TCP bandwidth between gpu0 and gpu2" in out
    # Mininet's result, then netwall's line: 800 Gb/s / 8000 = 100 Mb/s configured.
    mbps = float(re.search(r"\*\*\* Results: \['([\d.]+) Mbits/sec'", out)[1])
    assert 90 < mbps <= 101  # tolerance: see test_mininet_api.test_iperf_meets_the_configured_rate
    assert re.search(r"gpu0 -> gpu2: [\d.]+ Mb/s emulated = [\d.]+ Gb/s real \(x D=8000\)", out)
    # Down: netwall's link state says so (the first `links`), pings are lost, iperf is
    # refused at once; up again (the second `links`), the pair reaches each other.
    row = r"^gpu0--nvs0\s+gpu0-eth0<->nvs0-eth0\s.*\s{state}\s*$"
    assert len(re.findall(row.format(state="down"), out, re.M)) == 1
    assert len(re.findall(row.format(state="up"), out, re.M)) == 1
    assert "*** Results: 100% dropped (0/2 received)" in out
    assert out.count("error: iperf gpu") == 2 and "link gpu0--nvs0 is down" in out
    assert out.rsplit("*** Results:", 1)[1].startswith(" 0% dropped (2/2 received)")
    # UDP at 10 Mb/s, far below the 100 Mb/s links: the server receives what was sent.
    udp = re.search(r"\*\*\* Results: \['10M', '([\d.]+) Mbits/sec'", out)
    assert udp and 9 < float(udp[1]) <= 10.5
