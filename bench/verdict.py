"""Trust at speed: the verdict against the truth, and what a dilation per call saves.

1. The dilation table: `netwall run --topology star:8 --link optical-800g --size 1M --size 16M
   --size 64M -n 5` at forced dilations down to where the host sets the pace, and with the
   automatic choice: each row's error against the alpha-beta model (exact for this call: see
   the model fidelity table) and its verdict. Every row whose error is beyond the tolerance
   must be flagged; a faithful row must be within it.
2. The default run: `netwall run` (three link profiles x 1, 4 and 16 MiB) with the automatic
   dilation against the same command with `--dilation 5000`, interleaved, wall-clock time of
   the whole command: the target is 3x faster, every row within 2% and faithful. Five runs
   of each, as one run in three carries a sampled probe of more calls or a row measured
   again (18.5-23.8 s), and every run's time is printed beside the medians.

Both run the `netwall` command as a user would, with --json, and time it from outside.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from emulator.result import RunResult
from foundation.text.table import markdown as md
from foundation.units import format_size

ROOT = Path(__file__).resolve().parent.parent
TABLE = ["run", "--topology", "star:8", "--link", "optical-800g", "--size", "1M", "--size",
         "16M", "--size", "64M", "-n", "5"]
DILATIONS = (5000, 1000, 500, 250, None)  # None: netwall's own choice
TOLERANCE = 0.02


def calibration_line() -> str:
    from emulator.models import calibration

    found = calibration.load()
    return found.summary() if found else "not calibrated"


def netwall(args: list[str]) -> tuple[float, dict]:
    """Wall seconds and the JSON of one netwall command."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "emulator.cli.main", *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"netwall {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return time.monotonic() - start, json.loads(done.stdout)


def rows_of(report: dict) -> list[dict]:
    """The table's columns of each result a `netwall run --json` printed."""
    results = [RunResult.from_dict(r) for r in report["results"]]
    return [{"link": r.link, "size": r.bytes, "dilation": r.dilation,
             "error": r.model_error, "faithful": r.fidelity["faithful"],
             "host_error": r.fidelity["host_error"], "slowdown": r.slowdown,
             "floor": r.slowdown_floor, "wall_s": r.wall_s,
             "attempts": [a.dilation for a in r.dilation_attempts]}
            for r in results]


def dilation_table() -> list[dict]:
    out = []
    for d in DILATIONS:
        wall, report = netwall(TABLE + ([] if d is None else ["--dilation", str(d)]))
        out.append({"forced": d, "wall_s": wall, "rows": rows_of(report)})
    return out


def default_run(repeats: int = 5) -> dict:
    auto, fixed = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine
        auto.append(netwall(["run"]))
        fixed.append(netwall(["run", "--dilation", "5000"]))
    return {"repeats": repeats,
            "auto_s": statistics.median(w for w, _ in auto),
            "fixed_s": statistics.median(w for w, _ in fixed),
            "auto_walls": [w for w, _ in auto], "fixed_walls": [w for w, _ in fixed],
            "auto_rows": [row for _, report in auto for row in rows_of(report)],
            "fixed_rows": [row for _, report in fixed for row in rows_of(report)]}


def honest(row: dict) -> bool:
    """The verdict's promise: a row beyond the tolerance is never called faithful."""
    return not (row["faithful"] and abs(row["error"]) > TOLERANCE)


def _host(row: dict) -> str:
    return "-" if row["host_error"] is None else f"{row['host_error']:+.1%}"


def markdown_table(runs: list[dict]) -> str:
    out = []
    for run in runs:
        forced = "auto" if run["forced"] is None else f"{run['forced']}"
        for i, r in enumerate(run["rows"]):
            tried = " (tried " + ", ".join(f"{d:g}" for d in r["attempts"][:-1]) + ")" \
                if len(r["attempts"]) > 1 else ""
            out.append((forced if i == 0 else "", f"{run['wall_s']:.0f} s" if i == 0 else "",
                        format_size(r["size"], spaced=True), f"{r['dilation']:g}{tried}",
                        f"{r['error']:+.1%}", _host(r),
                        "faithful" if r["faithful"] else "**flagged**",
                        f"{r['slowdown']:,.0f}x ({r['floor']:,.0f}x)"))
    bad = [r for run in runs for r in run["rows"] if not honest(r)]
    return "\n".join([md(("--dilation", "wall time", "size", "D", "model error", "host share",
                          "verdict", "slowdown (floor)"), out, align="<>>>>><>"),
                      "", f"Rows beyond {TOLERANCE:.0%} called faithful: {len(bad)}."])


def markdown_default(d: dict) -> str:
    worst = max(abs(r["error"]) for r in d["auto_rows"])
    unfaithful = sum(not r["faithful"] for r in d["auto_rows"])
    dilations = sorted({(r["size"], r["dilation"]) for r in d["auto_rows"]})
    chosen = ", ".join(f"{format_size(s, spaced=True)} at {dd:g}" for s, dd in dilations)
    table = md(("command", "wall time (median)", "worst model error", "rows not faithful"), [
        ("`netwall run` (automatic)", f"{d['auto_s']:.1f} s", f"{worst:.1%}",
         f"{unfaithful} of {len(d['auto_rows'])}"),
        ("`netwall run --dilation 5000`", f"{d['fixed_s']:.1f} s",
         f"{max(abs(r['error']) for r in d['fixed_rows']):.1%}",
         f"{sum(not r['faithful'] for r in d['fixed_rows'])} of {len(d['fixed_rows'])}")])
    return "\n".join([
        table, "",
        f"Speed-up: {d['fixed_s'] / d['auto_s']:.1f}x ({d['repeats']} runs of each, "
        f"interleaved: {_walls(d['auto_walls'])} s against {_walls(d['fixed_walls'])} s). "
        f"Dilations chosen: {chosen}."])


def _walls(walls: list[float]) -> str:
    return ", ".join(f"{w:.1f}" for w in walls)


if __name__ == "__main__":
    print(markdown_table(dilation_table()))
    print()
    print(markdown_default(default_run()))
