"""The largest cluster this machine emulates: clusters of growing size.

For each size: start-up (what `with Emulation(...)` costs: planning, building the network
with its shaping, and starting one agent per GPU), the memory the running emulation holds
(MemAvailable from /proc/meminfo before start-up, less its lowest value while up),
teardown, and whether a collective over every GPU completes and verifies on every rank: a
64 KiB halving-doubling all-reduce (2 log2 N steps; a ring's 2(N-1) latency-bound steps,
each needing every agent to run on two cores, would measure scheduling, not capacity), one
timed call and one checked call. Sizes double from 64 GPUs. Time and memory grow faster
than the GPU count (routes and each agent's state grow with it), so each is extrapolated
from its growth between the last two sizes; the next
size is not tried if it would take longer than BUDGET_S or hold more than MEMORY_SHARE of
the memory available (running out would hit everything else on the machine), and nothing is
tried past the first failure.
"""

from __future__ import annotations

import math
import statistics
import time

from emulator import Emulation
from foundation.errors import NetwallError
from foundation.text.table import markdown as md

LINK = "copper-800g"
# Stars while one Linux bridge can hold every GPU (1023 ports at most); then racks.
SIZES = {64: "star:64", 128: "star:128", 256: "star:256", 512: "star:512",
         1024: "racks:4x256"}
ALLREDUCE = 64 << 10
ALGORITHM = "halving-doubling"
BUDGET_S = 120.0
MEMORY_SHARE = 0.5


def mem_available() -> int:
    """MemAvailable from /proc/meminfo, in bytes."""
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f
                    if line.startswith("MemAvailable:"))


def once(topology: str) -> dict:
    """Start `topology`, run the all-reduce, tear it down."""
    # The network's own (bandwidth-bound) dilation for the call too: this bench measures
    # start-up and memory, and its one call shows the cluster works, not how fast.
    dilation = Emulation(topology, LINK, gpu="ideal").dilation
    before = mem_available()
    t0 = time.perf_counter()
    emu = Emulation(topology, LINK, dilation=dilation, gpu="ideal")
    with emu:
        t1 = time.perf_counter()
        lowest = mem_available()
        result = emu.run("allreduce", ALGORITHM, ALLREDUCE, iters=1, warmup=0, check=True,
                         prove=False)
        lowest = min(lowest, mem_available())
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return {"links": len(emu.topology.links), "interfaces": len(emu.plan.interfaces),
            "start_s": t1 - t0, "stop_s": t3 - t2, "total_s": t3 - t0,
            "memory_bytes": before - lowest, "allreduce_s": t2 - t1,
            "check": result.check}


def extrapolate(rows: list[dict], key: str, gpus: int) -> float:
    """`key` at `gpus` GPUs, growing as it did between the last two sizes: at least linearly,
    quadratically when only one size ran."""
    last, exponent = rows[-1], 2.0
    if len(rows) > 1 and rows[-2][key] > 0 and last[key] > 0:
        exponent = max(1.0, math.log(last[key] / rows[-2][key])
                       / math.log(last["gpus"] / rows[-2]["gpus"]))
    return last[key] * (gpus / last["gpus"]) ** exponent


def too_big(gpus: int, rows: list[dict]) -> str | None:
    """Why `gpus` is not tried, judged from the sizes that worked (None: try it)."""
    reasons = []
    seconds = extrapolate(rows, "total_s", gpus)
    if seconds > BUDGET_S:
        reasons.append(f"would take ~{seconds:.0f} s")
    need, free = extrapolate(rows, "memory_bytes", gpus), mem_available()
    if need > MEMORY_SHARE * free:
        reasons.append(f"would hold ~{need / 2**30:.1f} GiB of {free / 2**30:.1f} GiB "
                       "available")
    return " and ".join(reasons) or None


def measure(repeats: int = 1, sizes: tuple[int, ...] = tuple(SIZES)) -> list[dict]:
    rows: list[dict] = []
    for gpus in sizes:
        topology = SIZES.get(gpus, f"star:{gpus}")
        reason = too_big(gpus, rows) if rows else None
        if reason:
            rows.append({"gpus": gpus, "topology": topology, "outcome": f"not tried: {reason}"})
            break
        try:
            runs = [once(topology) for _ in range(repeats)]
        except (NetwallError, RuntimeError, OSError) as e:  # building or running failed
            rows.append({"gpus": gpus, "topology": topology, "outcome": f"failed: {e}"})
            break
        row = {"gpus": gpus, "topology": topology, "repeats": repeats, **runs[0]}
        for key in ("start_s", "stop_s", "total_s", "memory_bytes", "allreduce_s"):
            row[key] = statistics.median(r[key] for r in runs)
        worked = all(r["check"] for r in runs)
        rows.append({**row, "outcome": "ok" if worked else "failed: wrong all-reduce result"})
        if not worked:
            break
    return rows


def markdown(rows: list[dict]) -> str:
    out = []
    for r in rows:
        measured = [r["links"], r["interfaces"], f"{r['start_s']:.1f}",
                    f"{r['memory_bytes'] / 2**30:.2f}", f"{r['allreduce_s']:.1f}",
                    f"{r['stop_s']:.1f}"] if "start_s" in r else [""] * 6
        out.append((r["gpus"], r.get("topology", ""), *measured, r["outcome"]))
    largest = max((r["gpus"] for r in rows if r["outcome"] == "ok"), default=None)
    return "\n".join([
        md(("GPUs", "topology", "links", "interfaces", "start-up (s)", "memory (GiB)",
            "all-reduce, 64 KiB halving-doubling, 2 calls (s)", "teardown (s)", "outcome"),
           out, align="><>>>>>><"),
        "", f"Largest that worked: {largest} GPUs." if largest else "None worked."])


if __name__ == "__main__":
    print(markdown(measure()))
