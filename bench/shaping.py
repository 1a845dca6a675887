"""Shaping fidelity: the rate a shaped link carries under iperf3 against its configured rate.

Two GPUs on one copper-800g cable, dilated so that the cable's htb rate is the target
(D = 800 Gb/s / target), from 10 Mb/s to 10 Gb/s. iperf3 runs one TCP flow gpu0 -> gpu1
(3 s after a 1 s warm-up) and reports goodput; that is converted to the wire rate htb
shapes, Ethernet frames of 65014 bytes each carrying 65000 - 52 bytes of TCP payload (IPv4,
TCP and timestamp option headers), and compared with the configured rate. Target: within 2%.

A link can only be held to a rate the host can carry. Each repeat also measures one
unshaped flow (dilation 1: the 800 Gb/s htb never binds), and the CPUs' busy share from
/proc/stat during every shaped flow; a rate that came within 10% of the unshaped flow, or
ran with the CPUs over 90% busy, is reported as host-saturated rather than as a shaping miss.
"""

from __future__ import annotations

import statistics

from emulator import Emulation
from emulator.kernel.iperf3 import iperf3_flows
from emulator.models.plan import EMULATION_MTU, FRAME_BYTES
from emulator.models.profiles import catalogue
from emulator.models.verdict import CPU_SATURATED, cpu_times
from foundation.text.table import markdown as md
from foundation.units import format_rate

LINK = "copper-800g"
RATES = (10e6, 100e6, 1e9, 2.5e9, 5e9, 10e9)
TCP_HEADERS = 52  # IPv4 20 + TCP 20 + timestamp option 12 bytes in every full segment
TARGET = 0.02
NEAR_HOST = 0.9  # achieved at least this share of the unshaped flow: the host set the pace


def wire_bps(goodput_bps: float) -> float:
    """TCP goodput of full-sized segments as the Ethernet bytes per second htb counts."""
    return goodput_bps * FRAME_BYTES / (EMULATION_MTU - TCP_HEADERS)


def flow(dilation: float) -> tuple[int, float, float]:
    """One iperf3 flow on a pair at this dilation: configured rate (bit/s), achieved wire
    rate (bit/s) and the CPUs' busy share meanwhile."""
    with Emulation("pair", LINK, dilation=dilation) as emu:
        before = cpu_times()
        goodput = iperf3_flows([(emu.hosts[0], emu.hosts[1], emu.plan.ips["gpu1"])])
        after = cpu_times()
        configured = emu.plan.shapes[(0, "gpu0")].rate_bps
    return configured, wire_bps(goodput), (after[0] - before[0]) / (after[1] - before[1])


def measure(repeats: int = 3) -> list[dict]:
    link_bps = catalogue()[LINK].rate_gbps * 1e9
    unshaped, runs = [], {rate: [] for rate in RATES}
    for _ in range(repeats):  # interleaved, so drift in the machine's load hits every rate
        unshaped.append(flow(1)[1])
        for rate in RATES:
            runs[rate].append(flow(link_bps / rate))
    host_bps = statistics.median(unshaped)
    rows = []
    for rate, samples in runs.items():
        configured = samples[0][0]
        achieved = statistics.median(s[1] for s in samples)
        busy = statistics.median(s[2] for s in samples)
        rows.append({"configured_bps": configured, "dilation": link_bps / rate,
                     "achieved_bps": achieved, "error": achieved / configured - 1,
                     "cpu_busy": busy, "unshaped_bps": host_bps, "repeats": repeats,
                     "saturated": busy > CPU_SATURATED or achieved >= NEAR_HOST * host_bps})
    return rows


def markdown(rows: list[dict]) -> str:
    out = []
    for r in rows:
        if abs(r["error"]) <= TARGET:
            verdict = "yes"
        else:
            verdict = "host saturated" if r["saturated"] else "**miss**"
        out.append((format_rate(r["configured_bps"]), f"{r['dilation']:g}",
                    format_rate(r["achieved_bps"]), f"{r['error']:+.1%}", f"{r['cpu_busy']:.0%}",
                    format_rate(r["unshaped_bps"]),
                    "yes" if r["saturated"] else "no", verdict))
    return md(("configured", "D", "achieved (wire)", "error", "CPU busy", "unshaped flow (wire)",
               "host saturated", "within 2%"), out)


if __name__ == "__main__":
    print(markdown(measure()))
