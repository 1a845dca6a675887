"""The agent's logic: one rank's calls, steps, streams and reliable delivery, as a state
machine with no sockets, no waiting and no clock of its own.

traffic.agent wraps it in the I/O (sockets, the wait, kernel timestamps, the launcher's
pipe); tests/unit/test_machine.py wraps several in a fake network. Its inputs are events:

    load(Load)                  a program
    go(Go)                      run it (at its common start)
    datagram(n, received)       n bytes arrived in `staging`, the kernel received them then
    tick(now, received)         time passed (and whether anything arrived since the last tick)

Its outputs are actions on the injected `Port` (a data frame: peer, header, a slice of the
buffer, padding; a control frame: ACK or NACK), `deadline(now)` (when to wake at the latest),
`ready_peers(now)` (whose links it waits to send on), `unfinished` and `report()`, and, with
a `Board`, each call's step as it enters it and each frame resent, by peer, where the
controller reads them while the program runs (traffic.board: the live view). Each call
keeps its own timeline on the injected clock: it starts when it was due, each step when
the step before it ended (its frames delivered, its floor passed), and every data frame
carries when it was due to leave (the header's `sent`), from which the receiver paces it
(traffic.pacing), never before the kernel delivered it; so a turn that comes late costs
nothing while the frames still arrive in time. Frames go to the kernel ahead of their due
time, as far as no frame that appears later can fall due before them (`horizon`), in the
order they fall due (`sendable`). The hot path copies
nothing: headers are packed into one reused buffer, a frame's data is a slice of the buffer
it is sent from, and a frame that arrives early keeps the staging buffer it arrived in.

Calls on one stream run one after another, calls on different streams at the same time, as
CUDA streams do; a call may wait for compute time (`gap_s`) or for other calls (`after`); a
`grouped` call starts with the one before it on its stream, as calls between ncclGroupStart
and ncclGroupEnd do, and the stream's next call waits for the whole group. Within a call,
the sends of step s start once everything the rank receives in steps before s has arrived.

A rank stands in for a GPU, so it pays what a GPU pays (emulator.models.endpoints), in
dilated time: a call's launch and protocol base latency before its first sends, the
endpoint's step latency before each step's sends, at least the reduction time of the bytes
a step reduces, and the protocol's padding in every frame. Every arriving frame is held
until a wire would have delivered it (traffic.pacing.Wire): a step is complete only once its
last frame has been held that long.

Delivery is reliable on lossy links. Each transfer (one move: call, step, sender) is
acknowledged when complete; a receiver that sees a transfer stall asks for exactly the
missing frames (NACK, selective repeat); a sender whose finished transfer stays
unacknowledged resends its first frame, which draws an ACK or a NACK. A sent range that is
about to be overwritten while still unacknowledged is copied first, so a retransmission
always carries the bytes originally sent. Between programs (`idle`) it keeps answering.
A data frame that arrives while this rank has no program running (a peer's program began
before this rank's `go`: a rank started late) waits whole until `go`, and is then taken
as if it arrived at that moment, paced by that program's wire from that program's start.

Compute gaps no traffic overlaps are skipped (traffic.gaps): with a `Rest` and a program
whose Go says `skip`, the machine tells it whether the rank is quiet, and until when
(`quiet_until`): quiet means nothing of its own in flight or to send (no transfer pending or
unacknowledged), every running call waiting for frames no one has sent it yet, and nothing
due before the end of its next compute gap. It says so only when that changes (a turn
without progress, the program's end, the first datagram after a quiet spell), never per
frame.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from itertools import groupby
from typing import Protocol

import numpy as np

from traffic.callstate import Call, Incoming, Transfer
from traffic.header import (
    ACK,
    DATA,
    ETHER_IP_UDP,
    FRAME_OVERHEAD,
    HEADER,
    MAGIC,
    NACK,
    VERSION,
    frame_payload,
    padding,
)
from traffic.pacing import Landing, Wire
from traffic.protocol import AgentStats, Go, Load, Report, Setup
from traffic.schedule import UFUNCS, expected, finish, initial, result_region

STAGING = 65536  # bytes of one received datagram, at most
MAX_NACK_SEQS = 4096  # missing-frame numbers one NACK carries (uint32 each)
#: What became of a data frame offered to the port.
SENT, PUSHBACK, QUEUE_FULL, LINK_DOWN = range(4)
# SENT: the kernel took it. PUSHBACK: the socket's buffer is full, offer it again once the
# link can take more. QUEUE_FULL: the qdisc's queue dropped it (ENOBUFS), offer it again.
# LINK_DOWN: the link is down or gone; it is lost as on a dead cable, and repairs follow.


class Port(Protocol):
    """Where a machine's frames go: sockets in traffic.agent, a fake network in the tests."""

    def data(self, peer: int, header: bytearray, data: memoryview, pad: int) -> int:
        """Send a data frame to `peer`: the header, the data, then `pad` bytes of padding;
        SENT, PUSHBACK, QUEUE_FULL or LINK_DOWN."""

    def control(self, peer: int, header: bytearray, body: bytes) -> bool:
        """Send an ACK or a NACK to `peer`; False if it was lost on the way out (a control
        frame is lost like any other, and the timers ask again)."""


class Rest(Protocol):
    """Whom a machine tells that its rank is quiet (traffic.gaps.RankClock in the agent)."""

    def busy(self) -> None:
        """The rank has traffic in flight, to send or arriving: no clock jump may pass."""

    def quiet(self, until: float) -> None:
        """The rank has nothing in flight and needs the clock next at `until` (inf: never,
        the program is done): the clock may jump to just before it."""


class Board(Protocol):
    """Where the controller reads how far the rank has got (traffic.board.Row in the agent)."""

    def begin(self) -> None:
        """A program starts."""

    def step(self, call: int, step: int, steps: int) -> None:
        """Call `call` entered `step` of its `steps` (== steps: finished)."""

    def repair(self, peer: int, nbytes: int) -> None:
        """`nbytes` of data were resent to `peer`."""


class Machine:
    """One rank's calls and their frames, moved along by events (see the module's doc)."""

    def __init__(self, setup: Setup, clock: Callable[[], float], port: Port,
                 rest: Rest | None = None, board: Board | None = None) -> None:
        self.rank = setup.rank
        self.rto = setup.rto
        self.payload = frame_payload(setup.mtu)
        self.routes = setup.routes  # from each rank: delay to hold, rates to pace at
        self.links = {peer: p.link for peer, p in setup.peers.items()}  # frames to it leave on
        self.wire = Wire(self.routes, 1.0)  # at each program's dilation (go)
        self.clock = clock
        self._data, self._control = port.data, port.control
        self.staging = bytearray(STAGING)  # where the next datagram is to be received
        self.spare: list[bytearray] = []  # staging buffers back from the stash, for reuse
        self.header = bytearray(HEADER.size)
        self.control_header = bytearray(HEADER.size)
        self.buffers: dict[str, np.ndarray] = {}
        self.bytes: dict[str, memoryview] = {}  # each buffer as bytes, for slicing cheaply
        self.initial: dict[tuple, np.ndarray] = {}
        self.calls: dict[int, Call] = {}
        # Frames that arrived before they may land, by (op, step):
        # (src, seq, offset, landing, payload), the payload a view of its staging buffer.
        self.stash: dict[tuple[int, int], list[tuple[int, int, int, Landing, memoryview]]] = {}
        # Transfers sent once in full and not yet acknowledged, by (op, step, peer).
        self.outstanding: dict[tuple[int, int, int], Transfer] = {}
        self.oldest_op = 0  # calls below this id are finished everywhere
        self.streams: dict[str, deque[Call]] = {}  # each stream's calls not yet finished
        self.free_at: dict[str, float] = {}  # when each stream finished its last call
        self.active: list[Call] = []  # started, not finished
        self.unfinished = 0
        self.timeout = 0.0
        self.last_progress = 0.0
        self.next_repair = 0.0
        self.started = 0.0  # the running program's start
        self.stats = AgentStats()
        self.rest = rest
        self.resting = False  # this program tells `rest` when the rank is quiet
        self.quiet_at: float | None = None  # what `rest` was told last (None: busy)
        self.board = board  # where the controller reads each call's step and the repairs
        self.live = False  # a program runs (from go to the next load)
        self.lead = 0.0  # how long before they are due a transfer's frames may go (sendable)
        self.launch_lead = 0.0  # the least launch and step latency of a call (horizon)
        self.unstarted = 0  # calls of the program not yet started
        # Data frames that arrived while none ran: (n, received, the staging buffer).
        self.early: list[tuple[int, float, bytearray]] = []

    # -- loading a program -------------------------------------------------------------------
    def load(self, program: Load) -> None:
        self.live = False
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
    def go(self, go: Go) -> None:
        """Set the loaded program up when its go arrives, before its start (or at once, if
        the go came late): the calls due at the start enter their first step, and their
        frames wait for it (each step's sends wait for `sendable`)."""
        self.timeout = go.timeout
        self.rto = go.rto  # the program's dilation sets how long is late
        self.wire = Wire(go.routes or self.routes, go.dilation)
        self.stats = AgentStats()
        self.streams = {}
        for call in self.calls.values():
            self.streams.setdefault(call.stream, deque()).append(call)
        self.started = go.start  # frames' departures are stamped from it (header's `sent`)
        self.free_at = dict.fromkeys(self.streams, go.start)
        self.active = []
        self.unfinished = self.unstarted = len(self.calls)
        self.last_progress = self.clock()
        self.resting = go.skip and self.rest is not None
        self.lead = min((c.step_s for c in self.calls.values()), default=0.0)
        self.launch_lead = min((c.start_s + c.step_s for c in self.calls.values()),
                               default=0.0)
        if self.board is not None:
            self.board.begin()
        self.quiet_at = None  # a program starts busy (traffic.gaps.RankClock.begin)
        self.live = True
        early, self.early = self.early, []
        now = self.clock()
        for n, received, frame in early:  # on this program's clock, so no later than now
            _, _, _, _, step, op, src, _, offset, length, seq, sent = HEADER.unpack_from(frame)
            if not self._take(frame, n, min(received, now), step, op, src, offset, length, seq,
                              sent):
                self.spare.append(frame)
        self._start_calls(go.start)  # those due at the start enter their first step now

    def tick(self, now: float, received: bool = False) -> bool:
        """One turn of the program: start the calls that may start, send what the links take,
        move complete steps on, repair. Progress (a call or step begun or ended, a frame sent
        for the first time, or `received`: a datagram since the last turn) restarts the
        timeout; a TimeoutError says where the rank is stuck once `timeout` passes without.
        Reductions may overflow in timed repeats: the caller silences numpy's warnings."""
        progress = self._start_calls(now) | self._send_some() | self._advance() | received
        self._repair(now)
        if progress:
            self.last_progress = now
        elif now - self.last_progress > self.timeout:
            raise TimeoutError(self._stuck())
        if self.resting and (not progress or not self.unfinished):
            self._settle(now)
        return progress

    def idle(self) -> None:
        """Between programs: resend what is asked for, and ask for what is missing."""
        self._send_some()
        now = self.clock()
        self._repair(now)
        if self.resting:
            self._settle(now)  # quiet for good once its last transfers are acknowledged

    def quiet_until(self, now: float) -> float | None:
        """None while the rank has traffic of its own in flight or to send, or is part way
        through a step; else when it next needs the clock: the end of the first compute gap
        its next calls wait in (inf when none: the program is done, or every running call
        waits for frames whose senders will say when they start).

        Why a jump is then sound (traffic.gaps): a sender stays busy until every transfer
        it sent is acknowledged, so nothing is in flight when every rank is quiet; a rank
        in a call is quiet only before the first frame of its current step arrives, and the
        first datagram makes it busy again; endpoint latencies, reductions and held link
        delays (a step's own timing) keep it busy, so only compute gaps are skipped.
        """
        if self.outstanding:
            return None
        for call in self.active:
            incoming = call.incoming[call.step].values()
            if call.pending or not incoming or any(
                    not 0 < i.missing == i.frames for i in incoming):
                return None
        return self._gap_end()

    def _settle(self, now: float) -> None:
        """Tell `rest` whether the rank is quiet, if that changed."""
        until = self.quiet_until(now)
        if until != self.quiet_at:
            self.quiet_at = until
            if until is None:
                self.rest.busy()
            else:
                self.rest.quiet(until)

    def _start_calls(self, now: float) -> bool:
        """Start each stream's next call once its stream, its `after` calls and its compute
        gap allow; the stream is free for a grouped call once the call before it started, so
        a group's calls start in one pass."""
        started = False
        for calls in self.streams.values():
            while calls and calls[0].end:
                calls.popleft()
            for i, call in enumerate(calls):  # the running group, then the next call
                if call.step >= 0:
                    continue
                if (i and not call.grouped) or not self._start(call, now):
                    break
                started = True
        return started

    def _start(self, call: Call, now: float) -> bool:
        """Start one call if its `after` calls and its compute gap allow."""
        ready = self._ready_at(call)
        if ready is None or now < ready + call.gap_s:
            return False
        if call.init:  # resetting the buffer is host work, not the call's
            self._protect_all(call.buffer)
            self.buffers[call.buffer][:] = self.initial[call.data_key]
        call.start = ready + call.gap_s  # when it was due, however late this turn came
        self.unstarted -= 1
        call.incoming = [{src: Incoming.expect(m.length, m.reduce, call.data)
                          for src, m in recvs.items()} for recvs in call.recvs]
        self.active.append(call)
        self._enter_step(call, 0, call.start)
        return True

    def _ready_at(self, call: Call) -> float | None:
        """When its stream and its `after` calls let a call start (its gap follows), or None
        while an `after` call runs."""
        ends = [self.calls[a].end for a in call.after if a in self.calls]
        if 0.0 in ends:
            return None
        return max([self.free_at[call.stream], *ends])

    def _enter_step(self, call: Call, step: int, at: float) -> None:
        """Enter `step` at `at`, in the call's timeline: when the step before it ended (or
        the call started), not when this turn got to it."""
        call.step = step
        if self.board is not None:
            self.board.step(call.id, step, call.steps)
        if step == call.steps:
            return
        call.send_at = at + call.step_s + (call.start_s if step == 0 else 0.0)
        reduced = sum(m.length for m in call.recvs[step].values() if m.reduce)
        call.floor = call.send_at + reduced * call.reduce_s
        view = self.bytes[call.buffer]
        for m in call.sends[step]:
            call.pending.append(Transfer(
                call, step, m.dst, m.src_offset, m.dst_offset, m.length,
                -(-m.length // call.data), view[m.src_offset:m.src_offset + m.length],
                call.send_at))
        now = self.clock()
        for incoming in call.incoming[step].values():
            incoming.last = now  # the repair timer starts with the step (real time)
        for frame in self.stash.pop((call.id, step), []):
            self._apply(call, step, *frame)
            self.spare.append(frame[-1].obj)

    def _advance(self) -> bool:
        """Move calls whose current step is complete on to the next (or finish them), from
        the lead before the step's end on: its timeline enters the next step at the end,
        and the next step's frames are due a step latency after it (`horizon`)."""
        moved = False
        for call in list(self.active):
            while call.step < call.steps and not call.pending and not any(
                    i.missing for i in call.incoming[call.step].values()):
                call.wake = max([call.floor] +
                                [i.held for i in call.incoming[call.step].values()])
                if self.clock() < call.wake - self.lead:  # up to the lead before its end
                    break
                self._enter_step(call, call.step + 1, call.wake)
                moved = True
            if call.step == call.steps:
                self._finish(call)
                moved = True
        return moved

    def _finish(self, call: Call) -> None:
        if call.op == "avg":  # ncclAvg's division; a resend keeps the bytes sent
            self._protect_all(call.buffer)
            finish(self.buffers[call.buffer], *call.data_key)
        call.end = max(call.start, call.wake)  # its last step's end (a call may have none)
        self.free_at[call.stream] = max(self.free_at[call.stream], call.end)  # a group's last
        if call.check:  # its result, before a later call on the buffer reuses it
            call.result = self.buffers[call.buffer][result_region(
                call.collective, call.ranks, call.size, call.local, call.root,
                call.dtype)].copy()
        self.active.remove(call)
        self.unfinished -= 1

    # -- sending -----------------------------------------------------------------------------
    def _send_some(self) -> bool:
        """Hand frames to the port until it pushes back: repairs first, then every transfer
        due within the horizon (`sendable`), those due first first, round-robin among
        transfers due at once."""
        now = self.clock()
        groups = [[t for t in self.outstanding.values() if t.resend]]
        groups += [list(g) for _, g in groupby(self.sendable(now), key=lambda t: t.due)]
        progress = False
        for group in groups:
            sent, blocked = self._round_robin(group)
            progress |= sent
            if blocked:
                break
        return progress

    def sendable(self, now: float) -> list[Transfer]:
        """The transfers whose frames may go to the kernel now, in the order they fall due:
        from the program's start on, each once its due time is within the `horizon`, at
        the latest once it is within the lead.

        The lead is the least step latency of the program's calls (a GPU's, dilated): a
        transfer that appears later (a step that begins later) is due at least that long
        after it appears, so no frame handed over now can be overtaken on its link by
        one due before it, and a rank's frames leave its links in the order they fall due
        whatever the order its turns came in, while they come within the lead (later, the
        proof sees the lateness). A frame that goes before it is due carries
        when it is due (the header's `sent`), and its receiver paces it from then: so no
        turn waits for a step's latency, and one that comes late there costs nothing.
        """
        if now < self.started:
            return []
        horizon = self.horizon(now)
        due = [t for c in self.active for t in c.pending if t.due <= horizon]
        return sorted(due, key=lambda t: t.due)

    def horizon(self, now: float) -> float:
        """The latest due time a frame may be handed over with now: no transfer that
        appears later falls due before it. A running call's next step begins no sooner than
        its current step's sends are due (its floor), and is due a step latency after
        that; a call not yet started is due a launch and a step latency after it starts,
        from now on. So a call waiting out its launch latency sends its first step as it
        starts, and a step whose frames are all in moves on up to the lead before it ends
        (`_advance`) and sends its successor's frames at once, while the rank's other calls
        allow. With the lead alone (`sendable`) every rank woke on a timer at each step's
        due time, all at once on few cores, and the last ones' frames left late: in a
        trace that lateness outlives its call (docs/architecture.md)."""
        horizon = now + self.launch_lead if self.unstarted else math.inf
        for call in self.active:
            horizon = min(horizon, max(call.send_at, now) + call.step_s)
        return horizon

    def _round_robin(self, active: list[Transfer]) -> tuple[bool, bool]:
        """Hand these transfers' frames over, one from each in turn: whether a frame went
        for the first time, and whether the port pushed back."""
        progress = False
        while active:
            for transfer in list(active):
                repair = bool(transfer.resend)
                if not repair and transfer.next_seq == transfer.frames:
                    active.remove(transfer)
                    continue
                seq = transfer.resend[0] if repair else transfer.next_seq
                if not self._send_frame(transfer, seq):
                    return progress, True
                if repair:
                    transfer.resend.pop(0)
                    resent = min(transfer.call.data, transfer.length - seq * transfer.call.data)
                    self.stats.retransmitted_frames += 1
                    self.stats.retransmitted_bytes += resent
                    if self.board is not None:
                        self.board.repair(transfer.peer, resent)
                    if not transfer.resend:
                        transfer.done_at = self.clock()
                    continue
                progress = True
                transfer.next_seq += 1
                if transfer.next_seq == transfer.frames:
                    transfer.done_at = self.clock()
                    transfer.call.pending.remove(transfer)
                    self.outstanding[(transfer.call.id, transfer.step, transfer.peer)] = transfer
        return progress, False

    def _send_frame(self, transfer: Transfer, seq: int) -> bool:
        call = transfer.call
        start = seq * call.data
        data = transfer.data[start:start + call.data]
        length = len(data)
        pad = call.pad if length == call.data else padding(length, call.efficiency)
        link = self.links.get(transfer.peer, -1)
        leaves = self.wire.departure(link, self.clock() if transfer.resend else transfer.due)
        HEADER.pack_into(self.header, 0, MAGIC, VERSION, DATA, call.comm, transfer.step,
                         call.id, self.rank, transfer.peer, transfer.dst_offset + start,
                         length, seq, max(0, round((leaves - self.started) * 1e9)))
        status = self._data(transfer.peer, self.header, data, pad)
        if status != PUSHBACK and status != QUEUE_FULL:
            self.wire.left(link, leaves, FRAME_OVERHEAD + length + pad)
        if status:
            if status == PUSHBACK:
                return False
            if status == QUEUE_FULL:
                self.stats.queue_full += 1
                return False
            self.stats.link_down += 1  # LINK_DOWN: counted as sent, repaired later
        self.stats.frames_sent += 1
        self.stats.bytes_sent += length
        return True

    def _send_control(self, kind: int, op: int, step: int, peer: int, seqs=()) -> None:
        """An ACK or a NACK (listing missing frames) for transfer (op, step) from `peer`."""
        body = np.asarray(seqs[:MAX_NACK_SEQS], dtype=">u4").tobytes()
        HEADER.pack_into(self.control_header, 0, MAGIC, VERSION, kind, 0, step, op, self.rank,
                         peer, 0, len(body), 0, 0)
        if self._control(peer, self.control_header, body):
            if kind == ACK:
                self.stats.acks_sent += 1
            else:
                self.stats.nacks_sent += 1

    # -- receiving ---------------------------------------------------------------------------
    def datagram(self, n: int, received: float) -> None:
        """`n` bytes arrived in `staging`; the kernel received them at `received` (not when
        the loop got to them: an agent busy sending reads a queue of frames late, and their
        pacing must not start from then). A frame kept for later takes the staging buffer
        with it, and `staging` is another one."""
        if self.quiet_at is not None:  # a peer started sending: no jump from now on
            self.quiet_at = None
            self.rest.busy()
        if n < HEADER.size:
            return
        magic, version, kind, _comm, step, op, src, _dst, offset, length, seq, sent = \
            HEADER.unpack_from(self.staging, 0)
        if magic != MAGIC or version != VERSION or n < HEADER.size + length:
            return
        if kind == DATA:  # the data, then the protocol's padding
            if not self.live:  # kept for the program it belongs to (see the module's doc)
                self.early.append((n, received, self.staging))
                self._staging_kept()
            else:
                self._take(self.staging, n, received, step, op, src, offset, length, seq, sent)
        elif kind == ACK:
            self.outstanding.pop((op, step, src), None)
        elif kind == NACK:
            self._on_nack(op, step, src, np.frombuffer(
                self.staging, dtype=">u4", count=length // 4, offset=HEADER.size))

    def _take(self, frame: bytearray, n: int, received: float, step: int, op: int, src: int,
              offset: int, length: int, seq: int, sent: int) -> bool:
        """Land, keep (stash) or answer as a duplicate the data frame of `n` bytes in
        `frame` (its header's fields follow). Kept, it holds on to its buffer (True;
        `staging` is then another one)."""
        self.stats.frames_received += 1
        call = self.calls.get(op)
        data = memoryview(frame)[HEADER.size:HEADER.size + length]
        landing = self.wire.across(src, n + ETHER_IP_UDP, received, self.started + sent * 1e-9)
        if self._lands_now(call, step, offset, length):
            self._apply(call, step, src, seq, offset, landing, data)
        elif op >= self.oldest_op and (call is None or call.step < step):  # early
            self.stash.setdefault((op, step), []).append((src, seq, offset, landing, data))
            if frame is self.staging:
                self._staging_kept()
            return True
        else:  # a step already complete: a duplicate; the sender wants an ACK
            self.stats.duplicates += 1
            self._send_control(ACK, op, step, src)
        return False

    def _staging_kept(self) -> None:
        """The staging buffer now holds a kept frame: the next datagram goes to another."""
        self.staging = self.spare.pop() if self.spare else bytearray(STAGING)

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

    def _apply(self, call: Call, step: int, src: int, seq: int, offset: int,
               landing: Landing, data) -> None:
        """Land one frame; `landing.at` is when it reaches the GPU: received, held for its
        route's link delay (no netem) and its own transmission time, later if a frame sent
        before it is received after it (traffic.pacing)."""
        incoming = call.incoming[step].get(src) if 0 <= step < len(call.incoming) else None
        if incoming is None or seq >= incoming.frames or incoming.got[seq]:
            self.stats.duplicates += 1
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
        incoming.last = self.clock()
        incoming.held = max(incoming.held, landing.at)
        landing.holder = incoming
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
    def deadline(self, now: float) -> float:
        """The latest time to call `tick` again if nothing arrives before it."""
        wake = now + min(0.05, self.rto)
        for call in self.active:
            if call.pending:  # sendable when the horizon allows, the lead at the latest
                early = call.send_at - (self.launch_lead if self.unstarted else math.inf)
                later = [t for t in (early, call.send_at - self.lead) if t > now]
                if later:
                    wake = min(wake, later[0])
            if call.wake - self.lead > now:
                wake = min(wake, call.wake - self.lead)
        return min(wake, self._gap_end())

    def _gap_end(self) -> float:
        """When the first call that waits only for its compute gap may start (inf: none)."""
        end = math.inf
        for calls in self.streams.values():
            for i, call in enumerate(calls):  # the call that may start next, if any
                if call.step >= 0:
                    continue
                ready = self._ready_at(call)
                if (i == 0 or call.grouped) and ready is not None:
                    end = min(end, ready + call.gap_s)
                break
        return end

    def ready_peers(self, now: float) -> set[int]:
        """The peers it has frames ready for: wake when their links can take more."""
        peers = {t.peer for t in self.sendable(now)}
        peers.update(t.peer for t in self.outstanding.values() if t.resend)
        return peers

    def _stuck(self) -> str:
        timeout = self.timeout
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

    def report(self) -> Report:
        checks = {}
        for call in self.calls.values():
            if call.check:
                _, values = expected(*call.data_key)
                checks[call.id] = bool(np.array_equal(call.result, values))
        # A send's receiver posts its receive early and waits: the call starts with the send.
        return Report(calls={c.id: (c.end if c.collective == "send" and c.local else c.start,
                                    c.end) for c in self.calls.values()},
                      checks=checks, stats=replace(self.stats))
