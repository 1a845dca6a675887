"""Import NCCL's own debug log (NCCL_DEBUG=INFO, NCCL_DEBUG_SUBSYS=INIT,COLL) as a replay trace.

NCCL prints one line per rank and collective call from ncclEnqueueCheck (src/enqueue.cc;
NCCL 2.3-2.6 printed the same text from each collective's own function):

    host:pid:tid [dev] NCCL INFO AllReduce: opCount 1a sendbuff 0x.. recvbuff 0x.. count 262144
        datatype 7 op 0 root 0 comm 0x55d0c8a0 [nranks=8] stream 0x55d0c9b0

(one line; `opCount` is hexadecimal; NCCL 2.23+ may put a `[date time]` before the host).
`count` is elements, per rank: all-gather's send count, reduce-scatter's receive count,
all-to-all's per-peer count. Send and Recv lines put the peer in `root`. RCCL appends
`task N globalrank N`; Meta's ctran prints `peer N ... [nranks=N, localRanks=N] stream=0x..`.
All of these parse; anything else in the log is ignored.

Every rank prints its own `comm` pointer, so a communicator is recognised across ranks by the
`commId` of its `... comm 0x.. rank R nranks N ... commId 0x.. - Init COMPLETE` line (INIT
subsystem), or, without INIT lines, by matching call sequences. Addresses are per process,
streams too: a call links the (GPU, stream) of every rank that logged it, and each linked
set is one stream of the trace. Send and Recv lines pair up as NCCL pairs them (the k-th
Send from a to b with the k-th Recv on b from a) into `send` calls. Logs are often excerpts:
what they leave out (ranks, calls, a Send's other side) is imported where the lines present
say enough and named in notes, never guessed. See docs/replay.md for what the import keeps,
assumes and skips.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from emulator.errors import NetwallError
from emulator.inputs import MAX_LOG_BYTES, read_text
from traffic.trace import Call, dump_trace

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
P2P_NAMES = ("Send", "Recv")

_PREFIX = re.compile(r"(?P<host>[^\s:\[\]]+):(?P<pid>\d+):(?P<tid>\d+) \[(?P<dev>\d+)\] "
                     r"NCCL INFO (?P<msg>.*?)\s*$")
_COLL = re.compile(r"^(?P<op>[A-Za-z]+): opCount (?P<opcount>[0-9a-fA-F]+) (?P<rest>.*)$")
_INIT = re.compile(r"\bcomm (?P<comm>\S+) rank (?P<rank>\d+) nranks (?P<nranks>\d+) "
                   r"(?:.*\bcommId (?P<commid>0x[0-9a-fA-F]+))?.*- Init (?:COMPLETE|START)")
_FIELD_SEP = re.compile(r"[\[\],=]")


@dataclass
class _Op:
    """One logged call on one rank."""

    name: str
    opcount: int
    index: int  # among this instance's lines with the same opCount and kind
    count: int
    dtype: int
    root: int  # root, or the peer of Send/Recv
    stream: str
    line: int  # line number, for ordering


@dataclass
class _Instance:
    """One rank's handle of one communicator: (host, pid, comm pointer)."""

    key: tuple[str, str, str]
    device: tuple[str, str, str]  # (host, pid, cuda device): one GPU
    nranks: int
    line: int
    rank: int | None = None
    commid: str | None = None
    colls: dict[tuple[int, int], _Op] = field(default_factory=dict)
    p2p: dict[int, list[_Op]] = field(default_factory=dict)


@dataclass
class _Comm:
    nranks: int
    members: list[_Instance] = field(default_factory=list)
    commid: str | None = None
    sig: dict = field(default_factory=dict)  # (opcount, index) -> (name, count, dtype, root)
    p2p: set = field(default_factory=set)  # opcounts holding Send/Recv


def import_nccl_log(lines: Iterable[str], name: str, notes: list[str] | None = None) -> list[Call]:
    """Calls of an NCCL INFO log, one per (communicator, call) deduplicated across ranks.

    One-line notes on what was assumed or skipped are appended to `notes` when given.
    """
    notes = notes if notes is not None else []
    instances, seen_coll, skipped = _read(lines)
    if not seen_coll:
        raise NetwallError(f"{name}: no NCCL collective lines ('NCCL INFO AllReduce: opCount "
                           f"...'); capture with NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,COLL")
    comms = _group(instances)
    total = max([c.nranks for c in comms] + [len({i.device for i in instances.values()})])
    world = _world_ranks(comms, total)

    per_comm: list[tuple[str, tuple[int, ...], list[_Entry]]] = []
    blocks: Counter = Counter()
    n_world = n_sub = 0
    for comm in comms:
        if comm.nranks < 2:
            skipped["calls on single-rank communicators (no traffic)"] += (
                len(comm.sig) + len(comm.p2p))
            continue
        if not comm.sig and not comm.p2p:
            continue
        if comm.nranks == total:
            group: tuple[int, ...] = ()
            n_world += 1
            cname = "world" if n_world == 1 else f"world{n_world}"
        else:
            n_sub += 1
            cname = f"comm{n_sub}"
            group = _sub_group(comm, world)
            if group is None:
                k = blocks[comm.nranks]
                blocks[comm.nranks] += 1
                group = tuple((k * comm.nranks + i) % total for i in range(comm.nranks))
                notes.append(f"{cname}: {comm.nranks} ranks whose global ranks the log does not "
                             f"tell (no INIT lines for it or for a job-wide communicator); "
                             f"assumed consecutive ranks {list(group)}")
        notes += _missing(comm, cname)
        per_comm.append((cname, group, _calls_of(comm, cname, group, skipped)))

    calls = _merge(per_comm, notes)
    for reason, n in sorted(skipped.items()):
        notes.append(f"skipped {n} {reason}")
    if not calls:
        raise NetwallError(f"{name}: no replayable collective calls in the log "
                           f"({'; '.join(f'{n} {r}' for r, n in skipped.items())})")
    if total:
        notes.insert(0, f"{total} ranks, {len(per_comm)} communicators, {len(calls)} calls")
    return calls


def convert(path: str | Path) -> str:
    """The JSONL trace of an NCCL log file, with the import's notes as '#' comment lines."""
    notes: list[str] = []
    text = read_text(path, "NCCL log", MAX_LOG_BYTES, errors="replace")
    calls = import_nccl_log(text.splitlines(), str(path), notes)
    header = [f"netwall trace imported from NCCL log {Path(path).name}"] + notes
    return dump_trace(calls, header)


def _read(lines: Iterable[str]) -> tuple[dict, bool, Counter]:
    instances: dict[tuple[str, str, str], _Instance] = {}
    inits: dict[tuple[str, str, str], tuple[int, int, str | None]] = {}
    skipped: Counter = Counter()
    seen_coll = False
    opindex: Counter = Counter()
    for lineno, raw in enumerate(lines, 1):
        m = _PREFIX.search(raw)
        if not m:
            continue
        host, pid, dev, msg = m["host"], m["pid"], m["dev"], m["msg"]
        init = _INIT.search(msg)
        if init:
            inits[(host, pid, init["comm"])] = (int(init["rank"]), int(init["nranks"]),
                                                init["commid"])
            continue
        coll = _COLL.match(msg)
        if not coll:
            continue
        seen_coll = True
        fields = _fields(coll["rest"])
        op = coll["op"]
        try:
            count, dtype = int(fields["count"]), int(fields["datatype"])
            comm_ptr, nranks = fields["comm"], int(fields["nranks"])
            root = int(fields.get("root", fields.get("peer", "0")))
        except (KeyError, ValueError):
            skipped["collective lines in an unknown format"] += 1
            continue
        if op not in COLLECTIVE_NAMES and op not in P2P_NAMES:
            skipped[f"{op} calls (not a netwall collective)"] += 1
            continue
        if dtype not in DTYPE_SIZE:
            skipped[f"calls with unknown datatype {dtype}"] += 1
            continue
        if count == 0:
            continue  # NCCL discards empty collectives too
        key = (host, pid, comm_ptr)
        inst = instances.get(key)
        if inst is None:
            inst = instances[key] = _Instance(key, (host, pid, dev), nranks, lineno)
        opcount = int(coll["opcount"], 16)
        kind = "p2p" if op in P2P_NAMES else "coll"
        index = opindex[(key, opcount, kind)]
        opindex[(key, opcount, kind)] += 1
        entry = _Op(op, opcount, index, count, dtype, root, fields.get("stream", "?"), lineno)
        if kind == "p2p":
            inst.p2p.setdefault(opcount, []).append(entry)
            if nranks == 2 and inst.rank is None and root in (0, 1):
                inst.rank = 1 - root  # in a pair, the peer gives away the rank
        else:
            inst.colls[(opcount, index)] = entry
    for key, (rank, nranks, commid) in inits.items():
        inst = instances.get(key)
        if inst is not None and inst.nranks == nranks:
            inst.rank, inst.commid = rank, commid
    return instances, seen_coll, skipped


def _fields(rest: str) -> dict[str, str]:
    """'count 5 datatype 7 comm 0x1 [nranks=8, localRanks=2] stream=0x2' as key -> value."""
    tokens = _FIELD_SEP.sub(" ", rest).split()
    return {tokens[i]: tokens[i + 1] for i in range(0, len(tokens) - 1, 2)}


def _signature(inst: _Instance) -> dict:
    return {k: (o.name, o.count, o.dtype, o.root) for k, o in inst.colls.items()}


def _group(instances: dict) -> list[_Comm]:
    """Collect the per-rank instances into communicators.

    Same commId (from INIT lines) means same communicator. Otherwise an instance joins the
    first communicator of its size that is not yet full, does not already hold its rank, and
    agrees with it on every call both logged (same opCount: same collective, count, datatype
    and root). Communicators that log identical call sequences are indistinguishable; they are
    told apart only by filling up.
    """
    comms: list[_Comm] = []
    for inst in sorted(instances.values(), key=lambda i: i.line):
        sig = _signature(inst)
        fits = [c for c in comms
                if c.nranks == inst.nranks and len(c.members) < c.nranks
                and not (inst.commid and c.commid and inst.commid != c.commid)
                and not (inst.rank is not None and any(m.rank == inst.rank for m in c.members))
                and all(c.sig.get(k, v) == v for k, v in sig.items())]
        same_id = [c for c in fits if inst.commid and c.commid == inst.commid]
        target = (same_id or fits or [None])[0]
        if target is None:
            target = _Comm(inst.nranks)
            comms.append(target)
        target.members.append(inst)
        target.commid = target.commid or inst.commid
        target.sig.update(sig)
        target.p2p.update(inst.p2p)
    return comms


def _world_ranks(comms: list[_Comm], total: int) -> dict[tuple, int]:
    """GPU (host, pid, device) -> global rank, from a job-wide communicator's INIT lines."""
    world: dict[tuple, int] = {}
    for comm in comms:
        if comm.nranks == total:
            for m in comm.members:
                if m.rank is not None:
                    world.setdefault(m.device, m.rank)
    return world


def _sub_group(comm: _Comm, world: dict[tuple, int]) -> tuple[int, ...] | None:
    by_rank = {m.rank: m for m in comm.members if m.rank is not None}
    if sorted(by_rank) != list(range(comm.nranks)):
        return None
    group = tuple(world.get(by_rank[i].device, -1) for i in range(comm.nranks))
    if -1 in group or len(set(group)) != len(group):
        return None
    return group


def _representative(comm: _Comm) -> _Instance:
    ranked = [m for m in comm.members if m.rank is not None]
    return min(ranked, key=lambda m: m.rank) if ranked else comm.members[0]


@dataclass
class _Entry:
    """One imported call before numbering: its order in its communicator, its first line,
    the call (stream not yet labelled) and the (GPU, CUDA stream) of every rank that logged
    it."""

    key: tuple[int, int]
    line: int
    call: Call
    streams: set[tuple] = field(default_factory=set)


def _missing(comm: _Comm, cname: str) -> list[str]:
    """Notes on what a communicator's lines leave out: ranks that logged nothing, and calls
    some of the ranks that did log left out (an excerpt, or a log cut short)."""
    notes = []
    if len(comm.members) < comm.nranks:
        known = {m.rank for m in comm.members if m.rank is not None}
        which = (f": local ranks {sorted(set(range(comm.nranks)) - known)} missing"
                 if len(known) == len(comm.members) else "")
        notes.append(f"{cname}: lines of only {len(comm.members)} of its {comm.nranks} ranks"
                     f"{which}; their streams are taken from the ranks present")
    partial = [k for k in comm.sig if sum(k in m.colls for m in comm.members) < len(comm.members)]
    if partial:
        notes.append(f"{cname}: {len(partial)} calls not logged by every rank present "
                     f"(first: opCount {min(partial)[0]:x}); each replayed once, for every rank")
    return notes


def _calls_of(comm: _Comm, cname: str, group: tuple[int, ...],
              skipped: Counter) -> list[_Entry]:
    """Every call of one communicator, in opCount order."""
    rep = _representative(comm)
    out: list[_Entry] = []
    merged: dict[tuple[int, int], _Entry] = {}
    for m in [rep] + [m for m in comm.members if m is not rep]:  # the representative's first
        for k, op in m.colls.items():
            entry = merged.get(k)
            if entry is None:
                entry = merged[k] = _Entry(k, op.line, _collective(op, comm.nranks, group, cname))
            entry.line = min(entry.line, op.line)
            entry.streams.add((m.device, op.stream))
    for entry in merged.values():
        if entry.call.root >= comm.nranks:
            skipped["calls with a root outside their communicator"] += 1
        else:
            out.append(entry)
    out += _p2p_calls(comm, cname, group, skipped)
    out.sort(key=lambda e: e.key)
    return out


def _collective(op: _Op, nranks: int, group: tuple[int, ...], cname: str) -> Call:
    collective = COLLECTIVE_NAMES[op.name]
    size = op.count * DTYPE_SIZE[op.dtype]
    if collective in ("allgather", "reducescatter", "alltoall"):
        size *= nranks
    root = op.root if collective in ("broadcast", "reduce") else 0
    return Call(id=0, collective=collective, algorithm=None, bytes=size, group=group,
                comm=cname, stream="", root=root)


def _p2p_calls(comm: _Comm, cname: str, group: tuple[int, ...],
               skipped: Counter) -> list[_Entry]:
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
    for opcount in sorted(comm.p2p):
        entry = _pattern(comm, opcount, cname, group)
        if entry is not None:
            out.append(entry)
            whole.add(opcount)
    ends: dict[tuple[str, int, int], list[tuple[_Op, _Instance]]] = {}
    for m in comm.members:
        for opcount in sorted(set(m.p2p) - whole):
            for op in m.p2p[opcount]:
                pair = (m.rank, op.root) if op.name == "Send" else (op.root, m.rank)
                ends.setdefault((op.name, *pair), []).append((op, m))
    for src, dst in sorted({(a, b) for _, a, b in ends}):
        sends, recvs = ends.get(("Send", src, dst), []), ends.get(("Recv", src, dst), [])
        for k in range(max(len(sends), len(recvs))):
            sides = [side[k] for side in (sends, recvs) if k < len(side)]
            sizes = {op.count * DTYPE_SIZE[op.dtype] for op, _ in sides}
            if len(sizes) > 1 or max(src, dst) >= comm.nranks or src == dst:
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
            out.append(_Entry((first.opcount, first.index), min(op.line for op, _ in sides),
                              call, {(m.device, op.stream) for op, m in sides}))
    return out


def _pattern(comm: _Comm, opcount: int, cname: str, group: tuple[int, ...]) -> _Entry | None:
    """One opCount's Send/Recv as an all-to-all or a ring shift (nccl-tests' sendrecv) when
    every rank logged it and it is one of those, else None."""
    n = comm.nranks
    parts = [(m, m.p2p[opcount]) for m in comm.members if opcount in m.p2p]
    sends = {m.rank: sorted((o.root, o.count * DTYPE_SIZE[o.dtype]) for o in ops
                            if o.name == "Send") for m, ops in parts}
    recvs = {m.rank: sorted((o.root, o.count * DTYPE_SIZE[o.dtype]) for o in ops
                            if o.name == "Recv") for m, ops in parts}
    sizes = {b for s in sends.values() for _, b in s}
    if len(sends) != n or len(sizes) != 1:
        return None
    for r in range(n):  # every Send's Recv is in the same group on its peer
        if recvs[r] != sorted((src, b) for src, s in sends.items() for dst, b in s if dst == r):
            return None
    size = sizes.pop()
    everyone = list(range(n))
    if all([p for p, _ in s] == [(r + 1) % n] for r, s in sends.items()):
        collective, nbytes = "sendrecv", size
    elif all([p for p, _ in s] in (everyone, everyone[:r] + everyone[r + 1:])
             for r, s in sends.items()):
        collective, nbytes = "alltoall", size * n
    else:
        return None
    line = min(o.line for _, ops in parts for o in ops)
    return _Entry((opcount, -1), line,
                  Call(id=0, collective=collective, algorithm=None, bytes=nbytes, group=group,
                       comm=cname, stream=""),
                  {(m.device, o.stream) for m, ops in parts for o in ops})


def _streams(entries: list[_Entry], notes: list[str]) -> list[str]:
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


def _merge(per_comm: list, notes: list[str]) -> list[Call]:
    """Interleave the communicators' call lists by first appearance, keeping each list's order;
    number the calls 0, 1, 2, ... and label their streams."""
    heap = [(entries[0].line, i, 0) for i, (_, _, entries) in enumerate(per_comm) if entries]
    heapq.heapify(heap)
    ordered: list[_Entry] = []
    while heap:
        _, i, j = heapq.heappop(heap)
        entries = per_comm[i][2]
        ordered.append(entries[j])
        if j + 1 < len(entries):
            heapq.heappush(heap, (entries[j + 1].line, i, j + 1))
    labels = _streams(ordered, notes)
    return [replace(e.call, id=n, stream=label)
            for n, (e, label) in enumerate(zip(ordered, labels, strict=True))]
