"""A proven run or replay made into its result (emulator.result): nccl-tests' columns, the
model, the verdict, every attempt, and what measuring it cost.

The proof loop's last trial is the result; the earlier ones stay as its dilation attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emulator.batches import TimedBatch, TraceBatch
from emulator.models.critical import analyse_step
from emulator.models.metrics import algbw_gbps, busbw_gbps
from emulator.models.proof import Trial
from emulator.models.spec import ReplayRequest, RunRequest
from emulator.models.verdict import TraceVerdict, Verdict
from emulator.result import Attempt, CallRow, ReplayResult, RunResult, StepTime, TraceAttempt
from traffic.trace import takers


@dataclass(frozen=True)
class Cost:
    """What measuring one request cost: wall time against the cluster time it emulated, and
    the least slowdown this host allows for it (emulator.models.pricing)."""

    wall_s: float
    emulated_s: float
    slowdown_floor: float

    @property
    def slowdown(self) -> float:
        return self.wall_s / max(1e-12, self.emulated_s)


@dataclass(frozen=True)
class Cluster:
    """What every result names of the cluster it ran on."""

    link: str  # the link profile it was given
    topology: str
    gpu: str


def run_result(request: RunRequest, trials: list[Trial[TimedBatch, float, Verdict]],
               check: bool | None, cost: Cost, cluster: Cluster) -> RunResult:
    """One size of `run`; `check`: every rank's data verified (None: not checked)."""
    last = trials[-1]
    timed, verdict, schedule = last.batch, last.verdict, request.schedule
    size, time_s, model = request.size, timed.time_s, request.model_s
    return RunResult(
        collective=request.collective,
        algorithm=schedule.algorithm,
        ranks=schedule.ranks,
        bytes=size,
        count=size // schedule.element,
        type=schedule.dtype,
        redop=schedule.op,
        iters=request.iters,
        time_s=time_s,
        algbw_gbps=algbw_gbps(size, time_s),
        busbw_gbps=busbw_gbps(request.collective, schedule.ranks, size, time_s),
        model_time_s=model,
        model_emulated_time_s=model,  # netwall now emulates everything the model has
        gpu=cluster.gpu,
        protocol=request.costs.protocol,
        model_error=time_s / model - 1,
        check=check,
        retransmitted_bytes=timed.retransmitted_bytes,
        retransmitted_frames=timed.retransmitted_frames,
        faults=timed.faults,
        faults_not_struck=[f.spec for f in timed.missed],
        dilation=last.dilation,
        dilation_attempts=[Attempt(t.dilation, t.batch.time_s, t.verdict.host_error,
                                   t.verdict.faithful) for t in trials],
        fidelity=verdict.to_dict(),
        wall_s=cost.wall_s,
        emulated_s=cost.emulated_s,
        slowdown=cost.slowdown,
        slowdown_floor=cost.slowdown_floor,
        energy_j=timed.energy.total_joules,
        energy_by_profile_j=timed.energy.joules_by_profile,
        joules_per_gb=timed.energy.joules_per_gb,
        links=timed.links,
        link=cluster.link,
        topology=cluster.topology,
        why=request.why,
    )


def replay_result(request: ReplayRequest, trials: list[Trial[TraceBatch, TraceBatch,
                                                            TraceVerdict]],
                  cost: Cost, cluster: Cluster) -> ReplayResult:
    """A replayed trace: every call's row (checked on the first attempt only), every step's
    critical path, the verdict on the last attempt."""
    last = trials[-1]
    run, verdict, calls = last.batch, last.verdict, request.calls
    checks = trials[0].batch.checks
    rows = []
    for i, c in enumerate(calls):
        time_s = run.times[i]
        rows.append(CallRow(
            id=c.id, step=c.step, stream=c.stream, comm=c.comm, collective=c.collective,
            algorithm=request.schedules[c.id].algorithm, ranks=len(takers(c)), bytes=c.bytes,
            start_s=run.starts[i], time_s=time_s,
            algbw_gbps=algbw_gbps(c.bytes, time_s),
            busbw_gbps=busbw_gbps(c.collective, len(takers(c)), c.bytes, time_s),
            model_time_s=request.models[c.id], protocol=request.costs[c.id].protocol,
            host_error=verdict.call_errors[i],
            check=checks[i] if request.check else None))
    steps = []
    for step in sorted({c.step for c in calls}):
        mine = [i for i, c in enumerate(calls) if c.step == step]
        part = analyse_step([calls[i] for i in mine], [rows[i].start_s for i in mine],
                            [rows[i].time_s for i in mine])
        steps.append(StepTime(step=step, time_s=part.time_s,
                              critical_path=part.critical_path, exposed_s=part.exposed_s,
                              exposed_share=part.exposed_share, streams=part.streams))
    return ReplayResult(
        calls=rows,
        steps=steps,
        total_s=run.total_s,
        retransmitted_bytes=run.retransmitted_bytes,
        links=run.links,
        dilation=last.dilation,
        dilation_attempts=[TraceAttempt(t.dilation, t.batch.total_s,
                                        _finite(t.verdict.host_error), t.verdict.faithful)
                           for t in trials],
        fidelity=verdict.to_dict(),
        wall_s=cost.wall_s,
        emulated_s=cost.emulated_s,
        slowdown=cost.slowdown,
        slowdown_floor=cost.slowdown_floor,
        link=cluster.link,
        topology=cluster.topology,
        trace=request.name,
        gpu=cluster.gpu,
        skip=request.skip,
        skipped_s=sum(t.batch.skipped_s + (t.probe.skipped_s if t.probe else 0.0)
                      for t in trials),
    )


def _finite(share: float | None) -> float | None:
    """A host share as JSON can hold it: 'most' (inf) is None there."""
    return share if share is None or math.isfinite(share) else None
