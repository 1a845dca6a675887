"""Start-up and teardown of an N-GPU star: netwall against plain Mininet with TCLink.

Both build the same thing: N hosts on one Linux bridge, every link shaped. Plain Mininet
shapes with TCLink (a `tc` process per command, bw capped at 1000 Mbit/s, so it gets
100 Mbit/s); netwall shapes every link end through netlink at the profile's dilated rate.
"""

from __future__ import annotations

import statistics
import time

from emulator import Emulation
from emulator.kernel.network import Network
from foundation.text.table import markdown as md


def netwall_once(gpus: int) -> tuple[float, float]:
    emu = Emulation(f"star:{gpus}", "copper-800g")
    network = Network(emu.plan, netem=emu.capabilities.netem)
    t0 = time.perf_counter()
    network.start()
    t1 = time.perf_counter()
    network.stop()
    return t1 - t0, time.perf_counter() - t1


def ready_once(gpus: int) -> float:
    """Until a run can start: the network and one agent per GPU (Emulation.start)."""
    emu = Emulation(f"star:{gpus}", "copper-800g")
    t0 = time.perf_counter()
    with emu:
        return time.perf_counter() - t0


def mininet_once(gpus: int) -> tuple[float, float]:
    from mininet.link import TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge
    from mininet.topo import SingleSwitchTopo

    setLogLevel("error")
    t0 = time.perf_counter()
    net = Mininet(topo=SingleSwitchTopo(gpus, bw=100), link=TCLink, switch=LinuxBridge,
                  controller=None, autoSetMacs=True, waitConnected=False)
    net.start()
    t1 = time.perf_counter()
    net.stop()
    return t1 - t0, time.perf_counter() - t1


def measure(sizes=(8, 64), repeats: int = 3) -> list[dict]:
    rows = []
    for gpus in sizes:
        runs = {"netwall": [], "mininet": []}
        ready = []
        for _ in range(repeats):  # interleaved, so drift in the machine hits both alike
            runs["netwall"].append(netwall_once(gpus))
            runs["mininet"].append(mininet_once(gpus))
            ready.append(ready_once(gpus))
        row = {"gpus": gpus, "repeats": repeats, "ready_s": statistics.median(ready)}
        for name, samples in runs.items():
            row[f"{name}_start_s"] = statistics.median(s for s, _ in samples)
            row[f"{name}_stop_s"] = statistics.median(t for _, t in samples)
        row["start_speedup"] = row["mininet_start_s"] / row["netwall_start_s"]
        row["stop_speedup"] = row["mininet_stop_s"] / row["netwall_stop_s"]
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    return md(("GPUs", "netwall start (s)", "Mininet+TCLink start (s)", "start speed-up",
               "netwall stop (s)", "Mininet stop (s)", "stop speed-up",
               "netwall with agents, ready to run (s)"),
              [(r["gpus"], f"{r['netwall_start_s']:.2f}", f"{r['mininet_start_s']:.2f}",
                f"{r['start_speedup']:.1f}x", f"{r['netwall_stop_s']:.2f}",
                f"{r['mininet_stop_s']:.2f}", f"{r['stop_speedup']:.1f}x", f"{r['ready_s']:.2f}")
               for r in rows])


if __name__ == "__main__":
    print(markdown(measure()))
