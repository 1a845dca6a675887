"""Cluster designs compared side by side: every workload of a design file on every design.

For each design this builds the two-fabric cluster (topologies.cluster) and, if every
cable can be made (the reach check), emulates the workload on it; beside what was measured
(call or step time, busbw, the links' energy per call or step) it puts what the links cost
whatever runs (power per GPU, failures per day at the file's fleet size, what one failure
does: emulator.models.linkcosts). A design whose cables cannot be made is a row that says
why, not an error: infeasible is an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from emulator.emulation import Emulation
from emulator.experiments.campaign import point_id
from emulator.experiments.designs import Design, DesignFile, Workload
from emulator.experiments.runner import provenance
from emulator.experiments.store import Store
from emulator.models import linkcosts
from emulator.models.energy import batch_energy
from emulator.models.profiles import catalogue, get_profile, with_bundles
from emulator.models.spec import ReplayRequest, RunRequest
from emulator.result import ReplayResult, RunResult
from foundation.errors import NetwallError
from topologies import cluster as clusters
from traffic.workloads import workload as build_workload


@dataclass(frozen=True)
class Row:
    """One design on one workload (at one size, for a collective): the JSON form's keys."""

    workload: str
    size: int | None  # bytes of a collective; None for a built-in workload
    design: str
    gpus: int
    domains: int
    domain_gpus: int
    racks_per_domain: int
    scale_up: str
    scale_out: str
    feasible: bool
    reason: str | None  # why not
    time_s: float | None  # a collective's call, or a workload's step (mean over steps)
    busbw_gbps: float | None  # a workload's: its calls' bus bytes over their time
    energy_j: float | None  # the links' energy per call or step
    watts_per_gpu: float  # every cable, both ends, over the GPUs
    failures_per_day: float  # link failure events in a fleet of fleet_gpus GPUs
    stalls_per_day: float  # of which take a link down (the job stalls until repair)
    scale_up_failure: str  # what one lane or channel lost does: 'stall' or '-x%'
    scale_out_failure: str
    faithful: bool | None  # the dilation probe's verdict (None: infeasible or not proven)
    #: a workload's exposed communication over its step time, mean over steps (None: a
    #: collective, or a row stored before netwall measured it)
    exposed_share: float | None = None
    #: the algorithm the calls ran (NCCL's choice unless the workload names one: nvls on an
    #: NVLS domain where NCCL's tuning model picks it); a workload's several joined by "+";
    #: None: not run
    algorithm: str | None = None
    #: why a collective's algorithm ran (RunResult.why: "named", "NCCL's choice from 2 MiB
    #: on 8 GPUs", ...); None: a workload, not run, or stored before netwall said
    why: str | None = None
    #: the dilation the time was measured at, and the host's share of it by the proof
    #: (a workload's: its worst call's); None: not run, not proven, or stored before
    #: netwall kept them. A proof clears only what differs between two dilations: with
    #: these a row can be looked at again, and measured at another dilation.
    dilation: float | None = None
    host_error: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Prepared:
    """A design checked and, where feasible, its Emulation validated (not yet built)."""

    design: Design
    costs: dict  # Row's link-cost fields
    reason: str | None
    emulation: Emulation | None
    traces: dict[str, ReplayRequest]  # workload name -> its checked trace
    runs: dict[tuple[str, int], RunRequest]  # (workload name, size) -> its checked run


def prepare(file: DesignFile, profile_files=(), capabilities=None) -> list[Prepared]:
    """Every design checked before anything is built: bad input raises NetwallError; a
    design its technology cannot cable is kept, with the reason."""
    base = catalogue(profile_files)
    checked = []
    for design in file.designs:  # every profile known before any emulation is made
        c = design.cluster
        topo = clusters.topology(c, design.name)
        cat = with_bundles(base, [cable.profile for cable in topo.links])
        up, out = get_profile(c.scale_up, cat), get_profile(c.scale_out, cat)
        failures, stalls = linkcosts.failures_per_day(topo, cat, file.fleet_gpus)
        costs = {"watts_per_gpu": linkcosts.power_per_gpu_w(topo, cat),
                 "failures_per_day": failures, "stalls_per_day": stalls,
                 "scale_up_failure": linkcosts.one_failure(up),
                 "scale_out_failure": linkcosts.one_failure(out)}
        try:
            clusters.check_reach(c, topo, cat)
        except NetwallError as e:
            checked.append((design, costs, str(e), None))
            continue
        checked.append((design, costs, None, topo))
    prepared = []
    for design, costs, reason, topo in checked:
        if topo is None:
            prepared.append(Prepared(design, costs, reason, None, {}, {}))
            continue
        c = design.cluster
        emu = Emulation(topo, c.scale_up, spine_link=c.scale_out, profiles=profile_files,
                        gpu=file.gpu, capabilities=capabilities)
        capabilities = emu.capabilities
        traces = {w.name: _trace(w, emu, file.probe) for w in file.workloads if w.workload}
        runs = {(w.name, size): emu.spec.run_request(w.collective, w.algorithm, size,
                                                     iters=file.iters, warmup=file.warmup,
                                                     prove=file.probe)
                for w in file.workloads for size in w.sizes}
        prepared.append(Prepared(design, costs, None, emu, traces, runs))
    return prepared


def _trace(w: Workload, emu: Emulation, prove: bool) -> ReplayRequest:
    """A built-in workload's trace on this design, every schedule checked."""
    calls = build_workload(w.workload, len(emu.topology.gpus), groups=emu.plan.groups(),
                           scale=w.scale, steps=w.steps, **dict(w.params))
    return emu.spec.replay_request(calls, prove=prove, name=w.name)


def estimate_s(file: DesignFile, prepared: list[Prepared]) -> list[float]:
    """About how long each design takes here (the emulations carry the host's calibration)."""
    out = []
    for p in prepared:
        emu, total = p.emulation, 0.0
        if emu is not None:
            total = sum(emu.pricing.replay_s(t) for t in p.traces.values()) + \
                sum(emu.pricing.run_s(r) for r in p.runs.values())
        out.append(total)
    return out


def run(file: DesignFile, prepared: list[Prepared],
        done: Callable[[Row], None] = lambda row: None,
        kept: dict[str, list[Row]] | None = None) -> list[Row]:
    """Every workload on every design, in the file's order; `done` hears each row as it
    is measured. A design in `kept` (rows stored by an earlier run) is not run again."""
    rows = []
    for p in prepared:
        if kept and p.design.name in kept:
            for row in kept[p.design.name]:
                rows.append(row)
                done(row)
            continue
        if p.emulation is None:
            for w in file.workloads:
                for size in w.sizes or (None,):
                    rows.append(_row(p, w, size, None, None, None, None))
                    done(rows[-1])
            continue
        with p.emulation as emu:
            for w in file.workloads:
                if w.workload:
                    result = emu.measure_trace(p.traces[w.name])
                    rows.append(_replay_row(p, w, result, emu))
                    done(rows[-1])
                    continue
                for size in w.sizes:
                    r: RunResult = emu.measure(p.runs[(w.name, size)])
                    rows.append(replace(_row(p, w, size, r.time_s, r.busbw_gbps, r.energy_j,
                                             r.fidelity["faithful"] if file.probe else None),
                                        algorithm=r.algorithm, why=r.why or None,
                                        dilation=r.dilation,
                                        host_error=r.fidelity.get("host_error")))
                    done(rows[-1])
    return rows


def _replay_row(p: Prepared, w: Workload, result: ReplayResult, emu: Emulation) -> Row:
    """A workload's row: per step (the trace's total over its steps), its calls' bus bytes
    over their summed time, and the links' energy over the whole trace, per step."""
    steps = len(result.steps)
    busy = sum(c.time_s for c in result.calls)
    busbw = sum(c.busbw_gbps * c.time_s for c in result.calls) / busy if busy else None
    payload = sum(c.bytes for c in result.calls)
    energy = batch_energy(result.links, [c.profile for c in emu.topology.links], emu.catalogue,
                          result.total_s, payload, 1).total_joules
    row = _row(p, w, None, result.total_s / steps, busbw, energy / steps,
               result.fidelity["faithful"] if result.fidelity.get("host_error") is not None
               else None)
    return replace(row, exposed_share=sum(s.exposed_share for s in result.steps) / steps,
                   algorithm="+".join(sorted({c.algorithm for c in result.calls})),
                   dilation=result.dilation, host_error=result.fidelity.get("worst_error"))


def _row(p: Prepared, w: Workload, size: int | None, time_s: float | None,
         busbw: float | None, energy: float | None, faithful: bool | None) -> Row:
    c = p.design.cluster
    return Row(workload=w.name, size=size, design=p.design.name,
               gpus=c.domains * c.domain_gpus, domains=c.domains, domain_gpus=c.domain_gpus,
               racks_per_domain=c.racks_per_domain, scale_up=c.scale_up,
               scale_out=c.scale_out, feasible=p.reason is None, reason=p.reason,
               time_s=time_s, busbw_gbps=busbw, energy_j=energy, faithful=faithful,
               **p.costs)


def row_id(file: DesignFile, design: Design, workload: Workload, size: int | None) -> str:
    """A stored row's id: the hash of everything that makes it (the design, the workload,
    the size and how it is measured), so editing a design makes its rows new."""
    return point_id({"design_file": file.name, "design": asdict(design),
                     "workload": asdict(workload), "size": size, "gpu": file.gpu,
                     "iters": file.iters, "warmup": file.warmup, "probe": file.probe,
                     "fleet_gpus": file.fleet_gpus})


def stored(file: DesignFile, store: Store) -> dict[str, list[Row]]:
    """The designs whose every row an earlier run stored, with those rows (to resume)."""
    by_id = {r.get("id"): r for r in store.records() if r.get("kind") == "design"}
    kept = {}
    for design in file.designs:
        ids = [row_id(file, design, w, size) for w in file.workloads
               for size in w.sizes or (None,)]
        if all(i in by_id for i in ids):
            kept[design.name] = [Row(**by_id[i]["row"]) for i in ids]
    return kept


def keep(file: DesignFile, row: Row, store: Store) -> None:
    """Store one row as it is measured: a record of kind 'design' (docs/compare.md)."""
    design = next(d for d in file.designs if d.name == row.design)
    workload = next(w for w in file.workloads if w.name == row.workload)
    row_key = row_id(file, design, workload, row.size)
    store.put(row_key, {"kind": "design", "id": row_key,
                        "status": "ok" if row.feasible else "skipped", **provenance(file),
                        "row": row.to_dict()})
