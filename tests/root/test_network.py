"""Real networks: namespaces, veth, bridges, htb, agents and iperf3 (root only)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from emulator import Emulation
from emulator.kernel.capabilities import probe
from emulator.kernel.iperf3 import iperf3_flows
from emulator.models.metrics import BUSBW_FACTOR
from traffic.header import FRAME_OVERHEAD

pytestmark = pytest.mark.root


def test_probe_agrees_with_tc():
    """The probe's netem answer is what `tc` itself says in a scratch namespace."""
    script = ("ip link add name va type veth peer name vb && "
              "tc qdisc add dev va root netem delay 1ms")
    tc_ok = subprocess.run(["unshare", "--net", "sh", "-c", script],
                           capture_output=True).returncode == 0
    caps = probe()
    assert caps.veth and caps.htb and caps.bridge
    assert caps.netem == tc_ok


@pytest.mark.parametrize("dilation", [800, 4000])
def test_shaped_pair_matches_configured_rate_under_iperf3(dilation):
    """Two GPUs on one copper link: iperf3 sees the configured wire rate within 5%."""
    with Emulation("pair", "copper-800g", dilation=dilation) as emu:
        configured = emu.plan.shapes[(0, "gpu0")].rate_bps
        assert configured == 800e9 / dilation
        goodput = iperf3_flows([(emu.hosts[0], emu.hosts[1], emu.plan.ips["gpu1"])])
    # TCP over a 65000-byte MTU: 52 header bytes of 65014 on the wire, so goodput ~ wire rate.
    wire = goodput * 65014 / (65000 - 52)
    assert wire == pytest.approx(configured, rel=0.05)


EXAMPLE = str(Path(__file__).resolve().parents[2] / "topologies/examples/two-tier.yaml")


@pytest.mark.parametrize("topology", ["ring:4", "star:4", "racks:2x2", EXAMPLE])
def test_ring_allreduce_bytes_on_each_link_match_the_schedule(topology):
    with Emulation(topology=topology, link="optical-800g", dilation=None) as emu:
        assert [h.name for h in emu.hosts] == ["gpu0", "gpu1", "gpu2", "gpu3"]
        assert emu.net is not None and len(emu.net.hosts) == 4
        result = emu.run(collective="allreduce", algorithm="ring", size=1 << 20, iters=2)
    assert result.check is True
    assert result.time_s > 0
    links = {entry.link: entry for entry in result.links}
    for entry in links.values():
        assert entry.bytes == entry.expected_bytes, entry
        assert entry.drops == 0
    per_link = 2 * 3 / 4 * (1 << 20) * 2  # 2(n-1)/n of the buffer, two timed iterations
    data = {name for name, entry in links.items() if entry.bytes > per_link}
    acks = set(links) - data
    # Each of the 2(n-1) steps sends one transfer per link and gets one ACK frame back.
    assert all(links[name].bytes == FRAME_OVERHEAD * 6 * 2 for name in acks)
    if topology == "ring:4":
        assert data == {"gpu0->gpu1", "gpu1->gpu2", "gpu2->gpu3", "gpu3->gpu0"}
        assert acks == {"gpu1->gpu0", "gpu2->gpu1", "gpu3->gpu2", "gpu0->gpu3"}
    elif topology == "star:4":
        assert len(data) == 8  # every GPU's uplink and downlink
    else:
        # Two groups of two GPUs: the ring crosses between them once each way, through
        # spine0 in racks:2x2 (two cables) or over the one sw0--sw1 cable in the example.
        between = {name for name in data if "gpu" not in name}
        assert between == ({"rack0->spine0", "spine0->rack1", "rack1->spine0", "spine0->rack0"}
                           if topology == "racks:2x2" else {"sw0->sw1", "sw1->sw0"})


def test_api_tears_down_on_error():
    with pytest.raises(RuntimeError, match="boom"), Emulation("star:3", "copper-800g") as emu:
        assert len(emu.hosts) == 3
        raise RuntimeError("boom")
    assert emu.net is None and emu.hosts == []


def test_default_run_end_to_end(tmp_path):
    from tests.conftest import netwall

    done = netwall("run", "--size", "256K", "--iters", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    settings, results = report["settings"], report["results"]
    assert [r["link"] for r in results] == ["copper-800g", "optical-800g", "wide-and-slow-800g"]
    assert settings["emulations"][0]["topology"] == "star:8"
    for r in results:
        assert r["collective"] == "allreduce" and r["algorithm"] == "ring"
        assert r["ranks"] == 8 and r["bytes"] == 256 * 1024
        assert r["check"] is True
        assert r["algbw_gbps"] == pytest.approx(r["bytes"] / r["time_s"] / 1e9)
        assert r["busbw_gbps"] == pytest.approx(r["algbw_gbps"] * BUSBW_FACTOR["allreduce"](8))
        assert r["model_time_s"] > 0 and r["dilation"] >= 1
        assert 0 <= r["fidelity"]["cpu_busy"] <= 1 and "flags" in r["fidelity"]
        assert r["energy_j"] > 0 and r["joules_per_gb"] > 0
    # Same traffic, same time: optics spend far more energy per byte than copper.
    per_gb = {r["link"]: r["joules_per_gb"] for r in results}
    assert per_gb["optical-800g"] > per_gb["wide-and-slow-800g"] > per_gb["copper-800g"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--link", "unobtainium-9t"], "unknown link profile 'unobtainium-9t'"),
        (["--topology", "torus:4"], "unknown topology 'torus:4'"),
        (["--topology", "racks:2x2", "--spine-link", "copper-800g"],
         "link rack0--spine0 is 20 m long but copper-800g reaches 2 m"),
        (["--size", "0"], "size must be positive"),
        (["--dilation", "0.5"], "--dilation must be a number >= 1"),
        (["--topology", "BROKEN_YAML"], "YAML syntax error"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(args, message, tmp_path):
    from tests.conftest import netwall

    broken = tmp_path / "broken.yaml"
    broken.write_text("gpus: [gpu0, gpu1\nlinks: {")
    args = [str(broken) if a == "BROKEN_YAML" else a for a in args]
    done = netwall("run", "--link", "copper-800g", *args) if "--link" not in args \
        else netwall("run", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_the_delay_mechanism_is_stated_and_strict_refuses_what_is_missing():
    from tests.conftest import netwall

    caps = probe()
    done = netwall("run", "--topology", "pair", "--link", "copper-800g", "--size", "64K",
                   "--iters", "1")
    assert done.returncode == 0, done.stderr
    mechanism = "netem on every link" if caps.netem else "held by the receiving agents"
    assert f"# link delay: {mechanism}" in done.stdout
    strict = netwall("run", "--topology", "pair", "--link", "copper-800g", "--size", "64K",
                     "--iters", "1", "--strict")
    if caps.netem or caps.bpf_loss:  # delay is emulated on every kernel; loss needs either
        assert "no netem" not in done.stderr and strict.returncode == 0
    else:
        assert done.stderr.count("no netem") == 1
        assert strict.returncode == 2 and "--strict" in strict.stderr


def test_check_and_profiles_commands():
    from tests.conftest import netwall

    check = netwall("check")
    assert check.returncode == 0
    caps = probe()
    assert ("netem    yes" in check.stdout) == caps.netem
    assert "htb      yes" in check.stdout
    listed = netwall("profiles", "--json")
    assert listed.returncode == 0
    names = {p["name"] for p in json.loads(listed.stdout)}
    assert {"copper-800g", "optical-800g", "wide-and-slow-800g"} <= names


def test_a_size_that_only_suits_its_own_collective_runs():
    """12 KiB splits into 3 ranks' all-to-all chunks; nothing may insist on another size."""
    from tests.conftest import netwall

    done = netwall("run", "--topology", "ring:3", "--link", "copper-800g", "--collective",
                   "alltoall", "--size", "12K", "--iters", "1")
    assert done.returncode == 0, done.stderr
    assert "alltoall/direct" in done.stdout and " ok" in done.stdout
