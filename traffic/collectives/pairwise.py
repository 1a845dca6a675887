"""Point-to-point patterns: all-to-all by pairwise exchange, nccl-tests' sendrecv, and a
single send.

All-to-all and sendrecv use a send area [0, size) and a receive area [size, 2 size) in the one
working buffer; a send moves the sender's whole buffer into the receiver's (a receiver never
sends in the same call, so one area each is enough).
"""

from __future__ import annotations

from foundation.errors import NetwallError
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


def direct_send(ranks: int, size: int) -> Schedule:
    """One ncclSend matched by one ncclRecv: local rank 0 sends its buffer to local rank 1, in
    one step (pipeline parallelism's activations and gradients between neighbouring stages)."""
    if ranks != 2:
        raise NetwallError(f"a send is between 2 ranks (a sender and a receiver), got {ranks}")
    return assemble("send", "direct", ranks, size, size, [(0, Move(0, 1, 0, 0, size, False))])
