"""`netwall compare` end to end on a real network: a small design file, its JSON, the
store it keeps, and a rerun that resumes from the store without building anything."""

from __future__ import annotations

import json

import pytest

from tests.conftest import netwall

pytestmark = pytest.mark.root

DESIGNS = """\
name: tiny
iters: 1
warmup: 0
probe: false
layout: gpus=2
workloads:
  - {name: ar, collective: allreduce, sizes: [256K]}
designs:
  - {name: copper, scale_up: nvlink5, domains: 2, domain_gpus: 2}
  - {name: copper-far, scale_up: nvlink5, domains: 1, domain_gpus: 4}
  - {name: w-and-s, scale_up: {profile: wide-and-slow-800g, cables: 9}, domains: 1,
     domain_gpus: 4}
"""


def test_compare_runs_stores_and_resumes(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(DESIGNS)
    db = tmp_path / "tiny.sqlite"
    done = netwall("compare", str(spec), "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    assert [(r["design"], r["feasible"]) for r in rows] == [
        ("copper", True), ("copper-far", False), ("w-and-s", True)]
    for r in (rows[0], rows[2]):
        assert r["time_s"] > 0 and r["busbw_gbps"] > 0 and r["energy_j"] > 0
        assert r["faithful"] is None and r["host_error"] is None  # probe: false
        assert r["dilation"] >= 1  # where it was measured, to look at it again
    assert rows[1]["time_s"] is None and "gpu2--nvs0" in rows[1]["reason"]
    assert rows[1]["dilation"] is None
    assert rows[0]["scale_up_failure"] == "stall" and rows[2]["scale_up_failure"] == "-0%"
    again = netwall("compare", str(spec), "--json", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == rows  # read back, to the last digit: resumed
    table = netwall("compare", str(spec), "--db", str(db))
    assert table.returncode == 0, table.stderr
    table_part, verdict = table.stdout.split("# verdict:\n")
    assert "copper-far: nvlink5 cannot cable" in table_part
    fastest = min((r for r in rows if r["feasible"]), key=lambda r: r["time_s"])["design"]
    assert f"{fastest} is fastest" in verdict and "copper-far does not fit: nvlink5" in verdict
