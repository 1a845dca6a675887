"""Campaigns end to end through the command, on real networks (root), and a run killed with
SIGKILL mid-way that resumes to exactly the full matrix."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.experiments.campaign import load
from tests.conftest import netwall

ROOT = Path(__file__).resolve().parents[2]


def stored(db: Path) -> tuple[int, int]:
    """(rows, distinct ids) in a results database, read while a runner may be writing."""
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM points").fetchone()
        except sqlite3.OperationalError:  # the table is not created yet
            return 0, 0


@pytest.mark.root
def test_smoke_campaign_end_to_end(tmp_path):
    db = tmp_path / "smoke.sqlite"
    run = netwall("campaign", "run", "campaigns/smoke.yaml", "--db", str(db))
    assert run.returncode == 0, run.stderr
    total = len(load(ROOT / "campaigns/smoke.yaml").ids())
    assert f"{total}/{total} points stored" in run.stdout
    assert f"{total}/{total} points" in run.stderr  # the progress bar
    status = netwall("campaign", "status", "campaigns/smoke.yaml", "--db", str(db))
    assert f"campaign smoke: {total}/{total} points done" in status.stdout
    again = netwall("campaign", "run", "campaigns/smoke.yaml", "--db", str(db))
    assert "0 measured, 0 skipped" in again.stdout

    out = tmp_path / "report"
    report = netwall("report", "--db", str(db), "--out", str(out))
    assert report.returncode == 0, report.stderr
    pngs = list(out.glob("*.png"))
    assert {p.stem for p in pngs} >= {"busbw-allreduce-ring", "time-vs-model", "energy"}
    assert all(p.stat().st_size > 1000 for p in pngs)
    assert "<img src='busbw-allreduce-ring.png'" in (out / "index.html").read_text()
    export = netwall("export", "--db", str(db), "--format", "csv")
    lines = export.stdout.strip().splitlines()
    assert len(lines) == 1 + total and all(",ok," in line for line in lines[1:])


KILLED = """\
name: killed
topologies: [pair]
links: [copper-800g]
gpus: [ideal]
sizes: [64K, 256K, 1M]
repetitions: 2
dilation: 20000
iters: 2
warmup: 0
"""


def wait_for_a_point(proc: subprocess.Popen, db) -> None:
    """Until the running campaign has stored its first point (at most 120 s)."""
    deadline = time.monotonic() + 120
    while stored(db)[0] < 1:
        assert proc.poll() is None, "the campaign ended before storing a point"
        assert time.monotonic() < deadline, "no point stored in 120 s"
        time.sleep(0.02)


@pytest.mark.root
def test_killed_campaign_resumes_to_the_full_matrix(tmp_path):
    spec = tmp_path / "killed.yaml"
    spec.write_text(KILLED)
    db = tmp_path / "killed.sqlite"
    full = load(spec).ids()
    assert len(full) == 6
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", "campaign", "run",
                             str(spec), "--db", str(db)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_a_point(proc, db)
    finally:
        proc.kill()  # SIGKILL: no teardown, no last words
        proc.wait()
    killed_at = stored(db)
    assert 1 <= killed_at[0] < 6 and killed_at[0] == killed_at[1]

    clean = netwall("clean")
    assert clean.returncode == 0, clean.stderr
    resume = netwall("campaign", "run", str(spec), "--db", str(db))
    assert resume.returncode == 0, resume.stderr
    assert f"{6 - killed_at[0]} measured" in resume.stdout
    assert stored(db) == (6, 6)
    with sqlite3.connect(db) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM points")}
    assert ids == full


@pytest.mark.root
def test_a_campaign_notes_and_stores_a_fault_that_did_not_strike(tmp_path):
    spec = tmp_path / "late.yaml"
    spec.write_text("name: late\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [64K]\n"
                    "iters: 1\nwarmup: 0\nfaults: [[\"down:gpu0--gpu1@1s\"]]\n")
    db = tmp_path / "late.sqlite"
    run = netwall("campaign", "run", str(spec), "--db", str(db))
    assert run.returncode == 0, run.stderr
    assert "down:gpu0--gpu1@1s did not strike" in run.stderr
    export = netwall("export", "--db", str(db), "--format", "csv")
    header, row = export.stdout.strip().splitlines()
    assert row.split(",")[header.split(",").index("not_struck")] == "down:gpu0--gpu1@1s"


@pytest.mark.root
def test_ctrl_c_during_a_campaign_is_one_line(tmp_path):
    """Ctrl-C signals the whole process group; only the controller may speak."""
    spec = tmp_path / "killed.yaml"
    spec.write_text(KILLED)
    db = tmp_path / "killed.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", "campaign", "run",
                             str(spec), "--db", str(db)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_a_point(proc, db)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "netwall: interrupted; the emulated network was " \
                                           "removed", err
    assert "Traceback" not in err and "Error" not in err, err
