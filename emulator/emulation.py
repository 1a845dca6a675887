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
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from emulator import dilation as dil
from emulator import state
from emulator.accounting import wire_loads
from emulator.capabilities import Capabilities, probe
from emulator.errors import NetwallError
from emulator.metrics import algbw_gbps, busbw_gbps
from emulator.model import model_time_s
from emulator.plan import EMULATION_MTU, gpu_link_rates, make_plan
from emulator.profiles import catalogue, get_profile
from topologies import Topology, parse, validate
from traffic import schedule as sched
from traffic.header import frame_payload
from traffic.launcher import Agents, CallPlan


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
    ) -> None:
        self.catalogue = catalogue(profiles)
        get_profile(link, self.catalogue)
        if isinstance(topology, Topology):
            self.topology = topology
        else:
            uses_spine = topology.startswith("racks:")
            if uses_spine:
                get_profile(spine_link, self.catalogue)
            self.topology = parse(topology, link, spine_link=spine_link, length_m=length_m,
                                  spine_length_m=spine_length_m)
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
            root: int = 0, chunk: int | None = None) -> dict:
        """Time `iters` back-to-back calls after `warmup` untimed ones, then (with `check`)
        verify one more call's result on every rank, as nccl-tests does. One result entry."""
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
        # A rank that makes no progress for this long is stuck: a dead peer or a bug.
        timeout = 10.0 + 3 * model * self.dilation
        self._execute(schedule, warmup, timeout)
        before = self.network.counters()
        timed = self._execute(schedule, iters, timeout)
        after = self.network.counters()
        checked = self._execute(schedule, 1, timeout, check=True) if check else None
        finish = max(end for _, end in timed.spans.values())
        time_s = (finish - timed.start) / iters / self.dilation
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
            "links": self._link_report(schedule, before, after, iters),
        }

    def schedule(self, collective: str, algorithm: str | None, size: int, root: int = 0,
                 chunk: int | None = None, ranks: int | None = None) -> sched.Schedule:
        """The schedule of one call over `ranks` (default: every GPU) of this cluster."""
        algorithm = algorithm or sched.ALGORITHMS.get(collective, ("ring",))[0]
        groups = self.plan.racks() if algorithm == "hierarchical" else None
        return sched.build(collective, algorithm, ranks or len(self.topology.gpus), size,
                           root=root, chunk=chunk, groups=groups)

    def _execute(self, schedule, count: int, timeout: float, check: bool = False):
        """`count` calls of one schedule over every GPU, back to back on one stream."""
        if not count:
            return None
        group = tuple(range(len(self.topology.gpus)))
        calls = [CallPlan(self._op + i, schedule, group, init=check, check=check)
                 for i in range(count)]
        self._op += count
        return self.agents.execute(calls, timeout)

    def _link_report(self, schedule, before: dict, after: dict, iters: int) -> list[dict]:
        """Per directed link that carried traffic: bytes seen by its qdisc against the schedule."""
        expected = wire_loads(self.topology, schedule, self.frame_payload)
        report = []
        for key in sorted(after):
            link, sender = key
            moved = {k: after[key][k] - before[key][k] for k in after[key]}
            if moved["bytes"] or expected.get(key):
                cable = self.topology.links[link]
                report.append({
                    "link": f"{sender}->{self.topology.other(link, sender)}",
                    "profile": cable.profile,
                    "bytes": moved["bytes"],
                    "expected_bytes": expected.get(key, 0) * iters,
                    "packets": moved["packets"],
                    "drops": moved["drops"],
                })
        return report

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
