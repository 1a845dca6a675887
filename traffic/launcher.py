"""The controller's side of the agents: start one per GPU host, hand out programs, gather times.

Agents run in the hosts' namespaces (forked by traffic.forkserver) and stay up for the whole
emulation. A program is a list of calls; each rank gets the calls its communicators give it,
with every move in global ranks. All ranks start a program at one CLOCK_MONOTONIC instant
(one clock serves every namespace), so a call's time runs from the first rank's start to the
last rank's end, as a GPU timeline would show it.
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass

from emulator.models.endpoints import FREE, CallCosts
from foundation.errors import NetwallError, Stalled
from traffic.board import Board
from traffic.forkserver import PROJECT_ROOT, AgentProcess, ForkServer
from traffic.protocol import (
    AgentStats,
    CallSpec,
    Exit,
    Failure,
    Go,
    Load,
    Loaded,
    Message,
    Move,
    Peer,
    Ready,
    Report,
    Route,
    Setup,
    decode,
    encode,
)
from traffic.schedule import REDUCING, Schedule

#: How far ahead of now a program's common start is set: time for the controller to send
#: every agent its "go" and for each to read it and set its program up (Machine.go). An
#: agent that reads it after the start runs late, and once the first agents start
#: (SCHED_FIFO, on every core) they starve the controller still sending: star:256's first
#: program started 1.4-2.2 s late with a fixed 50 ms. Measured on this 2-core machine:
#: sending takes 0.17 ms an agent warm and 0.4 ms in a network's first program (49 ms for
#: 129 agents, 110 ms for 257); 0.5 ms each leaves no agent late at 256 GPUs. With 20 ms
#: for the rest, star:8's programs (nine agents, a 24.5 ms lead) had 7.3 ms of it left at
#: the least and 22.4 ms the median (72 programs of `netwall run`'s sweep); 50 ms cost
#: every program 30 ms more.
START_MARGIN_S = 0.02
GO_PER_AGENT_S = 0.5e-3


def start_margin(agents: int) -> float:
    """The common start's lead for `agents` agents on this machine (START_MARGIN_S)."""
    return START_MARGIN_S + agents * GO_PER_AGENT_S


@dataclass(frozen=True)
class CallPlan:
    """One collective call of a program: a schedule in local ranks and who plays them."""

    id: int
    schedule: Schedule
    group: tuple[int, ...]  # global rank of each local rank
    comm: int = 0
    stream: str = "0"
    gap_s: float = 0.0  # compute time before the call, emulated (dilated) seconds
    after: tuple[int, ...] = ()
    buffer: str = "main"
    init: bool = False  # reset the buffer to the call's inputs first
    check: bool = False  # verify the result afterwards
    costs: CallCosts = FREE  # what its endpoints pay (real units; dilated when it is sent)
    dtype: str = "float"  # datatype, nccl-tests' names (the schedule is aligned to it)
    op: str = "sum"  # reduction op; collectives without one ignore it
    grouped: bool = False  # starts with the call before it on its stream (an NCCL group)


@dataclass(frozen=True)
class Outcome:
    start: float
    spans: dict[int, tuple[float, float]]  # call id -> (first start, last end) over ranks
    checks: dict[int, bool]  # call id -> every checked rank right
    stats: AgentStats  # summed over ranks
    skipped_s: float = 0.0  # wall seconds the agents skipped over compute gaps (traffic.gaps)


def spawn_agents(pids: list[int], board: Board | None = None) -> list[AgentProcess]:
    """One agent in the network namespace of each process in `pids` (Mininet hosts), forked
    by one fork server that exits once they run; each writes its row of `board`, if any."""
    # One BLAS thread: agents add and copy arrays, and the fork server must not have
    # threads when it forks.
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    server = ForkServer(env, board)
    procs: list[AgentProcess] = []
    try:
        for pid in pids:
            procs.append(server.spawn(pid))
    except BaseException:
        for proc in procs:
            proc.kill()
            proc.close()
        raise
    finally:
        server.close()  # agents live on their own from here
    return procs


class Agents:
    """One agent process per GPU, in rank order: forked here into each GPU host, or (a
    cluster over several hosts) any objects with AgentProcess's pipes and methods."""

    def __init__(self, procs: list, peers: list[dict[int, Peer]], mtu: int, rto: float,
                 sndbuf: int, routes: list[dict[int, Route]],
                 start_margin: float = START_MARGIN_S) -> None:
        """`routes[rank]`: from each other rank, how its agent holds and paces each frame
        (emulator.models.alphabeta.routes).
        `start_margin`: how far ahead a program's common start is set."""
        self.procs = procs
        self.start_margin = start_margin
        for rank in range(len(procs)):
            self._send(rank, Setup(rank=rank, ranks=len(procs), peers=peers[rank], mtu=mtu,
                                   rto=rto, sndbuf=sndbuf, routes=routes[rank]))
        self._gather(Ready, deadline=time.monotonic() + 60)

    def execute(self, calls: list[CallPlan], timeout: float, expected_s: float, rto: float,
                dilation: float, on_start=None, on_tick=None, skip: bool = True,
                routes: list[dict[int, Route]] | None = None) -> Outcome:
        """Run a program on every rank. `timeout` bounds a rank's time without progress (it
        then answers with an error); `expected_s`, the program's modelled wall-clock time,
        bounds how long the controller waits in silence for a hung agent; `rto` is the
        retransmission timeout at the program's dilation, which scales the endpoint costs
        and held link delays. `skip`: let the agents skip compute gaps no traffic overlaps
        (traffic.gaps); never with faults, which strike on this wall clock. `routes`: per
        rank, the routes as degraded links leave them at the start (None: Setup's)."""
        # A program without compute gaps has nothing to skip: its agents then never tell the
        # shared clock when they turn busy or quiet (a lock and its page, twice a step).
        skip = skip and any(call.gap_s > 0 for call in calls)
        programs: list[list[CallSpec]] = [[] for _ in self.procs]
        for call in calls:
            for rank, spec in zip(call.group, call_specs(call, dilation), strict=True):
                programs[rank].append(spec)
        for rank, program in enumerate(programs):
            self._send(rank, Load(calls=tuple(program)))
        self._gather(Loaded, deadline=time.monotonic() + 120)
        start = time.monotonic() + self.start_margin
        for rank in range(len(self.procs)):
            self._send(rank, Go(start=start, timeout=timeout, rto=rto, dilation=dilation,
                                skip=skip, routes=routes[rank] if routes else {}))
        if on_start is not None:
            on_start(start)  # e.g. schedule faults relative to the common start
        replies = self._gather(Report, Failure, deadline=None,
                               silence=3 * expected_s + timeout + 30, on_tick=on_tick)
        failures = [r.error for r in replies if isinstance(r, Failure)]
        if failures:
            raise Stalled(f"collective stalled: {failures[0]}")
        spans: dict[int, tuple[float, float]] = {}
        checks: dict[int, bool] = {}
        for reply in replies:
            for key, (begin, end) in reply.calls.items():
                first, last = spans.get(key, (begin, end))
                spans[key] = (min(first, begin), max(last, end))
            for key, ok in reply.checks.items():
                checks[key] = checks.get(key, True) and ok
        return Outcome(start, spans, checks, sum((r.stats for r in replies), AgentStats()),
                       max(r.skipped_s for r in replies))

    def _send(self, rank: int, message: Message) -> None:
        proc = self.procs[rank]
        try:
            proc.stdin.write(encode(message) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            raise NetwallError(f"agent of rank {rank} died: {self._stderr(rank)}") from None

    def _gather(self, *expected: type, deadline: float | None, silence: float = 60,
                on_tick=None) -> list:
        """One reply from every agent, of an `expected` kind, or a clear error naming the first
        silent rank.

        With no deadline, wait as long as replies keep coming: each rank bounds its own time
        without progress and answers with an error, so only a hung agent meets `silence`.
        `on_tick` runs about every millisecond meanwhile (fault injection, in this thread:
        netlink sockets belong to the thread and namespace that opened them).
        """
        replies: dict[int, Message] = {}
        streams = {proc.stdout.fileno(): rank for rank, proc in enumerate(self.procs)}
        waiting = select.poll()  # not select(): hundreds of GPUs mean descriptors past 1024
        for fd in streams:
            waiting.register(fd, select.POLLIN)
        last = time.monotonic()
        while len(replies) < len(self.procs):
            limit = deadline if deadline is not None else last + silence
            left = limit - time.monotonic()
            if on_tick is not None:
                on_tick()
                wait = min(left, 0.001)
            else:
                wait = left
            ready = [fd for fd, _ in waiting.poll(wait * 1000)] if left > 0 else []
            if not ready and time.monotonic() < limit:
                continue
            if not ready:
                silent = min(rank for rank in streams.values() if rank not in replies)
                raise NetwallError(f"agent of rank {silent} did not answer in time")
            for fd in ready:
                waiting.unregister(fd)
                rank = streams[fd]
                line = self.procs[rank].stdout.readline()
                if not line:
                    raise NetwallError(f"agent of rank {rank} died: {self._stderr(rank)}")
                try:
                    replies[rank] = decode(line, *expected)
                except NetwallError as e:
                    raise NetwallError(f"agent of rank {rank}: {e}") from None
                last = time.monotonic()
        return [replies[r] for r in range(len(self.procs))]

    def _stderr(self, rank: int) -> str:
        proc = self.procs[rank]
        proc.kill()
        err = proc.stderr.read().strip().splitlines()
        return err[-1] if err else "it exited without a word"

    def stop(self) -> None:
        """Ask every agent to exit; kill those still busy (an interrupted call) after 2 s."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.stdin.write(encode(Exit()) + "\n")
                    proc.stdin.close()
                except (BrokenPipeError, ValueError):
                    pass
        deadline = time.monotonic() + 2
        for proc in self.procs:
            if not proc.wait(timeout=max(0.0, deadline - time.monotonic())):
                proc.kill()
                proc.wait()
            proc.close()
        self.procs = []


def call_specs(call: CallPlan, dilation: float = 1.0) -> list[CallSpec]:
    """What each rank of the call's group needs of it, in local-rank order: the moves it
    sends or receives (in global ranks, in step order), its endpoint costs at `dilation`,
    and how to check them. One pass over the schedule's moves hands each to its two ends,
    rather than one pass per rank."""
    s = call.schedule
    to_global = call.group
    moves: list[list[Move]] = [[] for _ in to_global]
    for step, step_moves in enumerate(s.steps):
        for m in step_moves:
            move = Move(step=step, src=to_global[m.src], dst=to_global[m.dst],
                        src_offset=m.src_offset, dst_offset=m.dst_offset, length=m.length,
                        reduce=m.reduce)
            moves[m.src].append(move)
            if m.dst != m.src:
                moves[m.dst].append(move)
    c = call.costs
    # A send's compute gap is its sender's: the receiver posts its receive at once (irecv).
    gaps = [call.gap_s if s.collective != "send" or local == 0 else 0.0
            for local in range(len(to_global))]
    return [CallSpec(id=call.id, comm=call.comm, stream=call.stream, gap_s=gaps[local],
                     start_s=c.start_s * dilation, step_s=c.step_s * dilation,
                     efficiency=c.efficiency, reduce_s=c.reduce_s_per_byte * dilation,
                     after=tuple(call.after), buffer=call.buffer, init=call.init,
                     check=call.check, collective=s.collective, ranks=s.ranks, local=local,
                     root=s.root, size=s.size, dtype=call.dtype,
                     op=call.op if s.collective in REDUCING else "none", steps=len(s.steps),
                     moves=tuple(mine), grouped=call.grouped)
            for local, mine in enumerate(moves)]
