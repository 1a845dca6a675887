"""Hierarchical (two-level) all-reduce, as in NCCL's intra-node/inter-node split and
Horovod's hierarchical all-reduce (Sergeev & Del Balso 2018; Jia et al. 2018).

Fast links inside a group (rack, node) should carry most of the bytes, slow links between
groups as few as possible: a ring reduce-scatter inside every group leaves member i with
segment i of the group's sum (g-1 steps); the members holding segment i in every group then
ring-all-reduce it across groups (2(m-1) steps over S/g bytes); a ring all-gather inside each
group spreads the result (g-1 steps). Steps: 2(g-1) + 2(m-1) for m groups of g; bytes per
rank: 2(g-1)/g S inside groups plus 2(m-1)/m S/g between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from foundation.errors import NetwallError
from traffic.collectives.base import ELEMENT, Move, Schedule, assemble, segments
from traffic.collectives.ring import ring_pass


def check_groups(ranks: int, groups: Sequence[Sequence[int]] | None) -> list[list[int]]:
    """Groups as lists; they must be equal-sized and cover every rank exactly once."""
    if not groups:
        raise NetwallError("hierarchical all-reduce needs a racks: topology (rank groups), "
                           "none given")
    out = [list(g) for g in groups]
    if len({len(g) for g in out}) != 1 or not out[0]:
        raise NetwallError(f"hierarchical all-reduce needs equal, non-empty groups, got sizes "
                           f"{[len(g) for g in out]}")
    if sorted(r for g in out for r in g) != list(range(ranks)):
        raise NetwallError(f"hierarchical all-reduce groups must hold each of the {ranks} ranks "
                           f"exactly once, got {out}")
    return out


def hierarchical_allreduce(ranks: int, size: int, groups: Sequence[Sequence[int]],
                           element: int = ELEMENT) -> Schedule:
    """Intra-group reduce-scatter, inter-group all-reduce per segment, intra-group all-gather."""
    members = check_groups(ranks, groups)
    g, m = len(members[0]), len(members)
    segs = segments(size, g, element)
    timed: list[tuple[int, Move]] = []
    for group in members:  # member i ends with segment i of the group's sum
        timed += ring_pass(group, segs, 0, -1, True)
    for i, (offset, length) in enumerate(segs):  # ring all-reduce of segment i across groups
        peers = [group[i] for group in members]
        subs = [(offset + o, n) for o, n in segments(length, m, element)]
        timed += ring_pass(peers, subs, g - 1, 0, True)
        timed += ring_pass(peers, subs, g - 1 + m - 1, 1, False)
    for group in members:
        timed += ring_pass(group, segs, g - 1 + 2 * (m - 1), 0, False)
    return assemble("allreduce", "hierarchical", ranks, size, size, timed)
