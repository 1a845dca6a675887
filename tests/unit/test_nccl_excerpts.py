"""NCCL logs as users paste them: excerpts of a few ranks, launcher prefixes, several hosts,
point-to-point pipelines, in the line formats of NCCL 2.1x and 2.2x.

The excerpts are written here in the formats of logs published in NVIDIA/nccl issues (Send and
Recv lines of NCCL 2.10-2.14 with `recvbuff (nil)` or `sendbuff (nil)`, issues 584, 734 and
783; Ray-prefixed 128-rank all-reduces of NCCL 2.18, issue 1193; NCCL 2.2x INIT lines with
`commId`, issue 1189; a two-rank tensor-parallel step of PyTorch on NCCL 2.2x, torchtitan issue
1369), with addresses and sizes of their own.
"""

from __future__ import annotations

import pytest

from foundation.errors import NetwallError
from traffic.nccl_log import import_nccl_log
from traffic.trace import dump_trace, parse_trace, resolve, takers


def p2p(prefix: str, op: str, opcount: int, count: int, peer: int, comm: str, nranks: int,
        stream: str, old: bool = False) -> str:
    """A Send or Recv line: NCCL 2.14+ logs the send buffer as recvbuff (issue 734)."""
    bufs = ("sendbuff 0x7f50 recvbuff (nil)" if op == "Send" else
            "sendbuff (nil) recvbuff 0x7f51") if old else "sendbuff (nil) recvbuff 0x7ff8"
    return (f"{prefix} NCCL INFO {op}: opCount {opcount:x} {bufs} count {count} datatype 7 "
            f"op 0 root {peer} comm {comm} [nranks={nranks}] stream {stream}")


def coll(prefix: str, op: str, opcount: int, count: int, comm: str, nranks: int,
         stream: str, dtype: int = 7) -> str:
    return (f"{prefix} NCCL INFO {op}: opCount {opcount:x} sendbuff 0x7fdf recvbuff 0x7fe0 "
            f"count {count} datatype {dtype} op 0 root 0 comm {comm} [nranks={nranks}] "
            f"stream {stream}")


def load(lines: list[str], notes: list[str] | None = None):
    calls = import_nccl_log(lines, "x.log", notes)
    assert parse_trace(dump_trace(calls).splitlines(), "again") == calls  # a valid trace
    return calls


def test_a_pipeline_of_two_ranks_in_nccl_2_10_format_is_sends_both_ways():
    # PyTorch's 2-rank p2p communicator, no INIT lines: the peer tells each side's rank.
    # Activations 0 -> 1 (opCounts step by 2, as in issue 584), then gradients 1 -> 0.
    r0, r1 = "ubuntu:199573:201140 [0]", "ubuntu:199574:201142 [1]"
    lines = []
    for k in range(3):
        lines.append(p2p(r0, "Send", 0x12 + 2 * k, 2420736, 1, "0x7f5128002e10", 2, "0x55f1a0",
                         old=True))
        lines.append(p2p(r1, "Recv", 0x12 + 2 * k, 2420736, 0, "0x7f6128002e10", 2, "0x55f1b0",
                         old=True))
    for k in range(3):
        lines.append(p2p(r1, "Send", 0x18 + 2 * k, 2420736, 0, "0x7f6128002e10", 2, "0x55f1b0",
                         old=True))
        lines.append(p2p(r0, "Recv", 0x18 + 2 * k, 2420736, 1, "0x7f5128002e10", 2, "0x55f1a0",
                         old=True))
    notes: list[str] = []
    calls = load(lines, notes)
    assert [(c.collective, c.bytes, takers(resolve([c], 2)[0]), c.grouped) for c in calls] == \
        [("send", 2420736 * 4, (0, 1), False)] * 3 + [("send", 2420736 * 4, (1, 0), False)] * 3
    assert len({c.stream for c in calls}) == 1  # each rank used one stream for all of them
    assert notes == ["2 ranks, 1 communicators, 6 calls"]  # nothing missing, nothing assumed


def test_the_same_address_in_two_processes_is_not_the_same_stream():
    # rank 0 all-reduces on 0xaaa and sends on 0xbbb; rank 1 the other way round. Addresses
    # are per process: keyed by address alone, the two streams would become one.
    a, b = "h:10:11 [0]", "h:20:21 [1]"
    lines = [coll(a, "AllReduce", 0, 1024, "0xc0", 2, "0xaaa"),
             coll(b, "AllReduce", 0, 1024, "0xc1", 2, "0xbbb"),
             p2p(a, "Send", 1, 256, 1, "0xc0", 2, "0xbbb"),
             p2p(b, "Recv", 1, 256, 0, "0xc1", 2, "0xaaa"),
             coll(a, "AllReduce", 2, 1024, "0xc0", 2, "0xaaa"),
             coll(b, "AllReduce", 2, 1024, "0xc1", 2, "0xbbb")]
    calls = load(lines)
    assert [c.collective for c in calls] == ["allreduce", "send", "allreduce"]
    assert calls[0].stream == calls[2].stream != calls[1].stream


def test_tensor_parallel_step_stays_on_one_stream_when_an_excerpt_drops_some_lines():
    # PyTorch TP on NCCL 2.2x: reduce-scatter and all-gather from the autograd thread, the
    # loss all-reduces from the main thread, all on each rank's one stream. The excerpt has
    # rank 1's all-reduces cut out: they must not land on a stream of their own.
    r0t, r0m = "hopper01:191369:191420 [0]", "hopper01:191369:191369 [0]"
    r1t = "hopper01:191370:191425 [1]"
    lines = [coll(r1t, "AllGather", 0xd, 2097152, "0x55fca23fc0f0", 2, "0x55fca193e8e0"),
             coll(r0t, "AllGather", 0xd, 2097152, "0x55e290bd32d0", 2, "0x55e29067e430"),
             coll(r0t, "ReduceScatter", 0xe, 2097152, "0x55e290bd32d0", 2, "0x55e29067e430"),
             coll(r1t, "ReduceScatter", 0xe, 2097152, "0x55fca23fc0f0", 2, "0x55fca193e8e0"),
             coll(r0m, "AllReduce", 0x10, 1, "0x55e290bd32d0", 2, "0x55e29067e430"),
             coll(r0m, "AllReduce", 0x11, 1, "0x55e290bd32d0", 2, "0x55e29067e430")]
    notes: list[str] = []
    calls = load(lines, notes)
    assert [(c.collective, c.bytes) for c in calls] == [
        ("allgather", 2097152 * 4 * 2), ("reducescatter", 2097152 * 4 * 2),
        ("allreduce", 4), ("allreduce", 4)]
    assert {c.stream for c in calls} == {"s0"}
    assert "world: 2 calls not logged by every rank present (first: opCount 10)" in notes[1]


def test_ray_prefixes_several_hosts_and_ranks_missing_from_an_excerpt():
    # 4 of a 128-rank job's processes, on 4 hosts, two with the same pid (as in issue 1193)
    ranks = [("10.72.7.6", "worker-fqztx:615:18953 [2]", "0x78cf", "0x78d0"),
             ("10.72.12.6", "worker-srrss:22754:41192 [5]", "0x7fb4", "0x7fb5"),
             ("10.72.2.6", "worker-hzhzd:619:19049 [3]", "0x796f", "0x796e"),
             ("10.72.6.6", "worker-482hg:619:18882 [4]", "0x7db6", "0x7db7")]
    lines = []
    for opcount, count in ((0x139d, 7382228), (0x139e, 7066572)):
        for ip, prefix, comm, stream in ranks:
            lines.append(f"(RayTrainWorker pid={prefix.split(':')[1]}, ip={ip}) "
                         + coll(prefix, "AllReduce", opcount, count, comm, 128, stream))
    notes: list[str] = []
    calls = load(lines, notes)
    assert [(c.collective, c.bytes, c.group) for c in calls] == [
        ("allreduce", 7382228 * 4, tuple(range(128))),
        ("allreduce", 7066572 * 4, tuple(range(128)))]
    assert notes[0] == "128 ranks, 1 communicators, 2 calls"
    assert any(n.startswith("world: lines of only 4 of its 128 ranks") for n in notes)


INIT = ("{prefix} NCCL INFO comm {comm} rank {rank} nranks 4 cudaDev {dev} nvmlDev {dev} "
        "busId {dev}8000 commId 0xf021d9037f9243d8 - Init COMPLETE")


def test_a_four_stage_pipeline_in_nccl_2_2x_format_with_grouped_sends_and_a_missing_rank():
    # Megatron-style 1F1B step on 4 GPUs over the job-wide communicator (INIT lines give the
    # ranks): each stage sends its activation on and, in one NCCL group, receives the
    # previous stage's; rank 3's lines are missing from the excerpt.
    procs = [(f"H20-GPU-05:{1789224 + r}:{1789735 + r} [{r}]", f"0x5a{r}0", f"0x7f{r}0")
             for r in range(4)]
    lines = [INIT.format(prefix=p, comm=c, rank=r, dev=r) for r, (p, c, _) in enumerate(procs)]
    for r in range(3):  # the sends r -> r+1, each in a group with the receive from r-1
        prefix, comm, stream = procs[r]
        if r > 0:
            lines.append(p2p(prefix, "Recv", 1, 4096, r - 1, comm, 4, stream))
        lines.append(p2p(prefix, "Send", 1, 4096, r + 1, comm, 4, stream))
    lines = lines[:3] + lines[4:]  # rank 3's INIT line is cut out too
    notes: list[str] = []
    calls = load(lines, notes)
    assert [(takers(c), c.bytes, c.grouped) for c in resolve(calls, 4)] == [
        ((0, 1), 16384, False), ((1, 2), 16384, True), ((2, 3), 16384, True)]
    assert len({c.stream for c in calls}) == 1
    assert "world: lines of only 3 of its 4 ranks: local ranks [3] missing" in notes[1]
    assert "skipped 1 Send lines whose other side is not in the log (imported from one side)" \
        in notes


def test_sends_on_a_communicator_whose_ranks_the_log_does_not_tell_are_refused():
    # a 4-rank communicator without INIT lines: which rank sent is unknown, nothing is guessed
    lines = [p2p(f"h:{r}:{r} [{r}]", "Send", 0, 64, (r + 2) % 4, f"0x{r}", 4, "0x1")
             for r in range(2)]
    with pytest.raises(NetwallError) as e:
        import_nccl_log(lines, "p2p.log")
    message = str(e.value)
    assert "\n" not in message and message.startswith("p2p.log: no replayable collective calls")
    assert "2 Send/Recv calls on ranks the log does not name (no INIT lines)" in message


def test_a_line_cut_short_is_counted_not_guessed():
    a, b = "h:10:11 [0]", "h:20:21 [1]"
    lines = [coll(a, "AllReduce", 0, 8, "0xc0", 2, "0x1"), coll(b, "AllReduce", 0, 8, "0xc1", 2,
                                                                "0x2"),
             coll(a, "AllReduce", 1, 8, "0xc0", 2, "0x1")[:70]]
    notes: list[str] = []
    assert len(load(lines, notes)) == 1
    assert "skipped 1 collective lines in an unknown format" in notes


def test_sends_of_one_opcount_without_their_receives_are_not_a_ring_shift():
    # both ranks send first (opCount 0) and receive next (opCount 1): not nccl-tests'
    # sendrecv (whose receives share the sends' group), but two sends, each matched
    a, b = "h:10:11 [0]", "h:20:21 [1]"
    lines = [p2p(a, "Send", 0, 64, 1, "0xc0", 2, "0x1"), p2p(b, "Send", 0, 64, 0, "0xc1", 2, "0x2"),
             p2p(a, "Recv", 1, 64, 1, "0xc0", 2, "0x1"), p2p(b, "Recv", 1, 64, 0, "0xc1", 2, "0x2")]
    notes: list[str] = []
    calls = load(lines, notes)
    assert [(c.collective, c.root, c.peer) for c in calls] == [("send", 0, 1), ("send", 1, 0)]
    assert not any(n.startswith("skipped") for n in notes)
