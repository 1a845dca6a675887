"""Built-in workloads: valid traces whose byte counts add up to what the parameters imply."""

from __future__ import annotations

import pytest

from foundation.errors import NetwallError
from traffic.shapes import FLOP_RATE, MIB
from traffic.trace import dump_trace, parse_trace, resolve, takers
from traffic.workloads import WORKLOADS, workload


def valid(calls):
    """Through the text format and back: every workload is a valid trace."""
    assert parse_trace(dump_trace(calls).splitlines(), "w") == calls
    assert [c.id for c in calls] == list(range(len(calls)))
    return calls


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_workload_is_a_valid_trace_with_aligned_bytes(name):
    calls = valid(workload(name, 8, scale=0.001))
    assert calls
    for c in resolve(calls, 8):
        assert c.bytes % (4 * len(takers(c))) == 0


def test_dp_step_buckets_add_up():
    # 1e6 parameters x 4 bytes = 4,000,000 bytes; 1 MiB first bucket, 1 MiB buckets after:
    # 3 x 1048576 + the rest 854272
    calls = valid(workload("dp-step", 4, params=1e6, bucket_mib=1, tokens=100))
    assert [c.bytes for c in calls] == [1048576] * 3 + [4_000_000 - 3 * 1048576]
    assert {(c.collective, c.group, c.stream, c.comm, c.step) for c in calls} == {
        ("allreduce", (), "0", "world", 0)}
    # backward: 4 FLOPs per parameter per token, parameters = bytes / 4
    assert calls[-1].gap_us == round(4 * (854272 / 4) * 100 / FLOP_RATE * 1e6, 3)


def test_dp_step_default_model_scaled():
    # GPT-3 XL, 1.3e9 fp32 gradients x 0.01 = 52,000,000 bytes, DDP buckets 1 and 25 MiB x 0.01
    calls = valid(workload("dp-step", 4, scale=0.01))
    assert sum(c.bytes for c in calls) == 52_000_000
    assert calls[0].bytes == int(MIB * 0.01) // 16 * 16
    assert calls[1].bytes == 25 * MIB // 100
    assert len(calls) == len(workload("dp-step", 4))  # scale shrinks calls, not their number


def test_tp_layer_groups_run_concurrently():
    # activations of one layer: 1 x 512 tokens x 1024 hidden x 2 bytes = 1 MiB per exchange;
    # 2 layers x (2 forward + 2 backward) x 2 groups = 16 all-reduces
    kw = dict(tp=4, layers=2, hidden=1024, seq=512)
    calls = valid(workload("tp-layer", 8, **kw))
    assert len(calls) == 16 and {c.bytes for c in calls} == {MIB}
    assert {(c.group, c.comm, c.stream) for c in calls} == {
        ((0, 1, 2, 3), "tp0", "tp0"), ((4, 5, 6, 7), "tp1", "tp1")}
    # attention forward FLOPs 8Bsh^2 + 4Bs^2h, split over 4 ranks, before the first exchange
    attn = 8 * 512 * 1024**2 + 4 * 512**2 * 1024
    assert calls[0].gap_us == round(attn / 4 / FLOP_RATE * 1e6, 3)
    rs_ag = valid(workload("tp-layer", 8, mode="rs-ag", **kw))
    assert [c.collective for c in rs_ag[:4]] == ["reducescatter", "allgather"] * 2
    assert sum(c.bytes for c in rs_ag) == 32 * MIB
    racks = valid(workload("tp-layer", 4, groups=[[0, 2], [1, 3]], layers=1, hidden=1024,
                           seq=512))
    assert {c.group for c in racks} == {(0, 2), (1, 3)}


def test_moe_a2a_uses_alltoall():
    # 512 tokens x top-2 x 1024 hidden x 2 bytes = 2 MiB per all-to-all; 2 layers x 4
    calls = valid(workload("moe-a2a", 8, layers=2, hidden=1024, tokens=512, ffn=4096))
    assert [(c.collective, c.bytes, c.group) for c in calls] == [
        ("alltoall", 2 * MIB, tuple(range(8)))] * 8
    two = valid(workload("moe-a2a", 8, ep=4, layers=1, hidden=1024, tokens=512,
                         capacity_factor=1.25))
    assert {c.group for c in two} == {(0, 1, 2, 3), (4, 5, 6, 7)}
    assert {c.bytes for c in two} == {int(2 * MIB * 1.25)}


def test_dp_tp_two_overlapping_streams():
    # a layer's gradient shard: 12 x 1024^2 / 4 parameters x 4 bytes = 12 MiB >= a 2 MiB
    # bucket, so every layer's backward releases one all-reduce per rack position
    racks = [[0, 1, 2, 3], [4, 5, 6, 7]]
    calls = valid(workload("dp-tp", 8, groups=racks, layers=4, hidden=1024, seq=512,
                           bucket_mib=2))
    tp = [c for c in calls if c.stream == "tp"]
    dp = [c for c in calls if c.stream == "dp"]
    assert len(tp) == 2 * 4 * 4 and {c.bytes for c in tp} == {MIB}
    assert {c.group for c in tp} == {(0, 1, 2, 3), (4, 5, 6, 7)}
    assert len(dp) == 4 * 4 and {c.bytes for c in dp} == {12 * MIB}
    assert {c.group for c in dp} == {(0, 4), (1, 5), (2, 6), (3, 7)}
    assert {c.comm for c in dp} == {"dp0", "dp1", "dp2", "dp3"}
    # every rank has calls on both streams, and data-parallel all-reduces are issued while
    # tensor-parallel backward exchanges are still to come: they overlap
    for rank in range(8):
        assert {c.stream for c in calls if rank in c.group} == {"tp", "dp"}
    first_dp = calls.index(dp[0])
    assert any(c.stream == "tp" for c in calls[first_dp:])
    # each bucket waits for the backward exchanges (both racks) of the layer that filled it
    by_id = {c.id: c for c in calls}
    for c in dp:
        assert len(c.after) == 2 and all(by_id[a].stream == "tp" for a in c.after)


def test_steps_repeat_the_step():
    one = workload("dp-tp", 8, layers=1, hidden=256, seq=64)
    two = valid(workload("dp-tp", 8, layers=1, hidden=256, seq=64, steps=2))
    assert len(two) == 2 * len(one)
    assert {c.step for c in two[len(one):]} == {1}
    shifted = [a - len(one) for c in two[len(one):] for a in c.after]
    assert shifted == [a for c in one for a in c.after]


@pytest.mark.parametrize("args, kwargs, text", [
    (("nope", 8), {},
     "unknown workload 'nope' (known: dp-step, tp-layer, moe-a2a, dp-tp, pp-1f1b, 3d)"),
    (("dp-step", 8), {"layers": 3}, "unknown parameter 'layers'"),
    (("tp-layer", 6), {"tp": 4}, "not a multiple of tp=4"),
    (("tp-layer", 8), {"tp": 1}, "at least 2 ranks"),
    (("dp-tp", 4), {}, "at least 2 racks"),
    (("dp-tp", 5), {"groups": [[0, 1], [2, 3, 4]]}, "same size"),
    (("dp-step", 1), {}, "at least 2 ranks"),
    (("dp-step", 8), {"scale": 0}, "scale"),
    (("tp-layer", 8), {"layers": 2.5}, "integer"),
    (("tp-layer", 8), {"mode": "ring"}, "mode"),
    (("moe-a2a", 4), {"groups": [[0, 1], [1, 2]]}, "two groups"),
])
def test_errors_are_one_line(args, kwargs, text):
    with pytest.raises(NetwallError) as e:
        workload(*args, **kwargs)
    assert "\n" not in str(e.value)
    assert text in str(e.value)
