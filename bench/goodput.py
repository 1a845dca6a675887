"""Agent goodput on an unshaped pair, against iperf3 on the same network in the same run.

"Unshaped": dilation 1 leaves the 800 Gb/s copper rate on the htb, far above what this host
moves, so software is the only limit: the agents' Python data plane (scapy-built frames sent
as bytes on AF_PACKET, received on UDP, reduced with numpy) against iperf3's TCP in C.
Both run both directions at once: a pair all-reduce sends S bytes each way; iperf3 --bidir.
"""

from __future__ import annotations

import statistics

from emulator import Emulation
from emulator.kernel.iperf3 import iperf3_flows
from foundation.text.table import markdown as md
from foundation.units import format_size

SIZE = 64 << 20


def measure(repeats: int = 3) -> dict:
    agents, iperf = [], []
    with Emulation("pair", "copper-800g", dilation=1, gpu="ideal") as emu:
        for _ in range(repeats):
            r = emu.run("allreduce", "ring", SIZE, iters=3, warmup=1, check=False,
                       prove=False)
            agents.append(2 * SIZE * 8 / r.time_s)  # S bytes each way per call
            iperf.append(iperf3_flows([(emu.hosts[0], emu.hosts[1], emu.plan.ips["gpu1"])],
                                      bidir=True))
    a, i = statistics.median(agents), statistics.median(iperf)
    return {"size": SIZE, "repeats": repeats, "agents_gbps": a / 1e9, "iperf3_gbps": i / 1e9,
            "ratio": a / i}


def markdown(r: dict) -> str:
    return md(("workload", "netwall agents (Gb/s)", "iperf3 --bidir TCP (Gb/s)", "ratio"),
              [(f"pair all-reduce, {format_size(r['size'], spaced=True)}, both directions",
                f"{r['agents_gbps']:.2f}", f"{r['iperf3_gbps']:.2f}", f"{r['ratio']:.2f}")])


if __name__ == "__main__":
    print(markdown(measure()))
