"""The Python API: an emulated cluster as a context manager.

    from emulator import Emulation
    with Emulation(topology="ring:4", link="optical-800g", dilation=None) as emu:
        emu.net                      # the running Mininet
        emu.hosts                    # GPU hosts in rank order
        emu.gpu                      # the GPU endpoint every rank stands in for
        emu.run(collective="allreduce", algorithm="ring", size=1 << 20)

Everything the user can get wrong is checked before anything is built, so bad input leaves
nothing behind; leaving the block (normally, on an error or on Ctrl-C) tears everything down.

A facade: the checks and what a call costs are emulator.models.spec and .pricing, the proof
of every result is emulator.models.proof wired up by emulator.proving, the batches it runs
are emulator.batches, the
links' state and faults are emulator.kernel.links, and results are made in
emulator.assemble. docs/architecture.md draws the path of one run through them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable
from pathlib import Path

from emulator import assemble, running
from emulator.batches import Batches
from emulator.kernel import records as state
from emulator.kernel import vxlan
from emulator.kernel.capabilities import Capabilities, probe
from emulator.kernel.links import LinkStates
from emulator.models import calibration
from emulator.models import dilation as dil
from emulator.models.alphabeta import call_costs, routes
from emulator.models.endpoints import DEFAULT as DEFAULT_GPU
from emulator.models.faults import Fault, LinkState
from emulator.models.partition import check_nic, min_dilation, partition
from emulator.models.plan import EMULATION_MTU, Plan, gpu_link_rates, make_plan, redilated
from emulator.models.pricing import Pricing
from emulator.models.profiles import DEFAULT_LINK
from emulator.models.spec import ReplayRequest, RunRequest, Spec, cluster
from emulator.proving import Prover
from emulator.result import ReplayResult, RunResult
from foundation.errors import NetwallError
from foundation.hostlist import DEFAULT_NIC_GBPS, Host
from topologies import Topology
from traffic import schedule as sched
from traffic import scheduling
from traffic.protocol import Route
from traffic.trace import Call


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
        self.link = link
        #: What every rank stands in for (emulator.models.endpoints): NCCL's costs on it.
        self.topology, self.catalogue, self.gpu = cluster(
            topology, link, spine_link=spine_link, length_m=length_m,
            spine_length_m=spine_length_m, profiles=profiles, layout=layout, gpu=gpu)
        self.capabilities = capabilities or probe()
        #: What this kernel cannot emulate (the pre-flight says so once).
        self.not_emulated = _not_emulated(self.capabilities, strict)
        if not 0 < tolerance < 1:
            raise NetwallError(f"--tolerance must be between 0 and 100%, got {tolerance:.1%}")
        self.tolerance = tolerance
        #: The user's --dilation, or None: then every call gets its own (dilation.choose).
        self.fixed_dilation = None if dilation is None else dil.validate(float(dilation))
        #: With a host list: the host that builds each node, and the least dilation at which
        #: no host's cross-host cables outrun its NIC (emulator.models.partition).
        self.spread = [str(h) for h in hosts or []]
        self.partition = partition(self.topology, len(hosts)) if hosts else None
        least = None
        if self.partition is not None:
            if not (math.isfinite(nic_gbps) and nic_gbps > 0):
                raise NetwallError(f"--nic-gbps must be a positive number, got {nic_gbps:g}")
            self.nic_gbps = nic_gbps
            least = dil.nice_ceiling(min_dilation(self.partition, self.catalogue, nic_gbps))
        #: What this host carries faithfully (cached by `netwall check`), or a safe fallback,
        #: and so the dilation of each call (the user's, if fixed).
        self.pricing = Pricing(host or calibration.load() or calibration.FALLBACK, tolerance,
                               self.fixed_dilation, least)
        build = self.pricing.build_dilation(dil.injection_gbps(gpu_link_rates(
            self.topology, self.catalogue)))
        if self.partition is not None:
            check_nic(self.partition, self.catalogue, build, nic_gbps, self.spread)
        self._hosts = hosts or []
        self.vxlan_port = vxlan_port
        self.plan = make_plan(self.topology, self.catalogue, build)
        self.spec = Spec(self.topology, self.catalogue, self.gpu, self.plan.racks(),
                         local=self.partition is None)
        #: Every live cable's state: faults left on it until undone (the console's fail,
        #: ber and restore, Mininet's link down and up), under a program's own (run --fault).
        self.links = LinkStates(self.topology, self.catalogue, self.capabilities.netem,
                                self.capabilities.bpf_loss or self.capabilities.netem)
        self.built: running.Running | None = None
        #: The agents' scheduling policy as the kernel granted it (traffic.scheduling); None
        #: over several hosts, where each worker's agents take it on their own host.
        self.scheduling: scheduling.Policy | None = None
        self._observer = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Emulation:
        try:
            self.built = running.build(self.plan, self.capabilities.netem, self.links,
                                   self.routes(), self.partition, self._hosts, self.vxlan_port)
            self.scheduling = self.built.scheduling
            self.built.batches.watch(self._observer, self)
        except BaseException:
            self.links.attach(None)
            raise
        return self

    def stop(self) -> None:
        with state.shielded():  # a second Ctrl-C waits until the network is gone
            built, self.built = self.built, None
            self.links.attach(None)
            if built is not None:
                built.stop()

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
        """Per participant, what its agent holds and paces each arrival by (alphabeta.routes)."""
        return routes(self.topology, self.catalogue, hold_delay=not self.capabilities.netem)

    @property
    def host(self) -> calibration.Calibration:
        """What this host carries faithfully: what each call's dilation is chosen from."""
        return self.pricing.host

    def calibrated(self, host: calibration.Calibration) -> None:
        """Choose dilations from this calibration from now on (emulator.preflight)."""
        self.pricing = dataclasses.replace(self.pricing, host=host)

    @property
    def dilation(self) -> float:
        """The dilation the network is at now."""
        return self.plan.dilation

    def dilate(self, dilation: float) -> Plan:
        """Put the network (and so the next program) at another dilation; its plan there."""
        if dilation != self.plan.dilation:
            if self.partition is not None:
                check_nic(self.partition, self.catalogue, dilation, self.nic_gbps, self.spread)
            self.plan = redilated(self.plan, self.catalogue, dilation)
            if self.network is not None:
                self.network.redilate(self.plan)
        return self.plan

    @property
    def network(self):
        """The running fabric: this host's Network, or a Cluster over several hosts."""
        return self.built.fabric if self.built else None

    @property
    def batches(self) -> Batches | None:
        return self.built.batches if self.built else None

    @property
    def observer(self):
        """Told of each program as it runs (emulator.view.live.View: program, its tick,
        ended); None, without --view, costs nothing."""
        return self._observer

    @observer.setter
    def observer(self, observer) -> None:
        self._observer = observer
        if self.batches is not None:
            self.batches.watch(observer, self)

    def emulated_model(self, schedule: sched.Schedule) -> float:
        """The model of a call over every GPU: its links and its endpoints' costs."""
        return call_costs(schedule, self.topology, self.catalogue, self.gpu)[1]

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
        reduce, and how. `faults` strike during the timed calls (and the probe), at times
        counted from their start (real units). One result (emulator.result); see measure."""
        self._running()
        return self.measure(self.spec.run_request(
            collective, algorithm, size, iters=iters, warmup=warmup, check=check,
            check_iters=check_iters, root=root, chunk=chunk, faults=faults or (),
            prove=prove, dtype=dtype, op=op, timeout=timeout))

    def measure(self, request: RunRequest) -> RunResult:
        """A checked run request (Spec.run_request), measured and proven (emulator.proving)."""
        batches = self._running()
        began, emulated = time.monotonic(), batches.emulated_s
        trials, checked = self._prover().run(request, self._lossy())
        return assemble.run_result(request, trials, checked,
                                   self._cost(began, emulated, request), self._names())

    def replay(self, calls: list[Call], check: bool = False, prove: bool = True,
               name: str = "trace", skip: bool = True) -> ReplayResult:
        """Run a trace: every call at once as one program, streams overlapping, each call
        after its compute gap and its `after` calls. Per-call and per-step times, real units;
        `name` (the trace file or workload) is what the result calls the trace; `skip`: skip
        the compute gaps no traffic overlaps (traffic.gaps), where the agents can."""
        self._running()
        return self.measure_trace(self.spec.replay_request(calls, check=check, prove=prove,
                                                           name=name, skip=skip))

    def measure_trace(self, request: ReplayRequest) -> ReplayResult:
        """A checked trace (Spec.replay_request), replayed and proven (emulator.proving)."""
        batches = self._running()
        began, emulated = time.monotonic(), batches.emulated_s
        trials = self._prover().trace(request)
        return assemble.replay_result(request, trials, self._cost(began, emulated, request),
                                      self._names())

    def _running(self) -> Batches:
        if self.batches is None:
            raise NetwallError("the emulation is not running (use `with Emulation(...)`)")
        return self.batches

    def _prover(self) -> Prover:
        return Prover(self._running(), self.dilate, self.pricing, self.tolerance,
                      chase=self.fixed_dilation is None)

    def _lossy(self) -> bool:
        """Whether any link's profile loses frames often enough to expect repairs."""
        return any(shape.loss_percent > 1e-4 for shape in self.plan.shapes.values())

    def _cost(self, began: float, emulated: float,
              request: RunRequest | ReplayRequest) -> assemble.Cost:
        cost = request.floor_cost if isinstance(request, ReplayRequest) else request.cost
        return assemble.Cost(time.monotonic() - began, self.batches.emulated_s - emulated,
                             self.pricing.slowdown_floor(cost))

    def _names(self) -> assemble.Cluster:
        return assemble.Cluster(self.link, self.topology.name, self.gpu.name)

    # -- live cables -------------------------------------------------------------------------
    @property
    def faults(self) -> dict[int, list[Fault]]:
        """The faults left on live cables until undone, by cable."""
        return self.links.standing

    def set_faults(self, link: int, faults: list[Fault]) -> LinkState:
        """Leave these faults on a live cable until changed again (none: its profile's state)."""
        return self.links.set(link, faults)

    def link_state(self, link: int) -> LinkState:
        """What a cable carries now, with the faults left on it."""
        return self.links.state(link)

    def link_index(self, name: str) -> int:
        """The cable called 'a--b' (either order)."""
        return self.spec.link_index(name)

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


def _not_emulated(capabilities: Capabilities, strict: bool) -> list[str]:
    """What a kernel with these capabilities cannot emulate; with `strict`, none is allowed.
    A kernel that cannot shape links at all is refused."""
    if not (capabilities.veth and capabilities.htb):
        raise NetwallError("this kernel lacks veth or htb; netwall cannot shape links here "
                           "(run `netwall check`)")
    missing = [] if capabilities.netem or capabilities.bpf_loss else ["bit-error loss"]
    if strict and missing:
        raise NetwallError(f"--strict: this kernel has no netem, so {' and '.join(missing)} "
                           "cannot be emulated (run `netwall check`)")
    return missing
