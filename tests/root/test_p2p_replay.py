"""Point-to-point traffic on a real network: pipeline-parallel and 3D workloads, grouped
sends, and traces imported from Chakra and NCCL logs, every call's data checked (root only).

One small cluster serves every test, at a fixed dilation with GPU endpoint `ideal`: these
tests are about which bytes go where and in what order, not about fidelity (one module,
well under a minute)."""

from __future__ import annotations

import json

import pytest

from emulator import Emulation
from tests.unit.test_chakra import et, rank_graph
from traffic.chakra import import_chakra
from traffic.nccl_log import import_nccl_log
from traffic.trace import parse_trace, takers
from traffic.workloads import workload

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def racks():
    with Emulation("racks:2x2", "copper-800g", dilation=50, gpu="ideal") as emu:
        yield emu


def checked(emu: Emulation, calls, name: str):
    result = emu.replay(calls, check=True, prove=False, name=name)
    assert [row.check for row in result.calls] == [True] * len(calls)
    return result


def test_pipeline_1f1b_sends_cross_racks_and_the_step_is_explained(racks):
    calls = workload("pp-1f1b", 4, groups=racks.plan.racks(), scale=0.002, micro_batches=3,
                     layers=4)
    result = checked(racks, calls, "pp-1f1b")
    rack = {r: i for i, g in enumerate(racks.plan.racks()) for r in g}
    sends = [c for c in calls if c.collective == "send"]
    assert sends and all(rack[a] != rack[b] for a, b in map(takers, sends))
    (step,) = result.steps
    assert step.critical_path and set(step.critical_path) <= {c.id for c in calls}
    assert step.critical_path[-1] == max(result.calls, key=lambda r: r.start_s + r.time_s).id
    assert 0 < step.exposed_s <= step.time_s and step.exposed_share == pytest.approx(
        step.exposed_s / step.time_s)
    assert {"a0", "g1", "dp"} <= set(step.streams)
    # a receiver posts early, yet a send's time starts with its sender: after its compute
    for row, call in zip(result.calls, calls, strict=True):
        if call.collective == "send" and not call.after:
            assert row.start_s >= call.gap_us * 1e-6 * 0.99


def test_3d_parallel_with_tensor_groups_in_racks(racks):
    calls = workload("3d", 4, groups=racks.plan.racks(), scale=0.002, pp=2, micro_batches=2,
                     layers=2)
    result = checked(racks, calls, "3d")
    assert {c.collective for c in calls} == {"allreduce", "send"}
    assert len(result.steps[0].critical_path) >= 2


def test_grouped_sends_start_together_and_each_lands_intact(racks):
    trace = [
        {"id": 0, "collective": "send", "bytes": 1 << 16, "group": [0, 1, 2, 3], "comm": "pp",
         "root": 0, "peer": 2, "stream": "p", "gap_us": 20},
        {"id": 1, "collective": "send", "bytes": 1 << 16, "group": [0, 1, 2, 3], "comm": "pp",
         "root": 2, "peer": 0, "stream": "p", "grouped": True},
        {"id": 2, "collective": "send", "bytes": 1 << 12, "group": [0, 1, 2, 3], "comm": "pp",
         "root": 1, "peer": 3, "stream": "p", "after": [1]},
    ]
    calls = parse_trace([json.dumps(t) for t in trace], "grouped")
    result = checked(racks, calls, "grouped")
    a, b, c = result.calls
    # rank 2 starts its send with rank 0's (both ranks' stream is free for the group), not
    # after rank 0's transfer ends, and call 2 waits for call 1 only where it shares a rank
    assert b.start_s < a.start_s + a.time_s
    assert c.start_s < b.start_s + b.time_s  # ranks 1 and 3 take no part in calls 0 and 1


def test_imported_chakra_and_nccl_pipelines_replay_with_their_data(racks, tmp_path):
    files = [et(tmp_path / "t.0.et", rank_graph(0, 1)), et(tmp_path / "t.1.et",
                                                           rank_graph(1, 0))]
    chakra = import_chakra(files)
    result = checked(racks, chakra, "chakra")
    assert [r.collective for r in result.calls] == ["allgather", "reducescatter", "send",
                                                    "allreduce"]
    r0, r1 = "h:100:101 [0]", "h:200:201 [1]"
    lines = []
    for k in range(2):  # activations 0 -> 1, then gradients back, NCCL 2.14 format
        for prefix, op, peer in ((r0, "Send", 1), (r1, "Recv", 0), (r1, "Send", 0),
                                 (r0, "Recv", 1)):
            opcount = 2 * k + (op == ("Recv" if prefix == r0 else "Send"))  # each rank's order
            lines.append(f"{prefix} NCCL INFO {op}: opCount {opcount} sendbuff "
                         f"(nil) recvbuff 0x7f count 4096 datatype 7 op 0 root {peer} comm "
                         f"0x{prefix[2]}0 [nranks=2] stream 0x{prefix[2]}1")
    nccl = import_nccl_log(lines, "pp.log")
    result = checked(racks, nccl, "nccl")
    assert [(c.root, c.peer) for c in nccl] == [(0, 1), (1, 0)] * 2
    assert {r.bytes for r in result.calls} == {4096 * 4}


def test_a_pipeline_skips_its_compute_gaps_and_every_byte_lands(racks):
    """Senders compute while their receivers wait: a posted receive holds no clock, so the
    gaps are skipped (traffic.gaps) and every byte still lands; each send still starts
    after its compute. (Times against a replay without skipping: tests/root/test_engine.py,
    at a dilation where the host's noise is smaller.)"""
    calls = workload("pp-1f1b", 4, groups=racks.plan.racks(), scale=0.2, micro_batches=2,
                     layers=2)
    result = checked(racks, calls, "pp-1f1b")
    assert result.skip and result.skipped_s > 0
    for row, call in zip(result.calls, calls, strict=True):
        if call.collective == "send" and not call.after:
            assert row.start_s >= call.gap_us * 1e-6 * 0.99
