"""`netwall campaign submit` through submitit's local executor: the same job array Slurm
would run, on this machine. Each task writes its own file; merge fills the SQLite store;
status and resume see both."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = """\
name: submitted
description: two groups of two points, small and fixed
topologies: {topologies}
links: [copper-800g]
collectives: [allreduce]
algorithms: [ring]
sizes: [64K, 128K]
gpus: [ideal]
dilation: 2000
repetitions: 1
iters: 2
warmup: 1
"""


def netwall(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def test_submit_runs_missing_points_as_an_array_and_merge_stores_them(tmp_path):
    first = tmp_path / "first.yaml"
    first.write_text(CAMPAIGN.format(topologies="[pair]").replace("submitted", "c"))
    whole = tmp_path / "c.yaml"
    whole.write_text(CAMPAIGN.format(topologies="[pair, 'ring:3']").replace("submitted", "c"))
    ran = netwall(tmp_path, "campaign", "run", str(first))  # the pair's points, stored as usual
    assert ran.returncode == 0, ran.stderr

    submitted = netwall(tmp_path, "campaign", "submit", str(whole), "--executor", "local",
                        "--wait")
    assert submitted.returncode == 0, submitted.stderr
    assert "1 task(s) submitted" in submitted.stdout  # only ring:3's group was missing
    assert "merged 2 new record(s) (0 stored already) from 1 task file(s); 4/4 points " \
        "stored" in submitted.stdout

    tasks = sorted((tmp_path / "results" / "c.slurm").glob("task-*.jsonl"))
    assert [len(t.read_text().splitlines()) for t in tasks] == [2]
    db = sqlite3.connect(tmp_path / "results" / "c.sqlite")
    records = [json.loads(r[0]) for r in db.execute("SELECT record FROM points")]
    assert len(records) == 4 and all(r["result"]["check"] is True for r in records)
    assert {r["point"]["topology"] for r in records} == {"pair", "ring:3"}

    again = netwall(tmp_path, "campaign", "submit", str(whole), "--executor", "local")
    assert again.returncode == 0 and "nothing to submit" in again.stdout
    status = netwall(tmp_path, "campaign", "status", str(whole))
    assert "4/4 points done" in status.stdout


def test_submit_without_slurm_is_one_line(tmp_path):
    whole = tmp_path / "c.yaml"
    whole.write_text(CAMPAIGN.format(topologies="[pair]"))
    run = netwall(tmp_path, "campaign", "submit", str(whole), "--executor", "slurm")
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "cannot submit to slurm" in run.stderr
