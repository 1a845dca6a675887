"""Import Chakra execution traces (.et, MLCommons; what ASTRA-sim and PARAM replay) as a trace.

An .et file is one rank's execution graph: length-delimited protobuf messages (a varint
length, then the message), a GlobalMetadata first and then Nodes (Chakra's
src/third_party/utils/protolib.py writes them so; gzip-compressed files are read too). The
schema is Chakra's published et_def.proto, kept in traffic/schemas and compiled at run time
(traffic.protoschema). A node has an id, a type, control and data dependencies, a duration
and attributes; communication nodes carry `comm_type` (CollectiveCommType), `comm_size`
(bytes), `pg_name` (the process group), `comm_src`/`comm_dst` (send and receive peers).

What is kept: every collective, send and receive, with its size and process group (its ranks
are the ranks whose traces name that group; without a name, every rank); compute nodes
become the `gap_us` of the communication that waits for them (the longest chain of compute
since the last communication), and dependencies between communication nodes, direct or
through compute, become `after`. Calls of one process group match across ranks in order, as
NCCL's do; a send matches the receive on its peer in order. What is dropped is counted in
notes: memory nodes (kept as zero-time links), barriers, gathers and scatters (no netwall
collective), measured communication times (the network replaces them), attributes other than
those above. Several files are the ranks 0, 1, ... in the order given; a single file is one
rank's graph, and then every rank is assumed to run it (each process group is every rank).
"""

from __future__ import annotations

import gzip
import heapq
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from foundation.errors import NetwallError
from foundation.inputs import MAX_LOG_BYTES, read_bytes
from traffic.protoschema import message_classes
from traffic.trace import MAX_CALLS, Call, default_comm, dump_trace

SCHEMA = Path(__file__).resolve().parent / "schemas" / "chakra_et_def.proto"
# NodeType values of et_def.proto
METADATA, MEM_LOAD, MEM_STORE, COMP, SEND, RECV, COLL = 1, 2, 3, 4, 5, 6, 7
# CollectiveCommType -> netwall collective (None: no netwall collective, dropped);
# REDUCE_SCATTER_BLOCK is what ncclReduceScatter does.
COLLECTIVES = {0: "allreduce", 1: "reduce", 2: "allgather", 3: None, 4: None, 5: "broadcast",
               6: "alltoall", 7: "reducescatter", 8: "reducescatter", 9: None}
DROPPED_NAMES = {3: "gather", 4: "scatter", 9: "barrier"}
PER_RANK = ("allgather", "reducescatter", "alltoall")


@dataclass
class _Comm:
    """One communication node of one rank, with what it waited for."""

    rank: int
    node: int
    kind: str  # a netwall collective, or "send" / "recv"
    size: int
    pg: str
    peer: int  # send: destination; recv: source; -1 for collectives
    stream: str
    gap_us: float
    after: set[int] = field(default_factory=set)  # node ids of this rank's comm nodes


def import_chakra(paths: list[Path], notes: list[str] | None = None) -> list[Call]:
    """The calls of Chakra .et files (one per rank, in rank order)."""
    notes = notes if notes is not None else []
    dropped: Counter = Counter()
    classes = message_classes(SCHEMA)
    pgs: dict[str, list[int]] = {}  # process group -> the ranks whose nodes name it
    ranks = [_rank_comms(rank, path, classes, dropped, pgs) for rank, path in enumerate(paths)]
    calls = _merge(ranks, pgs, len(paths), dropped)
    if not calls:
        raise NetwallError(f"{paths[0]}: no communication nodes netwall can replay "
                           f"({_counts(dropped) or 'none at all'})")
    if len(paths) == 1:
        notes.insert(0, "one trace file: every rank is assumed to run its graph, and each "
                        "process group to be every rank")
    notes.insert(0, f"{len(paths)} rank files, {len(calls)} calls")
    notes += [f"dropped {n} {what}" for what, n in sorted(dropped.items())]
    return calls


def convert_chakra(paths: list[str | Path]) -> str:
    """The JSONL trace of Chakra .et files, with the import's notes as '#' comment lines."""
    notes: list[str] = []
    files = [Path(p) for p in paths]
    calls = import_chakra(files, notes)
    header = [f"netwall trace imported from Chakra execution traces "
              f"{', '.join(p.name for p in files)}"] + notes
    return dump_trace(calls, header)


def _messages(path: Path, classes: dict) -> tuple[object, list]:
    """The GlobalMetadata and the Nodes of one .et file."""
    data = read_bytes(path, "Chakra trace", MAX_LOG_BYTES)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise NetwallError(f"{path}: not a readable gzip file ({e})") from None
        if len(data) > MAX_LOG_BYTES:
            raise NetwallError(f"{path}: larger than {MAX_LOG_BYTES >> 20} MiB uncompressed")
    out, pos = [], 0
    while pos < len(data):
        start = pos
        size, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 63:
                raise NetwallError(f"{path}: byte {start}: a message length is cut short or "
                                   f"malformed; is it a Chakra .et file?")
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if pos + size > len(data):
            raise NetwallError(f"{path}: byte {start}: message {len(out)} needs {size} bytes, "
                               f"{len(data) - pos} are left (a truncated file?)")
        kind = classes["GlobalMetadata"] if not out else classes["Node"]
        message = kind()
        try:
            message.ParseFromString(data[pos:pos + size])
        except Exception as e:  # protobuf's DecodeError and what its C parser raises
            raise NetwallError(f"{path}: byte {start}: message {len(out)} is not a valid "
                               f"{kind.__name__} ({type(e).__name__})") from None
        out.append(message)
        pos += size
    if not out:
        raise NetwallError(f"{path}: empty; a Chakra .et file starts with a GlobalMetadata")
    return out[0], out[1:]


def _attrs(node) -> dict:
    return {a.name: getattr(a, a.WhichOneof("value")) for a in node.attr
            if a.WhichOneof("value") is not None}


def _rank_comms(rank: int, path: Path, classes: dict, dropped: Counter,
                pgs: dict[str, list[int]]) -> list[_Comm]:
    """One rank's communication nodes in dependency order, each with the compute before it
    and the communication nodes it waited for; adds the rank to the process groups (`pgs`)
    its collective nodes name, dropped ones included."""
    _, nodes = _messages(path, classes)
    by_id = {}
    for n in nodes:
        if n.id in by_id:
            raise NetwallError(f"{path}: node id {n.id} is used twice")
        by_id[n.id] = n
    deps = {n.id: sorted(set(n.ctrl_deps) | set(n.data_deps)) for n in nodes}
    for nid, ds in deps.items():
        for d in ds:
            if d not in by_id:
                raise NetwallError(f"{path}: node {nid} depends on node {d}, which the file "
                                   f"does not have")
    before: dict[int, tuple[float, set[int]]] = {}  # compute since the last comm, and those
    comms: list[_Comm] = []
    for nid in _topological(path, deps):
        n = by_id[nid]
        if n.type == COLL:
            members = pgs.setdefault(str(_attrs(n).get("pg_name", "")), [])
            if rank not in members:
                members.append(rank)
        gap = max((before[d][0] for d in deps[nid]), default=0.0)
        after = set().union(*(before[d][1] for d in deps[nid])) if deps[nid] else set()
        comm = _comm(path, rank, n, gap, after, dropped)
        if comm is not None:
            comms.append(comm)
            before[nid] = (0.0, {nid})
        elif n.type == COMP:
            before[nid] = (gap + n.duration_micros, after)
            dropped["compute nodes (replayed as the gaps before the calls after them)"] += 1
        else:
            before[nid] = (gap, after)
            if n.type in (MEM_LOAD, MEM_STORE):
                dropped["memory nodes (no network traffic; kept as links)"] += 1
    return comms


def _comm(path: Path, rank: int, n, gap: float, after: set[int], dropped: Counter
          ) -> _Comm | None:
    """A communication node as a _Comm, None for any other node (or a dropped one)."""
    if n.type not in (SEND, RECV, COLL):
        return None
    a = _attrs(n)
    where = f"{path}: node {n.id} ({n.name or 'unnamed'})"
    size = a.get("comm_size")
    if not isinstance(size, int) or size < 0:
        raise NetwallError(f"{where}: a communication node needs an integer comm_size >= 0")
    if n.duration_micros:
        dropped["measured communication times (the network replays them)"] += 1
    if size == 0:
        dropped["empty communication nodes (comm_size 0)"] += 1
        return None
    stream = str(a.get("stream", a.get("pg_name", "0")))
    if n.type == COLL:
        if "comm_type" not in a:
            raise NetwallError(f"{where}: a collective node needs comm_type")
        if a["comm_type"] not in COLLECTIVES:
            raise NetwallError(f"{where}: unknown comm_type {a['comm_type']}")
        kind = COLLECTIVES[a["comm_type"]]
        if kind is None:
            dropped[f"{DROPPED_NAMES[a['comm_type']]} nodes (no netwall collective)"] += 1
            return None
        peer = -1
    else:
        key = "comm_dst" if n.type == SEND else "comm_src"
        peer = a.get(key)
        if not isinstance(peer, int) or peer < 0:
            raise NetwallError(f"{where}: a {'send' if n.type == SEND else 'receive'} node "
                               f"needs {key}, a rank >= 0")
        kind = "send" if n.type == SEND else "recv"
    return _Comm(rank, n.id, kind, size, str(a.get("pg_name", "")), peer, stream, gap, after)


def _topological(path: Path, deps: dict[int, list[int]]) -> list[int]:
    """Node ids with every node after its dependencies (lowest id first among the ready)."""
    waiting = {nid: len(ds) for nid, ds in deps.items()}
    users: dict[int, list[int]] = {}
    for nid, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(nid)
    ready = [nid for nid, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        nid = heapq.heappop(ready)
        out.append(nid)
        for user in users.get(nid, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(out) != len(deps):
        stuck = min(nid for nid, k in waiting.items() if k > 0)
        raise NetwallError(f"{path}: the dependencies form a cycle (through node {stuck})")
    return out


def _merge(ranks: list[list[_Comm]], members: dict[str, list[int]], n: int,
           dropped: Counter) -> list[Call]:
    """One call per collective (matched across ranks by process group and order) and per
    send (matched with its receive), ordered so that every call follows what it waits for
    and each rank's calls keep their order."""
    events: dict[tuple, list[_Comm]] = {}  # one future call -> its nodes on each rank
    seen: Counter = Counter()
    for comms in ranks:
        for c in comms:
            if c.kind in ("send", "recv"):
                src, dst = (c.rank, c.peer) if c.kind == "send" else (c.peer, c.rank)
                key = ("p2p", src, dst, c.pg, c.kind)
            else:
                key = ("coll", c.pg, c.rank)
            k = seen[key]
            seen[key] += 1
            slot = ("p2p", *key[1:4], k) if key[0] == "p2p" else ("coll", c.pg, k)
            events.setdefault(slot, []).append(c)
    single = n == 1
    calls: dict[tuple, Call] = {}
    for slot, nodes in events.items():
        call = _call(slot, nodes, members, single, dropped)
        if call is not None:
            calls[slot] = call
    return _ordered(calls, events)


def _call(slot: tuple, nodes: list[_Comm], members: dict[str, list[int]], single: bool,
          dropped: Counter) -> Call | None:
    first = min(nodes, key=lambda c: c.rank)
    gap = round(max(c.gap_us for c in nodes), 3)  # a collective starts with its last rank
    if slot[0] == "p2p":
        gap = round(max([c.gap_us for c in nodes if c.kind == "send"], default=0.0), 3)
        _, src, dst, pg, _k = slot
        if src == dst:
            raise NetwallError(f"rank {src}: node {first.node} sends to itself")
        if len({c.size for c in nodes}) > 1:
            raise NetwallError(f"rank {src} -> {dst}: send node and receive node sizes differ "
                               f"({', '.join(str(c.size) for c in nodes)} bytes)")
        if len(nodes) == 1 and not single:
            dropped[f"{'send' if first.kind == 'send' else 'receive'} nodes whose peer's trace "
                    f"has no match (imported from one side)"] += 1
        group = tuple(sorted((src, dst)))
        return Call(id=0, collective="send", algorithm=None, bytes=_aligned(first.size, 1),
                    group=group, comm=f"{pg}:{default_comm(group)}" if pg else
                    default_comm(group), stream=first.stream, gap_us=gap,
                    root=group.index(src), peer=group.index(dst))
    _, pg, k = slot
    kinds = {(c.kind, c.size) for c in nodes}
    if len(kinds) > 1:
        raise NetwallError(f"process group {pg or '(unnamed)'}: call {k} differs between "
                           f"ranks ({', '.join(f'{a} {b} B' for a, b in sorted(kinds))})")
    ranks = members[pg]
    if not single and len(ranks) < 2:
        dropped["collectives on one-rank process groups (no traffic)"] += 1
        return None
    if len(nodes) < len(ranks):
        missing = sorted(set(ranks) - {c.rank for c in nodes})
        raise NetwallError(f"process group {pg or '(unnamed)'}: call {k} is missing on ranks "
                           f"{missing} (their traces have fewer calls of this group)")
    group = () if single or not pg else tuple(sorted(ranks))
    # whole float32 elements, per rank where the collective splits (with "all", the replay
    # checks the size against the topology's ranks)
    size = _aligned(first.size, len(group) if first.kind in PER_RANK and group else 1)
    if size != first.size:
        dropped["byte counts rounded up to whole float32 elements per rank"] += 1
    return Call(id=0, collective=first.kind, algorithm=None, bytes=size, group=group,
                comm=pg or default_comm(group), stream=first.stream, gap_us=gap)


def _aligned(size: int, n: int) -> int:
    unit = 4 * n
    return max(unit, -(-size // unit) * unit)


def _ordered(calls: dict[tuple, Call], events: dict[tuple, list[_Comm]]) -> list[Call]:
    """Number the calls in an order where each follows the calls it waits for and every
    rank's calls keep that rank's order; `after` names them by number."""
    slot_of = {(c.rank, c.node): slot for slot, nodes in events.items() for c in nodes}
    edges: dict[tuple, set[tuple]] = {slot: set() for slot in calls}
    for slot in calls:
        for c in events[slot]:
            for dep in c.after:
                other = slot_of.get((c.rank, dep))
                if other in calls and other != slot:
                    edges[slot].add(other)
    by_rank: dict[int, list[tuple]] = {}
    for slot, nodes in events.items():
        for c in nodes:
            by_rank.setdefault(c.rank, []).append((c.node, slot))
    order_edges = {slot: set() for slot in calls}
    for items in by_rank.values():  # a rank's calls in its topological order
        prev = None
        for _, slot in items:
            if slot in calls:
                if prev is not None and prev != slot:
                    order_edges[slot].add(prev)
                prev = slot
    waiting = {s: edges[s] | order_edges[s] for s in calls}
    users: dict[tuple, list[tuple]] = {}
    for s, ds in waiting.items():
        for d in ds:
            users.setdefault(d, []).append(s)
    left = {s: len(ds) for s, ds in waiting.items()}
    rank_of = {s: min((c.rank, i) for i, c in enumerate(events[s])) for s in calls}
    ready = [(rank_of[s], str(s), s) for s, k in left.items() if k == 0]
    heapq.heapify(ready)
    number: dict[tuple, int] = {}
    while ready:
        _, _, s = heapq.heappop(ready)
        number[s] = len(number)
        for user in users.get(s, []):
            left[user] -= 1
            if left[user] == 0:
                heapq.heappush(ready, (rank_of[user], str(user), user))
    if len(number) != len(calls):
        raise NetwallError("the ranks' traces order their calls inconsistently (a collective "
                           "waits, on one rank, for a call that waits for it on another)")
    if len(number) > MAX_CALLS:
        raise NetwallError(f"more than {MAX_CALLS} calls; split the trace")
    out = [None] * len(number)
    for s, i in number.items():
        out[i] = Call(**{**calls[s].__dict__, "id": i,
                         "after": tuple(sorted(number[d] for d in edges[s]))})
    return out


def _counts(dropped: Counter) -> str:
    return "; ".join(f"{n} {what}" for what, n in sorted(dropped.items()))
