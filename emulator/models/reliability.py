"""How often a cluster's links fail, from the profiles' annual failure rates (AFR).

Failures are too rare to emulate on a dozen hosts, so netwall computes them: each link's
failure events are a Poisson process at afr / 8766 per hour, the same meaning of AFR for every
family (failure events per link-year, which is what the optical figure was fitted to and what
MOSAIC's "100x" compares). A narrow-and-fast link goes down at every event. A wide-and-slow
event is one channel lost (a microLED, core or detector), absorbed by a spare; the link goes
down only when more channels are failed at once than it has spares, i.e. spare_lanes + 1
losses within one repair window, or at a `common_mode` share of events (fibre cut, connector,
driver chip) that no spare can absorb. Closed form and a vectorised Monte Carlo agree; the
Monte Carlo adds the spread. See docs/energy-and-failures.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from emulator.models.profiles import HOURS_PER_YEAR, NARROW_AND_FAST, LinkProfile, get_profile
from foundation.errors import NetwallError
from foundation.inputs import is_whole, shown

# A failed channel waits for the next repair: a day is a typical hyperscale remediation
# turnaround for a degraded (still working) link; see the docs for the sensitivity.
REPAIR_HOURS = 24.0
# Bounds on what a user may ask for: far past any real cluster, and small enough that the
# Monte Carlo's arrays (trials x 8 bytes, a few per profile) and Poisson means stay sane.
MAX_FLEET_GPUS = 100_000_000
MAX_LINKS_PER_GPU = 1000.0
MAX_DAYS = 36_525.0  # a century
MAX_TRIALS = 1_000_000
MAX_SEED = 2**63 - 1
MAX_EVENTS = 1e15  # mean failures of one fleet in one trial (numpy's Poisson ends near 1e18)


@dataclass(frozen=True)
class FleetLinks:
    """How many cables of each profile a cluster of `gpus` GPUs has."""

    counts: dict[str, int]
    gpus: int


def fleet(gpus: int, links_per_gpu: Mapping[str, float]) -> FleetLinks:
    """Cables per profile for `gpus` GPUs, e.g. {"optical-800g": 3.0} for a 3-tier Clos."""
    if not is_whole(gpus, 1, MAX_FLEET_GPUS):
        raise NetwallError(f"gpus must be an integer from 1 to {MAX_FLEET_GPUS}, got {gpus!r}")
    for name, per_gpu in links_per_gpu.items():
        if not 0 <= per_gpu <= MAX_LINKS_PER_GPU:  # NaN fails too
            raise NetwallError(f"links per GPU of {shown(name)} must be 0 to "
                               f"{MAX_LINKS_PER_GPU:g}, got {per_gpu!r}")
    return FleetLinks({n: round(gpus * k) for n, k in links_per_gpu.items()}, gpus)


def _poisson_tail(mu: float, k: int) -> float:
    """P(N >= k), N ~ Poisson(mu), summed term by term: 1 - cdf would round tiny tails to 0."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    if mu > k:  # the tail is large: the complement has no cancellation problem
        return 1.0 - sum(math.exp(-mu + n * math.log(mu) - math.lgamma(n + 1)) for n in range(k))
    term = math.exp(-mu + k * math.log(mu) - math.lgamma(k + 1))
    total, n = 0.0, k
    while term > total * 1e-17:
        total += term
        n += 1
        term *= mu / n
    return total


def hourly_rates(
    profile: LinkProfile, repair_hours: float = REPAIR_HOURS, common_mode: float = 0.0
) -> tuple[float, float]:
    """(link-down, absorbed-degradation) events per link-hour.

    A wide-and-slow channel loss takes the link down when it finds spare_lanes channels
    already failed; with deterministic repair the failed count is Poisson(rate x window),
    and by PASTA that is also what a new loss finds.
    """
    rate = profile.afr / HOURS_PER_YEAR
    if profile.family in NARROW_AND_FAST:
        return rate, 0.0
    channel = rate * (1.0 - common_mode)  # = (lanes + spares) x per-channel rate
    exhausted = channel * _poisson_tail(channel * repair_hours, profile.spare_lanes)
    return rate * common_mode + exhausted, channel - exhausted


def _check(
    fl: FleetLinks, days: float, job_gpus: int | None, repair_hours: float, common_mode: float
) -> float:
    """Validate the shared arguments; return the share of the fleet's links the job uses."""
    if not 0 < days <= MAX_DAYS:  # NaN fails too
        raise NetwallError(f"days must be > 0 and <= {MAX_DAYS:g}, got {days!r}")
    if not math.isfinite(repair_hours) or repair_hours < 0:
        raise NetwallError(f"repair window must be >= 0 hours, got {repair_hours!r}")
    if not 0.0 <= common_mode <= 1.0:
        raise NetwallError(f"common-mode share must be in [0, 1], got {common_mode!r}")
    job = fl.gpus if job_gpus is None else job_gpus
    if not is_whole(job, 1, fl.gpus):
        raise NetwallError(f"job GPUs must be an integer in 1..{fl.gpus}, got {job_gpus!r}")
    return job / fl.gpus


def _hours_between(events: float, hours: float) -> float:
    return hours / events if events > 0 else math.inf


def expected(
    fl: FleetLinks,
    profiles: Mapping[str, LinkProfile],
    days: float,
    job_gpus: int | None = None,
    repair_hours: float = REPAIR_HOURS,
    common_mode: float = 0.0,
) -> dict:
    """Closed-form means: per profile and in total, events per day and hours between them."""
    share = _check(fl, days, job_gpus, repair_hours, common_mode)
    out: dict = {}
    for name, links in sorted(fl.counts.items()):
        down, degrade = hourly_rates(get_profile(name, profiles), repair_hours, common_mode)
        out[name] = {
            "links": links,
            "failures_per_day": 24 * links * (down + degrade),
            "link_down_per_day": 24 * links * down,
            "degradations_per_day": 24 * links * degrade,
            "hours_between_failures": _hours_between(links * (down + degrade), 1.0),
            "hours_between_link_down": _hours_between(links * down, 1.0),
            "hours_between_interruptions": _hours_between(share * links * down, 1.0),
            "interruptions": share * links * down * 24 * days,
        }
    total = sum(p["interruptions"] for p in out.values())
    out["total"] = {
        "interruptions": total,
        "hours_between_interruptions": _hours_between(total, 24 * days),
    }
    return out


def _spread(counts: np.ndarray, days: float, key: str) -> dict[str, float]:
    per_day = counts / days
    p5, p95 = np.percentile(per_day, [5, 95])
    return {key: float(per_day.mean()), f"{key}_p5": float(p5), f"{key}_p95": float(p95)}


def simulate(
    fl: FleetLinks,
    profiles: Mapping[str, LinkProfile],
    days: float,
    trials: int,
    seed: int,
    job_gpus: int | None = None,
    repair_hours: float = REPAIR_HOURS,
    common_mode: float = 0.0,
) -> dict:
    """Monte Carlo over `trials` spans of `days`: per profile and in total, the mean and the
    5th/95th percentiles of events per day, hours between job interruptions and their count.

    Event counts of a whole fleet are drawn at once (a sum of independent Poisson processes
    is Poisson), and the job's share of link-down events by binomial thinning, so a trial
    costs the same for 8 GPUs as for 100k.
    """
    if not is_whole(trials, 1, MAX_TRIALS):
        raise NetwallError(f"trials must be an integer from 1 to {MAX_TRIALS}, got {trials!r}")
    if not is_whole(seed, 0, MAX_SEED):
        raise NetwallError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    share = _check(fl, days, job_gpus, repair_hours, common_mode)
    rng = np.random.default_rng(seed)
    hours = 24 * days
    out: dict = {}
    interrupted = np.zeros(trials, dtype=np.int64)
    for name, links in sorted(fl.counts.items()):
        down, degrade = hourly_rates(get_profile(name, profiles), repair_hours, common_mode)
        if links * (down + degrade) * hours > MAX_EVENTS:
            raise NetwallError(f"{name}: {links} links over {days:g} days fail more than "
                               f"{MAX_EVENTS:g} times a trial; use fewer GPUs or days")
        downs = rng.poisson(links * down * hours, trials)
        degradations = rng.poisson(links * degrade * hours, trials)
        hits = rng.binomial(downs, share)
        interrupted += hits
        out[name] = {
            "links": links,
            **_spread(downs + degradations, days, "failures_per_day"),
            **_spread(downs, days, "link_down_per_day"),
            **_spread(degradations, days, "degradations_per_day"),
            "hours_between_interruptions": _hours_between(hits.mean(), hours),
            "interruptions": float(hits.mean()),
        }
    out["total"] = {
        **_spread(interrupted, days, "interruptions_per_day"),
        "interruptions": float(interrupted.mean()),
        "hours_between_interruptions": _hours_between(interrupted.mean(), hours),
    }
    return out
