"""The design comparison: `netwall compare` on its default (what `netwall run` with no
options prints), timed from outside as a user runs it, with its rows.

The target is the issue's: about a minute on a 2-core machine. The table is the
comparison's own, medians over the runs, so a reader sees what the minute buys.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from foundation.text.table import markdown as md

ROOT = Path(__file__).resolve().parent.parent


def measure(repeats: int = 3, file: str | None = None) -> dict:
    """Wall seconds of each run, and every run's rows."""
    walls, runs = [], []
    for _ in range(repeats):
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "emulator.cli.main", "compare",
                               *([file] if file else []), "--json"], cwd=ROOT,
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"netwall compare: {done.stderr.strip()[-300:]}")
        walls.append(time.monotonic() - start)
        printed = json.loads(done.stdout)  # a file of sections prints one per section
        runs.append(printed["rows"] if "rows" in printed else
                    [row for c in printed["comparisons"] for row in c["rows"]])
    return {"repeats": repeats, "walls": walls, "runs": runs}


def markdown(found: dict) -> str:
    """One row per design (medians over the runs), then the wall time."""
    rows = []
    for i, first in enumerate(found["runs"][0]):
        same = [run[i] for run in found["runs"]]
        time_us = [r["time_s"] * 1e6 for r in same if r["time_s"] is not None]
        busbw = [r["busbw_gbps"] for r in same if r["busbw_gbps"] is not None]
        energy = [r["energy_j"] for r in same if r["energy_j"] is not None]
        faithful = sum(r["faithful"] is True for r in same)
        rows.append((first["workload"], first["design"], first["scale_up"],
                     f"{first['domain_gpus']} x {first['racks_per_domain']} racks",
                     "yes" if first["feasible"] else "no",
                     f"{statistics.median(time_us):.1f}" if time_us else "-",
                     f"{statistics.median(busbw):.1f}" if busbw else "-",
                     f"{statistics.median(energy):.3g}" if energy else "-",
                     f"{first['watts_per_gpu']:.0f}", f"{first['failures_per_day']:.2f}",
                     f"{first['stalls_per_day']:.2f}", first["scale_up_failure"],
                     f"{faithful} of {len(same)}" if first["feasible"] else "-"))
    table = md(("workload", "design", "scale-up", "domain", "fits", "time (us)",
                "busbw (GB/s)", "J/step", "W/GPU", "fails/day", "stalls/day", "up fails",
                "faithful"), rows)
    walls = found["walls"]
    return "\n".join([table, "", f"Wall time of the whole command: median "
                      f"{statistics.median(walls):.0f} s ({', '.join(f'{w:.0f}' for w in walls)}"
                      f" s over {found['repeats']} runs)."])


if __name__ == "__main__":
    print(markdown(measure(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
