"""NVLink SHARP (NVLS): collectives the scale-up switch reduces and multicasts.

On H100, H200, B200 and GB200 domains NCCL runs large all-reduces through the NVSwitch
(NCCL src/device/all_reduce.h, RunWorkColl<AllReduce, NVLS, SIMPLE>, one node). Every rank is
the head of one shard of every pipeline slice; a head's `multimem.ld_reduce` makes the switch
read that shard from every rank's memory, reduce it and return it to the head, and its
`multimem.st` sends the reduced shard back up, which the switch writes to every rank (one copy
per port). So a GPU's link carries, each way, the whole buffer plus its own shard:
(n+1)/n S, against a ring's 2(n-1)/n S, and never reduces on the GPU.

Here the switch is one more participant of the schedule (index `ranks`, Schedule.switches):
it starts with the op's identity (traffic.collectives.buffers.initial) and its receives from
the ranks reduce. Per slice j of the buffer (`chunk` bytes, NCCL's pipelining), in moves:
  A_j at step 2j     every rank -> switch: slice j (reduce)          the ld_reduce reads
  B_j at step 2j+1   switch -> rank h: shard h of slice j (copy)     its result, to the head
  C_j at step 2j+3   rank h -> switch: shard h of slice j (copy)     the head's multimem.st
  D_j at step 2j+4   switch -> every rank: slice j (copy)            its multicast
so the big moves of both directions share the even steps and the small ones the odd steps, as
NCCL's warps overlap them, and no two moves join the same ordered pair in one step.

Reduce-scatter and all-gather (NCCL offers NVLS for both on one node, tuning.cc) carry S one
way and S/n the other: every rank sends segment t to the switch at step t, which returns the
reduced segment t to rank t at step t+1; for all-gather rank t stores its segment at step t
and the switch multicasts it to every rank, itself included (multimem.st writes every
rank's copy), at step t+1.
"""

from __future__ import annotations

from traffic.collectives.base import ELEMENT, Move, Schedule, assemble, pieces, segments

ALGORITHM = "nvls"
#: Pipeline slices of an all-reduce when no chunk is given: enough that filling and draining
#: the four-move pipeline costs about 6% of the call (2 of 32 slices), few enough that a call
#: is 67 steps. NCCL pipelines finer (128 KiB chunks per head), at no per-step cost of its own.
SLICES = 32


def default_chunk(size: int, element: int = ELEMENT) -> int:
    """The all-reduce's slice when no chunk is given: a SLICES-th of the buffer, whole
    elements, at least one."""
    return max(size // SLICES // element * element, element)


def nvls_allreduce(ranks: int, size: int, chunk: int, element: int = ELEMENT) -> Schedule:
    """NVLS all-reduce over `ranks` GPUs on one switch, in slices of `chunk` bytes."""
    switch = ranks
    timed: list[tuple[int, Move]] = []
    for j, (offset, length) in enumerate(pieces(0, size, chunk)):
        shards = [(offset + o, n) for o, n in segments(length, ranks, element)]
        for rank in range(ranks):
            timed.append((2 * j, Move(rank, switch, offset, offset, length, True)))
            timed.append((2 * j + 4, Move(switch, rank, offset, offset, length, False)))
        for head, (at, n) in enumerate(shards):
            timed.append((2 * j + 1, Move(switch, head, at, at, n, False)))
            timed.append((2 * j + 3, Move(head, switch, at, at, n, False)))
    return assemble("allreduce", ALGORITHM, ranks, size, size, timed, switches=1)


def nvls_reducescatter(ranks: int, size: int, element: int = ELEMENT) -> Schedule:
    """NVLS reduce-scatter: rank r ends with segment r of the reduction (NCCL in-place)."""
    switch = ranks
    timed: list[tuple[int, Move]] = []
    for t, (offset, length) in enumerate(segments(size, ranks, element)):
        timed += [(t, Move(rank, switch, offset, offset, length, True)) for rank in range(ranks)]
        timed.append((t + 1, Move(switch, t, offset, offset, length, False)))
    return assemble("reducescatter", ALGORITHM, ranks, size, size, timed, switches=1)


def nvls_allgather(ranks: int, size: int, element: int = ELEMENT) -> Schedule:
    """NVLS all-gather: rank t stores its segment, the switch multicasts it to every rank."""
    switch = ranks
    timed: list[tuple[int, Move]] = []
    for t, (offset, length) in enumerate(segments(size, ranks, element)):
        timed.append((t, Move(t, switch, offset, offset, length, False)))
        timed += [(t + 1, Move(switch, rank, offset, offset, length, False))
                  for rank in range(ranks)]  # the store reaches its own rank too
    return assemble("allgather", ALGORITHM, ranks, size, size, timed, switches=1)
