"""Ring algorithms: all-reduce, reduce-scatter, all-gather (Patarasuk & Yuan 2009; NCCL rings).

Every member sends to the next one and receives from the previous one in every step, so each
link of the ring carries one segment per step and the per-rank volume is the minimum possible:
(n-1)/n S for reduce-scatter or all-gather, 2(n-1)/n S for all-reduce.
"""

from __future__ import annotations

from collections.abc import Sequence

from traffic.collectives.base import ELEMENT, Move, Schedule, assemble, segments

Timed = list[tuple[int, Move]]


def ring_pass(order: Sequence[int], segs: Sequence[tuple[int, int]], step0: int, first: int,
              reduce: bool) -> Timed:
    """len(order)-1 ring steps from `step0`: at step k member i sends segment (i+first-k) mod m
    to member i+1, adding (reduce-scatter) or overwriting (all-gather).

    A reduce-scatter pass leaves member i holding segment (i+first+1) fully reduced; an
    all-gather pass needs member i to start holding segment (i+first) and ends with all of them.
    """
    m = len(order)
    timed: Timed = []
    for k in range(m - 1):
        for i, rank in enumerate(order):
            offset, length = segs[(i + first - k) % m]
            move = Move(rank, order[(i + 1) % m], offset, offset, length, reduce)
            timed.append((step0 + k, move))
    return timed


def ring_allreduce(ranks: int, size: int, chunk: int | None = None,
                   element: int = ELEMENT) -> Schedule:
    """Ring all-reduce: n-1 reduce-scatter steps, then n-1 all-gather steps (2(n-1) in all).

    In reduce-scatter step k rank r sends segment (r-k) mod n to r+1 and adds segment
    (r-k-1) mod n from r-1; after n-1 steps rank r holds segment (r+1) mod n fully reduced,
    which the all-gather steps pass round the ring. Each rank sends 2(n-1)/n S bytes.
    `chunk` is ignored: a segment is one move, since a step allows one move per (src, dst).
    """
    order = range(ranks)
    segs = segments(size, ranks, element)
    timed = ring_pass(order, segs, 0, 0, True) + ring_pass(order, segs, ranks - 1, 1, False)
    return assemble("allreduce", "ring", ranks, size, size, timed)


def ring_reducescatter(ranks: int, size: int, element: int = ELEMENT) -> Schedule:
    """Ring reduce-scatter: n-1 steps, rank r ends with segment r of the sum (NCCL in-place).

    Shifted by one segment from the all-reduce's first half so the result lands where NCCL's
    in-place recvbuff (sendbuff + r*recvcount) is. Each rank sends (n-1)/n S bytes.
    """
    timed = ring_pass(range(ranks), segments(size, ranks, element), 0, -1, True)
    return assemble("reducescatter", "ring", ranks, size, size, timed)


def ring_allgather(ranks: int, size: int, element: int = ELEMENT) -> Schedule:
    """Ring all-gather: n-1 steps; rank r forwards at step k the segment (r-k) mod n it got
    at step k-1 (its own at step 0). Each rank sends (n-1)/n S bytes."""
    timed = ring_pass(range(ranks), segments(size, ranks, element), 0, 0, False)
    return assemble("allgather", "ring", ranks, size, size, timed)
