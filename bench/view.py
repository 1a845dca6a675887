"""What --view costs a run: the same `netwall run` without the view, with it and no page
open, and with it watched by a headless Chromium on this machine, interleaved.

Timed from outside, as a user waits for it (--view-hold 0: the view closes when the run
ends). Beside the wall time, the call time the run measured: the sampler reads counters in
the controller's thread, and a browser drawing on the same cores competes with the agents,
so a cost could show there too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foundation.text.table import markdown as md

ROOT = Path(__file__).resolve().parent.parent
RUN = ("run", "--topology", "star:8", "--link", "copper-800g", "--size", "4M", "-n", "20",
       "-w", "1", "--dilation", "2000", "--no-probe", "--no-check", "--json")
VARIANTS = ("without --view", "--view, no page open", "--view, watched by Chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


def once(variant: str) -> tuple[float, float]:
    """Wall seconds of one run, and the call time it measured (us)."""
    view = () if variant == VARIANTS[0] else ("--view", "--view-hold", "0")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", *RUN, *view],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    browser = None
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        try:
            if variant == VARIANTS[2]:
                line = proc.stderr.readline()
                url = re.search(r"http://127\.0\.0\.1:[0-9]+/", line).group(0)
                browser = subprocess.Popen([shutil.which("chromium"), *CHROMIUM_FLAGS,
                                            f"--user-data-dir={profile}", url],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True)
            out, err = proc.communicate(timeout=1800)
        finally:
            if browser is not None:  # the browser and every process it started
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"netwall run ({variant}): {err.strip()[-300:]}")
    return wall, json.loads(out)["results"][0]["time_s"] * 1e6


def measure(repeats: int = 3) -> dict:
    """Every variant's runs, interleaved, and the load average they ran under."""
    variants = VARIANTS if shutil.which("chromium") else VARIANTS[:2]
    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for _ in range(repeats):  # interleaved: drift in the machine hits every variant alike
        for variant in variants:
            runs[variant].append(once(variant))
    return {"repeats": repeats, "runs": runs, "note": _load_note()}


def _load_note() -> str:
    """What else the machine ran meanwhile: its 15-minute load average, against its cores."""
    load = os.getloadavg()[2]
    cores = os.cpu_count() or 1
    if load < cores:
        return ""
    return (f"\nThe machine ran other work meanwhile (15-minute load average {load:.0f} on "
            f"{cores} cores): the spread of each row's runs is the noise a difference must "
            "exceed to count.\n")


def section(found: dict) -> str:
    base = statistics.median(w for w, _ in found["runs"][VARIANTS[0]])
    rows = []
    for variant, runs in found["runs"].items():
        walls = [w for w, _ in runs]
        wall = statistics.median(walls)
        rows.append((variant, f"{wall:.1f}", ", ".join(f"{w:.1f}" for w in walls),
                     f"{wall / base - 1:+.1%}",
                     f"{statistics.median(t for _, t in runs):.1f}"))
    table = md(("run", "wall (s)", "runs (s)", "against no view", "call time (us)"), rows)
    return f"""
## What the live view costs a run (bench/view.py)

`netwall {' '.join(RUN)}`: as is, with `--view --view-hold 0` and no page open (the
server's thread waits; the sampler reads every link's counters and the agents' progress
board four times a second while calls run), and with the page open in a headless Chromium
on this same 2-core machine (the page redraws every frame). The agents write each call's
step and their resends to the board whether the view watches or not (traffic/board.py: 165
ns a step, 90 ns a resend on this machine), so the row without --view includes that.
Medians of {found['repeats']} runs each, interleaved, timed from outside; the call time is
the run's own (`time_s`, real units, unproven: `--no-probe`).
{found.get('note', '')}
{table}
"""


if __name__ == "__main__":
    print(section(measure(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 3)))
