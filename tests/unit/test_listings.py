"""The tables `netwall profiles`, `failures` and `reach` print, and a run's energy table."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emulator.cli.listings import energy_table, failures_table, profiles_table, reach_table
from emulator.models.energy import run_energy
from emulator.models.profiles import BUILTIN_DIR, load_profile
from emulator.models.reliability import fleet, simulate
from topologies.layout import Layout, reach_report


@pytest.fixture(scope="module")
def cat():
    """The shipped profiles only (not the developer's ~/.config/netwall)."""
    return {p.name: p for p in map(load_profile, sorted(BUILTIN_DIR.glob("*.yaml")))}


def test_profiles_table_lists_every_profile_by_family_and_rate(cat):
    lines = profiles_table(cat).splitlines()
    assert len(lines) == len(cat) + 2  # header, rule, one row each
    assert lines[0].split("  ")[0] == "name" and lines[0].endswith("AFR (/yr)")
    assert set(lines[1]) == {"-", " "}
    names = [line.split()[0] for line in lines[2:]]
    assert names == ["copper-800g", "copper-1.6t", "nvlink4", "nvlink5", "optical-800g",
                     "optical-1.6t", "wide-and-slow-800g", "wide-and-slow-1.6t"]
    ws = lines[2 + names.index("wide-and-slow-800g")]
    assert "400 x 2G (+16)" in ws and "5 ns/m + 100 ns" in ws and ws.endswith("3.20e-05")
    # numbers right-aligned: every row ends at the rule's end
    assert {len(line) for line in lines} == {len(lines[1])}


def test_failures_table_has_a_row_per_profile_and_the_total(cat):
    lines = failures_table(simulate(fleet(1000, {"optical-800g": 3.0}), cat, 7, 100,
                                    seed=0)).splitlines()
    assert lines[0].startswith("profile") and lines[0].endswith("interruptions")
    assert lines[2].startswith("optical-800g  ") and lines[2].split()[1] == "3000"
    assert "[" in lines[2]  # the Monte Carlo's spread
    assert lines[3].startswith("total  ") and " - " in lines[3]


def test_reach_table():
    catalogue = {n: SimpleNamespace(name=n, reach_m=r)
                 for n, r in (("copper-800g", 2.0), ("optical-800g", 500.0))}
    lines = reach_table(reach_report(16384, Layout(), catalogue)).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("profile") and "longest cable m" in lines[0]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["copper-800g", "2", "8", "8", "1", "1", "1.375", "no"]
    assert lines[3].split()[-1] == "yes" and lines[3].split()[3] == "16384"
    right = lines[0].index("longest cable m") + len("longest cable m")
    assert lines[2][right - 5:right] == "1.375"  # numbers end under their header


def test_energy_table_lists_profiles_and_totals(cat):
    text = energy_table(run_energy({"copper-800g": 1e9}, {"copper-800g": 2}, cat, 0.01, 10**9))
    lines = text.splitlines()
    assert lines[0].split() == ["profile", "joules", "share"]
    assert lines[2].startswith("copper-800g") and lines[2].endswith("100.0%")
    assert [line.split("  ")[0] for line in lines[3:]] == [
        "static (idle)", "dynamic (busy)", "total", "J per GB moved"]
