"""Validation of a schedule: its structure, and freedom from races when ranks run unsynchronised.

The agents keep no global clock: a rank may be several steps ahead of another, and a receive
is applied whenever it arrives. A schedule is race-free when every such run gives the result
of the global step order (what `simulate` computes). With "B(r, s)" for "rank r starts step s",
the only orderings guaranteed are B(r, s) before B(r, s+1), and, for a move q -> r in step t,
B(q, t) before its arrival before B(r, t+1). Two accesses to the same bytes of rank r race
unless these orderings fix their order:
- a receive of step t against a send of r in step s < t: the send must read first, which
  needs B(r, s) to precede B(q, t), q the sender;
- two receives of steps t1 < t2, one of them an overwrite: the first must land first, which
  needs B(r, t1+1) to precede B(q2, t2).
Reductions (sum, prod, min, max) commute, so two reducing receives never race (with exact
small-integer data, traffic.collectives.buffers), even in one step: an NVLS switch reduces
every rank's copy of the same bytes at once.
Precedence is tracked with vector clocks: clock[t][q][r] is the last step s of rank r with
B(r, s) before B(q, t).
"""

from __future__ import annotations

import numpy as np

from traffic.collectives.base import Schedule


def validate_schedule(schedule: Schedule) -> None:
    """Raise ValueError naming the first broken invariant; return None for a sound schedule."""
    s = schedule
    if s.ranks < 2 or s.buffer < s.size or not 0 <= s.root < s.ranks:
        raise ValueError(f"bad header: ranks={s.ranks} size={s.size} buffer={s.buffer} "
                         f"root={s.root}")
    for t, step in enumerate(s.steps):
        _check_step(s, t, step)
    _check_races(s)


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _check_step(s: Schedule, t: int, step: tuple) -> None:
    pairs: set[tuple[int, int]] = set()
    recv: dict[int, list[tuple[int, int]]] = {}
    adds: dict[int, list[tuple[int, int]]] = {}  # reducing receives, which may overlap
    send: dict[int, list[tuple[int, int]]] = {}
    for m in step:
        where = f"step {t}: {m}"
        if not (0 <= m.src < s.participants and 0 <= m.dst < s.participants):
            raise ValueError(f"{where}: rank out of range")
        if m.src == m.dst:
            raise ValueError(f"{where}: sends to itself")
        if (m.src, m.dst) in pairs:
            raise ValueError(f"{where}: second move between the same ranks in one step")
        pairs.add((m.src, m.dst))
        if m.length <= 0:
            raise ValueError(f"{where}: empty or negative length")
        if (m.src_offset | m.dst_offset | m.length) % s.element:
            raise ValueError(f"{where}: not aligned to {s.element}-byte elements")
        if min(m.src_offset, m.dst_offset) < 0 or max(m.src_offset, m.dst_offset) + m.length \
                > s.buffer:
            raise ValueError(f"{where}: outside the {s.buffer}-byte buffer")
        into = (m.dst_offset, m.dst_offset + m.length)
        out = (m.src_offset, m.src_offset + m.length)
        others = recv.get(m.dst, []) + send.get(m.dst, []) + \
            ([] if m.reduce else adds.get(m.dst, []))
        if any(_overlap(into, r) for r in others):
            raise ValueError(f"{where}: receive overlaps another access of rank {m.dst}")
        if any(_overlap(out, r) for r in recv.get(m.src, []) + adds.get(m.src, [])):
            raise ValueError(f"{where}: send overlaps a receive of rank {m.src}")
        (adds if m.reduce else recv).setdefault(m.dst, []).append(into)
        send.setdefault(m.src, []).append(out)


def _clocks(s: Schedule) -> np.ndarray:
    n = s.participants
    clock = np.full((len(s.steps) + 1, n, n), -1, dtype=np.int64)
    clock[0][np.arange(n), np.arange(n)] = 0
    for t, step in enumerate(s.steps):
        clock[t + 1] = clock[t]
        for m in step:
            np.maximum(clock[t + 1][m.dst], clock[t][m.src], out=clock[t + 1][m.dst])
        clock[t + 1][np.arange(n), np.arange(n)] = t + 1
    return clock


def _check_races(s: Schedule) -> None:
    clock = _clocks(s)
    for rank in range(s.participants):
        rows = [(t, m) for t, step in enumerate(s.steps) for m in step if m.dst == rank]
        outs = [(t, m) for t, step in enumerate(s.steps) for m in step if m.src == rank]
        if not rows:
            continue
        rt = np.array([t for t, _ in rows])
        lo = np.array([m.dst_offset for _, m in rows])
        hi = lo + np.array([m.length for _, m in rows])
        seen = np.array([clock[t][m.src][rank] for t, m in rows])  # last step of `rank` before
        add = np.array([m.reduce for _, m in rows])
        if outs:
            st = np.array([t for t, _ in outs])
            slo = np.array([m.src_offset for _, m in outs])
            shi = slo + np.array([m.length for _, m in outs])
            bad = ((lo[:, None] < shi) & (slo < hi[:, None]) & (st < rt[:, None])
                   & (seen[:, None] < st))
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(f"race at rank {rank}: step {rt[i]} receive {rows[i][1]} may "
                                 f"land before its send of step {st[j]} reads the bytes")
        bad = ((lo[:, None] < hi) & (lo < hi[:, None]) & (rt[:, None] < rt)
               & ~(add[:, None] & add) & (seen < rt[:, None] + 1))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(f"race at rank {rank}: step {rt[j]} receive {rows[j][1]} may land "
                             f"before step {rt[i]} receive {rows[i][1]}")
