"""What a validated cluster is asked to run, checked and priced before anything is built.

The CLI, campaigns and comparisons check every call before the first network comes up, so
bad input leaves nothing behind. A check here returns what it checked: a request carries its
schedule (or a trace's schedules), the endpoint costs NCCL would pay and the model, built
once and handed on to the estimate and the measurement, not built again by each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from emulator.models import dilation as dil
from emulator.models.alphabeta import NVLS, Choice, call_costs, globalize, members, nccl_choice
from emulator.models.endpoints import CallCosts, GpuProfile, get_gpu, nvls_costs
from emulator.models.faults import Fault
from emulator.models.profiles import LinkProfile, catalogue, get_profile, with_bundles
from foundation.errors import NetwallError
from topologies import Topology, parse, validate
from topologies.layout import parse_layout, racks_topology
from traffic import schedule as sched
from traffic.trace import Call, modelled_span_s, resolve, takers


@dataclass(frozen=True)
class RunRequest:
    """One size of `run`, checked: `iters` timed calls after `warmup` untimed ones, the first
    `check_iters` of them verified (0: none; after the timed calls if `warmup` is 0), with
    `faults` striking during the timed calls."""

    collective: str
    size: int
    iters: int
    warmup: int
    check_iters: int
    faults: tuple[Fault, ...]
    fault_links: Mapping[str, int]  # each fault's cable, by its name 'a--b'
    prove: bool
    schedule: sched.Schedule  # over every GPU
    costs: CallCosts  # what its endpoints pay, with the protocol NCCL would pick
    model_s: float  # the alpha-beta model of one call, endpoint costs included
    cost: dil.CallCost  # what one call asks of the host (dilation.choose's input)
    #: Wall seconds a rank may go without progress before it is stuck (None: from the model)
    timeout: float | None = None
    why: str = ""  # why its algorithm runs (alphabeta.Choice.why)


@dataclass(frozen=True)
class ReplayRequest:
    """A trace, checked: its calls resolved, each with its schedule (over its own ranks),
    endpoint costs and model, by call id, and what the whole trace asks of the host (one
    dilation serves it: its calls overlap)."""

    name: str  # the trace file or workload
    calls: tuple[Call, ...]
    schedules: Mapping[int, sched.Schedule]
    costs: Mapping[int, CallCosts]
    models: Mapping[int, float]
    cost: dil.CallCost
    check: bool
    prove: bool
    #: Skip compute gaps no traffic overlaps (traffic.gaps): only agents on one host can,
    #: which share a clock.
    skip: bool = True

    @property
    def floor_cost(self) -> dil.CallCost:
        """Its cost over the span the trace takes with its compute gaps (what its slowdown is
        measured over), where `cost` packs its traffic without them (what D must keep up
        with)."""
        return replace(self.cost, model_s=modelled_span_s(self.calls, self.models))


@dataclass(frozen=True)
class Spec:
    """A validated cluster as requests see it: its GPUs, cables and their profiles, and what
    every rank stands in for."""

    topology: Topology
    catalogue: Mapping[str, LinkProfile]
    gpu: GpuProfile
    racks: list[list[int]] | None  # the groups hierarchical algorithms split on
    #: on this host alone: NVLS needs its switch's agent here (not over several hosts)
    local: bool = True

    def run_request(self, collective: str, algorithm: str | None, size: int, *, iters: int = 5,
                    warmup: int = 1, check: bool = True, check_iters: int = 1, root: int = 0,
                    chunk: int | None = None, faults: Sequence[Fault] = (),
                    prove: bool = True, dtype: str = "float", op: str = "sum",
                    timeout: float | None = None) -> RunRequest:
        """One size of `run` (Emulation.run says what each argument means), or a
        NetwallError saying what is wrong with it."""
        if iters < 1 or warmup < 0:
            raise NetwallError(f"iters must be >= 1 and warmup >= 0, got {iters} and {warmup}")
        if check_iters < 0:
            raise NetwallError(f"check iterations must be >= 0, got {check_iters}")
        choice = self.choose(collective, algorithm, size)
        schedule = self.schedule(collective, choice.algorithm, size, root, chunk, dtype=dtype,
                                 op=op)
        costs, model = call_costs(schedule, self.topology, self.catalogue, self.gpu)
        return RunRequest(collective, size, iters, warmup, check_iters if check else 0,
                          tuple(faults), {f.name: self.link_index(f.name) for f in faults},
                          prove, schedule, costs, model,
                          host_cost(schedule, model, costs), timeout, choice.why)

    def choose(self, collective: str, algorithm: str | None, size: int,
               group: tuple[int, ...] | None = None) -> Choice:
        """The algorithm a call over `group` (default: every GPU) runs, and why: `algorithm`
        if named, else NCCL's choice (alphabeta.nccl_choice; NVLS only where its switch's
        agent runs here, on one host)."""
        group = group or tuple(range(len(self.topology.gpus)))
        if algorithm is None and not self.local:
            return Choice(sched.default_algorithm(collective), "NVLS runs on one host only")
        return nccl_choice(collective, size, group, self.topology, self.gpu, algorithm)

    def replay_request(self, calls: Sequence[Call], *, check: bool = False, prove: bool = True,
                       name: str = "trace", skip: bool = True) -> ReplayRequest:
        """A trace on this cluster, every call's schedule checked; `skip` its compute gaps
        where the agents can (on this host alone)."""
        calls = resolve(calls, len(self.topology.gpus))
        schedules = {c.id: self.call_schedule(c) for c in calls}
        costs, models, each = {}, {}, []
        for c in calls:
            placed = globalize(schedules[c.id], members(self.topology, schedules[c.id],
                                                        takers(c)))
            costs[c.id], models[c.id] = call_costs(placed, self.topology, self.catalogue,
                                                   self.gpu)
            each.append(host_cost(schedules[c.id], models[c.id], costs[c.id]))
        # The calls' traffic packed as tightly as their streams allow (compute gaps are
        # skipped or hide nothing of it): overlapping streams share this span.
        span = modelled_span_s(calls, models, gaps=False)
        total = dil.CallCost(span, sum(c.steps for c in each),
                             sum(c.sent_bytes for c in each), len(self.topology.gpus),
                             max((c.switches for c in each), default=0),
                             any(c.held for c in each))
        return ReplayRequest(name, tuple(calls), schedules, costs, models, total, check, prove,
                             skip and self.local)

    def call_schedule(self, call: Call) -> sched.Schedule:
        """The schedule of one resolved trace call, over the ranks that take part in it (a
        send's sender is its local rank 0)."""
        return self.schedule(call.collective, call.algorithm, call.bytes,
                             0 if call.collective == "send" else call.root,
                             ranks=len(takers(call)), group=takers(call))

    def schedule(self, collective: str, algorithm: str | None, size: int, root: int = 0,
                 chunk: int | None = None, ranks: int | None = None,
                 group: tuple[int, ...] | None = None, dtype: str = "float",
                 op: str = "sum") -> sched.Schedule:
        """The schedule of one call over `ranks` (default: every GPU) of this cluster, in
        datatype `dtype` with reduction `op` (nccl-tests' names)."""
        everyone = tuple(range(len(self.topology.gpus)))
        ranks = ranks or len(self.topology.gpus)

        def build(name: str) -> sched.Schedule:
            groups = self.racks if name == "hierarchical" else None
            return sched.build(collective, name, ranks, size, root=root, chunk=chunk,
                               groups=groups, dtype=dtype, op=op)

        _check_memory(collective, ranks, size)
        if algorithm is None:  # NCCL's choice (alphabeta.nccl_choice)
            algorithm = self.choose(collective, None, size, group).algorithm
        if algorithm == "hierarchical" and group is not None and tuple(group) != everyone:
            raise NetwallError("hierarchical all-reduce runs over every GPU, in rank order")
        if algorithm == NVLS:
            self._check_nvls(group or everyone)
        return build(algorithm)

    def _check_nvls(self, group: tuple[int, ...]) -> None:
        """NVLS needs its ranks on one NVLS switch of this host's network, and a GPU with
        NVLS terms: else one line saying which is missing."""
        if not self.local:
            raise NetwallError("NVLS runs on one host only (its switch's agent is local); "
                               "use another algorithm with --hosts")
        if self.topology.nvls_switch(group) is None:
            raise NetwallError(f"NVLS needs every rank of the call on one NVLS switch (a "
                               f"scale-up domain); {self.topology.name} has "
                               + (f"NVLS switches {', '.join(self.topology.nvls)} but the "
                                  "ranks span several" if self.topology.nvls else "none"))
        nvls_costs(self.gpu, len(group))  # a GPU without NVLS terms says so

    def link_index(self, name: str) -> int:
        """The cable called 'a--b' (either order)."""
        a, _, b = name.partition("--")
        for index, cable in enumerate(self.topology.links):
            if {cable.a, cable.b} == {a, b}:
                return index
        raise NetwallError(f"fault on {name}: no such link in {self.topology.name}")


def cluster(topology: str | Topology, link: str, *, spine_link: str, length_m: float | None,
            spine_length_m: float | None, profiles: Iterable[str | Path], layout: str | None,
            gpu: str) -> tuple[Topology, dict[str, LinkProfile], GpuProfile]:
    """A cluster's topology, every profile its cables use, and the GPU every rank stands in
    for, each checked (Emulation's arguments say what they mean)."""
    known = with_bundles(catalogue(profiles), (link, spine_link))
    endpoint = get_gpu(gpu)
    get_profile(link, known)
    get_profile(spine_link, known)  # unknown is a mistake, with a spine or not
    if isinstance(topology, Topology):
        topo = topology
    else:
        two_fabric = topology.startswith("cluster:")
        topo = parse(topology, link, spine_link=spine_link, length_m=length_m,
                     spine_length_m=spine_length_m, layout=layout if two_fabric else None)
        if layout is not None and not two_fabric:
            topo = _laid_out(topo, topology, link, spine_link, layout)
    known = with_bundles(known, [c.profile for c in topo.links])
    validate(topo, known)
    return topo, known, endpoint


def _laid_out(topo: Topology, spec: str, link: str, spine_link: str, layout: str) -> Topology:
    """racks:RxG with cable lengths computed from a rack layout (topologies/layout.py)."""
    if not spec.startswith("racks:"):
        raise NetwallError("--layout applies to racks:RxG and cluster:DxG topologies only")
    per_rack = len(topo.gpus) // len([s for s in topo.switches if s.startswith("rack")])
    racks = len(topo.gpus) // per_rack
    return racks_topology(racks, per_rack, link, spine_link, parse_layout(layout, per_rack),
                          name=spec)


def host_cost(schedule: sched.Schedule, model_s: float, costs: CallCosts) -> dil.CallCost:
    """What a call asks of the host (dilation.choose's input): its protocol's padding
    (`costs.efficiency`) is bytes the agents move too."""
    sent = sum(m.length for step in schedule.steps for m in step) / costs.efficiency
    return dil.CallCost(model_s, len(schedule.steps), int(sent), schedule.ranks,
                        schedule.switches, costs.step_s > 0)


def _check_memory(collective: str, ranks: int, size: int) -> None:
    """Refuse a size whose buffers would not fit this machine, before any agent allocates.

    Each agent holds its working buffer, the inputs it restores, and a copy for the check:
    about three buffers per rank.
    """
    if size <= 0:
        return  # the schedule says what is wrong with it
    need = 3 * ranks * sched.buffer_bytes(collective, ranks, size)
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f
                        if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return
    if need > free * 0.8:
        raise NetwallError(f"size {size} needs about {need / 2**30:.1f} GiB for {ranks} ranks' "
                           f"buffers; this machine has {free / 2**30:.1f} GiB available")
