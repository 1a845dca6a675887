"""Energy the links of a run spend, by link technology, in real (undilated) units.

The shipped profiles derive pj_per_bit from the port power: pj_per_bit = 2 ends x W/end / rate.
Adding "bits x pj_per_bit" to "ports x W/end x seconds" would therefore count the same watts
twice. netwall instead splits each link's time into busy and idle: busy link-time costs the
per-bit energy (dynamic, proportional to traffic), idle link-time costs the port power
(static). For a profile whose two figures agree, as all shipped ones do, the total is the
link's constant power x duration whatever the traffic, which is how optics and microLED
links behave (their lasers, LEDs and DSPs run whether or not frames flow), and the split says
how much of that energy moved data and how much idled. See docs/energy-and-failures.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from emulator.models.accounting import LinkReport
from emulator.models.profiles import LinkProfile, get_profile
from foundation.errors import NetwallError

ENDS = 2  # every cable has a module or port at each end
DIRECTIONS = 2  # links are full duplex and the byte counters count both directions
PJ = 1e-12
GB = 1e9  # nccl-tests 'bytes' are decimal when quoted per GB
# Measured bits may overshoot rate x time a little (shaper bursts, counter windows); more than
# this means the bits and the duration do not describe the same run.
CAPACITY_SLACK = 0.05


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one run (or one collective call) in joules, real units."""

    joules_by_profile: dict[str, float]  # static + dynamic of all links of each profile
    static_joules: float  # idle link-time at port power
    dynamic_joules: float  # busy link-time: bits carried x energy per bit
    total_joules: float
    joules_per_gb: float  # per 1e9 bytes of the collective's size (nccl-tests 'bytes')


def joules_per_bit(profile: LinkProfile) -> float:
    """Energy of one bit as the counters count bits (one direction of a full-duplex link).

    pj_per_bit spends both ends' power on the rate of one direction, but a link carries that
    rate in each direction at once for the same power, so a bit counted per direction costs
    half of it: 2 x W/end / (2 directions x rate) = W/end / rate.
    """
    return profile.pj_per_bit * PJ / DIRECTIONS


def link_energy(
    profile: LinkProfile, bits: float, seconds: float, links: int = 1
) -> tuple[float, float]:
    """(static J, dynamic J) of `links` cables of `profile` carrying `bits` over `seconds`.

    Dynamic = bits x joules_per_bit; static = the ports' power over the link-time left idle,
    so a link is never charged for being busy and idle at the same moment.
    """
    if bits < 0 or seconds < 0 or links < 0:
        raise NetwallError(
            f"{profile.name}: bits, seconds and links must be >= 0, "
            f"got {bits:g} bits, {seconds:g} s, {links} links"
        )
    capacity = links * DIRECTIONS * profile.rate_gbps * 1e9 * seconds
    if bits > capacity * (1 + CAPACITY_SLACK):
        raise NetwallError(
            f"{profile.name}: {bits:.4g} bits exceed what {links} link(s) carry in {seconds:g} s "
            f"({capacity:.4g} bits, both directions); are bits and duration from the same run?"
        )
    busy = min(1.0, bits / capacity) if capacity else 0.0
    static = links * ENDS * profile.watts_per_end * seconds * (1.0 - busy)
    return static, bits * joules_per_bit(profile)


def run_energy(
    link_bits: Mapping[str, float],
    link_counts: Mapping[str, int],
    profiles: Mapping[str, LinkProfile],
    seconds: float,
    payload_bytes: int,
) -> EnergyReport:
    """Energy of every link in the topology over a run of `seconds` moving `payload_bytes`.

    `link_bits`: profile -> bits carried by all its links, both directions; `link_counts`:
    profile -> cables of that profile. Links that carried nothing still cost static energy.
    """
    if payload_bytes <= 0:
        raise NetwallError(f"payload must be > 0 bytes, got {payload_bytes}")
    stray = sorted(set(link_bits) - set(link_counts))
    if stray:
        raise NetwallError(
            f"bits counted on profile '{stray[0]}' but the topology has no such link"
        )
    by_profile: dict[str, float] = {}
    static = dynamic = 0.0
    for name, count in sorted(link_counts.items()):
        s, d = link_energy(get_profile(name, profiles), link_bits.get(name, 0.0), seconds, count)
        by_profile[name] = s + d
        static += s
        dynamic += d
    total = static + dynamic
    return EnergyReport(by_profile, static, dynamic, total, total / (payload_bytes / GB))


def batch_energy(links: Iterable[LinkReport], cables: Iterable[str],
                 profiles: Mapping[str, LinkProfile], time_s: float, size: int,
                 iters: int) -> EnergyReport:
    """Energy of one call of a batch of `iters`: every cable's power (`cables`: each one's
    profile) over the call's real time, split into what moved the bits its links' counters
    saw and what kept idle links lit."""
    bits: dict[str, float] = {}
    for link in links:
        bits[link.profile] = bits.get(link.profile, 0.0) + link.bytes * 8 / iters
    counts: dict[str, int] = {}
    for profile in cables:
        counts[profile] = counts.get(profile, 0) + 1
    # A call timed back to back can carry a little more than its own share (ACKs of the
    # previous one); cap at what the links could carry so the energy model applies.
    capacity = {name: counts[name] * 2 * profiles[name].rate_gbps * 1e9 * time_s
                for name in counts}
    bits = {name: min(value, capacity[name]) for name, value in bits.items()}
    return run_energy(bits, counts, profiles, time_s, size)
