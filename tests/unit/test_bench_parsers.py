"""Every bench that reads what a netwall command prints reads what it prints today: each
parser is fed the output of the CLI's own formatting code (its table printer, or the JSON
of its result types), never a copy that would go stale when a column is added."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bench import compare as compare_bench
from bench import verdict as verdict_bench
from bench import vm_report
from emulator.cli import tables
from emulator.experiments.compare import Row
from emulator.result import Attempt, RunResult


def _result(fidelity: dict, check: bool | None = True) -> RunResult:
    t = 18.4e-6
    return RunResult(
        collective="allreduce", algorithm="ring", ranks=2, bytes=1 << 20, count=1 << 18,
        type="float", redop="sum", iters=5, time_s=t, algbw_gbps=57.0, busbw_gbps=57.0,
        model_time_s=18.35e-6, model_emulated_time_s=18.35e-6, model_error=0.003, gpu="ideal",
        protocol="Simple", check=check, retransmitted_bytes=0, retransmitted_frames=0,
        faults=[], faults_not_struck=[], dilation=2000.0,
        dilation_attempts=[Attempt(1000.0, t, 0.032, False), Attempt(2000.0, t, 0.004, True)],
        fidelity=fidelity, wall_s=2.1, emulated_s=1e-4, slowdown=21000.0,
        slowdown_floor=300.0, energy_j=1e-6, energy_by_profile_j={}, joules_per_gb=0.028,
        links=[], link="copper-800g", topology="pair")


PROVEN = {"faithful": True, "host_error": 0.004, "flags": []}
FLAGGED = {"faithful": False, "host_error": 0.259, "flags": ["host software added 25.9%"]}


def _printed_run(capsys, fidelity: dict, check: bool | None = True) -> str:
    """What `netwall run` prints today for one row (the CLI's own table code), with a
    retry line and its cost line."""
    emu = SimpleNamespace(topology=SimpleNamespace(name="pair", gpus=["gpu0", "gpu1"], nvls=()),
                          link="copper-800g", fixed_dilation=None, delay_mechanism="agents",
                          tolerance=0.02, gpu=SimpleNamespace(name="ideal", protocols=["Simple"]),
                          host=SimpleNamespace(capacity_gbps=1.5))
    args = SimpleNamespace(algorithm=None, collective="allreduce", prove=True)
    result = _result(fidelity, check)
    print("netwall: note: this kernel has no netem")
    tables.print_header(args, emu)
    tables.print_row(result)
    tables.print_cost([result], emu)
    return capsys.readouterr().out


def test_the_userland_bench_reads_the_run_table(capsys):
    proven = _printed_run(capsys, PROVEN)
    assert proven.strip().splitlines()[-1].startswith("# cost:")  # the last line is no row
    assert vm_report.ran(proven) == \
        "1048576 262144 float 18.40 ... ok, D 2000, host +0.4%, faithful"
    assert vm_report.ran(_printed_run(capsys, FLAGGED)).endswith("host +25.9%, NOT FAITHFUL")
    for spoiled in (False, None):
        with pytest.raises(vm_report.Failed, match="did not verify"):
            vm_report.ran(_printed_run(capsys, PROVEN, check=spoiled))
    with pytest.raises(vm_report.Failed, match="did not verify"):
        vm_report.ran("netwall: collective failed\n")


def test_the_verdict_bench_reads_run_json():
    printed = json.dumps({"settings": {}, "results": [_result(PROVEN).to_dict(),
                                                      _result(FLAGGED).to_dict()]})
    rows = verdict_bench.rows_of(json.loads(printed))
    assert [(r["size"], r["dilation"], r["faithful"], r["attempts"]) for r in rows] == \
        [(1 << 20, 2000.0, True, [1000.0, 2000.0]), (1 << 20, 2000.0, False, [1000.0, 2000.0])]
    assert [verdict_bench.honest(r) for r in rows] == [True, True]  # +0.3% off the model
    assert not verdict_bench.honest(dict(rows[0], error=0.05))  # faithful but 5% off: a lie
    text = verdict_bench.markdown_default({
        "repeats": 2, "auto_s": 19.0, "fixed_s": 64.0, "auto_walls": [18.5, 19.5],
        "fixed_walls": [63.9, 64.1], "auto_rows": rows[:1], "fixed_rows": rows[:1]})
    assert "Speed-up: 3.4x (2 runs of each, interleaved: 18.5, 19.5 s against 63.9, 64.1 s)" \
        in text
    assert "| 0 of 1 |" in text and "1 MiB at 2000" in text


def test_the_compare_bench_reads_compare_json():
    def row(design: str, time_s: float | None, feasible: bool = True) -> dict:
        printed = Row(workload="tp-allreduce", size=8 << 20, design=design, gpus=8, domains=1,
                      domain_gpus=8, racks_per_domain=2, scale_up="nvlink5",
                      scale_out="optical-800g", feasible=feasible,
                      reason=None if feasible else "too long", time_s=time_s,
                      busbw_gbps=None if time_s is None else 100.0,
                      energy_j=None if time_s is None else 0.1, watts_per_gpu=127.0,
                      failures_per_day=1.76, stalls_per_day=1.76, scale_up_failure="stall",
                      scale_out_failure="stall", faithful=True if feasible else None)
        return json.loads(json.dumps({"rows": [printed.to_dict()]}))["rows"][0]

    found = {"repeats": 2, "walls": [40.0, 42.0],
             "runs": [[row("a", 60e-6), row("b", None, False)],
                      [row("a", 62e-6), row("b", None, False)]]}
    text = compare_bench.markdown(found)
    assert "61.0" in text and "2 of 2" in text  # median time, faithful count
    assert "| b " in text and "| no " in text
    assert "median 41 s" in text
