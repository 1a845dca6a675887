"""Compute gaps skipped: the agents of one host share one clock and jump it over the
compute gaps that no traffic overlaps.

A replay's calls wait for compute gaps (a training step's forward and backward time), and at
the program's dilation D a gap of 1 ms of GPU time is D ms of wall time in which the links
carry nothing. Each agent's clock is CLOCK_MONOTONIC plus an offset shared by every agent of
the emulation on this host: one anonymous MAP_SHARED page made by the fork server before it
forks (traffic.forkserver), so every agent inherits it, with one slot per rank (as many as
netwall allows) and a lock made beside it. A rank's slot says which program it is in and
whether it is busy or quiet until a time (traffic.machine.Machine.quiet_until: nothing of its
own in flight or to send, every running call waiting for frames nobody has sent yet); a
finished rank is quiet until forever.

When a rank turns quiet and every rank of the program is quiet, it moves the shared clock
forward to the earliest time any rank needs it, less GUARD_S, and wakes the others (SIGUSR1,
which reaches their wait through a wake-up pipe) so they read the new offset. Why that is
sound:
  - nothing is in flight: a sender is busy until every transfer it sent is acknowledged, and
    a receiver turns busy with the first datagram it reads, before it acknowledges anything;
  - nothing starts late: the jump stops GUARD_S short of the earliest gap end, and a rank
    that starts acting on its own turned so at or after its quiet time, which the jump never
    passes, so a jump never moves the clock past anything a rank was due to do; the clock
    never goes backwards;
  - every rank is counted: a slot counts only once its rank has joined this program (a jump
    waits for a rank still reading Go), and the slots of ranks on other hosts are never
    written here, so over several hosts nothing is ever skipped.
Every call's start and end are then what they would be without skipping, in the shared
(virtual) clock the agents report in; the launcher's spans, all read against the program's
common start, stay right, and each Report says how many wall seconds were skipped.

Faults strike on the launcher's wall clock (emulator.emulation.Injector), which does not
jump: a program with faults must not skip (its Go says so).
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import time
from collections.abc import Callable

import numpy as np

from topologies import MAX_GPUS

#: Virtual (= wall) seconds a jump stops short of the earliest gap end: the other ranks see
#: the jump within it (a signal and a wake-up: 0.1 to 0.3 ms on this busy 2-core host, read in
#: the agents' logs) and then wait for their own gap ends as they would have without it.
GUARD_S = 0.0005
#: How long a rank waits for the lock before it gives up the jump (a peer killed holding
#: it): the program then runs unskipped, never wrong.
LOCK_WAIT_S = 1.0
PROGRAM, BUSY, UNTIL, PID = range(4)  # the fields of a slot, float64 each
SLOT = 4


def jump_to(slots: np.ndarray, program: float, now: float, guard: float = GUARD_S) -> float | None:
    """Where the clock may jump to from `now`, given every rank's slot (rows of PROGRAM, BUSY,
    UNTIL, PID), or None: some rank has not joined `program` or is busy, every rank is done,
    or the earliest gap end is nearer than `guard`."""
    if not np.all(slots[:, PROGRAM] == program) or np.any(slots[:, BUSY]):
        return None
    target = float(slots[:, UNTIL].min()) - guard
    return target if math.isfinite(target) and target > now else None


class SharedClock:
    """The offset and the slots, shared by every agent forked after it was made."""

    def __init__(self, ranks: int = MAX_GPUS) -> None:
        # An anonymous mapping is MAP_SHARED by default: forked children write the same page.
        self._map = mmap.mmap(-1, 8 * (1 + SLOT * ranks))
        words = np.frombuffer(self._map, dtype=np.float64)
        self.offset = words[:1]  # wall seconds skipped since the emulation began
        self.slots = words[1:].reshape(ranks, SLOT)
        self.lock = multiprocessing.Lock()


class RankClock:
    """One rank's clock (the wall clock plus what was skipped) and its side of the shared
    clock: traffic.machine.Machine's `clock` and `rest`.

    The agent's hot path reads `now` only: the offset is read again when the rank joins a
    program, turns busy or quiet, or is woken by a jump, never per frame."""

    def __init__(self, shared: SharedClock | None, rank: int, ranks: int,
                 wall: Callable[[], float] = time.monotonic,
                 wake: Callable[[list[int]], None] = lambda pids: None,
                 pid: int | None = None) -> None:
        self.shared = shared
        self.rank, self.ranks = rank, ranks
        self.wall = wall
        self.wake = wake  # wakes the quiet ranks (their pids) after a jump
        self.pid = os.getpid() if pid is None else pid
        self.shift = 0.0  # this clock's lead over the wall clock: the seconds skipped
        self.base = 0.0  # the shared offset when the program began
        self.program = 0.0
        self.on = False

    def now(self) -> float:
        return self.wall() + self.shift

    @property
    def skipped_s(self) -> float:
        """Wall seconds skipped in this program so far, as this rank saw them."""
        return self.shift

    def begin(self, program: float, skip: bool) -> None:
        """Join program `program` (its common start), busy, its clock the wall clock again."""
        self.shift = 0.0
        self.program = program
        self.on = skip and self.shared is not None and self.rank < len(self.shared.slots)
        if self.on:
            with self._locked() as ok:
                if ok:
                    self.base = float(self.shared.offset[0])
                    self.shared.slots[self.rank] = (program, 1.0, 0.0, self.pid)
                else:
                    self.on = False

    def busy(self) -> None:
        if self.on:
            with self._locked() as ok:
                self.shared.slots[self.rank, BUSY] = 1.0  # without the lock too: never quiet
                self.shift = float(self.shared.offset[0]) - self.base  # while it sends
                self.on = ok

    def quiet(self, until: float) -> None:
        """Quiet until `until` (this clock); jump the clock if every rank is quiet."""
        if not self.on:
            return
        woken: list[int] = []
        with self._locked() as ok:
            if not ok:
                self.on = False  # it stays busy, as far as the others can tell
                return
            shared = self.shared
            shared.slots[self.rank, BUSY:PID] = (0.0, until)
            now = self.wall() + float(shared.offset[0]) - self.base
            slots = shared.slots[:self.ranks]
            target = jump_to(slots, self.program, now)
            if target is not None:
                shared.offset[0] += target - now
                woken = [int(pid) for rank, pid in enumerate(slots[:, PID]) if rank != self.rank]
            self.shift = float(shared.offset[0]) - self.base
        if woken:
            self.wake(woken)

    def refresh(self) -> None:
        """Read the shared offset again (woken by a jump)."""
        if self.on:
            with self._locked() as ok:
                if ok:
                    self.shift = float(self.shared.offset[0]) - self.base

    def _locked(self) -> _Held:
        return _Held(self.shared.lock)


class _Held:
    """The shared lock for a block, or (a peer died holding it) a False to give up on."""

    def __init__(self, lock) -> None:
        self.lock = lock
        self.held = False

    def __enter__(self) -> bool:
        self.held = self.lock.acquire(timeout=LOCK_WAIT_S)
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            self.lock.release()
