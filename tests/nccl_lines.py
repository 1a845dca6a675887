"""NCCL INFO log lines in the format of NCCL 2.2x (src/enqueue.cc, src/init.cc), and logs of
the shapes that made the old importer quadratic, for the tests and benchmarks of
traffic.nccl_log."""

from __future__ import annotations

A, B = "h:1:1 [0]", "h:2:2 [1]"  # two processes, one GPU each


def line(op: str, opcount: int, count: object, comm: str, nranks: object, prefix: str,
         dtype: int = 7, root: object = 0) -> str:
    return (f"{prefix} NCCL INFO {op}: opCount {opcount:x} sendbuff 0x1 recvbuff 0x2 "
            f"count {count} datatype {dtype} op 0 root {root} comm {comm} [nranks={nranks}] "
            f"stream 0x5")


def init(comm: str, rank: int, nranks: object, prefix: str, commid: str) -> str:
    return (f"{prefix} NCCL INFO comm {comm} rank {rank} nranks {nranks} cudaDev 0 busId 1 "
            f"commId {commid} - Init COMPLETE")


def comms_log(n: int, same: bool) -> list[str]:
    """n two-rank communicators without INIT lines, every rank 0 first (the red team's
    20,000: the old grouping compared each with every one before it)."""
    size = (lambda k: 8) if same else (lambda k: 8 + 4 * k)
    return ([line("AllReduce", 0, size(k), f"0xa{k}", 2, A) for k in range(n)]
            + [line("AllReduce", 0, size(k), f"0xb{k}", 2, B) for k in range(n)])


def excerpt_log(n: int) -> list[str]:
    """An 8-rank job with INIT lines, n calls, rank 7's lines cut out, Send/Recv pairs."""
    procs = [(f"h:{r}:{r} [{r}]", f"0x{r}") for r in range(7)]
    out = [init(c, r, 8, p, "0x99") for r, (p, c) in enumerate(procs)]
    for k in range(n):
        for r, (p, c) in enumerate(procs):
            out.append(line("AllReduce", 2 * k, 64 + k, c, 8, p))
            out.append(line("Send" if r % 2 == 0 else "Recv", 2 * k + 1, 16, c, 8, p,
                            root=r + 1 if r % 2 == 0 else r - 1))
    return out



def pair(op: str = "AllReduce", count: object = 8, nranks: object = 2, root: object = 0,
         dtype: int = 7, opcount: int = 0) -> list[str]:
    """One call on a two-rank communicator, logged by both ranks."""
    return [line(op, opcount, count, "0xa", nranks, A, dtype, root),
            line(op, opcount, count, "0xb", nranks, B, dtype, root)]
