"""Trust at speed, on real networks (root): per-call dilation, the dilation probe, the
verdict, the cost report, and re-dilating live links."""

from __future__ import annotations

import json

import pytest

from emulator import Emulation
from emulator.kernel.iperf3 import iperf3_flows
from emulator.models.dilation import SERIES, nice_ceiling
from tests.conftest import netwall

pytestmark = pytest.mark.root


def test_a_host_bound_run_is_flagged_with_the_reason_and_the_fix():
    """A tiny dilation: 8 GPUs at 800 Gb/s / 20 ask the host for 320 Gb/s. Every result
    must be flagged, in the table and in JSON, whatever the CPUs' busy share."""
    args = ["run", "--topology", "star:8", "--link", "copper-800g", "--size", "1M",
            "--size", "4M", "--dilation", "20", "-n", "2", "--no-check"]
    done = netwall(*args, "--json")
    assert done.returncode == 0, done.stderr
    for r in json.loads(done.stdout)["results"]:
        assert r["fidelity"]["faithful"] is False, r["fidelity"]
        assert any("host software added" in flag for flag in r["fidelity"]["flags"])
        assert r["fidelity"]["fix_dilation"] > 20 and r["dilation"] == 20
        assert r["dilation_attempts"] == [r["dilation_attempts"][0]]  # forced: no retry
    table = netwall(*args)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("NOT FAITHFUL: host software added") == 2
    assert "use --dilation" in table.stdout


def test_an_honest_run_is_faithful_and_says_what_it_cost():
    done = netwall("run", "--topology", "pair", "--link", "copper-800g", "--size", "1M",
                   "--dilation", "5000", "--tolerance", "10%", "-n", "2", "--json")
    assert done.returncode == 0, done.stderr
    (r,) = json.loads(done.stdout)["results"]
    fidelity = r["fidelity"]
    assert fidelity["faithful"] is True, fidelity["flags"]
    assert fidelity["probe_dilation"] == 10000 and fidelity["tolerance"] == 0.1
    assert abs(fidelity["host_error"]) <= 0.1
    assert r["wall_s"] > 0 and r["emulated_s"] > 0
    assert r["slowdown"] == pytest.approx(r["wall_s"] / r["emulated_s"])
    assert r["slowdown"] >= 5000 * 0.5  # the timed calls alone run 5000x slower than real
    assert r["slowdown_floor"] >= 1


def test_dilation_is_chosen_per_size_from_the_series_and_proven():
    with Emulation("star:4", "optical-800g") as emu:
        small = emu.run("allreduce", "ring", 256 << 10, iters=2, warmup=0)
        large = emu.run("allreduce", "ring", 8 << 20, iters=2, warmup=0)
        assert emu.network.plan is emu.plan and emu.plan.dilation == large.dilation
    for r in (small, large):
        assert r.check is True
        assert nice_ceiling(r.dilation) == r.dilation
        assert int(str(int(r.dilation))[0]) in SERIES
        assert r.dilation_attempts[-1].dilation == r.dilation
        assert r.fidelity["probe_dilation"] >= 2 * r.dilation
    # A small call is latency-bound: it needs at least the dilation of a large one.
    assert small.dilation >= large.dilation


def test_redilating_live_links_changes_what_iperf3_sees():
    """Built at D=4000 (200 Mb/s), moved to D=800 (1 Gb/s) without rebuilding."""
    with Emulation("pair", "copper-800g", dilation=4000) as emu:
        emu.dilate(800)
        goodput = iperf3_flows([(emu.hosts[0], emu.hosts[1], emu.plan.ips["gpu1"])])
    wire = goodput * 65014 / (65000 - 52)
    assert wire == pytest.approx(800e9 / 800, rel=0.05)


def test_a_replay_is_proven_call_by_call():
    # Links only: h100's launch and step latency, dilated, made this 10x slower here.
    done = netwall("replay", "--workload", "dp-step", "--scale", "0.001", "--topology",
                   "star:4", "--link", "copper-800g", "--dilation", "2000", "--gpu", "ideal",
                   "--json")
    assert done.returncode == 0, done.stderr
    (r,) = json.loads(done.stdout)["results"]
    fidelity = r["fidelity"]
    assert fidelity["probe_dilation"] == 5000 and fidelity["dilation"] == 2000
    assert len(fidelity["call_errors"]) == len(r["calls"])
    assert all("host_error" in c for c in r["calls"])
    assert isinstance(fidelity["faithful"], bool) and r["slowdown"] > 1


def test_check_shows_the_calibration():
    done = netwall("check", "--json")
    assert done.returncode == 0, done.stderr
    host = json.loads(done.stdout)["calibration"]
    assert host["capacity_gbps"] > 0 and host["step_s"] > 0 and host["ranks"] == 8
    text = netwall("check")
    assert "carries faithfully" in text.stdout


def test_redilating_keeps_a_degraded_link_degraded():
    """A wide-and-slow cable that lost 216 of its 416 channels carries half its rate; moving
    the network to another dilation must not repair it."""
    from emulator.models.faults import parse

    # Built at 800, measured at 4000: 100 Mb/s, a 5 ms frame time, long beside the kernel
    # timer's lateness that htb's one-frame-less bucket cannot absorb.
    with Emulation("pair", "wide-and-slow-800g", dilation=800) as emu:
        state = emu.links.put(0, [parse("channels=216:gpu0--gpu1@0")])
        assert state.rate_gbps == pytest.approx(400)
        emu.dilate(4000)
        goodput = iperf3_flows([(emu.hosts[0], emu.hosts[1], emu.plan.ips["gpu1"])])
    wire = goodput * 65014 / (65000 - 52)
    assert wire == pytest.approx(400e9 / 4000, rel=0.05)
