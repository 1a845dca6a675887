"""The report's figures: matplotlib (Agg canvas, no display) drawn per question and written
as PNG and SVG under the report's folder, with sanitised names only.

Comparisons share their axes and carry their values: bus bandwidth by size with the spread
of repetitions and each link's line rate, the links' energy per GB, throughput with and
without faults, failure rates, measured time against the model, and `netwall compare
--db`'s designs side by side with reliability beside speed and power. Panels widen with
their groups so tick labels never touch (tests/unit/test_findings.py renders them).
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from emulator.experiments.findings import Measure, number
from foundation.outputs import inside, write_file
from foundation.units import format_size

FAMILY_COLOURS = {"copper": "#b5651d", "optical": "#1f77b4", "wide-and-slow": "#2ca02c"}
OTHER_COLOURS = ("#9467bd", "#d62728", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


# -- files -----------------------------------------------------------------------------------


def save(fig: Figure, out: Path, stem: str,
          rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> str:
    FigureCanvasAgg(fig)
    fig.tight_layout(rect=rect)  # rect: the share of the figure the axes may take
    name = inside(out, stem).name  # a stem from stored data never leaves `out`
    for ext in ("png", "svg"):
        image = io.BytesIO()
        fig.savefig(image, format=ext, dpi=100)
        write_file(out / f"{name}.{ext}", image.getvalue())
    return f"{name}.png"


# -- plots ---------------------------------------------------------------------------------


def measured(records: list[dict]) -> list[dict]:
    return [r for r in records if r["kind"] == "point" and r["status"] == "ok"]


def _colour(link: str, order: list[str]) -> str:
    cable = re.sub(r"^[0-9]+x", "", link)  # a bundle is drawn as its cable
    family = "copper" if cable.startswith("nvlink") else cable.rsplit("-", 1)[0]
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    return OTHER_COLOURS[order.index(link) % len(OTHER_COLOURS)] if link in order \
        else OTHER_COLOURS[0]


def _line_rate_gbs(points: list[dict], link: str) -> float | None:
    """The link's line rate in GB/s, as its runs recorded the profile."""
    for r in points:
        profile = (r.get("settings") or {}).get("profiles", {}).get(link)
        if profile and isinstance(profile.get("rate_gbps"), int | float):
            return profile["rate_gbps"] / 8
    return None


def _grouped_bars(ax, groups: list[str], series: dict[str, list[Measure | None]],
                  colours: dict[str, str], unit: str) -> None:
    """One bar per series in each group, with its value on top and the spread of
    repetitions as an error bar."""
    width = 0.8 / max(1, len(series))
    for i, (name, measures) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [m.mean if m else 0.0 for m in measures]
        spread = [[m.mean - m.low if m else 0.0 for m in measures],
                  [m.high - m.mean if m else 0.0 for m in measures]]
        bars = ax.bar(xs, heights, width, color=colours[name], label=name,
                      yerr=spread if any(m and m.count > 1 for m in measures) else None,
                      capsize=3)
        ax.bar_label(bars, [number(m.mean) if m else "" for m in measures],
                     fontsize="small", padding=2)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(unit)
    ax.grid(True, axis="y", alpha=0.3)


def _panel_in(groups: int) -> float:
    """A panel's width in inches: room for each group's label ('512 KiB') side by side."""
    return max(4.5, 0.8 * groups + 1.0)


def _by_link(points: list[dict], key: str, group) -> tuple[list, dict[str, list]]:
    """(groups, {link: [Measure or None per group]}) of result[key] over repetitions."""
    acc: dict[str, dict] = {}
    for r in points:
        acc.setdefault(r["point"]["link"], {}).setdefault(group(r), []).append(
            r["result"][key])
    groups = sorted({g for by in acc.values() for g in by})
    return groups, {link: [Measure.of(by[g]) if g in by else None for g in groups]
                    for link, by in sorted(acc.items())}


def plot_busbw(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """busbw by size, one bar per technology with its spread over repetitions and its line
    rate dashed; one panel per topology on a shared axis, one figure per call."""
    clean = [r for r in points if not r["point"]["faults"]]
    figures = []
    for coll, algo in sorted({(r["point"]["collective"], r["point"]["algorithm"])
                              for r in clean}):
        mine = [r for r in clean if (r["point"]["collective"], r["point"]["algorithm"])
                == (coll, algo)]
        topologies = sorted({r["point"]["topology"] for r in mine})
        links = sorted({r["point"]["link"] for r in mine})
        colours = {link: _colour(link, links) for link in links}
        sizes = len({r["point"]["size"] for r in mine})
        fig = Figure(figsize=(max(6.0, _panel_in(sizes) * len(topologies)), 4.2))
        axes = fig.subplots(1, len(topologies), sharey=True, squeeze=False)[0]
        for ax, topology in zip(axes, topologies, strict=True):
            here = [r for r in mine if r["point"]["topology"] == topology]
            sizes, series = _by_link(here, "busbw_gbps", lambda r: r["point"]["size"])
            _grouped_bars(ax, [format_size(s, spaced=True) for s in sizes], series, colours,
                          "busbw (GB/s)")
            rates: dict[float, list[str]] = {}
            for link in series:
                rate = _line_rate_gbs(here, link)
                if rate:
                    rates.setdefault(rate, []).append(link)
            for rate, mine_links in rates.items():  # one line per rate, named once
                colour = colours[mine_links[0]] if len(mine_links) == 1 else "grey"
                ax.axhline(rate, color=colour, linestyle="--", linewidth=1)
                who = mine_links[0] if len(mine_links) == 1 else "every link"
                ax.annotate(f"line rate of {who}: {number(rate)} GB/s", (0.01, rate),
                            xycoords=("axes fraction", "data"), fontsize="small",
                            color=colour, va="bottom")
            ax.set_ylim(top=max([ax.get_ylim()[1], *[1.12 * r for r in rates]]))
            ax.set_title(topology)
            ax.set_xlabel("size")
        axes[0].legend(fontsize="small", loc="lower right")
        fig.suptitle(f"{coll}/{algo}: bus bandwidth by size (no faults)")
        figures.append((save(fig, out, f"busbw-{coll}-{algo}"),
                        f"Bus bandwidth of {coll}/{algo} by size and technology: bars are "
                        "means, whiskers the lowest and highest repetition, dashed lines each "
                        "link's line rate"))
    return figures


def plot_model(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """Measured time against the alpha-beta model of what this kernel emulates."""
    links = sorted({r["point"]["link"] for r in points})
    fig = Figure(figsize=(6.5, 5))
    ax = fig.add_subplot()
    for link in links:
        mine = [r["result"] for r in points if r["point"]["link"] == link]
        ax.scatter([m["model_emulated_time_s"] * 1e6 for m in mine],
                   [m["time_s"] * 1e6 for m in mine], label=link, color=_colour(link, links),
                   s=22)
    every = [r["result"][k] * 1e6 for r in points for k in ("time_s", "model_emulated_time_s")]
    low, high = min(every), max(every)
    ax.plot([low, high], [low, high], color="black", linewidth=0.8, label="measured = model")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # plain numbers; of the minor ticks only 2x and 5x
        axis.set_major_formatter(FuncFormatter(lambda value, _pos: number(value)))
        axis.set_minor_formatter(FuncFormatter(_two_and_five))
    ax.tick_params(axis="x", rotation=30)
    ax.set_xlabel("model time (us)")
    ax.set_ylabel("measured time (us)")
    ax.set_title("Measured time vs alpha-beta model")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return [(save(fig, out, "time-vs-model"), "Measured time against the model")]


def _two_and_five(value: float, _pos) -> str:
    """A minor log tick's label when it is 2 or 5 times a power of ten (the others would
    smear into each other)."""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return number(value) if round(mantissa, 6) in (2.0, 5.0) else ""


def plot_energy(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """The links' energy per GB moved, by size and technology."""
    clean = [r for r in points if not r["point"]["faults"]]
    if not clean:
        return []
    links = sorted({r["point"]["link"] for r in clean})
    sizes, series = _by_link(clean, "joules_per_gb", lambda r: r["point"]["size"])
    fig = Figure(figsize=(max(7.5, _panel_in(len(sizes))), 4.2))
    ax = fig.add_subplot()
    _grouped_bars(ax, [format_size(s, spaced=True) for s in sizes], series,
                  {link: _colour(link, links) for link in links}, "J per GB (links)")
    ax.set_xlabel("size")
    ax.legend(fontsize="small")
    ax.set_title("Energy per GB by technology (all calls, no faults)")
    return [(save(fig, out, "energy"), "The links' energy per GB by size and technology")]


def plot_faults(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """Mean busbw with and without each fault set, by technology: the clean bars are the
    points of the same link, topology, call and size without faults (from any experiment)."""
    faulted = [r for r in points if r["point"]["faults"]]
    if not faulted:
        return []
    keys = {_call_key(r) for r in faulted}  # the clean points measured alike, any experiment
    mine = faulted + [r for r in points if not r["point"]["faults"] and _call_key(r) in keys]
    sets, by_link = _by_link(mine, "busbw_gbps",
                             lambda r: "; ".join(r["point"]["faults"]) or "no faults")
    links = list(by_link)  # the groups on the axis; a bar per fault set in each
    by_set = {s: [by_link[link][i] for link in links] for i, s in enumerate(sets)}
    shades = {s: OTHER_COLOURS[i % len(OTHER_COLOURS)] for i, s in enumerate(sets)}
    shades["no faults"] = "#4d4d4d"
    fig = Figure(figsize=(max(6.5, 2.6 * len(links)), 4.2))
    ax = fig.add_subplot()
    _grouped_bars(ax, links, by_set, shades, "mean busbw over sizes (GB/s)")
    ax.set_title("Throughput with and without faults")
    ax.legend(fontsize="small")
    return [(save(fig, out, "faults"), "Bus bandwidth with and without faults")]


def _call_key(r: dict) -> tuple:
    p = r["point"]
    return p["link"], p["topology"], p["collective"], p["algorithm"], p["size"]


def plot_failures(failures: dict, out: Path) -> list[tuple[str, str]]:
    """Link failures per day (5th-95th percentile bars) and hours between interruptions.
    The record holds one `simulate` result per profile, each a fleet of that profile alone."""
    names = list(failures["result"])
    rows = [failures["result"][n][n] for n in names]
    colours = [_colour(n, names) for n in names]
    fig = Figure(figsize=(10, 4.2))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = range(len(names))
    for offset, key, what, alpha in ((-0.2, "failures_per_day", "all failures", 0.45),
                                     (0.2, "link_down_per_day", "link down", 1.0)):
        mean = [r[key] for r in rows]
        # Rare events can leave the mean outside [p5, p95] (most trials see none).
        spread = [[max(0.0, m - r[f"{key}_p5"]) for m, r in zip(mean, rows, strict=True)],
                  [max(0.0, r[f"{key}_p95"] - m) for m, r in zip(mean, rows, strict=True)]]
        bars = ax1.bar([i + offset for i in x], mean, 0.4, yerr=spread, color=colours,
                       alpha=alpha, capsize=3, label=what)
        ax1.bar_label(bars, [number(m) for m in mean], fontsize="small", padding=2)
    ax1.set_xticks(list(x), names)
    ax1.set_ylabel("events per day")
    ax1.set_title("Link failures (5th-95th percentile)")
    for handle in ax1.legend(fontsize="small").legend_handles:  # shade, not colour, matters
        handle.set_color("grey")
    hours = [r["hours_between_interruptions"] for r in rows]
    bars = ax2.bar(names, [h if math.isfinite(h) else 0 for h in hours], color=colours)
    ax2.bar_label(bars, [number(h) if math.isfinite(h) else "" for h in hours],
                  fontsize="small")
    ax2.set_xticks(range(len(names)), [n if math.isfinite(h) else f"{n}\n(none in span)"
                                       for n, h in zip(names, hours, strict=True)])
    ax2.set_ylabel("hours between job interruptions")
    if any(0 < h < math.inf for h in hours):
        ax2.set_yscale("log")
    ax2.set_title("Time between interruptions")
    p = failures["params"]
    fig.suptitle(f"{p['gpus']:,} GPUs, {p['days']:g} days, {p['trials']} trials")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=15)
    return [(save(fig, out, "failures"), "Link failure rates by technology")]


DESIGN_PANELS = (("time_s", 1e6, "time (us)"), ("energy_j", 1.0, "link J per step"),
                 ("watts_per_gpu", 1.0, "link W per GPU"),
                 ("stalls_per_day", 1.0, "stalls per day"))


def latest_designs(designs: list[dict]) -> dict[tuple, dict[str, dict]]:
    """{(campaign, workload, size): {design: row}}; the last record of a design wins (a
    rerun after an edit)."""
    groups: dict[tuple, dict[str, dict]] = {}
    for record in designs:
        r = record["row"]
        groups.setdefault((record["campaign"], r["workload"], r["size"]), {})[r["design"]] = r
    return groups


def plot_designs(designs: list[dict], out: Path) -> list[tuple[str, str]]:
    """`netwall compare --db` rows: per design file and workload, each design's time, link
    energy per step, link power per GPU and stalls per day on one shared row of designs
    (horizontal bars, so long names read), values at the bars' ends, a colour per family;
    a design that does not fit has no bars and says so."""
    figures = []
    for (campaign, workload, size), rows in latest_designs(designs).items():
        names = list(rows)
        fig = Figure(figsize=(12, 1.6 + 0.45 * len(names)))
        axes = fig.subplots(1, len(DESIGN_PANELS), sharey=True)
        for ax, (key, scale, label) in zip(axes, DESIGN_PANELS, strict=True):
            values = [rows[n][key] * scale if rows[n]["feasible"] and rows[n][key] is not None
                      else None for n in names]
            bars = ax.barh(range(len(names)), [v or 0 for v in values],
                           color=[_colour(rows[n]["scale_up"], names) for n in names])
            ax.bar_label(bars, [number(v) if v is not None else "does not fit"
                                for v in values], fontsize="small", padding=2)
            ax.set_title(label)
            ax.margins(x=0.35)
            ax.grid(True, axis="x", alpha=0.3)
        axes[0].set_yticks(range(len(names)), names)
        axes[0].invert_yaxis()
        families = {_family(rows[n]["scale_up"]) for n in names}
        fig.legend(handles=[_patch(f) for f in FAMILY_COLOURS if f in families],
                   loc="lower center", ncols=len(families), fontsize="small",
                   title="scale-up technology", frameon=False)
        at = f" at {format_size(size, spaced=True)}" if size else ""
        fig.suptitle(f"{campaign}: {workload}{at}")
        stem = f"designs-{campaign}-{workload}" + (f"-{size}" if size else "")
        legend_share = 0.7 / fig.get_figheight()  # the legend's 0.7 inch under the axes
        figures.append((save(fig, out, stem, rect=(0, legend_share, 1, 1)),
                        f"Designs compared: {campaign}, {workload}{at} (speed, energy, power "
                        "and stalls)"))
    return figures


def _family(profile: str) -> str:
    cable = re.sub(r"^[0-9]+x", "", profile)
    return "copper" if cable.startswith("nvlink") else cable.rsplit("-", 1)[0]


def _patch(family: str):
    from matplotlib.patches import Patch

    return Patch(color=FAMILY_COLOURS[family], label=family)
