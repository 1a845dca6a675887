"""Run every benchmark and rewrite BENCHMARKS.md (`sudo ./netwall.sh bench`)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from bench import efficiency, fidelity, goodput, startup

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def main() -> None:
    start_rows = startup.measure(sizes=(8, 64, 256), repeats=3)
    good = goodput.measure(repeats=5)
    eff = efficiency.measure(repeats=3)
    fid = fidelity.measure(repeats=3)
    machine = (f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    text = f"""# netwall benchmarks

Written by `sudo ./netwall.sh bench` (bench/run.py) on {datetime.date.today()}, {machine}.
Every figure is a median of several runs; every ratio compares two things measured in the
same run, interleaved, on the same machine. Rerun after touching the data plane, shaping or
the traffic engine.

## Start-up and teardown of an N-GPU star, with shaping (bench/startup.py)

netwall (Mininet hosts, switches in their own namespaces, veth pairs and bridges by
netlink, routes and neighbours by one `ip -batch` per host, htb shaping by netlink on both
ends of every link, eBPF loss filters) against plain
Mininet 2.3.0 with TCLink (bw=100 Mbit/s, a `tc` process per command) and LinuxBridge,
{start_rows[0]['repeats']} runs each.

{startup.markdown(start_rows)}

## Agent goodput on an unshaped pair, against iperf3 (bench/goodput.py)

Dilation 1 (the 800 Gb/s htb never binds), {good['repeats']} runs each, alternating.

{goodput.markdown(good)}

## Generator efficiency on an 8-GPU star, against iperf3 (bench/efficiency.py)

Unshaped (dilation 1). Agents: ring all-reduce, aggregate goodput 8 x 2(n-1)/n x size / time.
iperf3: 8 TCP flows at once, rank r -> r+1 (the same pattern), 3 s each. Medians of
{eff[0]['repeats']} runs, interleaved. Target: ratio >= 0.8.

{efficiency.markdown(eff)}

## Model fidelity (bench/fidelity.py)

Measured all-reduce time (median of {fid[0]['repeats']} runs of 3 iterations, star:8, default
dilation) against the alpha-beta model of the same schedule on the same topology. This
kernel has no netem, so the model's latency term is left out, as link delay is not
emulated. Target: within 5% where bandwidth dominates.

{fidelity.markdown(fid)}
"""
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
