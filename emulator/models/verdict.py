"""Was the run faithful? The checks that tell an emulated result from an artefact of the host.

An emulator is only right while its host keeps up. The decisive check is dilation invariance,
as time-dilation emulators (DieCast, Gupta et al., NSDI 2008) require: the same call at a
larger dilation must take the same real time, because only the host's own cost (software
wake-ups, CPU time, copying) shrinks in real units as the dilation grows. So every call is
measured again at a larger dilation (a probe) and the host's share is estimated from the two
(emulator.models.dilation.host_error); a share above the tolerance flags the result, with the
dilation that would fix it. CPU saturation alone proves nothing either way: the host can set
the pace with idle CPUs (wake-up latency), and a busy CPU can still keep time. Beside that,
links must carry no more than their configured rate (else shaping failed), and frames must
not be lost beyond what the profiles and faults ask for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from emulator.models import dilation as dil
from emulator.models.accounting import Floor, LinkReport

CPU_SATURATED = 0.90  # busy share of all CPUs above which a benchmark marks its row
OVER_RATE = 1.02  # a link carrying more than this share of its rate was not shaped
FLOOR_SLACK = 1e-9  # a time this much below the links' floor is float rounding, not a bug


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass(frozen=True)
class Probe:
    """The same call timed at a larger dilation, in real units; None time: it was not run."""

    dilation: float
    time_s: float | None
    tolerance: float
    skipped: str = ""  # why no probe ran (then the result is not proven)
    calls: int | None = None  # how many of the batch's calls it repeated (None: the whole)
    margin: float | None = None  # 95% half-width of the host share it gives


@dataclass
class Verdict:
    dilation: float
    cpu_busy: float
    max_link_utilization: float
    unexpected_drops: int
    unexpected_retransmits: int
    probe_dilation: float | None
    probe_time_s: float | None
    host_error: float | None  # the host's estimated share of the measured time
    tolerance: float
    fix_dilation: float | None  # a dilation that should make the host's share tolerable
    flags: list[str] = field(default_factory=list)
    probe_calls: int | None = None  # calls the probe repeated (emulator.models.sampling)
    host_error_margin: float | None = None  # 95% half-width of host_error

    @property
    def faithful(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("host_error", "host_error_margin"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None  # JSON has no infinity: the flag says it
        return dict(out, faithful=self.faithful)


def busy_share(before: Sequence[tuple[int, int]], after: Sequence[tuple[int, int]]) -> float:
    """The busiest host's CPU share between two readings of every host's (busy, total)
    jiffies: a cluster spread over hosts is paced by its most loaded one."""
    return max((b[0] - a[0]) / max(1, b[1] - a[1]) for a, b in zip(before, after, strict=True))


def judge(cpu_before: Sequence[tuple[int, int]], cpu_after: Sequence[tuple[int, int]],
          links: list[LinkReport],
          shapes: dict[str, tuple[float, int]], wall_s: float, retransmitted_frames: int,
          loss_expected: bool, time_s: float, dilation: float, probe: Probe,
          repaired: bool = False, floor: Floor | None = None) -> Verdict:
    """Judge one timed batch. `links` are the per-link reports (bytes, drops), `shapes` each
    link's configured (emulated) rate and shaper burst (bytes it may send at once, on top of
    the rate), `wall_s` the batch's wall-clock time, `time_s` one call's real time at
    `dilation`, `probe` the same batch at a larger dilation, and `floor` the least time the
    links' bytes allow a call: a time below it is wrong, whatever the probe says."""
    busy = busy_share(cpu_before, cpu_after)
    utilization = {
        link.link: (link.bytes - shapes[link.link][1]) * 8
        / (shapes[link.link][0] * wall_s) for link in links} if wall_s > 0 else {}
    top = max(utilization.values(), default=0.0)
    drops = sum(link.drops for link in links)
    retransmits = 0 if loss_expected else retransmitted_frames
    error = fix = None
    if probe.time_s is not None:
        error = dil.host_error(time_s, dilation, probe.time_s, probe.dilation)
        fix = dil.fixing_dilation(dilation, error, probe.tolerance)
    verdict = Verdict(dilation, busy, top, drops, retransmits, probe.dilation, probe.time_s,
                      error, probe.tolerance, fix, probe_calls=probe.calls,
                      host_error_margin=probe.margin)
    if probe.time_s is None:
        verdict.flags.append(f"not proven: {probe.skipped}")
    elif error > probe.tolerance and repaired:
        # No dilation cures this: which frames a loss or fault catches, and so what the
        # repairs cost, differs from run to run at every dilation.
        verdict.flags.append(host_flag(time_s, dilation, probe, error, None) + (
            "; frames were repaired, and which ones a loss or fault catches depends on the "
            "host's timing, so this time varies from run to run at any dilation: repeat the "
            "run to see its spread"))
    elif error > probe.tolerance:
        verdict.flags.append(host_flag(time_s, dilation, probe, error, fix))
    if floor is not None and time_s < floor.time_s * (1 - FLOOR_SLACK):
        verdict.flags.append(
            f"faster than the links allow: {floor.link} carried {floor.bytes:,} bytes per "
            f"call, which take {floor.time_s * 1e6:.2f} us at the {floor.rate_gbps:g} Gb/s it "
            f"had; {time_s * 1e6:.2f} us is {time_s / floor.time_s - 1:+.1%} below that")
    if top > OVER_RATE:
        worst = max(utilization, key=utilization.get)
        verdict.flags.append(f"link {worst} carried {top:.0%} of its rate: shaping failed")
    if drops:
        verdict.flags.append(f"{drops} frames dropped by full queues")
    if retransmits:
        verdict.flags.append(f"{retransmits} frames resent on links that should not lose any")
    return verdict


def host_flag(time_s: float, dilation: float, probe: Probe, error: float,
              fix: float | None) -> str:
    """The reason a host-distorted result is flagged, with the dilation that fixes it (None:
    none does)."""
    share = "most" if not math.isfinite(error) else f"about {error:.1%}"
    return (f"host software added {share} of this time: at dilation {probe.dilation:.10g} the "
            f"same call took {probe.time_s / time_s - 1:+.1%} in real units "
            f"(tolerance {percent(probe.tolerance)})"
            + (f"; use --dilation {fix:.10g} or more" if fix is not None else ""))


def percent(share: float) -> str:
    """0.02 -> '2%', 0.005 -> '0.5%'."""
    return f"{share * 100:g}%"


@dataclass(frozen=True)
class TraceVerdict:
    """The verdict on a replayed trace: the trace's total and every call against the same
    trace at the probe dilation. `host_error` is the total's share (inf: most; None: not
    proven), `call_errors` each call's (None: most, or not proven)."""

    dilation: float
    probe_dilation: float | None
    host_error: float | None
    call_errors: list[float | None]
    tolerance: float
    fix_dilation: float | None
    worst_error: float | None
    flags: list[str]

    @property
    def faithful(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict:
        """The JSON form replay results carry (docs/replay.md): JSON has no infinity, so
        'most' is None there. An unproven verdict keeps the key order it was first
        stored in."""
        error = self.host_error if self.host_error is None or math.isfinite(self.host_error) \
            else None
        head = {"dilation": self.dilation, "probe_dilation": self.probe_dilation,
                "host_error": error, "call_errors": list(self.call_errors),
                "tolerance": self.tolerance, "fix_dilation": self.fix_dilation,
                "faithful": self.faithful}
        if self.probe_dilation is None:
            return dict(head, worst_error=self.worst_error, flags=list(self.flags))
        return dict(head, flags=list(self.flags), worst_error=self.worst_error)


def judge_trace(times_s: list[float], probe_times_s: list[float] | None, total_s: float,
                probe_total_s: float | None, dilation: float, probe_dilation: float,
                tolerance: float) -> TraceVerdict:
    """The verdict on a replayed trace: every call's and the whole trace's real time against
    the same trace at the probe dilation."""
    if probe_times_s is None or probe_total_s is None:
        return TraceVerdict(dilation, None, None, [None] * len(times_s), tolerance, None, None,
                            ["not proven: the probe was turned off"])
    errors = [dil.host_error(t, dilation, p, probe_dilation)
              for t, p in zip(times_s, probe_times_s, strict=True)]
    total = dil.host_error(total_s, dilation, probe_total_s, probe_dilation)
    worst = max([total, *errors])
    fix = dil.fixing_dilation(dilation, total, tolerance)
    flags = []
    bad = [i for i, e in enumerate(errors) if e > tolerance]
    if total > tolerance:
        flags.append(host_flag(total_s, dilation, Probe(probe_dilation, probe_total_s,
                                                        tolerance), total, fix)
                     .replace("this time", "the trace's time"))
    if bad:
        i = max(bad, key=lambda k: errors[k])
        share = "most" if not math.isfinite(errors[i]) else f"{errors[i]:.0%}"
        flags.append(f"host software distorted {len(bad)} of {len(errors)} calls by more "
                     f"than {percent(tolerance)} (call {i}: {share}): their rows are not "
                     "faithful (a late agent delays its rank's later calls too)")
    return TraceVerdict(dilation, probe_dilation, total,
                        [e if math.isfinite(e) else None for e in errors], tolerance, fix,
                        worst if math.isfinite(worst) else None, flags)
