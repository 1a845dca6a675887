"""Model fidelity: measured collective time against the alpha-beta model, by size.

With no loss, a bandwidth-dominated ring all-reduce should take what the model says: the
emulated links are the only bottleneck (the dilation netwall chooses per size, and proves,
keeps the host within 2% of it). Run on every link family with ideal endpoints (no GPU
costs: the links alone), latency term included: where the kernel has no netem the agents
hold each frame for its link delay (emulator.emulation.Emulation.routes).
"""

from __future__ import annotations

import statistics

from emulator import Emulation
from foundation.text.table import markdown as md
from foundation.units import format_size

FAMILIES = ("copper-800g", "optical-800g", "wide-and-slow-800g")
SIZES = (1 << 20, 16 << 20, 64 << 20)
ALGORITHMS = ("ring", "tree", "halving-doubling")


def measure(repeats: int = 3, topology: str = "star:8") -> list[dict]:
    rows = []
    for link in FAMILIES:
        with Emulation(topology, link, gpu="ideal") as emu:
            for algorithm in ALGORITHMS if link == FAMILIES[0] else ("ring",):
                for size in SIZES:
                    runs = [emu.run("allreduce", algorithm, size, iters=3, check=False)
                            for _ in range(repeats)]
                    time_s = statistics.median(r.time_s for r in runs)
                    model = runs[0].model_emulated_time_s
                    rows.append({"link": link, "algorithm": algorithm, "size": size,
                                 "dilation": runs[0].dilation, "time_s": time_s,
                                 "model_s": model,
                                 "error": time_s / model - 1, "repeats": repeats})
    return rows


def markdown(rows: list[dict]) -> str:
    return md(("link", "all-reduce", "size", "D", "measured (us)", "model (us)", "error"),
              [(r["link"], r["algorithm"], format_size(r["size"], spaced=True),
                f"{r['dilation']:g}", f"{r['time_s'] * 1e6:.1f}", f"{r['model_s'] * 1e6:.1f}",
                f"{r['error']:+.1%}") for r in rows])


def misses(rows: list[dict], least: int = 16 << 20, tolerance: float = 0.05) -> str:
    """One sentence naming the rows where bandwidth dominates (`least` bytes and up) that are
    off the model by more than `tolerance`, or saying there are none."""
    off = [r for r in rows if r["size"] >= least and abs(r["error"]) > tolerance]
    if not off:
        return (f"Every row from {format_size(least, spaced=True)} up is within "
                f"{tolerance:.0%} of the model.")
    named = "; ".join(f"{r['link']} {r['algorithm']} at {format_size(r['size'], spaced=True)}"
                      f" {r['error']:+.1%}" for r in off)
    return (f"Off by more than {tolerance:.0%} from {format_size(least, spaced=True)} up: "
            f"{named} (not yet explained).")


if __name__ == "__main__":
    print(markdown(measure()))
