"""The agent's logic (traffic.machine) without root: several ranks' state machines in one
process, joined by a fake network that can drop, delay, reorder and duplicate any frame or
take a link down, under a fake clock. Every call checks its result (nccl-tests' inputs and
expected outputs, traffic.schedule), so a frame reduced twice or lost for good fails."""

from __future__ import annotations

import heapq
import itertools
import math
import os
from collections import Counter
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pytest

from emulator.models.endpoints import CallCosts
from traffic.board import Board
from traffic.gaps import GUARD_S, RankClock, SharedClock, jump_to
from traffic.header import (
    ACK,
    DATA,
    FRAME_OVERHEAD,
    HEADER,
    NACK,
    VERSION,
    frame_payload,
    wire_bytes,
)
from traffic.launcher import CallPlan, call_specs
from traffic.machine import LINK_DOWN, PUSHBACK, QUEUE_FULL, SENT, Machine
from traffic.protocol import AgentStats, Go, Load, Peer, Report, Route, Setup
from traffic.schedule import build, expected

MTU = 1500
PAYLOAD = frame_payload(MTU)  # data bytes a frame: small calls still take several frames
RTO = 1e-3
LATENCY = 1e-5  # every frame's trip, s
TURNS = 200_000  # a run that has not ended by then has run away


class Frame(NamedTuple):
    """A frame on the fake network: its header fields, and how often it was sent before."""

    kind: int
    op: int
    step: int
    src: int
    dst: int
    seq: int
    nth: int


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Port:
    """One rank's side of the network: what traffic.agent does with sockets."""

    net: Net
    rank: int
    budget: int = -1  # data frames the link takes before it pushes back (-1: any number)

    def data(self, peer: int, header: bytearray, data: memoryview, pad: int) -> int:
        if self.net.is_down(self.rank, peer):
            return LINK_DOWN
        if self.budget == 0:
            self.net.pushed_back.add(self.rank)
            return self.net.refusal
        self.budget -= 1
        self.net.carry(self.rank, peer, bytes(header) + bytes(data) + bytes(pad))
        return SENT

    def control(self, peer: int, header: bytearray, body: bytes) -> bool:
        if self.net.is_down(self.rank, peer):
            return False
        self.net.carry(self.rank, peer, bytes(header) + body)
        return True


class Net:
    """Ranks joined by a fake network. Every frame arrives LATENCY after it is sent, once for
    every delay `fate(frame)` lists ([] loses it); a link listed in `down` loses every frame
    while down. Time jumps to the next arrival or deadline when no rank can move, or `late`
    after it (as an agent's turn comes late when the host is busy)."""

    def __init__(self, ranks: int, fate=None, routes=None, budget: int = -1,
                 skip: bool = False, peers=None, late: float = 0.0) -> None:
        self.clock = Clock()
        self.fate = fate or (lambda frame: [0.0])
        self.down: list[tuple[int, int, float, float]] = []  # (src, dst, from, until)
        self.flight: list[tuple[float, int, int, bytes]] = []  # (due, order, dst, datagram)
        self.order = itertools.count()
        self.times_sent: Counter = Counter()
        self.delivered: Counter = Counter()  # by kind
        self.budget = budget
        self.refusal = PUSHBACK
        self.pushed_back: set[int] = set()
        self.stamps: dict[tuple, float] = {}  # each data frame's `sent`, s after the start
        self.late = late
        self.ports = [Port(self, r, budget) for r in range(ranks)]
        # Each rank's clock: the fake wall clock plus what the ranks skipped together (one
        # SharedClock in this one process; a jump "wakes" the others by their pid, here
        # their rank, as SIGUSR1 does the agents).
        self.skip = skip
        shared = SharedClock(ranks)
        self.clocks = [RankClock(shared, r, ranks, wall=self.clock, pid=r,
                                 wake=lambda pids: [self.clocks[p].refresh() for p in pids])
                       for r in range(ranks)]
        self.machines = [Machine(Setup(rank=r, ranks=ranks, peers=(peers or {}).get(r, {}),
                                       mtu=MTU, rto=RTO, sndbuf=0,
                                       routes=(routes or {}).get(r, {})), self.clocks[r].now,
                                 port, self.clocks[r])
                         for r, port in enumerate(self.ports)]
        self.turns = 0
        self.waiting: dict[int, tuple[float, Go]] = {}  # ranks whose go comes late: when, go
        self.skew = 0.0  # added to the stamp of a data frame reaching a rank with no program

    def is_down(self, src: int, dst: int) -> bool:
        return any((s, d) == (src, dst) and start <= self.clock.now < end
                   for s, d, start, end in self.down)

    def carry(self, src: int, dst: int, datagram: bytes) -> None:
        _, _, kind, _, step, op, _, _, _, _, seq, sent = HEADER.unpack_from(datagram)
        key = (kind, op, step, src, dst, seq)
        frame = Frame(*key, self.times_sent[key])
        if kind == DATA:
            self.stamps[frame] = sent * 1e-9
        self.times_sent[key] += 1
        for delay in self.fate(frame):
            heapq.heappush(self.flight, (self.clock.now + LATENCY + delay, next(self.order),
                                         dst, datagram))

    def deliver(self, rank: int) -> bool:
        """Hand `rank` every datagram due by now; did any arrive?"""
        machine, later, arrived = self.machines[rank], [], False
        while self.flight and self.flight[0][0] <= self.clock.now:
            item = heapq.heappop(self.flight)
            if item[2] != rank:
                later.append(item)
                continue
            due, _, _, datagram = item
            machine.staging[:len(datagram)] = datagram
            skew = self.skew if rank in self.waiting else 0.0
            machine.datagram(len(datagram), due + self.clocks[rank].shift + skew)
            self.delivered[datagram[3]] += 1  # the kind byte
            arrived = True
        for item in later:
            heapq.heappush(self.flight, item)
        return arrived

    def run(self, calls: list[CallPlan], timeout: float = 1.0, watch=None,
            routes=None, late_go: tuple[int, float] | None = None) -> list[Report]:
        """Run one program on every rank, as traffic.launcher and traffic.agent do;
        `watch(net)` after every turn; `routes`: per rank, the program's own (Go.routes);
        `late_go` (rank, seconds): that rank, loaded with the others, gets its go that
        much after the common start (an agent the launcher reached last), and frames reach
        it before."""
        programs: list[list] = [[] for _ in self.machines]
        for call in calls:
            for rank, spec in zip(call.group, call_specs(call), strict=True):
                programs[rank].append(spec)
        go = Go(start=self.clock.now, timeout=timeout, rto=RTO, dilation=1.0, skip=self.skip)
        for rank, (machine, clock, program) in enumerate(
                zip(self.machines, self.clocks, programs, strict=True)):
            machine.load(Load(calls=tuple(program)))
            own = replace(go, routes=(routes or {}).get(rank, {}))
            if late_go is not None and rank == late_go[0]:
                self.waiting[rank] = (go.start + late_go[1], own)
                continue
            clock.begin(go.start, go.skip)
            machine.go(own)
        for _ in range(TURNS):
            if not any(m.unfinished for m in self.machines):
                return [replace(m.report(), skipped_s=c.skipped_s)
                        for m, c in zip(self.machines, self.clocks, strict=True)]
            self.turn()
            if watch is not None:
                watch(self)
        raise AssertionError("the run did not end")

    def turn(self) -> None:
        """Every rank takes a turn; if none moved, time moves on (to the next deadline, in
        wall time: each rank's clock leads the wall clock by what was skipped)."""
        self.turns += 1
        progress = False
        for rank, machine in enumerate(self.machines):
            self.ports[rank].budget = self.budget
            if rank in self.waiting and self.clock.now >= self.waiting[rank][0]:
                go = self.waiting.pop(rank)[1]
                self.clocks[rank].begin(go.start, go.skip)
                machine.go(go)
            arrived = self.deliver(rank)
            if machine.unfinished:
                progress |= machine.tick(self.clocks[rank].now(), arrived)
            else:
                machine.idle()  # between programs: answers repairs
        if not progress:
            walls = []
            for machine, clock in zip(self.machines, self.clocks, strict=True):
                if not machine.unfinished:
                    continue
                deadline = machine.deadline(clock.now())
                assert deadline > clock.now(), "a rank would spin: its deadline has passed"
                wall = deadline - clock.shift
                while wall + clock.shift < deadline:  # the shift's rounding: wake no sooner
                    wall = math.nextafter(wall, math.inf)
                walls.append(wall)
            walls += [self.flight[0][0]] if self.flight else []
            walls += [when for when, _ in self.waiting.values()]
            self.clock.now = max(self.clock.now,
                                 min(walls, default=self.clock.now + RTO) + self.late)

    def settle(self, seconds: float) -> None:
        """Let the idle ranks answer each other for a while."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.turn()

    def stats(self, reports: list[Report]) -> AgentStats:
        return sum((r.stats for r in reports), AgentStats())


def call(id: int, collective: str = "allreduce", algorithm: str = "ring", ranks: int = 4,
         size: int = 16384, **plan) -> CallPlan:
    """A checked call over ranks 0..ranks-1 with fresh inputs."""
    schedule = build(collective, algorithm, ranks, size)
    return CallPlan(id=id, schedule=schedule, group=tuple(range(ranks)),
                    **{"init": True, "check": True, **plan})


def assert_right(reports: list[Report], ids) -> None:
    for rank, report in enumerate(reports):
        assert report.checks == dict.fromkeys(
            [i for i in ids if i in report.checks], True), rank
        assert all(i in r.checks for r in reports for i in ids if i in r.calls)


def only_first(kind: int, **where):
    """A fate that loses the first sending of every frame of `kind` matching `where`."""
    def fate(frame: Frame) -> list[float]:
        hit = frame.kind == kind and frame.nth == 0 and all(
            getattr(frame, k) == v for k, v in where.items())
        return [] if hit else [0.0]
    return fate


# -- a clean network ---------------------------------------------------------------------------
@pytest.mark.parametrize(("collective", "algorithm"), [
    ("allreduce", "ring"), ("allreduce", "tree"), ("allreduce", "halving-doubling"),
    ("allgather", "ring"), ("reducescatter", "ring"), ("broadcast", "ring"),
    ("alltoall", "direct"),
])
def test_every_rank_ends_with_the_right_data(collective, algorithm):
    net = Net(4)
    reports = net.run([call(1, collective, algorithm)])
    assert all(r.checks == {1: True} for r in reports)
    assert net.stats(reports).retransmitted_frames == 0
    assert net.stats(reports).duplicates == 0


def test_the_check_fails_when_a_frame_carries_wrong_data():
    """The checks these tests lean on can fail: a frame that lands corrupted is caught."""
    net = Net(4)
    carry = net.carry

    def corrupt(src: int, dst: int, datagram: bytes) -> None:
        if datagram[3] == DATA and src == 0 and HEADER.unpack_from(datagram)[10] == 0:
            datagram = datagram[:HEADER.size] + bytes([datagram[HEADER.size] ^ 0xFF]) + \
                datagram[HEADER.size + 1:]
        carry(src, dst, datagram)

    net.carry = corrupt
    reports = net.run([call(1)])
    assert not all(r.checks[1] for r in reports)


def test_the_result_is_the_expected_one_byte_for_byte():
    net = Net(4)
    net.run([call(1, size=4096 * 3)])
    for machine in net.machines:
        c = machine.calls[1]
        assert np.array_equal(c.result, expected(*c.data_key)[1])


# -- loss -----------------------------------------------------------------------------------
def test_a_lost_frame_is_asked_for_again_and_resent_once():
    net = Net(4, fate=only_first(DATA, src=0, dst=1, step=0, seq=1))
    reports = net.run([call(1)])
    assert all(r.checks == {1: True} for r in reports)
    assert reports[1].stats.nacks_sent >= 1
    assert net.times_sent[(DATA, 1, 0, 0, 1, 1)] == 2  # the lost frame, resent once
    # besides, perhaps, the sender's probe of its unacknowledged transfer (frame 0)
    assert 1 <= reports[0].stats.retransmitted_frames <= 2
    assert net.stats(reports).retransmitted_bytes == PAYLOAD * reports[0].stats.retransmitted_frames


def test_a_transfer_lost_whole_is_probed_by_its_sender():
    """No frame arrived, so the receiver cannot tell: the sender's unacknowledged transfer
    resends its first frame, which draws a NACK for the rest."""
    net = Net(4, fate=only_first(DATA, src=2, dst=3, step=1))
    reports = net.run([call(1)])
    assert all(r.checks == {1: True} for r in reports)
    assert reports[2].stats.retransmitted_frames >= 3  # its 3 frames, the first as a probe
    assert reports[3].stats.nacks_sent >= 1


def test_a_lost_ack_draws_a_probe_and_a_second_ack():
    net = Net(4, fate=only_first(ACK, src=1, dst=0))
    reports = net.run([call(1)])
    net.settle(10 * RTO)
    assert all(r.checks == {1: True} for r in reports)
    assert all(not m.outstanding for m in net.machines)  # every transfer acknowledged at last
    assert net.times_sent[(ACK, 1, 0, 1, 0, 0)] == 2


def test_random_loss_of_every_kind_of_frame_still_delivers_everything():
    rng = np.random.default_rng(7)
    net = Net(4, fate=lambda frame: [] if rng.random() < 0.1 else [0.0])
    reports = net.run([call(1), call(2, "allgather"), call(3, "alltoall", "direct")])
    assert_right(reports, (1, 2, 3))
    assert net.stats(reports).retransmitted_frames > 0


def test_the_board_shows_each_calls_steps_and_whom_each_rank_resent_to():
    """With a progress board (traffic.board), every rank's steps in each call go forward
    while the program runs, each call leaves the board when it ends, and the bytes
    a rank resent to each peer are its resends: here only rank 2's, to rank 3."""
    board = Board(4)
    try:
        net = Net(4, fate=only_first(DATA, src=2, dst=3, step=1))
        for rank, machine in enumerate(net.machines):
            machine.board = board.row(rank)
        seen: dict[tuple[int, int], list[int]] = {}

        def watch(_net) -> None:
            for call_id, ranks in board.read().steps(frozenset({1, 2})).items():
                for rank, step in ranks.items():
                    steps = seen.setdefault((call_id, rank), [])
                    if not steps or steps[-1] != step:
                        steps.append(step)

        reports = net.run([call(1), call(2)], watch=watch)
        assert_right(reports, (1, 2))
        steps = len(build("allreduce", "ring", 4, 16384).steps)
        # Watched once a turn (a turn may pass a step whose frames came early): forward
        # only, to the last step, for every rank of both calls.
        assert set(seen) == {(c, r) for c in (1, 2) for r in range(4)}
        assert all(s == sorted(set(s)) and s[-1] == steps - 1 and s[0] >= 0
                   for s in seen.values()), seen
        assert seen[(1, 0)] == list(range(steps))  # rank 0 of the first call saw each step
        reading = board.read()
        assert reading.steps(frozenset({1, 2})) == {}  # every call ended
        assert reading.resent() == {(2, 3): reports[2].stats.retransmitted_bytes}
        assert reports[2].stats.retransmitted_bytes > 0
    finally:
        board.close()


# -- reordering, duplicates, late frames ------------------------------------------------------
def test_frames_arriving_in_reverse_order_land_right():
    net = Net(4, fate=lambda frame: [(10 - frame.seq) * 1e-6] if frame.kind == DATA else [0.0])
    reports = net.run([call(1, size=4 * PAYLOAD * 8)])
    assert all(r.checks == {1: True} for r in reports)
    assert net.stats(reports).retransmitted_frames == 0


def test_frames_of_later_steps_that_overtake_earlier_ones_wait_or_land_safely():
    """Step 0's frames take long, later steps' are quick: later frames arrive first."""
    net = Net(4, fate=lambda frame: [5e-5] if frame.kind == DATA and frame.step == 0 else [0.0])
    reports = net.run([call(1), call(2, "allgather")])
    assert_right(reports, (1, 2))


def test_every_frame_arriving_twice_is_reduced_once():
    net = Net(4, fate=lambda frame: [0.0, 2e-6])
    reports = net.run([call(1), call(2, "reducescatter")])
    assert_right(reports, (1, 2))
    stats = net.stats(reports)
    assert stats.duplicates == stats.frames_received - stats.frames_sent > 0
    assert stats.retransmitted_frames == 0


def test_late_copies_of_an_earlier_call_are_ignored_by_the_next():
    """Copies of call 1's frames arrive while call 2 (same buffer, not reset) runs."""
    net = Net(4, fate=lambda frame: [0.0, 8e-5] if frame.kind == DATA and frame.op == 1
              else [0.0])
    reports = net.run([call(1, check=False), call(2, init=False, check=False),
                       call(3)])
    assert_right(reports, (3,))
    assert net.stats(reports).duplicates > 0


def test_late_copies_from_an_earlier_program_are_ignored():
    net = Net(4, fate=lambda frame: [0.0, 1e-4] if frame.kind == DATA and frame.op == 1
              else [0.0])
    first = net.run([call(1)])
    second = net.run([call(2), call(3, init=False, check=False)])
    assert_right(first, (1,))
    assert_right(second, (2,))
    assert net.stats(second).duplicates > 0


# -- NACK storms ------------------------------------------------------------------------------
def test_a_nack_storm_resends_at_most_what_it_asks_for_and_then_stops():
    """Every NACK arrives 20 times over a while: repairs stay bounded by the copies, the data
    stays right, and once all is acknowledged the network falls silent."""
    lost = only_first(DATA, src=0, dst=1, step=0, seq=1)

    def fate(frame: Frame) -> list[float]:
        if frame.kind == NACK:
            return [k * 2e-5 for k in range(20)]
        return lost(frame)

    net = Net(4, fate=fate)
    reports = net.run([call(1)])
    assert all(r.checks == {1: True} for r in reports)
    assert 1 <= reports[0].stats.retransmitted_frames <= net.delivered[NACK]
    net.settle(10 * RTO)
    sent = sum(net.times_sent.values())
    net.settle(20 * RTO)
    assert sum(net.times_sent.values()) == sent  # quiet: no repair feeds another


def test_a_nack_for_frames_never_sent_resends_nothing():
    net = Net(2)
    reports = net.run([call(1, "sendrecv", "direct", ranks=2, size=PAYLOAD * 4)])
    machine = net.machines[0]
    assert reports[0].checks == {1: True}
    before = sum(net.times_sent.values())
    body = np.asarray([99, 100], dtype=">u4").tobytes()
    header = HEADER.pack(0x4E57, VERSION, NACK, 0, 0, 7, 1, 0, 0, len(body), 0, 0)  # op 7: unknown
    machine.staging[:HEADER.size + len(body)] = header + body
    machine.datagram(HEADER.size + len(body), net.clock.now)
    net.settle(5 * RTO)
    assert sum(net.times_sent.values()) == before


# -- streams, groups, dependencies ------------------------------------------------------------
def test_grouped_calls_start_together_and_the_stream_waits_for_the_group():
    net = Net(4)
    reports = net.run([
        call(1, buffer="a"),
        call(2, "allgather", buffer="b", grouped=True),
        call(3, buffer="a"),  # the stream's next call: after the whole group
        call(4, "reducescatter", stream="other", after=(1,), gap_s=2e-4, buffer="c"),
    ])
    assert_right(reports, (1, 2, 3, 4))
    for r in reports:
        (s1, e1), (s2, e2), (s3, _), (s4, _) = (r.calls[i] for i in (1, 2, 3, 4))
        assert s1 == s2  # one pass starts the group
        assert s3 >= max(e1, e2)
        assert s4 >= e1 + 2e-4


def test_streams_run_side_by_side():
    net = Net(4)
    reports = net.run([call(1, stream="x", buffer="x", size=1 << 16),
                       call(2, stream="y", buffer="y", size=1 << 16)])
    assert_right(reports, (1, 2))
    for r in reports:
        (s1, e1), (s2, e2) = r.calls[1], r.calls[2]
        assert s1 == s2 and s2 < e1 and s1 < e2  # neither waited for the other


def test_a_call_over_some_ranks_leaves_the_others_idle():
    net = Net(4)
    plan = replace(call(1, ranks=2), group=(1, 3))
    reports = net.run([plan])
    assert reports[1].checks == reports[3].checks == {1: True}
    assert reports[0].calls == reports[2].calls == {}


# -- links ------------------------------------------------------------------------------------
def test_a_link_down_then_up_stalls_the_call_which_then_completes():
    net = Net(4)
    start = net.clock.now
    net.down.append((1, 2, start, start + 20 * RTO))
    reports = net.run([call(1, size=1 << 16)], timeout=0.5)
    assert all(r.checks == {1: True} for r in reports)
    assert reports[1].stats.link_down > 0
    assert max(end for r in reports for _, end in r.calls.values()) > start + 20 * RTO


def test_a_link_that_stays_down_ends_the_run_by_timeout_naming_the_silent_rank():
    net = Net(4)
    net.down.append((1, 2, 0.0, float("inf")))
    with pytest.raises(TimeoutError, match=r"rank \d: no progress for 0\.1 s in call 1 step \d: "
                                           r"waiting for ranks \[\d\]"):
        net.run([call(1)], timeout=0.1)


@pytest.mark.parametrize(("refusal", "counted"), [(PUSHBACK, 0), (QUEUE_FULL, 1)])
def test_a_link_that_pushes_back_is_offered_the_frame_again(refusal, counted):
    net = Net(4, budget=2)
    net.refusal = refusal
    reports = net.run([call(1, size=1 << 16)])
    assert all(r.checks == {1: True} for r in reports)
    assert net.pushed_back == {0, 1, 2, 3}
    assert (net.stats(reports).queue_full > 0) == bool(counted)
    assert net.stats(reports).retransmitted_frames == 0


def test_a_held_link_delay_ends_the_step_no_sooner():
    """A route's link delay (no netem) holds the last frame: a one-frame send takes it, from
    when the frame was due to leave (its stamp: the call's start). The fake network's LATENCY,
    the frame's time in the kernel, passes within the delay; before frames were stamped it
    was added to it."""
    delay = 3e-4
    routes = {1: {0: Route(delay_s=delay, rate_bps=1e18, link=0, link_rate_bps=1e18)}}
    net = Net(2, routes=routes)
    reports = net.run([call(1, "sendrecv", "direct", ranks=2, size=1024)])
    start, end = reports[1].calls[1]
    assert reports[1].checks == {1: True}
    assert end == pytest.approx(start + delay, rel=0, abs=1e-9)


@pytest.mark.parametrize("skew", [0.0, 1.8e9])
def test_a_frame_that_reaches_a_rank_before_its_program_starts_is_paced_by_that_program(skew):
    """Rank 1's go comes 1e-4 s after the common start (the launcher reached it last), when
    rank 0's frame has already arrived. It waits for the program and is paced from its start:
    due then, held for the link delay, as on time. Before, it was paced from the last
    program's start and ended the step when received, sooner than the wire allows; and a
    stamp from before the agent knew its clock's offset (`skew`: 56 years ahead) held the
    step for ever (star:256 stalled)."""
    delay = 3e-4
    routes = {1: {0: Route(delay_s=delay, rate_bps=1e18, link=0, link_rate_bps=1e18)}}
    program = [call(1, "sendrecv", "direct", ranks=2, size=1024)]
    net = Net(2, routes=routes)
    net.run(program)
    net.settle(1e-3)
    net.skew = skew
    program = [call(2, "sendrecv", "direct", ranks=2, size=1024)]
    reports = net.run(program, late_go=(1, 1e-4))
    start, end = reports[1].calls[2]
    assert reports[1].checks == {2: True}
    assert end == pytest.approx(start + delay, rel=0, abs=1e-9)


@pytest.mark.parametrize("extra", [1e-4, 5e-4])
def test_a_frame_received_after_the_wire_would_have_delivered_it_ends_the_step_when_received(
        extra):
    """The network holds the frame `extra` longer: within the link delay it changes nothing;
    beyond it the frame ends the step when it came, not when its stamp says it could have."""
    delay = 3e-4
    routes = {1: {0: Route(delay_s=delay, rate_bps=1e18, link=0, link_rate_bps=1e18)}}
    net = Net(2, routes=routes,
              fate=lambda frame: [extra] if frame.kind == DATA and frame.src == 0 else [0.0])
    reports = net.run([call(1, "sendrecv", "direct", ranks=2, size=1024)])
    start, end = reports[1].calls[1]
    assert reports[1].checks == {1: True}
    assert end == pytest.approx(max(start + delay, start + LATENCY + extra), rel=0, abs=1e-9)


def test_a_turn_that_comes_late_does_not_delay_the_next_step():
    """Every turn that waits comes `late` after its deadline. Step 0 of a two-rank ring
    all-reduce ends at W, its frame held for the link delay after it was due; the turn that
    sees it runs at W + late. Step 1 is still entered at W: its frames are due one step cost
    later and the call ends when they have been held for the delay, as with turns on time."""
    delay, late = 3e-4, 2e-4  # a late turn's frames still arrive within the delay
    costs = CallCosts("simple", start_s=5e-5, step_s=2e-5, efficiency=1.0,
                      reduce_s_per_byte=0.0)
    routes = {r: {1 - r: Route(delay, 1e18, 0, 1e18)} for r in (0, 1)}
    program = [call(1, ranks=2, size=1024, costs=costs)]
    entered = []

    def watch(net: Net) -> None:
        c = net.machines[0].calls[1]
        if c.step == 1 and not entered:
            entered.append((net.clock.now, c.send_at))

    on_time = Net(2, routes=routes).run(program)
    net = Net(2, routes=routes, late=late)
    reports = net.run(program, watch=watch)
    assert_right(reports, (1,))
    start, end = reports[0].calls[1]
    wake = start + costs.start_s + costs.step_s + delay  # step 0's end
    turn, send_at = entered[0]
    assert send_at == pytest.approx(wake + costs.step_s, rel=0, abs=1e-9)
    assert turn > send_at  # the turn came late: after even step 1's frames were due
    assert end == pytest.approx(send_at + delay, rel=0, abs=1e-9)
    assert_same_times(reports, on_time)


def test_a_step_s_frames_leave_as_it_begins_so_a_late_turn_costs_nothing():
    """Every turn that waits comes `late`, longer than the link delay: a frame sent that
    late would arrive after the wire had delivered it. But a step's frames go to the kernel
    as the step begins, stamped with when they are due (after the GPU's step latency, longer
    than `late`), so they arrive before they are due and the call takes its time on time.
    Before, each step's sends waited for a turn at their due time, and every step ran late."""
    delay, late = 1e-4, 2e-4
    costs = CallCosts("simple", start_s=5e-4, step_s=5e-4, efficiency=1.0,
                      reduce_s_per_byte=0.0)
    routes = {r: {1 - r: Route(delay, 1e18, 0, 1e18)} for r in (0, 1)}
    program = [call(1, ranks=2, size=1024, costs=costs)]
    on_time = Net(2, routes=routes).run(program)
    reports = Net(2, routes=routes, late=late).run(program)
    assert_right(reports, (1,))
    start, end = reports[0].calls[1]
    assert end - start == pytest.approx(costs.start_s + 2 * (costs.step_s + delay), rel=0,
                                         abs=1e-9)
    assert_same_times(reports, on_time)


def test_a_call_in_its_launch_latency_hands_its_first_step_over_as_it_starts():
    """A GPU's launch latency is many step latencies: the first step's frames go to the
    kernel as the call starts, stamped with when they are due (a launch and a step latency
    later), since no transfer that appears later can fall due before them. With the lead
    alone (a step latency) they waited for a timed wake-up just before they were due, on
    every rank at once."""
    costs = CallCosts("simple", start_s=5e-4, step_s=5e-5, efficiency=1.0,
                      reduce_s_per_byte=0.0)
    net = Net(2)
    go = Go(start=net.clock.now, timeout=1.0, rto=RTO, dilation=1.0, skip=False)
    for machine, clock, spec in zip(net.machines, net.clocks,
                                    call_specs(call(1, ranks=2, size=4096, costs=costs)),
                                    strict=True):
        machine.load(Load(calls=(spec,)))
        clock.begin(go.start, go.skip)
        machine.go(go)
        assert machine.tick(net.clock.now)
    assert {dst for _, _, dst, _ in net.flight} == {0, 1}
    assert net.stamps and all(stamp == pytest.approx(costs.start_s + costs.step_s, abs=1e-12)
                              for stamp in net.stamps.values())


def test_a_step_whose_frames_are_in_moves_on_a_lead_before_it_ends():
    """Step 0's frames are in, held for the link delay: rank 0 enters step 1 a step latency
    (the lead) before step 0 ends, in its timeline at the end, so step 1's frames go to
    the kernel at once, due a step latency after the end; no rank waits for a timed
    wake-up at each step's end. The call takes the same time."""
    delay = 3e-4
    costs = CallCosts("simple", start_s=5e-5, step_s=1e-4, efficiency=1.0,
                      reduce_s_per_byte=0.0)
    routes = {r: {1 - r: Route(delay, 1e18, 0, 1e18)} for r in (0, 1)}
    entered, left = [], []

    def watch(net: Net) -> None:
        c = net.machines[0].calls[1]
        if c.step == 1 and not entered:
            entered.append((net.clock.now, c.send_at))
        if not left and any(k[0] == DATA and k[2] == 1 and k[3] == 0 for k in net.times_sent):
            left.append(net.clock.now)

    reports = Net(2, routes=routes).run([call(1, ranks=2, size=1024, costs=costs)],
                                        watch=watch)
    assert_right(reports, (1,))
    start, end = reports[0].calls[1]
    wake = start + costs.start_s + costs.step_s + delay  # step 0's end
    turn, send_at = entered[0]
    assert turn == left[0] == pytest.approx(wake - costs.step_s, rel=0, abs=1e-9)
    assert send_at == pytest.approx(wake + costs.step_s, rel=0, abs=1e-9)
    assert end == pytest.approx(send_at + delay, rel=0, abs=1e-9)


def test_a_call_whose_turn_comes_late_starts_when_it_was_due():
    """The second call is due a compute gap after the first ends; the turn that starts it
    comes `late` after that. Its time counts from when it was due (and its frames, held for
    the link delay from then, arrive as with turns on time)."""
    gap, delay, late = 1e-4, 3e-4, 2e-4
    routes = {r: {1 - r: Route(delay, 1e18, 0, 1e18)} for r in (0, 1)}
    program = [call(1, ranks=2, size=1024), call(2, ranks=2, size=1024, gap_s=gap)]
    on_time = Net(2, routes=routes).run(program)
    reports = Net(2, routes=routes, late=late).run(program)
    assert_right(reports, (1, 2))
    for r in reports:
        assert r.calls[2][0] == pytest.approx(r.calls[1][1] + gap, rel=0, abs=1e-9)
    assert_same_times(reports, on_time)


def test_a_program_is_set_up_when_its_go_arrives_and_sends_nothing_before_its_start():
    """An agent sets its program up as soon as its go arrives, before the common start:
    eight agents waking at the start on two cores paid for it there, and the last ones
    started late. The calls due at the start have entered their first step; not one frame
    leaves before the start, and the first ones leave at it."""
    net = Net(2)
    specs = call_specs(call(1, ranks=2, size=4096))
    lead = 1e-3
    go = Go(start=net.clock.now + lead, timeout=1.0, rto=RTO, dilation=1.0, skip=False)
    for machine, clock, spec in zip(net.machines, net.clocks, specs, strict=True):
        machine.load(Load(calls=(spec,)))
        clock.begin(go.start, go.skip)
        machine.go(go)
        entered = machine.calls[1]
        assert (entered.step, entered.start) == (0, go.start) and entered.pending
        assert not machine.tick(net.clock.now)  # before the start: nothing to do yet
    assert not net.flight
    net.clock.now = go.start
    assert all(machine.tick(net.clock.now) for machine in net.machines)
    assert {dst for _, _, dst, _ in net.flight} == {0, 1}


RATE = 8e9  # bit/s: a full frame takes 1.514 us
FRAME_S = (FRAME_OVERHEAD + PAYLOAD) * 8 / RATE


def leaving_on(links: dict[int, int]) -> dict:
    """Rank 0's peers and routes, its frames to each peer leaving on the given link (-1:
    unknown; its frames from that peer still arrive on a link it knows, 7)."""
    peers = {peer: Peer("eth0", "02:00:00:00:00:00", "02:00:00:00:00:01", "10.0.0.1",
                        f"10.0.0.{peer + 1}", link) for peer, link in links.items()}
    routes = {peer: Route(0.0, RATE, 7 if link < 0 else link, RATE, paced=True)
              for peer, link in links.items()}
    return {"peers": {0: peers}, "routes": {0: routes}}


@pytest.mark.parametrize(("links", "shared"), [((7, 7), True), ((7, 8), False),
                                               ((-1, -1), False)])
def test_frames_to_two_peers_share_the_link_they_leave_on(links, shared):
    """Rank 0 sends 3 frames to rank 1 and 3 to rank 2 at once (a group): on one link
    they leave one frame time apart, all six; on two links each peer's three do, side by
    side; on links it does not know they all leave when due."""
    frames = 3
    net = Net(3, **leaving_on(dict(zip((1, 2), links, strict=True))))
    sends = [replace(call(i, "send", "direct", ranks=2, size=frames * PAYLOAD, buffer=f"b{i}",
                          grouped=i == 2), group=(0, i)) for i in (1, 2)]
    reports = net.run(sends)
    assert_right(reports, (1, 2))
    start = reports[0].calls[1][0] - net.machines[0].started
    stamps = {dst: sorted(t - start for f, t in net.stamps.items() if f.dst == dst)
              for dst in (1, 2)}
    if shared:
        assert sorted(stamps[1] + stamps[2]) == pytest.approx(
            [k * FRAME_S for k in range(2 * frames)], rel=0, abs=2e-9)
    else:
        apart = FRAME_S if links[0] >= 0 else 0.0
        assert stamps == {dst: pytest.approx([k * apart for k in range(frames)], rel=0,
                                             abs=2e-9) for dst in (1, 2)}


def test_concurrent_calls_leave_a_link_in_the_order_they_fall_due_though_turns_come_late():
    """Rank 0 sends to rank 1 on two streams at once, both over its one link: call 2's
    frames are due 50 us after the start, call 1's 52 us after (GPU step latencies). Call
    2's four leave first, then call 1's, whether every turn comes on time or 20 us late:
    the frames go to the kernel in the order they fall due, once within the least latency
    (50 us) of it, so one that falls due later never goes first, and they arrive before
    they are due. Before, they went at their due time: a late turn found both due and sent
    them in turn, a frame each, so both ended later, and their frames arrived late."""
    frames = 4
    costs = {i: CallCosts("simple", start_s=0.0, step_s=step_s, efficiency=1.0,
                          reduce_s_per_byte=0.0) for i, step_s in ((1, 5.2e-5), (2, 5e-5))}
    program = [call(i, "send", "direct", ranks=2, size=frames * PAYLOAD, buffer=f"b{i}",
                    stream=f"s{i}", costs=costs[i]) for i in (1, 2)]
    on_time, late = Net(2, **leaving_on({1: 7})), Net(2, late=2e-5, **leaving_on({1: 7}))
    reports = on_time.run(program)
    assert_right(reports, (1, 2))
    assert_same_times(late.run(program), reports)
    assert late.stamps == on_time.stamps
    stamps = {op: sorted(t for f, t in on_time.stamps.items() if f.op == op) for op in (1, 2)}
    assert stamps[2] == pytest.approx([5e-5 + k * FRAME_S for k in range(frames)], rel=0,
                                      abs=2e-9)
    assert stamps[1] == pytest.approx([5e-5 + (frames + k) * FRAME_S for k in range(frames)],
                                      rel=0, abs=2e-9)


@pytest.mark.parametrize("refusal", [PUSHBACK, QUEUE_FULL])
def test_a_frame_the_link_refused_does_not_take_its_time(refusal):
    """The port takes one frame a turn: each refused frame, offered again, leaves right
    after the one before it, not a frame time later for the try that did not go."""
    frames = 4
    net = Net(2, budget=1, **leaving_on({1: 0}))
    net.refusal = refusal
    reports = net.run([call(1, "send", "direct", ranks=2, size=frames * PAYLOAD)])
    assert_right(reports, (1,))
    assert 0 in net.pushed_back
    start = reports[0].calls[1][0] - net.machines[0].started
    assert net.stamps == {Frame(DATA, 1, 0, 0, 1, seq, 0): pytest.approx(
        start + seq * FRAME_S, rel=0, abs=2e-9) for seq in range(frames)}


def test_a_link_slowed_for_a_program_paces_its_frames_at_the_rate_it_has():
    """Setup's routes are the healthy links; a program's (Go.routes, a link that lost
    channels) pace every frame at the slower rate: never faster than the link it has."""
    size, healthy, slowed = 1 << 20, 8e9, 2e9

    def took(program_rate):
        net = Net(2, routes={1: {0: Route(0.0, healthy, 0, healthy)}})
        program = {1: {0: Route(0.0, program_rate, 0, program_rate)}} if program_rate else None
        reports = net.run([call(1, "sendrecv", "direct", ranks=2, size=size)], routes=program)
        assert reports[1].checks == {1: True}
        start, end = reports[1].calls[1]
        return end - start

    assert took(None) < size * 8 / slowed
    assert took(slowed) >= size * 8 / slowed
    assert took(slowed) == pytest.approx(took(None) * healthy / slowed, rel=0.05)
    # Each frame paced from when it was due to leave, not from when the fake network
    # (LATENCY later) handed it over: the call takes its wire bytes' time at the rate, exactly.
    for rate, program_rate in ((healthy, None), (slowed, slowed)):
        assert took(program_rate) == pytest.approx(wire_bytes(size, PAYLOAD) * 8 / rate,
                                                   rel=0, abs=1e-9)


# -- compute gaps skipped (traffic.gaps) -----------------------------------------------------
GAPPY = [  # long compute gaps, on two streams, with a group and a dependency
    call(1, gap_s=0.5, buffer="a"),
    call(2, "allgather", gap_s=0.25, buffer="b"),
    call(3, "reducescatter", gap_s=0.125, buffer="d", grouped=True),
    call(4, stream="other", after=(1,), gap_s=0.75, buffer="c"),
    call(5, "alltoall", "direct", gap_s=0.5, buffer="a"),
]


def spans(reports: list[Report]) -> list[dict]:
    return [r.calls for r in reports]


def assert_same_times(skipped: list[Report], dilated: list[Report]) -> None:
    """Every call's (start, end) on every rank as without skipping (up to the rounding of
    the clock's shift: a nanosecond against gaps of a second)."""
    for fast, slow in zip(spans(skipped), spans(dilated), strict=True):
        assert fast.keys() == slow.keys()
        for key in fast:
            assert fast[key] == pytest.approx(slow[key], rel=0, abs=1e-9), key


def test_skipped_gaps_keep_every_call_time_and_take_far_fewer_turns():
    dilated, skipping = Net(4), Net(4, skip=True)
    slow = dilated.run(GAPPY, timeout=5.0)
    fast = skipping.run(GAPPY, timeout=5.0)
    assert_right(fast, (1, 2, 3, 4, 5))
    assert_same_times(fast, slow)
    assert skipping.turns * 10 < dilated.turns  # idle ranks wake every RTO without it
    # Most of the gaps were jumped over: the clock leads the wall clock by that much.
    saved = max(r.skipped_s for r in fast)
    assert 0.5 * (0.5 + 0.25 + 0.5) < saved < 0.75 + 0.25 + 0.5
    assert all(r.skipped_s == 0 for r in slow)
    assert skipping.clock.now + saved == pytest.approx(dilated.clock.now, abs=1e-9)


def test_a_program_without_gaps_skips_nothing():
    net = Net(4, skip=True)
    reports = net.run([call(1), call(2, "allgather"), call(3, stream="x", buffer="x")])
    assert_right(reports, (1, 2, 3))
    assert all(r.skipped_s == 0 for r in reports)


def quiet_ranks(net: Net) -> list[int]:
    return [r for r, m in enumerate(net.machines) if m.quiet_at is not None]


@pytest.mark.parametrize("kind", ["unacknowledged", "link down"])
def test_a_transfer_not_yet_acknowledged_holds_the_clock(kind):
    """Rank 0 sends to rank 1, then waits 0.5 s for its next call; rank 1 is quiet at once.
    While 0's transfer is unacknowledged (its ACK lost, or the link down as it was sent),
    0 stays busy and the clock does not jump; once acknowledged, it jumps."""
    calls = [call(1, "send", "direct", ranks=2, size=PAYLOAD * 4),
             call(2, "sendrecv", "direct", ranks=2, gap_s=0.5)]
    nets = []
    for skip in (False, True):
        net = Net(2, skip=skip, fate=only_first(ACK, src=1, dst=0) if kind ==
                  "unacknowledged" else None)
        if kind == "link down":
            net.down.append((0, 1, net.clock.now, net.clock.now + 5 * RTO))
        nets.append(net)
    held = []

    def watch(net: Net) -> None:
        if net.machines[0].outstanding and net.machines[0].calls[2].step < 0:  # call 1's
            held.append((net.machines[0].quiet_until(net.clocks[0].now()), net.clocks[0].shift))

    slow = nets[0].run(calls)
    fast = nets[1].run(calls, watch=watch)
    assert_right(fast, (1, 2))
    assert_same_times(fast, slow)
    assert held and all(until is None and shift == 0 for until, shift in held)
    assert fast[0].skipped_s > 0.4
    stats = nets[1].stats(fast)
    assert (stats.link_down if kind == "link down" else stats.retransmitted_frames) > 0


def test_a_rank_waiting_for_frames_is_quiet_until_the_first_arrives():
    """A receive posted early (a send's receiver) does not hold the clock: the sender's
    gap is skipped, and the receiver turns busy with the first frame."""
    calls = [call(1, "send", "direct", ranks=2, size=PAYLOAD * 8, gap_s=0.5)]
    seen = []
    slow = Net(2).run(calls)
    fast = Net(2, skip=True).run(calls, watch=lambda net: seen.append(quiet_ranks(net)))
    assert_same_times(fast, slow)
    assert [1] in seen and fast[1].skipped_s > 0.4
    start, end = fast[1].calls[1]
    assert end - start < 1e-3  # the receive's time counts from the send, as ever


def test_the_jump_rule():
    slots = np.array([[7.0, 0, 3.0, 10], [7.0, 0, 2.0, 11], [7.0, 0, math.inf, 12]])
    assert jump_to(slots, 7.0, 1.0) == pytest.approx(2.0 - GUARD_S)  # the earliest gap end
    assert jump_to(slots, 7.0, 2.0 - GUARD_S) is None  # never backwards, never in place
    assert jump_to(slots, 8.0, 1.0) is None  # ranks still in another program
    busy = slots.copy()
    busy[2, 1] = 1.0
    assert jump_to(busy, 7.0, 1.0) is None
    done = slots.copy()
    done[:, 2] = math.inf
    assert jump_to(done, 7.0, 1.0) is None  # every rank finished: nothing to skip to


def test_a_rank_clock_joins_jumps_and_wakes_the_quiet_ones():
    wall = Clock()
    shared = SharedClock(3)
    woken: list[list[int]] = []
    clocks = [RankClock(shared, r, 3, wall=wall, pid=100 + r, wake=woken.append)
              for r in range(3)]
    for c in clocks[:2]:
        c.begin(1.0, skip=True)
    clocks[0].quiet(wall.now + 5.0)
    clocks[1].quiet(math.inf)
    assert clocks[1].shift == 0  # rank 2 has not joined the program: no jump
    clocks[2].begin(1.0, skip=True)
    clocks[2].quiet(wall.now + 9.0)
    assert clocks[2].shift == pytest.approx(5.0 - GUARD_S)
    assert woken == [[100, 101]]  # every other rank, even one quiet for good
    assert clocks[0].shift == 0  # until woken
    clocks[0].refresh()
    assert clocks[0].now() == pytest.approx(wall.now + 5.0 - GUARD_S)
    clocks[1].busy()
    clocks[0].quiet(wall.now + 7.0)
    assert clocks[0].skipped_s == pytest.approx(5.0 - GUARD_S)  # rank 1 busy: no jump
    off = RankClock(shared, 0, 3, wall=wall)
    off.begin(2.0, skip=False)
    off.quiet(wall.now + 100.0)
    assert off.now() == wall.now and off.skipped_s == 0


def test_the_shared_clock_is_shared_with_forked_ranks():
    """As the fork server makes it: a rank in a forked child turns quiet on the same page,
    and the parent's rank then jumps the clock they share."""
    wall = Clock()
    shared = SharedClock(2)
    parent = RankClock(shared, 0, 2, wall=wall)
    parent.begin(3.0, skip=True)
    pid = os.fork()
    if pid == 0:  # the child: rank 1 joins, and is done at once
        child = RankClock(shared, 1, 2, wall=wall)
        child.begin(3.0, skip=True)
        child.quiet(math.inf)
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert shared.slots[1, 0] == 3.0  # the child's slot, written on the shared page
    parent.quiet(wall.now + 2.0)
    assert parent.skipped_s == pytest.approx(2.0 - GUARD_S)
