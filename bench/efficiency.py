"""Generator efficiency: the agents' aggregate goodput against iperf3 on the same network.

An unshaped 8-GPU star (dilation 1: the 800 Gb/s htb never binds), so software is the only
limit. The agents run ring all-reduce, in which every rank sends 2(n-1)/n of the buffer to
its ring neighbour; iperf3 runs the same pattern, 8 TCP flows rank r -> rank r+1, at once.
Both directions of the comparison use all 8 hosts and both CPU cores of this machine.
"""

from __future__ import annotations

import statistics

from emulator import Emulation
from emulator.kernel.iperf3 import iperf3_flows
from foundation.text.table import markdown as md
from foundation.units import format_size

GPUS = 8
SIZES = (1 << 20, 16 << 20, 64 << 20)


def measure(repeats: int = 3) -> list[dict]:
    rows = []
    with Emulation(f"star:{GPUS}", "copper-800g", dilation=1, gpu="ideal") as emu:
        for size in SIZES:
            agents, iperf = [], []
            for _ in range(repeats):
                r = emu.run("allreduce", "ring", size, iters=5, warmup=1, check=False,
                           prove=False)
                agents.append(GPUS * 2 * (GPUS - 1) / GPUS * size * 8 / r.time_s)
                iperf.append(iperf3_flows([
                    (h, emu.hosts[(r + 1) % GPUS], emu.plan.ips[emu.topology.gpus[(r + 1) % GPUS]])
                    for r, h in enumerate(emu.hosts)]))
            a, i = statistics.median(agents), statistics.median(iperf)
            rows.append({"size": size, "repeats": repeats, "agents_gbps": a / 1e9,
                         "iperf3_gbps": i / 1e9, "ratio": a / i})
    return rows


def markdown(rows: list[dict]) -> str:
    return md(("message size", "agents, ring all-reduce (Gb/s)", "iperf3, 8 TCP flows (Gb/s)",
               "ratio"),
              [(format_size(r["size"], spaced=True), f"{r['agents_gbps']:.2f}",
                f"{r['iperf3_gbps']:.2f}", f"{r['ratio']:.2f}") for r in rows])


if __name__ == "__main__":
    print(markdown(measure()))
