"""Run every benchmark and rewrite BENCHMARKS.md (`sudo ./netwall.sh bench`)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from bench import goodput, startup

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def main() -> None:
    start_rows = startup.measure(sizes=(8, 64), repeats=5)
    good = goodput.measure(repeats=5)
    machine = (f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    text = f"""# netwall benchmarks

Written by `sudo ./netwall.sh bench` (bench/run.py) on {datetime.date.today()}, {machine}.
Every figure is a median of several runs; every ratio compares two things measured in the
same run, interleaved, on the same machine. Rerun after touching the data plane, shaping or
the traffic engine.

## Start-up and teardown of an N-GPU star, with shaping (bench/startup.py)

netwall (Mininet hosts, veth pairs and bridges by netlink, routes and neighbours by one
`ip -batch` per host, htb shaping by netlink on both ends of every link) against plain
Mininet 2.3.0 with TCLink (bw=100 Mbit/s, a `tc` process per command) and LinuxBridge,
{start_rows[0]['repeats']} runs each.

{startup.markdown(start_rows)}

## Agent goodput on an unshaped pair, against iperf3 (bench/goodput.py)

Dilation 1 (the 800 Gb/s htb never binds), {good['repeats']} runs each, alternating.

{goodput.markdown(good)}
"""
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
