"""The collective engine on real networks: every collective, loss repair, replay (root only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from emulator import Emulation, NetwallError
from emulator.models.faults import parse as parse_fault
from emulator.models.profiles import catalogue
from traffic.schedule import ALGORITHMS
from traffic.trace import parse_trace

pytestmark = pytest.mark.root
PROFILES = Path(__file__).resolve().parents[2] / "emulator" / "models" / "profiles"


@pytest.fixture(scope="module")
def racks():
    """One 2x4 cluster for all collectives (building it once keeps the suite quick)."""
    with Emulation("racks:2x4", "copper-800g", dilation=2000) as emu:
        yield emu


@pytest.mark.parametrize("collective, algorithm",  # a send is two ranks': test_p2p_replay
                         [(c, a) for c, algs in ALGORITHMS.items() for a in algs
                          if c != "send" and a != "nvls"])  # NVLS: a switch that reduces,
def test_every_collective_delivers_the_right_data(racks, collective, algorithm):  # test_nvls
    root = 5 if collective in ("broadcast", "reduce") else 0
    result = racks.run(collective, algorithm, size=256 * 1024, iters=2, root=root,
                       prove=False)
    assert result.check is True
    assert result.retransmitted_bytes == 0
    for link in result.links:  # lossless: the wire carries exactly the schedule
        assert link.bytes == link.expected_bytes, link


def lossy_profile(tmp_path: Path, frame_loss: float) -> Path:
    """copper-800g with a post-FEC bit-error rate that loses `frame_loss` of 65 KB frames."""
    doc = yaml.safe_load((PROFILES / "copper-800g.yaml").read_text())
    doc["name"] = "lossy-copper"
    doc["post_fec_ber"] = {"value": frame_loss / (8 * 65014), "source": "test: forced loss"}
    path = tmp_path / "lossy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_lost_frames_are_repaired_and_counted(tmp_path):
    profile = lossy_profile(tmp_path, 0.03)
    with Emulation("star:4", "lossy-copper", profiles=[profile], dilation=1000) as emu:
        result = emu.run("allreduce", "ring", size=4 << 20, iters=3)
    assert result.check is True
    assert result.retransmitted_bytes > 0
    # Lost frames still crossed the sender's link, and their repairs cross it again.
    sent = sum(link.bytes for link in result.links if link.link.startswith("gpu"))
    expected = sum(link.expected_bytes for link in result.links
                   if link.link.startswith("gpu"))
    assert sent > expected


def test_a_cut_off_peer_ends_the_run_with_a_clear_error():
    with Emulation("star:4", "copper-800g", dilation=1000) as emu:
        emu.net.get("gpu2").cmd("ip link set gpu2-eth0 down")
        with pytest.raises(NetwallError, match="no progress .* waiting for ranks"):
            emu.run("allreduce", "ring", size=1 << 20, iters=1, warmup=0, timeout=3)


def test_ranks_that_start_after_their_peers_frames_arrive_complete():
    """The common start set in the past: each agent starts as it reads its go, and frames
    reach agents that have not yet read theirs, in the first program too (star:256's ranks
    did so at the 50 ms the launcher allows; a frame that beat its receiver's first go held
    its step for ever). Every call completes, verified, with no repair; the lateness shows
    in the time (which the proof judges), never as a stall."""
    with Emulation("star:8", "copper-800g", dilation=2000, gpu="ideal") as emu:
        emu.built.agents.start_margin = -0.5
        result = emu.run("allreduce", "ring", size=1 << 20, iters=3, prove=False)
    assert result.check is True
    assert result.retransmitted_bytes == 0
    assert 0 < result.time_s < 1e-3  # 21 us modelled, ~100 us with half a second late


def test_replay_overlaps_streams_and_respects_gaps():
    trace = [
        {"id": 0, "collective": "allreduce", "bytes": 1 << 20, "group": [0, 1], "comm": "a",
         "stream": "x"},
        {"id": 1, "collective": "allreduce", "bytes": 1 << 20, "group": [2, 3], "comm": "b",
         "stream": "y"},
        {"id": 2, "collective": "allgather", "bytes": 1 << 20, "group": "all", "comm": "w",
         "stream": "x", "gap_us": 50, "after": [0, 1], "step": 1},
    ]
    calls = parse_trace([json.dumps(line) for line in trace], "test")
    with Emulation("star:4", "copper-800g", dilation=2000) as emu:
        result = emu.replay(calls, check=True)
    rows = {row.id: row for row in result.calls}
    assert all(row.check is True for row in rows.values())
    a, b, c = rows[0], rows[1], rows[2]
    # Different communicators on different streams run at the same time...
    assert a.start_s < b.start_s + b.time_s and b.start_s < a.start_s + a.time_s
    # ...and the all-gather waits, on each rank, for the call that rank took part in, plus
    # its 50 us of compute (a rank's own end of a call is at most the call's last end).
    first_end = min(a.start_s + a.time_s, b.start_s + b.time_s)
    assert c.start_s >= first_end - 0.1 * a.time_s + 50e-6
    assert [s.step for s in result.steps] == [0, 1]
    assert result.total_s >= c.start_s + c.time_s * 0.99


def test_replay_and_trace_commands(tmp_path):
    from tests.conftest import netwall

    log = Path(__file__).resolve().parents[1] / "data" / "nccl-2.21-dp-tp-8ranks.log"
    imported = netwall("trace", "import", str(log))
    assert imported.returncode == 0, imported.stderr
    trace = tmp_path / "trace.jsonl"
    trace.write_text(imported.stdout)
    # The commands are under test, not the endpoint, the dilation or its proof (at the
    # dilation netwall would choose and prove, this test took 12 minutes here).
    quick = ("--gpu", "ideal", "--dilation", "2000", "--no-probe")
    done = netwall("replay", str(trace), "--topology", "star:8", "--link", "copper-800g",
                   *quick, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["results"][0]
    assert len(result["calls"]) == len([x for x in imported.stdout.splitlines()
                                        if x.startswith("{")])
    work = netwall("replay", "--workload", "dp-step", "--topology", "star:4", "--link",
                   "optical-800g", "--scale", "0.001", *quick)
    assert work.returncode == 0, work.stderr
    assert "# whole trace:" in work.stdout


def test_a_replay_skipping_its_compute_gaps_keeps_its_step_times_and_saves_wall_time():
    """dp-tp with and without skipping the compute gaps no traffic overlaps (traffic.gaps):
    the same step times, and the wall time saved said."""
    from tests.conftest import netwall

    quick = ("--workload", "dp-tp", "--link", "copper-800g", "--dilation", "2000",
             "--no-probe", "--json")
    results = []
    for skip in ((), ("--no-skip",)):
        done = netwall("replay", *quick, *skip)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout)["results"][0])
    skipped, dilated = results
    assert skipped["skip"] and skipped["skipped_s"] > 0
    assert not dilated["skip"] and dilated["skipped_s"] == 0
    # Unproven runs on a shared host: two runs of the same replay differ by a few percent
    # on their own (seen: up to 7% at this dilation), so the bound is wider than the
    # verdict's tolerance; that skipping keeps every call's times exactly is the unit
    # test's (tests/unit/test_machine.py), which has no host to disturb it.
    for fast, slow in zip(skipped["steps"], dilated["steps"], strict=True):
        assert fast["time_s"] == pytest.approx(slow["time_s"], rel=0.1)


def test_wide_and_slow_losing_channels_past_its_spares_slows_by_their_share():
    """40 channels past the 16 spares of a 400-channel link: ~10% less throughput (links
    only: a GPU endpoint's fixed costs would not slow by the link's share)."""
    with Emulation("pair", "wide-and-slow-800g", dilation=2000, gpu="ideal") as emu:
        profile = emu.catalogue["wide-and-slow-800g"]
        lost = profile.spare_lanes + profile.lanes // 10
        base = emu.run("allreduce", "ring", size=8 << 20, iters=2)
        hit = emu.run("allreduce", "ring", size=8 << 20, iters=2,
                      faults=[parse_fault(f"channels={lost}:gpu0--gpu1@0")])
    assert hit.check is True and hit.retransmitted_bytes == 0
    assert hit.time_s / base.time_s == pytest.approx(1 / 0.9, rel=0.03)
    assert hit.faults[0].rate_gbps == pytest.approx(profile.rate_gbps * 0.9)
    # Never faster than the link it has: the agents pace at the degraded rate from the first
    # frame (a shaper's free burst once let lab 4's rows beat it by 0.2-1%).
    busiest = max(link.bytes for link in hit.links) / hit.iters
    assert hit.time_s >= busiest * 8 / (profile.rate_gbps * 0.9 * 1e9)
    assert not any("faster than the links allow" in f for f in hit.fidelity["flags"])


def test_an_optical_lane_failure_stalls_until_repair_then_completes_verified():
    with Emulation("pair", "optical-800g", dilation=2000) as emu:
        base = emu.run("allreduce", "ring", size=8 << 20, iters=1)
        outage = 3 * base.time_s
        hit = emu.run("allreduce", "ring", size=8 << 20, iters=1, faults=[
            parse_fault(f"channels=1:gpu0--gpu1@{base.time_s / 4 * 1e6:.1f}us"
                        f"+{outage * 1e6:.1f}us")])
    assert hit.check is True
    assert hit.time_s > outage  # nothing moved while the link was down
    assert hit.retransmitted_bytes > 0  # what was in flight was lost and resent
    assert [e.state.split(":")[0] for e in hit.faults] == ["down", "up", "up"]


def test_energy_is_reported_and_adds_up(racks):
    result = racks.run("allreduce", "ring", size=1 << 20, iters=2, prove=False)
    assert result.energy_j == pytest.approx(sum(result.energy_by_profile_j.values()))
    assert result.joules_per_gb == pytest.approx(result.energy_j / (1 << 20) * 1e9)
    # The spine is optical, the racks copper. A link's power is the same busy or idle (every
    # shipped profile's pJ/bit is its port power over its rate), so each cable's energy over
    # the call is its power times the time: per cable, the ratio of the two powers.
    per_cable = {p: e / n for p, e, n in [
        ("optical-800g", result.energy_by_profile_j["optical-800g"], 2),
        ("copper-800g", result.energy_by_profile_j["copper-800g"], 8)]}
    watts = {name: catalogue()[name].watts_per_end for name in per_cable}
    assert per_cable["optical-800g"] / per_cable["copper-800g"] == \
        pytest.approx(watts["optical-800g"] / watts["copper-800g"], rel=0.05)
    assert watts["optical-800g"] > 3 * watts["copper-800g"]


def test_a_bit_error_burst_costs_repairs_and_a_flap_costs_time():
    with Emulation("pair", "optical-800g", dilation=2000) as emu:
        base = emu.run("allreduce", "ring", size=8 << 20, iters=1)
        t = base.time_s
        noisy = emu.run("allreduce", "ring", size=8 << 20, iters=1,
                        faults=[parse_fault(f"ber=1e-7:gpu0--gpu1@0+{t * 1e6:.1f}us")])
        flapping = emu.run("allreduce", "ring", size=8 << 20, iters=1,
                           faults=[parse_fault(f"flap=2:gpu0--gpu1@0+{t / 2 * 1e6:.1f}us")])
    # 1e-7 per bit loses ~5% of 65 KB frames: each one is resent, the data still right.
    assert noisy.check is True and noisy.retransmitted_bytes > 0
    assert flapping.check is True
    assert flapping.time_s > t * 1.5  # two outages of half a call each
    assert sum("down" in e.state for e in flapping.faults) == 2
