"""Time dilation: one factor D maps real link parameters onto what this host can carry.

Real links run at hundreds of Gb/s; one Linux machine moves a few Gb/s through veth pairs.
netwall divides every link rate by D and multiplies every delay by D, runs the traffic, and
divides measured times by D. Bytes are never scaled, so serialisation and latency terms keep
their real proportions and the technologies keep their ratios (DESIGN.md, "Time dilation").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from emulator.errors import NetwallError

#: Aggregate emulated traffic this host carries comfortably, per CPU core, in Gb/s. Measured
#: with bench/agent_goodput.py (BENCHMARKS.md); kept well under the agents' ceiling so the
#: host never becomes the bottleneck it is meant to hide.
CAPACITY_GBPS_PER_CORE = 1.0


@dataclass(frozen=True)
class LinkShape:
    """What the kernel applies to one direction of one link, in emulated (dilated) units."""

    rate_bps: int
    delay_us: float
    loss_percent: float
    queue_packets: int  # the profile's port buffer, in emulated frames
    burst_bytes: int
    limit_packets: int = 0  # what the kernel queue may hold (set by the plan: lossless)


def capacity_gbps(cores: int) -> float:
    """The aggregate emulated rate this host is budgeted to carry."""
    return CAPACITY_GBPS_PER_CORE * max(1, cores)


def nice_ceiling(x: float) -> float:
    """Round up to 1, 2 or 5 times a power of ten, so D reads well in reports."""
    if x <= 1:
        return 1.0
    exponent = math.floor(math.log10(x))
    for mantissa in (1, 2, 5, 10):
        candidate = mantissa * 10**exponent
        if candidate >= x * (1 - 1e-12):
            return float(candidate)
    raise AssertionError("unreachable")


def choose(injection_gbps: float, capacity: float) -> float:
    """The smallest nice D for which all GPUs injecting at once fit the host's capacity."""
    return nice_ceiling(injection_gbps / capacity)


def check(dilation: float) -> float:
    if not math.isfinite(dilation) or dilation < 1:
        raise NetwallError(f"--dilation must be a number >= 1, got {dilation:g}")
    return dilation


def injection_gbps(gpu_link_rates: Mapping[str, list[float]]) -> float:
    """Sum over GPUs of the rates of their links: the most traffic the GPUs can offer at once."""
    return sum(sum(rates) for rates in gpu_link_rates.values())


def link_shape(
    rate_gbps: float,
    delay_ns: float,
    frame_loss: float,
    queue_bytes: int,
    dilation: float,
    frame_bytes: int,
) -> LinkShape:
    """Scale one link direction: rate / D, delay * D; loss and queue bytes are not time."""
    rate_bps = int(rate_gbps * 1e9 / dilation)
    if rate_bps < 8000:
        raise NetwallError(
            f"dilation {dilation:g} leaves a {rate_gbps:g} Gb/s link at {rate_bps} bit/s; "
            "use a smaller --dilation"
        )
    # One whole frame at least (or the shaper stalls on large frames), 1 ms at high rates.
    burst = max(frame_bytes, rate_bps // 8 // 1000)
    return LinkShape(
        rate_bps=rate_bps,
        delay_us=delay_ns * dilation / 1000,
        loss_percent=100 * frame_loss,
        queue_packets=max(8, math.ceil(queue_bytes / frame_bytes)),
        burst_bytes=burst,
    )
