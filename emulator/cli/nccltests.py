"""`netwall run --format nccl-tests`: what nccl-tests (NVIDIA/nccl-tests, e.g. all_reduce_perf)
prints, so scripts written for its output read netwall's.

The format is nccl-tests 2.16's (src/common.cu), width for width: the `# nThread ...` line,
the `# Using devices` block (one line per rank, here the emulated GPU hosts), the two-line
column header with its out-of-place and in-place groups, one row per size
("%12li  %12li  %8s  %6s  %6s" then, per group, "  %7s  %6.2f  %6.2f  %5g", or "%5s" with
N/A when nothing was checked; the time with %7.2f below 100 us, %7.1f below 10 ms, %7.0f
above), and the footer: `# Out of bounds values : N OK|FAILED`, `# Avg bus bandwidth    : X `
(%g of the mean of every busbw printed, both groups) and a last `#`.

netwall measures each size once. Its agents move the same bytes in place and out of place
(one working buffer per rank), so the in-place columns repeat the out-of-place measurement,
and a header line beginning `# netwall:` says so. Pure: text from results, nothing else.
"""

# ruff: noqa: UP031 -- the %-formats are nccl-tests' own C format strings, kept verbatim so
# that every width can be held against its source.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emulator.result import RunResult
from traffic.schedule import PER_RANK, ROOTED

#: Program names nccl-tests gives its tests, per collective (its binaries' names).
PROGRAMS = {"allreduce": "all_reduce_perf", "reducescatter": "reduce_scatter_perf",
            "allgather": "all_gather_perf", "broadcast": "broadcast_perf",
            "reduce": "reduce_perf", "alltoall": "alltoall_perf", "sendrecv": "sendrecv_perf"}


@dataclass(frozen=True)
class Settings:
    """What the header says about a run: its sweep, iterations, check and devices."""

    collective: str
    algorithm: str
    topology: str
    link: str
    hosts: tuple[str, ...]  # the emulated GPU hosts, in rank order
    min_bytes: int
    max_bytes: int
    step_factor: float
    warmup: int
    iters: int
    check_iters: int  # nccl-tests' -c: 0 = no check
    root: int = 0  # broadcast and reduce only
    pid: int = 0  # the controller's process id (nccl-tests: one process drives every GPU)
    gpu: str = "ideal"  # the GPU endpoint profile every rank stands in for
    link_delay: str = ""  # how link delay is emulated (Emulation.delay_mechanism)


def header(s: Settings) -> list[str]:
    """The lines nccl-tests prints before its first row."""
    step = int(s.step_factor) if float(s.step_factor).is_integer() else s.step_factor
    lines = [f"# nThread 1 nGpus {len(s.hosts)} minBytes {s.min_bytes} maxBytes {s.max_bytes} "
             f"step: {step}(factor) warmup iters: {s.warmup} iters: {s.iters} agg iters: 1 "
             f"validation: {s.check_iters} graph: 0",
             "#",
             "# Using devices"]
    for rank, host in enumerate(s.hosts):
        lines.append("#  Rank %2d Group %2d Pid %6d on %10s device %2d [%04x:%02x:%02x] %s"
                     % (rank, 0, s.pid, host, rank, 0, rank % 256, 0,
                        f"netwall {s.gpu} GPU ({s.link})"))
    lines += [
        f"# netwall: {s.collective}/{s.algorithm} on {s.topology}, link {s.link}, emulated by "
        "netwall; times are real (undilated) times of the emulated cluster",
        f"# netwall: GPU endpoint {s.gpu}; link delay {s.link_delay or 'netem on every link'}",
        "# netwall: each size is measured once; its agents move the same bytes in place and "
        "out of place, so the in-place columns repeat the out-of-place measurement",
        "#",
        "# %10s  %12s  %8s  %6s  %6s           out-of-place                       "
        "in-place          " % ("", "", "", "", ""),
        "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s"
        % ("size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong",
           "time", "algbw", "busbw", "#wrong"),
        "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s"
        % ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)",
           "(GB/s)", ""),
    ]
    return lines


def time_text(time_us: float) -> str:
    """nccl-tests' time column: %7.2f below 100 us, %7.1f below 10 ms, %7.0f from there."""
    if time_us >= 10000.0:
        return "%7.0f" % time_us
    if time_us >= 100.0:
        return "%7.1f" % time_us
    return "%7.2f" % time_us


def count_of(r: RunResult) -> int:
    """nccl-tests' count column: elements per rank's part where the size is split among the
    ranks (reduce-scatter, all-gather, all-to-all), else the buffer's elements."""
    return r.count // r.ranks if r.collective in PER_RANK else r.count


def wrong_of(r: RunResult) -> int | None:
    """The #wrong column: 0 if the verified calls were right, the elements if not, None (N/A)
    if nothing was checked (nccl-tests' -c 0)."""
    if r.check is None:
        return None
    return 0 if r.check else count_of(r)


def row(r: RunResult, s: Settings) -> str:
    """One size: its columns, then the same measurement as out-of-place and in-place."""
    root = s.root if r.collective in ROOTED else -1
    text = "%12li  %12li  %8s  %6s  %6s" % (r.bytes, count_of(r), r.type, r.redop,
                                           "%6i" % root)
    wrong = wrong_of(r)
    group = ("  %7s  %6.2f  %6.2f  %5s" % (time_text(r.time_s * 1e6), r.algbw_gbps,
                                           r.busbw_gbps, "N/A") if wrong is None else
             "  %7s  %6.2f  %6.2f  %5g" % (time_text(r.time_s * 1e6), r.algbw_gbps,
                                           r.busbw_gbps, wrong))
    return text + group + group  # out-of-place, then in-place: one measurement (module doc)


def notes(r: RunResult) -> list[str]:
    """Comment lines after a row (scripts skip '#' lines): what made the result unfaithful."""
    return [f"# netwall: NOT FAITHFUL: {flag}" for flag in r.fidelity.get("flags", [])]


def footer(results: Sequence[RunResult]) -> list[str]:
    """The lines after the last row: wrong results (each size counts in both groups, as
    nccl-tests counts each test it checked), the mean busbw of every printed column, `#`."""
    errors = 2 * sum(1 for r in results if r.check is False)
    busbw = [r.busbw_gbps for r in results for _ in ("out-of-place", "in-place")]
    average = sum(busbw) / len(busbw) if busbw else float("nan")
    return ["# Out of bounds values : %d %s" % (errors, "FAILED" if errors else "OK"),
            "# Avg bus bandwidth    : %g %s" % (average, ""),
            "#"]


def report(results: Sequence[RunResult], s: Settings) -> str:
    """The whole output of one run, as nccl-tests prints it."""
    rows = [line for r in results for line in [row(r, s), *notes(r)]]
    return "\n".join(header(s) + rows + footer(results)) + "\n"
