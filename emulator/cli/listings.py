"""The tables the pure commands print: `netwall profiles`, `failures`, `reach`, and a run's
energy. The models hand over data (profiles, Monte Carlo summaries, reach rows, an energy
report); here it is formatted (digits, units, order) and laid out by foundation.text.table.
"""

from __future__ import annotations

from collections.abc import Mapping

from emulator.models.endpoints import GpuProfile
from emulator.models.energy import EnergyReport
from emulator.models.profiles import FAMILIES, LinkProfile
from foundation.text.table import table
from foundation.units import format_size


def _g(x: float) -> str:
    """Short human number: 800 not 800.0, 0.25 not 0.250000."""
    return f"{x:.4g}"


def profiles_table(cat: Mapping[str, LinkProfile]) -> str:
    """The catalogue by family, rate and name: one row a profile, for `netwall profiles`."""
    rows = []
    for p in sorted(cat.values(), key=lambda p: (FAMILIES.index(p.family), p.rate_gbps, p.name)):
        lanes = f"{p.lanes} x {_g(p.lane_rate_gbps)}G"
        if p.spare_lanes:
            lanes += f" (+{p.spare_lanes})"
        rows.append((p.name, p.family, _g(p.rate_gbps), lanes, _g(p.reach_m),
                     f"{_g(p.delay_ns_per_m)} ns/m + {_g(p.fec_delay_ns)} ns",
                     f"{p.post_fec_ber:.1e}", _g(p.watts_per_end), _g(p.pj_per_bit),
                     f"{p.afr:.2e}"))
    return table(("name", "family", "rate (Gb/s)", "lanes x lane rate", "reach (m)",
                  "delay model", "post-FEC BER", "W/end", "pJ/bit", "AFR (/yr)"), rows,
                 align="<<>>>>>>>>")


def gpus_table(gpus: Mapping[str, GpuProfile],
               ranges: Mapping[str, list[tuple[str, int, int]]],
               nvls: Mapping[str, str], ranks: int) -> str:
    """One row per protocol of each GPU endpoint, with the sizes its cost model picks the
    protocol for (`ranges`, from emulator.models.alphabeta.protocol_ranges), and where NCCL's
    choice runs NVLS on that cluster (`nvls`, by GPU name), for `netwall gpus`. NVLS's
    data/wire is each link's share on the cluster's `ranks` GPUs (a bus share says so)."""
    rows = []
    for gpu in gpus.values():
        picked = {name: f"{format_size(first)} - {format_size(last)}"
                  for name, first, last in ranges.get(gpu.name, [])}
        reduce = f"{_g(gpu.reduce_gbytes_per_s)} GB/s" if gpu.reduce_gbytes_per_s else "free"
        for i, p in enumerate(gpu.protocols.values()):
            head = (gpu.name, _g(gpu.launch_us), reduce) if i == 0 else ("", "", "")
            rows.append((*head, p.name, _g(p.base_us), _g(p.step_us), f"{p.efficiency:.3f}",
                         picked.get(p.name, "never")))
        if gpu.nvls:  # NVLS's own terms (Simple's wire), its reduction the switch's
            n = gpu.nvls
            switch = (f"switch {_g(n.switch_reduce_gbytes_per_s)} GB/s"
                      if n.switch_reduce_gbytes_per_s else "switch free")
            share = f"{n.link_efficiency(ranks):.3f}" + (
                f" (bus {n.efficiency:g})" if n.scales_as == "bus" else "")
            rows.append(("", "", switch, "NVLS", _g(n.base_us), _g(n.step_us), share,
                         nvls.get(gpu.name, "--algorithm nvls (Simple)")))
    return table(("gpu", "launch (us)", "reduction", "protocol", "base (us)", "step (us)",
                  "data/wire", "picked for"), rows, align="<>><>>><")


def failures_table(result: Mapping[str, Mapping[str, float]]) -> str:
    """reliability.simulate (or expected) output: one row a profile, then the total; each
    figure with its 5th and 95th percentiles in brackets where the Monte Carlo gives them."""

    def fmt(row: Mapping[str, float], key: str) -> str:
        if key not in row:
            return "-"
        spread = f" [{row[key + '_p5']:.3g}, {row[key + '_p95']:.3g}]" if key + "_p5" in row \
            else ""
        return f"{row[key]:.3g}{spread}"

    rows = [(name, str(row["links"]) if "links" in row else "",
             fmt(row, "link_down_per_day"), fmt(row, "degradations_per_day"),
             fmt(row, "hours_between_interruptions"), fmt(row, "interruptions"))
            for name, row in result.items()]
    return table(("profile", "links", "link down/day", "degraded/day",
                  "h between interruptions", "interruptions"), rows, align="<>>>>>")


# reach_report key -> column title, format
_REACH_COLUMNS = (
    ("profile", "profile", "{}"),
    ("reach_m", "reach m", "{:g}"),
    ("in_rack", "GPUs in switch rack", "{}"),
    ("gpus", "domain GPUs", "{}"),
    ("racks", "racks", "{}"),
    ("full_racks", "full racks", "{}"),
    ("longest_m", "longest cable m", "{:.3f}"),
)


def reach_table(rows: list[dict]) -> str:
    """topologies.layout.reach_report rows: what each profile's reach spans, for `netwall
    reach`."""
    cells = [[fmt.format(row[key]) for key, _, fmt in _REACH_COLUMNS]
             + ["yes" if row["fits"] else "no"] for row in rows]
    return table([title for _, title, _ in _REACH_COLUMNS] + ["all fit"], cells,
                 align="<>>>>>><")


def energy_table(report: EnergyReport) -> str:
    """Joules by link profile with each one's share, then the run's totals."""
    rows = [(name, f"{joules:.4g}",
             f"{joules / report.total_joules:.1%}" if report.total_joules else "0.0%")
            for name, joules in report.joules_by_profile.items()]
    rows += [
        ("static (idle)", f"{report.static_joules:.4g}", ""),
        ("dynamic (busy)", f"{report.dynamic_joules:.4g}", ""),
        ("total", f"{report.total_joules:.4g}", ""),
        ("J per GB moved", f"{report.joules_per_gb:.4g}", ""),
    ]
    return table(("profile", "joules", "share"), rows, align="<>>")
