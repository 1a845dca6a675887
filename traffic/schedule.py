"""Collective schedules as plain data: who sends which bytes to whom at which step.

A schedule is global: a list of steps, each a set of moves (src rank -> dst rank, a byte range
of the sender's buffer landing at a byte range of the receiver's, added or copied). Every rank
has one working buffer of `Schedule.buffer` bytes; a rank starts the sends of step s only when
everything it receives in steps before s has arrived, the sends of a step read the buffer as it
was when the step began, and receives are applied as they arrive. That is exactly the data
dependency of the classic algorithms (Thakur et al. 2005; NCCL).

Being pure data, a schedule can be checked without a network: `validate_schedule` validates it
(including freedom from races between unsynchronised ranks), `simulate` runs it on numpy
buffers, and `link_loads` (in emulator.models.accounting) predicts the bytes every link carries.
The algorithms live in traffic.collectives, one module per family; this module is the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

from foundation.errors import NetwallError
from traffic.collectives.base import (
    COLLECTIVES,
    DTYPE_ALIASES,
    DTYPES,
    ELEMENT,
    OPS,
    PER_RANK,
    POINT_TO_POINT,
    REDUCING,
    ROOTED,
    WIDEST,
    Move,
    Schedule,
    buffer_bytes,
    datatype,
    default_chunk,
    element_size,
    pieces,
    reduction,
    segments,
    validate_collective,
    validate_size,
)
from traffic.collectives.buffers import (
    POISON,
    UFUNCS,
    expected,
    finish,
    initial,
    initial_buffer,
    numpy_dtype,
    reduced,
    result_region,
    simulate,
)
from traffic.collectives.halving import halving_doubling_allreduce
from traffic.collectives.hierarchical import hierarchical_allreduce
from traffic.collectives.nvls import default_chunk as nvls_chunk
from traffic.collectives.nvls import nvls_allgather, nvls_allreduce, nvls_reducescatter
from traffic.collectives.pairwise import direct_alltoall, direct_send, direct_sendrecv
from traffic.collectives.ring import ring_allgather, ring_allreduce, ring_reducescatter
from traffic.collectives.rooted import ring_broadcast, ring_reduce, tree_broadcast, tree_reduce
from traffic.collectives.tree import btree_parents, dtree_parents, tree_allreduce
from traffic.collectives.validate import validate_schedule

__all__ = [
    "ALGORITHMS", "COLLECTIVES", "DTYPES", "DTYPE_ALIASES", "ELEMENT", "OPS", "PER_RANK",
    "POINT_TO_POINT", "POISON",
    "REDUCING", "UFUNCS", "WIDEST", "Move", "Schedule", "btree_parents", "buffer_bytes", "build",
    "datatype", "default_chunk", "dtree_parents", "element_size", "expected", "finish", "initial",
    "initial_buffer", "numpy_dtype", "pieces", "reduced", "reduction", "result_region",
    "ring_allreduce", "segments", "simulate", "validate_schedule", "validate_size",
]


class _Options(NamedTuple):
    chunk: int  # resolved: never None
    root: int
    groups: Sequence[Sequence[int]] | None
    element: int  # bytes per element of the datatype: segments are cut at multiples of it


_BUILDERS: dict[str, dict[str, Callable[[int, int, _Options], Schedule]]] = {
    "allreduce": {
        "ring": lambda n, size, o: ring_allreduce(n, size, element=o.element),
        "tree": lambda n, size, o: tree_allreduce(n, size, o.chunk, o.element),
        "halving-doubling": lambda n, size, o: halving_doubling_allreduce(n, size, o.element),
        "hierarchical": lambda n, size, o: hierarchical_allreduce(n, size, o.groups or (),
                                                                  o.element),
        "nvls": lambda n, size, o: nvls_allreduce(n, size, o.chunk, o.element),
    },
    "reducescatter": {"ring": lambda n, size, o: ring_reducescatter(n, size, o.element),
                      "nvls": lambda n, size, o: nvls_reducescatter(n, size, o.element)},
    "allgather": {"ring": lambda n, size, o: ring_allgather(n, size, o.element),
                  "nvls": lambda n, size, o: nvls_allgather(n, size, o.element)},
    "broadcast": {
        "ring": lambda n, size, o: ring_broadcast(n, size, o.chunk, o.root),
        "tree": lambda n, size, o: tree_broadcast(n, size, o.chunk, o.root),
    },
    "reduce": {
        "ring": lambda n, size, o: ring_reduce(n, size, o.chunk, o.root),
        "tree": lambda n, size, o: tree_reduce(n, size, o.chunk, o.root),
    },
    "alltoall": {"direct": lambda n, size, o: direct_alltoall(n, size)},
    "sendrecv": {"direct": lambda n, size, o: direct_sendrecv(n, size)},
    "send": {"direct": lambda n, size, o: direct_send(n, size)},
}

#: collective -> its algorithms, the first being the default
ALGORITHMS: dict[str, tuple[str, ...]] = {c: tuple(_BUILDERS[c]) for c in COLLECTIVES}


def default_algorithm(collective: str) -> str:
    """The algorithm a collective runs when none is named (build() rejects an unknown name)."""
    return ALGORITHMS.get(collective, ("ring",))[0]


def build(collective: str, algorithm: str, ranks: int, size: int, *, root: int = 0,
          chunk: int | None = None, groups: Sequence[Sequence[int]] | None = None,
          dtype: str = "float", op: str = "sum") -> Schedule:
    """The schedule for one collective call, with the user's mistakes caught in one line.

    `root` matters for broadcast and reduce only (other schedules record root 0). `chunk` is
    the pipeline chunk in bytes for tree and NVLS all-reduce and for broadcast and reduce
    (None: an eighth of the buffer, a 32nd for NVLS); the other algorithms ignore it. NVLS
    schedules have the switch as one more participant (Schedule.switches), index `ranks`.
    `groups` (equal-sized rank groups,
    e.g. racks) is needed by hierarchical all-reduce and ignored by everything else.
    `dtype` (nccl-tests' names, DTYPES) sets the element every offset is a multiple of; `op`
    (OPS) is what the reducing collectives' moves do; the others record "none".
    """
    validate_collective(collective)
    if algorithm not in _BUILDERS[collective]:
        raise NetwallError(f"no schedule for {collective}/{algorithm} ({collective} has: "
                           f"{', '.join(ALGORITHMS[collective])})")
    if not isinstance(ranks, int) or ranks < 2:
        raise NetwallError(f"a collective needs at least 2 ranks, got {ranks}")
    if not isinstance(root, int) or not 0 <= root < ranks:
        raise NetwallError(f"root must be a rank in [0, {ranks}), got {root}")
    dtype = datatype(dtype)
    op = reduction(op) if collective in REDUCING else "none"
    element = element_size(dtype)
    validate_size(collective, ranks, size, dtype)
    if chunk is None:
        chunk = (nvls_chunk if algorithm == "nvls" else default_chunk)(size, element)
    elif not isinstance(chunk, int) or chunk <= 0 or chunk % element:
        raise NetwallError(f"chunk must be a positive multiple of {element} bytes "
                           f"({dtype}), got {chunk}")
    options = _Options(chunk, root if collective in ROOTED else 0, groups, element)
    return dataclasses.replace(_BUILDERS[collective][algorithm](ranks, size, options),
                               dtype=dtype, op=op)
