"""Broadcast and reduce: pipelined chain ("ring") and pipelined binomial tree.

Chain (NCCL's ring broadcast/reduce; Traeff & Ripke 2008 on pipelined linear algorithms): the
buffer is cut into C chunks that flow along root, root+1, ... (broadcast) or root+1, ...,
root-1, root (reduce, adding on the way); chunk c crosses hop i at step c+i, so all hops work
at once and the call takes C + n - 2 steps with every rank sending at most S. Good for large
buffers, poor latency for many ranks.

Binomial tree (Thakur et al. 2005, MPICH): in round j every rank v < 2^j that has the data
sends it to v + 2^j (reduce: the mirror image), so it reaches everyone in ceil(log2 n) rounds.
Chunk c runs round j at step c+j, so consecutive chunks overlap and the call takes
C + ceil(log2 n) - 1 steps; an interior rank sends (or receives) up to log2 n chunks per step,
one per child, so its link carries about log2 n S in all: the latency/bandwidth trade-off
that makes it the small-message choice. Ranks are relative to the root: v = (r - root) mod n.
"""

from __future__ import annotations

from traffic.collectives.base import Move, Schedule, assemble, pieces


def ring_broadcast(ranks: int, size: int, chunk: int, root: int) -> Schedule:
    """Chain from the root: hop i forwards chunk c at step c+i (overwrite)."""
    chain = [(root + i) % ranks for i in range(ranks)]
    timed = [(c + i, Move(chain[i], chain[i + 1], off, off, ln, False))
             for c, (off, ln) in enumerate(pieces(0, size, chunk)) for i in range(ranks - 1)]
    return assemble("broadcast", "ring", ranks, size, size, timed, root)


def ring_reduce(ranks: int, size: int, chunk: int, root: int) -> Schedule:
    """Chain toward the root: root+1 sends chunk c at step c, each next rank adds and forwards
    it one step later, the root adds the last partial sum."""
    chain = [(root + 1 + i) % ranks for i in range(ranks)]  # ends at the root
    timed = [(c + i, Move(chain[i], chain[i + 1], off, off, ln, True))
             for c, (off, ln) in enumerate(pieces(0, size, chunk)) for i in range(ranks - 1)]
    return assemble("reduce", "ring", ranks, size, size, timed, root)


def tree_broadcast(ranks: int, size: int, chunk: int, root: int) -> Schedule:
    """Binomial broadcast: v sends chunk c to v + 2^j (2^j > v) at step c+j; v got it at
    step c + floor(log2 v), earlier."""
    timed = []
    for c, (off, ln) in enumerate(pieces(0, size, chunk)):
        for v in range(ranks):
            j = v.bit_length()
            while v + (1 << j) < ranks:
                src, dst = (v + root) % ranks, (v + (1 << j) + root) % ranks
                timed.append((c + j, Move(src, dst, off, off, ln, False)))
                j += 1
    return assemble("broadcast", "tree", ranks, size, size, timed, root)


def tree_reduce(ranks: int, size: int, chunk: int, root: int) -> Schedule:
    """Binomial reduce: v != 0 adds chunk c into v - lowbit(v) at step c + log2 lowbit(v),
    after its children v + 2^j (2^j < lowbit(v)) added theirs at steps c+j; the children
    of one rank use distinct steps per chunk, so their additions never collide."""
    timed = []
    for c, (off, ln) in enumerate(pieces(0, size, chunk)):
        for v in range(1, ranks):
            low = v & -v
            src, dst = (v + root) % ranks, (v - low + root) % ranks
            timed.append((c + low.bit_length() - 1, Move(src, dst, off, off, ln, True)))
    return assemble("reduce", "tree", ranks, size, size, timed, root)
