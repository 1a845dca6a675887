"""A collective call as one rank runs it: its sends (Transfer) and receives (Incoming), and
how far it has got. traffic.machine moves them along."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from traffic.header import frame_data, padding
from traffic.protocol import CallSpec, Move


@dataclass(eq=False)
class Transfer:
    """One move as its sender sees it: frames still to send, and what to resend."""

    call: Call
    step: int
    peer: int
    src_offset: int
    dst_offset: int
    length: int
    frames: int
    data: memoryview  # the bytes it sends: its range of the buffer, or a copy of it
    due: float  # when its frames are due to leave (its step's sends, in the call's timeline)
    next_seq: int = 0  # frames handed to the kernel so far, in order
    resend: list[int] = field(default_factory=list)  # seqs asked for again
    done_at: float = 0.0  # when the last first-time frame left
    copied: bool = False  # data is a copy, kept once the buffer moved on

    def reads(self, start: int, end: int) -> bool:
        """Does it send any of the buffer's bytes [start, end)?"""
        return self.src_offset < end and start < self.src_offset + self.length


@dataclass
class Incoming:
    """One move as its receiver sees it."""

    frames: int
    reduce: bool
    got: bytearray
    missing: int
    last: float = 0.0  # last arrival or NACK
    held: float = 0.0  # the last frame is held until then (link delay without netem)

    @classmethod
    def expect(cls, length: int, reduce: bool, payload: int) -> Incoming:
        """A receive of `length` bytes in frames of `payload` data bytes, none arrived yet."""
        frames = -(-length // payload)
        return cls(frames, reduce, bytearray(frames), frames)


@dataclass(eq=False)
class Call:
    """A call as this rank runs it: its CallSpec less the moves, which become its sends and
    receives, and how far it has got."""

    id: int
    comm: int
    stream: str
    gap_s: float  # seconds of (dilated) compute before the call starts
    after: list[int]
    buffer: str
    init: bool
    check: bool
    collective: str
    ranks: int
    local: int
    root: int
    size: int
    dtype: str
    op: str
    steps: int
    start_s: float  # endpoint costs, dilated (traffic.protocol.CallSpec)
    step_s: float
    reduce_s: float
    data: int  # data bytes per frame (the rest of the frame is the protocol's padding)
    pad: int  # padding of a full frame
    efficiency: float
    grouped: bool  # starts once the call before it on its stream has started
    sends: list[list[Move]]  # step -> moves from this rank
    recvs: list[dict[int, Move]]  # step -> peer -> the move from it to this rank
    step: int = -1  # -1: not started
    start: float = 0.0
    end: float = 0.0
    send_at: float = 0.0  # the current step's sends are due then (endpoint latency)
    floor: float = 0.0  # the current step ends no earlier (its reduction)
    wake: float = 0.0  # when a complete step may end (held frames, the floor)
    pending: list[Transfer] = field(default_factory=list)
    incoming: list[dict[int, Incoming]] = field(default_factory=list)  # step -> src -> it
    result: np.ndarray | None = None  # a checked call's result, copied as it ended

    @property
    def data_key(self) -> tuple:
        """What its inputs and expected result depend on (traffic.schedule.initial and
        expected take it as their arguments); it keys the agent's cache of inputs."""
        return (self.collective, self.ranks, self.size, self.local, self.root, self.dtype,
                self.op)

    @classmethod
    def of(cls, spec: CallSpec, rank: int, payload: int) -> Call:
        """The call `spec` describes, with `rank`'s moves sorted into sends and receives, in
        frames of `payload` bytes (data and padding)."""
        data = frame_data(payload, spec.efficiency)
        call = cls(id=spec.id, comm=spec.comm, stream=spec.stream, gap_s=spec.gap_s,
                   after=list(spec.after), buffer=spec.buffer, init=spec.init,
                   check=spec.check, collective=spec.collective, ranks=spec.ranks,
                   local=spec.local, root=spec.root, size=spec.size, dtype=spec.dtype,
                   op=spec.op, steps=spec.steps,
                   start_s=spec.start_s, step_s=spec.step_s, reduce_s=spec.reduce_s,
                   data=data, pad=padding(data, spec.efficiency), efficiency=spec.efficiency,
                   grouped=spec.grouped,
                   sends=[[] for _ in range(spec.steps)], recvs=[{} for _ in range(spec.steps)])
        for m in spec.moves:
            if m.src == rank:
                call.sends[m.step].append(m)
            if m.dst == rank:
                call.recvs[m.step][m.src] = m
        return call
