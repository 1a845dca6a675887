"""What a cluster's links cost it besides time: power per GPU, failures per day at a fleet
size, and what one failure does to a link. The design comparison (`netwall compare`) puts
these beside each design's measured step time.

Pure: the topology and the profiles (their sourced watts, AFR, lanes and spares) are all
it reads; the energy and failure models are emulator.models.energy and .reliability.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from emulator.models.energy import ENDS
from emulator.models.faults import link_state
from emulator.models.faults import parse as parse_fault
from emulator.models.profiles import LinkProfile, get_profile
from emulator.models.reliability import expected, fleet
from topologies import Topology


def cable_counts(topo: Topology) -> dict[str, int]:
    """Cables of each profile in the topology."""
    return dict(Counter(cable.profile for cable in topo.links))


def power_per_gpu_w(topo: Topology, profiles: Mapping[str, LinkProfile]) -> float:
    """Every cable's power (both ends, always lit: docs/energy-and-failures.md) over the
    GPUs: what the links draw per GPU, busy or idle."""
    watts = sum(ENDS * get_profile(name, profiles).watts_per_end * count
                for name, count in cable_counts(topo).items())
    return watts / len(topo.gpus)


def failures_per_day(topo: Topology, profiles: Mapping[str, LinkProfile],
                     fleet_gpus: int) -> tuple[float, float]:
    """(link failure events, link-down events) per day in a fleet of `fleet_gpus` GPUs
    cabled like this topology (its cables per GPU of each profile, scaled up). Only
    link-down events stop a job; the rest are channel losses spares absorb."""
    per_gpu = {name: count / len(topo.gpus) for name, count in cable_counts(topo).items()}
    found = expected(fleet(fleet_gpus, per_gpu), profiles, days=1.0)
    names = [name for name in found if name != "total"]
    return (sum(found[n]["failures_per_day"] for n in names),
            sum(found[n]["link_down_per_day"] for n in names))


def one_failure(profile: LinkProfile) -> str:
    """What the commonest failure event (one lane or channel) does to a link of `profile`:
    'stall' (the link is down: the job stalls until repair) or '-x%' (the capacity lost;
    -0% when a spare absorbs it)."""
    state = link_state(profile, [parse_fault("channels=1:a--b@0")])
    if state.rate_gbps <= 0:
        return "stall"
    return f"-{(1 - state.rate_gbps / profile.rate_gbps) * 100:.0f}%"
