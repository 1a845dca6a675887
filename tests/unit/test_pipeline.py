"""Pipeline-parallel workloads: 1F1B order, sends between neighbouring stages, 3D groups."""

from __future__ import annotations

from collections import Counter

import pytest

from foundation.errors import NetwallError
from traffic.pipeline import one_f_one_b
from traffic.shapes import layer_flops, us
from traffic.trace import dump_trace, parse_trace, resolve, takers
from traffic.workloads import workload

RACKS = [[0, 1], [2, 3], [4, 5], [6, 7]]


def valid(calls):
    """Through the trace format and back: the workload is a trace `netwall replay` reads."""
    again = parse_trace(dump_trace(calls).splitlines(), "workload")
    assert again == calls
    return resolve(calls, 8)


@pytest.mark.parametrize("stages, m", [(2, 1), (4, 2), (4, 8), (3, 5)])
def test_one_f_one_b_runs_every_micro_batch_forward_then_backward(stages, m):
    for s in range(stages):
        ops = one_f_one_b(stages, s, m)
        assert sorted(ops) == sorted([("F", i) for i in range(m)] + [("B", i) for i in range(m)])
        assert all(ops.index(("F", i)) < ops.index(("B", i)) for i in range(m))
        assert ops.index(("B", 0)) == min(stages - s, m)  # forwards before the first backward
    assert [k for k, _ in one_f_one_b(stages, stages - 1, m)] == ["F", "B"] * m


def test_pp_1f1b_sends_activations_forward_and_gradients_back_between_neighbours():
    calls = valid(workload("pp-1f1b", 8, pp=4, micro_batches=3, layers=4, scale=0.01))
    sends = [c for c in calls if c.collective == "send"]
    # 2 pipelines of 4 stages (blocks of 2 ranks): 3 micro-batches x 3 boundaries x 2 ways
    assert len(sends) == 2 * 3 * 3 * 2
    stage = {r: r // 2 for r in range(8)}
    for c in sends:
        src, dst = takers(c)
        assert abs(stage[src] - stage[dst]) == 1 and src % 2 == dst % 2
        kind = "a" if stage[dst] > stage[src] else "g"
        assert c.stream == f"{kind}{stage[src]}"
    # the replicas all-reduce each stage's gradients at the end, after the stage's last op
    dp = [c for c in calls if c.collective == "allreduce"]
    assert sorted(takers(c) for c in dp) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert all(c.after for c in dp)


def test_pp_1f1b_places_each_stages_compute_once_per_micro_batch():
    m, layers, stages = 4, 8, 4
    calls = workload("pp-1f1b", 4, micro_batches=m, layers=layers, scale=1.0)
    attn, mlp = layer_flops(2048, 2048, 1)
    forward = us(layers / stages * (attn + mlp))
    # a send's gap is its sender's compute: stage s's sends carry its forwards and backwards
    *sends, norm = calls
    by_sender = Counter()
    for c in sends:
        by_sender[takers(c)[0]] += c.gap_us
    for s in (1, 2, 3):
        assert by_sender[s] == pytest.approx(m * 3 * forward, rel=1e-6)
    # stage 0 sends after its forwards; after its last forward only backwards remain (1F1B
    # with 4 stages and 4 micro-batches: F0 F1 F2 F3 B0 B1 B2 B3), and the step's last call,
    # the gradient norm's all-reduce over every rank, waits for them
    assert by_sender[0] == pytest.approx(m * forward, rel=1e-6)
    assert (norm.collective, takers(norm)) == ("allreduce", (0, 1, 2, 3))
    assert norm.gap_us == pytest.approx(m * 2 * forward, rel=1e-6)


def test_pp_1f1b_stages_are_the_racks_when_there_are_racks():
    calls = valid(workload("pp-1f1b", 8, groups=[[0, 1, 2, 3], [4, 5, 6, 7]], micro_batches=2,
                           layers=2, scale=0.01))
    assert {takers(c) for c in calls if c.collective == "send"} == {
        (r, r + 4) for r in range(4)} | {(r + 4, r) for r in range(4)}


def test_3d_keeps_tensor_groups_in_racks_and_pipelines_across_neighbouring_racks():
    calls = valid(workload("3d", 8, groups=RACKS, pp=2, micro_batches=2, layers=2, scale=0.01))
    rack = {r: i for i, g in enumerate(RACKS) for r in g}
    kinds = Counter()
    for c in calls:
        ranks = takers(c)
        if c.comm.startswith("tp"):
            assert list(ranks) in RACKS
        elif c.collective == "send":
            src, dst = ranks
            assert abs(rack[src] - rack[dst]) == 1 and {rack[src], rack[dst]} in ({0, 1}, {2, 3})
            assert RACKS[rack[src]].index(src) == RACKS[rack[dst]].index(dst)
        else:  # data parallel: the same place in both replicas
            assert c.comm.startswith("dp") and {rack[r] for r in ranks} in ({0, 2}, {1, 3})
        kinds[c.comm[:2]] += 1
    # per micro-batch and stage: 1 layer x 2 exchanges, forward and backward; 2 stages,
    # 2 replicas, 2 micro-batches -> 32 all-reduces; sends: 2 ways x 2 positions x 2 x 2
    assert kinds == {"tp": 32, "pp": 16, "dp": 4}


@pytest.mark.parametrize("args, kwargs, text", [
    (("pp-1f1b", 6), {"pp": 4}, "not a multiple of pp=4"),
    (("pp-1f1b", 4), {"pp": 1}, "at least 2 stages"),
    (("3d", 8), {"groups": RACKS, "pp": 3}, "do not split into pipelines of pp=3"),
    (("3d", 8), {"groups": [[0, 1, 2], [3, 4], [5, 6, 7]]}, "same size"),
])
def test_pipeline_errors_are_one_line(args, kwargs, text):
    with pytest.raises(NetwallError, match=text) as e:
        workload(*args, **kwargs)
    assert "\n" not in str(e.value)
