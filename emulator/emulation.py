"""The Python API: an emulated cluster as a context manager.

    from emulator import Emulation
    with Emulation(topology="ring:4", link="optical-800g", dilation=None) as emu:
        emu.net                      # the running Mininet
        emu.hosts                    # GPU hosts in rank order
        emu.run(collective="allreduce", algorithm="ring", size=1 << 20)

Everything the user can get wrong is checked before anything is built, so bad input leaves
nothing behind; leaving the block (normally, on an error or on Ctrl-C) tears everything down.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from emulator import dilation as dil
from emulator import state
from emulator.accounting import wire_loads
from emulator.capabilities import Capabilities, probe
from emulator.energy import EnergyReport, run_energy
from emulator.errors import NetwallError
from emulator.faults import Fault, LinkState, link_state, timeline
from emulator.fidelity import cpu_times, judge
from emulator.metrics import algbw_gbps, busbw_gbps
from emulator.model import globalize, model_time_s
from emulator.plan import EMULATION_MTU, FRAME_BYTES, gpu_link_rates, make_plan
from emulator.profiles import catalogue, get_profile
from topologies import Topology, parse, validate
from traffic import schedule as sched
from traffic.header import frame_payload
from traffic.launcher import Agents, CallPlan
from traffic.trace import Call, resolve


class Emulation:
    """A validated emulated cluster; start() or `with` builds it, stop() or leaving removes it."""

    def __init__(
        self,
        topology: str | Topology = "star:8",
        link: str = "copper-800g",
        *,
        spine_link: str = "optical-800g",
        length_m: float | None = None,
        spine_length_m: float | None = None,
        dilation: float | None = None,
        profiles: Iterable[str | Path] = (),
        strict: bool = False,
        capabilities: Capabilities | None = None,
        layout: str | None = None,
    ) -> None:
        self.catalogue = catalogue(profiles)
        get_profile(link, self.catalogue)
        self.link = link
        if isinstance(topology, Topology):
            self.topology = topology
        else:
            uses_spine = topology.startswith("racks:")
            if uses_spine:
                get_profile(spine_link, self.catalogue)
            self.topology = parse(topology, link, spine_link=spine_link, length_m=length_m,
                                  spine_length_m=spine_length_m)
            if layout is not None:
                self.topology = _laid_out(self.topology, topology, link, spine_link, layout)
        validate(self.topology, self.catalogue)
        self.capabilities = capabilities or probe()
        if not (self.capabilities.veth and self.capabilities.htb):
            raise NetwallError("this kernel lacks veth or htb; netwall cannot shape links here "
                               "(run `netwall check`)")
        self.not_emulated = []
        if not self.capabilities.netem:
            self.not_emulated.append("link delay")
            if not self.capabilities.bpf_loss:
                self.not_emulated.append("bit-error loss")
        if strict and self.not_emulated:
            raise NetwallError(f"--strict: this kernel has no netem, so "
                               f"{' and '.join(self.not_emulated)} cannot be emulated "
                               "(run `netwall check`)")
        injection = dil.injection_gbps(gpu_link_rates(self.topology, self.catalogue))
        if dilation is None:
            self.dilation = dil.choose(injection, dil.capacity_gbps(os.cpu_count() or 1))
        else:
            self.dilation = dil.check(float(dilation))
        self.plan = make_plan(self.topology, self.catalogue, self.dilation)
        self.frame_payload = frame_payload(EMULATION_MTU) // sched.ELEMENT * sched.ELEMENT
        self.network = None
        self.agents = None
        self._op = 0

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Emulation:
        from emulator.network import Network  # Mininet is imported only when building

        leftovers = state.clean()
        if leftovers:
            print(f"netwall: removed what an earlier, killed run left ({len(leftovers)} items)",
                  file=sys.stderr)
        self.network = Network(self.plan, netem=self.capabilities.netem)
        try:
            self.network.start()
            self.agents = Agents(self.hosts, [self.plan.peers(g) for g in self.topology.gpus],
                                 EMULATION_MTU, self.plan.retransmit_timeout_s(),
                                 self.plan.send_buffer_bytes())
            self.network.record.add("agents", [p.pid for p in self.agents.procs])
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
            faults: list[Fault] | None = None) -> dict:
        """Time `iters` back-to-back calls after `warmup` untimed ones, then (with `check`)
        verify one more call's result on every rank, as nccl-tests does. One result entry.

        `faults` strike during the timed calls, at times counted from their start (real
        units); every link is whole again before the checked call.
        """
        if self.agents is None:
            raise NetwallError("the emulation is not running (use `with Emulation(...)`)")
        if iters < 1 or warmup < 0:
            raise NetwallError(f"iters must be >= 1 and warmup >= 0, got {iters} and {warmup}")
        schedule = self.schedule(collective, algorithm, size, root, chunk)
        model = model_time_s(schedule, self.topology, self.catalogue)
        # The error is taken against the model of what this kernel emulates: without netem,
        # link delay is not emulated, so neither is the model's latency term.
        emulated = model_time_s(schedule, self.topology, self.catalogue,
                                latency=self.capabilities.netem)
        # A rank that makes no progress for this long (wall-clock seconds) is stuck: a dead
        # or cut-off peer, or a bug.
        faults = faults or []
        injector = Injector(self, faults)
        outage = sum((f.duration_s or 0) * f.count for f in faults) * self.dilation
        timeout = timeout or 10.0 + 3 * model * self.dilation + outage
        self._execute(schedule, warmup, timeout, model)
        before = self.network.counters()
        cpu_before = cpu_times()
        try:
            timed = self._execute(schedule, iters, timeout, model, injector)
        finally:
            injector.stop()
        cpu_after = cpu_times()
        after = self.network.counters()
        checked = self._execute(schedule, 1, timeout, model, check=True) if check else None
        finish = max(end for _, end in timed.spans.values())
        missed = injector.missed((finish - timed.start) / self.dilation)
        time_s = (finish - timed.start) / iters / self.dilation
        links = self._link_report(schedule, before, after, iters)
        energy = self.energy(links, time_s, size, iters)
        verdict = judge(cpu_before, cpu_after, links, self._link_rates(),
                        (finish - timed.start), timed.stats["retransmitted_frames"],
                        loss_expected=bool(faults) or self._lossy())
        return {
            "collective": collective,
            "algorithm": schedule.algorithm,
            "ranks": schedule.ranks,
            "bytes": size,
            "count": size // sched.ELEMENT,
            "type": "float",
            "iters": iters,
            "time_s": time_s,
            "algbw_gbps": algbw_gbps(size, time_s),
            "busbw_gbps": busbw_gbps(collective, schedule.ranks, size, time_s),
            "model_time_s": model,
            "model_emulated_time_s": emulated,
            "model_error": time_s / emulated - 1,
            "check": all(checked.checks.values()) if checked else None,
            "retransmitted_bytes": timed.stats["retransmitted_bytes"],
            "retransmitted_frames": timed.stats["retransmitted_frames"],
            "faults": injector.record,
            "faults_not_struck": [f.spec for f in missed],
            "fidelity": verdict.to_dict(),
            "energy_j": energy.total_joules,
            "energy_by_profile_j": energy.joules_by_profile,
            "joules_per_gb": energy.joules_per_gb,
            "links": links,
        }

    def _link_rates(self) -> dict[str, float]:
        """Each directed link's configured (emulated) rate, by its report name."""
        return {self.topology.directed(link, node): shape.rate_bps
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

    def replay(self, calls: list[Call], check: bool = False) -> dict:
        """Run a trace: every call at once as one program, streams overlapping, each call
        after its compute gap and its `after` calls. Per-call and per-step times, real units.
        """
        if self.agents is None:
            raise NetwallError("the emulation is not running (use `with Emulation(...)`)")
        calls = resolve(calls, len(self.topology.gpus))
        op = {c.id: self._op + i for i, c in enumerate(calls)}
        comms = {name: i for i, name in enumerate(dict.fromkeys(c.comm for c in calls))}
        plans, models = [], {}
        for c in calls:
            schedule = self.schedule(c.collective, c.algorithm, c.bytes, c.root,
                                     ranks=len(c.group), group=c.group)
            models[c.id] = model_time_s(globalize(schedule, c.group), self.topology,
                                        self.catalogue)
            plans.append(CallPlan(op[c.id], schedule, c.group, comms[c.comm], c.stream,
                                  c.gap_us * 1e-6 * self.dilation,
                                  tuple(op[a] for a in c.after), f"{c.comm}/{c.stream}",
                                  init=check, check=check))
        self._op += len(calls)
        total = sum(models.values()) * self.dilation
        timeout = 10.0 + 3 * total
        before = self.network.counters()
        outcome = self.agents.execute(plans, timeout, expected_s=total)
        after = self.network.counters()
        rows = []
        for c, plan in zip(calls, plans, strict=True):
            first, last = outcome.spans[plan.id]
            time_s = (last - first) / self.dilation
            rows.append({
                "id": c.id, "step": c.step, "stream": c.stream, "comm": c.comm,
                "collective": c.collective, "algorithm": plan.schedule.algorithm,
                "ranks": len(c.group), "bytes": c.bytes,
                "start_s": (first - outcome.start) / self.dilation, "time_s": time_s,
                "algbw_gbps": algbw_gbps(c.bytes, time_s),
                "busbw_gbps": busbw_gbps(c.collective, len(c.group), c.bytes, time_s),
                "model_time_s": models[c.id],
                "check": outcome.checks.get(plan.id) if check else None,
            })
        steps = {}
        for row in rows:
            begin, end = steps.get(row["step"], (row["start_s"], 0.0))
            steps[row["step"]] = (min(begin, row["start_s"]), max(end, row["start_s"] +
                                                                   row["time_s"]))
        return {
            "calls": rows,
            "steps": [{"step": k, "time_s": end - begin} for k, (begin, end) in
                      sorted(steps.items())],
            "total_s": max(end for _, end in outcome.spans.values()) / self.dilation
            - outcome.start / self.dilation,
            "retransmitted_bytes": outcome.stats["retransmitted_bytes"],
            "links": self._link_report(None, before, after, 1),
        }

    def schedule(self, collective: str, algorithm: str | None, size: int, root: int = 0,
                 chunk: int | None = None, ranks: int | None = None,
                 group: tuple[int, ...] | None = None) -> sched.Schedule:
        """The schedule of one call over `ranks` (default: every GPU) of this cluster."""
        algorithm = algorithm or sched.default_algorithm(collective)
        everyone = tuple(range(len(self.topology.gpus)))
        if algorithm == "hierarchical" and group is not None and tuple(group) != everyone:
            raise NetwallError("hierarchical all-reduce runs over every GPU, in rank order")
        groups = self.plan.racks() if algorithm == "hierarchical" else None
        ranks = ranks or len(self.topology.gpus)
        _check_memory(collective, ranks, size)
        return sched.build(collective, algorithm, ranks, size, root=root, chunk=chunk,
                           groups=groups)

    def _execute(self, schedule, count: int, timeout: float, model: float,
                 injector: Injector | None = None, check: bool = False):
        """`count` calls of one schedule over every GPU, back to back on one stream."""
        if not count:
            return None
        group = tuple(range(len(self.topology.gpus)))
        calls = [CallPlan(self._op + i, schedule, group, init=check, check=check)
                 for i in range(count)]
        self._op += count
        return self.agents.execute(calls, timeout, expected_s=count * model * self.dilation,
                                   on_start=injector.start if injector else None,
                                   on_tick=injector.tick if injector else None)

    def _link_report(self, schedule, before: dict, after: dict, iters: int) -> list[dict]:
        """Per directed link that carried traffic: bytes seen by its qdisc against the schedule
        (when there is one schedule to hold them against)."""
        expected = wire_loads(self.topology, schedule, self.frame_payload) if schedule else {}
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
            "dilation": self.dilation,
            "emulation_mtu": EMULATION_MTU,
            "capabilities": dataclasses.asdict(self.capabilities),
            "not_emulated": self.not_emulated,
        }


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
    from topologies.layout import parse_layout, racks_topology

    if not spec.startswith("racks:"):
        raise NetwallError("--layout applies to racks:RxG topologies only")
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
        self.events = timeline(faults)
        self.links = {f.name: emulation.link_index(f.name) for f in faults}
        if faults and not (emulation.capabilities.bpf_loss or emulation.capabilities.netem):
            raise NetwallError("faults need the eBPF loss classifier or netem (netwall check)")
        self.faults = faults
        self.record: list[dict] = []
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
        now = apply_link_state(self.emu, link, faults)
        cable = self.emu.topology.links[link]
        self.record.append({"t_s": t_s, "link": f"{cable.a}--{cable.b}", "event": what,
                            "rate_gbps": now.rate_gbps, "state": now.note})

    def stop(self) -> None:
        """End the program's faults: every faulted link back to its profile."""
        for link in self.links.values():
            self._apply(link, [], None, "restored after the timed calls")

    def missed(self, end_s: float) -> list[Fault]:
        """The faults that did not strike before the timed calls ended at `end_s` (real s
        after their start), each recorded as such: a fault that never happened must not
        read as one the measurement survived."""
        missed = [f for f in self.faults if self.struck.get(id(f), math.inf) >= end_s]
        for f in missed:
            self.record.append({"t_s": None, "link": f.name, "event": f"{f.spec} DID NOT "
                                f"STRIKE: the timed calls ended at {end_s * 1e6:.1f} us",
                                "rate_gbps": None, "state": "not struck"})
        return missed
