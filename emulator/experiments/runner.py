"""Runs a campaign: every point not yet stored, one built network per group, with progress.

Resume is the normal case, not a special mode: a point whose id the store has is done, so a
run killed at any moment loses at most the point it was measuring. Every group is validated
(its Emulation constructed, every schedule and fault resolved) before the first network is
built; a point netwall refuses (a cable longer than its technology reaches, a fault on a
link the topology lacks, an algorithm the topology cannot run) is stored as skipped with its
reason, so resuming does not retry it and the report can show it.
"""

from __future__ import annotations

import functools
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from emulator.emulation import Emulation
from emulator.experiments.campaign import Campaign, Failures, Point
from emulator.experiments.designs import DesignFile
from emulator.experiments.store import Store
from emulator.models.faults import parse
from emulator.models.profiles import catalogue
from emulator.models.reliability import fleet, simulate
from emulator.models.spec import RunRequest
from emulator.preflight import prepare
from foundation.errors import NetwallError
from foundation.text.progress import Progress, clock
from foundation.version import netwall_version

#: The most measuring one `campaign run` starts (it resumes, so a longer one can be split).
MAX_CAMPAIGN_S = 30 * 24 * 3600.0


def provenance(campaign: Campaign | DesignFile) -> dict:
    """What every record carries to say where and with what it was made (a design
    comparison's rows too: its file's name stands for the campaign's)."""
    return {"campaign": campaign.name, "netwall": netwall_version(),
            "host": {"node": platform.node(), "kernel": platform.release(),
                     "python": platform.python_version()},
            "time": datetime.now(UTC).isoformat(timespec="seconds")}


def skip_reason(error: NetwallError) -> str:
    """A short label for the report: 'reach' for a cable its technology cannot span."""
    return "reach" if " reaches " in str(error) else "error"


def run_campaign(campaign: Campaign, store: Store, out: TextIO = sys.stderr,
                 emulation: Callable | None = None, **spread) -> dict:
    """Measure every point the store lacks; returns counts of what this call did.

    `emulation` builds an Emulation from a point (tests substitute it); `spread` (hosts,
    nic_gbps, vxlan_port) spreads every network over several hosts (docs/multihost.md).
    """
    emulation = emulation or functools.partial(_emulation, **spread)
    todo = [p for p in campaign.points if not store.has(p.id)]
    failures = campaign.failures if campaign.failures and not store.has(campaign.failures.id) \
        else None
    total = len(campaign.ids())
    done = total - len(todo) - bool(failures)
    progress = Progress("campaign", total, done, unit="points", out=out)
    counts = {"measured": 0, "skipped": 0, "wrong": 0}
    if done:
        progress.note(f"netwall: resuming: {done} of {total} points are stored already")
    try:
        if failures:
            store.put(failures.id, _failures_record(campaign, failures))
            progress.advance("failures", paced=False)
        groups: dict[tuple, list[Point]] = {}
        for p in todo:
            groups.setdefault(p.group, []).append(p)
        ready = []
        capabilities = None
        for points in groups.values():  # validate everything before building anything
            try:
                emu = emulation(points[0], capabilities)
            except NetwallError as e:
                for p in points:
                    _skip(store, campaign, p, e, counts, progress)
                continue
            capabilities = emu.capabilities
            runnable = []
            for p in points:
                try:
                    request = emu.spec.run_request(p.collective, p.algorithm, p.size,
                                                   iters=p.iters, warmup=p.warmup,
                                                   faults=[parse(s) for s in p.faults])
                except NetwallError as e:
                    _skip(store, campaign, p, e, counts, progress)
                    continue
                runnable.append((p, request))
            if runnable:
                ready.append((emu, runnable))
        prepare([emu for emu, _ in ready], progress.note)
        estimate = sum(emu.pricing.run_s(request)
                       for emu, points in ready for _, request in points)
        if estimate > MAX_CAMPAIGN_S:
            raise NetwallError(f"this campaign would measure for about {clock(estimate)} on "
                               f"this host (limit {clock(MAX_CAMPAIGN_S)}): split it, or use "
                               "fewer or smaller sizes or shorter faults")
        if ready:
            progress.note(f"netwall: about {clock(estimate)} of measuring on this host")
        for emu, points in ready:
            _run_group(campaign, store, emu, points, counts, progress)
    finally:
        progress.finish()
    return counts


def _emulation(point: Point, capabilities, **spread) -> Emulation:
    return Emulation(point.topology, point.link, spine_link=point.spine_link,
                     layout=point.layout, dilation=point.dilation, capabilities=capabilities,
                     gpu=point.gpu, **spread)


def _run_group(campaign: Campaign, store: Store, emu, points: list[tuple[Point, RunRequest]],
               counts: dict, progress: Progress) -> None:
    """All points of one group inside one built network; a point that fails at run time is
    stored as skipped and the network rebuilt for the rest, since its agents may be stuck."""
    pending = list(points)
    while pending:
        with emu:
            settings = emu.settings()
            while pending:
                p, request = pending.pop(0)
                progress.working_on(_label(p))
                try:
                    result = emu.measure(request)
                except NetwallError as e:
                    _skip(store, campaign, p, e, counts, progress)
                    break
                record = dict(provenance(campaign), kind="point", id=p.id, status="ok",
                              point=p.params(), settings=settings, result=result.to_dict())
                store.put(p.id, record)
                if result.faults_not_struck:
                    progress.note(f"netwall: note: {_label(p)}: fault(s) "
                                  f"{', '.join(result.faults_not_struck)} did not strike "
                                  "before the timed calls ended (recorded as not struck)")
                counts["measured"] += 1
                counts["wrong"] += result.check is False
                progress.advance(_label(p))


def _label(p: Point) -> str:
    faults = f" +{len(p.faults)} fault(s)" if p.faults else ""
    return f"{p.topology} {p.link} {p.collective}/{p.algorithm} {p.size}B{faults}"


def _skip(store: Store, campaign: Campaign, p: Point, error: NetwallError, counts: dict,
          progress: Progress) -> None:
    store.put(p.id, dict(provenance(campaign), kind="point", id=p.id, status="skipped",
                         reason=skip_reason(error), message=str(error), point=p.params()))
    counts["skipped"] += 1
    progress.advance(f"skipped: {_label(p)}", paced=False)


def _failures_record(campaign: Campaign, spec: Failures) -> dict:
    """The Monte Carlo, one fleet per profile (as `netwall failures` runs it)."""
    cat = catalogue()
    result = {name: simulate(fleet(spec.gpus, {name: per_gpu}), cat, spec.days, spec.trials,
                             spec.seed, job_gpus=spec.job_gpus)
              for name, per_gpu in spec.links.items()}
    return dict(provenance(campaign), kind="failures", id=spec.id, status="ok",
                params=spec.params(), profiles={n: cat[n].to_dict() for n in spec.links},
                result=result)
