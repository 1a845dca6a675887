"""Design files (emulator/experiments/designs.py): what they hold, and every mistake one
line with exit status 2 before anything is built."""

from __future__ import annotations

import dataclasses
import io

import pytest

from emulator.cli.main import main
from emulator.experiments.designs import DEFAULT, load, parse
from foundation.errors import NetwallError

GOOD = """\
name: small
fleet_gpus: 1000
layout: gpus=2
workloads:
  - {name: ar, collective: allreduce, sizes: [1M, 4M]}
  - {name: moe, workload: moe-a2a, scale: 0.001, params: {layers: 1}}
designs:
  - {name: copper, scale_up: nvlink5, domains: 2, domain_gpus: 2}
  - {name: optical, scale_up: {profile: optical-800g, cables: 9}, domains: 1, domain_gpus: 4}
"""


def test_a_good_file():
    f = parse(GOOD, "small.yaml")
    assert f.name == "small" and f.fleet_gpus == 1000 and f.gpu == "h100" and f.probe
    assert [d.name for d in f.designs] == ["copper", "optical"]
    optical = f.designs[1].cluster
    assert (optical.scale_up, optical.scale_out, optical.domains, optical.domain_gpus) == (
        "9xoptical-800g", "optical-800g", 1, 4)
    assert optical.layout.gpus_per_rack == 2 and optical.racks_per_domain == 2
    assert f.workloads[0].sizes == (1 << 20, 4 << 20) and f.workloads[0].workload is None
    assert f.workloads[1].workload == "moe-a2a" and f.workloads[1].params == {"layers": 1}


def test_the_shipped_files_read():
    default = parse(DEFAULT, "default")
    assert len(default.designs) == 4
    assert {d.cluster.domains * d.cluster.domain_gpus for d in default.designs} == {8}
    mosaic, nvl72 = load("designs/mosaic.yaml")  # two sections, each its own cluster size
    assert (mosaic.name, nvl72.name) == ("mosaic-racks-16", "mosaic-nvl72")
    assert {w.name for w in mosaic.workloads} == {"ep-alltoall", "tp-allreduce"}
    assert {d.cluster.domains * d.cluster.domain_gpus for d in mosaic.designs} == {16}
    assert mosaic.gpu == "h100" and mosaic.fleet_gpus == 100_000  # the file's defaults
    # issue 28: full NVL72 domains, NCCL's choice (NVLS at every size on 72 GPUs)
    assert [(d.cluster.domains, d.cluster.domain_gpus, d.cluster.racks_per_domain)
            for d in nvl72.designs] == [(1, 72, 1), (1, 72, 4)]
    assert nvl72.gpu == "gb200" and [w.algorithm for w in nvl72.workloads] == [None]
    assert (nvl72.iters, nvl72.warmup) == (2, 0)
    assert {d.cluster.scale_out for d in mosaic.designs + nvl72.designs} == {"optical-800g"}


SECTIONS = """\
name: two
fleet_gpus: 1000
layout: gpus=2
sections:
  - name: small
    workloads: [{name: ar, collective: allreduce, sizes: [1M]}]
    designs:
      - {name: copper, scale_up: nvlink5, domains: 2, domain_gpus: 2}
  - name: big
    fleet_gpus: 2000
    workloads: [{name: ar, collective: allreduce, sizes: [4M]}]
    designs:
      - {name: copper, scale_up: nvlink5, domains: 4, domain_gpus: 2}
      - {name: optical, scale_up: 9xoptical-800g, domains: 1, domain_gpus: 8}
"""


def test_sections_hold_comparisons_of_different_sizes():
    from emulator.experiments.designs import comparisons

    small, big = comparisons(SECTIONS, "two.yaml")
    assert (small.name, big.name) == ("two-small", "two-big")
    assert (small.fleet_gpus, big.fleet_gpus) == (1000, 2000)  # a section overrides the top
    assert [d.cluster.domains * d.cluster.domain_gpus for d in small.designs] == [4]
    assert {d.cluster.domains * d.cluster.domain_gpus for d in big.designs} == {8}
    assert big.designs[1].cluster.layout.gpus_per_rack == 2  # the top's layout
    with pytest.raises(NetwallError, match="has 2 sections; one expected"):
        parse(SECTIONS, "two.yaml")


@pytest.mark.parametrize("text, message", [
    (SECTIONS.replace("sections:", "sections: []\nx:"), "unknown key 'x'"),
    (SECTIONS.replace("  - name: big", "  - name: small"), "the name 'small' is used twice"),
    (SECTIONS.replace("name: two\n", "name: two\nworkloads: []\n"),
     "unknown key 'workloads'"),
    (SECTIONS.replace("    fleet_gpus: 2000", "    fleet_gpus: 0"),
     "sections[1] (big): key 'fleet_gpus'"),
    (SECTIONS.replace("    fleet_gpus: 2000", "    sections: []"),
     "sections[1]: unknown key 'sections'"),
    (SECTIONS.replace("domains: 1, domain_gpus: 8", "domains: 1, domain_gpus: 6"),
     "give each size its own section"),
    ("sections: 3\n", "key 'sections': expected a list"),
    ("sections: [3]\n", "sections[0]: expected a mapping"),
])
def test_a_bad_section_is_one_line(text, message):
    from emulator.experiments.designs import comparisons

    with pytest.raises(NetwallError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")) as info:
        comparisons(text, "two.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("design file two.yaml")


def test_the_comparison_says_which_algorithm_each_design_ran():
    from emulator.cli.comparison import render
    from emulator.experiments.compare import Row

    def row(design, algorithm, feasible=True):
        return Row(workload="tp", size=16 << 20, design=design, gpus=72, domains=1,
                   domain_gpus=72, racks_per_domain=1, scale_up="nvlink5",
                   scale_out="optical-800g", feasible=feasible,
                   reason=None if feasible else "too long", time_s=1e-3 if feasible else None,
                   busbw_gbps=1.0, energy_j=1.0, watts_per_gpu=1.0, failures_per_day=1.0,
                   stalls_per_day=1.0, scale_up_failure="stall", scale_out_failure="stall",
                   faithful=True, algorithm=algorithm)

    text = render([row("copper", "nvls"), row("optical", "ring"), row("far", None, False)])
    assert "# algorithm: copper nvls, optical ring" in text.splitlines()
    said = render([dataclasses.replace(row("copper", "nvls"),
                                       why="NCCL's choice at every size on 72 GPUs")])
    assert "# algorithm: copper nvls (NCCL's choice at every size on 72 GPUs)" in said
    assert Row(**{**row("x", None).to_dict(), "algorithm": None}).algorithm is None


@pytest.mark.parametrize("change, says", [
    (("fleet_gpus: 1000", "fleet_gpus: lots"), "key 'fleet_gpus': expected a whole number"),
    (("name: small", "name: small\nbogus: 1"), "unknown key 'bogus'"),
    (("sizes: [1M, 4M]", "sizes: [1Q]"), "workloads[0] (ar): key 'sizes': not a size"),
    (("collective: allreduce", "collective: allsum"), "unknown collective 'allsum'"),
    (("collective: allreduce,", "collective: allreduce, algorithm: star,"),
     "allreduce has no algorithm 'star'"),
    (("workload: moe-a2a", "workload: moe"), "unknown workload 'moe'"),
    (("workload: moe-a2a,", "workload: moe-a2a, sizes: [1M],"), "belongs to a collective"),
    (("{name: ar, collective: allreduce,", "{name: ar, workload: dp-step, collective: x,"),
     "give either collective (with sizes) or workload"),
    (("domains: 2, domain_gpus: 2}", "domains: 2, domain_gpus: 3}"),
     "designs have 4 and 6 GPUs"),
    (("domains: 2, domain_gpus: 2}", "domains: 2, domain_gpus: 1}"),
     "designs[0] (copper): key 'domain_gpus': expected a whole number from 2 to 1024"),
    (("cables: 9}", "cables: 9, colour: red}"), "designs[1] (optical): key 'scale_up'"),
    (("name: optical,", "name: copper,"), "the name 'copper' is used twice"),
    (("scale: 0.001,", "scale: 0.001, steps: 0,"), "workloads[1] (moe): key 'steps': expected"),
    (("{layers: 1}", "{layers: 1, experts: 4}"), "(moe): workload moe-a2a: unknown parameter"),
    (("{layers: 1}", "{ep: 3}"), "(moe): workload moe-a2a: 4 ranks are not a multiple of ep=3"),
    (("{name: copper, scale_up", "{name: copper, racks: 2, scale_up"), "unknown key 'racks'"),
])
def test_bad_files_are_one_line(change, says):
    old, new = change
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(NetwallError) as e:
        parse(text, "small.yaml")
    assert says in str(e.value) and str(e.value).startswith("design file small.yaml: ")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, says", [
    ("[1, 2]", "expected a mapping with keys workloads and designs"),
    ("designs: []\nworkloads: []", "key 'workloads': expected a non-empty list"),
    ("gpu: b300\n" + GOOD.split("\n", 1)[1], "unknown GPU 'b300'"),
    ("name: a\nname: b\n", "twice"),
])
def test_bad_documents(text, says):
    with pytest.raises(NetwallError, match=None) as e:
        parse(text, "x.yaml")
    assert says in str(e.value)


def test_the_command_says_one_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("nvlink5", "nvlink9"))
    assert main(["compare", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netwall: error: ")
    assert "nvlink9" in err
    assert main(["compare", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def _row(design: str, workload: str, size, feasible: bool = True):
    from emulator.experiments.compare import Row

    return Row(workload=workload, size=size, design=design, gpus=4, domains=2, domain_gpus=2,
               racks_per_domain=1, scale_up="nvlink5" if design == "copper" else
               "9xoptical-800g", scale_out="optical-800g", feasible=feasible,
               reason=None if feasible else "copper: nvlink5 cannot cable ...",
               time_s=2e-4 if feasible else None, busbw_gbps=70.0 if feasible else None,
               energy_j=0.2 if feasible else None, watts_per_gpu=127.2,
               failures_per_day=1.76, stalls_per_day=1.76, scale_up_failure="stall",
               scale_out_failure="stall", faithful=True if feasible else None)


def test_rows_stored_resume_and_report(tmp_path):
    """compare --db: each row is kept as it is measured; a design whose rows are all kept
    is not run again; the report draws the designs side by side."""
    from emulator.experiments import compare
    from emulator.experiments.export import export
    from emulator.experiments.report import report
    from emulator.experiments.store import open_store

    f = parse(GOOD, "small.yaml")
    rows = [_row(d, w, s) for d in ("copper", "optical") for w, s in
            (("ar", 1 << 20), ("ar", 4 << 20), ("moe", None))]
    with open_store(str(tmp_path / "c.sqlite")) as store:
        for row in rows[:4]:  # copper whole, optical one row short
            compare.keep(f, row, store)
        kept = compare.stored(f, store)
        assert list(kept) == ["copper"] and kept["copper"] == rows[:3]
        edited = parse(GOOD.replace("fleet_gpus: 1000", "fleet_gpus: 2000"), "small.yaml")
        assert compare.stored(edited, store) == {}  # a changed file measures again
        records = store.records()
    assert {r["kind"] for r in records} == {"design"} and records[0]["campaign"] == "small"
    page = report(records, tmp_path / "out").read_text()
    assert "<h2>Designs compared</h2>" in page and "9xoptical-800g" in page
    for stem in ("designs-small-ar-1048576", "designs-small-moe"):
        assert (tmp_path / "out" / f"{stem}.png").stat().st_size > 1000, stem
    text = io.StringIO()
    export(records, "json", text)
    assert '"kind": "design"' in text.getvalue()


def test_bare_run_is_the_default_comparison(monkeypatch, capsys):
    """`netwall run` with no options compares the default designs; any option (even
    --json) is the collective sweep as before."""
    from emulator.cli import commands
    from emulator.cli.main import main

    seen = []
    monkeypatch.setattr(commands, "_compare", lambda file, *rest: seen.append(file) or 0)

    def sweep(_args):
        raise NetwallError("the sweep")

    monkeypatch.setattr(commands, "_emulations", sweep)
    assert main(["run"]) == 0 and [[f.name for f in files] for files in seen] == [["default"]]
    assert len(seen[0][0].designs) == 4
    for options in (["--json"], ["--topology", "star:8"], ["--size", "8M"]):
        assert main(["run", *options]) == 2
        assert "the sweep" in capsys.readouterr().err
    assert len(seen) == 1


def test_designs_from_flags(capsys):
    from emulator.experiments.designs import from_flags

    f = from_flags(["copper=nvlink5:2x4", "optical=9xoptical-800g:1x8"], "alltoall",
                   ["4M"], "gpus=4", None, 3)
    assert [(d.name, d.cluster.scale_up, d.cluster.domains, d.cluster.domain_gpus)
            for d in f.designs] == [("copper", "nvlink5", 2, 4), ("optical", "9xoptical-800g",
                                                                  1, 8)]
    assert f.designs[1].cluster.racks_per_domain == 2 and f.workloads[0].sizes == (4 << 20,)
    with pytest.raises(NetwallError, match="--design 'copper': use NAME=SCALE_UP:DxG"):
        from_flags(["copper"], "allreduce", ["8M"], None, None, 3)
    with pytest.raises(NetwallError, match="--design and its options: .*designs have 6 and 8"):
        from_flags(["a=nvlink5:2x4", "b=nvlink5:2x3"], "allreduce", ["8M"], None, None, 3)
    assert main(["compare", "--design", "a=nvlink5:2x4", "--size", "4Q"]) == 2
    assert "not a size: '4Q'" in capsys.readouterr().err
    assert main(["compare", "x.yaml", "--design", "a=nvlink5:2x4"]) == 2
    assert "not both" in capsys.readouterr().err


def test_compare_prints_each_section_with_its_verdict(tmp_path, monkeypatch, capsys):
    """A sectioned file: every section checked before any is run, then each printed with
    its own header, table and verdict (here every design refused, so nothing is built)."""
    from emulator.experiments import compare

    def refused(file, profile_files=(), capabilities=None):
        return [compare.Prepared(d, {"watts_per_gpu": 1.0, "failures_per_day": 1.0,
                                     "stalls_per_day": 1.0, "scale_up_failure": "stall",
                                     "scale_out_failure": "stall"}, f"{d.name}: too long",
                                 None, {}, {}) for d in file.designs]

    monkeypatch.setattr(compare, "prepare", refused)
    path = tmp_path / "two.yaml"
    path.write_text(SECTIONS)
    assert main(["compare", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("# netwall compare: ") == 2 and out.count("# verdict:") == 2
    assert "two-small, 1 designs of 4 GPUs" in out and "two-big, 2 designs of 8 GPUs" in out
    assert main(["compare", str(path), "--json"]) == 0
    import json

    printed = json.loads(capsys.readouterr().out)
    assert [c["settings"]["file"]["name"] for c in printed["comparisons"]] == [
        "two-small", "two-big"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SECTIONS.replace("    fleet_gpus: 2000", "    fleet_gpus: -1"))
    assert main(["compare", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sections[1] (big)" in err
