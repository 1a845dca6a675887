"""The table of `netwall compare` (and of `netwall run` with no options): one row per
design and workload, with what the links cost beside what the workload measured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.experiments import findings
from foundation.text.table import table
from foundation.units import format_size

if TYPE_CHECKING:  # the comparison itself imports the emulation: only when one runs
    from emulator.experiments.compare import Row
    from emulator.experiments.designs import DesignFile

COLUMNS = ("design", "scale-up", "domain", "fits", "time(us)", "busbw(GB/s)", "exposed",
           "J/step", "W/GPU", "fails/day", "stalls/day", "up fails", "NIC fails")


def header(file: DesignFile, delay: str | None) -> list[str]:
    """What was compared, and how to read the columns."""
    lines = [f"# netwall compare: {file.name}, {len(file.designs)} designs of "
             f"{file.designs[0].cluster.domains * file.designs[0].cluster.domain_gpus} GPUs, "
             f"GPU endpoint {file.gpu}"]
    if file.description:
        lines.append(f"# {' '.join(file.description.split())}")
    if delay:
        lines.append(f"# link delay: {delay}")
    lines += [
        "# domain: GPUs x racks of one scale-up domain; fits: every cable within its reach; "
        "time: one call (a collective) or one step (a workload), real units; exposed: a "
        "workload's communication on its critical path, share of the step",
        "# J/step: the links' energy per call or step; W/GPU: every link's power over the "
        "GPUs (each end's SerDes plus what its cable carries); fails/day, stalls/day: link "
        f"failures and link-down events at {file.fleet_gpus:,} GPUs cabled alike",
        "# up fails, NIC fails: what one lane or channel lost does: stall (the link is down "
        "until repair) or the capacity it costs (-0%: a spare absorbed it)",
    ]
    return lines


def render(rows: list[Row]) -> str:
    """One table per workload (and size), then why each infeasible design is."""
    out = []
    for key in dict.fromkeys((r.workload, r.size) for r in rows):
        mine = [r for r in rows if (r.workload, r.size) == key]
        size = f" at {format_size(key[1])}" if key[1] is not None else ""
        out.append(f"## {key[0]}{size}")
        out.append(table(COLUMNS, [_cells(r) for r in mine]))
        ran = [f"{r.design} {r.algorithm}" + (f" ({r.why})" if r.why else "")
               for r in mine if r.algorithm]
        if ran:  # NCCL's choice per design (issue 28): NVLS where the domain's switch reduces
            out.append(f"# algorithm: {', '.join(ran)}")
        for r in mine:
            if not r.feasible:
                out.append(f"# {r.reason}")
            elif r.faithful is False:
                out.append(f"# {r.design}: NOT FAITHFUL (the host distorted this result; see "
                           "--json)")
    return "\n".join(out)


def _cells(r: Row) -> list[object]:
    measured = r.time_s is not None
    return [r.design, r.scale_up, f"{r.domain_gpus} x {r.racks_per_domain} racks",
            "yes" if r.feasible else "no",
            f"{r.time_s * 1e6:.1f}" if measured else "-",
            f"{r.busbw_gbps:.1f}" if measured and r.busbw_gbps is not None else "-",
            f"{r.exposed_share:.0%}" if measured and r.exposed_share is not None else "-",
            f"{r.energy_j:.3g}" if measured else "-",
            f"{r.watts_per_gpu:.0f}", f"{r.failures_per_day:.2f}", f"{r.stalls_per_day:.2f}",
            r.scale_up_failure, r.scale_out_failure]


def verdict(rows: list[Row]) -> list[str]:
    """The answer the table ends with: who wins, by how much, at what power and stall rate,
    what does not fit, and whether the times are proven (one measurement per design: a
    comparison has no repetitions to spread)."""
    said = findings.designs([r.to_dict() for r in rows])
    if any(r.time_s is not None for r in rows):
        said.append("Each time is one measurement (the mean of its iterations): a comparison "
                    "has no repetitions, so ratios within a few percent are not a ranking.")
    return ["# verdict:"] + [f"#   {line}" for line in said]
