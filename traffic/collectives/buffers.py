"""What each rank starts with and must end with, and a reference run of a schedule on numpy.

Inputs are small integers ((index*7 + rank) % 16), so float32 sums are exact in any order.
Bytes that hold no input (another rank's all-gather segment, a receive area, a non-root's
broadcast buffer) start as POISON, a value no input or sum takes, so a result that was never
written cannot pass for one that was.
"""

from __future__ import annotations

import numpy as np

from traffic.collectives.base import (
    ELEMENT,
    Schedule,
    buffer_bytes,
    segments,
    validate_collective,
)

POISON = -1.0


def initial_buffer(rank: int, nbytes: int) -> np.ndarray:
    """Rank r's input pattern: small integers, so float32 sums over many ranks stay exact.
    Element i is (7i + r) % 16, which repeats every 16 elements: tiled, not computed."""
    return _input_part(rank, slice(0, nbytes // ELEMENT))


def _pattern(rank: int) -> np.ndarray:
    return ((np.arange(16) * 7 + rank) % 16).astype(np.float32)


def _tiled(pattern: np.ndarray, count: int) -> np.ndarray:
    return np.tile(pattern, -(-count // len(pattern)))[:count]


def _elements(offset: int, length: int) -> slice:
    return slice(offset // ELEMENT, (offset + length) // ELEMENT)


def initial(collective: str, ranks: int, size: int, rank: int, root: int = 0) -> np.ndarray:
    """Rank `rank`'s working buffer before the call (buffer_bytes // 4 float32 elements).

    allgather: only segment `rank` is input. alltoall and sendrecv: the send area [0, size) is
    input, the receive area poisoned, except that alltoall's own chunk is already copied into
    receive chunk `rank` (a local copy, no wire traffic). broadcast: only the root has input.
    """
    validate_collective(collective)
    buf = np.full(buffer_bytes(collective, ranks, size) // ELEMENT, POISON, dtype=np.float32)
    mine = initial_buffer(rank, size)
    if collective == "allgather":
        part = _elements(*segments(size, ranks)[rank])
        buf[part] = mine[part]
    elif collective == "broadcast":
        if rank == root:
            buf[:] = mine
    else:
        buf[: len(mine)] = mine
    if collective == "alltoall":
        offset, length = segments(size, ranks)[rank]
        buf[_elements(size + offset, length)] = mine[_elements(offset, length)]
    return buf


def expected(collective: str, ranks: int, size: int, rank: int,
             root: int = 0) -> tuple[slice, np.ndarray]:
    """The element slice of `rank`'s buffer that must hold the result, and its values.

    The slice is empty where the rank has no defined output (a non-root in reduce).
    """
    validate_collective(collective)
    count = size // ELEMENT
    whole = slice(0, count)
    if collective == "allreduce":
        return whole, sum_of_inputs(ranks, size)
    if collective == "reducescatter":
        part = _elements(*segments(size, ranks)[rank])
        return part, sum_of_inputs(ranks, size)[part]
    if collective == "allgather":
        parts = [_elements(*seg) for seg in segments(size, ranks)]
        return whole, np.concatenate([_input_part(j, parts[j]) for j in range(ranks)])
    if collective == "broadcast":
        return whole, initial_buffer(root, size)
    if collective == "reduce":
        if rank != root:
            return slice(0, 0), np.zeros(0, dtype=np.float32)
        return whole, sum_of_inputs(ranks, size)
    receive = slice(count, 2 * count)
    if collective == "alltoall":
        mine = _elements(*segments(size, ranks)[rank])
        return receive, np.concatenate([_input_part(j, mine) for j in range(ranks)])
    return receive, initial_buffer((rank - 1) % ranks, size)  # sendrecv


def sum_of_inputs(ranks: int, nbytes: int) -> np.ndarray:
    """Every rank's input added up, element by element, without building them: as r runs
    over the ranks, (7i + r) % 16 runs through the 16 residues (summing to 120) ranks // 16
    times, then through ranks % 16 more. Each agent checks its result against this, so it
    must not cost O(ranks) buffers at hundreds of ranks."""
    total = np.full(16, ranks // 16 * 120, dtype=np.float32)
    for k in range(ranks % 16):
        total += _pattern(k)
    return _tiled(total, nbytes // ELEMENT)


def _input_part(rank: int, part: slice) -> np.ndarray:
    """Elements `part` of rank `rank`'s input (initial_buffer), computed alone."""
    return _tiled(np.roll(_pattern(rank), -(part.start % 16)), part.stop - part.start)


def simulate(schedule: Schedule) -> list[np.ndarray]:
    """Run a schedule on numpy buffers in global step order.

    Every send of a step reads the buffer as it was when the step began. For a schedule that
    passes validate_schedule, this is what every asynchronous run of the agents produces.
    """
    s = schedule
    bufs = [initial(s.collective, s.ranks, s.size, r, s.root) for r in range(s.ranks)]
    if bufs[0].nbytes != s.buffer:
        raise ValueError(f"{s.collective} needs a {bufs[0].nbytes}-byte buffer, "
                         f"the schedule says {s.buffer}")
    for step in s.steps:
        payloads = [bufs[m.src][_elements(m.src_offset, m.length)].copy() for m in step]
        for m, data in zip(step, payloads, strict=True):
            view = bufs[m.dst][_elements(m.dst_offset, m.length)]
            if m.reduce:
                view += data
            else:
                view[:] = data
    return bufs
