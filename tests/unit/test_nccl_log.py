"""Import of NCCL INFO logs (NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,COLL) as replay traces.

Expected bytes are worked out by hand from count x datatype size (nccl-tests' convention:
all-gather and reduce-scatter count per rank, so x nranks; all-to-all count per peer, x nranks).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from foundation.errors import NetwallError
from traffic.nccl_log import convert, import_nccl_log
from traffic.trace import parse_trace, resolve

DATA = Path(__file__).resolve().parents[1] / "data"
MODERN = DATA / "nccl-2.21-dp-tp-8ranks.log"
OLDER = DATA / "nccl-2.7-singleprocess-4gpus.log"
EIGHT = tuple(range(8))  # the job-wide communicator's group, written out


def load(path: Path, notes: list[str] | None = None):
    with open(path) as f:
        return import_nccl_log(f, path.name, notes)


def line(op, opcount, count, dtype, comm, nranks, root=0, prefix="h:1:2 [0]", stream="0xs"):
    return (f"{prefix} NCCL INFO {op}: opCount {opcount:x} sendbuff 0x1 recvbuff 0x2 "
            f"count {count} datatype {dtype} op 0 root {root} comm {comm} [nranks={nranks}] "
            f"stream {stream}")


def test_modern_log_multi_process_with_sub_communicators():
    notes: list[str] = []
    calls = load(MODERN, notes)
    assert [c.id for c in calls] == list(range(21))  # 8 ranks' lines deduplicated
    by_comm: dict[str, list] = {}
    for c in calls:
        by_comm.setdefault(c.comm, []).append(c)
    world = by_comm.pop("world")
    # opCounts 1e, 1f, 20, 21 (hex): broadcast 1024 x int32, all-reduce 1 x float32,
    # all-to-all of Send/Recv 131072 x float16 to each of 8 peers, all-reduce 16 x float32
    assert [(c.collective, c.bytes, c.group) for c in world] == [
        ("broadcast", 1024 * 4, EIGHT), ("allreduce", 4, EIGHT),
        ("alltoall", 131072 * 2 * 8, EIGHT), ("allreduce", 16 * 4, EIGHT)]
    assert world[0].root == 0
    groups = sorted(cs[0].group for cs in by_comm.values())
    assert groups == [(0, 1, 2, 3), (0, 4), (1, 5), (2, 6), (3, 7), (4, 5, 6, 7)]
    for cs in by_comm.values():
        if len(cs[0].group) == 4:  # tensor parallel: bf16 all-reduce x2, RS and AG per rank
            assert [(c.collective, c.bytes) for c in cs] == [
                ("allreduce", 4194304 * 2), ("allreduce", 4194304 * 2),
                ("reducescatter", 1048576 * 2 * 4), ("allgather", 1048576 * 2 * 4)]
        elif cs[0].group != (0, 4):  # data parallel: 25 MiB fp32 bucket, then a Send/Recv
            assert [(c.collective, c.bytes) for c in cs] == [  # exchange of the pair
                ("allreduce", 6553600 * 4), ("sendrecv", 262144 * 2)]
        else:  # the same, then a lone pipeline-style Send 0 -> 4 (bf16) and its Recv
            assert [(c.collective, c.bytes, c.root, c.peer) for c in cs] == [
                ("allreduce", 6553600 * 4, 0, 1), ("sendrecv", 262144 * 2, 0, 1),
                ("send", 65536 * 2, 0, 1)]
        assert len({c.stream for c in cs}) == 1
    assert len({cs[0].stream for cs in by_comm.values()} | {world[0].stream}) == 7
    assert not any(n.startswith("skipped") for n in notes)
    assert notes[0] == "8 ranks, 7 communicators, 21 calls"
    assert all("\n" not in n for n in notes)
    assert resolve(calls, 8)[0].group == tuple(range(8))


def test_older_log_single_process_four_gpus():
    notes: list[str] = []
    calls = load(OLDER, notes)
    world = [(c.collective, c.bytes, c.root) for c in calls if c.comm == "world"]
    assert world == [
        ("broadcast", 1000 * 4, 0),  # float32
        ("allreduce", 64 * 4, 0), ("allreduce", 237184 * 4, 0), ("allreduce", 386560 * 4, 0),
        ("reducescatter", 1024 * 2 * 4, 0),  # float16, 1024 per rank x 4 ranks
        ("allgather", 2048 * 1 * 4, 0),  # int8, 2048 per rank x 4 ranks
        ("reduce", 512 * 8, 2),  # float64 to root 2
    ]
    sub = [c for c in calls if c.comm != "world"]
    # the 2-rank communicator of GPUs 0 and 2, global ranks from the 4-rank comm's INIT lines
    assert [(c.collective, c.bytes, c.group) for c in sub] == [
        ("allreduce", 4096 * 4, (0, 2)), ("allreduce", 8192 * 4, (0, 2))]
    assert [c.id for c in calls] == list(range(9))
    assert not any(n.startswith("skipped") for n in notes)


def test_convert_gives_a_valid_trace_with_notes_as_comments():
    text = convert(MODERN)
    assert text.startswith("# netwall trace imported from NCCL log nccl-2.21-dp-tp-8ranks.log\n")
    assert parse_trace(text.splitlines(), "converted") == load(MODERN)
    assert parse_trace(convert(OLDER).splitlines(), "converted") == load(OLDER)


def test_without_init_lines_sub_communicators_get_consecutive_blocks():
    lines = []
    for r in range(4):  # 4 processes: a 4-rank world and two 2-rank comms, COLL lines only
        p = f"n:{100 + r}:{200 + r} [{r}]"
        lines.append(line("AllReduce", 0, 256, 7, f"0xw{r}", 4, prefix=p))
        lines.append(line("AllGather", 0, 64, 7, f"0xt{r}", 2, prefix=p, stream="0xt"))
    notes: list[str] = []
    calls = import_nccl_log(lines, "x.log", notes)
    assert [(c.collective, c.bytes, c.group) for c in calls] == [
        ("allreduce", 1024, (0, 1, 2, 3)), ("allgather", 512, (0, 1)), ("allgather", 512, (2, 3))]
    assert sum("assumed consecutive ranks" in n for n in notes) == 2


def test_format_variants():
    lines = [
        # NCCL 2.23+ timestamp prefix, and a Ray-style prefix
        "[2025-03-04 10:21:33] " + line("AllReduce", 0, 8, 7, "0xa", 2, prefix="h:1:1 [0]"),
        "(Worker pid=9, ip=10.0.0.2) " + line("AllReduce", 0, 8, 7, "0xb", 2, prefix="g:2:2 [0]"),
        # RCCL appends task and globalrank
        line("AllReduce", 1, 16, 9, "0xa", 2, prefix="h:1:1 [0]") + " task 1 globalrank 0",
        line("AllReduce", 1, 16, 9, "0xb", 2, prefix="g:2:2 [0]") + " task 1 globalrank 1",
        # 'nranks N' without brackets, and ctran's peer/[nranks=N, localRanks=N]/stream=
        "h:1:1 [0] NCCL INFO Broadcast: opCount 2 sendbuff 0x1 recvbuff 0x1 count 3 "
        "datatype 4 op 0 root 1 comm 0xa nranks 2 stream 0x5",
        "g:2:2 [0] NCCL INFO AllGather: opCount 3 sendbuff 0x1 recvbuff 0x2 count 5 datatype 3 "
        "peer 0 comm 77 [nranks=2, localRanks=2] stream=0x6",
        # NCCL 2.28's native all-to-all (count per peer), fp8 e4m3
        line("AlltoAll", 4, 1000, 10, "0xa", 2, prefix="h:1:1 [0]"),
        "some unrelated output",
        "h:1:1 [0] NCCL INFO Connected all rings",
    ]
    calls = import_nccl_log(lines, "v.log")
    assert [(c.collective, c.bytes, c.root) for c in calls] == [
        ("allreduce", 32, 0), ("allreduce", 32, 0), ("broadcast", 24, 1),
        ("allgather", 40, 0), ("alltoall", 2000, 0)]


def test_skips_are_counted():
    lines = [line("AllReduce", 0, 8, 7, "0xa", 2), line("AllReduce", 0, 8, 7, "0xb", 2,
                                                        prefix="h:3:4 [1]"),
             line("Gather", 1, 8, 7, "0xa", 2), line("AllReduce", 0, 8, 99, "0xc", 2),
             line("AllReduce", 0, 8, 7, "0xd", 1), line("AllReduce", 0, 8, 7, "0xd", 1),
             "h:1:2 [0] NCCL INFO AllReduce: opCount 0 count 8"]
    notes: list[str] = []
    calls = import_nccl_log(lines, "s.log", notes)
    assert len(calls) == 1
    skipped = Counter(n for n in notes if n.startswith("skipped"))
    assert set(skipped) == {"skipped 1 Gather calls (not a netwall collective)",
                            "skipped 1 calls with unknown datatype 99",
                            "skipped 2 calls on single-rank communicators (no traffic)",
                            "skipped 1 collective lines in an unknown format"}


def test_errors_are_one_line():
    with pytest.raises(NetwallError) as e:
        import_nccl_log(["h:1:2 [0] NCCL INFO Bootstrap : Using eth0", "hello"], "empty.log")
    assert "\n" not in str(e.value) and str(e.value).startswith("empty.log: no NCCL collective")
    with pytest.raises(NetwallError) as e:
        import_nccl_log([line("AllReduce", 0, 8, 7, "0xd", 1)], "one.log")
    assert "\n" not in str(e.value) and "single-rank" in str(e.value)
    with pytest.raises(NetwallError, match="NCCL log .*missing.log not found"):
        convert(DATA / "missing.log")
