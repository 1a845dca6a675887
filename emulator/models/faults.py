"""Faults as data: what breaks, on which link, when, and what the link can still carry.

A fault is written `KIND:LINK@START[+DURATION]`, times in real (undilated) units:

    down:gpu0--nvs0@50us+200us      the link carries nothing for 200 us, then recovers
    flap=3:gpu0--nvs0@0+20us        down 20 us, up 20 us, three times
    channels=56:gpu0--nvs0@0        56 lanes/channels fail for the rest of the run
    ber=1e-7:gpu0--nvs0@10us+1ms    the post-FEC bit-error rate rises for 1 ms

What a lane or channel failure does depends on the technology (MOSAIC, SIGCOMM 2025): on a
narrow-and-fast link (copper, optical) one lane down takes the whole link down; on a
wide-and-slow link the spare channels absorb failures, and past the spares each failed
channel removes 1/N of the capacity while the link stays up. This module is pure; the
network applies the resulting link states through netlink, without rebuilding anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from emulator.models.profiles import NARROW_AND_FAST, LinkProfile
from foundation.errors import NetwallError
from foundation.inputs import shown
from foundation.units import parse_duration

KINDS = ("down", "flap", "channels", "ber")
# Bounds, checked before anything is built: every event is a netlink change made while the
# calls run, and every second of fault time is a second (times the dilation) of waiting.
MAX_FAULT_S = 3600.0  # a fault starts and ends within an hour of the timed calls' start
MAX_FLAPS = 1000
MAX_CHANNELS = 10_000
_TIME = r"[0-9.]+(?:e[+-]?[0-9]+)?[a-z]*"
_SYNTAX = re.compile(r"^(?P<kind>[a-z]+)(?:=(?P<arg>[^:]+))?:(?P<link>[a-z0-9]+--[a-z0-9]+)"
                     rf"@(?P<at>{_TIME})(?:\+(?P<dur>{_TIME}))?$")


@dataclass(frozen=True)
class Fault:
    kind: str
    link: tuple[str, str]  # the cable's two ends, as written
    at_s: float  # real seconds after the timed calls start
    duration_s: float | None = None  # None: to the end of the run
    count: int = 1  # flaps
    channels: int = 0  # failed lanes or channels
    ber: float = 0.0  # post-FEC bit-error rate while the fault lasts
    spec: str = field(default="", compare=False)  # as the user wrote it (or as written back)

    def __post_init__(self) -> None:
        if not self.spec:  # built in Python, not parsed: results still name it in one line
            value = {"flap": f"={self.count}", "channels": f"={self.channels}",
                     "ber": f"={self.ber:g}"}.get(self.kind, "")
            until = "" if self.duration_s is None else f"+{self.duration_s:g}s"
            object.__setattr__(self, "spec", f"{self.kind}{value}:{self.name}@{self.at_s:g}s"
                                             f"{until}")

    @property
    def name(self) -> str:
        return f"{self.link[0]}--{self.link[1]}"

    @property
    def end_s(self) -> float:
        """When the fault's last effect ends (the last flap's end), or when it starts if it
        lasts to the end of the run."""
        if self.duration_s is None:
            return self.at_s
        return self.at_s + (2 * self.count - 1) * self.duration_s


@dataclass(frozen=True)
class LinkState:
    """What one cable carries now: its rate and the bit-error rate its frames see."""

    rate_gbps: float  # 0: down
    ber: float
    note: str


@dataclass(frozen=True)
class FaultEvent:
    """What a fault did to a link, and when: a fault starting or ending, the link restored
    after the timed calls, or a fault that never struck (a run's result lists them)."""

    t_s: float | None  # real seconds after the timed calls' start; None: not during them
    link: str  # the cable, 'a--b'
    event: str
    rate_gbps: float | None  # the link's rate after it (None: a fault that did not strike)
    state: str


@dataclass(frozen=True)
class Event:
    t_s: float  # real seconds after the timed calls start
    fault: Fault
    active: bool  # the fault starts (True) or ends (False)


def parse(spec: str) -> Fault:
    """A Fault from its one-line form (see the module docstring), within the bounds above."""
    fault = replace(_parse(spec), spec=spec.strip())
    if fault.end_s > MAX_FAULT_S:
        raise NetwallError(f"fault {shown(spec)}: it must start and end within "
                           f"{MAX_FAULT_S:g} s of the timed calls' start")
    return fault


def _parse(spec: str) -> Fault:
    bad = f"fault {shown(spec)}"
    match = _SYNTAX.match(spec.strip())
    if not match:
        raise NetwallError(f"{bad}: use KIND[=N]:A--B@START[+DURATION], "
                           f"KIND one of {', '.join(KINDS)} (e.g. down:gpu0--nvs0@50us+200us)")
    kind, arg = match.group("kind"), match.group("arg")
    if kind not in KINDS:
        raise NetwallError(f"{bad}: unknown kind {shown(kind)} (use {', '.join(KINDS)})")
    at = parse_duration(match.group("at"), f"{bad}: the start")
    duration = parse_duration(match.group("dur"), f"{bad}: the duration") if match.group("dur") \
        else None
    a, b = match.group("link").split("--")
    if kind == "down":
        if arg is not None:
            raise NetwallError(f"{bad}: down takes no value")
        return Fault(kind, (a, b), at, duration)
    if arg is None:
        raise NetwallError(f"{bad}: {kind} needs a value, e.g. {kind}=3:...")
    try:
        if kind == "ber":
            value = float(arg)
            if not 0 <= value < 1:
                raise ValueError
            return Fault(kind, (a, b), at, duration, ber=value)
        number = int(arg)
        if not 1 <= number <= (MAX_FLAPS if kind == "flap" else MAX_CHANNELS):
            raise ValueError
    except ValueError:
        most = {"ber": "a rate in [0, 1)", "flap": f"1 to {MAX_FLAPS}",
                "channels": f"1 to {MAX_CHANNELS}"}[kind]
        raise NetwallError(f"{bad}: bad value {shown(arg)} for {kind} (use {most})") from None
    if kind == "flap":
        if duration is None or duration == 0:
            raise NetwallError(f"{bad}: a flap needs a duration (down time), e.g. +20us")
        return Fault(kind, (a, b), at, duration, count=number)
    return Fault(kind, (a, b), at, duration, channels=number)


def outage_s(faults: Iterable[Fault]) -> float:
    """Real seconds these faults may hold a program up (every down time, every flap's):
    its calls wait that long, times the dilation, on top of their own time."""
    return sum((f.duration_s or 0) * f.count for f in faults)


def timeline(faults: list[Fault]) -> list[Event]:
    """Every start and end of every fault, in time order (a flap is count down/up pairs)."""
    events = []
    for f in faults:
        if f.kind == "flap":
            for i in range(f.count):
                start = f.at_s + 2 * i * f.duration_s
                events += [Event(start, f, True), Event(start + f.duration_s, f, False)]
        else:
            events.append(Event(f.at_s, f, True))
            if f.duration_s is not None:
                events.append(Event(f.at_s + f.duration_s, f, False))
    return sorted(events, key=lambda e: (e.t_s, not e.active))


def fastest_gbps(profile: LinkProfile, standing: Sequence[Fault],
                 faults: Sequence[Fault]) -> float:
    """The most a cable of `profile` carried (real Gb/s) at any moment of a program whose
    `faults` struck on it on top of those `standing`: what no result may beat on it
    (emulator.models.accounting.floor). A moment of zero length (before a fault at 0) is
    no moment."""
    active = list(standing)
    rates = [] if any(f.at_s == 0 for f in faults) else [link_state(profile, active).rate_gbps]
    events = timeline(list(faults))
    for i, event in enumerate(events):
        if event.active:
            active.append(event.fault)
        else:
            active.remove(event.fault)
        if i + 1 == len(events) or events[i + 1].t_s > event.t_s:
            rates.append(link_state(profile, active).rate_gbps)
    return max(rates)


def link_state(profile: LinkProfile, active: list[Fault]) -> LinkState:
    """What a cable of `profile` carries with these faults active on it."""
    if any(f.kind in ("down", "flap") for f in active):
        return LinkState(0.0, profile.post_fec_ber, "down")
    ber = max([profile.post_fec_ber] + [f.ber for f in active if f.kind == "ber"])
    failed = sum(f.channels for f in active if f.kind == "channels")
    if not failed:
        return LinkState(profile.rate_gbps, ber, "up" if ber == profile.post_fec_ber
                         else f"up, post-FEC bit-error rate {ber:g}")
    if profile.family in NARROW_AND_FAST:
        return LinkState(0.0, ber, f"down: {failed} lane(s) failed on a narrow-and-fast link")
    working = min(profile.lanes, profile.lanes + profile.spare_lanes - failed)
    if working <= 0:
        return LinkState(0.0, ber, f"down: all {profile.lanes + profile.spare_lanes} channels "
                                   "failed")
    spares_left = max(0, profile.spare_lanes - failed)
    return LinkState(working * profile.lane_rate_gbps, ber,
                     f"{failed} channel(s) failed, {spares_left} spare(s) left, "
                     f"{working}/{profile.lanes} channels carry data")
