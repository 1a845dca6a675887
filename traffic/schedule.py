"""Collective schedules as plain data: who sends which bytes to whom at which step.

A schedule is global: a list of steps, each a set of moves (src rank -> dst rank, a byte range
of the sender's buffer landing at a byte range of the receiver's, added or copied). A rank
starts the sends of step s only when everything it receives in steps before s has arrived,
which is exactly the data dependency of the classic algorithms (Thakur et al. 2005; NCCL).

Being pure data, a schedule can be checked without a network: `simulate` runs it on numpy
buffers, and `link_loads` (in emulator.accounting) predicts the bytes every link carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emulator.errors import NetwallError

ELEMENT = 4  # bytes per element: float32, the datatype netwall reduces


@dataclass(frozen=True)
class Move:
    """One transfer inside a step."""

    src: int
    dst: int
    src_offset: int  # bytes into the sender's buffer
    dst_offset: int  # bytes into the receiver's buffer
    length: int  # bytes
    reduce: bool  # add into the receiver's buffer (True) or overwrite it (False)


@dataclass(frozen=True)
class Schedule:
    collective: str
    algorithm: str
    ranks: int
    size: int  # bytes of the user buffer, as nccl-tests' size column
    steps: tuple[tuple[Move, ...], ...]

    def sends(self, rank: int, step: int) -> tuple[Move, ...]:
        return tuple(m for m in self.steps[step] if m.src == rank)

    def recvs(self, rank: int, step: int) -> tuple[Move, ...]:
        return tuple(m for m in self.steps[step] if m.dst == rank)

    def moves_of(self, rank: int) -> list[tuple[int, Move]]:
        """Every (step, move) this rank sends or receives, in step order."""
        return [(s, m) for s, step in enumerate(self.steps) for m in step if rank in (m.src, m.dst)]


def segments(size: int, parts: int) -> list[tuple[int, int]]:
    """Split `size` bytes into `parts` element-aligned (offset, length) segments, near-even."""
    count = size // ELEMENT
    bounds = [i * count // parts * ELEMENT for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(parts)]


def ring_allreduce(ranks: int, size: int) -> Schedule:
    """Ring all-reduce: n-1 reduce-scatter steps, then n-1 all-gather steps.

    In reduce-scatter step k rank r sends segment (r-k) mod n to r+1 and adds segment
    (r-k-1) mod n from r-1; after n-1 steps rank r holds segment (r+1) mod n fully reduced,
    which the all-gather steps pass round the ring.
    """
    segs = segments(size, ranks)
    steps: list[tuple[Move, ...]] = []
    for k in range(ranks - 1):
        steps.append(_ring_step(ranks, segs, lambda r, k=k: (r - k) % ranks, reduce=True))
    for k in range(ranks - 1):
        steps.append(_ring_step(ranks, segs, lambda r, k=k: (r + 1 - k) % ranks, reduce=False))
    return Schedule("allreduce", "ring", ranks, size, tuple(steps))


def _ring_step(
    ranks: int, segs: list[tuple[int, int]], segment_of: Callable[[int], int], reduce: bool
) -> tuple[Move, ...]:
    moves = []
    for r in range(ranks):
        offset, length = segs[segment_of(r)]
        if length:
            moves.append(Move(r, (r + 1) % ranks, offset, offset, length, reduce))
    return tuple(moves)


#: (collective, algorithm) -> schedule builder(ranks, size)
BUILDERS: dict[tuple[str, str], Callable[[int, int], Schedule]] = {
    ("allreduce", "ring"): ring_allreduce,
}

def build(collective: str, algorithm: str, ranks: int, size: int) -> Schedule:
    """The schedule for one collective call, with the user's mistakes caught in one line."""
    if (collective, algorithm) not in BUILDERS:
        known = ", ".join(f"{c}/{a}" for c, a in BUILDERS)
        raise NetwallError(f"no schedule for {collective}/{algorithm} (available: {known})")
    if ranks < 2:
        raise NetwallError(f"a collective needs at least 2 ranks, got {ranks}")
    check_size(size)
    return BUILDERS[collective, algorithm](ranks, size)


def check_size(size: int) -> None:
    """Sizes are whole float32 buffers, as in nccl-tests (count = bytes / 4)."""
    if size <= 0:
        raise NetwallError(f"size must be positive, got {size} bytes")
    if size % ELEMENT:
        raise NetwallError(f"size must be a multiple of {ELEMENT} bytes (float32), got {size}")


def initial_buffer(rank: int, size: int):
    """Rank r's input: small integers, so float32 sums over up to 2^20 ranks stay exact."""
    import numpy as np

    index = np.arange(size // ELEMENT, dtype=np.int64)
    return ((index * 7 + rank) % 16).astype(np.float32)


def expected_result(collective: str, ranks: int, size: int, rank: int):
    """What `rank` must hold after the collective (all-reduce: the element-wise sum)."""
    import numpy as np

    if collective != "allreduce":
        raise NetwallError(f"no data check for {collective}")
    total = np.zeros(size // ELEMENT, dtype=np.float32)
    for r in range(ranks):
        total += initial_buffer(r, size)
    return total


def simulate(schedule: Schedule) -> list:
    """Run a schedule on numpy buffers, step by step, as the agents do on the wire."""
    bufs = [initial_buffer(r, schedule.size) for r in range(schedule.ranks)]
    for step in schedule.steps:
        # Every send of a step reads the buffer as it was when the step began.
        payloads = [bufs[m.src][m.src_offset // ELEMENT :][: m.length // ELEMENT].copy()
                    for m in step]
        for m, data in zip(step, payloads, strict=True):
            view = bufs[m.dst][m.dst_offset // ELEMENT :][: m.length // ELEMENT]
            if m.reduce:
                view += data
            else:
                view[:] = data
    return bufs
