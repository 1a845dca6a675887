"""What each rank starts with and must end with, and a reference run of a schedule on numpy.

Buffers hold the call's datatype (Schedule.dtype, nccl-tests' names); offsets stay in bytes.
Inputs are small integers, so every result is exact in every datatype and in any order of
reduction: element i of rank r is v = (7i + r) % 16, except that prod takes 2 where v is 0 and
1 elsewhere (products are powers of two), and half's sum and avg take v % 2 past 136 ranks
(half holds integers exactly up to 2048). Integer types wrap as the hardware's do, which is
exact too (arithmetic modulo 2^bits commutes). avg is ncclAvg: the sum, divided by the ranks
once at the end (truncating for integers, as C does).
Bytes that hold no input (another rank's all-gather segment, a receive area, a non-root's
broadcast buffer) start as POISON (the type's largest value for unsigned ones), which no input
takes, so a result that was never written cannot pass for one that was.
"""

from __future__ import annotations

import math

import numpy as np

from traffic.collectives.base import (
    DTYPES,
    REDUCING,
    Schedule,
    buffer_bytes,
    element_size,
    segments,
    validate_collective,
)

POISON = -1.0

#: What a reducing move does to the receiver's elements, per op (avg adds, then finish()).
#: A collective without an op ("none") has no reducing moves; one there would add.
UFUNCS = {"sum": np.add, "avg": np.add, "prod": np.multiply, "min": np.minimum,
          "max": np.maximum, "none": np.add}


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype of a datatype named as nccl-tests does."""
    return np.dtype(DTYPES[dtype])


def poison(dtype: str = "float") -> np.generic:
    """The value unwritten bytes hold: -1, or the largest value of an unsigned type."""
    kind = numpy_dtype(dtype)
    return kind.type(np.iinfo(kind).max if kind.kind == "u" else POISON)


def identity(op: str, dtype: str = "float") -> np.generic:
    """What reducing with `op` leaves unchanged (a switch's buffer before it reduces); a
    collective without an op starts poisoned, as bytes that hold no input do."""
    kind = numpy_dtype(dtype)
    if op in ("min", "max"):
        info = np.iinfo(kind) if kind.kind in "iu" else np.finfo(kind)
        return kind.type(info.max if op == "min" else info.min)
    return {"sum": kind.type(0), "avg": kind.type(0), "prod": kind.type(1)}.get(op, poison(dtype))


def initial_buffer(rank: int, nbytes: int, dtype: str = "float", op: str = "none",
                   ranks: int = 0) -> np.ndarray:
    """Rank r's input: nbytes of the datatype, the pattern the op takes (module docstring).
    It repeats every 16 elements: tiled, not computed."""
    return _input_part(rank, slice(0, nbytes // element_size(dtype)), dtype, op, ranks)


def _values(op: str, dtype: str, ranks: int) -> list[int]:
    """Input value per residue v = (7i + r) % 16 for this op and datatype."""
    if op == "prod":
        return [2 if v == 0 else 1 for v in range(16)]
    if op in ("sum", "avg") and dtype == "half" and 15 * ranks > 2048:
        return [v % 2 for v in range(16)]
    return list(range(16))


def _pattern(rank: int, dtype: str = "float", op: str = "none", ranks: int = 0) -> np.ndarray:
    values = _values(op, dtype, ranks)
    return np.array([values[(7 * j + rank) % 16] for j in range(16)], dtype=numpy_dtype(dtype))


def _tiled(pattern: np.ndarray, count: int) -> np.ndarray:
    return np.tile(pattern, -(-count // len(pattern)))[:count]


def _elements(offset: int, length: int, element: int) -> slice:
    return slice(offset // element, (offset + length) // element)


def initial(collective: str, ranks: int, size: int, rank: int, root: int = 0,
            dtype: str = "float", op: str = "sum") -> np.ndarray:
    """Rank `rank`'s working buffer before the call (buffer_bytes of the datatype).

    allgather: only segment `rank` is input. alltoall and sendrecv: the send area [0, size) is
    input, the receive area poisoned, except that alltoall's own chunk is already copied into
    receive chunk `rank` (a local copy, no wire traffic). broadcast and send: only the root
    (a send's sender, local rank 0) has input. A participant past the ranks is a switch
    (NVLS): it has no input, and starts with the op's identity, which what it reduces leaves
    unchanged.
    """
    validate_collective(collective)
    op = op if collective in REDUCING else "none"
    e = element_size(dtype)
    if rank >= ranks:
        return np.full(buffer_bytes(collective, ranks, size) // e, identity(op, dtype),
                       dtype=numpy_dtype(dtype))
    buf = np.full(buffer_bytes(collective, ranks, size) // e, poison(dtype),
                  dtype=numpy_dtype(dtype))
    mine = initial_buffer(rank, size, dtype, op, ranks)
    if collective == "allgather":
        part = _elements(*segments(size, ranks, e)[rank], e)
        buf[part] = mine[part]
    elif collective in ("broadcast", "send"):  # a send's input is its sender's (local 0)
        if rank == root:
            buf[:] = mine
    else:
        buf[: len(mine)] = mine
    if collective == "alltoall":
        offset, length = segments(size, ranks, e)[rank]
        buf[_elements(size + offset, length, e)] = mine[_elements(offset, length, e)]
    return buf


def result_region(collective: str, ranks: int, size: int, rank: int, root: int = 0,
                  dtype: str = "float") -> slice:
    """The element slice of `rank`'s buffer that holds its result (empty: none, as for a
    non-root in reduce)."""
    validate_collective(collective)
    e = element_size(dtype)
    count = size // e
    if rank >= ranks:  # a switch (NVLS) holds no result
        return slice(0, 0)
    if collective == "reducescatter":
        return _elements(*segments(size, ranks, e)[rank], e)
    if (collective == "reduce" and rank != root) or (collective == "send" and rank == root):
        return slice(0, 0)  # a send's sender (local 0, the schedule's root) ends with nothing new
    if collective in ("alltoall", "sendrecv"):
        return slice(count, 2 * count)
    return slice(0, count)


def expected(collective: str, ranks: int, size: int, rank: int, root: int = 0,
             dtype: str = "float", op: str = "sum") -> tuple[slice, np.ndarray]:
    """The element slice of `rank`'s buffer that must hold the result, and its values.

    The slice is empty where the rank has no defined output (a non-root in reduce).
    """
    region = result_region(collective, ranks, size, rank, root, dtype)
    e = element_size(dtype)
    if region.stop == region.start:
        return region, np.zeros(0, dtype=numpy_dtype(dtype))
    if collective in REDUCING:
        return region, reduced(ranks, size, dtype, op)[region]
    if collective == "allgather":
        parts = [_elements(*seg, e) for seg in segments(size, ranks, e)]
        return region, np.concatenate([_input_part(j, parts[j], dtype) for j in range(ranks)])
    if collective in ("broadcast", "send"):  # a send's receiver gets local rank 0's input
        return region, initial_buffer(root, size, dtype)
    if collective == "alltoall":
        mine = _elements(*segments(size, ranks, e)[rank], e)
        return region, np.concatenate([_input_part(j, mine, dtype) for j in range(ranks)])
    return region, initial_buffer((rank - 1) % ranks, size, dtype)  # sendrecv


def reduced(ranks: int, nbytes: int, dtype: str = "float", op: str = "sum") -> np.ndarray:
    """Every rank's input reduced by `op`, element by element, in the datatype, without
    building the inputs: column j of the 16-element pattern takes, as r runs over the ranks,
    the residues (7j + r) % 16, all 16 of them ranks // 16 times, then ranks % 16 more. The
    reduction is computed exactly (Python integers), then put in the datatype as its
    arithmetic would leave it (integers wrap). Each agent checks its result against this, so
    it must not cost O(ranks) buffers at hundreds of ranks."""
    values = _values(op, dtype, ranks)
    cycles, rest = divmod(ranks, 16)
    totals = []
    for j in range(16):
        tail = [values[(7 * j + r) % 16] for r in range(rest)]
        if op in ("sum", "avg"):
            totals.append(cycles * sum(values) + sum(tail))
        elif op == "prod":
            totals.append(math.prod(values) ** cycles * math.prod(tail))
        else:
            pick = max if op == "max" else min
            totals.append(pick(values * min(cycles, 1) + tail))
    kind = numpy_dtype(dtype)
    if kind.kind in "iu":
        column = np.array([t % 2**64 for t in totals], dtype=np.uint64).astype(kind)
    else:
        with np.errstate(over="ignore"):
            column = np.array([float(min(t, 2**1000)) for t in totals]).astype(kind)
    finish_values(column, op, ranks)
    return _tiled(column, nbytes // kind.itemsize)


def sum_of_inputs(ranks: int, nbytes: int) -> np.ndarray:
    """Every rank's float input added up (reduced() with float and sum)."""
    return reduced(ranks, nbytes)


def finish_values(values: np.ndarray, op: str, ranks: int) -> None:
    """What a reducing call does to its result after its last step, in place: avg divides
    the sum by the ranks (integers truncate toward zero, as C and NCCL do); the other ops
    nothing."""
    if op != "avg":
        return
    if values.dtype.kind == "f":
        np.divide(values, values.dtype.type(ranks), out=values)
    elif values.dtype.kind == "u":
        np.floor_divide(values, values.dtype.type(ranks), out=values)
    else:
        wide = values.astype(np.int64)
        values[:] = (np.sign(wide) * (np.abs(wide) // ranks)).astype(values.dtype)


def finish(buffer: np.ndarray, collective: str, ranks: int, size: int, rank: int, root: int,
           dtype: str, op: str) -> None:
    """Finish a call on `rank`'s buffer (finish_values on its result region)."""
    if collective in REDUCING and op == "avg":
        finish_values(buffer[result_region(collective, ranks, size, rank, root, dtype)], op,
                      ranks)


def _input_part(rank: int, part: slice, dtype: str = "float", op: str = "none",
                ranks: int = 0) -> np.ndarray:
    """Elements `part` of rank `rank`'s input (initial_buffer), computed alone."""
    return _tiled(np.roll(_pattern(rank, dtype, op, ranks), -(part.start % 16)),
                  part.stop - part.start)


def simulate(schedule: Schedule) -> list[np.ndarray]:
    """Run a schedule on numpy buffers in global step order.

    Every send of a step reads the buffer as it was when the step began; reducing moves apply
    the schedule's op in its datatype, and each rank finishes as an agent does. For a
    schedule that passes validate_schedule, this is what every asynchronous run of the agents
    produces. A switch's buffer (NVLS) is last, after the ranks'.
    """
    s = schedule
    e = s.element
    bufs = [initial(s.collective, s.ranks, s.size, r, s.root, s.dtype, s.op)
            for r in range(s.participants)]
    if bufs[0].nbytes != s.buffer:
        raise ValueError(f"{s.collective} needs a {bufs[0].nbytes}-byte buffer, "
                         f"the schedule says {s.buffer}")
    for step in s.steps:
        payloads = [bufs[m.src][_elements(m.src_offset, m.length, e)].copy() for m in step]
        for m, data in zip(step, payloads, strict=True):
            view = bufs[m.dst][_elements(m.dst_offset, m.length, e)]
            if m.reduce:
                UFUNCS[s.op](view, data, out=view)
            else:
                view[:] = data
    for r, buf in enumerate(bufs):
        finish(buf, s.collective, s.ranks, s.size, r, s.root, s.dtype, s.op)
    return bufs
