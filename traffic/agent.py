"""The per-GPU agent: one process inside each Mininet host, moving a rank's share of collectives.

Started once per emulation (`python -m traffic.agent`), it speaks the messages of
traffic.protocol, one JSON line each, on stdin/stdout:

    -> Setup (its rank and peers)           <- Ready
    -> Load (a program)                     <- Loaded
    -> Go (start at a CLOCK_MONOTONIC time)  <- Report, or Failure
    -> Exit

A program is a list of calls (collectives) this rank takes part in. Calls on one stream run
one after another, calls on different streams at the same time, as CUDA streams do; a call
may wait for compute time (`gap_s`) or for other calls (`after`); a `grouped` call starts
with the one before it on its stream, as calls between ncclGroupStart and ncclGroupEnd do,
and the stream's next call waits for the whole group. Within a call, the sends of
step s start once everything the rank receives in steps before s has arrived.

A rank stands in for a GPU, so it pays what a GPU pays (emulator.models.endpoints), in
dilated time: a call's launch and protocol base latency before its first sends, the
endpoint's step latency before each step's sends, at least the reduction time of the bytes
a step reduces, and the protocol's padding as real bytes in every frame. Where the kernel
has no netem, the agent also holds each arriving frame for its route's link delay (one
CLOCK_MONOTONIC serves every namespace): a step is complete only once its last frame has
been held that long, so the latency term is emulated on every kernel.

Frames go out as bytes on one reused AF_PACKET socket per egress interface, so they pass the
interface's qdisc (the link shaping); the Ether/IP/UDP prefix comes from scapy once per peer
and payload length. They arrive on a UDP socket (the kernel routes them hop by hop).

Delivery is reliable on lossy links. Each transfer (one move: call, step, sender) is
acknowledged when complete; a receiver that sees a transfer stall asks for exactly the
missing frames (NACK, selective repeat); a sender whose finished transfer stays unacknowledged
resends its first frame, which draws an ACK or a NACK. A sent range that is about to be
overwritten while still unacknowledged is copied first, so a retransmission always carries
the bytes originally sent. Between commands the agent keeps answering NACKs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import select
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from traffic.header import (
    ACK,
    DATA,
    ETHER_IP_UDP,
    HEADER,
    MAGIC,
    NACK,
    PORT,
    VERSION,
    FrameTemplate,
    frame_data,
    frame_payload,
    padding,
)
from traffic.protocol import (
    CallSpec,
    Exit,
    Failure,
    Go,
    Load,
    Loaded,
    Message,
    Move,
    Ready,
    Report,
    Route,
    Setup,
    decode,
    encode,
)
from traffic.schedule import UFUNCS, expected, finish, initial, result_region

SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
#: Linux's socket option (and control message) for a receive timestamp in nanoseconds,
#: CLOCK_REALTIME as two 64-bit integers; Python's socket module does not name it.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("=qq")
RCVBUF = 256 << 20
SOL_PACKET, PACKET_VNET_HDR = 263, 15
# A virtio-net header with no offloads and hdr_len = the frame's headers: AF_PACKET then puts
# only the headers in the skb's linear part and the payload in page fragments, sparing the
# kernel a 128 KB high-order allocation per 65 KB frame.
VNET_HDR = struct.pack("<BBHHHH", 0, 0, ETHER_IP_UDP + HEADER.size, 0, 0, 0)
LINK_DOWN = (errno.ENETDOWN, errno.ENXIO)  # the interface is down or gone
STAGING = 65536  # bytes of one received datagram, at most
MAX_NACK_SEQS = 4096  # missing-frame numbers one NACK carries (uint32 each)
PR_SET_TIMERSLACK = 29  # prctl(2)


@dataclass
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
    sock: socket.socket  # the egress interface's data socket
    template: FrameTemplate  # the Ether/IP/UDP prefix toward the peer
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


@dataclass
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
    send_at: float = 0.0  # the current step's sends wait until then (endpoint latency)
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


class Wire:
    """When each received frame reaches the GPU, as a wire would deliver it.

    A wire delivers a frame once its last bit is across, one transmission time after the one
    before it; the kernel's token-bucket shaper releases a frame as soon as it may start, and
    a frame or two for free after an idle gap (its bucket, which keeps the rate when timers
    fire late). So each frame is paced again here, from the kernel's receive time, at its
    route's slowest rate and at the rate of the link it arrives on (shared by every sender
    behind it), then held for the route's link delay where no netem delays it. The shaper
    keeps the average rate; this keeps each frame's time.
    """

    def __init__(self, routes: dict[int, Route], dilation: float) -> None:
        # By sender, at the program's dilation: (delay, seconds per wire byte on the route's
        # slowest link, the link frames arrive on, seconds per wire byte on it).
        self.hold = {src: (r.delay_s * dilation, 8 / r.rate_bps * dilation, r.link,
                           8 / r.link_rate_bps * dilation) for src, r in routes.items()}
        self.route_free: dict[int, float] = {}  # when the last frame from a sender is across
        self.link_free: dict[int, float] = {}  # the same for each arriving link

    def across(self, src: int, wire_bytes: int, received: float) -> float:
        """When a frame of `wire_bytes` from `src`, received by the kernel at `received`,
        reaches the GPU (CLOCK_MONOTONIC seconds)."""
        delay, per_byte, link, link_per_byte = self.hold.get(src, (0.0, 0.0, -1, 0.0))
        route = max(received, self.route_free.get(src, 0.0)) + wire_bytes * per_byte
        last_hop = max(received, self.link_free.get(link, 0.0)) + wire_bytes * link_per_byte
        self.route_free[src] = route
        self.link_free[link] = done = max(route, last_hop)
        return done + delay


class Agent:
    def __init__(self, setup: Setup) -> None:
        self.rank = setup.rank
        self.rto = setup.rto
        self.payload = frame_payload(setup.mtu)
        self.routes = setup.routes  # from each rank: delay to hold, rates to pace at
        self.wire = Wire(self.routes, 1.0)  # at each program's dilation (go)
        self.zeros = bytes(self.payload)  # protocol padding
        self.peers = setup.peers
        self.templates = {
            peer: FrameTemplate(p.src_mac, p.dst_mac, p.src_ip, p.dst_ip)
            for peer, p in self.peers.items()
        }
        ifaces = sorted({p.iface for p in self.peers.values()})
        # The data sockets' send buffer makes the qdisc push back (EAGAIN) before its queue
        # overflows; ACKs and NACKs have sockets of their own so data never crowds them out.
        self.tx = {iface: _packet_socket(iface, setup.sndbuf, vnet=True) for iface in ifaces}
        self.ctl = {iface: _packet_socket(iface, 1 << 20) for iface in ifaces}
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        self.rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.rx.bind(("0.0.0.0", PORT))
        self.rx.setblocking(False)
        self.stamp_space = socket.CMSG_SPACE(TIMESPEC.size)
        self.realtime_ns = 0  # CLOCK_REALTIME - CLOCK_MONOTONIC, set when a program starts
        self.staging = bytearray(STAGING)
        self.spare: list[bytearray] = []  # staging buffers back from the stash, for reuse
        self.control = bytearray(HEADER.size + 4 * MAX_NACK_SEQS)
        self.header = bytearray(HEADER.size)
        self.buffers: dict[str, np.ndarray] = {}
        self.bytes: dict[str, memoryview] = {}  # each buffer as bytes, for slicing cheaply
        self.initial: dict[tuple, np.ndarray] = {}
        self.calls: dict[int, Call] = {}
        # Frames that arrived before they may land, by (op, step): (src, seq, offset, payload)
        # with the payload a view of the staging buffer it was received into.
        self.stash: dict[tuple[int, int], list[tuple[int, int, int, memoryview]]] = {}
        # Transfers sent once in full and not yet acknowledged, by (op, step, peer).
        self.outstanding: dict[tuple[int, int, int], Transfer] = {}
        self.oldest_op = 0  # calls below this id are finished everywhere
        self.active: list[Call] = []  # started, not finished
        self.unfinished = 0
        self.next_repair = 0.0
        self.stats = dict.fromkeys(("frames_sent", "bytes_sent", "frames_received",
                                    "retransmitted_frames", "retransmitted_bytes",
                                    "duplicates", "nacks_sent", "acks_sent",
                                    "queue_full", "link_down"), 0)

    # -- loading a program -------------------------------------------------------------------
    def load(self, program: Load) -> None:
        self.calls = {}
        # a rank no call of the program involves (a trace over some ranks) has nothing to do
        self.oldest_op = min((spec.id for spec in program.calls), default=self.oldest_op)
        self.stash = {k: v for k, v in self.stash.items() if k[0] >= self.oldest_op}
        for spec in program.calls:
            call = Call.of(spec, self.rank, self.payload)
            key = call.data_key
            if key not in self.initial:
                self.initial[key] = initial(*key)  # in the call's datatype
            # Calls of one stream share a buffer, one per size and datatype (as a framework
            # reuses its allocations); a fresh buffer starts from the call's inputs.
            call.buffer = f"{call.buffer}:{self.initial[key].nbytes}:{call.dtype}"
            if call.buffer not in self.buffers:
                self.buffers[call.buffer] = self.initial[key].copy()
                self.bytes[call.buffer] = memoryview(self.buffers[call.buffer]).cast("B")
            self.calls[call.id] = call
        for name in set(self.buffers) - {c.buffer for c in self.calls.values()}:
            self._protect_all(name)  # unacknowledged sends from it keep their own copy
            del self.buffers[name], self.bytes[name]

    # -- running it --------------------------------------------------------------------------
    def go(self, go: Go) -> Report:
        timeout = go.timeout
        self.rto = go.rto  # the program's dilation sets how long is late
        self.wire = Wire(self.routes, go.dilation)
        self.stats = dict.fromkeys(self.stats, 0)
        self.realtime_ns = _realtime_offset_ns()
        _sleep_until(go.start)
        streams: dict[str, deque[Call]] = {}
        for call in self.calls.values():
            streams.setdefault(call.stream, deque()).append(call)
        free_at = dict.fromkeys(streams, go.start)  # when each stream finished its last call
        self.active = []
        self.unfinished = len(self.calls)
        last_progress = time.monotonic()
        with np.errstate(over="ignore", invalid="ignore"):  # timed repeats may overflow
            while self.unfinished:
                now = time.monotonic()
                progress = self._start_calls(streams, free_at, now)
                progress |= self._send_some()
                progress |= self._receive_some()
                progress |= self._advance(free_at)
                self._repair(now)
                if progress:
                    last_progress = now
                    continue
                if now - last_progress > timeout:
                    raise TimeoutError(self._stuck(timeout))
                self._wait(self._next_deadline(streams, free_at, now))
        return self._report()

    def _start_calls(self, streams, free_at, now: float) -> bool:
        """Start each stream's next call once its stream, its `after` calls and its compute
        gap allow; the stream is free for a grouped call once the call before it started, so
        a group's calls start in one pass."""
        started = False
        for calls in streams.values():
            while calls and calls[0].end:
                calls.popleft()
            for i, call in enumerate(calls):  # the running group, then the next call
                if call.step >= 0:
                    continue
                if (i and not call.grouped) or not self._start(call, free_at, now):
                    break
                started = True
        return started

    def _start(self, call: Call, free_at, now: float) -> bool:
        """Start one call if its `after` calls and its compute gap allow."""
        if any(self.calls[a].end == 0.0 for a in call.after if a in self.calls):
            return False
        ready = max([free_at[call.stream]] +
                    [self.calls[a].end for a in call.after if a in self.calls])
        if now < ready + call.gap_s:
            return False
        if call.init:
            self._protect_all(call.buffer)
            self.buffers[call.buffer][:] = self.initial[call.data_key]
            now = time.monotonic()  # resetting the buffer is not part of the call
        call.start = now
        call.incoming = [{src: _expect(m.length, m.reduce, call.data)
                          for src, m in recvs.items()} for recvs in call.recvs]
        self.active.append(call)
        self._enter_step(call, 0)
        return True

    def _enter_step(self, call: Call, step: int) -> None:
        call.step = step
        if step == call.steps:
            return
        view = self.bytes[call.buffer]
        for m in call.sends[step]:
            call.pending.append(Transfer(
                call, step, m.dst, m.src_offset, m.dst_offset, m.length,
                -(-m.length // call.data), view[m.src_offset:m.src_offset + m.length],
                self.tx[self.peers[m.dst].iface], self.templates[m.dst]))
        now = time.monotonic()
        call.send_at = now + call.step_s + (call.start_s if step == 0 else 0.0)
        reduced = sum(m.length for m in call.recvs[step].values() if m.reduce)
        call.floor = call.send_at + reduced * call.reduce_s
        for incoming in call.incoming[step].values():
            incoming.last = now  # the repair timer starts with the step
        for frame in self.stash.pop((call.id, step), []):
            self._apply(call, step, *frame)
            self.spare.append(frame[-1].obj)

    def _advance(self, free_at) -> bool:
        """Move calls whose current step is complete on to the next (or finish them)."""
        moved = False
        for call in list(self.active):
            while call.step < call.steps and not call.pending and not any(
                    i.missing for i in call.incoming[call.step].values()):
                call.wake = max([call.floor] +
                                [i.held for i in call.incoming[call.step].values()])
                if time.monotonic() < call.wake:
                    break
                self._enter_step(call, call.step + 1)
                moved = True
            if call.step == call.steps:
                if call.op == "avg":  # ncclAvg's division; a resend keeps the bytes sent
                    self._protect_all(call.buffer)
                    finish(self.buffers[call.buffer], *call.data_key)
                call.end = time.monotonic()
                free_at[call.stream] = max(free_at[call.stream], call.end)  # a group's last
                if call.check:  # its result, before a later call on the buffer reuses it
                    call.result = self.buffers[call.buffer][result_region(
                        call.collective, call.ranks, call.size, call.local, call.root,
                        call.dtype)].copy()
                self.active.remove(call)
                self.unfinished -= 1
                moved = True
        return moved

    # -- sending -----------------------------------------------------------------------------
    def _send_some(self) -> bool:
        """Hand frames to the kernel until it pushes back: repairs first, then round-robin
        over every active transfer."""
        progress = False
        now = time.monotonic()
        active = [t for t in self.outstanding.values() if t.resend]
        active += [t for c in self.active if c.send_at <= now for t in c.pending]
        while active:
            for transfer in list(active):
                repair = bool(transfer.resend)
                if not repair and transfer.next_seq == transfer.frames:
                    active.remove(transfer)
                    continue
                seq = transfer.resend[0] if repair else transfer.next_seq
                if not self._send_frame(transfer, seq):
                    return progress
                if repair:
                    transfer.resend.pop(0)
                    self.stats["retransmitted_frames"] += 1
                    self.stats["retransmitted_bytes"] += self._frame_length(transfer, seq)
                    if not transfer.resend:
                        transfer.done_at = time.monotonic()
                    continue
                progress = True
                transfer.next_seq += 1
                if transfer.next_seq == transfer.frames:
                    transfer.done_at = time.monotonic()
                    transfer.call.pending.remove(transfer)
                    self.outstanding[(transfer.call.id, transfer.step, transfer.peer)] = transfer
        return progress

    @staticmethod
    def _frame_length(transfer: Transfer, seq: int) -> int:
        return min(transfer.call.data, transfer.length - seq * transfer.call.data)

    def _send_frame(self, transfer: Transfer, seq: int) -> bool:
        call = transfer.call
        start = seq * call.data
        data = transfer.data[start:start + call.data]
        length = len(data)
        pad = call.pad if length == call.data else padding(length, call.efficiency)
        HEADER.pack_into(self.header, 0, MAGIC, VERSION, DATA, call.comm, transfer.step,
                         call.id, self.rank, transfer.peer, transfer.dst_offset + start,
                         length, seq)
        try:
            transfer.sock.sendmsg([VNET_HDR, transfer.template.prefix(length + pad),
                                   self.header, data, self.zeros[:pad]])
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno == errno.ENOBUFS:  # the qdisc's queue was full: offer it again
                self.stats["queue_full"] += 1
                return False
            if e.errno not in LINK_DOWN:
                raise
            self.stats["link_down"] += 1  # gone, as on a dead cable; repairs follow
        self.stats["frames_sent"] += 1
        self.stats["bytes_sent"] += length
        return True

    def _send_control(self, kind: int, op: int, step: int, peer: int, seqs=()) -> None:
        """An ACK or a NACK (listing missing frames) for transfer (op, step) from `peer`."""
        body = np.asarray(seqs[:MAX_NACK_SEQS], dtype=">u4").tobytes()
        HEADER.pack_into(self.control, 0, MAGIC, VERSION, kind, 0, step, op, self.rank, peer,
                         0, len(body), 0)
        try:
            self.ctl[self.peers[peer].iface].sendmsg(
                [self.templates[peer].prefix(len(body)), self.control[:HEADER.size], body])
        except OSError as e:  # pushback, a full queue or a dead link: lost like any control
            if e.errno not in (errno.EAGAIN, errno.ENOBUFS, *LINK_DOWN):  # frame; the timers
                raise  # ask again
            return
        self.stats["acks_sent" if kind == ACK else "nacks_sent"] += 1

    # -- receiving ---------------------------------------------------------------------------
    def _receive_some(self) -> bool:
        progress = False
        while True:
            try:
                n, stamps, _flags, _addr = self.rx.recvmsg_into([self.staging], self.stamp_space)
            except BlockingIOError:
                return progress
            progress = True
            if n < HEADER.size:
                continue
            magic, version, kind, _comm, step, op, src, _dst, offset, length, seq = \
                HEADER.unpack_from(self.staging, 0)
            if magic != MAGIC or version != VERSION or n < HEADER.size + length:
                continue
            if kind == DATA:  # the data, then the protocol's padding
                self.stats["frames_received"] += 1
                call = self.calls.get(op)
                data = memoryview(self.staging)[HEADER.size:HEADER.size + length]
                arrived = self.wire.across(src, n + ETHER_IP_UDP, self._arrival(stamps))
                if self._lands_now(call, step, offset, length):
                    self._apply(call, step, src, seq, offset, arrived, data)
                elif op >= self.oldest_op and (call is None or call.step < step):  # early
                    self.stash.setdefault((op, step), []).append(
                        (src, seq, offset, arrived, data))
                    self.staging = self.spare.pop() if self.spare else bytearray(STAGING)
                else:  # a step already complete: a duplicate; the sender wants an ACK
                    self.stats["duplicates"] += 1
                    self._send_control(ACK, op, step, src)
            elif kind == ACK:
                self.outstanding.pop((op, step, src), None)
            elif kind == NACK:
                self._on_nack(op, step, src, np.frombuffer(
                    self.staging, dtype=">u4", count=length // 4, offset=HEADER.size))

    def _arrival(self, stamps: list) -> float:
        """When the kernel received the frame (CLOCK_MONOTONIC), not when this loop got to
        it: an agent busy sending reads a queue of frames late, and their pacing must not
        start from then."""
        for level, kind, data in stamps:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = TIMESPEC.unpack_from(data)
                return (sec * 1_000_000_000 + nsec - self.realtime_ns) / 1e9
        return time.monotonic()

    @staticmethod
    def _lands_now(call: Call | None, step: int, offset: int, length: int) -> bool:
        """May a frame of this step land in the buffer now (else it waits in the stash)?

        A race-free schedule (traffic.collectives.validate) lets a receive land whenever it
        arrives once the call has started, even steps ahead, provided every send of earlier
        steps has read its bytes: sends the kernel has taken are copied before being
        overwritten (_protect), so only sends not yet handed over can be in the way.
        """
        if call is None or call.step == step:
            return call is not None
        if not 0 <= call.step < step < call.steps:
            return False
        return not any(t.reads(offset, offset + length) for t in call.pending)

    def _apply(self, call: Call, step: int, src: int, seq: int, offset: int, arrived: float,
               data) -> None:
        """Land one frame; `arrived` is when it reaches the GPU: received, held for its
        route's link delay (no netem) and its own transmission time."""
        incoming = call.incoming[step].get(src) if 0 <= step < len(call.incoming) else None
        if incoming is None or seq >= incoming.frames or incoming.got[seq]:
            self.stats["duplicates"] += 1
            if incoming is not None and not incoming.missing:
                self._send_control(ACK, call.id, step, src)
            return
        end = offset + len(data)
        self._protect(call.buffer, offset, end)
        if incoming.reduce:
            buf = self.buffers[call.buffer]
            target = buf[offset // buf.itemsize:end // buf.itemsize]
            UFUNCS[call.op](target, np.frombuffer(data, dtype=buf.dtype), out=target)
        else:
            self.bytes[call.buffer][offset:end] = data
        incoming.got[seq] = 1
        incoming.missing -= 1
        incoming.last = time.monotonic()
        incoming.held = max(incoming.held, arrived)
        if not incoming.missing:
            self._send_control(ACK, call.id, step, src)

    def _on_nack(self, op: int, step: int, peer: int, seqs) -> None:
        transfer = self.outstanding.get((op, step, peer))
        if transfer is None and op in self.calls:  # still sending it for the first time
            transfer = next((t for t in self.calls[op].pending
                             if (t.step, t.peer) == (step, peer)), None)
        if transfer is not None:
            queued = set(transfer.resend)
            transfer.resend += [int(s) for s in seqs if s < transfer.next_seq and s not in queued]

    # -- loss repair -------------------------------------------------------------------------
    def _repair(self, now: float) -> None:
        """Ask for the missing frames of stalled transfers; probe unacknowledged sent ones.

        Repairs are not progress: a peer that never answers still ends the run by timeout.
        """
        if now < self.next_repair:
            return
        self.next_repair = now + self.rto / 4
        for call in self.active:  # only a call's current step can be missing frames
            for src, incoming in call.incoming[call.step].items():
                if incoming.missing and incoming.missing < incoming.frames \
                        and now - incoming.last > self.rto:
                    missing = [s for s in range(incoming.frames) if not incoming.got[s]]
                    self._send_control(NACK, call.id, call.step, src, missing)
                    incoming.last = now
        for transfer in self.outstanding.values():
            if not transfer.resend and now - transfer.done_at > self.rto:
                transfer.done_at = now
                transfer.resend.append(0)  # draws an ACK, or a NACK for what is missing

    def _protect(self, buffer: str, start: int, end: int) -> None:
        """Copy unacknowledged sent bytes out of a range about to be overwritten."""
        for transfer in self.outstanding.values():
            if not transfer.copied and transfer.call.buffer == buffer and \
                    transfer.reads(start, end):
                transfer.data = memoryview(transfer.data.tobytes())
                transfer.copied = True

    def _protect_all(self, buffer: str) -> None:
        if buffer in self.buffers:
            self._protect(buffer, 0, self.buffers[buffer].nbytes)

    # -- waiting and reporting ---------------------------------------------------------------
    def _next_deadline(self, streams, free_at, now: float) -> float:
        wake = now + min(0.05, self.rto)
        for call in self.active:
            if call.pending and call.send_at > now:
                wake = min(wake, call.send_at)
            if call.wake > now:
                wake = min(wake, call.wake)
        for calls in streams.values():
            for i, call in enumerate(calls):  # the call that may start next, if any
                if call.step >= 0:
                    continue
                if (i == 0 or call.grouped) and call.gap_s:
                    wake = min(wake, free_at[call.stream] + call.gap_s)
                break
        return wake

    def _wait(self, until: float) -> None:
        now = time.monotonic()
        busy = [t for c in self.active if c.send_at <= now for t in c.pending]
        busy += [t for t in self.outstanding.values() if t.resend]
        writers = list({self.tx[self.peers[t.peer].iface] for t in busy})
        select.select([self.rx], writers, [], max(0.0, until - time.monotonic()))

    def _stuck(self, timeout: float) -> str:
        for call in self.calls.values():
            if call.end:
                continue
            if call.step < 0:
                return (f"rank {self.rank}: call {call.id} never started in {timeout:.1f} s "
                        f"(waiting for calls {call.after})")
            waiting = sorted(src for src, i in call.incoming[call.step].items() if i.missing)
            return (f"rank {self.rank}: no progress for {timeout:.1f} s in call {call.id} step "
                    f"{call.step}: waiting for ranks {waiting}, "
                    f"{len(call.pending)} sends pending")
        return f"rank {self.rank}: no progress for {timeout:.1f} s"

    def _report(self) -> Report:
        checks = {}
        for call in self.calls.values():
            if call.check:
                _, values = expected(*call.data_key)
                checks[call.id] = bool(np.array_equal(call.result, values))
        # A send's receiver posts its receive early and waits: the call starts with the send.
        return Report(calls={c.id: (c.end if c.collective == "send" and c.local else c.start,
                                    c.end) for c in self.calls.values()},
                      checks=checks, stats=dict(self.stats))

    def idle(self) -> None:
        """Between commands: answer NACKs and ACKs, and keep early frames of the next program."""
        self._receive_some()
        self._send_some()
        self._repair(time.monotonic())


def _expect(length: int, reduce: bool, payload: int) -> Incoming:
    frames = -(-length // payload)
    return Incoming(frames, reduce, bytearray(frames), frames)


def _packet_socket(iface: str, sndbuf: int, vnet: bool = False) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
    if vnet:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
    s.setblocking(False)
    return s


def _realtime_offset_ns() -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, read as tightly as the two calls allow (the
    closest of a few tries), to turn the kernel's receive timestamps into monotonic time."""
    best = None
    for _ in range(5):
        before = time.monotonic_ns()
        real = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, real - (before + after) // 2)
    return best[1]


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _reply(message: Message) -> None:
    sys.stdout.write(encode(message) + "\n")
    sys.stdout.flush()


def _sharp_timers() -> None:
    """Ask the kernel to wake this process on time: by default a sleeping thread's timeout may
    run 50 us late (timer slack, to batch wake-ups), and the agent's timed waits (endpoint
    latency, held link delays) are a few hundred microseconds of wall time each."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: coarser timing, which
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # the proof sees


def main() -> None:
    _sharp_timers()
    agent = Agent(decode(sys.stdin.readline(), Setup))
    _reply(Ready(rank=agent.rank))
    commands = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
    pending = b""
    while True:
        readable = select.select([commands, agent.rx], [], [], agent.rto)[0]
        if agent.rx in readable or not readable:
            agent.idle()
        if commands not in readable:
            continue
        chunk = commands.read(65536)
        if not chunk:
            return  # the controller is gone
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            command = decode(line, Load, Go, Exit)
            if isinstance(command, Exit):
                return
            try:
                if isinstance(command, Load):
                    agent.load(command)
                    _reply(Loaded())
                else:
                    _reply(agent.go(command))
            except TimeoutError as e:
                _reply(Failure(error=str(e)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fork-server"]:
        from traffic.forkserver import serve

        serve(int(sys.argv[2]), main)
    else:
        main()
