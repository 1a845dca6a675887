"""Replay traces: a sequence of collective calls as plain data, read from and written to JSONL.

One JSON object per line describes one collective call (see docs/replay.md). The format is
what `netwall replay` runs, what `traffic.workloads` generates and what `traffic.nccl_log`
produces from NCCL's own debug log. Everything here is pure: no network, no root.

Semantics, per rank: calls on the same `stream` run one after another, each preceded by
`gap_us` of (emulated) compute, except that a `grouped` call starts with the call before it
(ncclGroupStart/End); calls on different streams overlap; a call also waits for every call
named in `after` that this rank takes part in. A `send` is point-to-point: its `group` is the
communicator, `root` the sender's and `peer` the receiver's local rank, and only those two
take part. `step` groups calls into training steps for per-step reporting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from foundation.errors import NetwallError
from foundation.inputs import MAX_LOG_BYTES, cut, is_whole, read_text, shown
from topologies.graph import MAX_GPUS
from traffic.collectives.base import COLLECTIVES, PER_RANK, ROOTED

# The collectives a trace may name are the schedules' (netwall's names; nccl-tests' size
# convention for each).

KEYS = ("id", "collective", "algorithm", "bytes", "group", "comm", "stream", "gap_us", "after",
        "root", "peer", "grouped", "step")
REQUIRED = ("collective", "bytes", "group")
# Bounds, checked as the trace is read (docs/user-guide.md): ids, ranks and steps are any
# integer up to MAX_INT; a call moves at most a TiB and waits at most an hour first.
MAX_INT = 2**62
MAX_CALL_BYTES = 1 << 40
MAX_GAP_US = 3600e6
MAX_CALLS = 100_000
MAX_LINE = 1 << 20  # characters of one line (a call over 1024 ranks takes about 6 KB)
MAX_NAME = 256  # characters of a comm or stream name an importer writes


@dataclass(frozen=True)
class Call:
    """One collective call of a trace.

    `group` holds the communicator's global ranks in communicator order (local rank i is
    group[i]); the empty tuple means "all ranks" until `resolve` fills it in.
    """

    id: int  # unique in the trace, >= 0
    collective: str  # one of COLLECTIVES
    algorithm: str | None  # None = the collective's default
    bytes: int  # nccl-tests' size convention for that collective
    group: tuple[int, ...]  # global ranks, communicator order; () = all ranks (unresolved)
    comm: str  # communicator name, e.g. "dp0", "tp3"
    stream: str  # same stream: one after another (per rank); different streams overlap
    gap_us: float = 0.0  # compute time (real microseconds) the stream spends before the call
    after: tuple[int, ...] = ()  # ids of earlier calls that must finish (on this rank) first
    root: int = 0  # local rank of the root (broadcast, reduce) or of the sender (send)
    step: int = 0  # training step it belongs to
    peer: int = 1  # local rank of the receiver (send)
    grouped: bool = False  # starts with the call before it on its stream, on each of its ranks


def takers(call: Call) -> tuple[int, ...]:
    """The global ranks that take part in a resolved call, in the order its schedule's local
    ranks run: the whole group, or for a send its sender and its receiver."""
    if call.collective == "send":
        return call.group[call.root], call.group[call.peer]
    return call.group


def modelled_span_s(calls: Sequence[Call], times_s: dict[int, float],
                    gaps: bool = True) -> float:
    """How long a resolved trace takes if each call takes `times_s[id]` (real seconds) and
    nothing else slows it: calls on one stream of a rank one after another, after their
    compute gap (none without `gaps`) and their `after` calls, a grouped call with the one
    before it, as the agents run them (traffic.machine). Overlapping streams share this
    span, so what a host must keep up with is the trace's work over it, not over the calls'
    sum."""
    free: dict[tuple[int, str], float] = {}  # when a rank's stream is next free
    began: dict[tuple[int, str], float] = {}  # when its last call began (a group's start)
    ends: dict[int, float] = {}
    for call in calls:
        lanes = [(rank, call.stream) for rank in takers(call)]
        if call.grouped:
            start = max(began.get(lane, 0.0) for lane in lanes)
        else:
            start = max([free.get(lane, 0.0) for lane in lanes] +
                        [ends[a] for a in call.after if a in ends]) + gaps * call.gap_us * 1e-6
        ends[call.id] = end = start + times_s[call.id]
        for lane in lanes:
            began[lane] = start
            free[lane] = max(free.get(lane, 0.0), end)
    return max(ends.values(), default=0.0)


def default_comm(group: Sequence[int]) -> str:
    """The communicator name used when a line gives none: "world" or "g0-1-2-3"."""
    return "world" if not group else "g" + "-".join(str(r) for r in group)


def load_trace(path: str | Path) -> list[Call]:
    """Read and validate a JSONL trace file (groups "all" stay unresolved: see `resolve`)."""
    return parse_trace(read_text(path, "trace", MAX_LOG_BYTES).splitlines(), str(path))


def parse_trace(lines: Iterable[str], name: str) -> list[Call]:
    """Parse and validate JSONL lines; every error is one line naming `name`, line and key."""
    calls: list[Call] = []
    seen: dict[int, int] = {}  # id -> line number
    comms: dict[str, tuple[tuple[int, ...], int]] = {}  # comm -> (group, first line)
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{name}:{lineno}"
        if len(text) > MAX_LINE:
            raise NetwallError(f"{where}: longer than {MAX_LINE} characters")
        call = _parse_line(text, where, default_id=len(calls))
        if call.id in seen:
            raise NetwallError(f"{where}: key 'id': {call.id} already used on line {seen[call.id]}")
        for dep in call.after:
            if dep not in seen:
                raise NetwallError(f"{where}: key 'after': {dep} is not the id of an earlier call")
        if call.comm in comms and comms[call.comm][0] != call.group:
            group, first = comms[call.comm]
            raise NetwallError(f"{where}: key 'group': comm {call.comm!r} had group "
                               f"{_group_text(group)} on line {first}, "
                               f"here {_group_text(call.group)}")
        comms.setdefault(call.comm, (call.group, lineno))
        seen[call.id] = lineno
        calls.append(call)
        if len(calls) > MAX_CALLS:
            raise NetwallError(f"{where}: more than {MAX_CALLS} calls; split the trace")
    if not calls:
        raise NetwallError(f"{name}: no calls (every line is blank or a comment)")
    return calls


def _group_text(group: tuple[int, ...]) -> str:
    return '"all"' if not group else json.dumps(list(group))


def _parse_line(text: str, where: str, default_id: int) -> Call:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise NetwallError(f"{where}: bad JSON: {e.msg} (column {e.colno})") from None
    except ValueError as e:  # an integer of more digits than Python converts
        raise NetwallError(f"{where}: bad JSON: {cut(str(e))}") from None
    except RecursionError:
        raise NetwallError(f"{where}: bad JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise NetwallError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in KEYS:
            raise NetwallError(f"{where}: unknown key {shown(key)} (known: {', '.join(KEYS)})")
    for key in REQUIRED:
        if key not in obj:
            raise NetwallError(f"{where}: missing key {key!r}")

    def integer(key: str, default: int, minimum: int = 0, maximum: int = MAX_INT) -> int:
        value = obj.get(key, default)
        if not is_whole(value):
            raise NetwallError(f"{where}: key {key!r}: expected an integer, "
                               f"got {_json(value)}")
        if not minimum <= value <= maximum:
            raise NetwallError(f"{where}: key {key!r}: must be {minimum} to {maximum}, "
                               f"got {cut(str(value))}")
        return value

    def string(key: str, default: str | None) -> str | None:
        value = obj.get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value:
            raise NetwallError(f"{where}: key {key!r}: expected a non-empty string, "
                               f"got {_json(value)}")
        return value

    call_id = integer("id", default_id)
    collective = string("collective", "")
    if collective not in COLLECTIVES:
        raise NetwallError(f"{where}: key 'collective': unknown collective {shown(collective)} "
                           f"(known: {', '.join(COLLECTIVES)})")
    algorithm = string("algorithm", None)
    nbytes = integer("bytes", 0, minimum=1, maximum=MAX_CALL_BYTES)
    group = _parse_group(obj["group"], where)
    comm = string("comm", default_comm(group))
    stream = obj.get("stream", "0")
    if is_whole(stream):  # "stream": 1 is as clear as "stream": "1"
        stream = str(stream)
    if not isinstance(stream, str) or not stream:
        raise NetwallError(f"{where}: key 'stream': expected a non-empty string, "
                           f"got {_json(stream)}")
    gap = obj.get("gap_us", 0.0)
    if not isinstance(gap, (int, float)) or isinstance(gap, bool) or not math.isfinite(gap):
        raise NetwallError(f"{where}: key 'gap_us': expected a number, got {_json(gap)}")
    if not 0 <= gap <= MAX_GAP_US:
        raise NetwallError(f"{where}: key 'gap_us': must be 0 to {MAX_GAP_US:g}, got {gap:g}")
    after = obj.get("after", [])
    if not isinstance(after, list) or not all(is_whole(a) for a in after):
        raise NetwallError(f"{where}: key 'after': expected a list of call ids, "
                           f"got {_json(after)}")
    if len(set(after)) != len(after):
        raise NetwallError(f"{where}: key 'after': an id is listed twice")
    if call_id in after:
        raise NetwallError(f"{where}: key 'after': a call cannot wait for itself")
    root = integer("root", 0)
    if group and root >= len(group):
        raise NetwallError(f"{where}: key 'root': local rank {root} is outside a group of "
                           f"{len(group)}")
    if collective == "send":
        if "peer" not in obj:
            raise NetwallError(f"{where}: missing key 'peer' (a send's receiver, a local rank)")
        peer = integer("peer", 1)
        if group and peer >= len(group):
            raise NetwallError(f"{where}: key 'peer': local rank {peer} is outside a group of "
                               f"{len(group)}")
        if peer == root:
            raise NetwallError(f"{where}: key 'peer': a send's receiver must differ from its "
                               f"sender (root {root})")
    elif "peer" in obj:
        raise NetwallError(f"{where}: key 'peer' is for a send only, not {collective}")
    else:
        peer = 1
    grouped = obj.get("grouped", False)
    if not isinstance(grouped, bool):
        raise NetwallError(f"{where}: key 'grouped': expected true or false, got {_json(grouped)}")
    step = integer("step", 0)
    return Call(id=call_id, collective=collective, algorithm=algorithm, bytes=nbytes,
                group=group, comm=comm, stream=stream, gap_us=float(gap), after=tuple(after),
                root=root, step=step, peer=peer, grouped=grouped)


def _parse_group(value: object, where: str) -> tuple[int, ...]:
    if value == "all":
        return ()
    if not isinstance(value, list) or not all(is_whole(r) for r in value):
        raise NetwallError(f"{where}: key 'group': expected \"all\" or a list of ranks, "
                           f"got {_json(value)}")
    if not 2 <= len(value) <= MAX_GPUS:
        raise NetwallError(f"{where}: key 'group': a collective needs 2 to {MAX_GPUS} ranks, "
                           f"got {_json(value)}")
    if any(r < 0 for r in value):
        raise NetwallError(f"{where}: key 'group': negative rank in {_json(value)}")
    if len(set(value)) != len(value):
        raise NetwallError(f"{where}: key 'group': rank listed twice in {_json(value)}")
    return tuple(value)


def _json(value: object) -> str:
    """A JSON value as an error line shows it."""
    return cut(json.dumps(value))



def resolve(calls: Sequence[Call], ranks: int) -> list[Call]:
    """Bind a trace to a topology of `ranks` ranks: "all" becomes 0..ranks-1; ranks checked."""
    if ranks < 2:
        raise NetwallError(f"a trace needs a topology of at least 2 ranks, got {ranks}")
    out = []
    for call in calls:
        group = call.group or tuple(range(ranks))
        bad = [r for r in group if r >= ranks]
        if bad:
            raise NetwallError(f"call {call.id}: rank {bad[0]} of its group is outside the "
                               f"topology's {ranks} ranks (0..{ranks - 1})")
        if call.root >= len(group):
            raise NetwallError(f"call {call.id}: root {call.root} is outside its group of "
                               f"{len(group)}")
        if call.collective == "send" and call.peer >= len(group):
            raise NetwallError(f"call {call.id}: peer {call.peer} is outside its group of "
                               f"{len(group)}")
        out.append(replace(call, group=group) if group != call.group else call)
    return out


def call_to_dict(call: Call) -> dict:
    """The JSON object of one call; keys at their default are left out (id, collective,
    bytes, group, comm and stream are always written)."""
    obj: dict = {"id": call.id, "collective": call.collective}
    if call.algorithm is not None:
        obj["algorithm"] = call.algorithm
    obj["bytes"] = call.bytes
    obj["group"] = list(call.group) if call.group else "all"
    obj["comm"] = call.comm
    obj["stream"] = call.stream
    if call.gap_us:
        obj["gap_us"] = call.gap_us
    if call.after:
        obj["after"] = list(call.after)
    if call.root or call.collective in (*ROOTED, "send"):
        obj["root"] = call.root
    if call.collective == "send":
        obj["peer"] = call.peer
    if call.grouped:
        obj["grouped"] = True
    if call.step:
        obj["step"] = call.step
    return obj


def dump_trace(calls: Iterable[Call], header: Iterable[str] = ()) -> str:
    """JSONL text of `calls` (one object per line), after optional '# ' comment lines."""
    out = [f"# {line}" if line else "#" for line in header]
    out += [json.dumps(call_to_dict(c)) for c in calls]
    return "\n".join(out) + "\n" if out else ""


def aligned(collective: str, size: int, ranks: int) -> int:
    """`size` rounded up to what replay runs: whole float32 elements, per rank where the
    collective splits its buffer over `ranks` (importers' sizes need not be)."""
    unit = 4 * (ranks if collective in PER_RANK else 1)
    return max(unit, -(-size // unit) * unit)


def dump_imported(calls: Sequence[Call], header: Iterable[str], name: str) -> str:
    """An importer's JSONL output, read back by `parse_trace` before it is handed out (what an
    importer writes, replay accepts) and refused in one line where it would break a limit."""
    text = dump_trace(calls, header)
    if len(text.encode()) > MAX_LOG_BYTES:
        raise NetwallError(f"{name}: the trace would be larger than {MAX_LOG_BYTES >> 20} MiB, "
                           f"what replay reads; import part of it")
    ranks = max((r for c in calls for r in c.group), default=0) + 1
    if ranks > MAX_GPUS:
        raise NetwallError(f"{name}: the trace would need {ranks} ranks; netwall replays at "
                           f"most {MAX_GPUS}")
    parse_trace(text.splitlines(), name)
    return text
