"""Batches of calls on the live cluster: the one place programs go to the agents, and their
times, byte counts, CPU share and energy come back, typed.

Every batch runs at the dilation of the plan it is given (the caller has put the network
there): the dilation is a value each batch is handed, not state batches share. The proof
loop (emulator.models.proof) decides which batches run at which dilation; this module only
runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.kernel.links import Fabric, Injector, LinkStates
from emulator.models import sampling
from emulator.models.accounting import Floor, LinkReport, floor, link_reports, wire_loads
from emulator.models.alphabeta import members, routes
from emulator.models.energy import EnergyReport, batch_energy
from emulator.models.faults import Fault, FaultEvent
from emulator.models.plan import Plan
from emulator.models.spec import ReplayRequest, RunRequest
from topologies import Topology
from traffic.launcher import Agents, CallPlan, Outcome
from traffic.trace import Call, takers


@dataclass(frozen=True)
class TimedBatch:
    """A run's timed calls at one dilation: one call's real time, what the links carried
    and the CPUs did meanwhile, and what the faults did."""

    time_s: float  # one call's real time, the mean of the batch
    wall_s: float  # the whole batch, wall clock
    links: list[LinkReport]
    shapes: dict[str, tuple[float, int]]  # each directed link's rate (bit/s) and burst (B)
    cpu_before: list[tuple[int, int]]  # every host's (busy, total) jiffies
    cpu_after: list[tuple[int, int]]
    retransmitted_bytes: int
    retransmitted_frames: int
    faults: list[FaultEvent]
    missed: list[Fault]  # faults the calls ended before
    energy: EnergyReport  # of one call
    dilation: float
    call_times: list[float]  # each call's wall time, in order (how much the calls vary)
    floor: Floor | None  # the least time the links' bytes allowed one call (None: no bytes)


@dataclass(frozen=True)
class ProbeBatch:
    """The timed batch's calls again at the probe dilation, or as many of them as the proof
    needs (emulator.models.sampling): one call's real time, and each call's wall time."""

    time_s: float
    call_times: list[float]


@dataclass(frozen=True)
class TraceBatch:
    """A trace run once as one program: per call (in the calls' order) its start and time,
    real seconds from the program's start, and what the links carried."""

    starts: list[float]
    times: list[float]
    total_s: float
    checks: list[bool | None]  # per call: every rank's data right (None: not checked)
    retransmitted_bytes: int
    links: list[LinkReport]
    skipped_s: float  # wall seconds the agents skipped over compute gaps (traffic.gaps)


class Batches:
    """Runs batches on one built cluster: its agents, its fabric and its links' state.
    `emulated_s` counts the real-unit time of every timed program run so far (timed calls,
    probes, traces: the slowdown's denominator). Warm-ups and checks run at a tenth of the
    dilation, where the host stretches their real time: their wall time is cost, not
    cluster time, or the slowdown could read below the host's floor."""

    def __init__(self, agents: Agents, fabric: Fabric, links: LinkStates, topology: Topology,
                 frame_payload: int) -> None:
        self.agents = agents
        self.fabric = fabric
        self.links = links
        self.topology = topology
        self.frame_payload = frame_payload
        self.emulated_s = 0.0
        self._op = 0
        self.observer = None
        self.subject = None

    def watch(self, observer, subject) -> None:
        """Tell `observer` of every program from now on (None: no one): its
        program(subject, calls, kind, injector) returns the tick the launcher calls while
        the program runs, and ended(subject, outcome) hears its end (emulator.view.live)."""
        self.observer, self.subject = observer, subject

    def _run(self, calls: list[CallPlan], kind: str, timeout: float, expected_s: float,
             plan: Plan, injector: Injector | None = None, skip: bool = True) -> Outcome:
        """One program on the agents, its observer told: the one place programs go. Its
        compute gaps are skipped (`skip`) unless faults strike, which keep wall time."""
        tick = injector.tick if injector else None
        slowed = self.links.slowed(injector.opening() if injector else {})
        if self.observer is not None:
            tick = self.observer.program(self.subject, calls, kind, injector)
        outcome = self.agents.execute(calls, timeout, expected_s=expected_s,
                                      rto=plan.retransmit_timeout_s(), dilation=plan.dilation,
                                      on_start=injector.start if injector else None,
                                      on_tick=tick,
                                      skip=skip and not (injector and injector.faults),
                                      routes=routes(self.topology, self.links.catalogue,
                                                    not self.links.netem, slowed)
                                      if slowed else None)
        if self.observer is not None:
            self.observer.ended(self.subject, outcome)
        return outcome

    def calls(self, plan: Plan, request: RunRequest, count: int,
              checked: int = 0) -> Outcome | None:
        """`count` calls of a run, untimed: the first `checked` verified (their buffers
        reset first, their results compared), the rest warm-ups."""
        return self._execute(plan, request, count, checked=checked)

    def timed(self, plan: Plan, request: RunRequest) -> TimedBatch:
        """The timed batch with its counters, energy and CPU share, its faults striking."""
        d = plan.dilation
        injector = Injector(self.links, list(request.faults), request.fault_links, d)
        before = self.fabric.counters()
        cpu_before = self.fabric.cpu_times()
        try:
            outcome = self._execute(plan, request, request.iters, injector=injector)
        finally:
            injector.stop()
        cpu_after = self.fabric.cpu_times()
        after = self.fabric.counters()
        end = max(end for _, end in outcome.spans.values())
        missed = injector.missed((end - outcome.start) / d)
        time_s = (end - outcome.start) / request.iters / d
        expected = wire_loads(self.topology, request.schedule, self.frame_payload,
                              request.costs.efficiency)
        links = link_reports(self.topology, before, after, expected, request.iters)
        shapes = {self.topology.directed(link, node): (shape.rate_bps, shape.burst_bytes)
                  for (link, node), shape in plan.shapes.items()}
        energy = batch_energy(links, [c.profile for c in self.topology.links],
                              self.links.catalogue, time_s, request.schedule.size,
                              request.iters)
        return TimedBatch(time_s, end - outcome.start, links, shapes, cpu_before, cpu_after,
                          outcome.stats.retransmitted_bytes,
                          outcome.stats.retransmitted_frames, injector.record, missed,
                          energy, d, _call_times(outcome),
                          floor(self.topology, before, after, injector.fastest(),
                                request.iters))

    def probe(self, plan: Plan, request: RunRequest, count: int) -> ProbeBatch:
        """`count` of the timed batch's calls again, with the same faults, at the probe
        dilation: what they take there, with less of the host in them."""
        injector = Injector(self.links, list(request.faults), request.fault_links,
                            plan.dilation)
        try:
            outcome = self._execute(plan, request, count, injector=injector)
        finally:
            injector.stop(record=False)
        end = max(end for _, end in outcome.spans.values())
        return ProbeBatch((end - outcome.start) / count / plan.dilation, _call_times(outcome))

    def _execute(self, plan: Plan, request: RunRequest, count: int,
                 injector: Injector | None = None, checked: int = 0) -> Outcome | None:
        """`count` calls of one schedule over every GPU, back to back on one stream. A rank
        that makes no progress for the request's timeout (default: three times the model
        plus any outage) is stuck: a dead peer, or a bug."""
        if not count:
            return None
        d = plan.dilation
        outage = injector.outage_s() if injector else 0.0
        rto = plan.retransmit_timeout_s()
        # Repairs wait a few timeouts each, and those grow with the dilation too.
        timeout = request.timeout or 10.0 + 3 * request.model_s * d + outage * d + 4 * rto
        schedule = request.schedule
        group = members(self.topology, schedule, tuple(range(len(self.topology.gpus))))
        calls = [CallPlan(self._op + i, schedule, group, init=i < checked, check=i < checked,
                          costs=request.costs, dtype=schedule.dtype, op=schedule.op)
                 for i in range(count)]
        self._op += count
        kind = "check" if checked else "timed" if injector else "warm-up"
        outcome = self._run(calls, kind, timeout, count * request.model_s * d, plan, injector)
        if injector is not None:  # timed calls and probes; warm-ups and checks are cost only
            self.emulated_s += (max(end for _, end in outcome.spans.values())
                                - outcome.start) / d
        return outcome

    def trace(self, plan: Plan, request: ReplayRequest, check: bool,
              warm_up: bool = False) -> TraceBatch:
        """The trace as one program: every call after its compute gap and its `after`
        calls, streams overlapping; `warm_up`: untimed (the view says so)."""
        d = plan.dilation
        calls = request.calls
        op = {c.id: self._op + i for i, c in enumerate(calls)}
        comms = {name: i for i, name in enumerate(dict.fromkeys(c.comm for c in calls))}
        plans = [CallPlan(op[c.id], request.schedules[c.id],
                          members(self.topology, request.schedules[c.id], takers(c)),
                          comms[c.comm], c.stream,
                          c.gap_us * 1e-6 * d, tuple(op[a] for a in c.after), _buffer(c),
                          init=check, check=check, costs=request.costs[c.id],
                          grouped=c.grouped) for c in calls]
        self._op += len(calls)
        total = (sum(request.models.values()) + sum(c.gap_us for c in calls) * 1e-6) * d
        before = self.fabric.counters()
        outcome = self._run(plans, "warm-up" if warm_up else "trace", 10.0 + 3 * total,
                            total, plan, skip=request.skip)
        after = self.fabric.counters()
        spans = [outcome.spans[p.id] for p in plans]
        total_s = (max(end for _, end in spans) - outcome.start) / d
        if not warm_up:  # the slowdown counts timed cluster time only
            self.emulated_s += total_s
        return TraceBatch([(first - outcome.start) / d for first, _ in spans],
                          [(last - first) / d for first, last in spans], total_s,
                          [outcome.checks.get(p.id) for p in plans],
                          outcome.stats.retransmitted_bytes,
                          link_reports(self.topology, before, after, None, 1), outcome.skipped_s)


def _buffer(call: Call) -> str:
    """The agents' buffer a trace call works in: one per communicator and stream, as a
    framework reuses its allocations, and for sends one per direction too, so that a rank's
    grouped send and receive (each checked) never share bytes."""
    if call.collective == "send":
        sender, receiver = takers(call)
        return f"{call.comm}/{call.stream}/{sender}>{receiver}"
    return f"{call.comm}/{call.stream}"


def _call_times(outcome: Outcome) -> list[float]:
    """Each call's wall time in a batch of back-to-back calls."""
    return sampling.call_times(outcome.start, [end for _, end in outcome.spans.values()])
