"""The JSON `run --json` and `replay --json` print, made the new way: checked requests,
typed batches, the proof loop and emulator.assemble, with no network. Their shape (keys,
order, types, nested records) must be the documented one, which tests/data holds as
netwall printed it before the facade was split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.assemble import Cluster, Cost, replay_result, run_result
from emulator.batches import ProbeBatch, TimedBatch, TraceBatch
from emulator.emulation import Emulation
from emulator.kernel.capabilities import Capabilities
from emulator.models import sampling
from emulator.models.accounting import LinkReport
from emulator.models.energy import batch_energy
from emulator.models.faults import FaultEvent, parse
from emulator.models.proof import Rule, prove
from emulator.models.verdict import Probe, judge, judge_trace
from emulator.result import ReplayResult, RunResult
from traffic.workloads import workload

ROOT = Path(__file__).resolve().parents[2]
CAPS = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=False, bpf_loss=True,
                    ovs=False)


#: Objects keyed by data (a stream's name, a profile's), not by the format: their values count.
KEYED_BY_DATA = {"streams", "energy_by_profile_j"}


def shape(value, key: str = ""):
    """A JSON value's shape: every key in order, the type of every leaf (None and numbers
    count as numbers: a host error is null where the host took all of the time)."""
    if isinstance(value, dict) and key in KEYED_BY_DATA:
        return {"any name": sorted({str(shape(item)) for item in value.values()})}
    if isinstance(value, dict):
        return [(name, shape(item, name)) for name, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return "number"
    return type(value).__name__


@pytest.fixture
def emu() -> Emulation:
    return Emulation("star:4", "copper-800g", capabilities=CAPS, dilation=50_000)


def test_a_run_made_from_typed_batches_prints_the_documented_json(emu):
    request = emu.spec.run_request("allreduce", None, 65536, iters=5, warmup=1,
                                   faults=[parse("down:gpu0--nvs0@0+1us")])
    links = [LinkReport("gpu0->nvs0", "copper-800g", 198384, 198384, 24, 0)]
    batch = TimedBatch(
        time_s=6.4e-5, wall_s=16.0, links=links, shapes={"gpu0->nvs0": (16e6, 1000)},
        cpu_before=[(0, 100)], cpu_after=[(99, 200)], retransmitted_bytes=4096,
        retransmitted_frames=2,
        faults=[FaultEvent(7e-8, "gpu0--nvs0", "down starts", 0.0, "down"),
                FaultEvent(None, "gpu0--nvs0", "restored after the timed calls", 800.0, "up")],
        missed=[],
        energy=batch_energy(links, ["copper-800g"] * 4, emu.catalogue, 6.4e-5, 65536, 5),
        dilation=50_000.0, call_times=[3.3, 3.1, 3.2, 3.2, 3.2], floor=None)

    def judged(b, probed, d, probe_d):
        sample = sampling.sample(b.call_times, probed.call_times, d, probe_d)
        return judge(b.cpu_before, b.cpu_after, b.links, b.shapes, b.wall_s,
                     b.retransmitted_frames, True, b.time_s, d,
                     Probe(probe_d, probed.time_s, emu.tolerance, calls=sample.probed,
                           margin=sample.margin), repaired=True)

    trials = prove(50_000.0, lambda d, _: batch, lambda d, _: ProbeBatch(7.2e-5, [7.2] * 5),
                   judged, Rule(emu.tolerance, chase=False))
    result = run_result(request, trials, True, Cost(2.0, 3.2e-4, 1.0),
                        Cluster(emu.link, emu.topology.name, emu.gpu.name))
    printed = json.loads(json.dumps(result.to_dict()))
    stored = json.loads((ROOT / "tests/data/run-result.json").read_text())
    assert shape(printed) == shape(stored)
    assert RunResult.from_dict(printed) == result  # and it reads back, records typed


def test_a_replay_made_from_typed_batches_prints_the_documented_json(emu):
    calls = workload("dp-step", 4, groups=emu.plan.groups())
    request = emu.spec.replay_request(calls, check=True, name="dp-step")
    n = len(request.calls)
    links = [LinkReport("gpu0->nvs0", "copper-800g", 3256128, None, 480, 0)]

    def batch(d, attempt=0):  # the last call shares its agent: distorted below 2e5
        return TraceBatch(starts=[1e-6 * i for i in range(n)],
                          times=[1e-5] * (n - 1) + [2e-5 if d <= 100_000 else 1e-5],
                          total_s=2e-4 if d <= 20_000 else 6.8e-5,
                          checks=[attempt == 0] * n, retransmitted_bytes=0, links=links,
                          skipped_s=0.25)

    trials = prove(20_000.0, batch, lambda d, _: batch(d),
                   lambda run, probe, d, probe_d: judge_trace(
                       run.times, probe.times, run.total_s, probe.total_s, d, probe_d,
                       emu.tolerance),
                   Rule(emu.tolerance, chase=True))
    assert len(trials) == 2  # the total was distorted at first: measured again, larger
    assert trials[-1].verdict.flags  # one call stays flagged: not chased
    result = replay_result(request, trials, Cost(5.0, 2e-3, 1.0),
                           Cluster(emu.link, emu.topology.name, emu.gpu.name))
    printed = json.loads(json.dumps(result.to_dict()))
    stored = json.loads((ROOT / "tests/data/replay-result.json").read_text())
    assert shape(printed) == shape(stored)
    assert [c["check"] for c in printed["calls"]] == [True] * n  # the first attempt's
    assert ReplayResult.from_dict(printed) == result
    assert result.skip and result.skipped_s == 4 * 0.25  # two attempts, each with its probe


def test_a_replays_dilation_keeps_up_with_its_packed_traffic_its_floor_spans_its_gaps(emu):
    request = emu.spec.replay_request(workload("dp-tp", 4, tp=2), name="dp-tp")
    packed, spanned = request.cost, request.floor_cost
    assert packed.model_s < sum(request.models.values())  # its streams overlap
    assert spanned.model_s > packed.model_s  # the compute gaps are time too
    assert spanned.sent_bytes == packed.sent_bytes and spanned.steps == packed.steps
