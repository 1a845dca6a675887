"""The Python API: an emulated cluster as a context manager.

    from emulator import Emulation
    with Emulation(topology="ring:4", link="optical-800g", dilation=None) as emu:
        emu.net                      # the running Mininet
        emu.hosts                    # GPU hosts in rank order
        emu.gpu                      # the GPU endpoint every rank stands in for
        emu.run(collective="allreduce", algorithm="ring", size=1 << 20)

Everything the user can get wrong is checked before anything is built, so bad input leaves
nothing behind; leaving the block (normally, on an error or on Ctrl-C) tears everything down.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from emulator.kernel import records as state
from emulator.kernel import vxlan
from emulator.kernel.capabilities import Capabilities, probe
from emulator.models import calibration
from emulator.models import dilation as dil
from emulator.models.accounting import wire_loads
from emulator.models.alphabeta import call_costs, globalize, routes_to
from emulator.models.critical import analyse_step
from emulator.models.endpoints import DEFAULT as DEFAULT_GPU
from emulator.models.endpoints import CallCosts, get_gpu
from emulator.models.energy import EnergyReport, run_energy
from emulator.models.faults import Fault, LinkState, link_state, timeline
from emulator.models.metrics import algbw_gbps, busbw_gbps
from emulator.models.partition import check_nic, min_dilation, partition
from emulator.models.plan import EMULATION_MTU, FRAME_BYTES, gpu_link_rates, make_plan, redilated
from emulator.models.profiles import DEFAULT_LINK, catalogue, get_profile, with_bundles
from emulator.models.verdict import Probe, judge, judge_trace
from emulator.remote.wire import REMOTE_START_MARGIN_S
from emulator.result import (
    Attempt,
    CallRow,
    FaultEvent,
    ReplayResult,
    RunResult,
    StepTime,
    TraceAttempt,
)
from foundation.errors import NetwallError
from foundation.hostlist import DEFAULT_NIC_GBPS, Host
from topologies import Topology, parse, validate
from topologies.layout import parse_layout, racks_topology
from traffic import schedule as sched
from traffic import scheduling
from traffic.header import frame_payload
from traffic.launcher import START_MARGIN_S, Agents, CallPlan, spawn_agents
from traffic.protocol import Route
from traffic.trace import Call, resolve, takers

#: Dilations a call is measured at, at most, before its flag is left to the user.
MAX_ATTEMPTS = 3
#: Untimed calls (warm-up, the verified call) run this many times less dilated.
UNTIMED_SPEEDUP = 10
#: Wall time a program costs besides its calls (loading, the common start, settling queues).
PROGRAM_OVERHEAD_S = 0.06
#: The longest run or replay netwall starts: past it, fewer or smaller sizes, or a campaign
#: (which stores each point as it goes and resumes) are the better tool.
MAX_RUN_S = 24 * 3600.0


class Emulation:
    """A validated emulated cluster; start() or `with` builds it, stop() or leaving removes it."""

    def __init__(
        self,
        topology: str | Topology = "star:8",
        link: str = DEFAULT_LINK,
        *,
        spine_link: str = "optical-800g",
        length_m: float | None = None,
        spine_length_m: float | None = None,
        dilation: float | None = None,
        profiles: Iterable[str | Path] = (),
        strict: bool = False,
        capabilities: Capabilities | None = None,
        layout: str | None = None,
        tolerance: float = calibration.DEFAULT_TOLERANCE,
        host: calibration.Calibration | None = None,
        gpu: str = DEFAULT_GPU,
        hosts: list[Host] | None = None,
        nic_gbps: float = DEFAULT_NIC_GBPS,
        vxlan_port: int = vxlan.DEFAULT_PORT,
    ) -> None:
        """`hosts`: spread the cluster over these machines (docs/multihost.md), each with a
        `nic_gbps` NIC to the others, VXLAN on UDP `vxlan_port`; None: this machine alone."""
        self.catalogue = with_bundles(catalogue(profiles), (link, spine_link))
        #: What every rank stands in for (emulator.models.endpoints): NCCL's costs on it.
        self.gpu = get_gpu(gpu)
        get_profile(link, self.catalogue)
        self.link = link
        if isinstance(topology, Topology):
            self.topology = topology
        else:
            two_fabric = topology.startswith("cluster:")
            if topology.startswith("racks:") or two_fabric:
                get_profile(spine_link, self.catalogue)
            self.topology = parse(topology, link, spine_link=spine_link, length_m=length_m,
                                  spine_length_m=spine_length_m,
                                  layout=layout if two_fabric else None)
            if layout is not None and not two_fabric:
                self.topology = _laid_out(self.topology, topology, link, spine_link, layout)
        self.catalogue = with_bundles(self.catalogue, [c.profile for c in self.topology.links])
        validate(self.topology, self.catalogue)
        self.capabilities = capabilities or probe()
        if not (self.capabilities.veth and self.capabilities.htb):
            raise NetwallError("this kernel lacks veth or htb; netwall cannot shape links here "
                               "(run `netwall check`)")
        self.not_emulated = []
        if not (self.capabilities.netem or self.capabilities.bpf_loss):
            self.not_emulated.append("bit-error loss")
        if strict and self.not_emulated:
            raise NetwallError(f"--strict: this kernel has no netem, so "
                               f"{' and '.join(self.not_emulated)} cannot be emulated "
                               "(run `netwall check`)")
        if not 0 < tolerance < 1:
            raise NetwallError(f"--tolerance must be between 0 and 100%, got {tolerance:.1%}")
        self.tolerance = tolerance
        #: What this host carries faithfully (cached by `netwall check`), or a safe fallback.
        self.host = host or calibration.load() or calibration.FALLBACK
        #: The user's --dilation, or None: then every call gets its own (dilation.choose).
        self.fixed_dilation = None if dilation is None else dil.validate(float(dilation))
        # The network is built at one dilation and re-dilated per call: the one given, or
        # what all GPUs injecting at once need.
        injection = dil.injection_gbps(gpu_link_rates(self.topology, self.catalogue))
        build = self.fixed_dilation or min(dil.MAX_AUTO, dil.nice_ceiling(
            injection / self.host.capacity_gbps))
        #: With a host list: the host that builds each node, and the least dilation at which
        #: no host's cross-host cables outrun its NIC (emulator.models.partition).
        self.spread = [str(h) for h in hosts or []]
        self.partition = partition(self.topology, len(hosts)) if hosts else None
        if self.partition is not None:
            if not (math.isfinite(nic_gbps) and nic_gbps > 0):
                raise NetwallError(f"--nic-gbps must be a positive number, got {nic_gbps:g}")
            self.nic_gbps = nic_gbps
            self.min_dilation = min_dilation(self.partition, self.catalogue, nic_gbps)
            if not self.fixed_dilation:
                build = max(build, dil.nice_ceiling(self.min_dilation))
            check_nic(self.partition, self.catalogue, build, nic_gbps, self.spread)
        self._hosts = hosts or []
        self.vxlan_port = vxlan_port
        self.plan = make_plan(self.topology, self.catalogue, build)
        self.frame_payload = frame_payload(EMULATION_MTU)
        self.network = None
        self.agents = None
        self._op = 0
        self.emulated_s = 0.0  # real-unit time of every program run so far (slowdown)
        #: Faults on live cables that stay until undone, by cable: the console's fail, ber
        #: and restore, and Mininet's link down and up (configLinkStatus). `links` shows
        #: them, and a program's own faults (run --fault) strike on top of them.
        self.faults: dict[int, list[Fault]] = {}
        #: The agents' scheduling policy as the kernel granted it (traffic.scheduling); None
        #: over several hosts, where each worker's agents take it on their own host.
        self.scheduling: scheduling.Policy | None = None
        self._costs: dict[int, tuple[sched.Schedule, tuple[CallCosts, float]]] = {}
        #: Told of each program as it runs (emulator.view.live.View: program, its tick,
        #: ended); None, without --view, costs nothing.
        self.observer = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Emulation:
        from emulator.kernel.network import Network  # Mininet is imported only when building

        leftovers = state.clean()
        if leftovers:
            print(f"netwall: removed what an earlier, killed run left ({len(leftovers)} items)",
                  file=sys.stderr)
        if self.partition is not None:
            from emulator.remote.cluster import Cluster  # asyncssh, only over several hosts

            self.network = Cluster(self.plan, self.capabilities.netem, self._hosts,
                                   self.partition, self.vxlan_port)
        else:
            self.network = Network(self.plan, netem=self.capabilities.netem,
                                   link_status=self.link_status)
        try:
            self.network.start()
            if self.partition is not None:
                procs, margin = self.network.agents, REMOTE_START_MARGIN_S
            else:
                procs, margin = spawn_agents([host.pid for host in self.hosts]), START_MARGIN_S
                self.network.record.add("agents", [p.pid for p in procs])
                self.scheduling = scheduling.report([p.pid for p in procs])
                if not self.scheduling.realtime:
                    print(f"netwall: agents run under {self.scheduling.describe()}: they wake "
                          "later on a busy host, so more results need a larger dilation or "
                          "are flagged", file=sys.stderr)
            self.agents = Agents(procs, [self.plan.peers(g) for g in self.topology.gpus],
                                 EMULATION_MTU, self.plan.retransmit_timeout_s(),
                                 self.plan.send_buffer_bytes(), self.routes(),
                                 start_margin=margin)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        agents, self.agents = self.agents, None
        network, self.network = self.network, None
        try:
            if agents is not None:
                agents.stop()
        finally:
            if network is not None:
                network.stop()

    def __enter__(self) -> Emulation:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def delay_mechanism(self) -> str:
        """How link delay is emulated here, as run headers and `netwall check` say it."""
        return ("netem on every link" if self.capabilities.netem else
                "held by the receiving agents (this kernel has no netem)")

    def routes(self) -> list[dict[int, Route]]:
        """Per rank, from every other rank: the link delay its agent holds each frame for
        (0 where netem delays frames in the kernel), the route's slowest rate, and the link
        frames arrive on with its rate.

        The agent also paces what arrives at those rates (traffic.agent): a token-bucket
        shaper releases a frame as soon as it may start, and a burst after an idle gap for
        free, where a wire delivers frames one transmission time apart, each once its last
        bit is across."""
        keep = 0.0 if self.capabilities.netem else 1.0
        return [{src: dataclasses.replace(route, delay_s=route.delay_s * keep)
                 for src, route in routes_to(self.topology, self.catalogue, r).items()}
                for r in range(len(self.topology.gpus))]

    @property
    def dilation(self) -> float:
        """The dilation the network is at now."""
        return self.plan.dilation

    def dilate(self, dilation: float) -> None:
        """Put the network (and so the next program) at another dilation."""
        if dilation != self.plan.dilation:
            if self.partition is not None:
                check_nic(self.partition, self.catalogue, dilation, self.nic_gbps, self.spread)
            self.plan = redilated(self.plan, self.catalogue, dilation)
            if self.network is not None:
                self.network.redilate(self.plan)

    @property
    def net(self):
        """The running Mininet object."""
        return self.network.net if self.network else None

    @property
    def hosts(self) -> list:
        """GPU hosts in rank order."""
        return self.network.hosts if self.network else []

    # -- measurements ----------------------------------------------------------------------
    def run(self, collective: str = "allreduce", algorithm: str | None = None,
            size: int = 1 << 20, iters: int = 5, warmup: int = 1, check: bool = True,
            root: int = 0, chunk: int | None = None, timeout: float | None = None,
            faults: list[Fault] | None = None, prove: bool = True, dtype: str = "float",
            op: str = "sum", check_iters: int = 1) -> RunResult:
        """Time `iters` back-to-back calls after `warmup` untimed ones, and verify
        `check_iters` more calls' results on every rank (0, or check=False: none), as
        nccl-tests does. `dtype` and `op` (nccl-tests' names) are the data the agents really
        reduce, and how. One result (emulator.result).

        The calls run at the dilation this host needs for them (or the fixed one), and the
        result is proven: the timed batch is run again at a larger dilation (the probe) and
        must take the same real time (emulator.models.verdict). With an automatic
        dilation a result the host distorted is measured again at the dilation that fixes it,
        a few times at most; what stays distorted is flagged. `faults` strike during the
        timed calls (and the probe), at times counted from their start (real units).
        """
        if self.agents is None:
            raise NetwallError("the emulation is not running (use `with Emulation(...)`)")
        if iters < 1 or warmup < 0:
            raise NetwallError(f"iters must be >= 1 and warmup >= 0, got {iters} and {warmup}")
        if check_iters < 0:
            raise NetwallError(f"check iterations must be >= 0, got {check_iters}")
        began, emulated_before = time.monotonic(), self.emulated_s
        schedule = self.schedule(collective, algorithm, size, root, chunk, dtype=dtype, op=op)
        model = self.emulated_model(schedule)
        cost = self.cost(schedule, model)
        faults = faults or []
        d = self.fixed_dilation or self.choose(cost)
        self._untimed(schedule, warmup, model, timeout, d)
        self.dilate(d)
        attempts: list[Attempt] = []
        while True:
            timed = self._timed(schedule, iters, model, timeout, faults)
            probe_d = dil.probe_dilation(self.dilation)
            probe = (self._probe(schedule, iters, model, timeout, faults, probe_d) if prove
                     else Probe(probe_d, None, self.tolerance, "the probe was turned off"))
            verdict = judge(timed["cpu_before"], timed["cpu_after"], timed["links"],
                            self._link_shapes(), timed["wall_s"],
                            timed["outcome"].stats.retransmitted_frames,
                            loss_expected=bool(faults) or self._lossy(),
                            time_s=timed["time_s"], dilation=self.dilation, probe=probe,
                            repaired=timed["outcome"].stats.retransmitted_frames > 0)
            attempts.append(Attempt(self.dilation, timed["time_s"], verdict.host_error,
                                    verdict.faithful))
            if not self._retry(verdict, len(attempts), bool(faults) or self._lossy()):
                break
            self.dilate(min(dil.MAX_AUTO, dil.retry_dilation(self.dilation, verdict.host_error,
                                                             self.tolerance)))
        final = self.dilation
        checked = self._untimed(schedule, check_iters, model, timeout, final, check=True) \
            if check and check_iters else None
        self.dilate(final)
        time_s = timed["time_s"]
        wall_s = time.monotonic() - began
        return RunResult(
            collective=collective,
            algorithm=schedule.algorithm,
            ranks=schedule.ranks,
            bytes=size,
            count=size // schedule.element,
            type=schedule.dtype,
            redop=schedule.op,
            iters=iters,
            time_s=time_s,
            algbw_gbps=algbw_gbps(size, time_s),
            busbw_gbps=busbw_gbps(collective, schedule.ranks, size, time_s),
            model_time_s=model,
            model_emulated_time_s=model,  # netwall now emulates everything the model has
            gpu=self.gpu.name,
            protocol=self.costs_of(schedule).protocol,
            model_error=time_s / model - 1,
            check=all(checked.checks.values()) if checked else None,
            retransmitted_bytes=timed["outcome"].stats.retransmitted_bytes,
            retransmitted_frames=timed["outcome"].stats.retransmitted_frames,
            faults=timed["faults"],
            faults_not_struck=[f.spec for f in timed["missed"]],
            dilation=self.dilation,
            dilation_attempts=attempts,
            fidelity=verdict.to_dict(),
            wall_s=wall_s,
            emulated_s=self.emulated_s - emulated_before,
            slowdown=wall_s / max(1e-12, self.emulated_s - emulated_before),
            slowdown_floor=self.slowdown_floor(cost),
            energy_j=timed["energy"].total_joules,
            energy_by_profile_j=timed["energy"].joules_by_profile,
            joules_per_gb=timed["energy"].joules_per_gb,
            links=timed["links"],
            link=self.link,
            topology=self.topology.name,
        )

    def calibrate(self, progress=None) -> calibration.Calibration:
        """Measure what this host carries faithfully (emulator.models.calibration), on this running
        emulation, which should be the calibration star (calibration.TOPOLOGY, LINK)."""
        if self.agents is None:
            raise NetwallError("the emulation is not running (use `with Emulation(...)`)")

        def timed(size: int, dilation: float) -> tuple[float, float]:
            schedule = self.schedule("allreduce", "ring", size)
            model = self.emulated_model(schedule)
            self.dilate(dilation)
            self._execute(schedule, 1, model, None)  # warm-up
            batch = self._timed(schedule, calibration.ITERS, model, None, [])
            return batch["time_s"], self.emulated_model(schedule)

        big = self.schedule("allreduce", "ring", calibration.BANDWIDTH_SIZE)
        small = self.schedule("allreduce", "ring", calibration.LATENCY_SIZE)
        cost = self.cost(big, self.emulated_model(big))
        return calibration.measure(timed, cost.sent_bytes * 8 / cost.model_s / 1e9,
                                   self.emulated_model(small), len(small.steps),
                                   self.tolerance, progress)

    def emulated_model(self, schedule: sched.Schedule) -> float:
        """The model of a call over every GPU: its links and its endpoints' costs."""
        return self._priced(schedule)[1]

    def costs_of(self, schedule: sched.Schedule) -> CallCosts:
        """What a call over every GPU pays at its endpoints: the protocol NCCL would pick on
        this GPU, and its costs."""
        return self._priced(schedule)[0]

    def _priced(self, schedule: sched.Schedule) -> tuple[CallCosts, float]:
        """call_costs of a call over every GPU, kept for the last schedule asked about: a run
        executes one schedule many times."""
        hit = self._costs.get(id(schedule))
        if hit is None or hit[0] is not schedule:
            hit = (schedule, call_costs(schedule, self.topology, self.catalogue, self.gpu))
            self._costs = {id(schedule): hit}
        return hit[1]

    def estimate_s(self, collective: str, algorithm: str | None, size: int, iters: int,
                   warmup: int, root: int = 0, chunk: int | None = None,
                   prove: bool = True) -> float:
        """About how many wall seconds `run` will take for this size here: its calls at the
        dilation it will get, the probe's at the probe dilation (not counting retries)."""
        schedule = self.schedule(collective, algorithm, size, root, chunk)
        model = self.emulated_model(schedule)
        d = self.fixed_dilation or self.choose(self.cost(schedule, model))
        untimed = (warmup + 1) * max(1.0, d / UNTIMED_SPEEDUP)
        probe = iters * dil.probe_dilation(d) if prove else 0.0
        return model * (d * iters + untimed + probe) + PROGRAM_OVERHEAD_S * (3 + prove)

    def cost(self, schedule: sched.Schedule, model_s: float,
             efficiency: float | None = None) -> dil.CallCost:
        """What a call asks of the host (dilation.choose's input): its protocol's padding
        (`efficiency`, default: the call's over every GPU) is bytes the agents move too."""
        if efficiency is None:
            efficiency = self.costs_of(schedule).efficiency
        sent = sum(m.length for step in schedule.steps for m in step) / efficiency
        return dil.CallCost(model_s, len(schedule.steps), int(sent), schedule.ranks)

    def choose(self, cost: dil.CallCost) -> float:
        """The dilation this host needs for a call (emulator.models.calibration measured it)."""
        d = dil.choose(cost, self.host.capacity_gbps, self.host.step_s, self.host.ranks,
                       self.tolerance)
        if self.partition is not None:  # no slower than every host's NIC allows
            d = max(d, dil.nice_ceiling(self.min_dilation))
        return d

    def slowdown_floor(self, cost: dil.CallCost) -> float:
        """The least wall time per emulated second any run of this call could have here: its
        injection (real units) over what the host carries faithfully."""
        if cost.model_s <= 0:
            return 1.0
        return max(1.0, cost.sent_bytes * 8 / cost.model_s / 1e9 / self.host.capacity_gbps)

    def _retry(self, verdict, attempts: int, repairs: bool) -> bool:
        """Whether a host-distorted result is worth measuring again at a larger dilation.
        Not where frames are repaired (faults, lossy links): which frames a fault or a bit
        error catches depends on the host's timing at any dilation, so the same call differs
        by more than the tolerance from run to run; such results are flagged, not chased."""
        return (self.fixed_dilation is None and not repairs and verdict.host_error is not None
                and verdict.host_error > self.tolerance and attempts < MAX_ATTEMPTS
                and self.dilation < dil.MAX_AUTO)

    def _untimed(self, schedule, count: int, model: float, timeout: float | None, d: float,
                 check: bool = False):
        """Warm-up or verified calls: nothing is timed, so they run at a tenth of the timed
        dilation (their data and dependencies are the same at any dilation)."""
        self.dilate(max(1.0, dil.nice_ceiling(d / UNTIMED_SPEEDUP)))
        return self._execute(schedule, count, model, timeout, check=check)

    def _timed(self, schedule, iters: int, model: float, timeout: float | None,
               faults: list[Fault]) -> dict:
        """The timed batch at the current dilation, with its counters, energy and CPU share."""
        injector = Injector(self, faults)
        before = self.network.counters()
        cpu_before = self.network.cpu_times()
        try:
            outcome = self._execute(schedule, iters, model, timeout, injector=injector)
        finally:
            injector.stop()
        cpu_after = self.network.cpu_times()
        after = self.network.counters()
        ends = sorted(end for _, end in outcome.spans.values())
        missed = injector.missed((ends[-1] - outcome.start) / self.dilation)
        time_s = (ends[-1] - outcome.start) / iters / self.dilation
        links = self._link_report(schedule, before, after, iters)
        return {"outcome": outcome, "time_s": time_s, "wall_s": ends[-1] - outcome.start,
                "links": links,
                "cpu_before": cpu_before, "cpu_after": cpu_after, "faults": injector.record,
                "missed": missed,
                "energy": self.energy(links, time_s, schedule.size, iters)}

    def _probe(self, schedule, iters: int, model: float, timeout: float | None,
               faults: list[Fault], probe_d: float) -> Probe:
        """The timed batch again, the same calls and faults, at the probe dilation (then back
        to the current one): what the same measurement gives with less of the host in it."""
        d = self.dilation
        self.dilate(probe_d)
        injector = Injector(self, faults)
        try:
            outcome = self._execute(schedule, iters, model, timeout, injector=injector)
        finally:
            injector.stop(record=False)
            self.dilate(d)
        end = max(end for _, end in outcome.spans.values())
        return Probe(probe_d, (end - outcome.start) / iters / probe_d, self.tolerance)

    def _link_shapes(self) -> dict[str, tuple[float, int]]:
        """Each directed link's configured (emulated) rate and burst, by its report name."""
        return {self.topology.directed(link, node): (shape.rate_bps, shape.burst_bytes)
                for (link, node), shape in self.plan.shapes.items()}

    def _lossy(self) -> bool:
        """Whether any link's profile loses frames often enough to expect repairs."""
        return any(shape.loss_percent > 1e-4 for shape in self.plan.shapes.values())

    def energy(self, links: list[dict], time_s: float, size: int, iters: int) -> EnergyReport:
        """Energy of one call: every cable's power over the call's real time, split into
        what moved the bits counted on the wire and what kept idle links lit."""
        bits: dict[str, float] = {}
        for link in links:
            bits[link["profile"]] = bits.get(link["profile"], 0.0) + link["bytes"] * 8 / iters
        counts: dict[str, int] = {}
        for cable in self.topology.links:
            counts[cable.profile] = counts.get(cable.profile, 0) + 1
        # A call timed back to back can carry a little more than its own share (ACKs of the
        # previous one); cap at what the links could carry so the energy model applies.
        capacity = {name: counts[name] * 2 * self.catalogue[name].rate_gbps * 1e9 * time_s
                    for name in counts}
        bits = {name: min(value, capacity[name]) for name, value in bits.items()}
        return run_energy(bits, counts, self.catalogue, time_s, size)

    def replay(self, calls: list[Call], check: bool = False, prove: bool = True,
               name: str = "trace", skip: bool = True) -> ReplayResult:
        """Run a trace: every call at once as one program, streams overlapping, each call
        after its compute gap and its `after` calls. Per-call and per-step times, real units;
        `name` (the trace file or workload) is what the result calls the trace.

        One dilation serves the whole program (its calls overlap), chosen for the trace as a
        whole; the trace is then run again at the probe dilation, and every call and the
        trace's total must keep their real times (emulator.models.verdict.judge_trace).
        `skip`: the agents skip compute gaps no traffic overlaps (traffic.gaps), which only
        agents on one host can; the result says how much wall time that saved.
        """
        skip = skip and self.partition is None
        if self.agents is None:
            raise NetwallError("the emulation is not running (use `with Emulation(...)`)")
        began, emulated_before = time.monotonic(), self.emulated_s
        calls, schedules, endpoint, models, trace = self._trace(calls)
        self.dilate(self.fixed_dilation or self.choose(trace))
        attempts: list[TraceAttempt] = []
        checks: list[bool | None] = []
        skipped_s = 0.0
        while True:
            run = self._replay_once(calls, schedules, endpoint, models, check and not attempts,
                                    skip)
            checks = checks or run["checks"]
            skipped_s += run["skipped_s"]
            probe = None
            probe_d = dil.probe_dilation(self.dilation)
            if prove:
                d = self.dilation
                self.dilate(probe_d)
                try:
                    probe = self._replay_once(calls, schedules, endpoint, models, False, skip)
                    skipped_s += probe["skipped_s"]
                finally:
                    self.dilate(d)
            verdict = judge_trace(run["times"], probe and probe["times"], run["total_s"],
                                  probe and probe["total_s"], self.dilation, probe_d,
                                  self.tolerance)
            attempts.append(TraceAttempt(self.dilation, run["total_s"], verdict["host_error"],
                                         verdict["faithful"]))
            # Only the trace's total is worth a larger dilation: a small call beside large
            # ones on other streams shares its agent's one thread with them, and no dilation
            # this host can afford makes every such call exact; its flag says so instead.
            total = verdict["host_error"]
            if not (self.fixed_dilation is None and prove and len(attempts) < MAX_ATTEMPTS
                    and (total is None or total > self.tolerance)
                    and self.dilation < dil.MAX_AUTO):
                break
            self.dilate(min(dil.MAX_AUTO, dil.retry_dilation(
                self.dilation, math.inf if total is None else total, self.tolerance)))
        rows = []
        for i, c in enumerate(calls):
            time_s = run["times"][i]
            rows.append(CallRow(
                id=c.id, step=c.step, stream=c.stream, comm=c.comm, collective=c.collective,
                algorithm=schedules[c.id].algorithm, ranks=len(takers(c)), bytes=c.bytes,
                start_s=run["starts"][i], time_s=time_s,
                algbw_gbps=algbw_gbps(c.bytes, time_s),
                busbw_gbps=busbw_gbps(c.collective, len(takers(c)), c.bytes, time_s),
                model_time_s=models[c.id], protocol=endpoint[c.id].protocol,
                host_error=verdict["call_errors"][i],
                check=checks[i] if check else None))
        steps = []
        for step in sorted({c.step for c in calls}):
            mine = [i for i, c in enumerate(calls) if c.step == step]
            part = analyse_step([calls[i] for i in mine], [rows[i].start_s for i in mine],
                                [rows[i].time_s for i in mine])
            steps.append(StepTime(step=step, time_s=part.time_s,
                                  critical_path=part.critical_path, exposed_s=part.exposed_s,
                                  exposed_share=part.exposed_share, streams=part.streams))
        wall_s = time.monotonic() - began
        emulated_s = self.emulated_s - emulated_before
        return ReplayResult(
            calls=rows,
            steps=steps,
            total_s=run["total_s"],
            retransmitted_bytes=run["retransmitted_bytes"],
            links=run["links"],
            dilation=self.dilation,
            dilation_attempts=attempts,
            fidelity=verdict,
            wall_s=wall_s,
            emulated_s=emulated_s,
            slowdown=wall_s / max(1e-12, emulated_s),
            slowdown_floor=self.slowdown_floor(trace),
            link=self.link,
            topology=self.topology.name,
            trace=name,
            gpu=self.gpu.name,
            skip=skip,
            skipped_s=skipped_s,
        )

    def _trace(self, calls: list[Call]) -> tuple[list[Call], dict, dict, dict, dil.CallCost]:
        """A trace's calls resolved, with each call's schedule, endpoint costs and model,
        and what the whole trace asks of the host (one dilation serves it)."""
        calls = resolve(calls, len(self.topology.gpus))
        schedules = {c.id: self.call_schedule(c) for c in calls}
        endpoint, models = {}, {}
        for c in calls:
            placed = globalize(schedules[c.id], takers(c))
            endpoint[c.id], models[c.id] = call_costs(placed, self.topology, self.catalogue,
                                                      self.gpu)
        costs = [self.cost(schedules[c.id], models[c.id], endpoint[c.id].efficiency)
                 for c in calls]
        trace = dil.CallCost(sum(c.model_s for c in costs), sum(c.steps for c in costs),
                             sum(c.sent_bytes for c in costs), len(self.topology.gpus))
        return calls, schedules, endpoint, models, trace

    def estimate_replay_s(self, calls: list[Call], prove: bool = True) -> float:
        """About how many wall seconds `replay` will take here: every call and compute gap
        one after another (streams overlap, so this errs long), at its dilation and, with
        the proof, again at the probe dilation."""
        calls, _, _, models, trace = self._trace(calls)
        d = self.fixed_dilation or self.choose(trace)
        serial = sum(models.values()) + sum(c.gap_us for c in calls) * 1e-6
        return serial * (d + (dil.probe_dilation(d) if prove else 0)) + PROGRAM_OVERHEAD_S

    def _replay_once(self, calls: list[Call], schedules: dict, endpoint: dict, models: dict,
                     check: bool, skip: bool = True) -> dict:
        """The trace as one program at the current dilation: per call start and time (real
        units, in the calls' order), the total, the checks and the links' bytes."""
        op = {c.id: self._op + i for i, c in enumerate(calls)}
        comms = {name: i for i, name in enumerate(dict.fromkeys(c.comm for c in calls))}
        plans = [CallPlan(op[c.id], schedules[c.id], takers(c), comms[c.comm], c.stream,
                          c.gap_us * 1e-6 * self.dilation, tuple(op[a] for a in c.after),
                          _buffer(c), init=check, check=check, costs=endpoint[c.id],
                          grouped=c.grouped) for c in calls]
        self._op += len(calls)
        total = (sum(models.values()) + sum(c.gap_us for c in calls) * 1e-6) * self.dilation
        before = self.network.counters()
        tick = self.observer.program(self, plans, "trace") if self.observer else None
        outcome = self.agents.execute(plans, 10.0 + 3 * total, expected_s=total,
                                      rto=self.plan.retransmit_timeout_s(),
                                      dilation=self.dilation, on_tick=tick, skip=skip)
        if self.observer is not None:
            self.observer.ended(self, outcome)
        after = self.network.counters()
        spans = [outcome.spans[plan.id] for plan in plans]
        total_s = (max(end for _, end in spans) - outcome.start) / self.dilation
        self.emulated_s += total_s
        return {"starts": [(first - outcome.start) / self.dilation for first, _ in spans],
                "times": [(last - first) / self.dilation for first, last in spans],
                "total_s": total_s, "checks": [outcome.checks.get(p.id) for p in plans],
                "retransmitted_bytes": outcome.stats.retransmitted_bytes,
                "links": self._link_report(None, before, after, 1),
                "skipped_s": outcome.skipped_s}

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
        algorithm = algorithm or sched.default_algorithm(collective)
        everyone = tuple(range(len(self.topology.gpus)))
        if algorithm == "hierarchical" and group is not None and tuple(group) != everyone:
            raise NetwallError("hierarchical all-reduce runs over every GPU, in rank order")
        groups = self.plan.racks() if algorithm == "hierarchical" else None
        ranks = ranks or len(self.topology.gpus)
        _check_memory(collective, ranks, size)
        return sched.build(collective, algorithm, ranks, size, root=root, chunk=chunk,
                           groups=groups, dtype=dtype, op=op)

    def _execute(self, schedule, count: int, model: float, timeout: float | None,
                 injector: Injector | None = None, check: bool = False):
        """`count` calls of one schedule over every GPU, back to back on one stream, at the
        current dilation. A rank that makes no progress for `timeout` wall-clock seconds
        (default: three times the model plus any outage) is stuck: a dead peer, or a bug."""
        if not count:
            return None
        outage = injector.outage_s() if injector else 0.0
        rto = self.plan.retransmit_timeout_s()
        # Repairs wait a few timeouts each, and those grow with the dilation too.
        timeout = timeout or 10.0 + 3 * model * self.dilation + outage * self.dilation + 4 * rto
        group = tuple(range(len(self.topology.gpus)))
        costs = self.costs_of(schedule)
        calls = [CallPlan(self._op + i, schedule, group, init=check, check=check, costs=costs,
                          dtype=schedule.dtype, op=schedule.op) for i in range(count)]
        self._op += count
        tick = injector.tick if injector else None
        if self.observer is not None:
            tick = self.observer.program(self, calls, "check" if check else
                                         "timed" if injector else "warm-up", injector)
        outcome = self.agents.execute(calls, timeout, expected_s=count * model * self.dilation,
                                      rto=rto, dilation=self.dilation,
                                      on_start=injector.start if injector else None,
                                      on_tick=tick, skip=not (injector and injector.faults))
        if self.observer is not None:
            self.observer.ended(self, outcome)
        self.emulated_s += (max(end for _, end in outcome.spans.values()) - outcome.start) \
            / self.dilation
        return outcome

    def _link_report(self, schedule, before: dict, after: dict, iters: int) -> list[dict]:
        """Per directed link that carried traffic: bytes seen by its qdisc against the schedule
        (when there is one schedule to hold them against)."""
        expected = wire_loads(self.topology, schedule, self.frame_payload,
                              self.costs_of(schedule).efficiency) if schedule else {}
        report = []
        for key in sorted(after):
            link, sender = key
            moved = {k: after[key][k] - before[key][k] for k in ("bytes", "packets", "drops")}
            if moved["bytes"] or expected.get(key):
                cable = self.topology.links[link]
                report.append({
                    "link": self.topology.directed(link, sender),
                    "profile": cable.profile,
                    "bytes": moved["bytes"],
                    "expected_bytes": expected.get(key, 0) * iters if schedule else None,
                    "packets": moved["packets"],
                    "drops": moved["drops"],
                })
        return report

    def set_faults(self, link: int, faults: list[Fault]) -> LinkState:
        """Leave these faults on a live cable until changed again (none: its profile's state)."""
        self.faults[link] = list(faults)
        return apply_link_state(self, link, self.faults[link])

    def link_status(self, link: int, up: bool) -> LinkState:
        """Mininet's link down or up on a cable, as netwall's `down` fault struck or cleared:
        one state whichever way it was changed. Up clears only `down`: failed lanes or
        channels and raised bit-error rates stay until `restore`."""
        cable = self.topology.links[link]
        kept = [f for f in self.faults.get(link, []) if f.kind != "down"]
        down = [] if up else [Fault("down", (cable.a, cable.b), 0.0)]
        return self.set_faults(link, kept + down)

    def link_state(self, link: int) -> LinkState:
        """What a cable carries now, with the faults left on it."""
        profile = self.catalogue[self.topology.links[link].profile]
        return link_state(profile, self.faults.get(link, []))

    def link_index(self, name: str) -> int:
        """The cable called 'a--b' (either order)."""
        a, _, b = name.partition("--")
        for index, cable in enumerate(self.topology.links):
            if {cable.a, cable.b} == {a, b}:
                return index
        raise NetwallError(f"fault on {name}: no such link in {self.topology.name}")

    def settings(self) -> dict:
        """The run's settings, recorded beside its results."""
        links = sorted({link.profile for link in self.topology.links})
        return {
            "topology": self.topology.name,
            "ranks": len(self.topology.gpus),
            "links": links,
            "profiles": {name: self.catalogue[name].to_dict() for name in links},
            "gpu": self.gpu.to_dict(),
            "link_delay": self.delay_mechanism,
            "agent_scheduling": (self.scheduling or scheduling.wanted()).describe(),
            "dilation": self.fixed_dilation or "auto",
            "tolerance": self.tolerance,
            "host": dataclasses.asdict(self.host),
            "emulation_mtu": EMULATION_MTU,
            "capabilities": dataclasses.asdict(self.capabilities),
            "not_emulated": self.not_emulated,
            **({"hosts": self.spread, "cross_host_links": len(self.partition.cross_links()),
                "nic_gbps": self.nic_gbps,
                # How far apart the hosts' agents may start (the measured clock offsets).
                "clock_uncertainty_s": getattr(self.network, "clock_uncertainty_s", None)}
               if self.partition is not None else {}),
        }


def bound_duration(estimate_s: float, what: str, limit_s: float = MAX_RUN_S) -> None:
    """Refuse work that would run past the limit on this host, before building anything."""
    if estimate_s > limit_s:
        raise NetwallError(f"{what} would take about {estimate_s / 3600:,.0f} h on this host "
                           f"(limit {limit_s / 3600:g} h): use fewer or smaller sizes, fewer "
                           "iterations, or a smaller --dilation")


def calibrated_host(capabilities: Capabilities | None = None,
                    note: Callable[[str], None] | None = None,
                    again: bool = False) -> calibration.Calibration:
    """This machine's calibration: the cached one, or measured now on the calibration star
    (about a minute, once per machine) and cached. `note` hears what happens."""
    found = None if again else calibration.load()
    if found:
        return found
    note = note or (lambda _text: None)
    note(f"netwall: calibrating this host (once; cached in {calibration.cache_path()})")
    with Emulation(calibration.TOPOLOGY, calibration.LINK, dilation=1000,
                   capabilities=capabilities, gpu="ideal") as emu:  # the host, not a GPU
        found = emu.calibrate(progress=lambda text: note(f"netwall: calibration: {text}"))
    try:
        calibration.save(found)
    except (OSError, NetwallError) as e:
        note(f"netwall: note: could not cache the calibration ({e}); it will be measured "
             "again")
    note(f"netwall: {found.summary()}")
    return found


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


def apply_link_state(emu: Emulation, link: int, faults: list[Fault]) -> LinkState:
    """Put a live cable in the state these faults leave it in (none: its profile's)."""
    profile = emu.catalogue[emu.topology.links[link].profile]
    now = link_state(profile, faults)
    loss = dataclasses.replace(profile, post_fec_ber=now.ber).frame_loss(FRAME_BYTES)
    if now.ber == profile.post_fec_ber and emu.capabilities.netem:
        loss = 0.0  # netem carries the profile's own loss
    emu.network.set_link(link, now.rate_gbps, loss)
    return now


def _laid_out(topo: Topology, spec: str, link: str, spine_link: str, layout: str) -> Topology:
    """racks:RxG with cable lengths computed from a rack layout (topologies/layout.py)."""
    if not spec.startswith("racks:"):
        raise NetwallError("--layout applies to racks:RxG and cluster:DxG topologies only")
    per_rack = len(topo.gpus) // len([s for s in topo.switches if s.startswith("rack")])
    racks = len(topo.gpus) // per_rack
    return racks_topology(racks, per_rack, link, spine_link, parse_layout(layout, per_rack),
                          name=spec)


class Injector:
    """Applies faults on a live network during one program, and records what it did.

    It runs in the controller's thread, from the launcher's wait loop: pyroute2 sockets
    belong to the thread (and so the namespace) that opened them.
    """

    def __init__(self, emulation: Emulation, faults: list[Fault]) -> None:
        self.emu = emulation
        self.faults = faults
        self.events = timeline(faults)
        self.links = {f.name: emulation.link_index(f.name) for f in faults}
        if faults and not (emulation.capabilities.bpf_loss or emulation.capabilities.netem):
            raise NetwallError("faults need the eBPF loss classifier or netem (netwall check)")
        self.record: list[FaultEvent] = []
        self.active: dict[int, list[Fault]] = {}
        self.origin: float | None = None
        self.struck: dict[int, float] = {}  # id(fault) -> when it first struck (real s)

    def start(self, start: float) -> None:
        self.origin = start

    def tick(self) -> None:
        """Apply every event that is due."""
        while self.events and self.origin is not None and \
                time.monotonic() >= self.origin + self.events[0].t_s * self.emu.dilation:
            event = self.events.pop(0)
            link = self.links[event.fault.name]
            faults = self.active.setdefault(link, [])
            now = (time.monotonic() - self.origin) / self.emu.dilation
            if event.active:
                faults.append(event.fault)
                self.struck.setdefault(id(event.fault), now)
            else:
                faults.remove(event.fault)
            self._apply(link, faults, now,
                        f"{event.fault.kind} {'starts' if event.active else 'ends'}")

    def _apply(self, link: int, faults: list[Fault], t_s: float | None, what: str) -> None:
        now = apply_link_state(self.emu, link, self.emu.faults.get(link, []) + faults)
        cable = self.emu.topology.links[link]
        self.record.append(FaultEvent(t_s, f"{cable.a}--{cable.b}", what, now.rate_gbps,
                                      now.note))

    def outage_s(self) -> float:
        """Real seconds the faults may hold links down: a rank may wait that long."""
        return sum((f.duration_s or 0) * f.count for f in self.faults)

    def stop(self, record: bool = True) -> None:
        """End the program's faults: every faulted link back to the state it was left in."""
        for link in self.links.values():
            self._apply(link, [], None, "restored after the timed calls")
        if not record:
            self.record = []

    def missed(self, end_s: float) -> list[Fault]:
        """The faults that did not strike before the timed calls ended at `end_s` (real s
        after their start), each recorded as such: a fault that never happened must not
        read as one the measurement survived."""
        missed = [f for f in self.faults if self.struck.get(id(f), math.inf) >= end_s]
        for f in missed:
            self.record.append(FaultEvent(None, f.name, f"{f.spec} DID NOT STRIKE: the timed "
                                          f"calls ended at {end_s * 1e6:.1f} us", None,
                                          "not struck"))
        return missed


def _buffer(call: Call) -> str:
    """The agents' buffer a trace call works in: one per communicator and stream, as a
    framework reuses its allocations, and for sends one per direction too, so that a rank's
    grouped send and receive (each checked) never share bytes."""
    if call.collective == "send":
        sender, receiver = takers(call)
        return f"{call.comm}/{call.stream}/{sender}>{receiver}"
    return f"{call.comm}/{call.stream}"
