"""The controller-agent protocol, declared once: every message on the agents' pipes.

The launcher (traffic.launcher) and the agents (traffic.agent) talk in JSON lines. As the
frame format is one scapy layer (traffic.header), each message is one dataclass here that
both sides import: a field is named in one place and read by name on both ends, and a line
with a field missing, unknown or of the wrong type fails with a NetwallError naming it,
rather than being misread. Moves, which may be many, travel as compact lists in their
fields' order; only this module packs and unpacks them.

    controller -> agent           agent -> controller
    Setup (once, at its start)    Ready
    Load (a program)              Loaded
    Go (run it)                   Report, or Failure (a rank made no progress in time)
    Exit

A line is a JSON object: {"msg": <class name in lower case>, <field>: <value>, ...}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from operator import attrgetter
from typing import Any, get_args, get_origin, get_type_hints

from foundation.errors import NetwallError


@dataclass(frozen=True)
class Peer:
    """How one rank addresses frames to another."""

    iface: str  # the egress interface
    src_mac: str
    dst_mac: str  # the next hop's
    src_ip: str
    dst_ip: str
    link: int = -1  # the link its frames leave on (-1: unknown, so not paced on leaving)


@dataclass(frozen=True)
class Move:
    """One transfer of a call at one step, in global ranks (a list on the wire)."""

    step: int
    src: int
    dst: int
    src_offset: int  # bytes into the sender's buffer
    dst_offset: int  # bytes into the receiver's buffer
    length: int
    reduce: bool  # add into the receiver's buffer (True) or overwrite it (False)


@dataclass(frozen=True)
class CallSpec:
    """What one rank needs of a collective call: when to run it, its moves, how to check it."""

    id: int  # operation number, unique within the emulation
    comm: int  # communicator
    stream: str
    gap_s: float  # (dilated) compute seconds before the call starts
    start_s: float  # (dilated) endpoint cost once per call: launch and protocol base latency
    step_s: float  # (dilated) endpoint latency before each step's sends
    efficiency: float  # the protocol's data bytes per wire byte (the rest is padding)
    reduce_s: float  # (dilated) seconds per byte a step reduces, at least
    after: tuple[int, ...]  # calls that must end first
    buffer: str  # the stream's buffer it works in
    init: bool  # reset the buffer to the call's inputs first
    check: bool  # verify the result afterwards
    collective: str
    ranks: int
    local: int  # this rank's place in the call's group
    root: int
    size: int
    dtype: str  # nccl-tests' datatype name (traffic.schedule.DTYPES)
    op: str  # reduction op (traffic.schedule.OPS), "none" for collectives without one
    steps: int
    moves: tuple[Move, ...]  # those this rank sends or receives
    grouped: bool = False  # starts once the call before it on its stream has started


@dataclass(frozen=True)
class Route:
    """How frames from one other rank reach this one (emulator.models.alphabeta.routes_to):
    the agent holds them for the link delay (real s; 0 where netem delays them) and paces
    them at the route's slowest rate and at the rate of the link they arrive on."""

    delay_s: float
    rate_bps: float
    link: int  # the link frames arrive on, shared by every sender behind it
    link_rate_bps: float
    # Every link of the route is one an agent paces: its first leaves the sender, its last
    # arrives here. Then the order frames were sent in is the order a wire delivers them in;
    # past a link between switches (paced by the kernel alone) it need not be.
    paced: bool = False


@dataclass(frozen=True)
class Setup:
    rank: int
    ranks: int  # agents in the emulation, every GPU's and every NVLS switch's (traffic.gaps)
    peers: dict[int, Peer]  # every other rank
    mtu: int
    rto: float  # retransmission timeout, s
    sndbuf: int  # data sockets' send buffer per link, bytes
    routes: dict[int, Route]  # from every other rank

    def send_buffer(self, iface: str) -> int:
        """The data socket's send buffer on `iface`: `sndbuf` for each link its frames leave
        on. An NVLS switch's agent sends on the bridge's own port, which reaches every GPU's
        link; one link's share for all of them kept each link about two frames queued, so
        links fell behind the wire by a share of each slice (a 64 MiB all-reduce read 20-27%
        slow at dilation 5000)."""
        return self.sndbuf * max(1, len({p.link for p in self.peers.values() if p.iface == iface}))


@dataclass(frozen=True)
class Ready:
    rank: int


@dataclass(frozen=True)
class Load:
    calls: tuple[CallSpec, ...]


@dataclass(frozen=True)
class Loaded:
    pass


@dataclass(frozen=True)
class Go:
    start: float  # CLOCK_MONOTONIC instant every rank starts at
    timeout: float  # longest time without progress, s
    rto: float  # retransmission timeout at this program's dilation, s
    dilation: float  # what the held link delays are multiplied by
    #: Skip compute gaps no traffic overlaps (traffic.gaps): the agents of one host jump
    #: their shared clock over them. Inert where ranks do not share one (several hosts).
    skip: bool = False
    #: From every other rank, as the links are at the program's start where a fault has
    #: slowed one (lost channels): frames are paced at the rate a link has, never faster.
    #: Empty: Setup's.
    routes: dict[int, Route] = field(default_factory=dict)


@dataclass(slots=True)
class AgentStats:
    """An agent's frame counters for one program (the machine counts into them as it goes);
    the launcher sums them over ranks."""

    frames_sent: int = 0  # data frames handed to the kernel (or lost to a dead link)
    bytes_sent: int = 0  # their data bytes
    frames_received: int = 0
    retransmitted_frames: int = 0
    retransmitted_bytes: int = 0
    duplicates: int = 0  # data frames that arrived again, or for a step already complete
    nacks_sent: int = 0
    acks_sent: int = 0
    queue_full: int = 0  # ENOBUFS: the qdisc's queue was full, the frame offered again
    link_down: int = 0  # frames sent into a link that was down

    def __add__(self, other: AgentStats) -> AgentStats:
        return AgentStats(*(getattr(self, f.name) + getattr(other, f.name)
                            for f in fields(AgentStats)))


@dataclass(frozen=True)
class Report:
    calls: dict[int, tuple[float, float]]  # call id -> (start, end)
    checks: dict[int, bool]  # call id -> result right (calls with check only)
    stats: AgentStats
    skipped_s: float = 0.0  # wall seconds the shared clock jumped while the rank ran


@dataclass(frozen=True)
class Failure:
    error: str


@dataclass(frozen=True)
class Exit:
    pass


Message = Setup | Ready | Load | Loaded | Go | Report | Failure | Exit
MESSAGES: dict[str, type] = {cls.__name__.lower(): cls for cls in get_args(Message)}
PACKED = (Move, Route)  # dataclasses that travel as lists of their fields in order


def encode(message: Message) -> str:
    """A message as one JSON line (without the newline)."""
    return json.dumps({"msg": type(message).__name__.lower(), **to_wire(message)})


def decode(line: str | bytes, *expected: type) -> Message:
    """The message on a line; a NetwallError unless it is well formed and one of `expected`
    (any message when none is named)."""
    try:
        data = json.loads(line)
    except ValueError as e:
        raise NetwallError(f"protocol: not a JSON line ({e}): {line[:80]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("msg"), str) \
            or data["msg"] not in MESSAGES:
        raise NetwallError(f"protocol: not a known message: {str(line)[:80]}")
    kind = MESSAGES[data.pop("msg")]
    if expected and kind not in expected:
        wanted = " or ".join(k.__name__ for k in expected)
        raise NetwallError(f"protocol: expected {wanted}, got {kind.__name__}: {str(line)[:80]}")
    return from_wire(kind, data)


def to_wire(obj: Any) -> Any:
    """A dataclass of this module as JSON-friendly data (dicts, lists and scalars)."""
    write = _writer(type(obj))
    return obj if write is None else write(obj)


def from_wire(kind: type, data: Any) -> Any:
    """The `kind` that `data` (from to_wire, possibly through JSON) stands for."""
    try:
        return _reader(kind)(data)
    except _Mismatch as e:
        raise NetwallError(f"protocol: bad {kind.__name__}{e.where}: {e.problem}") from None


class _Mismatch(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem, self.where = problem, ""

    def at(self, where: str) -> _Mismatch:
        self.where = where + self.where
        return self


Read = Callable[[Any], Any]
Write = Callable[[Any], Any] | None  # None: the value is JSON-friendly as it is


@cache
def _writer(kind: Any) -> Write:
    if kind in (int, float, str, bool):
        return None
    if is_dataclass(kind):
        parts = [(name, _writer(hint)) for name, hint in _hints(kind).items()]
        if kind in PACKED:  # scalars only, so attrgetter gives their values in order
            assert all(write is None for _, write in parts), kind
            get = attrgetter(*(name for name, _ in parts))
            return lambda obj: list(get(obj))
        return lambda obj: {name: getattr(obj, name) if write is None else write(getattr(obj, name))
                            for name, write in parts}
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple:  # tuple[X, ...], or a fixed tuple of Xs
        assert all(a in (args[0], Ellipsis) for a in args), kind
        item = _writer(args[0])
        return list if item is None else lambda seq: [item(x) for x in seq]
    if origin is dict:  # JSON turns keys into strings; _reader turns them back
        value = _writer(args[1])
        return dict if value is None else lambda d: {k: value(v) for k, v in d.items()}
    raise TypeError(f"no wire form for {kind}")


@cache
def _reader(kind: Any) -> Read:
    if kind in (int, float, str, bool):
        return _scalar(kind)
    if is_dataclass(kind):
        hints = _hints(kind)
        readers = {name: _reader(hint) for name, hint in hints.items()}
        if kind in PACKED:
            return _row(kind, readers, tuple(hints.values()))
        return _record(kind, readers)
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple and args[-1] is Ellipsis:
        return _sequence(_reader(args[0]))
    if origin is tuple:
        return _fixed([_reader(a) for a in args])
    if origin is dict:
        return _mapping(_scalar(args[0], key=True), _reader(args[1]))
    raise TypeError(f"no wire form for {kind}")


def _hints(kind: type) -> dict[str, Any]:
    hints = get_type_hints(kind)
    return {f.name: hints[f.name] for f in fields(kind)}


def _field(name: str, read: Read, value: Any) -> Any:
    """read(value), or an error naming the field it does not fit."""
    try:
        return read(value)
    except _Mismatch as e:
        raise e.at(f".{name}") from None


def _item(key: Any, read: Read, value: Any) -> Any:
    """read(value), or an error naming the item (index or key) it does not fit."""
    try:
        return read(value)
    except _Mismatch as e:
        raise e.at(f"[{key}]") from None


def _scalar(kind: type, key: bool = False) -> Read:
    def read(value: Any) -> Any:
        if key and kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)  # JSON turned the key into a string
        if kind is float and type(value) is int:
            return float(value)
        if type(value) is not kind:
            raise _Mismatch(f"expected {kind.__name__}, got {value!r:.80}")
        return value
    return read


def _record(kind: type, readers: dict[str, Read]) -> Read:
    def read(data: Any) -> Any:
        if not isinstance(data, dict):
            raise _Mismatch(f"expected an object of {', '.join(readers)}, got {data!r:.80}")
        if data.keys() != readers.keys():
            missing, unknown = readers.keys() - data.keys(), data.keys() - readers.keys()
            raise _Mismatch("; ".join(
                [f"missing field {', '.join(sorted(missing))}"] * bool(missing) +
                [f"unknown field {', '.join(sorted(unknown))}"] * bool(unknown)))
        return kind(**{name: _field(name, r, data[name]) for name, r in readers.items()})
    return read


def _row(kind: type, readers: dict[str, Read], types: tuple[type, ...]) -> Read:
    def read(row: Any) -> Any:
        if type(row) is list and tuple(map(type, row)) == types:
            # The common case, made fast (moves are many): a row holds the fields in their
            # order of declaration, as _writer packed them and as the constructor takes them.
            return kind(*row)
        if not isinstance(row, list | tuple) or len(row) != len(readers):
            raise _Mismatch(f"expected a list of {', '.join(readers)}, got {row!r:.80}")
        return kind(**{name: _field(name, r, value)
                       for (name, r), value in zip(readers.items(), row, strict=True)})
    return read


def _sequence(item: Read) -> Read:
    def read(seq: Any) -> tuple:
        if not isinstance(seq, list | tuple):
            raise _Mismatch(f"expected a list, got {seq!r:.80}")
        try:
            return tuple(map(item, seq))
        except _Mismatch:  # again, to say where
            return tuple(_item(i, item, value) for i, value in enumerate(seq))
    return read


def _fixed(items: list[Read]) -> Read:
    def read(seq: Any) -> tuple:
        if not isinstance(seq, list | tuple) or len(seq) != len(items):
            raise _Mismatch(f"expected a list of {len(items)}, got {seq!r:.80}")
        pairs = enumerate(zip(items, seq, strict=True))
        return tuple(_item(i, item, value) for i, (item, value) in pairs)
    return read


def _mapping(key: Read, value: Read) -> Read:
    def read(data: Any) -> dict:
        if not isinstance(data, dict):
            raise _Mismatch(f"expected an object, got {data!r:.80}")
        return {_item(k, key, k): _item(k, value, v) for k, v in data.items()}
    return read
