"""What the results say, in sentences with numbers: the answer `netwall report`, `compare`,
`replay` and `campaign run` open or end with.

Pure functions of the rows (a design comparison's Row dicts, campaign point records, replay
summaries), so a test can check that the winner named is the one the rows show and every
ratio is computed right. Numbers read as a person writes them: '62.1 us', '1.02x', '3.4 W'.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from foundation.units import format_size

#: Step times across links within this share of each other: the links did not set the pace.
ENDPOINT_BOUND_SHARE = 0.02
#: Figures within this share of each other are a tie: "1.00x less" says nothing.
TIE_SHARE = 0.02


def number(value: float, unit: str = "") -> str:
    """Three significant figures without exponents for the magnitudes results have:
    '62.1', '0.0623', '1,230', '4.5e-07' only below a millionth."""
    if value is None or not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude == 0:
        text = "0"
    elif magnitude < 1e-6:
        text = f"{value:.2g}"
    elif magnitude >= 1000:
        text = f"{value:,.0f}"
    else:
        digits = max(0, 2 - math.floor(math.log10(magnitude)))
        text = f"{value:.{digits}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text


def ratio(high: float, low: float) -> str:
    """'1.02x', '35x': how many times `low` fits in `high`."""
    if low <= 0:
        return "-"
    r = high / low
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def _names(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- a design comparison ----------------------------------------------------------------------


def designs(rows: list[dict]) -> list[str]:
    """Per workload (and size): the fastest design and by how much, the power, energy and
    stall ratios, and every design that does not fit, with its reason."""
    out: list[str] = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["workload"], r["size"]), []).append(r)
    for (workload, size), mine in groups.items():
        at = f" at {format_size(size, spaced=True)}" if size else ""
        what = "per call" if size else "per step"
        timed = sorted((r for r in mine if r["feasible"] and r["time_s"] is not None),
                       key=lambda r: r["time_s"])
        if timed:
            best = timed[0]
            text = (f"On {workload}{at}, {best['design']} is fastest: "
                    f"{number(best['time_s'] * 1e6, 'us')} {what}")
            if len(timed) > 1:
                nxt, last = timed[1], timed[-1]
                text += (f", {ratio(nxt['time_s'], best['time_s'])} faster than "
                         f"{nxt['design']} ({number(nxt['time_s'] * 1e6, 'us')})")
                if last is not nxt:
                    text += (f" and {ratio(last['time_s'], best['time_s'])} faster than the "
                             f"slowest, {last['design']} ({number(last['time_s'] * 1e6, 'us')})")
            out.append(text + ".")
            if len(timed) > 1 and _close(timed[-1]["time_s"], best["time_s"]):
                out.append(f"Every design that fits is within "
                           f"{ENDPOINT_BOUND_SHARE:.0%} of the fastest on {workload}{at}: the "
                           "links do not set its pace (the GPU endpoints do).")
        fitting = [r for r in mine if r["feasible"]]
        if len(fitting) > 1:
            out += _spread(fitting, "watts_per_gpu", "draws the least link power",
                           "W per GPU")
            energy = [r for r in fitting if r.get("energy_j") is not None]
            if len(energy) > 1:
                out += _spread(energy, "energy_j", "spends the least link energy",
                               f"J {what}")
            out += _stalls(fitting)
        for r in mine:
            if not r["feasible"]:
                reason = (r["reason"] or "no reason given").removeprefix(f"{r['design']}: ")
                out.append(f"{r['design']} does not fit: {reason.rstrip('.')}.")
            elif r.get("faithful") is False:
                out.append(f"{r['design']}'s time{at} on {workload} is NOT FAITHFUL: the host "
                           "distorted it.")
    timed = [r for r in rows if r["feasible"] and r["time_s"] is not None]
    out += proven([r.get("faithful") for r in timed], "time")
    return out


def proven(verdicts: list[bool | None], what: str) -> list[str]:
    """Whether the totals can be trusted: every one proven, how many are NOT FAITHFUL, or
    how many were not proven (the dilation probe was off)."""
    if not verdicts:
        return []
    wrong, unproven = verdicts.count(False), verdicts.count(None)
    if not wrong and not unproven:
        return [f"Every {what} is proven at a second dilation (faithful)."]
    said = []
    if wrong:
        said.append(f"{wrong} of {len(verdicts)} {what}s are NOT FAITHFUL (the host distorted "
                    "them).")
    if unproven:
        said.append(f"{unproven} of {len(verdicts)} {what}s are not proven (the dilation "
                    "probe was off).")
    return said


def _close(high: float, low: float) -> bool:
    return low > 0 and high / low - 1 <= ENDPOINT_BOUND_SHARE


def _spread(rows: list[dict], key: str, verb: str, unit: str) -> list[str]:
    ordered = sorted(rows, key=lambda r: r[key])
    low, high = ordered[0], ordered[-1]
    if high[key] == low[key]:
        return [f"Every design that fits has the same {unit}: {number(low[key])}."]
    if high[key] <= low[key] * (1 + TIE_SHARE):
        return [f"Every design that fits has about the same {unit}: {number(low[key])} to "
                f"{number(high[key])}."]
    return [f"{low['design']} {verb}: {number(low[key], unit)}, {ratio(high[key], low[key])} "
            f"less than {high['design']} ({number(high[key], unit)})."]


def _stalls(rows: list[dict]) -> list[str]:
    ordered = sorted(rows, key=lambda r: r["stalls_per_day"])
    low, high = ordered[0], ordered[-1]
    if high["stalls_per_day"] == low["stalls_per_day"]:
        return [f"Every design that fits stalls alike: "
                f"{number(low['stalls_per_day'])} link-down events per day."]
    if high["stalls_per_day"] <= low["stalls_per_day"] * (1 + TIE_SHARE):
        return [f"Every design that fits stalls about as often: "
                f"{number(low['stalls_per_day'])} to {number(high['stalls_per_day'])} "
                "link-down events per day."]
    if low["stalls_per_day"] == 0:
        return [f"{_names(r['design'] for r in ordered if r['stalls_per_day'] == 0)} never "
                f"stall on one lane or channel lost; {high['design']} stalls "
                f"{number(high['stalls_per_day'])} times per day."]
    return [f"{low['design']} stalls least: {number(low['stalls_per_day'])} link-down events "
            f"per day, {ratio(high['stalls_per_day'], low['stalls_per_day'])} fewer than "
            f"{high['design']} ({number(high['stalls_per_day'])})."]


# -- a campaign ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """A mean over repetitions and its spread (lowest, highest)."""

    mean: float
    low: float
    high: float
    count: int

    @staticmethod
    def of(values: list[float]) -> Measure:
        return Measure(sum(values) / len(values), min(values), max(values), len(values))

    def spread(self) -> str:
        """'(1.2-1.3 over 2 repetitions)', or nothing for one."""
        if self.count < 2 or number(self.low) == number(self.high):
            return ""
        return f" ({number(self.low)}-{number(self.high)} over {self.count} repetitions)"


def busbw(points: list[dict]) -> dict[tuple, dict[str, Measure]]:
    """{(topology, collective/algorithm, size): {link: busbw Measure}} over clean points."""
    acc: dict[tuple, dict[str, list[float]]] = {}
    for r in points:
        p = r["point"]
        if p["faults"]:
            continue
        key = (p["topology"], f"{p['collective']}/{p['algorithm']}", p["size"])
        acc.setdefault(key, {}).setdefault(p["link"], []).append(r["result"]["busbw_gbps"])
    return {k: {link: Measure.of(v) for link, v in sorted(links.items())}
            for k, links in sorted(acc.items())}


def campaign(records: list[dict]) -> list[str]:
    """The winner per topology and size, what faults cost each technology, energy per GB,
    the failure rates, and what was skipped and why."""
    points = [r for r in records if r["kind"] == "point" and r["status"] == "ok"]
    out = []
    for (topology, call, size), links in busbw(points).items():
        ordered = sorted(links.items(), key=lambda kv: -kv[1].mean)
        best, m = ordered[0]
        tied = [link for link, other in ordered if other.mean == m.mean]
        where = f"On {topology}, {call} at {format_size(size, spaced=True)}: "
        if len(tied) > 1:
            out.append(f"{where}{_names(tied)} tie at {number(m.mean, 'GB/s')} busbw.")
            continue
        text = f"{where}{best} is fastest at {number(m.mean, 'GB/s')} busbw{m.spread()}"
        for link, other in ordered[1:]:
            text += (f", {ratio(m.mean, other.mean)} {link}'s "
                     f"{number(other.mean, 'GB/s')}{other.spread()}")
        runner_up = ordered[1][1] if len(ordered) > 1 else None
        if runner_up and runner_up.high >= m.low and (m.count > 1 or runner_up.count > 1):
            text += ": within the spread of repetitions, no clear winner"
        out.append(text + ".")
    out += _faults(points)
    out += _energy(points)
    out += proven([(r["result"].get("fidelity") or {}).get("faithful") for r in points],
                  "measured point")
    failures = [r for r in records if r["kind"] == "failures"]
    if failures:
        out += failure_rates(failures[-1])
    skipped = [r for r in records if r["kind"] == "point" and r["status"] != "ok"]
    for reason in sorted({r.get("reason", "error") for r in skipped}):
        mine = [r for r in skipped if r.get("reason", "error") == reason]
        links = sorted({r["point"]["link"] for r in mine})
        out.append(f"{len(mine)} point(s) skipped ({reason}) on {_names(links)}: "
                   f"{mine[0].get('message', '')}".rstrip(": ") + ".")
    return out


def _faults(points: list[dict]) -> list[str]:
    """Each fault set's busbw against the clean points of the same link, topology, call and
    size (means over repetitions), averaged over sizes."""
    clean: dict[tuple, list[float]] = {}
    faulted: dict[tuple, dict[tuple, list[float]]] = {}
    for r in points:
        p = r["point"]
        key = (p["link"], p["topology"], p["collective"], p["algorithm"], p["size"])
        value = r["result"]["busbw_gbps"]
        if p["faults"]:
            faulted.setdefault(tuple(p["faults"]), {}).setdefault(key, []).append(value)
        else:
            clean.setdefault(key, []).append(value)
    out = []
    for faults, by_key in sorted(faulted.items()):
        kept: dict[str, list[float]] = {}
        for key, values in by_key.items():
            if key in clean:
                kept.setdefault(key[0], []).append(
                    (sum(values) / len(values)) / (sum(clean[key]) / len(clean[key])))
        if not kept:
            continue
        parts = [f"{link} keeps {sum(v) / len(v):.0%}" for link, v in sorted(
            kept.items(), key=lambda kv: -sum(kv[1]) / len(kv[1]))]
        out.append(f"With fault {'; '.join(faults)}, of its fault-free busbw " +
                   ", ".join(parts) + ".")
    return out


def _energy(points: list[dict]) -> list[str]:
    acc: dict[str, list[float]] = {}
    for r in points:
        value = r["result"].get("joules_per_gb")
        if not r["point"]["faults"] and value is not None:
            acc.setdefault(r["point"]["link"], []).append(value)
    if not acc:
        return []
    means = sorted(((sum(v) / len(v), link) for link, v in acc.items()))
    text = f"Energy per GB moved: {means[0][1]} spends least, {number(means[0][0], 'J/GB')}"
    if len(means) > 1:
        text += "; " + ", ".join(f"{link} {number(v, 'J/GB')} ({ratio(v, means[0][0])})"
                                 for v, link in means[1:])
    return [text + " (links only, mean over sizes)."]


def failure_rates(record: dict) -> list[str]:
    """One sentence on the failures record: events and link-down events per day per profile."""
    p, result = record["params"], record["result"]
    rows = sorted(((v[n]["link_down_per_day"], v[n]["failures_per_day"], n)
                   for n, v in result.items()))
    parts = [f"{n} {number(f)} failures, {number(d)} link down" for d, f, n in rows]
    return [f"At {p['gpus']:,} GPUs, per day: " + "; ".join(parts) + "."]


# -- replay over several links -----------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    """What the verdict needs of one link's replay."""

    link: str
    step_s: list[float]  # each step's time
    faithful: bool | None  # proven at a second dilation; None: not proven (no probe)
    exposed_share: float  # mean over steps


def replays(results: list[Replayed]) -> list[str]:
    """Across links: the fastest, the ratios with the spread over steps, whether every link
    is proven, and whether the GPU endpoints rather than the links set the pace."""
    timed = sorted((r for r in results if r.step_s), key=lambda r: _mean(r.step_s))
    if not timed:
        return []
    best = timed[0]
    m = Measure.of([t * 1e6 for t in best.step_s])
    out = [f"{best.link} is fastest: {number(m.mean, 'us')} per step"
           + m.spread().replace("repetitions", "steps")
           + "".join(f"; {r.link} {ratio(_mean(r.step_s), _mean(best.step_s))} slower"
                     for r in timed[1:]) + "."]
    if len(timed) > 1 and _close(_mean(timed[-1].step_s), _mean(best.step_s)):
        exposed = max(r.exposed_share for r in timed)
        out.append(f"Step times across links differ by "
                   f"{_mean(timed[-1].step_s) / _mean(best.step_s) - 1:.1%} at most: the step "
                   "is bound by the GPU endpoints (launch latency and compute), not the links "
                   f"(exposed communication {exposed:.0%} of the step at most).")
    wrong = [r.link for r in results if r.faithful is False]
    unproven = [r.link for r in results if r.faithful is None]
    if not wrong and not unproven:
        out.append("Every link's total is proven (faithful).")
    if wrong:
        out.append(f"NOT FAITHFUL (the host distorted them): {_names(wrong)}; compare those "
                   "with care.")
    if unproven:
        out.append(f"Not proven (the dilation probe was off): {_names(unproven)}.")
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
