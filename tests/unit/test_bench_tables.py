"""The benchmark tables, from hand-made rows (no root, no network)."""

from __future__ import annotations

from bench import algorithms, scale, shaping, view


def shaping_row(error: float, saturated: bool) -> dict:
    return {"configured_bps": 1e9, "dilation": 800, "achieved_bps": 1e9 * (1 + error),
            "error": error, "cpu_busy": 0.5, "unshaped_bps": 20e9, "repeats": 3,
            "saturated": saturated}


def test_shaping_table_says_saturated_instead_of_miss():
    lines = shaping.markdown([shaping_row(-0.01, False), shaping_row(-0.05, True),
                              shaping_row(-0.05, False)]).splitlines()
    assert lines[2] == ("| 1.000 Gb/s | 800 | 990.00 Mb/s | -1.0% | 50% | 20.000 Gb/s | no | "
                        "yes |")
    assert lines[3].endswith("| -5.0% | 50% | 20.000 Gb/s | yes | host saturated |")
    assert lines[4].endswith("| no | **miss** |")


def test_shaping_wire_rate_counts_headers():
    # a full segment: 65000 - 52 bytes of payload in a 65014-byte frame
    assert shaping.wire_bps(64948 * 8) == 65014 * 8


def test_algorithms_table_formats_sizes_and_errors():
    row = {"collective": "allreduce", "algorithm": "hierarchical", "gpu": "ideal",
           "topology": "racks:2x4",
           "size": 64 << 10, "dilation": 5000.0, "time_s": 1.26e-6, "model_s": 1.2e-6,
           "error": 0.05, "repeats": 3}
    big = {**row, "size": 8 << 20, "error": -0.1234}
    lines = algorithms.markdown([row, big]).splitlines()
    assert lines[2] == ("| allreduce | hierarchical | racks:2x4 | 64 KiB | 5000 | 1.3 | 1.2 | "
                        "+5.0% |")
    assert lines[3].startswith("| allreduce | hierarchical | racks:2x4 | 8 MiB |")
    assert lines[3].endswith("| -12.3% |")
    assert algorithms.setup_for("allreduce", "hierarchical") == ("racks:2x4", "ideal")
    assert algorithms.setup_for("allreduce", "ring") == ("star:8", "ideal")
    nvls = {**row, "algorithm": "nvls", "gpu": "h100", "topology": "star:8"}
    assert "| allreduce | nvls (h100 endpoints) | star:8 |" in algorithms.markdown([nvls])


def test_every_algorithm_has_a_setup_it_can_run_on():
    """The bench stopped on NVLS with ideal endpoints (no switch that reduces) and on a send
    over 8 ranks (a send is between two): each schedule builds on its setup's ranks, and an
    NVLS one has a GPU whose switch reduces."""
    from emulator.models.endpoints import get_gpu
    from topologies import parse
    from traffic.schedule import ALGORITHMS, build

    for collective, names in ALGORITHMS.items():
        for name in names:
            topology, gpu = algorithms.setup_for(collective, name)
            ranks = len(parse(topology, algorithms.LINK).gpus)
            if name in algorithms.RACKS_ONLY:  # built from the racks' groups, on racks
                assert topology.startswith("racks:")
                continue
            for size in algorithms.SIZES:
                assert build(collective, name, ranks, size).steps
            assert name != "nvls" or get_gpu(gpu).nvls is not None


def test_scale_table_names_the_largest_that_worked():
    ok = {"gpus": 64, "topology": "star:64", "links": 64, "interfaces": 128, "start_s": 12.34,
          "stop_s": 0.5, "memory_bytes": 2 << 30, "allreduce_s": 3.0, "check": True,
          "outcome": "ok"}
    rows = [ok, {**ok, "gpus": 128, "links": 128, "interfaces": 256},
            {"gpus": 256, "topology": "star:256",
             "outcome": "failed: agent of rank 7 did not answer in time"}]
    lines = scale.markdown(rows).splitlines()
    assert lines[2] == "| 64 | star:64 | 64 | 128 | 12.3 | 2.00 | 3.0 | 0.5 | ok |"
    assert lines[4] == ("| 256 | star:256 | | | | | | | failed: agent of rank 7 did not "
                        "answer in time |")
    assert lines[-1] == "Largest that worked: 128 GPUs."
    assert scale.markdown([rows[2]]).splitlines()[-1] == "None worked."


def test_scale_extrapolates_and_stops_before_a_size_that_would_not_fit(monkeypatch):
    monkeypatch.setattr(scale, "mem_available", lambda: 10 << 30)
    first = {"gpus": 64, "total_s": 10.0, "memory_bytes": 1 << 30}
    assert scale.too_big(128, [first]) is None  # quadratic from one size: 40 s, 4 GiB
    assert scale.too_big(128, [{**first, "total_s": 40.0}]) == "would take ~160 s"
    assert scale.too_big(256, [{**first, "total_s": 40.0}]) == (
        "would take ~640 s and would hold ~16.0 GiB of 10.0 GiB available")
    rows = [first, {"gpus": 128, "total_s": 20.0, "memory_bytes": 4 << 30}]
    assert scale.extrapolate(rows, "total_s", 256) == 40.0  # grew linearly
    assert scale.too_big(256, rows) == "would hold ~16.0 GiB of 10.0 GiB available"
    shrinking = [first, {"gpus": 128, "total_s": 5.0, "memory_bytes": 1 << 30}]
    assert scale.extrapolate(shrinking, "total_s", 256) == 10.0  # never below linear


def test_compare_table_takes_medians_and_keeps_infeasible_rows():
    from bench import compare

    def row(design, time_s, feasible=True):
        return {"workload": "tp", "design": design, "scale_up": "nvlink5", "domain_gpus": 4,
                "racks_per_domain": 1, "feasible": feasible, "time_s": time_s,
                "busbw_gbps": time_s and 1e-3 / time_s, "energy_j": time_s and 2 * time_s,
                "watts_per_gpu": 115.2, "failures_per_day": 1.3229, "stalls_per_day": 1.3229,
                "scale_up_failure": "stall", "faithful": True if feasible else None}

    runs = [[row("a", t), row("b", None, False)] for t in (1e-4, 3e-4, 2e-4)]
    lines = compare.markdown({"repeats": 3, "walls": [50, 70, 60], "runs": runs}).splitlines()
    assert lines[2] == ("| tp | a | nvlink5 | 4 x 1 racks | yes | 200.0 | 5.0 | 0.0004 | 115 | "
                        "1.32 | 1.32 | stall | 3 of 3 |")
    assert lines[3].endswith("| no | - | - | - | 115 | 1.32 | 1.32 | stall | - |")
    assert lines[-1] == "Wall time of the whole command: median 60 s (50, 70, 60 s over 3 runs)."


def test_view_cost_table_is_each_variant_against_no_view():
    found = {"repeats": 3, "note": "", "runs": {
        view.VARIANTS[0]: [(10.0, 100.0), (12.0, 110.0), (11.0, 105.0)],
        view.VARIANTS[1]: [(11.0, 100.0), (13.0, 111.0), (12.1, 104.0)]}}
    rows = [line for line in view.section(found).splitlines() if line.startswith("| ")]
    assert rows[1] == "| without --view | 11.0 | 10.0, 12.0, 11.0 | +0.0% | 105.0 |"
    assert rows[2] == "| --view, no page open | 12.1 | 11.0, 13.0, 12.1 | +10.0% | 104.0 |"


def test_importers_table_gives_milliseconds_and_the_ratio_at_4n():
    from bench import importers

    rows = [{"shape": "NCCL: n two-rank communicators", "n": 5000, "seconds": [0.5, 2.1],
             "ratio": 4.2, "repeats": 5}]
    assert importers.markdown(rows).splitlines()[2] == (
        "| NCCL: n two-rank communicators | 5000 | 500 | 2100 | 4.2 |")


def test_importers_shapes_make_inputs_that_import(tmp_path):
    from bench import importers

    for _, _, make, run in importers.SHAPES:  # each shape at a small n
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        assert run(make(folder, 4)).startswith("# netwall trace imported from")


def test_scheduling_table_is_one_row_per_policy_with_each_run():
    from bench import scheduling
    from emulator.models.calibration import Calibration

    def cal(gbps: float, step_us: float) -> Calibration:
        return Calibration(gbps, step_us * 1e-6, 8, "m", "now")

    def eff(*ratios: float) -> list[dict]:
        return [{"size": size << 20, "ratio": r} for size, r in zip((1, 16, 64), ratios,
                                                                     strict=True)]

    found = {"repeats": 2, "policies": {
        "fifo": {"calibrations": [cal(1.4, 134), cal(1.5, 136)],
                 "efficiency": [eff(0.5, 1.0, 1.1), eff(0.6, 1.2, 0.9)]},
        "normal": {"calibrations": [cal(1.0, 195), cal(1.1, 200)],
                   "efficiency": [eff(0.3, 0.5, 0.5), eff(0.4, 0.7, 0.6)]}}}
    rows = scheduling.markdown(found).splitlines()
    assert "agents / iperf3 at 16 MiB" in rows[0]
    assert rows[2] == "| SCHED_FIFO 10 | 1.40, 1.50 | 134, 136 | 0.55 | 1.10 | 1.00 |"
    assert rows[3].startswith("| normal (NETWALL_AGENT_SCHED=normal) | 1.00, 1.10 | 195, 200 |")
    assert "alternately, 2" in scheduling.section(found)


def test_fidelity_names_the_rows_beyond_its_target():
    from bench import fidelity

    row = {"link": "copper-800g", "algorithm": "ring", "size": 16 << 20, "error": 0.004}
    assert fidelity.misses([row]).startswith("Every row from 16 MiB up is within 5%")
    tree = {**row, "algorithm": "tree", "size": 64 << 20, "error": 0.112}
    small = {**row, "size": 1 << 20, "error": -0.09}  # latency-bound: not held to it
    text = fidelity.misses([row, tree, small])
    assert "copper-800g tree at 64 MiB +11.2%" in text and "1 MiB" not in text
