"""NCCL's double binary tree all-reduce (NCCL src/graph/trees.cc; Sanders, Speck & Traeff
2009, "Two-tree algorithms for full bandwidth broadcast, reduction and scan").

One binary tree alone leaves its leaves' uplinks idle while the interior ones carry twice the
data. Two complementary trees, each carrying half the buffer, fix that: a rank that is a leaf
in one tree is interior in the other (NCCL mirrors the tree for even n and shifts it by one
rank for odd n), so every rank sends and receives about the same. Each half is reduced up its
tree and broadcast back down, cut into chunks so that a chunk moves up (or down) one level per
step while the next chunk follows it: the pipelining that makes a deep tree bandwidth-bound.
"""

from __future__ import annotations

from traffic.collectives.base import ELEMENT, Move, Schedule, assemble, pieces, segments


def btree_parents(ranks: int) -> list[int]:
    """NCCL's ncclGetBtree: parent of every rank (-1 for the root, rank 0).

    Ranks with lowest set bit b hang under (r ^ b) | 2b, or r ^ b when that is out of range:
    an in-order binary tree whose leaves are the odd ranks.
    """
    parents = [-1]
    for rank in range(1, ranks):
        bit = rank & -rank
        up = (rank ^ bit) | (bit << 1)
        parents.append(up if up < ranks else rank ^ bit)
    return parents


def dtree_parents(ranks: int) -> tuple[list[int], list[int]]:
    """NCCL's ncclGetDtree: the btree and its mirror (even n) or its shift by one (odd n)."""
    first = btree_parents(ranks)
    if ranks % 2:
        second = [-1 if first[(r - 1) % ranks] < 0 else (first[(r - 1) % ranks] + 1) % ranks
                  for r in range(ranks)]
    else:
        flip = ranks - 1
        second = [-1 if first[flip - r] < 0 else flip - first[flip - r] for r in range(ranks)]
    return first, second


class _Packer:
    """Places moves at the earliest step after their dependencies that keeps a step legal.

    Legal: one move per (step, src, dst), and a rank's receive ranges in a step overlap
    neither each other nor its send ranges (two children adding the same chunk into their
    parent must therefore use different steps, unlike NCCL's separate receive buffers).
    """

    def __init__(self) -> None:
        self.timed: list[tuple[int, Move]] = []
        self.step_of: dict[object, int] = {}
        self.pairs: set[tuple[int, int, int]] = set()
        self.recv: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.send: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def place(self, key: object, move: Move, deps: list[object]) -> None:
        step = max((self.step_of[d] + 1 for d in deps), default=0)
        into = (move.dst_offset, move.dst_offset + move.length)
        out = (move.src_offset, move.src_offset + move.length)
        while not self._fits(step, move, into, out):
            step += 1
        self.step_of[key] = step
        self.pairs.add((step, move.src, move.dst))
        self.recv.setdefault((step, move.dst), []).append(into)
        self.send.setdefault((step, move.src), []).append(out)
        self.timed.append((step, move))

    def _fits(self, step: int, move: Move, into: tuple[int, int], out: tuple[int, int]) -> bool:
        def clash(rng: tuple[int, int], ranges: list[tuple[int, int]]) -> bool:
            return any(rng[0] < hi and lo < rng[1] for lo, hi in ranges)

        return ((step, move.src, move.dst) not in self.pairs
                and not clash(into, self.recv.get((step, move.dst), []))
                and not clash(into, self.send.get((step, move.dst), []))
                and not clash(out, self.recv.get((step, move.src), [])))


def tree_allreduce(ranks: int, size: int, chunk: int, element: int = ELEMENT) -> Schedule:
    """Double binary tree all-reduce: half the buffer per tree, `chunk`-byte pipeline chunks.

    Per chunk and tree, a rank adds its children's partial sums and passes the result up
    (reduce=True); the root's children's contributions complete the chunk at the root, which
    sends it back down, each rank overwriting and forwarding to its children. Without
    conflicts chunk c leaves a rank of height h at step c+h and reaches depth d at step
    c+H+d (H the tree height), so the call takes about C + 2H steps for C chunks per half;
    the packer delays a move by a step where two children would add into the same range at
    once or both trees would use the same (src, dst) pair. Every rank sends about 2(n-1)/n S.
    """
    jobs: list[tuple[tuple[int, int], object, Move, list[object]]] = []
    for t, (parents, (offset, length)) in enumerate(zip(dtree_parents(ranks),
                                                        segments(size, 2, element), strict=True)):
        children: list[list[int]] = [[] for _ in range(ranks)]
        for r, p in enumerate(parents):
            if p >= 0:
                children[p].append(r)
        root = parents.index(-1)
        height, depth = [0] * ranks, [0] * ranks
        for r in _top_down(root, children):
            depth[r] = depth[parents[r]] + 1 if r != root else 0
        for r in reversed(_top_down(root, children)):
            height[r] = max((height[c] + 1 for c in children[r]), default=0)
        for c, (off, ln) in enumerate(pieces(offset, length, chunk)):
            for r in range(ranks):
                if r != root:
                    jobs.append(((c + height[r], t), ("up", t, c, r),
                                 Move(r, parents[r], off, off, ln, True),
                                 [("up", t, c, k) for k in children[r]]))
                for k in children[r]:
                    deps: list[object] = ([("up", t, c, j) for j in children[r]] if r == root
                                          else [("down", t, c, r)])
                    jobs.append(((c + height[root] + depth[r], t), ("down", t, c, k),
                                 Move(r, k, off, off, ln, False), deps))
    packer = _Packer()
    for _, key, move, deps in sorted(jobs, key=lambda job: job[0]):
        packer.place(key, move, deps)
    return assemble("allreduce", "tree", ranks, size, size, packer.timed)


def _top_down(root: int, children: list[list[int]]) -> list[int]:
    order = [root]
    for r in order:
        order.extend(children[r])
    return order
