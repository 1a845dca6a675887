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

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from foundation.errors import NetwallError
from foundation.inputs import MAX_LOG_BYTES, read_text
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
from traffic.trace import Call, dump_trace

P2P_NAMES = ("Send", "Recv")

_PREFIX = re.compile(r"(?P<host>[^\s:\[\]]+):(?P<pid>\d+):(?P<tid>\d+) \[(?P<dev>\d+)\] "
                     r"NCCL INFO (?P<msg>.*?)\s*$")
_COLL = re.compile(r"^(?P<op>[A-Za-z]+): opCount (?P<opcount>[0-9a-fA-F]+) (?P<rest>.*)$")
_INIT = re.compile(r"\bcomm (?P<comm>\S+) rank (?P<rank>\d+) nranks (?P<nranks>\d+) "
                   r"(?:.*\bcommId (?P<commid>0x[0-9a-fA-F]+))?.*- Init (?:COMPLETE|START)")
_FIELD_SEP = re.compile(r"[\[\],=]")


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

    per_comm: list[tuple[str, tuple[int, ...], list[Entry]]] = []
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
        notes += missing(comm, cname)
        per_comm.append((cname, group, calls_of(comm, cname, group, skipped)))

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
    text = read_text(path, "NCCL log", MAX_LOG_BYTES, errors="replace")
    calls = import_nccl_log(text.splitlines(), str(path), notes)
    header = [f"netwall trace imported from NCCL log {Path(path).name}"] + notes
    return dump_trace(calls, header)


def _read(lines: Iterable[str]) -> tuple[dict, bool, Counter]:
    instances: dict[tuple[str, str, str], Instance] = {}
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
            inst = instances[key] = Instance(key, (host, pid, dev), nranks, lineno)
        opcount = int(coll["opcount"], 16)
        kind = "p2p" if op in P2P_NAMES else "coll"
        index = opindex[(key, opcount, kind)]
        opindex[(key, opcount, kind)] += 1
        entry = Op(op, opcount, index, count, dtype, root, fields.get("stream", "?"), lineno)
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


def _signature(inst: Instance) -> dict:
    return {k: (o.name, o.count, o.dtype, o.root) for k, o in inst.colls.items()}


def _group(instances: dict) -> list[Comm]:
    """Collect the per-rank instances into communicators.

    Same commId (from INIT lines) means same communicator. Otherwise an instance joins the
    first communicator of its size that is not yet full, does not already hold its rank, and
    agrees with it on every call both logged (same opCount: same collective, count, datatype
    and root). Communicators that log identical call sequences are indistinguishable; they are
    told apart only by filling up.
    """
    comms: list[Comm] = []
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
            target = Comm(inst.nranks)
            comms.append(target)
        target.members.append(inst)
        target.commid = target.commid or inst.commid
        target.sig.update(sig)
        target.p2p.update(inst.p2p)
    return comms


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


