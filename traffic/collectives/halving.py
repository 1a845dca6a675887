"""Recursive halving-doubling all-reduce (Rabenseifner; Thakur, Rabenseifner & Gropp 2005,
"Optimization of collective communication operations in MPICH", section 4.4).

Reduce-scatter by recursive halving: in step i every rank pairs with the rank p/2^(i+1) away,
keeps half of its current window and adds the partner's copy of that half, sending the other
half; after log2 p steps rank v holds segment v of the sum. All-gather by recursive doubling
retraces the pairs in reverse, doubling the window each step. That is 2 log2 p steps (the
ring needs 2(p-1)) for the same 2(p-1)/p S bytes per rank.

For n that is not a power of two, with p the largest power of two below n and rem = n - p,
the standard fold: each even rank r < 2 rem first adds its whole buffer into rank r+1 and sits
out; the remaining p ranks run the algorithm; at the end rank r+1 returns the full result.
That costs two extra steps and S more bytes on the folding pairs.
"""

from __future__ import annotations

from traffic.collectives.base import ELEMENT, Move, Schedule, assemble, segments


def halving_doubling_allreduce(ranks: int, size: int, element: int = ELEMENT) -> Schedule:
    """Recursive halving reduce-scatter then recursive doubling all-gather (see module)."""
    p = 1 << (ranks.bit_length() - 1)
    rem = ranks - p
    # The p participants in virtual-rank order: odd ranks below 2 rem, then everyone above.
    real = [2 * v + 1 for v in range(rem)] + list(range(2 * rem, ranks))
    segs = segments(size, p, element)

    def span(lo: int, hi: int) -> tuple[int, int]:  # bytes of segments [lo, hi)
        return segs[lo][0], segs[hi - 1][0] + segs[hi - 1][1] - segs[lo][0]

    timed: list[tuple[int, Move]] = []
    step = 0
    if rem:
        timed += [(0, Move(2 * v, 2 * v + 1, 0, 0, size, True)) for v in range(rem)]
        step = 1
    windows = [(0, p)] * p
    for i in range(p.bit_length() - 1):  # halving: distance p/2, p/4, ..., 1
        mask = p >> (i + 1)
        new = []
        for v in range(p):
            lo, hi = windows[v]
            mid = (lo + hi) // 2
            keep, give = ((lo, mid), (mid, hi)) if not v & mask else ((mid, hi), (lo, mid))
            offset, length = span(*give)
            timed.append((step, Move(real[v], real[v ^ mask], offset, offset, length, True)))
            new.append(keep)
        windows = new
        step += 1
    for i in range(p.bit_length() - 1):  # doubling: distance 1, 2, ..., p/2
        mask = 1 << i
        for v in range(p):
            offset, length = span(*windows[v])
            timed.append((step, Move(real[v], real[v ^ mask], offset, offset, length, False)))
        windows = [(min(windows[v][0], windows[v ^ mask][0]),
                    max(windows[v][1], windows[v ^ mask][1])) for v in range(p)]
        step += 1
    if rem:
        timed += [(step, Move(2 * v + 1, 2 * v, 0, 0, size, False)) for v in range(rem)]
    return assemble("allreduce", "halving-doubling", ranks, size, size, timed)
