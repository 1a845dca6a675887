"""Time dilation: one factor D maps real link parameters onto what this host can carry.

Real links run at hundreds of Gb/s; one Linux machine moves a few Gb/s through veth pairs.
netwall divides every link rate by D and multiplies every delay by D, runs the traffic, and
divides measured times by D. Bytes are never scaled, so serialisation and latency terms keep
their real proportions and the technologies keep their ratios.

D is chosen per call (`choose`): large enough that this host's software, as calibrated
(emulator.models.calibration), adds less than a tolerance to the call, and no larger, since
wall time grows with D. The run then proves the choice (emulator.models.verdict): the same
call at a larger dilation must take the same real time, as time-dilation emulators require.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from foundation.errors import NetwallError

#: The shaper's token bucket, in real link time. A fixed real time (not a wall-clock one) keeps
#: the allowance the same number of bytes at every dilation, so a call measured at D and at 2D
#: differs only by what the host did. One microsecond of an 800 Gb/s link is 100 KB: one or two
#: emulated frames, the least htb needs to keep its rate when the kernel's timers fire late.
BURST_REAL_S = 1e-6
#: The bucket of a link with a GPU (or NVLS switch agent) at an end, whose frames the agents
#: pace themselves: the sender stamps each frame with when it was due to leave, its link free,
#: and the receiver holds it until the wire would have delivered it (traffic.pacing). A
#: sender whose turn came late then catches up from the bucket, on as much lateness as it
#: holds of the dilated rate. Lateness is the host's, so wall time: 10 ms covers a 16 MiB
#: all-reduce on star:8 at D 500, left 5% slow by the microsecond bucket (BENCHMARKS.md), and
#: adds 0.5% to what a 2 s iperf through the link reads. Links between switches keep
#: BURST_REAL_S: no agent sees all the flows that share them, so the kernel alone paces those.
CATCH_UP_WALL_S = 10e-3
#: How much more dilation a call with an NVLS switch needs than its injection and steps
#: alone ask: the switch's agent receives, reduces and multicasts as many bytes as all the
#: ranks send, so the agents move twice what the ranks inject, and it takes part in every
#: step with every rank, in one thread. Measured on star:8 (forced dilations, two runs each;
#: BENCHMARKS.md) on the 2-core reference host, calibrated at 37.7 Gb/s and 9.9 us a step,
#: on copper-800g: 2 MiB reads +6.5-6.7% at D 1,000 and +0.9-1.6% at 2,000; 4 MiB
#: +2.6-3.7% at 1,000 and within 0.01% at 2,000; 8 MiB +6.3-6.8% at 500 and +0.1-1.1% at
#: 1,000; on optical-800g, 16 and 64 MiB +4-18% at 500 and within 0.1% at 1,000. 2.5 times
#: the terms chooses 2,000, 2,000, 1,000, 1,000 and 1,000 for them; twice them chose 1,000
#: for 4 MiB, which the proof then sent to 2,000 in every sweep (and the default
#: comparison's NVLS designs from 1,000 to 5,000 and 10,000, where they now start at 2,000).
SWITCH_CROWDING = 2.5
#: How many times a step costs the calibrated step's host time when the endpoints hold it (a
#: GPU's step latency, emulator.models.endpoints): the agent wakes once for the step's data
#: and once more on a timer, where the calibration's reference call (gpu ideal) wakes once.
#: Measured on star:8: h100 ring all-reduces of 1 MiB read +2.3-6.1% host share (5 runs of 6)
#: at the dilation one wake per step asks, and within 1% at twice it.
HELD_STEP_WAKES = 2.0
#: Dilations are chosen from 1, 2, 5 times powers of ten, so they read well in reports.
SERIES = (1, 2, 5)
#: The largest dilation netwall chooses by itself: a 64 KiB call on 800 Gb/s links then takes
#: about a second of wall time; beyond it the user decides (--dilation).
MAX_AUTO = 1e6


@dataclass(frozen=True)
class LinkShape:
    """What the kernel applies to one direction of one link, in emulated (dilated) units."""

    rate_bps: int
    delay_us: float
    loss_percent: float
    queue_packets: int  # the profile's port buffer, in emulated frames
    burst_bytes: int
    limit_packets: int = 0  # what the kernel queue may hold (set by the plan: lossless)


@dataclass(frozen=True)
class CallCost:
    """What a call asks of the host, in real units: the pure input of `choose`."""

    model_s: float  # its alpha-beta time on the emulated links
    steps: int  # dependent steps: each may wait for an agent to wake up
    sent_bytes: int  # bytes all ranks hand to the kernel (what the agents must move)
    ranks: int
    switches: int = 0  # NVLS switches among its participants, each one agent
    held: bool = False  # its endpoints hold each step (a GPU's step latency): a timed wake

    @property
    def injection_gbps(self) -> float:
        """All ranks' injection over the call's modelled time (real units). The average,
        not the peak while its links transmit: the agents catch up in the latencies between
        (a GPU link's bucket holds 10 ms of its rate), so the peak overstated a call whose
        links are fast against its latencies ten times (nine 800G cables per GPU)."""
        return self.sent_bytes * 8 / self.model_s / 1e9


def nice_ceiling(x: float) -> float:
    """Round up to 1, 2 or 5 times a power of ten."""
    if x <= 1:
        return 1.0
    exponent = math.floor(math.log10(x))
    for mantissa in (*SERIES, 10):
        candidate = mantissa * 10**exponent
        if candidate >= x * (1 - 1e-12):
            return float(candidate)
    raise AssertionError("unreachable")


def next_above(d: float) -> float:
    """The series value after nice_ceiling(d): 1000 -> 2000 -> 5000 -> 10000."""
    return nice_ceiling(nice_ceiling(d) * 1.01)


def probe_dilation(d: float) -> float:
    """The dilation a call at d is proven against: at least 2d, on the series."""
    return nice_ceiling(2 * d)


def choose(cost: CallCost, capacity_gbps: float, step_s: float, calibrated_ranks: int,
           tolerance: float) -> float:
    """The smallest series dilation at which this host should add at most half the tolerance.

    Two host limits, both calibrated on this machine: the agents move at most `capacity_gbps`
    (all ranks' injection, wall-clock) and still keep time; and each dependent step costs about
    `step_s` of wall time an agent may take to wake and answer, more when more ranks share
    the cores (linear in ranks beyond the calibrated count). Half the tolerance leaves room
    for noise, so the proof (a probe at twice D) rarely sends the call to a larger D. A call
    with an NVLS switch needs SWITCH_CROWDING times both; a step the endpoints hold costs
    HELD_STEP_WAKES steps.
    """
    if cost.model_s <= 0:
        return 1.0
    switch = SWITCH_CROWDING if cost.switches else 1.0
    for_bandwidth = cost.injection_gbps / capacity_gbps * switch
    crowding = max(1.0, cost.ranks / calibrated_ranks) * switch
    step_s *= HELD_STEP_WAKES if cost.held else 1
    for_latency = cost.steps * step_s * crowding / (tolerance / 2 * cost.model_s)
    return min(MAX_AUTO, nice_ceiling(max(for_bandwidth, for_latency, 1.0)))


def host_error(time_s: float, d: float, probe_time_s: float, probe_d: float) -> float:
    """The share of `time_s` (a call's real time measured at dilation d) the host added,
    judged from the same call's real time at the larger dilation probe_d.

    The host adds some wall time h to a call; in real units that is h/d, so t(d) = T + h/d.
    Two dilations give h and the host-free T, and the share h/(d T). When the host's cost falls
    faster than 1/d (a saturated host at d, an easy one at probe_d) this overstates it, which
    errs on the side of flagging. A probe slower than the call itself means the host disturbed
    the probe: the disagreement is returned as it is, so it cannot pass as faithful either.
    """
    if probe_d <= d:
        raise ValueError("the probe must run at a larger dilation")
    if time_s <= 0 or probe_time_s <= 0:
        return math.inf
    if probe_time_s > time_s:
        return (probe_time_s - time_s) / time_s
    added = (time_s - probe_time_s) / (1 / d - 1 / probe_d) / d  # h/d, real seconds
    true_s = time_s - added
    return added / true_s if true_s > 0 else math.inf


def fixing_dilation(d: float, error: float, tolerance: float) -> float:
    """The dilation that should bring a host error measured at d within the tolerance, if
    the host's share falls as 1/d; at least the next one on the series."""
    if not math.isfinite(error):
        return next_above(next_above(d))
    return nice_ceiling(max(next_above(d), d * error / tolerance))


def retry_dilation(d: float, error: float, tolerance: float) -> float:
    """Where to measure a call again whose host error at d was too large: one step up the
    series, two when the error was large. The 1/d rule (fixing_dilation) overshoots when a
    disturbance was passing, and wall time grows with d."""
    step = next_above(d)
    return next_above(step) if error > 3 * tolerance else step


def validate(dilation: float) -> float:
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
    catch_up: bool = False,
) -> LinkShape:
    """Scale one link direction: rate / D, delay * D; loss and queue are not time; the
    bucket holds BURST_REAL_S of the real rate, or with `catch_up` (the agents pace the
    link) at least CATCH_UP_WALL_S of the dilated rate."""
    rate_bps = int(rate_gbps * 1e9 / dilation)
    if rate_bps < 8000:
        raise NetwallError(
            f"dilation {dilation:g} leaves a {rate_gbps:g} Gb/s link at {rate_bps} bit/s; "
            "use a smaller --dilation"
        )
    return LinkShape(
        rate_bps=rate_bps,
        delay_us=delay_ns * dilation / 1000,
        loss_percent=100 * frame_loss,
        queue_packets=max(8, math.ceil(queue_bytes / frame_bytes)),
        # The bucket lets frames leave at once after an idle gap (an endpoint's step latency,
        # a held link delay, a late turn): the receiving agent paces arrivals at the link's
        # rate again (traffic.pacing), so the allowance keeps the shaper's rate without
        # hiding gaps.
        burst_bytes=max(burst_bytes(rate_gbps, frame_bytes),
                        int(rate_bps / 8 * CATCH_UP_WALL_S) if catch_up else 0),
    )


def burst_bytes(rate_gbps: float, frame_bytes: int) -> int:
    """The shaper's least bucket: BURST_REAL_S of the link's real rate, at least one frame."""
    return max(frame_bytes, int(rate_gbps * 1e9 / 8 * BURST_REAL_S))


def at_rate(shape: LinkShape, rate_gbps: float, dilation: float, frame_bytes: int) -> LinkShape:
    """A link end's shaping at the rate a fault left its cable at (real Gb/s): the rate and
    the bucket both follow it. A bucket kept at the healthy rate would let a degraded link
    send a healthy microsecond's bytes at once after every gap: faster than it can."""
    rate_bps = int(rate_gbps * 1e9 / dilation)
    return replace(shape, rate_bps=rate_bps, burst_bytes=max(
        frame_bytes, int(shape.burst_bytes * rate_bps / shape.rate_bps)))  # the same time
