"""From an NCCL log's communicators to trace calls: one call per collective (deduplicated
across ranks), Send/Recv paired as NCCL pairs them, and a stream label per CUDA stream of
each process. traffic.nccl_log reads the lines into these records (a rank's calls on one
communicator) and finds the communicators; this turns them into calls and says what the lines
leave out. Pure.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field, replace

from traffic.collectives.base import ROOTED
from traffic.trace import Call

# ncclDataType_t -> bytes per element (nccl.h: int8, uint8, int32, uint32, int64, uint64,
# float16, float32, float64, bfloat16; 2.24+ adds float8 e4m3 and e5m2).
DTYPE_SIZE = {0: 1, 1: 1, 2: 4, 3: 4, 4: 8, 5: 8, 6: 2, 7: 4, 8: 8, 9: 2, 10: 1, 11: 1}

# NCCL's opName -> netwall collective. "Bcast" is NCCL 2.3's name for ncclBcast; NCCL 2.28
# prints "AlltoAll" for its native ncclAlltoAll, RCCL/MSCCL "AllToAll".
COLLECTIVE_NAMES = {
    "AllReduce": "allreduce", "ReduceScatter": "reducescatter", "AllGather": "allgather",
    "Broadcast": "broadcast", "Bcast": "broadcast", "Reduce": "reduce",
    "AlltoAll": "alltoall", "AllToAll": "alltoall",
}


@dataclass(slots=True)
class Op:
    """One logged call on one rank (slots: a log holds millions)."""

    name: str
    opcount: int
    index: int  # among this instance's lines with the same opCount and kind
    size: int  # bytes: nccl-tests' size of a collective, one message of a Send/Recv
    dtype: int
    root: int  # root, or the peer of Send/Recv
    stream: str
    line: int  # line number, for ordering


@dataclass(slots=True)
class Instance:
    """One rank's handle of one communicator: (host, pid, comm pointer) from the line that
    created it (or its INIT line) until the pointer is initialised again."""

    device: tuple[str, str, str]  # (host, pid, cuda device): one GPU
    nranks: int
    line: int
    rank: int | None = None
    commid: str | None = None
    colls: dict[tuple[int, int], Op] = field(default_factory=dict)
    p2p: dict[int, list[Op]] = field(default_factory=dict)
    calls: int = 0  # lines kept


@dataclass(slots=True)
class Comm:
    nranks: int
    serial: int  # creation order
    members: list[Instance] = field(default_factory=list)
    ranks: set[int] = field(default_factory=set)  # the members' ranks, where known
    commid: str | None = None
    sig: dict = field(default_factory=dict)  # (opcount, index) -> (name, size, dtype, root)
    p2p: set = field(default_factory=set)  # opcounts holding Send/Recv
    fingerprint: int = 0  # of sig, kept as calls are added (traffic.nccl_log groups by it)


def representative(comm: Comm) -> Instance:
    """The communicator's lowest known rank (else its first instance): whose view of a call
    counts first."""
    ranked = [m for m in comm.members if m.rank is not None]
    return min(ranked, key=lambda m: m.rank) if ranked else comm.members[0]


@dataclass
class Entry:
    """One imported call before numbering: its order in its communicator, its first line,
    the call (stream not yet labelled) and the (GPU, CUDA stream) of every rank that logged
    it."""

    key: tuple[int, int]
    line: int
    call: Call
    streams: set[tuple] = field(default_factory=set)


def missing(comm: Comm, cname: str) -> list[str]:
    """Notes on what a communicator's lines leave out: ranks that logged nothing, and calls
    some of the ranks that did log left out (an excerpt, or a log cut short)."""
    notes = []
    if len(comm.members) < comm.nranks:
        known = {m.rank for m in comm.members if m.rank is not None}
        which = (f": local ranks {sorted(set(range(comm.nranks)) - known)} missing"
                 if len(known) == len(comm.members) else "")
        notes.append(f"{cname}: lines of only {len(comm.members)} of its {comm.nranks} ranks"
                     f"{which}; their streams are taken from the ranks present, and every "
                     f"call is replayed over all {comm.nranks}")
    logged = Counter(k for m in comm.members for k in m.colls)
    partial = [k for k in comm.sig if logged[k] < len(comm.members)]
    if partial:
        notes.append(f"{cname}: {len(partial)} calls not logged by every rank present "
                     f"(first: opCount {min(partial)[0]:x}); each replayed once, for every rank")
    return notes


def calls_of(comm: Comm, cname: str, group: tuple[int, ...],
              skipped: Counter) -> list[Entry]:
    """Every call of one communicator, in opCount order."""
    rep = representative(comm)
    merged: dict[tuple[int, int], Entry] = {}
    for m in [rep] + [m for m in comm.members if m is not rep]:  # the representative's first
        for k, op in m.colls.items():
            entry = merged.get(k)
            if entry is None:
                entry = merged[k] = Entry(k, op.line, _collective(op, group, cname))
            entry.line = min(entry.line, op.line)
            entry.streams.add((m.device, op.stream))
    out = list(merged.values())
    out += _p2p_calls(comm, cname, group, skipped)
    out.sort(key=lambda e: e.key)
    return out


def _collective(op: Op, group: tuple[int, ...], cname: str) -> Call:
    collective = COLLECTIVE_NAMES[op.name]
    root = op.root if collective in ROOTED else 0
    return Call(id=0, collective=collective, algorithm=None, bytes=op.size, group=group,
                comm=cname, stream="", root=root)


def _p2p_calls(comm: Comm, cname: str, group: tuple[int, ...],
               skipped: Counter) -> list[Entry]:
    """The communicator's Send/Recv lines as calls.

    A group (one opCount) in which every rank sends the same size to every rank is one
    all-to-all (NCCL before 2.28 and PyTorch express it so), and one in which every rank
    sends to the next is nccl-tests' sendrecv. Every other Send is matched with its Recv as
    NCCL matches them: the k-th Send from rank a to rank b with the k-th Recv on b from a;
    each pair is one `send`, grouped when either side issued it inside an NCCL group after
    another point-to-point call. A Send or Recv whose other side is not in the log is still
    one call (its line names both ranks and the size); the notes count them.
    """
    if not comm.p2p:
        return []
    if any(m.rank is None for m in comm.members):
        skipped["Send/Recv calls on ranks the log does not name (no INIT lines)"] += sum(
            len(ops) for m in comm.members for ops in m.p2p.values())
        return []
    out, whole = [], set()
    by_opcount: dict[int, list[tuple[Instance, list[Op]]]] = {}
    for m in comm.members:
        for opcount, ops in m.p2p.items():
            by_opcount.setdefault(opcount, []).append((m, ops))
    for opcount in sorted(comm.p2p):
        entry = _pattern(comm.nranks, by_opcount[opcount], opcount, cname, group)
        if entry is not None:
            out.append(entry)
            whole.add(opcount)
    ends: dict[tuple[str, int, int], list[tuple[Op, Instance]]] = {}
    for m in comm.members:
        for opcount in sorted(set(m.p2p) - whole):
            for op in m.p2p[opcount]:
                pair = (m.rank, op.root) if op.name == "Send" else (op.root, m.rank)
                ends.setdefault((op.name, *pair), []).append((op, m))
    for src, dst in sorted({(a, b) for _, a, b in ends}):
        sends, recvs = ends.get(("Send", src, dst), []), ends.get(("Recv", src, dst), [])
        for k in range(max(len(sends), len(recvs))):
            sides = [side[k] for side in (sends, recvs) if k < len(side)]
            sizes = {op.size for op, _ in sides}
            if len(sizes) > 1 or src == dst:
                skipped["Send/Recv pairs that do not match (sizes or ranks)"] += 1
                continue
            if len(sides) == 1:
                skipped[f"{sides[0][0].name} lines whose other side is not in the log "
                        f"(imported from one side)"] += 1
            first = sides[0][0]
            # NCCL 2.27+ logs opCount 0 for every call on one node (NVIDIA/nccl PR 2021):
            # there a shared opCount says nothing about groups
            grouped = any(op.index > 0 and set(m.p2p) != {0} for op, m in sides)
            call = Call(id=0, collective="send", algorithm=None, bytes=sizes.pop(),
                        group=group, comm=cname, stream="", root=src, peer=dst,
                        grouped=grouped)
            out.append(Entry((first.opcount, first.index), min(op.line for op, _ in sides),
                              call, {(m.device, op.stream) for op, m in sides}))
    return out


def _pattern(n: int, parts: list[tuple[Instance, list[Op]]], opcount: int, cname: str,
             group: tuple[int, ...]) -> Entry | None:
    """One opCount's Send/Recv (`parts`: each rank's lines of it) as an all-to-all or a ring
    shift (nccl-tests' sendrecv) when every rank logged it and it is one of those, else None."""
    sends = {m.rank: sorted((o.root, o.size) for o in ops if o.name == "Send")
             for m, ops in parts}
    recvs = {m.rank: sorted((o.root, o.size) for o in ops if o.name == "Recv")
             for m, ops in parts}
    sizes = {b for s in sends.values() for _, b in s}
    if len(sends) != n or len(sizes) != 1:
        return None
    expected: dict[int, list[tuple[int, int]]] = {r: [] for r in range(n)}
    for src, s in sends.items():
        for dst, b in s:
            expected.setdefault(dst, []).append((src, b))
    for r in range(n):  # every Send's Recv is in the same group on its peer
        if recvs[r] != sorted(expected[r]):
            return None
    size = sizes.pop()
    everyone = list(range(n))
    if all([p for p, _ in s] == [(r + 1) % n] for r, s in sends.items()):
        collective, nbytes = "sendrecv", size
    elif all(len(s) >= n - 1 and [p for p, _ in s] in (everyone, everyone[:r] + everyone[r + 1:])
             for r, s in sends.items()):
        collective, nbytes = "alltoall", size * n
    else:
        return None
    line = min(o.line for _, ops in parts for o in ops)
    return Entry((opcount, -1), line,
                  Call(id=0, collective=collective, algorithm=None, bytes=nbytes, group=group,
                       comm=cname, stream=""),
                  {(m.device, o.stream) for m, ops in parts for o in ops})


def _streams(entries: list[Entry], notes: list[str]) -> list[str]:
    """A stream label per entry such that, on every GPU, calls logged on one CUDA stream share
    a label: CUDA stream addresses are per process, so each is keyed by its GPU, and a call
    links the streams of all its ranks. Two streams of one GPU that calls link (the log
    cannot tell them apart) share a label, and a note says so."""
    parent: dict[tuple, tuple] = {}

    def find(x: tuple) -> tuple:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in entries:
        nodes = sorted(e.streams)
        for other in nodes[1:]:
            parent[find(other)] = find(nodes[0])
    labels: dict[tuple, str] = {}
    out = []
    for e in entries:
        root = find(min(e.streams))
        out.append(labels.setdefault(root, f"s{len(labels)}"))
    merged = Counter()
    for node in parent:
        merged[(find(node), node[0])] += 1
    extra = sum(n - 1 for n in merged.values())
    if extra:
        notes.append(f"{extra} CUDA streams share a label with another stream of the same GPU "
                     f"(calls across ranks link them): their calls are replayed in order")
    return out


def merge(per_comm: list, notes: list[str]) -> list[Call]:
    """Interleave the communicators' call lists by first appearance, keeping each list's order;
    number the calls 0, 1, 2, ... and label their streams."""
    heap = [(entries[0].line, i, 0) for i, (_, _, entries) in enumerate(per_comm) if entries]
    heapq.heapify(heap)
    ordered: list[Entry] = []
    while heap:
        _, i, j = heapq.heappop(heap)
        entries = per_comm[i][2]
        ordered.append(entries[j])
        if j + 1 < len(entries):
            heapq.heappush(heap, (entries[j + 1].line, i, j + 1))
    labels = _streams(ordered, notes)
    return [replace(e.call, id=n, stream=label)
            for n, (e, label) in enumerate(zip(ordered, labels, strict=True))]
