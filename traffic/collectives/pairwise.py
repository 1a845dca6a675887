"""Point-to-point patterns: all-to-all by pairwise exchange, and nccl-tests' sendrecv.

Both use a send area [0, size) and a receive area [size, 2 size) in the one working buffer.
"""

from __future__ import annotations

from traffic.collectives.base import Move, Schedule, assemble


def direct_alltoall(ranks: int, size: int) -> Schedule:
    """Pairwise exchange (Thakur et al. 2005, section 4.6): at step k (1..n-1) rank r sends
    send-chunk (r+k) mod n to that rank's receive-chunk r, and receives from (r-k) mod n.

    Every rank sends and receives exactly one chunk per step, so no receiver is flooded; n-1
    steps of S/n bytes, (n-1)/n S per rank. The self chunk needs no wire: `initial()` places it
    in the receive area already (the local copy NCCL does with cudaMemcpy).
    """
    part = size // ranks
    timed = [(k - 1, Move(r, (r + k) % ranks, (r + k) % ranks * part, size + r * part, part,
                          False))
             for k in range(1, ranks) for r in range(ranks)]
    return assemble("alltoall", "direct", ranks, size, 2 * size, timed)


def direct_sendrecv(ranks: int, size: int) -> Schedule:
    """nccl-tests' sendrecv: one step, rank r sends its send area to r+1's receive area."""
    timed = [(0, Move(r, (r + 1) % ranks, 0, size, size, False)) for r in range(ranks)]
    return assemble("sendrecv", "direct", ranks, size, 2 * size, timed)
