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

Logs are hostile input too: the file is streamed a line at a time (a line longer than
MAX_LINE is skipped whole), every number is checked against the trace's limits before
anything is sized by it (nranks <= MAX_GPUS, a call <= MAX_CALL_BYTES, at most MAX_CALLS
calls), no regular expression runs over more than a bounded part of a line, and grouping is
linear: each rank's handle is matched by commId, by its exact call sequence, or against at
most SCAN open communicators.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from foundation.errors import NetwallError
from foundation.inputs import MAX_LOG_BYTES, open_regular
from topologies.graph import MAX_GPUS
from traffic.collectives.base import PER_RANK, ROOTED
from traffic.nccl_calls import (
    COLLECTIVE_NAMES,
    DTYPE_SIZE,
    Comm,
    Entry,
    Instance,
    Op,
    calls_of,
    merge,
    missing,
)
from traffic.trace import MAX_CALL_BYTES, MAX_CALLS, MAX_LINE, Call, aligned, dump_imported

P2P_NAMES = ("Send", "Recv")
SCAN = 64  # open communicators a rank's handle without an exact match is compared with
HUGE = 1 << 64  # what a number of more than 19 digits reads as: over every limit

_ANCHOR = " NCCL INFO "
_HOST_END = re.compile(r"[\[\]:]")
_COLL = re.compile(r"(?P<op>[A-Za-z]+): opCount (?P<opcount>[0-9a-fA-F]+) (?P<rest>.*)")
_INIT = re.compile(r"\bcomm (?P<comm>\S+) rank (?P<rank>[0-9]+) nranks (?P<nranks>[0-9]+) ")
_COMMID = re.compile(r"\bcommId (0x[0-9a-fA-F]+)")
_INIT_ENDS = ("- Init COMPLETE", "- Init START")
_FIELD_SEP = re.compile(r"[\[\],=]")


def import_nccl_log(lines: Iterable[str], name: str, notes: list[str] | None = None) -> list[Call]:
    """Calls of an NCCL INFO log, one per (communicator, call) deduplicated across ranks.

    One-line notes on what was assumed or skipped are appended to `notes` when given.
    """
    notes = notes if notes is not None else []
    instances, seen_coll, skipped, reused = _read(lines, name)
    if not seen_coll:
        raise NetwallError(f"{name}: no NCCL collective lines ('NCCL INFO AllReduce: opCount "
                           f"...'); capture with NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,COLL")
    comms = _group(instances)
    total = max([c.nranks for c in comms] + [len({i.device for i in instances})])
    if total > MAX_GPUS:
        raise NetwallError(f"{name}: the log names {total} GPUs; netwall replays at most "
                           f"{MAX_GPUS}")
    world = _world_ranks(comms, total)
    if reused:
        notes.append(f"{reused} comm pointers initialised again after use: each "
                     f"initialisation is a communicator of its own")

    per_comm: list[tuple[str, tuple[int, ...], list[Entry]]] = []
    blocks: Counter = Counter()
    n_world = n_sub = n_calls = 0
    for comm in comms:
        if comm.nranks < 2:
            skipped["calls on single-rank communicators (no traffic)"] += (
                len(comm.sig) + len(comm.p2p))
            continue
        if not comm.sig and not comm.p2p:
            continue
        if comm.nranks == total:
            # the whole job, written out: replay on fewer GPUs is refused, never shrunk
            group: tuple[int, ...] = tuple(range(total))
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
                             f"assumed consecutive ranks {_ranks_text(group)}")
        notes += missing(comm, cname)
        per_comm.append((cname, group, calls_of(comm, cname, group, skipped)))
        n_calls += len(per_comm[-1][2])
        if n_calls > MAX_CALLS:
            raise NetwallError(f"{name}: more than {MAX_CALLS} calls, a trace's limit; "
                               f"import part of the log")

    calls = merge(per_comm, notes)
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
    with open_regular(path, "NCCL log", MAX_LOG_BYTES) as f:
        calls = import_nccl_log(_lines(f, path), str(path), notes)
    header = [f"netwall trace imported from NCCL log {Path(path).name}"] + notes
    return dump_imported(calls, header, str(path))


def _lines(f: BinaryIO, path: str | Path) -> Iterator[str]:
    """The file's lines, decoded (a stray non-UTF-8 byte replaced), read a line at a time;
    of a line longer than MAX_LINE only its first MAX_LINE + 1 characters are kept, so the
    reader sees it is too long without holding it."""
    total = 0
    while True:
        try:
            raw = f.readline(MAX_LINE + 1)
            total += len(raw)
            while len(raw) > MAX_LINE and not raw.endswith(b"\n"):  # drop the rest
                rest = f.readline(MAX_LINE + 1)
                total += len(rest)
                if not rest or rest.endswith(b"\n") or total > MAX_LOG_BYTES:
                    break
        except OSError as e:
            raise NetwallError(f"cannot read NCCL log {path}: {e.strerror or e}") from None
        if not raw:
            return
        if total > MAX_LOG_BYTES:
            raise NetwallError(f"NCCL log {path} is larger than {MAX_LOG_BYTES >> 20} MiB")
        if b"\0" in raw:
            raise NetwallError(f"NCCL log {path} contains NUL bytes; is it a binary file?")
        yield from raw.decode("utf-8", "replace").splitlines()


def _number(text: str | None) -> int | None:
    """A count, rank or id as NCCL prints it (ASCII decimal digits), or None. More than 19
    digits read as HUGE, over every limit, without converting them."""
    if text is None or not text.isascii() or not text.isdigit():
        return None
    return HUGE if len(text) > 19 else int(text)


def _prefix(raw: str) -> tuple[str, str, str, str] | None:
    """(host, pid, device, message) of 'host:pid:tid [dev] NCCL INFO message', after any
    launcher prefix; None for other lines. Linear: no pattern is searched for."""
    at = raw.find(_ANCHOR)
    if at < 0:
        return None
    head = raw[:at]
    bracket = head.rfind(" [")
    if bracket < 0 or not head.endswith("]") or _number(head[bracket + 2:-1]) is None:
        return None
    words = head[:bracket].rsplit(None, 1)
    parts = words[-1].rsplit(":", 2) if words else []
    if len(parts) != 3 or _number(parts[1]) is None or _number(parts[2]) is None:
        return None
    host = _HOST_END.split(parts[0])[-1]
    if not host:
        return None
    return host, parts[1], head[bracket + 2:-1], raw[at + len(_ANCHOR):].rstrip()


def _init(msg: str) -> tuple[str, int, int, str | None] | None:
    """(comm, rank, nranks, commId) of an INIT line's message, else None."""
    end = max(msg.rfind(e) for e in _INIT_ENDS)
    if end < 0:
        return None
    m = _INIT.search(msg, 0, end)
    if m is None:
        return None
    commid = _COMMID.search(msg, m.end() - 1, end)
    return (m["comm"], _number(m["rank"]) or 0, _number(m["nranks"]) or 0,
            commid[1] if commid else None)


def _read(lines: Iterable[str], name: str) -> tuple[list[Instance], bool, Counter, int]:
    """Each rank's handles of each communicator, in order of first line; whether any
    collective line was seen; what was skipped; how many comm pointers were reused."""
    instances: list[Instance] = []
    current: dict[tuple[str, str, str], Instance] = {}  # (host, pid, comm) -> live handle
    inits: dict[tuple[str, str, str], tuple[int, int, str | None]] = {}  # not yet applied
    skipped: Counter = Counter()
    streams: dict[str, str] = {}  # one copy of each stream address
    seen_coll = False
    reused = 0
    opindex: Counter = Counter()  # repeats of an opCount on a handle, past the first
    for lineno, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE:
            skipped[f"lines longer than {MAX_LINE} characters"] += 1
            continue
        head = _prefix(raw)
        if head is None:
            continue
        host, pid, dev, msg = head
        init = _init(msg)
        if init is not None:
            comm_ptr, rank, nranks, commid = init
            if not rank < nranks <= MAX_GPUS:
                skipped[f"INIT lines whose rank is not below nranks, or nranks over "
                        f"{MAX_GPUS}"] += 1
                continue
            key = (host, pid, comm_ptr)
            if key in current:  # the pointer is initialised again: a new communicator
                del current[key]
                reused += 1
            inits[key] = (rank, nranks, commid)
            continue
        coll = _COLL.fullmatch(msg)
        if not coll:
            continue
        seen_coll = True
        fields = _fields(coll["rest"])
        op = coll["op"]
        count, dtype = _number(fields.get("count")), _number(fields.get("datatype"))
        nranks, comm_ptr = _number(fields.get("nranks")), fields.get("comm")
        root = _number(fields.get("root", fields.get("peer", "0")))
        if (None in (count, dtype, nranks, root) or comm_ptr is None or not nranks
                or len(coll["opcount"]) > 16):
            skipped["collective lines in an unknown format"] += 1
            continue
        if op not in COLLECTIVE_NAMES and op not in P2P_NAMES:
            skipped[f"{op} calls (not a netwall collective)"] += 1
            continue
        if dtype not in DTYPE_SIZE:
            skipped[f"calls with unknown datatype {dtype}"] += 1
            continue
        if nranks > MAX_GPUS:
            skipped[f"calls on communicators of more than {MAX_GPUS} ranks (netwall's "
                    f"limit)"] += 1
            continue
        if count == 0:
            continue  # NCCL discards empty collectives too
        kind = "p2p" if op in P2P_NAMES else "coll"
        if root >= nranks and (kind == "p2p" or COLLECTIVE_NAMES[op] in ROOTED):
            skipped["calls with a root or peer outside their communicator"] += 1
            continue
        size = count * DTYPE_SIZE[dtype]
        if kind == "coll" and COLLECTIVE_NAMES[op] in PER_RANK:
            size *= nranks
        if size > MAX_CALL_BYTES:
            skipped[f"calls of more than {MAX_CALL_BYTES >> 40} TiB (a trace's limit)"] += 1
            continue
        whole = aligned(COLLECTIVE_NAMES.get(op, "send"), size, nranks)
        if whole != size:
            skipped["byte counts rounded up to whole float32 elements per rank (kept)"] += 1
        key = (host, pid, comm_ptr)
        inst = current.get(key)
        if inst is not None and inst.nranks != nranks:  # reused without INIT lines
            reused += 1
            inst = None
        if inst is None:
            inst = current[key] = Instance((host, pid, dev), nranks, lineno)
            instances.append(inst)
            rank_init = inits.pop(key, None)
            if rank_init is not None and rank_init[1] == nranks:
                inst.rank, inst.commid = rank_init[0], rank_init[2]
        inst.calls += 1
        if inst.calls > MAX_CALLS:
            raise NetwallError(f"{name}:{lineno}: one rank logged more than {MAX_CALLS} calls "
                               f"on one communicator, a trace's limit; import part of the log")
        opcount = int(coll["opcount"], 16)
        if kind == "p2p":
            index = len(inst.p2p.get(opcount, ()))
        elif (opcount, 0) in inst.colls:  # a repeat (a group; NCCL 2.27+'s opCount 0)
            opindex[(id(inst), opcount)] += 1
            index = opindex[(id(inst), opcount)]
        else:
            index = 0
        stream = fields.get("stream", "?")
        entry = Op(op, opcount, index, whole, dtype, root, streams.setdefault(stream, stream),
                   lineno)
        if kind == "p2p":
            inst.p2p.setdefault(opcount, []).append(entry)
            if nranks == 2 and inst.rank is None:
                inst.rank = 1 - root  # in a pair, the peer gives away the rank
        else:
            inst.colls[(opcount, index)] = entry
    return instances, seen_coll, skipped, reused


def _fields(rest: str) -> dict[str, str]:
    """'count 5 datatype 7 comm 0x1 [nranks=8, localRanks=2] stream=0x2' as key -> value."""
    tokens = _FIELD_SEP.sub(" ", rest).split()
    return {tokens[i]: tokens[i + 1] for i in range(0, len(tokens) - 1, 2)}


def _group(instances: list[Instance]) -> list[Comm]:
    """Collect the per-rank handles into communicators.

    Same commId (from INIT lines) means same communicator. Otherwise a handle joins the first
    open communicator of its size that does not already hold its rank and agrees with it on
    every call both logged (same opCount: same collective, size, datatype and root), looked
    for in this order: one whose calls are exactly its own (every rank's whole log), one that
    logged its first call (an excerpt), one of the first open ones of its size (no call in
    common). Communicators that log identical call sequences are indistinguishable; they are
    told apart only by filling up. Each handle costs a bounded number of comparisons (SCAN),
    so grouping is linear in the log; a handle that finds no communicator within them begins
    its own, and the notes then name the ranks missing from both.
    """
    return _Grouping().run(instances)


class _Grouping:
    """The communicators found so far, indexed three ways (see _group). Each index is a list
    in creation order with a cursor per kind of handle (rank, with or without commId) that
    moves past, once and for all, the communicators such a handle can never join: full ones,
    ones holding its rank, ones with a commId (when it has one), ones whose calls changed."""

    def __init__(self) -> None:
        self.comms: list[Comm] = []
        self.by_id: dict[str, Comm] = {}
        self.index: dict[tuple, list[Comm]] = {}  # ("exact", n, fingerprint), ("call", n, k,
        self.cursor: Counter = Counter()  # v) or ("size", n) -> comms; (key, rank, id?) -> i

    def run(self, instances: list[Instance]) -> list[Comm]:
        for inst in instances:
            sig = _signature(inst)
            n = inst.nranks
            target = self.by_id.get(inst.commid) if inst.commid else None
            if target is not None and not _fits(target, inst, sig):
                target = None
            if target is None:
                exact = ("exact", n, _fingerprint(sig))
                target = self._first(exact, inst, sig, 1)
            if target is None and sig:
                first = min(sig)
                target = self._first(("call", n, first, sig[first]), inst, sig, SCAN)
            if target is None:
                target = self._first(("size", n), inst, sig, SCAN // 8)
            if target is None:
                target = Comm(n, len(self.comms))
                self.comms.append(target)
                self.index.setdefault(("size", n), []).append(target)
            self._join(target, inst, sig)
        return self.comms

    def _first(self, key: tuple, inst: Instance, sig: dict, limit: int) -> Comm | None:
        """The first communicator of index `key` that `inst` fits, among `limit` past the
        cursor."""
        bucket = self.index.get(key, [])
        where = (key, inst.rank, inst.commid is not None)
        i = self.cursor[where]
        while i < len(bucket) and _never(bucket[i], inst, key):
            i += 1
        self.cursor[where] = i
        for c in bucket[i:i + limit]:
            if not _never(c, inst, key) and _fits(c, inst, sig):
                return c
        return None

    def _join(self, comm: Comm, inst: Instance, sig: dict) -> None:
        comm.members.append(inst)
        if inst.rank is not None:
            comm.ranks.add(inst.rank)
        comm.commid = comm.commid or inst.commid
        if comm.commid:
            self.by_id.setdefault(comm.commid, comm)
        new = {k: v for k, v in sig.items() if k not in comm.sig}
        if new or len(comm.members) == 1:
            comm.sig.update(new)
            comm.fingerprint = (comm.fingerprint + _fingerprint(new)) % HUGE
            self.index.setdefault(("exact", comm.nranks, comm.fingerprint), []).append(comm)
            for k, v in new.items():
                self.index.setdefault(("call", comm.nranks, k, v), []).append(comm)
        comm.p2p.update(inst.p2p)


def _never(c: Comm, inst: Instance, key: tuple) -> bool:
    """Can `inst` never join `c` (for good: these only become true)?"""
    return (len(c.members) >= c.nranks or (inst.rank is not None and inst.rank in c.ranks)
            or bool(inst.commid and c.commid) or (key[0] == "exact" and c.fingerprint != key[2]))


def _signature(inst: Instance) -> dict:
    return {k: (o.name, o.size, o.dtype, o.root) for k, o in inst.colls.items()}


def _fingerprint(sig: dict) -> int:
    """A hash of a signature that grows with it: the sum of its items' hashes."""
    return sum(hash(item) for item in sig.items()) % HUGE


def _fits(c: Comm, inst: Instance, sig: dict) -> bool:
    return (c.nranks == inst.nranks and len(c.members) < c.nranks
            and not (inst.commid and c.commid and inst.commid != c.commid)
            and not (inst.rank is not None and inst.rank in c.ranks)
            and all(c.sig.get(k, v) == v for k, v in sig.items()))


def _ranks_text(group: tuple[int, ...]) -> str:
    return str(list(group)) if len(group) <= 8 else f"[{group[0]}, {group[1]}, ..., {group[-1]}]"


def _world_ranks(comms: list[Comm], total: int) -> dict[tuple, int]:
    """GPU (host, pid, device) -> global rank, from a job-wide communicator's INIT lines."""
    world: dict[tuple, int] = {}
    for comm in comms:
        if comm.nranks == total:
            for m in comm.members:
                if m.rank is not None:
                    world.setdefault(m.device, m.rank)
    return world


def _sub_group(comm: Comm, world: dict[tuple, int]) -> tuple[int, ...] | None:
    by_rank = {m.rank: m for m in comm.members if m.rank is not None}
    if sorted(by_rank) != list(range(comm.nranks)):
        return None
    group = tuple(world.get(by_rank[i].device, -1) for i in range(comm.nranks))
    if -1 in group or len(set(group)) != len(group):
        return None
    return group


