"""What real-time scheduling buys the agents (traffic.scheduling): the host's calibration
and the generator's efficiency under SCHED_FIFO and under the normal policy, interleaved.

The policy is what the fork server reads from NETWALL_AGENT_SCHED when an emulation starts,
so each measurement builds its own emulation with the variable set. The calibration is
measured afresh every time (not read from the cache), with the same code `netwall check
--calibrate` runs; the efficiency is bench/efficiency.py's.
"""

from __future__ import annotations

import os
import statistics

from bench import efficiency
from emulator.emulation import Emulation
from emulator.models import calibration
from emulator.preflight import measure_host
from foundation.text.table import markdown as md
from traffic import scheduling

POLICIES = ("fifo", "normal")


def _calibrate() -> calibration.Calibration:
    with Emulation(calibration.TOPOLOGY, calibration.LINK, dilation=1000, gpu="ideal") as emu:
        return measure_host(emu, lambda _text: None)


def measure(repeats: int = 2) -> dict:
    """Per policy: each calibration's figures and each efficiency run's ratios."""
    found: dict[str, dict[str, list]] = {p: {"calibrations": [], "efficiency": []}
                                         for p in POLICIES}
    before = os.environ.get(scheduling.ENV)
    try:
        for _ in range(repeats):
            for policy in POLICIES:
                os.environ[scheduling.ENV] = policy
                found[policy]["calibrations"].append(_calibrate())
                found[policy]["efficiency"].append(efficiency.measure(repeats=1))
    finally:
        if before is None:
            os.environ.pop(scheduling.ENV, None)
        else:
            os.environ[scheduling.ENV] = before
    return {"repeats": repeats, "policies": found}


def markdown(found: dict) -> str:
    rows = []
    for policy, got in found["policies"].items():
        cals = got["calibrations"]
        ratios = {row["size"]: [] for row in got["efficiency"][0]}
        for run in got["efficiency"]:
            for row in run:
                ratios[row["size"]].append(row["ratio"])
        rows.append((
            scheduling.Policy(policy == "fifo", f"{scheduling.ENV}={policy}").describe(),
            ", ".join(f"{c.capacity_gbps:.2f}" for c in cals),
            ", ".join(f"{c.step_s * 1e6:.0f}" for c in cals),
            *(f"{statistics.median(r):.2f}" for r in ratios.values())))
    sizes = [f"agents / iperf3 at {size >> 20} MiB" for size in
             (row["size"] for row in found["policies"]["fifo"]["efficiency"][0])]
    return md(("agents' policy", "faithful capacity (Gb/s), each run",
               "host time per step (us), each run", *sizes), rows)


def section(found: dict, note: str = "") -> str:
    """BENCHMARKS.md's section."""
    return f"""
## Agents that wake on time: SCHED_FIFO against the normal policy (bench/scheduling.py)

At each dependent step of a collective every agent becomes runnable at once; on a host with
fewer cores than GPUs the last one ran several time slices late, and that lateness, not
work, was most of the host's share (issue 25). The agents now run under SCHED_FIFO while
the kernel's real-time throttling is on (traffic/scheduling.py; the normal policy, with one
line on stderr, where it is refused). Both policies measured alternately, {found['repeats']}
times each: the calibration afresh (`netwall check --calibrate`'s code) and the generator's
efficiency (bench/efficiency.py, unshaped star:8, one run of each size per round; the
median of the rounds).{note}

{markdown(found)}
"""


if __name__ == "__main__":
    print(section(measure()))
