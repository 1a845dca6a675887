"""Import Chakra execution traces (.et, MLCommons; what ASTRA-sim and PARAM replay) as a trace.

An .et file is one rank's execution graph: length-delimited protobuf messages (a varint
length, then the message), a GlobalMetadata first and then Nodes (Chakra's
src/third_party/utils/protolib.py writes them so; gzip-compressed files are read too). The
schema is Chakra's published et_def.proto, kept in traffic/schemas and compiled at run time
(traffic.protoschema). A node has an id, a type, control and data dependencies, a duration
and attributes; communication nodes carry `comm_type` (CollectiveCommType), `comm_size`
(bytes), `pg_name` (the process group), `comm_src`/`comm_dst` (send and receive peers).

What is kept: every collective, send and receive, with its size and process group (its ranks
are the ranks whose traces name that group, the unnamed group included); compute nodes
become the `gap_us` of the communication that waits for them (the longest chain of compute
since the last communication), and dependencies between communication nodes, direct or
through compute, become `after`. Calls of one process group match across ranks in order, as
NCCL's do; a send matches the receive on its peer in order. What is dropped is counted in
notes: memory nodes (kept as zero-time links), barriers, gathers and scatters (no netwall
collective), measured communication times (the network replaces them), attributes other than
those above. Several files are ranks: named NAME.RANK.et (as ASTRA-sim and Chakra name
them) each file is the rank its name gives, and the ranks must be 0..n-1, each once; named
otherwise, they are the ranks 0, 1, ... in the order given (a note says so). A single file is
one rank's graph, and then every rank is assumed to run it (each process group is every rank).

Files are hostile input too: each is streamed a message at a time (a gzip file inflated in
bounded reads, stopped at MAX_LOG_BYTES), the length-delimited framing is checked here and no
message over MAX_MESSAGE bytes reaches protobuf, only the fields used are kept of each node,
every number is checked against the trace's limits (ranks, bytes, gaps, calls) where it is
read, and the calls a call waits for are carried through compute without being copied from
node to node (MAX_LINKS bounds that work).
"""

from __future__ import annotations

import gzip
import heapq
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from foundation.errors import NetwallError
from foundation.inputs import MAX_LOG_BYTES, is_whole, open_regular
from topologies.graph import MAX_GPUS
from traffic.protoschema import message_classes
from traffic.trace import (
    MAX_CALL_BYTES,
    MAX_CALLS,
    MAX_GAP_US,
    MAX_NAME,
    Call,
    aligned,
    default_comm,
    dump_imported,
)

SCHEMA = Path(__file__).resolve().parent / "schemas" / "chakra_et_def.proto"
# NodeType values of et_def.proto
INVALID, METADATA, MEM_LOAD, MEM_STORE, COMP, SEND, RECV, COLL = 0, 1, 2, 3, 4, 5, 6, 7
# CollectiveCommType -> netwall collective (None: no netwall collective, dropped);
# REDUCE_SCATTER_BLOCK is what ncclReduceScatter does.
COLLECTIVES = {0: "allreduce", 1: "reduce", 2: "allgather", 3: None, 4: None, 5: "broadcast",
               6: "alltoall", 7: "reducescatter", 8: "reducescatter", 9: None}
DROPPED_NAMES = {3: "gather", 4: "scatter", 9: "barrier"}
# Bounds of one import, beside the trace's (docs/replay.md): bytes of one message, nodes and
# dependencies of one file, communication nodes of all files, and the steps of carrying
# waits through compute (sets merged, waits written).
MAX_MESSAGE = 16 << 20
MAX_NODES = 2_000_000
MAX_DEPS = 8_000_000
MAX_COMM_NODES = 2_000_000
MAX_LINKS = 8_000_000
_RANK_IN_NAME = re.compile(r"(?:^|[._-])([0-9]{1,9})\.et(?:\.gz)?$")
_EMPTY: frozenset = frozenset()


@dataclass(slots=True)
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
    after: set[int] | frozenset = _EMPTY  # node ids of this rank's comm nodes (shared)


@dataclass(slots=True)
class _Node:
    """What the import keeps of a node: its type, dependencies and duration, and for a
    communication node the _Comm it becomes (None: not one, or dropped)."""

    type: int
    deps: tuple[int, ...]
    micros: int
    comm: _Comm | None = None


@dataclass
class _Budget:
    """Work and memory every file of one import shares."""

    comm_nodes: int = 0
    links: int = 0

    def link(self, n: int) -> None:
        self.links += n
        if self.links > MAX_LINKS:
            raise NetwallError(f"the calls' waits on earlier calls (through compute) take more "
                               f"than {MAX_LINKS} steps to track; import fewer steps or ranks")


def import_chakra(paths: list[Path], notes: list[str] | None = None) -> list[Call]:
    """The calls of Chakra .et files (one per rank: see `ranked` for which is which)."""
    notes = notes if notes is not None else []
    paths = ranked(paths, notes)
    dropped: Counter = Counter()
    classes = message_classes(SCHEMA)
    pgs: dict[str, set[int]] = {}  # process group -> the ranks whose nodes name it
    budget = _Budget()
    ranks = [_rank_comms(rank, path, len(paths), classes, dropped, pgs, budget)
             for rank, path in enumerate(paths)]
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
              f"{_names(files)}"] + notes
    return dump_imported(calls, header, str(files[0]) if len(files) == 1 else "Chakra traces")


def ranked(paths: list[Path], notes: list[str]) -> list[Path]:
    """The files in rank order. Names NAME.RANK.et (or .et.gz) give the rank; then every
    file must, and the ranks must be 0..n-1, each once. Names without one are ranks in the
    order given (a shell's `*.et` sorts 10 before 2, which is why names win)."""
    if len(paths) > MAX_GPUS:
        raise NetwallError(f"{len(paths)} Chakra trace files: netwall replays at most "
                           f"{MAX_GPUS} ranks")
    if len(paths) < 2:
        return list(paths)
    found = [_RANK_IN_NAME.search(p.name) for p in paths]
    if not any(found):
        notes.append(f"no rank in the file names (NAME.RANK.et): ranks in the order given, "
                     f"{paths[0].name} is rank 0")
        return list(paths)
    if not all(found):
        bare = next(p for p, m in zip(paths, found, strict=True) if m is None)
        raise NetwallError(f"{bare}: no rank in its name (NAME.RANK.et) while other files "
                           f"have one; name every file by its rank, or none")
    by_rank: dict[int, Path] = {}
    for p, m in zip(paths, found, strict=True):
        rank = int(m[1])
        if rank in by_rank:
            raise NetwallError(f"{by_rank[rank]} and {p} both name rank {rank}")
        by_rank[rank] = p
    gap = next((r for r in range(len(paths)) if r not in by_rank), None)
    if gap is not None:
        raise NetwallError(f"no file for rank {gap}: {len(paths)} files must name ranks 0 to "
                           f"{len(paths) - 1}, each once (got {_ranks(by_rank)})")
    return [by_rank[r] for r in range(len(paths))]


def _names(files: list[Path]) -> str:
    if len(files) <= 8:
        return ", ".join(p.name for p in files)
    return f"{files[0].name}, {files[1].name}, ..., {files[-1].name} ({len(files)} files)"


def _ranks(by_rank: dict[int, Path]) -> str:
    ranks = sorted(by_rank)
    return ", ".join(map(str, ranks)) if len(ranks) <= 8 else (
        f"{ranks[0]}, {ranks[1]}, ..., {ranks[-1]}")


class _Reader:
    """Exact reads from a file, or from the data a gzip file inflates to, stopped at
    MAX_LOG_BYTES of data either way (a small gzip can inflate to gigabytes)."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.f: BinaryIO = gzip.GzipFile(fileobj=f, mode="rb") if f.peek(2)[:2] == \
            b"\x1f\x8b" else f

    def read(self, n: int) -> bytes:
        parts, want = [], n
        while want:
            try:
                chunk = self.f.read(min(want, 1 << 20))
            except (OSError, EOFError, zlib.error) as e:
                raise NetwallError(f"{self.path}: not a readable gzip file "
                                   f"({' '.join(str(e).split()) or type(e).__name__})") from None
            if not chunk:
                break
            parts.append(chunk)
            want -= len(chunk)
        self.pos += n - want
        if self.pos > MAX_LOG_BYTES:
            raise NetwallError(f"{self.path}: larger than {MAX_LOG_BYTES >> 20} MiB "
                               f"(uncompressed)")
        return b"".join(parts)

    def varint(self) -> int | None:
        """A message's length; None at the end of the file."""
        start, value = self.pos, 0
        for shift in range(0, 64, 7):
            byte = self.read(1)
            if not byte:
                if shift == 0:
                    return None
                break
            value |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                return value
        raise NetwallError(f"{self.path}: byte {start}: a message length is cut short or "
                           f"malformed; is it a Chakra .et file?")


def _messages(path: Path, classes: dict) -> Iterator[object]:
    """The GlobalMetadata and then the Nodes of one .et file, one at a time."""
    with open_regular(path, "Chakra trace", MAX_LOG_BYTES) as f:
        reader = _Reader(f, path)
        count = 0
        while True:
            start = reader.pos
            size = reader.varint()
            if size is None:
                break
            if size > MAX_MESSAGE:
                raise NetwallError(f"{path}: byte {start}: message {count} claims {size} "
                                   f"bytes, over {MAX_MESSAGE >> 20} MiB; is it a Chakra .et "
                                   f"file?")
            body = reader.read(size)
            if len(body) < size:
                raise NetwallError(f"{path}: byte {start}: message {count} needs {size} bytes, "
                                   f"{len(body)} are left (a truncated file?)")
            kind = classes["GlobalMetadata"] if not count else classes["Node"]
            message = kind()
            try:
                message.ParseFromString(body)
            except Exception as e:  # protobuf's DecodeError and what its C parser raises
                raise NetwallError(f"{path}: byte {start}: message {count} is not a valid "
                                   f"{kind.__name__} ({type(e).__name__})") from None
            count += 1
            yield message
    if not count:
        raise NetwallError(f"{path}: empty; a Chakra .et file starts with a GlobalMetadata")


_INTS = ("int32_val", "int64_val", "uint32_val", "uint64_val", "sint32_val", "sint64_val",
         "fixed32_val", "fixed64_val", "sfixed32_val", "sfixed64_val")
_USED = ("comm_type", "comm_size", "pg_name", "comm_src", "comm_dst", "stream")


def _attrs(node, where: str) -> dict:
    """The attributes the import reads, each an integer or a string (short), checked."""
    out = {}
    for a in node.attr:
        if a.name not in _USED:
            continue
        kind = a.WhichOneof("value")
        if kind in _INTS or kind == "string_val":
            value = getattr(a, kind)
        else:
            raise NetwallError(f"{where}: attribute {a.name} must be an integer or a string, "
                               f"not {kind or 'empty'}")
        if isinstance(value, str) and len(value) > MAX_NAME:
            raise NetwallError(f"{where}: attribute {a.name} is longer than {MAX_NAME} "
                               f"characters")
        out[a.name] = value
    return out


def _rank_comms(rank: int, path: Path, n_ranks: int, classes: dict, dropped: Counter,
                pgs: dict[str, set[int]], budget: _Budget) -> list[_Comm]:
    """One rank's communication nodes in dependency order, each with the compute before it
    and the communication nodes it waited for; adds the rank to the process groups (`pgs`)
    its collective nodes name, dropped ones included."""
    nodes: dict[int, _Node] = {}
    deps_total = 0
    messages = _messages(path, classes)
    next(messages)  # the GlobalMetadata
    for n in messages:
        if n.id in nodes:
            raise NetwallError(f"{path}: node id {n.id} is used twice")
        if n.type == INVALID:
            raise NetwallError(f"{path}: node {n.id} has no type (INVALID_NODE); is it a "
                               f"Chakra .et file?")
        deps = tuple(sorted(set(n.ctrl_deps) | set(n.data_deps)))
        deps_total += len(deps)
        if len(nodes) >= MAX_NODES or deps_total > MAX_DEPS:
            raise NetwallError(f"{path}: more than {MAX_NODES} nodes or {MAX_DEPS} "
                               f"dependencies in one file; import fewer steps")
        node = nodes[n.id] = _Node(n.type, deps, n.duration_micros)
        if n.type in (SEND, RECV, COLL):
            node.comm = _comm(path, rank, n_ranks, n, dropped, pgs)
            if node.comm is not None:
                budget.comm_nodes += 1
                if budget.comm_nodes > MAX_COMM_NODES:
                    raise NetwallError(f"more than {MAX_COMM_NODES} communication nodes over "
                                       f"all ranks; import fewer steps or ranks")
    for nid, node in nodes.items():
        for d in node.deps:
            if d not in nodes:
                raise NetwallError(f"{path}: node {nid} depends on node {d}, which the file "
                                   f"does not have")
    return _walk(path, nodes, dropped, budget)


def _walk(path: Path, nodes: dict[int, _Node], dropped: Counter, budget: _Budget
          ) -> list[_Comm]:
    """The communication nodes in dependency order, each given the compute before it (the
    longest chain since the last communication) and the communication nodes it waits for.

    A node's set of waits is shared with the nodes after it, not copied: a node with one
    waiting predecessor passes its set on; where sets meet, the largest is extended in place
    when no one else holds it (a chain of compute costs nothing per node), else copied, and
    every element copied counts against MAX_LINKS.
    """
    users = Counter(d for node in nodes.values() for d in node.deps)
    state: dict[int, tuple[float, set[int] | frozenset]] = {}  # gap and waits, while needed
    holders: Counter = Counter()  # id(set) -> entries of `state` or comms holding it
    comms: list[_Comm] = []
    for nid in _topological(path, nodes):
        node = nodes[nid]
        gap, waits = 0.0, _EMPTY
        if node.deps:
            gap = max(state[d][0] for d in node.deps)
            waits = _union([state[d][1] for d in node.deps], node.deps, users, holders, budget)
        for d in node.deps:
            users[d] -= 1
            if not users[d]:
                _release(state.pop(d)[1], holders)
        comm = node.comm
        if comm is not None:
            if gap > MAX_GAP_US:
                raise NetwallError(f"{path}: node {nid}: the compute before it takes {gap:g} "
                                   f"us, over a trace's limit of {MAX_GAP_US:g} (gap_us)")
            comm.gap_us, comm.after = gap, waits
            holders[id(waits)] += 1  # held for good: never extended in place again
            budget.link(len(waits))
            comms.append(comm)
            gap, waits = 0.0, {nid}
        elif node.type == COMP:
            gap += node.micros
            dropped["compute nodes (replayed as the gaps before the calls after them)"] += 1
        elif node.type in (MEM_LOAD, MEM_STORE):
            dropped["memory nodes (no network traffic; kept as links)"] += 1
        if users[nid]:
            state[nid] = (gap, waits)
            holders[id(waits)] += 1
    return comms


def _union(sets: list, deps: tuple[int, ...], users: Counter, holders: Counter,
           budget: _Budget) -> set[int] | frozenset:
    distinct = list({id(s): s for s in sets if s}.values())
    if not distinct:
        return _EMPTY
    if len(distinct) == 1:
        return distinct[0]
    big = max(distinct, key=len)
    # the largest set may be extended in place if only one entry holds it, and that entry
    # is a dependency of this node that no other node is waiting to read
    owner_done = any(s is big and users[d] == 1 for s, d in zip(sets, deps, strict=True))
    if isinstance(big, set) and holders[id(big)] == 1 and owner_done:
        out = big
    else:
        out = set(big)
        budget.link(len(big))
    for s in distinct:
        if s is not big:
            budget.link(len(s))
            out |= s
    return out


def _release(waits: set[int] | frozenset, holders: Counter) -> None:
    holders[id(waits)] -= 1
    if holders[id(waits)] <= 0:
        del holders[id(waits)]


def _comm(path: Path, rank: int, n_ranks: int, n, dropped: Counter,
          pgs: dict[str, set[int]]) -> _Comm | None:
    """A communication node as a _Comm, None for a dropped one."""
    where = f"{path}: node {n.id} ({n.name[:40] or 'unnamed'})"
    a = _attrs(n, where)
    pg = str(a.get("pg_name", ""))
    if n.type == COLL:
        pgs.setdefault(pg, set()).add(rank)
    size = a.get("comm_size")
    if not is_whole(size, 0):
        raise NetwallError(f"{where}: a communication node needs an integer comm_size >= 0")
    if size > MAX_CALL_BYTES:
        raise NetwallError(f"{where}: comm_size {size} is over a trace's limit of "
                           f"{MAX_CALL_BYTES} bytes")
    if n.duration_micros:
        dropped["measured communication times (the network replays them)"] += 1
    if size == 0:
        dropped["empty communication nodes (comm_size 0)"] += 1
        return None
    stream = next((str(a[k]) for k in ("stream", "pg_name") if a.get(k, "") != ""), "0")
    if n.type == COLL:
        if "comm_type" not in a:
            raise NetwallError(f"{where}: a collective node needs comm_type")
        if isinstance(a["comm_type"], str) or a["comm_type"] not in COLLECTIVES:
            raise NetwallError(f"{where}: unknown comm_type {a['comm_type']!r}")
        kind = COLLECTIVES[a["comm_type"]]
        if kind is None:
            dropped[f"{DROPPED_NAMES[a['comm_type']]} nodes (no netwall collective)"] += 1
            return None
        peer = -1
    else:
        key = "comm_dst" if n.type == SEND else "comm_src"
        peer = a.get(key)
        limit = n_ranks if n_ranks > 1 else MAX_GPUS
        if not is_whole(peer, 0, limit - 1):
            raise NetwallError(f"{where}: a {'send' if n.type == SEND else 'receive'} node "
                               f"needs {key}, a rank from 0 to {limit - 1}")
        kind = "send" if n.type == SEND else "recv"
    return _Comm(rank, n.id, kind, size, pg, peer, stream, 0.0)


def _topological(path: Path, nodes: dict[int, _Node]) -> list[int]:
    """Node ids with every node after its dependencies (lowest id first among the ready)."""
    waiting = {nid: len(node.deps) for nid, node in nodes.items()}
    users: dict[int, list[int]] = {}
    for nid, node in nodes.items():
        for d in node.deps:
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
    if len(out) != len(nodes):
        stuck = min(nid for nid, k in waiting.items() if k > 0)
        raise NetwallError(f"{path}: the dependencies form a cycle (through node {stuck})")
    return out


def _merge(ranks: list[list[_Comm]], members: dict[str, set[int]], n: int,
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


def _call(slot: tuple, nodes: list[_Comm], members: dict[str, set[int]], single: bool,
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
        return Call(id=0, collective="send", algorithm=None, bytes=aligned("send", first.size, 1),
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
    group = () if single else tuple(sorted(ranks))
    # whole float32 elements, per rank where the collective splits (with "all", the replay
    # checks the size against the topology's ranks)
    size = aligned(first.kind, first.size, len(group) or 1)
    if size != first.size:
        dropped["byte counts rounded up to whole float32 elements per rank"] += 1
    return Call(id=0, collective=first.kind, algorithm=None, bytes=size, group=group,
                comm=pg or default_comm(group), stream=first.stream, gap_us=gap)


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
