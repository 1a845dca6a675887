"""Run the benchmarks and write BENCHMARKS.md (`sudo ./netwall.sh bench`), every section or
some (`--only verdict,view`).

Each section of BENCHMARKS.md comes from one bench and says when it was measured and how
long that took, so a file rerun in parts says which parts are fresh. A run replaces the
sections it measured where they stand and keeps every other one as it was: the sections
measured by hand (no bench yet makes them) and the Vagrant box's, which bench/vm_userland.py
records on its own.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    algorithms,
    compare,
    efficiency,
    fidelity,
    goodput,
    importers,
    multihost,
    scale,
    scheduling,
    shaping,
    startup,
    validation,
    verdict,
    view,
)
from bench.sections import splice, stamped

OUT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def _validation() -> str:
    real = validation.measure(repeats=3)
    fits = validation.load()
    fit_joint = validation.fit(fits)
    fit_ar = validation.fit(fits, only="h100x8-allreduce-ring-8B-8G-together")
    fit_channels = validation.fit(fits, channel_gbps=validation.CHANNEL_GBPS)
    full = max(validation.H100_CHANNELS * validation.channel_bytes(p, 8)
               for p in validation.NCCL_RING_THREADS)
    bound_ag = validation.additive_bound(
        next(t for t in fits if t.name == "h100x8-allgather-ring-8B-8G-together"), least=full)[0]
    one_proc_ag = fit_joint["worst_by_table"]["h100x8-allgather-ring-32M-16G-1proc-xxrjun"]
    one_proc_rs = fit_joint["worst_by_table"]["h100x8-reducescatter-ring-32M-16G-1proc-xxrjun"]
    return f"""## Against real GPUs: published nccl-tests runs (bench/validation.py)

Real nccl-tests results on 8 x H100 SXM (NVLink 4 through NVSwitch, NCCL 2.26.2, ring),
copied from public sources into validation/ (each file names its URL, GPU, NCCL version
and algorithm), beside `netwall run --topology star:8 --link nvlink4 --gpu h100` of the
same collective, median of {real[0]['repeats']} runs of 3 iterations each, at the dilation
netwall chooses and proves. The published time is the faster of nccl-tests' out-of-place
and in-place columns (both real; one table has a documented out-of-place outlier at
512 KiB). `fit` tables set h100's fitted numbers (launch and step latency,
`python -m bench.validation --fit`); `check` tables were fitted to nothing: a second run
on the same node (NCCL_ALGO=RING NCCL_NVLS_ENABLE=0 set explicitly) and reduce-scatter on
that node. Target: busbw within 10% from 64 KiB up, the small-call floor (1 KiB) within 25%.
The sizes emulated stop at 64 MiB (bench/validation.py: larger ones take many minutes
each); on the model alone (`--fit`), which the emulation follows within its host error,
the worst error over every published size up to 1 GiB is
{fit_joint['worst_by_table']['h100x8-allreduce-ring-8B-8G-together']:.1%} for the all-reduce
table, and {fit_joint['worst_by_table']['h100x8-reducescatter-ring-128M-8G-nccl-issue1047']:.1%}
for reduce-scatter from 128 MiB to 1 GiB on another H100 server (NVIDIA/nccl issue 1047).

{validation.markdown_summary(real)}

{validation.markdown(real)}

Where it misses, and why. netwall follows its own model here as elsewhere (the `host`
column), so the misses are the model's: h100 is NCCL's own cost structure (a launch, a base
and a per-step latency, and a bandwidth share per protocol, the protocol picked by lowest
modelled time), and no choice of its two fitted numbers follows the published curves within
10% at every size. `python -m bench.validation --fit` searches them on the model alone:
fitted to the all-reduce and all-gather tables together, the worst busbw error is
{fit_joint['worst_error']:.1%}; fitted to the all-reduce table alone, {fit_ar['worst_error']:.1%}
(at launch {fit_ar['launch_us']:g} us). The published all-reduce is not monotone (1 MiB takes
longer than 2 MiB, where NCCL changes protocol), and from 2 to 16 MiB its time grows at about
320 GB/s of busbw, below the 370 GB/s it reaches from 64 MiB on; a model with one bandwidth per
protocol reads those sizes 10-14% slow. All-gather and reduce-scatter stay at a floor of
35-42 us from 1 KiB to 4 MiB, which the model reaches only at 4 MiB, so it reads 1 MiB
10-13% fast. NCCL's channel count per call does not explain it: NCCL 2.26 runs a ring call
on 8 x H100 on fewer than its 24 channels only below 768 KiB (src/enqueue.cc,
topoGetAlgoInfo), and with that count and a fitted bandwidth per channel
(`python -m bench.validation --channels`) the worst error stays
{fit_channels['worst_error']:.1%}. From 768 KiB on, no fixed cost plus bytes over one
bandwidth follows the all-gather within 10% with less than {bound_ag:.0f} GB/s of busbw, more
than NVLink 4's 450 GB/s: its floor must overlap the transfer (one process launches the
kernels of all 8 GPUs in these runs), which no endpoint term that adds time can do.

Runs launched one process per GPU, as training jobs run, fit better. The only such 8 x H100
ring tables found in public sources (xxrjun/nccl-tests-cluster, `srun`, NCCL 2.29.2,
all-gather and reduce-scatter from 32 MiB; validation/*-1proc-xxrjun.yaml, `check`) are
within {one_proc_ag:.1%} and {one_proc_rs:.1%} of the model at every size from 32 MiB to
1 GiB (`--fit`, model only). No public one-process-per-GPU ring all-reduce table from
64 KiB up was found (an IBM table's rows and a Mooncake table on H20 could not be read in
full; H200 and B200 runs found use NVLS or give only peaks), so whether the 10% target holds
for runs without the single-process launch cannot be checked here.
"""


def _verdict() -> str:
    table = verdict.dilation_table()
    default = verdict.default_run()
    return f"""## Trust at speed: the verdict and the dilation per call (bench/verdict.py)

netwall chooses each call's dilation D from this host's calibration (`netwall check`:
{verdict.calibration_line()}) and proves every result by timing it again at the next
1-2-5 dilation at least 2D; the share of the time the host added is the `host share`,
flagged above 2%. The error is against the alpha-beta model, exact for this call (the
model fidelity table below). Slowdown is wall time over emulated cluster time for the
size, beside this host's floor (the call's injection over the calibrated faithful capacity).

`netwall run --topology star:8 --link optical-800g --size 1M --size 16M --size 64M -n 5`,
at forced dilations and automatic:

{verdict.markdown_table(table)}

`netwall run --json` (three link profiles x 1, 4, 16 MiB: the sweep `netwall run` runs
when given any option) against the same command with `--dilation 5000`:

{verdict.markdown_default(default)}
"""


def _startup() -> str:
    start_rows = startup.measure(sizes=(8, 64, 256), repeats=3)
    return f"""## Start-up and teardown of an N-GPU star, with shaping (bench/startup.py)

netwall (Mininet hosts, switches in their own namespaces, veth pairs and bridges by
netlink, routes and neighbours by one `ip -batch` per host, htb shaping by netlink on both
ends of every link, eBPF loss filters) against plain
Mininet 2.3.0 with TCLink (bw=100 Mbit/s, a `tc` process per command) and LinuxBridge,
{start_rows[0]['repeats']} runs each. The last column is the whole `Emulation.start()`:
the network plus one agent per GPU, forked from one fork server (traffic/forkserver.py).

{startup.markdown(start_rows)}
"""


def _goodput() -> str:
    good = goodput.measure(repeats=5)
    return f"""## Agent goodput on an unshaped pair, against iperf3 (bench/goodput.py)

Dilation 1 (the 800 Gb/s htb never binds), {good['repeats']} runs each, alternating.

{goodput.markdown(good)}
"""


def _efficiency() -> str:
    eff = efficiency.measure(repeats=3)
    return f"""## Generator efficiency on an 8-GPU star, against iperf3 (bench/efficiency.py)

Unshaped (dilation 1). Agents: ring all-reduce, aggregate goodput 8 x 2(n-1)/n x size / time.
iperf3: 8 TCP flows at once, rank r -> r+1 (the same pattern), 3 s each. Medians of
{eff[0]['repeats']} runs, interleaved. Target: ratio >= 0.8.

{efficiency.markdown(eff)}

Per frame the agents pay what iperf3 pays per 64 KB write, plus the reduction (numpy) and
the Python around it. Where a ring's steps are short, latency sets the pace instead: at
1 MiB each rank runs 14 dependent steps of two frames, every step needs all eight agents
scheduled on two cores, and each transfer is acknowledged; iperf3's unbroken streams have
none of that.
"""


def _fidelity() -> str:
    fid = fidelity.measure(repeats=3)
    return f"""## Model fidelity (bench/fidelity.py)

Measured all-reduce time (median of {fid[0]['repeats']} runs of 3 iterations, star:8, ideal
endpoints: the links alone, the dilation netwall chooses per size, in column D) against the
alpha-beta model of the same schedule on the same topology, latency term included: this
kernel has no netem, so the agents hold each frame for its link delay. Target: within 5%
where bandwidth dominates, and ring within 1%.

{fidelity.markdown(fid)}

{fidelity.misses(fid)}
"""


def _shaping() -> str:
    shape = shaping.measure(repeats=3)
    return f"""## Shaping fidelity, 10 Mb/s to 10 Gb/s (bench/shaping.py)

One iperf3 TCP flow on a pair whose copper-800g cable is dilated to each rate
(D = 800 Gb/s / rate). iperf3's goodput is converted to the wire rate htb shapes (65014-byte
Ethernet frames carrying 64948 bytes of TCP payload) and compared with the configured rate.
Medians of {shape[0]['repeats']} runs, interleaved with an unshaped flow (dilation 1) measured
in the same run; a rate whose flow came within 10% of the unshaped one, or ran with the CPUs
over 90% busy (/proc/stat), is marked host-saturated rather than a miss. Target: within 2%.

{shaping.markdown(shape)}
"""


def _algorithms() -> str:
    algs = algorithms.measure(repeats=3)
    return f"""## Every collective and algorithm against the model (bench/algorithms.py)

Each algorithm of each collective, median of {algs[0]['repeats']} runs of 3 iterations on
copper-800g with ideal endpoints at the dilation netwall chooses per size: star:8, and
racks:2x4 for hierarchical all-reduce, which splits on racks. Measured against the
alpha-beta model of the same schedule on the same topology, latency term included.

{algorithms.markdown(algs)}

Where it strays, and why: pipelined ring broadcast and reduce read ~30% fast because timed
calls run back to back and overlap, as on real hardware, while the model counts each call's
pipeline fill anew. Tree all-reduce and the tree-rooted calls read 5-13% fast up to 1 MiB
and tree all-reduce up to 8% slow at 64 MiB (the fidelity table above). Likely, not yet
confirmed: a rank whose step only sends moves on once its frames are on its link (its
link then paces them: traffic.pacing), where the step-synchronous model waits for the
whole transfer; a tree has such steps, a ring does not. Before each call kept its own
timeline (2026-12-05) the same rows read -14% to +3.5%.
"""


def _compare() -> str:
    designs = compare.measure(repeats=3)
    return f"""## Cluster designs compared (bench/compare.py)

`netwall compare` on its default design file (what `netwall run` with no options prints,
emulator/experiments/designs.py): 8 GPUs in racks of 4 with 800G NICs, an 8 MiB ring
all-reduce over all 8, on copper (NVLink 5) domains of one rack, one copper domain over two
racks (refused: the cable is too long), and one domain over two racks on 9 optical or 9
wide-and-slow 800G cables per GPU; median of {designs['repeats']} runs of the whole command,
timed from outside. Target: about a minute on this 2-core machine.

{compare.markdown(designs)}
"""


def _scale() -> str:
    sizes = scale.measure()
    return f"""## The largest cluster on this machine (bench/scale.py)

Clusters of 64 GPUs and up, doubling (stars while one Linux bridge holds them all, which
takes at most 1023 ports; then racks), one run per size, at the build dilation: start-up
(network, shaping and one agent per GPU), memory held (MemAvailable before start-up less its
lowest while up, machine wide), a 64 KiB halving-doubling all-reduce over every GPU (one
timed and one checked call), teardown. A size is not tried when, extrapolated from the last
two, it would take over {scale.BUDGET_S:.0f} s or hold over {scale.MEMORY_SHARE:.0%} of the
memory available; nothing is tried past a failure. netwall's own limit is 1024 GPUs. The call
runs at the network's build dilation (what all GPUs injecting at once need here), unproven:
this table is about size, not speed.

{scale.markdown(sizes)}

The build dilation grows with the GPU count, which is why a 64 KiB call takes seconds of
wall time at 512 GPUs and more at 1024: the cluster runs at 1/D of its speed, and a late
agent is waited for, never lost (star:256 stalled at D 10,000 until a frame that reached
an agent before its program started was paced from that program's start).
"""


def _importers() -> str:
    imports = importers.measure(repeats=5)
    return f"""## Importers at n and 4n (bench/importers.py)

`netwall trace import`'s work (`convert` of an NCCL log, `convert_chakra` of .et files: read,
import, write and read back the trace) on inputs of size n and 4n, in CPU seconds of the
process, median of {imports[0]['repeats']} runs: the shapes a red team found quadratic in
issue 26 and a plain log. A ratio near 4 is linear, 16 quadratic; the unit tests count the
importers' executed lines instead (tests/unit/test_importer_bounds.py), which needs no
clock. Ratios a little over 4 for the largest inputs come from Python's memory at scale (its
garbage collector's passes grow with the objects alive), not from the importers' work.

{importers.markdown(imports)}
"""


def _multihost() -> str:
    return multihost.section(multihost.measure(repeats=3))


def _view() -> str:
    return view.section(view.measure(repeats=5))


def _scheduling() -> str:
    return scheduling.section(scheduling.measure(repeats=2))


#: Every bench that writes a section, in the file's order.
SECTIONS: dict[str, Callable[[], str]] = {
    "validation": _validation,
    "verdict": _verdict,
    "startup": _startup,
    "goodput": _goodput,
    "efficiency": _efficiency,
    "fidelity": _fidelity,
    "shaping": _shaping,
    "algorithms": _algorithms,
    "compare": _compare,
    "scale": _scale,
    "importers": _importers,
    "multihost": _multihost,
    "view": _view,
    "scheduling": _scheduling,
}


def preamble(machine: str) -> str:
    return f"""# netwall benchmarks

Written by `sudo ./netwall.sh bench` (bench/run.py) on {machine}.
Each section's heading says when it was measured and how long that took;
`./netwall.sh bench --only NAME[,NAME]` (NAME as in a heading's bench/NAME.py) measures
those sections again and keeps the others. Sections marked "by hand" have no bench yet.
Every figure is a median of several runs; every ratio compares two things measured in the
same run, interleaved, on the same machine. Rerun after touching the data plane, shaping or
the traffic engine.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netwall.sh bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated sections to measure again "
                        f"({', '.join(SECTIONS)}); default: all")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"netwall bench: no section {unknown[0]!r} (one of {', '.join(SECTIONS)})",
              file=sys.stderr)
        return 2
    day = datetime.date.today().isoformat()
    machine = (f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    for name in names:
        began = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        section = SECTIONS[name]()
        seconds = time.monotonic() - began
        print(f"bench: {name} took {seconds:.0f} s", file=sys.stderr, flush=True)
        fresh = stamped(section, f"bench/{name}.py", day, seconds)
        # Written after each section: a long run cut short keeps what it measured.
        OUT.write_text(splice(OUT.read_text() if OUT.exists() else "", [fresh],
                              preamble(machine)))
        print(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
