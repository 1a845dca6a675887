"""The schedule model: global steps of moves between ranks' single working buffers.

Execution semantics (the agent implements exactly these): every rank has ONE buffer of
`Schedule.buffer` bytes; a rank starts the sends of step s only when everything it receives
in steps < s has arrived; the sends of a step read the buffer as it was when the step began;
receives are applied as they arrive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from foundation.errors import NetwallError

#: nccl-tests' datatype names (what `-d` takes and its type column prints) -> numpy dtype.
#: bfloat16 is missing: numpy has no bfloat16 of its own.
DTYPES: dict[str, str] = {
    "int8": "int8", "uint8": "uint8", "int32": "int32", "uint32": "uint32", "int64": "int64",
    "uint64": "uint64", "half": "float16", "float": "float32", "double": "float64",
}
#: Other names nccl-tests (or numpy) users write for them.
DTYPE_ALIASES: dict[str, str] = {
    "char": "int8", "int": "int32", "float16": "half", "float32": "float", "float64": "double",
}
#: nccl-tests' reduction operations (`-o`); avg is ncclAvg: the sum over ranks / ranks.
OPS: tuple[str, ...] = ("sum", "prod", "min", "max", "avg")
#: collectives that reduce (apply the op); the others move data and take any datatype.
REDUCING: tuple[str, ...] = ("allreduce", "reducescatter", "reduce")
ELEMENT = 4  # bytes per element of the default datatype, float (float32)
WIDEST = 8  # bytes of the widest element: frames carry whole elements of any datatype

COLLECTIVES: tuple[str, ...] = (
    "allreduce", "reducescatter", "allgather", "broadcast", "reduce", "alltoall", "sendrecv",
    "send",
)
#: collectives between exactly two ranks: local rank 0 sends, local rank 1 receives
POINT_TO_POINT: tuple[str, ...] = ("send",)
ROOTED: tuple[str, ...] = ("broadcast", "reduce")
#: collectives whose size must split into `ranks` equal whole-element parts
PER_RANK: tuple[str, ...] = ("reducescatter", "allgather", "alltoall")


@dataclass(frozen=True)
class Move:
    """One transfer inside a step."""

    src: int
    dst: int
    src_offset: int  # bytes into the sender's buffer
    dst_offset: int  # bytes into the receiver's buffer
    length: int  # bytes
    reduce: bool  # combine into the receiver's buffer with the op (True) or overwrite (False)


@dataclass(frozen=True)
class Schedule:
    """One collective call for `ranks` ranks: steps of moves, in the order ranks run them."""

    collective: str
    algorithm: str
    ranks: int
    size: int  # nccl-tests' size column, bytes
    buffer: int  # bytes of each rank's working buffer (>= size)
    steps: tuple[tuple[Move, ...], ...]
    root: int = 0  # meaningful for broadcast and reduce only (0 otherwise)
    dtype: str = "float"  # nccl-tests' name of the datatype (DTYPES); offsets are in bytes
    op: str = "sum"  # what a reducing move does (OPS); "none" for collectives without one
    # Switches that take part (NVLS, traffic.collectives.nvls): participants ranks ..
    # ranks + switches - 1 of the moves. A switch starts with the op's identity, reduces what
    # arrives and multicasts; it holds no result. `ranks` stays the GPUs (busbw's n).
    switches: int = 0

    @property
    def participants(self) -> int:
        """Ranks and switches: every index a move may name."""
        return self.ranks + self.switches

    @property
    def element(self) -> int:
        """Bytes per element: every offset and length is a multiple of it."""
        return element_size(self.dtype)

    def sends(self, rank: int, step: int) -> tuple[Move, ...]:
        return tuple(m for m in self.steps[step] if m.src == rank)

    def recvs(self, rank: int, step: int) -> tuple[Move, ...]:
        return tuple(m for m in self.steps[step] if m.dst == rank)

    def moves_of(self, rank: int) -> list[tuple[int, Move]]:
        """Every (step, move) this rank sends or receives, in step order."""
        return [(s, m) for s, step in enumerate(self.steps) for m in step if rank in (m.src, m.dst)]


def datatype(name: str) -> str:
    """nccl-tests' name of a datatype given by it or an alias, or a one-line NetwallError."""
    canonical = DTYPE_ALIASES.get(name, name)
    if canonical not in DTYPES:
        why = " (numpy has no bfloat16)" if name in ("bfloat16", "bf16") else ""
        raise NetwallError(f"no datatype {name!r}{why}; accepted: "
                           + ", ".join(f"{n}" + "".join(f"/{a}" for a, c in DTYPE_ALIASES.items()
                                                        if c == n) for n in DTYPES))
    return canonical


def element_size(dtype: str) -> int:
    """Bytes per element of a datatype (nccl-tests' name or an alias)."""
    return np.dtype(DTYPES[datatype(dtype)]).itemsize


def reduction(op: str) -> str:
    """A reduction operation's name, checked, or a one-line NetwallError."""
    if op not in OPS:
        raise NetwallError(f"no reduction op {op!r}; accepted: {', '.join(OPS)}")
    return op


def segments(size: int, parts: int, element: int = ELEMENT) -> list[tuple[int, int]]:
    """Split `size` bytes into `parts` element-aligned (offset, length) segments, near-even."""
    count = size // element
    bounds = [i * count // parts * element for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(parts)]


def pieces(offset: int, length: int, chunk: int) -> list[tuple[int, int]]:
    """Cut [offset, offset+length) into pipeline chunks of `chunk` bytes (the last may be short)."""
    return [(o, min(chunk, offset + length - o)) for o in range(offset, offset + length, chunk)]


def default_chunk(size: int, element: int = ELEMENT) -> int:
    """Pipeline chunk when none is given: an eighth of the buffer, at least one element."""
    return max(size // 8 // element * element, element)


def assemble(collective: str, algorithm: str, ranks: int, size: int, buffer: int,
             timed: Iterable[tuple[int, Move]], root: int = 0, switches: int = 0) -> Schedule:
    """A Schedule from (step, move) pairs: empty moves and then empty steps are dropped.

    Dropping an empty step keeps the order of the others, so no dependency changes.
    """
    by_step: dict[int, list[Move]] = defaultdict(list)
    for step, move in timed:
        if move.length > 0:
            by_step[step].append(move)
    steps = tuple(tuple(sorted(by_step[s], key=lambda m: (m.src, m.dst))) for s in sorted(by_step))
    return Schedule(collective, algorithm, ranks, size, buffer, steps, root, switches=switches)


def validate_collective(collective: str) -> None:
    if collective not in COLLECTIVES:
        raise NetwallError(
            f"no collective {collective!r} (available: {', '.join(COLLECTIVES)})")


def validate_size(collective: str, ranks: int, size: int, dtype: str = "float") -> None:
    """Sizes are whole buffers of the datatype, as in nccl-tests (count = bytes / element)."""
    validate_collective(collective)
    element = element_size(dtype)
    if size <= 0:
        raise NetwallError(f"size must be positive, got {size} bytes")
    if size % element:
        raise NetwallError(f"size must be a multiple of {element} bytes "
                           f"({datatype(dtype)}), got {size}")
    if collective in PER_RANK and size % (ranks * element):
        raise NetwallError(
            f"{collective} size must be a multiple of {ranks * element} bytes "
            f"({ranks} ranks x {element}-byte elements), got {size}")


def buffer_bytes(collective: str, ranks: int, size: int) -> int:
    """Bytes of each rank's working buffer: send and receive areas for alltoall and sendrecv."""
    validate_collective(collective)
    return 2 * size if collective in ("alltoall", "sendrecv") else size
