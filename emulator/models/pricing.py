"""What a checked request costs on this host: the dilation it runs at, and the wall time.

The host's calibration (emulator.models.calibration) says what it carries faithfully; from
it and a request's cost come the dilation each call gets (or the user's), the least slowdown
any run of it could have here, and how long a run or replay will take, which bounds the work
a command starts before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.models import dilation as dil
from emulator.models.calibration import Calibration
from emulator.models.faults import outage_s
from emulator.models.spec import ReplayRequest, RunRequest

#: Untimed calls (warm-up, the verified call) run this many times less dilated.
UNTIMED_SPEEDUP = 10
#: Wall time a program costs besides its calls (loading, the common start, settling queues).
PROGRAM_OVERHEAD_S = 0.06


def untimed_dilation(dilation: float) -> float:
    """Warm-up or verified calls are not timed, so they run at a tenth of the timed dilation
    (their data and dependencies are the same at any dilation)."""
    return max(1.0, dil.nice_ceiling(dilation / UNTIMED_SPEEDUP))


@dataclass(frozen=True)
class Pricing:
    """A cluster's calls on this host: `fixed` is the user's dilation (None: each call gets
    its own), `least` the dilation no call may go below (over several hosts, what their NICs
    allow; None: no such floor)."""

    host: Calibration
    tolerance: float
    fixed: float | None = None
    least: float | None = None

    def choose(self, cost: dil.CallCost) -> float:
        """The dilation this host needs for a call (emulator.models.calibration measured it)."""
        d = dil.choose(cost, self.host.capacity_gbps, self.host.step_s, self.host.ranks,
                       self.tolerance)
        return d if self.least is None else max(d, self.least)

    def build_dilation(self, injection_gbps: float) -> float:
        """The dilation a network is built at, and re-dilated from per call: the user's, or
        what all GPUs injecting `injection_gbps` at once need."""
        if self.fixed:
            return self.fixed
        d = min(dil.MAX_AUTO, dil.nice_ceiling(injection_gbps / self.host.capacity_gbps))
        return d if self.least is None else max(d, self.least)

    def dilation(self, cost: dil.CallCost, once: bool = False) -> float:
        """The dilation a call is first measured at: the user's, or the one it needs. `once`:
        a distorted result will not be measured again (faults or lossy links: which frames
        they catch depends on the host's timing, emulator.models.proof.Rule), so it starts
        two series steps up, where a retry would have gone: 100 -> 500, 500 -> 2000."""
        if self.fixed:
            return self.fixed
        d = self.choose(cost)
        return min(dil.MAX_AUTO, dil.next_above(dil.next_above(d))) if once else d

    def slowdown_floor(self, cost: dil.CallCost) -> float:
        """The least wall time per emulated second any run of this call could have here: its
        injection (real units) over what the host carries faithfully."""
        if cost.model_s <= 0:
            return 1.0
        return max(1.0, cost.injection_gbps / self.host.capacity_gbps)

    def run_s(self, request: RunRequest) -> float:
        """About how many wall seconds `run` will take for this size here: its calls at the
        dilation it will get, the probe's at the probe dilation (not counting retries), and
        the outages its faults hold both up for (the probe repeats every call where there
        are faults)."""
        d = self.dilation(request.cost, once=bool(request.faults))
        untimed = (request.warmup + 1) * max(1.0, d / UNTIMED_SPEEDUP)
        probe_d = dil.probe_dilation(d) if request.prove else 0.0
        return (request.model_s * (d * request.iters + untimed + request.iters * probe_d)
                + outage_s(request.faults) * (d + probe_d)
                + PROGRAM_OVERHEAD_S * (3 + request.prove))

    def replay_s(self, request: ReplayRequest) -> float:
        """About how many wall seconds `replay` will take here: every call and compute gap
        one after another (streams overlap, so this errs long), at its dilation and, with
        the proof, again at the probe dilation."""
        d = self.dilation(request.cost)
        serial = sum(request.models.values()) + sum(c.gap_us for c in request.calls) * 1e-6
        return serial * (d + (dil.probe_dilation(d) if request.prove else 0)) + \
            PROGRAM_OVERHEAD_S
