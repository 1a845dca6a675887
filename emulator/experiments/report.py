"""From stored campaign records to one HTML page that answers the question, CSV and JSON.

The page opens with the findings in sentences (emulator.experiments.findings: which
technology or design wins, by how much, what faults and failures cost, what does not fit),
then the figures (emulator.experiments.figures), then tables in units a person reads, with
no empty section. It prints to PDF as it shows (print CSS). Every file is written under
`out` with a sanitised name: a record names collectives and campaigns, never where a file
goes.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from emulator.experiments import figures, findings
from emulator.experiments.findings import Measure, number
from foundation.outputs import inside, make_dir, write_file
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


# -- the page --------------------------------------------------------------------------------


def report(records: list[dict], out: Path) -> Path:
    """Write every plot the records allow (PNG and SVG) and index.html; returns its path."""
    make_dir(out)
    points = figures.measured(records)
    failures = [r for r in records if r["kind"] == "failures"]
    designs = [r for r in records if r["kind"] == "design"]
    drawn = figures.plot_designs(designs, out) if designs else []
    if points:
        drawn += figures.plot_busbw(points, out) + figures.plot_energy(points, out)
        drawn += figures.plot_faults(points, out)
    if failures:
        drawn += figures.plot_failures(failures[-1], out)
    if points:
        drawn += figures.plot_model(points, out)
    return write_file(inside(out, "index.html"),
                      _html(records, drawn, failures[-1] if failures else None))


def sentences(records: list[dict]) -> list[str]:
    """The findings the page opens with: the designs' (the latest row of each) and the
    campaign's."""
    rows = _design_rows(records)
    said = findings.designs(rows) if rows else []
    if any(r["kind"] in ("point", "failures") for r in records):
        said += findings.campaign(records)
    return said


STYLE = """
body{font-family:sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;line-height:1.4}
.findings li{margin:0.3em 0}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto}
figcaption{font-size:0.9em;color:#444}
table{border-collapse:collapse;font-size:0.85em;max-width:100%}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;white-space:normal;vertical-align:bottom}h2{break-after:avoid}td.text,th.text{text-align:left}
.wide{overflow-x:auto}.bad{color:#a00}
@media print{
 @page{size:A4 landscape;margin:12mm}
 body{margin:0;max-width:none;font-size:10pt}
 figure{break-inside:avoid}table{font-size:7.5pt}.wide{overflow:visible}
 tr{break-inside:avoid}a{color:inherit;text-decoration:none}
}
"""


def _design_rows(records: list[dict]) -> list[dict]:
    """The latest row of each design, per file, workload and size."""
    latest = figures.latest_designs([r for r in records if r["kind"] == "design"])
    return [r for group in latest.values() for r in group.values()]


def _html(records: list[dict], drawn: list[tuple[str, str]], failures: dict | None) -> str:
    e = html.escape
    campaigns = sorted({r["campaign"] for r in records})
    kinds = {r["kind"] for r in records}
    what = "design comparison" if kinds == {"design"} else "campaign report"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>netwall report: {e(', '.join(campaigns))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>netwall {what}: {e(', '.join(campaigns)) or 'no results yet'}</h1>",
    ]
    said = sentences(records)
    parts.append("<h2>Findings</h2>")
    parts.append("<ul class='findings'>" + "".join(f"<li>{e(s)}</li>" for s in said)
                 + "</ul>" if said else "<p>No results stored yet: run a campaign or "
                 "`netwall compare --db` first.</p>")
    parts.append(f"<p>{e(_counts(records))} Times are real (undilated); the model is the "
                 "alpha-beta time of what this kernel emulates; energy and power count each "
                 "link's two ends and the cable (docs/profiles.md, the power boundary).</p>")
    flagged = [r for r in figures.measured(records)
               if ((r.get("result") or {}).get("fidelity") or {}).get("faithful") is False]
    if flagged:
        parts.append(f"<p class='bad'>{len(flagged)} measured points are NOT FAITHFUL: the "
                     "host distorted them, or they were not proven (see the Points table and "
                     "the CSV export's fidelity_flags): "
                     f"{e(_first_flag(flagged))}</p>")
    if drawn:
        parts.append("<h2>Figures</h2>")
    for png, caption in drawn:
        svg = png[:-4] + ".svg"
        parts.append(f"<figure><img src='{e(png)}' alt='{e(caption)}'><figcaption>"
                     f"{e(caption)} (<a href='{e(svg)}'>SVG</a>)</figcaption></figure>")
    rows = _design_rows(records)
    if rows:
        header, cells, common = _varying(DESIGN_HEADER, [_design_cells(r) for r in rows])
        alike = "; ".join(f"{h} {v}" for h, v in common)
        parts.append("<h2>Designs compared</h2>"
                     + (f"<p>Every design: {e(alike)}.</p>" if alike else "")
                     + _table(header, cells))
        why = [r for r in rows if not r["feasible"]]
        if why:
            parts.append("<ul>" + "".join(
                f"<li>{e(r['design'])} does not fit: "
                f"{e((r['reason'] or '').removeprefix(r['design'] + ': '))}</li>" for r in why)
                + "</ul>")
    if failures:
        parts.append("<h2>Link failures</h2>" + _table(
            ("profile", "links", "failures per day", "link down per day",
             "hours between interruptions"),
            [[n, f"{v[n]['links']:,.0f}", number(v[n]["failures_per_day"]),
              number(v[n]["link_down_per_day"]),
              number(v[n]["hours_between_interruptions"])
              if math.isfinite(v[n]["hours_between_interruptions"]) else "none in span"]
             for n, v in failures["result"].items()]))
    points = _point_rows(records)
    if points:
        header, points, common = _varying(POINT_HEADER, points)
        alike = "; ".join(f"{h} {v}" for h, v in common)
        parts.append("<h2>Points</h2><p>Means over repetitions (their range in brackets)."
                     + (f" Every point: {e(alike)}." if alike else "") + "</p>"
                     + _table(header, points))
    parts.append("</body></html>")
    return "\n".join(parts)


def _counts(records: list[dict]) -> str:
    points = [r for r in records if r["kind"] == "point"]
    designs = {(r["campaign"], r["row"]["design"]) for r in records if r["kind"] == "design"}
    said = []
    if designs:
        fit = {(r["campaign"], r["row"]["design"]) for r in records
               if r["kind"] == "design" and r["row"]["feasible"]}
        said.append(f"{len(designs)} designs: {len(fit)} fit, {len(designs) - len(fit)} do "
                    "not.")
    if points:
        done = sum(r["status"] == "ok" for r in points)
        said.append(f"{len(points)} points: {done} measured, {len(points) - done} skipped.")
    return " ".join(said)


def _first_flag(flagged: list[dict]) -> str:
    return (flagged[0]["result"]["fidelity"].get("flags") or ["not proven"])[0]


DESIGN_HEADER = ("design", "scale-up", "domain", "fits", "time (us)", "busbw (GB/s)",
                 "exposed", "J per step", "W per GPU", "failures per day", "stalls per day",
                 "one lane lost", "faithful")


def _design_cells(r: dict) -> list[str]:
    measured = r["feasible"] and r["time_s"] is not None
    return [r["design"], r["scale_up"], f"{r['domain_gpus']} x {r['racks_per_domain']} racks",
            _yes(r["feasible"]),
            number(r["time_s"] * 1e6) if measured else "-",
            number(r["busbw_gbps"]) if measured and r.get("busbw_gbps") is not None else "-",
            f"{r['exposed_share']:.0%}" if measured and r.get("exposed_share") is not None
            else "-",
            number(r["energy_j"]) if measured and r.get("energy_j") is not None else "-",
            number(r["watts_per_gpu"]), number(r["failures_per_day"]),
            number(r["stalls_per_day"]), r["scale_up_failure"], _yes(r.get("faithful"))]


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


POINT_HEADER = ("experiment", "topology", "link", "call", "size", "faults", "repetitions",
                "time (us)", "model (us)", "busbw (GB/s)", "J per GB", "faithful", "status")


def _point_rows(records: list[dict]) -> list[list[str]]:
    """One row per point of the matrix, repetitions and seeds folded into mean and range."""
    acc: dict[tuple, list[dict]] = {}
    for r in records:
        if r["kind"] != "point":
            continue
        p = r["point"]
        key = (p["experiment"], p["topology"], p["link"], f"{p['collective']}/{p['algorithm']}",
               p["size"], "; ".join(p["faults"]) or "none", r["status"], r.get("reason", ""))
        acc.setdefault(key, []).append(r)
    out = []
    for (experiment, topology, link, call, size, faults, status, reason), mine in acc.items():
        results = [r["result"] for r in mine if r["status"] == "ok"]

        def cell(key: str, scale: float = 1.0, results=results) -> str:
            values = [x[key] * scale for x in results if x.get(key) is not None]
            if not values:
                return "-"
            m = Measure.of(values)
            return number(m.mean) + (f" ({number(m.low)}-{number(m.high)})"
                                     if m.count > 1 and m.high > m.low else "")

        verdicts = [(x.get("fidelity") or {}).get("faithful") for x in results]
        faithful = "-" if not results else ("yes" if all(verdicts) else
                                            f"no ({verdicts.count(False)} of {len(verdicts)})")
        out.append([experiment, topology, link, call, format_size(size, spaced=True), faults,
                    str(len(mine)), cell("time_s", 1e6), cell("model_emulated_time_s", 1e6),
                    cell("busbw_gbps"), cell("joules_per_gb"), faithful,
                    "measured" if status == "ok" else f"skipped: {reason}"])
    return out


def _varying(header: tuple, rows: list[list[str]]) -> tuple[tuple, list[list[str]], list]:
    """The columns whose value differs between rows, and (name, value) of those that do not
    (said once above the table, so it fits the page)."""
    keep = [i for i in range(len(header)) if len({r[i] for r in rows}) > 1 or
            header[i] in ("design", "link", "time (us)", "busbw (GB/s)")]
    common = [(header[i], rows[0][i]) for i in range(len(header))
              if i not in keep and rows[0][i] != "-"]  # a column of dashes says nothing
    return (tuple(header[i] for i in keep), [[r[i] for i in keep] for r in rows], common)


TEXT_COLUMNS = {"design", "scale-up", "domain", "experiment", "topology", "link", "call",
                "faults", "status", "profile", "one lane lost"}


def _table(header: tuple | list, rows: list[list]) -> str:
    e = html.escape

    def cell(value, column: str) -> str:
        text = value if isinstance(value, str) else number(value)
        css = ["text"] if column in TEXT_COLUMNS else []
        if text == "no" or text.startswith(("no (", "skipped")):
            css.append("bad")
        return f"<td class='{' '.join(css)}'>{e(text)}</td>" if css else f"<td>{e(text)}</td>"

    head = "".join(f"<th class='text'>{e(h)}</th>" if h in TEXT_COLUMNS else f"<th>{e(h)}</th>"
                   for h in header)
    body = "".join("<tr>" + "".join(cell(v, h) for v, h in zip(r, header, strict=True))
                   + "</tr>" for r in rows)
    return f"<div class='wide'><table><tr>{head}</tr>{body}</table></div>"
