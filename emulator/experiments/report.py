"""From stored campaign records to plots, one HTML page, CSV and JSON.

The plots answer the campaign's questions by technology (link profile): bus bandwidth by
size, how far measurements sit from the alpha-beta model, energy per GB, throughput with
and without faults, link failure rates, and `netwall compare --db`'s cluster designs side
by side. Figures are drawn with matplotlib's Agg canvas
(no display needed) and written as PNG, which index.html embeds, and SVG.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TextIO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from foundation.errors import NetwallError
from foundation.outputs import make_dir, write_file
from foundation.units import format_size

COLUMNS = ("id", "campaign", "experiment", "status", "topology", "link", "spine_link",
           "layout", "collective", "algorithm", "bytes", "faults", "not_struck", "dilation",
           "repetition",
           "seed", "iters", "warmup", "time_us", "model_us", "model_error", "algbw_gbps",
           "busbw_gbps", "joules_per_gb", "check", "retransmitted_bytes", "faithful",
           "host_error", "fidelity_flags", "slowdown", "netwall", "host", "time", "reason")
DESIGN_COLUMNS = ("workload", "size", "design", "scale_up", "domain_gpus", "racks_per_domain",
                  "feasible", "time_s", "busbw_gbps", "energy_j", "watts_per_gpu",
                  "failures_per_day", "stalls_per_day", "scale_up_failure", "exposed_share",
                  "reason")
FAMILY_COLOURS = {"copper": "#b5651d", "optical": "#1f77b4", "wide-and-slow": "#2ca02c"}
STYLES = ("-", "--", ":", "-.")  # one per topology, when a figure has several
OTHER_COLOURS = ("#9467bd", "#d62728", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def row(record: dict) -> dict:
    """One point record as a flat row of COLUMNS: a skipped point's `status` says what kind
    of refusal, `reason` the whole message; `not_struck` lists faults that never happened."""
    p, r = record["point"], record.get("result") or {}
    fidelity = r.get("fidelity") or {}
    status = record["status"] if record["status"] == "ok" else f"skipped: {record['reason']}"
    return {
        "id": record["id"], "campaign": record["campaign"], "experiment": p["experiment"],
        "status": status, "topology": p["topology"], "link": p["link"],
        "spine_link": p["spine_link"], "layout": p["layout"] or "",
        "collective": p["collective"], "algorithm": p["algorithm"], "bytes": p["size"],
        "faults": ";".join(p["faults"]), "not_struck": ";".join(r.get("faults_not_struck", [])),
        "dilation": r.get("dilation", p["dilation"]) or "",
        "repetition": p["repetition"], "seed": p["seed"], "iters": p["iters"],
        "warmup": p["warmup"],
        "time_us": _scaled(r.get("time_s"), 1e6), "model_us":
            _scaled(r.get("model_emulated_time_s"), 1e6),
        "model_error": r.get("model_error", ""), "algbw_gbps": r.get("algbw_gbps", ""),
        "busbw_gbps": r.get("busbw_gbps", ""), "joules_per_gb": r.get("joules_per_gb", ""),
        "check": "" if r.get("check") is None else r["check"],
        "retransmitted_bytes": r.get("retransmitted_bytes", ""),
        "faithful": fidelity.get("faithful", ""),
        "host_error": "" if fidelity.get("host_error") is None else fidelity["host_error"],
        "fidelity_flags": "; ".join(fidelity.get("flags", [])),
        "slowdown": r.get("slowdown", ""),
        "netwall": record["netwall"], "host": record["host"]["node"], "time": record["time"],
        "reason": record.get("message", ""),
    }


def _scaled(value: float | None, factor: float) -> float | str:
    return "" if value is None else value * factor


def export(records: list[dict], fmt: str, out: TextIO) -> None:
    """CSV: one row per point, the key columns. JSON: every record whole (non-finite numbers,
    e.g. hours between events that never happen, become null so any JSON reader takes it)."""
    if fmt == "csv":
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row(r) for r in records if r["kind"] == "point")
    elif fmt == "json":
        json.dump(_finite(records), out, indent=1, allow_nan=False)
        out.write("\n")
    else:
        raise NetwallError(f"no export format {fmt!r} (use csv or json)")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# -- plots ---------------------------------------------------------------------------------


def _measured(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r["kind"] == "point" and r["status"] == "ok"]


def _colour(link: str, order: list[str]) -> str:
    for family, colour in FAMILY_COLOURS.items():
        if link.startswith(family + "-"):
            return colour
    return OTHER_COLOURS[order.index(link) % len(OTHER_COLOURS)]


def _save(fig: Figure, out: Path, stem: str) -> str:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    for ext in ("png", "svg"):
        image = io.BytesIO()
        fig.savefig(image, format=ext)
        write_file(out / f"{stem}.{ext}", image.getvalue())
    return f"{stem}.png"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _series(points: list[dict], key: str, by) -> dict:
    """{series: {size: mean of result[key]}} over repetitions and seeds."""
    acc: dict = {}
    for r in points:
        acc.setdefault(by(r), {}).setdefault(r["point"]["size"], []).append(r["result"][key])
    return {s: dict(sorted((size, _mean(v)) for size, v in sizes.items()))
            for s, sizes in sorted(acc.items())}


def _series_label(r: dict, topologies: set[str]) -> str:
    p = r["point"]
    return p["link"] if len(topologies) == 1 else f"{p['link']} on {p['topology']}"


def _size_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: format_size(value)))
    ax.set_xlabel("size (bytes)")
    ax.grid(True, which="both", alpha=0.3)


def plot_busbw(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """busbw vs size, one line per technology, one figure per collective/algorithm."""
    clean = [r for r in points if not r["point"]["faults"]]
    figures = []
    for coll, algo in sorted({(r["point"]["collective"], r["point"]["algorithm"])
                              for r in clean}):
        mine = [r for r in clean if (r["point"]["collective"], r["point"]["algorithm"])
                == (coll, algo)]
        topologies = {r["point"]["topology"] for r in mine}
        links = sorted({r["point"]["link"] for r in mine})
        fig = Figure(figsize=(7, 4.5))
        ax = fig.add_subplot()
        for label, by_size in _series(mine, "busbw_gbps",
                                      partial(_series_label, topologies=topologies)).items():
            link, _, topology = label.partition(" on ")
            style = STYLES[sorted(topologies).index(topology) % len(STYLES)] if topology \
                else "-"
            ax.plot(list(by_size), list(by_size.values()), marker="o", label=label,
                    color=_colour(link, links), linestyle=style)
        _size_axis(ax)
        ax.set_ylabel("busbw (GB/s)")
        ax.set_title(f"{coll}/{algo}: bus bandwidth by technology (no faults)")
        ax.legend()
        figures.append((_save(fig, out, f"busbw-{coll}-{algo}"),
                        f"Bus bandwidth of {coll}/{algo} by size and technology"))
    return figures


def plot_model(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """Measured time against the alpha-beta model of what this kernel emulates."""
    links = sorted({r["point"]["link"] for r in points})
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for link in links:
        mine = [r["result"] for r in points if r["point"]["link"] == link]
        ax.scatter([m["model_emulated_time_s"] * 1e6 for m in mine],
                   [m["time_s"] * 1e6 for m in mine], label=link, color=_colour(link, links),
                   s=18)
    every = [r["result"][k] * 1e6 for r in points for k in ("time_s", "model_emulated_time_s")]
    low, high = min(every), max(every)
    ax.plot([low, high], [low, high], color="black", linewidth=0.8, label="measured = model")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model time (us)")
    ax.set_ylabel("measured time (us)")
    ax.set_title("Measured time vs alpha-beta model")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return [(_save(fig, out, "time-vs-model"), "Measured time against the model")]


def plot_energy(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """Energy per GB moved, by size and technology."""
    clean = [r for r in points if not r["point"]["faults"]]
    if not clean:
        return []
    links = sorted({r["point"]["link"] for r in clean})
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for link, by_size in _series(clean, "joules_per_gb", lambda r: r["point"]["link"]).items():
        ax.plot(list(by_size), list(by_size.values()), marker="o", label=link,
                color=_colour(link, links))
    _size_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("energy (J/GB)")
    ax.set_title("Energy per GB by technology (all collectives, no faults)")
    ax.legend()
    return [(_save(fig, out, "energy"), "Energy per GB by size and technology")]


def plot_faults(points: list[dict], out: Path) -> list[tuple[str, str]]:
    """Mean busbw with and without each fault set, by technology, over the experiments that
    inject faults (so the clean bars cover the same sizes and topologies)."""
    faulted = {r["point"]["experiment"] for r in points if r["point"]["faults"]}
    mine = [r for r in points if r["point"]["experiment"] in faulted]
    if not mine:
        return []
    links = sorted({r["point"]["link"] for r in mine})
    sets = sorted({tuple(r["point"]["faults"]) for r in mine})
    fig = Figure(figsize=(max(6, 2.2 * len(links)), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / len(sets)
    for i, fs in enumerate(sets):
        heights = []
        for link in links:
            values = [r["result"]["busbw_gbps"] for r in mine
                      if r["point"]["link"] == link and tuple(r["point"]["faults"]) == fs]
            heights.append(_mean(values) if values else 0.0)
        ax.bar([x + i * width for x in range(len(links))], heights, width,
               label=", ".join(fs) or "no faults")
    ax.set_xticks([x + width * (len(sets) - 1) / 2 for x in range(len(links))], links)
    ax.set_ylabel("mean busbw over sizes (GB/s)")
    ax.set_title("Throughput with and without faults")
    ax.legend(fontsize="small")
    return [(_save(fig, out, "faults"), "Bus bandwidth with and without faults")]


def plot_failures(failures: dict, out: Path) -> list[tuple[str, str]]:
    """Link failures per day (5th-95th percentile bars) and hours between interruptions.
    The record holds one `simulate` result per profile, each a fleet of that profile alone."""
    names = list(failures["result"])
    rows = [failures["result"][n][n] for n in names]
    colours = [_colour(n, names) for n in names]
    fig = Figure(figsize=(9, 4))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = range(len(names))
    for offset, key, what, alpha in ((-0.2, "failures_per_day", "all failures", 0.45),
                                     (0.2, "link_down_per_day", "link down", 1.0)):
        mean = [r[key] for r in rows]
        # Rare events can leave the mean outside [p5, p95] (most trials see none).
        spread = [[max(0.0, m - r[f"{key}_p5"]) for m, r in zip(mean, rows, strict=True)],
                  [max(0.0, r[f"{key}_p95"] - m) for m, r in zip(mean, rows, strict=True)]]
        ax1.bar([i + offset for i in x], mean, 0.4, yerr=spread, color=colours, alpha=alpha,
                capsize=3, label=what)
    ax1.set_xticks(list(x), names)
    ax1.set_ylabel("events per day")
    ax1.set_title("Link failures (5th-95th percentile)")
    for handle in ax1.legend(fontsize="small").legend_handles:  # shade, not colour, matters
        handle.set_color("grey")
    hours = [r["hours_between_interruptions"] for r in rows]
    bars = ax2.bar(names, [h if math.isfinite(h) else 0 for h in hours], color=colours)
    ax2.bar_label(bars, [f"{h:.3g}" if math.isfinite(h) else "" for h in hours],
                  fontsize="small")
    ax2.set_xticks(range(len(names)), [n if math.isfinite(h) else f"{n}\n(none in span)"
                                       for n, h in zip(names, hours, strict=True)])
    ax2.set_ylabel("hours between job interruptions")
    if any(0 < h < math.inf for h in hours):
        ax2.set_yscale("log")
    ax2.set_title("Time between interruptions")
    p = failures["params"]
    fig.suptitle(f"{p['gpus']} GPUs, {p['days']:g} days, {p['trials']} trials")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize="small", rotation=15)
    return [(_save(fig, out, "failures"), "Link failure rates by technology")]


def plot_designs(designs: list[dict], out: Path) -> list[tuple[str, str]]:
    """`netwall compare --db` rows: per design file and workload, each design's time, link
    energy per step and link power per GPU side by side; a design that does not fit has no
    bars and says so under its name."""
    groups: dict[tuple, dict[str, dict]] = {}
    for record in designs:  # the last record of a design wins (a rerun after an edit)
        r = record["row"]
        groups.setdefault((record["campaign"], r["workload"], r["size"]), {})[r["design"]] = r
    figures = []
    for (campaign, workload, size), rows in groups.items():
        names = list(rows)
        fig = Figure(figsize=(3.2 * 3, 4))
        for i, (key, label) in enumerate((("time_s", "time (us)"), ("energy_j", "J per step"),
                                          ("watts_per_gpu", "link W per GPU"))):
            ax = fig.add_subplot(1, 3, i + 1)
            values = [(rows[n][key] or 0) * (1e6 if key == "time_s" else 1) for n in names]
            ax.bar(range(len(names)), values,
                   color=[_family_colour(rows[n]["scale_up"]) for n in names])
            ax.set_xticks(range(len(names)), [n if rows[n]["feasible"] else f"{n}\n(does not "
                                              "fit)" for n in names], rotation=30, ha="right",
                          fontsize=7)
            ax.set_title(label, fontsize=9)
        at = f" at {format_size(size, spaced=True)}" if size else ""
        fig.suptitle(f"{campaign}: {workload}{at}", fontsize=10)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"designs-{campaign}-{workload}"
                      + (f"-{size}" if size else ""))
        figures.append((_save(fig, out, stem), f"Designs compared: {campaign}, {workload}{at}"))
    return figures


def _family_colour(profile: str) -> str:
    """A design's colour: its scale-up cable's family (a bundle's cable; NVLink is copper)."""
    cable = re.sub(r"^[0-9]+x", "", profile)
    family = "copper" if cable.startswith("nvlink") else cable.rsplit("-", 1)[0]
    return FAMILY_COLOURS.get(family, OTHER_COLOURS[0])


# -- the page --------------------------------------------------------------------------------


def report(records: list[dict], out: Path) -> Path:
    """Write every plot the records allow (PNG and SVG) and index.html; returns its path."""
    make_dir(out)
    points = _measured(records)
    failures = [r for r in records if r["kind"] == "failures"]
    designs = [r for r in records if r["kind"] == "design"]
    figures = plot_designs(designs, out) if designs else []
    if points:
        figures += plot_busbw(points, out) + plot_model(points, out) + plot_energy(points, out)
        figures += plot_faults(points, out)
    if failures:
        figures += plot_failures(failures[-1], out)
    return write_file(out / "index.html",
                      _html(records, figures, failures[-1] if failures else None))


def _html(records: list[dict], figures: list[tuple[str, str]], failures: dict | None) -> str:
    e = html.escape
    campaigns = sorted({r["campaign"] for r in records})
    rows = [row(r) for r in records if r["kind"] == "point"]
    done = sum(r["status"] == "ok" for r in rows)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>netwall report: {e(', '.join(campaigns))}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "font-size:0.8em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "figure{display:inline-block;margin:1em}img{max-width:720px}"
        ".skipped{color:#a00}</style></head><body>",
        f"<h1>netwall campaign report: {e(', '.join(campaigns))}</h1>",
        f"<p>{len(rows)} points: {done} measured, {len(rows) - done} skipped. Times are real "
        "(undilated); the model is the alpha-beta time of what this kernel emulates.</p>",
    ]
    flagged = [r for r in rows if r["faithful"] is False]
    if flagged:
        parts.append(f"<p class='skipped'>{len(flagged)} measured points are NOT FAITHFUL: "
                     "the host distorted them, or they were not proven (column fidelity_flags)."
                     "</p>")
    for png, caption in figures:
        svg = png[:-4] + ".svg"
        parts.append(f"<figure><img src='{e(png)}' alt='{e(caption)}'><figcaption>"
                     f"{e(caption)} (<a href='{e(svg)}'>SVG</a>)</figcaption></figure>")
    if failures:
        parts.append("<h2>Link failures</h2>" + _table(
            ["profile", "links", "failures/day", "link down/day", "hours between interruptions"],
            [[n, v[n]["links"], v[n]["failures_per_day"], v[n]["link_down_per_day"],
              v[n]["hours_between_interruptions"]] for n, v in failures["result"].items()]))
    designs = [r["row"] for r in records if r["kind"] == "design"]
    if designs:
        parts.append("<h2>Designs compared</h2>" + _table(
            list(DESIGN_COLUMNS), [[d.get(c, "") for c in DESIGN_COLUMNS] for d in designs]))
    parts.append("<h2>Points</h2>" + _table(list(COLUMNS), [[r[c] for c in COLUMNS]
                                                           for r in rows]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        css = " class='skipped'" if text.startswith("skipped") else ""
        return f"<td{css}>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
