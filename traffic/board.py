"""Where each agent is, in memory the controller reads: the progress board of the live view.

The agents report to the launcher only when a program ends, so while one runs the
controller cannot ask them which call and step they are in, or whom they resent frames to.
The board answers without a message: one shared memory file (memfd) the controller makes
before the agents exist and hands to their fork server (traffic.forkserver), so every agent
maps the same pages, and the controller (or a host's worker, over several hosts) reads
them whenever it likes. An agent writes its own row only, a few floats where its state
changes (a call entering a step, a frame resent), never per frame sent; the controller's
reads are copies, taken without a lock: a row read half-written is one step stale, never
wrong for longer.

A rank's row: SLOTS pairs (call id + 1, step) of the calls it has begun and not finished
(0: a free pair), then, per peer rank, the data bytes it has resent to that peer since the
emulation began (its loss repairs). Call ids grow from program to program (emulator.batches),
so a reader keeps the pairs of the program it watches by their ids: a rank that has not yet
begun it still shows the last one's, which are no one's now.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass

import numpy as np

#: Calls one rank is in at once that the board can show (streams that overlap); more are
#: left out of the view, never of the run.
SLOTS = 4
CALLS = 0  # the first pair's column
REPAIRS = CALLS + 2 * SLOTS  # the first peer's column


def columns(ranks: int) -> int:
    return REPAIRS + ranks


class Board:
    """The whole board: `ranks` rows, over a memfd (`fd`) this process made or inherited."""

    def __init__(self, ranks: int, fd: int | None = None) -> None:
        self.ranks = ranks
        size = 8 * ranks * columns(ranks)
        if fd is None:
            fd = os.memfd_create("netwall-board")  # the fork server gets it by pass_fds
            os.ftruncate(fd, size)
        self.fd = fd
        self._map = mmap.mmap(fd, size)
        self.rows = np.frombuffer(self._map, dtype=np.float64).reshape(ranks, columns(ranks))

    def row(self, rank: int) -> Row:
        """What agent `rank` writes to (traffic.machine.Machine's `board`)."""
        width = columns(self.ranks)
        return Row(memoryview(self._map).cast("d")[rank * width:(rank + 1) * width])

    def read(self) -> Reading:
        """A copy of every row now."""
        rows = self.rows.copy()
        return Reading(rows[:, CALLS:REPAIRS], rows[:, REPAIRS:])

    def close(self) -> None:
        """Close this process's handle (the agents keep their own); the pages go once no
        row of them is left (numpy's views keep the mapping alive until then)."""
        self.rows = self._map = None
        os.close(self.fd)


class Row:
    """One rank's row, as its agent's machine writes it: a memoryview of doubles, whose
    items cost a plain store each (numpy's scalar indexing costs ten times that)."""

    def __init__(self, row: memoryview) -> None:
        self.row = row

    def begin(self) -> None:
        """A program starts: no call begun yet."""
        for i in range(CALLS, REPAIRS):
            self.row[i] = 0.0

    def step(self, call: int, step: int, steps: int) -> None:
        """Call `call` entered `step` of its `steps` (== steps: it is finished). A new
        call's step is written before its id, so a reader never sees it at another's."""
        row = self.row
        key = call + 1.0
        free = -1
        for i in range(CALLS, REPAIRS, 2):
            if row[i] == key:
                if step >= steps:
                    row[i] = 0.0
                else:
                    row[i + 1] = step
                return
            if free < 0 and row[i] == 0.0:
                free = i
        if step < steps and free >= 0:
            row[free + 1] = step
            row[free] = key

    def repair(self, peer: int, nbytes: int) -> None:
        """`nbytes` of data resent to `peer`."""
        self.row[REPAIRS + peer] += nbytes


@dataclass(frozen=True)
class Reading:
    """The board at one instant: per rank its (call + 1, step) pairs, and the bytes it has
    resent to each peer."""

    pairs: np.ndarray
    repairs: np.ndarray

    def steps(self, calls: set[int] | frozenset[int]) -> dict[int, dict[int, int]]:
        """Per call id of `calls` (a program's), the step each rank in it is at."""
        out: dict[int, dict[int, int]] = {}
        for rank, call in zip(*np.nonzero(self.pairs[:, 0::2]), strict=True):
            key = int(self.pairs[rank, 2 * call]) - 1
            if key in calls:
                out.setdefault(key, {})[int(rank)] = int(self.pairs[rank, 2 * call + 1])
        return out

    def resent(self) -> dict[tuple[int, int], int]:
        """Bytes resent so far, by (sender rank, receiver rank), where any were."""
        return {(int(s), int(d)): int(self.repairs[s, d])
                for s, d in zip(*np.nonzero(self.repairs), strict=True)}
