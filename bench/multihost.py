"""One cluster over several hosts, against one host: namespace hosts on this machine
(emulator.remote.nshosts), each with its own sshd and worker, joined by veth NICs.

Two measurements. (1) racks:2x8 split over two hosts (one rack each, the rack1--spine0
cable in a VXLAN tunnel) and on this host alone, at one fixed dilation, interleaved: every
link's bytes (must be equal) and the median time of each size. (2) Start-up and teardown
of racks:3x8 over 1, 2 and 3 hosts (1: no SSH at all, as always).

`python -m bench.multihost` prints the section; bench/run.py appends it to BENCHMARKS.md.
"""

from __future__ import annotations

import os
import statistics
import time

from emulator import Emulation
from emulator.remote.nshosts import NamespaceHosts
from foundation.hostlist import parse_hosts
from foundation.text.table import markdown as md

LINK = "copper-800g"
#: netwall chooses 2,000 for both sizes on racks:2x8 alone (4 MiB after a retry at 1,000);
#: over two hosts the VXLAN tunnel's encapsulation adds to the host's share (4 MiB read
#: +2.3% at 2,000 and +0.0% at 5,000, 2026-12-06), and the comparison needs both faithful.
DILATION = 5000
SIZES = (4 << 20, 16 << 20)
ITERS = 3
NIC_GBPS = 100.0


def _emulation(topology: str, hosts: str | None) -> Emulation:
    return Emulation(topology, LINK, dilation=DILATION, gpu="ideal",
                     hosts=parse_hosts(hosts) if hosts else None, nic_gbps=NIC_GBPS)


def _split(bed: NamespaceHosts, repeats: int) -> list[dict]:
    """Per size: time alone and over two hosts (medians), and whether every link's bytes
    were equal in every pair of runs."""
    two = ",".join(bed.hosts.split(",")[:2])
    times: dict[tuple[int, str], list[float]] = {}
    equal = {size: True for size in SIZES}
    checks = {size: True for size in SIZES}
    for _ in range(repeats):
        links: dict[tuple[int, str], dict] = {}
        for where, hosts in (("one", None), ("two", two)):
            with _emulation("racks:2x8", hosts) as emu:
                for size in SIZES:
                    r = emu.run("allreduce", "ring", size, iters=ITERS, warmup=1, prove=False)
                    times.setdefault((size, where), []).append(r.time_s)
                    links[(size, where)] = {x.link: x.bytes for x in r.links}
                    checks[size] &= r.check is True
        for size in SIZES:
            equal[size] &= links[(size, "one")] == links[(size, "two")]
    rows = []
    for size in SIZES:
        one = statistics.median(times[(size, "one")])
        spread = statistics.median(times[(size, "two")])
        rows.append({"size": size, "one_us": one * 1e6, "two_us": spread * 1e6,
                     "diff": spread / one - 1, "bytes_equal": equal[size],
                     "check": checks[size], "repeats": repeats})
    return rows


def _startup(bed: NamespaceHosts, repeats: int) -> list[dict]:
    rows = []
    for count in (1, 2, 3):
        hosts = None if count == 1 else ",".join(bed.hosts.split(",")[:count])
        up, down = [], []
        for _ in range(repeats):
            emu = _emulation("racks:3x8", hosts)
            t0 = time.perf_counter()
            emu.start()
            t1 = time.perf_counter()
            emu.stop()
            up.append(t1 - t0)
            down.append(time.perf_counter() - t1)
        cross = len(emu.partition.cross_links()) if emu.partition else 0
        rows.append({"hosts": count, "gpus": 24, "cross": cross,
                     "start_s": statistics.median(up), "stop_s": statistics.median(down),
                     "repeats": repeats})
    return rows


def measure(repeats: int = 3) -> dict:
    bed = NamespaceHosts(3).start()
    saved = os.environ.get("NETWALL_SSH_CONFIG")
    os.environ.update(bed.env)
    try:
        return {"split": _split(bed, repeats), "startup": _startup(bed, repeats),
                "repeats": repeats}
    finally:
        if saved is None:
            os.environ.pop("NETWALL_SSH_CONFIG", None)
        else:
            os.environ["NETWALL_SSH_CONFIG"] = saved
        bed.stop()


def section(found: dict) -> str:
    split = md(["size", "one host (us)", "two hosts (us)", "difference", "bytes per link",
                "check"],
               [[f"{r['size'] >> 20} MiB", f"{r['one_us']:.1f}", f"{r['two_us']:.1f}",
                 f"{r['diff']:+.1%}", "equal" if r["bytes_equal"] else "DIFFER",
                 "ok" if r["check"] else "WRONG"] for r in found["split"]])
    start = md(["hosts", "GPUs", "cross-host cables", "start-up (s)", "teardown (s)"],
               [[r["hosts"], r["gpus"], r["cross"], f"{r['start_s']:.2f}",
                 f"{r['stop_s']:.2f}"] for r in found["startup"]])
    return f"""
## One cluster over several hosts (bench/multihost.py)

Namespace hosts on this machine (emulator.remote.nshosts): each a network namespace with
its own sshd and netwall worker, joined to the others by a veth NIC (MTU 65535), driven
over SSH (asyncssh) by the controller as real hosts would be. All share this machine's two
cores, so this measures the path (tunnels, SSH control, gathering), not the capacity more
machines would add.

racks:2x8 on {LINK} (spine optical-800g), ring all-reduce, ideal endpoints, dilation
{DILATION:,} (netwall chooses 2,000 on this host alone; over two hosts the VXLAN tunnel's
encapsulation adds to the host's share, which 2,000 leaves at +2.3% for 4 MiB): on this
host alone and split over two hosts (a rack each; the
rack1--spine0 cable through a VXLAN tunnel), built anew and run alternately, median of
{found['repeats']} runs of {ITERS} timed iterations. Targets: the same bytes on every link,
time within 2%.

{split}

Start-up (building every host's share at once, the tunnels, one agent per GPU, Setup to
every agent) and teardown of racks:3x8 (24 GPUs, a rack per host) over 1, 2 and 3 hosts,
median of {found['repeats']}; 1 host is the ordinary single-machine path, without SSH.

{start}

Largest cluster by number of hosts: not measured here, since namespace hosts share one
machine's CPUs and memory and so cannot raise the largest cluster it holds (the
scale section above). Each real host builds only its share (its GPUs' shells, agents, routes and
queues), so the largest cluster grows about with the number of hosts, up to the NIC
bound: the run refuses a dilation at which a host's cross-host cables could carry more
than its NIC (`--nic-gbps`).
"""


if __name__ == "__main__":
    print(section(measure()))
