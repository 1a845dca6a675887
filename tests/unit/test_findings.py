"""The findings a report opens with and a command ends with: computed from the rows, so the
winner named is the one the rows show, the ratios are the rows' ratios, and a design that
does not fit is named with its reason."""

from __future__ import annotations

import random

import pytest

from emulator.experiments import findings
from emulator.experiments.findings import Replayed, number, ratio


def design(name: str, time_us: float | None, watts: float, stalls: float,
           feasible: bool = True, energy: float | None = 0.2, reason: str | None = None,
           workload: str = "ar", size: int | None = 1 << 20, faithful: bool | None = True,
           scale_up: str = "copper-800g") -> dict:
    return {"workload": workload, "size": size, "design": name, "feasible": feasible,
            "reason": reason, "time_s": None if time_us is None else time_us * 1e-6,
            "energy_j": energy if feasible else None, "watts_per_gpu": watts,
            "stalls_per_day": stalls, "failures_per_day": stalls, "faithful": faithful,
            "scale_up": scale_up}


def test_number_reads_as_a_person_writes_it():
    assert [number(v) for v in (62.1234, 0.06232, 6.232e-05, 1234.5, 0, 12, 4e-8)] == \
        ["62.1", "0.0623", "0.0000623", "1,234", "0", "12", "4e-08"]
    assert number(float("inf")) == "-" and number(None) == "-"
    assert number(3.5, "us") == "3.5 us"
    assert ratio(62.1, 60.7) == "1.02x" and ratio(300, 10) == "30x" and ratio(1, 0) == "-"


@pytest.mark.parametrize("seed", range(5))
def test_the_fastest_design_named_is_the_rows_fastest(seed):
    rng = random.Random(seed)
    rows = [design(f"d{i}", rng.uniform(10, 100), rng.uniform(1, 50), rng.uniform(0, 3))
            for i in range(5)]
    rng.shuffle(rows)
    said = findings.designs(rows)
    ordered = sorted(rows, key=lambda r: r["time_s"])
    best, second, last = ordered[0], ordered[1], ordered[-1]
    assert said[0].startswith(f"On ar at 1 MiB, {best['design']} is fastest: "
                              f"{number(best['time_s'] * 1e6, 'us')} per call")
    assert f"{ratio(second['time_s'], best['time_s'])} faster than {second['design']}" \
        in said[0]
    assert f"faster than the slowest, {last['design']}" in said[0]
    cheapest = min(rows, key=lambda r: r["watts_per_gpu"])
    dearest = max(rows, key=lambda r: r["watts_per_gpu"])
    power = next(s for s in said if "least link power" in s)
    assert power.startswith(f"{cheapest['design']} draws the least link power: "
                            f"{number(cheapest['watts_per_gpu'], 'W per GPU')}, "
                            f"{ratio(dearest['watts_per_gpu'], cheapest['watts_per_gpu'])} "
                            f"less than {dearest['design']}")
    calm = min(rows, key=lambda r: r["stalls_per_day"])
    assert any(s.startswith(f"{calm['design']} stalls least") for s in said)


def test_a_design_that_does_not_fit_is_named_with_its_reason():
    rows = [design("nvl72", 62.1, 40, 0.1),
            design("copper-racks", None, 10, 0.1, feasible=False,
                   reason="copper-800g reaches 2 m but the rack-to-rack cable is 3.6 m"),
            design("optical", 60.7, 120, 2.0)]
    said = findings.designs(rows)
    assert said[0] == ("On ar at 1 MiB, optical is fastest: 60.7 us per call, 1.02x faster "
                       "than nvl72 (62.1 us).")
    assert ("copper-racks does not fit: copper-800g reaches 2 m but the rack-to-rack cable "
            "is 3.6 m.") in said
    assert "nvl72 stalls least: 0.1 link-down events per day, 20x fewer than optical (2)." \
        in said
    assert not any("copper-racks" in s for s in said if "does not fit" not in s)


def test_endpoint_bound_and_unfaithful_designs_are_said():
    rows = [design("a", 304.0, 10, 0), design("b", 304.5, 20, 1, faithful=False,
                                              workload="pp", size=None)]
    rows[0]["workload"], rows[0]["size"] = "pp", None
    said = findings.designs(rows)
    assert said[0].startswith("On pp, a is fastest: 304 us per step")
    assert any("the links do not set its pace" in s for s in said)
    assert "b's time on pp is NOT FAITHFUL: the host distorted it." in said
    assert "a never stall on one lane or channel lost; b stalls 1 times per day." in said


def point(link: str, size: int, busbw: float, faults=(), rep: int = 0,
          joules: float = 1.0, experiment: str = "x") -> dict:
    return {"kind": "point", "status": "ok", "campaign": "c",
            "point": {"experiment": experiment, "topology": "star:4", "link": link,
                      "collective": "allreduce", "algorithm": "ring", "size": size,
                      "faults": list(faults), "repetition": rep},
            "result": {"busbw_gbps": busbw, "joules_per_gb": joules}}


def test_campaign_winner_per_size_with_the_spread_of_repetitions():
    records = [point("copper-800g", 1 << 20, 40, rep=0), point("copper-800g", 1 << 20, 44,
                                                                rep=1),
               point("optical-800g", 1 << 20, 20, rep=0, joules=3.0),
               point("optical-800g", 1 << 20, 22, rep=1, joules=3.0),
               point("copper-800g", 4 << 20, 10), point("optical-800g", 4 << 20, 30,
                                                        joules=3.0)]
    said = findings.campaign(records)
    assert said[0] == ("On star:4, allreduce/ring at 1 MiB: copper-800g is fastest at 42 GB/s "
                       "busbw (40-44 over 2 repetitions), 2.00x optical-800g's 21 GB/s "
                       "(20-22 over 2 repetitions).")
    assert said[1].startswith("On star:4, allreduce/ring at 4 MiB: optical-800g is fastest "
                              "at 30 GB/s busbw, 3.00x copper-800g's 10 GB/s")
    assert ("Energy per GB moved: copper-800g spends least, 1 J/GB; optical-800g 3 J/GB "
            "(3.00x) (links only, mean over sizes).") in said


def test_campaign_faults_effect_and_skips():
    fault = "channels=1:gpu0--nvs0@20us+200us"
    records = [point("copper-800g", 1 << 20, 40), point("copper-800g", 1 << 20, 10, [fault]),
               point("wide-and-slow-800g", 1 << 20, 30),
               point("wide-and-slow-800g", 1 << 20, 30, [fault]),
               {"kind": "point", "status": "skipped", "reason": "reach", "campaign": "c",
                "message": "link rack0--spine0 is 3.6 m long but copper-800g reaches 2 m",
                "point": {"link": "copper-800g"}}]
    said = findings.campaign(records)
    assert (f"With fault {fault}, of its fault-free busbw wide-and-slow-800g keeps 100%, "
            "copper-800g keeps 25%.") in said
    assert ("1 point(s) skipped (reach) on copper-800g: link rack0--spine0 is 3.6 m long but "
            "copper-800g reaches 2 m.") in said


def test_replays_across_links():
    said = findings.replays([
        Replayed("optical-800g", [305e-6, 304e-6], True, 0.01),
        Replayed("copper-800g", [304e-6, 304e-6], True, 0.02),
        Replayed("wide-and-slow-800g", [304.6e-6], False, 0.02)])
    assert said[0] == ("copper-800g is fastest: 304 us per step; "
                       "optical-800g 1.00x slower; wide-and-slow-800g 1.00x slower.")
    assert said[1].startswith("Step times across links differ by 0.2% at most: the step is "
                              "bound by the GPU endpoints")
    assert said[2] == ("NOT FAITHFUL (the host distorted them): wide-and-slow-800g; compare "
                       "those with care.")
    assert findings.replays([Replayed("a", [1e-4], None, 0.5)])[-1] == \
        "Not proven (the dilation probe was off): a."
    fast = findings.replays([Replayed("a", [100e-6], True, 0.5),
                             Replayed("b", [300e-6], True, 0.8)])
    assert fast == ["a is fastest: 100 us per step; b 3.00x slower.",
                    "Every link's total is proven (faithful)."]


def _design_record(row: dict) -> dict:
    full = dict(row, domain_gpus=8, racks_per_domain=1, busbw_gbps=10.0, exposed_share=None,
                scale_up_failure="stall")
    return {"kind": "design", "campaign": "small", "status": "ok", "id": row["design"],
            "row": full}


def test_design_report_opens_with_findings_and_has_no_empty_section(tmp_path):
    from emulator.experiments.report import report

    rows = [design("nvl72", 62.1, 40, 0.1),
            design("optical", 60.7, 120, 2.0, scale_up="optical-800g"),
            design("far", None, 10, 0.1, feasible=False, reason="too long")]
    page = report([_design_record(r) for r in rows], tmp_path / "out").read_text()
    assert page.index("<h2>Findings</h2>") < page.index("<h2>Figures</h2>") \
        < page.index("<h2>Designs compared</h2>")
    assert "optical is fastest: 60.7 us per call, 1.02x faster than nvl72" in page
    assert "3 designs: 2 fit, 1 do not." in page and "0 points" not in page
    assert "<h2>Points</h2>" not in page and "far does not fit: too long" in page
    for raw in ("time_s", "None", "True", "False", "e-0"):
        assert raw not in page.split("<h2>Designs compared</h2>")[1], raw
    assert "@media print" in page


def test_report_writes_only_inside_out_whatever_a_record_names(tmp_path):
    from emulator.experiments.report import report

    out = tmp_path / "deep" / "out"
    evil = [point("copper-800g", 1 << 20, 40), point("optical-800g", 1 << 20, 30)]
    for r in evil:
        r["point"].update(collective="x/../../../..", algorithm="../../escape", dilation=None,
                          layout=None, spine_link="same", seed=1, iters=1, warmup=0)
        r["result"].update(time_s=1e-4, model_emulated_time_s=1e-4)
    rows = [design("../../d", 1.0, 1, 0)]
    records = evil + [dict(_design_record(r), campaign="../../../c") for r in rows]
    report(records, out)
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert written and all(p.parts[:2] == ("deep", "out") for p in written), written
    assert all(len(p.parts) == 3 for p in written)  # no subfolders either


def test_a_lead_within_the_spread_of_repetitions_is_no_clear_winner():
    records = [point("copper-800g", 1 << 20, 40, rep=0), point("copper-800g", 1 << 20, 44,
                                                                rep=1),
               point("optical-800g", 1 << 20, 41, rep=0), point("optical-800g", 1 << 20, 42,
                                                                rep=1)]
    said = findings.campaign(records)[0]
    assert said.startswith("On star:4, allreduce/ring at 1 MiB: copper-800g is fastest at "
                           "42 GB/s")
    assert said.endswith(": within the spread of repetitions, no clear winner.")
    apart = findings.campaign(records[:2] + [point("optical-800g", 1 << 20, 20, rep=r)
                                             for r in (0, 1)])[0]
    assert "no clear winner" not in apart


def test_figures_labels_read_no_overlap_and_no_tiny_text(tmp_path, monkeypatch):
    """Every tick label of the campaign figures is at least 8 pt and none overlaps its
    neighbour, with ten sizes and three links (the smear issue 27 saw)."""
    from emulator.experiments import figures as drawing

    figures = []

    def keep(fig, out, stem, rect=(0, 0, 1, 1)):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        fig.tight_layout(rect=rect)
        figures.append(fig)
        return f"{stem}.png"

    monkeypatch.setattr(drawing, "save", keep)
    points = []
    for link in ("copper-800g", "optical-800g", "wide-and-slow-800g"):
        for k in range(10):
            r = point(link, 1024 << k, 10.0 + k, rep=0)
            r["result"].update(time_s=1e-5 * (k + 1), model_emulated_time_s=1e-5 * (k + 1))
            points.append(r)
    drawing.plot_busbw(points, tmp_path)
    drawing.plot_energy(points, tmp_path)
    drawing.plot_model(points, tmp_path)
    drawing.plot_designs([_design_record(design(f"design-with-a-long-name-{i}", 50.0 + i,
                                               100 + i, 0.5 * i)) for i in range(8)], tmp_path)
    assert len(figures) == 4
    for fig in figures:
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                labels = [t for t in axis.get_ticklabels() if t.get_text() and t.get_visible()]
                assert all(t.get_fontsize() >= 8 for t in labels)
                boxes = sorted((t.get_window_extent(renderer) for t in labels),
                               key=lambda b: (b.x0, b.y0))
                for a, b in zip(boxes, boxes[1:], strict=False):
                    assert not a.overlaps(b), (ax.get_title(), a, b)


def test_replay_verdict_reads_each_links_result():
    """What `replay` prints after several links: the verdict from each result's steps and
    its proof (probe off is 'not proven', not 'distorted')."""
    from types import SimpleNamespace

    from emulator.cli.tables import replay_verdict

    def result(link, steps, faithful, flags=()):
        return SimpleNamespace(link=link, fidelity={"faithful": faithful, "flags": list(flags)},
                               steps=[SimpleNamespace(time_s=t, exposed_share=0.01)
                                      for t in steps])

    lines = replay_verdict([
        result("copper-800g", [304e-6], False, ["not proven: the probe was turned off"]),
        result("optical-800g", [304.5e-6], False, ["host software added about 5%"]),
        result("wide-and-slow-800g", [304.2e-6], True)])
    assert lines[0] == "# verdict across links:"
    assert lines[1] == ("#   copper-800g is fastest: 304 us per step; wide-and-slow-800g 1.00x "
                        "slower; optical-800g 1.00x slower.")
    assert "bound by the GPU endpoints" in lines[2]
    assert lines[3:] == ["#   NOT FAITHFUL (the host distorted them): optical-800g; compare "
                         "those with care.",
                         "#   Not proven (the dilation probe was off): copper-800g."]


def test_figures_within_two_percent_read_as_a_tie_not_a_winner():
    """The browser report once said "stalls least: 1.75 ..., 1.00x fewer than ... (1.76)"."""
    rows = [design("copper", 42.7, 145, 1.76), design("microled", 35.8, 240, 1.75)]
    said = findings.designs(rows)
    assert "Every design that fits stalls about as often: 1.75 to 1.76 link-down events " \
           "per day." in said
    assert not any("stalls least" in s for s in said)
    power = [design("a", 40.0, 100.0, 1.0), design("b", 41.0, 101.0, 2.0)]
    assert "Every design that fits has about the same W per GPU: 100 to 101." in \
        findings.designs(power)
