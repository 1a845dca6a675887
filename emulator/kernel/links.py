"""Live cables in the state their faults leave them in: faults left standing (the console's
fail, ber and restore, Mininet's link down and up) and a program's own faults (run --fault),
which the Injector strikes while its calls run.

A fabric is what carries the cables: this host's Network (emulator.kernel.network) or a
Cluster spread over several hosts (emulator.remote.cluster). Both implement `Fabric`, and both
are handed the emulation's LinkStates when they are built, so a link change, however it
comes (a fault's event, the console, Mininet's configLinkStatus), goes down one way:
LinkStates -> Fabric.set_link, never back up into the emulation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from emulator.models.accounting import Counters
from emulator.models.faults import (
    Fault,
    FaultEvent,
    LinkState,
    fastest_gbps,
    link_state,
    outage_s,
    timeline,
)
from emulator.models.plan import FRAME_BYTES, Plan
from emulator.models.profiles import LinkProfile
from foundation.errors import NetwallError
from topologies import Topology


class Fabric(Protocol):
    """What the emulation asks of a live network, on one host or over several."""

    def redilate(self, plan: Plan) -> None:
        """Move every live link to `plan`'s dilation."""

    def set_link(self, link: int, rate_gbps: float, loss_probability: float) -> None:
        """A live cable's rate (0: down) and frame loss, both directions."""

    def counters(self) -> Counters:
        """Egress bytes, packets and drops per directed link (link, sending node)."""

    def cpu_times(self) -> list[tuple[int, int]]:
        """(busy, total) CPU jiffies of every host the fabric runs on."""


class LinkStates:
    """The state of every live cable: the faults left on it until undone, by cable, put on
    the fabric it is attached to (`faultable`: this kernel can drop frames on a link, by
    netem or the eBPF classifier, which every fault needs)."""

    def __init__(self, topology: Topology, catalogue: Mapping[str, LinkProfile], netem: bool,
                 faultable: bool) -> None:
        self.topology = topology
        self.catalogue = catalogue
        self.netem = netem
        self.faultable = faultable
        self.standing: dict[int, list[Fault]] = {}
        self.fabric: Fabric | None = None

    def attach(self, fabric: Fabric | None) -> None:
        """Put link changes on `fabric` from now on (None: on nothing; changes are refused)."""
        self.fabric = fabric

    def set(self, link: int, faults: list[Fault]) -> LinkState:
        """Leave these faults on a live cable until changed again (none: its profile's state)."""
        self.standing[link] = list(faults)
        return self.put(link, self.standing[link])

    def status(self, link: int, up: bool) -> LinkState:
        """Mininet's link down or up on a cable, as netwall's `down` fault struck or cleared:
        one state whichever way it was changed. Up clears only `down`: failed lanes or
        channels and raised bit-error rates stay until `restore`."""
        cable = self.topology.links[link]
        kept = [f for f in self.standing.get(link, []) if f.kind != "down"]
        down = [] if up else [Fault("down", (cable.a, cable.b), 0.0)]
        return self.set(link, kept + down)

    def state(self, link: int, also: Sequence[Fault] = ()) -> LinkState:
        """What a cable carries now, with the faults left on it (and `also`: a program's
        faults striking on top of them)."""
        return link_state(self.profile(link), [*self.standing.get(link, []), *also])

    def slowed(self, also: Mapping[int, Sequence[Fault]]) -> dict[int, float]:
        """Real Gb/s of every cable that carries less than its profile's rate but still
        carries (lost channels, spares used up), with the faults left on it and `also` (a
        program's faults at its start, by cable): what the agents pace those frames at."""
        slowed = {}
        for link in set(self.standing) | set(also):
            rate = self.state(link, also.get(link, ())).rate_gbps
            if 0 < rate < self.profile(link).rate_gbps:
                slowed[link] = rate
        return slowed

    def put(self, link: int, faults: list[Fault]) -> LinkState:
        """Put a live cable in the state these faults leave it in (none: its profile's)."""
        if self.fabric is None:
            cable = self.topology.links[link]
            raise NetwallError(f"link {cable.a}--{cable.b}: this network has no link state to "
                               "change (build it through Emulation)")
        profile = self.profile(link)
        now = link_state(profile, faults)
        loss = dataclasses.replace(profile, post_fec_ber=now.ber).frame_loss(FRAME_BYTES)
        if now.ber == profile.post_fec_ber and self.netem:
            loss = 0.0  # netem carries the profile's own loss
        self.fabric.set_link(link, now.rate_gbps, loss)
        return now

    def profile(self, link: int) -> LinkProfile:
        return self.catalogue[self.topology.links[link].profile]


class Injector:
    """Strikes one program's faults on live cables, on top of the faults left standing, and
    records what it did. `cables`: each fault's cable by its name; `dilation`: the program's,
    which turns the faults' real times into wall-clock ones.

    It runs in the controller's thread, from the launcher's wait loop: pyroute2 sockets
    belong to the thread (and so the namespace) that opened them.
    """

    def __init__(self, links: LinkStates, faults: list[Fault], cables: Mapping[str, int],
                 dilation: float) -> None:
        if faults and not links.faultable:
            raise NetwallError("faults need the eBPF loss classifier or netem (netwall check)")
        self.links = links
        self.faults = faults
        self.cables = {f.name: cables[f.name] for f in faults}
        self.dilation = dilation
        self.events = timeline(faults)
        self.record: list[FaultEvent] = []
        self.active: dict[int, list[Fault]] = {}
        self.origin: float | None = None
        self.struck: dict[int, float] = {}  # id(fault) -> when it first struck (real s)

    def start(self, start: float) -> None:
        self.origin = start

    def tick(self) -> None:
        """Apply every event that is due."""
        while self.events and self.origin is not None and \
                time.monotonic() >= self.origin + self.events[0].t_s * self.dilation:
            event = self.events.pop(0)
            link = self.cables[event.fault.name]
            faults = self.active.setdefault(link, [])
            now = (time.monotonic() - self.origin) / self.dilation
            if event.active:
                faults.append(event.fault)
                self.struck.setdefault(id(event.fault), now)
            else:
                faults.remove(event.fault)
            self._apply(link, faults, now,
                        f"{event.fault.kind} {'starts' if event.active else 'ends'}")

    def _apply(self, link: int, faults: list[Fault], t_s: float | None, what: str) -> None:
        now = self.links.put(link, self.links.standing.get(link, []) + faults)
        cable = self.links.topology.links[link]
        self.record.append(FaultEvent(t_s, f"{cable.a}--{cable.b}", what, now.rate_gbps,
                                      now.note))

    def opening(self) -> dict[int, list[Fault]]:
        """The faults that strike at the program's very start, by cable: the agents pace
        at the rates they leave (LinkStates.slowed) from the first frame."""
        opening: dict[int, list[Fault]] = {}
        for event in self.events:
            if event.t_s == 0 and event.active:
                opening.setdefault(self.cables[event.fault.name], []).append(event.fault)
        return opening

    def fastest(self) -> dict[int, float]:
        """Every cable's fastest rate (real Gb/s) while the program ran, with the faults
        left on it and this program's (faults.fastest_gbps): what no result may beat."""
        struck: dict[int, list[Fault]] = {}
        for f in self.faults:
            struck.setdefault(self.cables[f.name], []).append(f)
        links = self.links
        return {link: fastest_gbps(links.profile(link), links.standing.get(link, []),
                                   struck.get(link, []))
                for link in range(len(links.topology.links))}

    def outage_s(self) -> float:
        """Real seconds the faults may hold links down: a rank may wait that long."""
        return outage_s(self.faults)

    def stop(self, record: bool = True) -> None:
        """End the program's faults: every faulted link back to the state it was left in."""
        for link in self.cables.values():
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
