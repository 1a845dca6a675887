"""Every algorithm of every collective against the alpha-beta model, by size.

bench/fidelity.py holds all-reduce to the model on each link family; this holds every
schedule netwall has (traffic.schedule.ALGORITHMS) to it, on copper-800g at the default
dilation: on star:8, except hierarchical all-reduce, which splits on racks and so runs on
racks:2x4 (two racks of four GPUs joined through a spine on optical-800g), and a send, which
is between two ranks and so runs on a pair. As in
fidelity.py the endpoints are ideal (`gpu="ideal"`): the links alone against their model,
latency term included (held by the agents where the kernel has no netem). NVLS is the
exception: an ideal endpoint has no NVLS terms (no switch that reduces), so NVLS runs with
h100's, which the model adds too. Sizes go from latency-bound (64 KiB) to bandwidth-bound
(8 MiB; at 16 MiB and more, where a call takes seconds of dilated time, fidelity.py follows
all-reduce).
"""

from __future__ import annotations

import statistics

from emulator import Emulation
from foundation.text.table import markdown as md
from foundation.units import format_size
from traffic.schedule import ALGORITHMS

LINK = "copper-800g"
STAR, RACKS, PAIR = "star:8", "racks:2x4", "pair"
RACKS_ONLY = ("hierarchical",)
PAIR_ONLY = ("send",)  # collectives of exactly two ranks
#: The endpoints an algorithm runs with: ideal (the links alone), but NVLS needs a GPU whose
#: switch reduces.
ENDPOINTS = {"nvls": "h100"}
SIZES = (64 << 10, 1 << 20, 8 << 20)


def setup_for(collective: str, algorithm: str) -> tuple[str, str]:
    """(topology, GPU endpoint) a collective's algorithm is measured on."""
    topology = (PAIR if collective in PAIR_ONLY else RACKS if algorithm in RACKS_ONLY
                else STAR)
    return topology, ENDPOINTS.get(algorithm, "ideal")


def measure(repeats: int = 3) -> list[dict]:
    rows = []
    setups = dict.fromkeys(setup_for(c, a) for c, algs in ALGORITHMS.items() for a in algs)
    for topology, gpu in setups:
        with Emulation(topology, LINK, gpu=gpu) as emu:
            for collective, algorithms in ALGORITHMS.items():
                for algorithm in algorithms:
                    if setup_for(collective, algorithm) != (topology, gpu):
                        continue
                    for size in SIZES:
                        runs = [emu.run(collective, algorithm, size, iters=3, check=False)
                                for _ in range(repeats)]
                        time_s = statistics.median(r.time_s for r in runs)
                        model = runs[0].model_emulated_time_s
                        rows.append({"collective": collective, "algorithm": algorithm,
                                     "gpu": gpu, "topology": topology, "size": size,
                                     "dilation": runs[0].dilation, "time_s": time_s,
                                     "model_s": model, "error": time_s / model - 1,
                                     "repeats": repeats})
    order = list(ALGORITHMS)  # sorted() is stable: hierarchical follows the other all-reduces
    return sorted(rows, key=lambda r: order.index(r["collective"]))


def markdown(rows: list[dict]) -> str:
    return md(("collective", "algorithm", "topology", "size", "D", "measured (us)", "model (us)",
               "error"),
              [(r["collective"], r["algorithm"] + ("" if r["gpu"] == "ideal" else
                                                   f" ({r['gpu']} endpoints)"),
                r["topology"], format_size(r["size"], spaced=True),
                f"{r['dilation']:g}", f"{r['time_s'] * 1e6:.1f}", f"{r['model_s'] * 1e6:.1f}",
                f"{r['error']:+.1%}") for r in rows])


if __name__ == "__main__":
    print(markdown(measure()))
