"""Campaigns without a network: validation, expansion, point ids, the store, resume, export
and report. The runner is driven with a stand-in Emulation so resume and skip rules are
tested here, in milliseconds; tests/root/test_campaign_run.py runs real networks."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from emulator.experiments import runner
from emulator.experiments.campaign import Point, load, loads, point_id
from emulator.experiments.export import export
from emulator.experiments.report import COLUMNS, report
from emulator.experiments.runner import run_campaign
from emulator.experiments.store import SqliteStore, open_store
from emulator.result import RunResult
from foundation.errors import NetwallError
from tests import records
from tests.conftest import netwall

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
name: t
topologies: [pair]
links: [copper-800g]
sizes: [64K, 1M]
"""


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("text,line,message", [
    (BASE + "colour: red\n", 5, "key 'colour': unknown key"),
    (BASE.replace("[64K, 1M]", "64K"), 4, "key 'sizes': must be a list"),
    (BASE.replace("[copper-800g]", "[]"), 3, "key 'links': is an empty list"),
    (BASE.replace("[copper-800g]", "[copper-9000]"), 3, "no link profile 'copper-9000'"),
    (BASE.replace("[64K, 1M]", "[64K,\n  16Q]"), 5, "key 'sizes': not a size: '16Q'"),
    (BASE.replace("[64K, 1M]", "[6]"), 4, "key 'sizes': 6 is not a size"),
    (BASE.replace("[64K, 1M]", "[true]"), 4, "key 'sizes': True is not a size"),
    (BASE.replace("[pair]", "[blob:4]"), 2, "key 'topologies': unknown topology"),
    (BASE + "collectives: [allreduce, gather]\n", 5, "no collective 'gather'"),
    (BASE + "collectives: [allgather]\nalgorithms: [tree]\n", 6,
     "key 'algorithms': allgather has no algorithm 'tree'"),
    (BASE + "faults:\n  - []\n  - [\"melt:gpu0--gpu1@0\"]\n", 7, "key 'faults': fault 'melt"),
    (BASE + "faults: [\"down:gpu0--gpu1@0\"]\n", 5, "each entry is a list of fault specs"),
    (BASE + "dilation: 0.5\n", 5, "key 'dilation': must be a number >= 1"),
    (BASE + "gpus: [h100, a100]\n", 5, "key 'gpus': no GPU profile 'a100' (available: "),
    (BASE + "repetitions: 0\n", 5, "key 'repetitions': must be an integer from 1 to 100000"),
    (BASE + "iters: two\n", 5, "key 'iters': must be an integer from 1 to 100000, got 'two'"),
    (BASE + "seeds: [1.5]\n", 5, "key 'seeds': must be an integer from 0 to"),
    (BASE + "layout: gpus=2\n", 2, "a layout applies to racks:RxG and cluster:DxG only"),
    (BASE + "links: [optical-800g]\n", 5, "key 'links': given twice"),
    (BASE + "sizes: [1K\n", 6, "YAML syntax error"),
    ("name: t\ntopologies: [pair]\nlinks: [copper-800g]\n", 1, "needs key 'sizes'"),
    (BASE + "experiments:\n  - topologies: [star:4]\n", 6, "every experiment needs a 'name'"),
    (BASE + "failures:\n  gpus: 10\n  days: 1\n  links: {copper-9000: 3}\n", 8,
     "key 'copper-9000': unknown key"),
    (BASE + "failures:\n  gpus: 10\n  days: 0\n  links: {copper-800g: 3}\n", 7,
     "key 'days': must be a number > 0"),
])
def test_validation_names_line_and_key(text, line, message):
    with pytest.raises(NetwallError) as info:
        loads(text, "c.yaml")
    error = str(info.value)
    assert error.startswith(f"c.yaml line {line}"), error
    assert message in error
    assert "\n" not in error


def test_each_gpu_is_a_group_of_points():
    c = loads(BASE + "gpus: [ideal, h100]\n")
    assert sorted({p.gpu for p in c.points}) == ["h100", "ideal"]
    assert len(c.points) == 2 * len(loads(BASE).points)
    assert len(c.groups) == 2 and len({p.id for p in c.points}) == len(c.points)


def test_empty_file():
    with pytest.raises(NetwallError, match="c.yaml: the file is empty"):
        loads("", "c.yaml")


# --- expansion and ids ------------------------------------------------------------------------


def test_matrix_is_the_cartesian_product_grouped_by_network():
    c = loads(BASE + "spine_link: same\ncollectives: [allreduce, broadcast]\nrepetitions: 2\n"
              "seeds: [1, 2]\nfaults: [[], [\"down:gpu0--gpu1@0+1us\"]]\n"
              "dilation: [null, 2000]\n")
    assert len(c.points) == 1 * 1 * 2 * 2 * 2 * 2 * 2 * 2  # topo link coll size faults dil rep seed
    assert len(c.groups) == 2  # one network per dilation
    assert len({p.id for p in c.points}) == len(c.points)
    first = c.points[0]
    assert (first.algorithm, first.iters, first.warmup, first.dilation) == ("ring", 5, 1, None)
    assert first.spine_link == "copper-800g"  # same as link


def test_experiments_inherit_and_override_defaults():
    c = loads("name: x\nlinks: [copper-800g]\niters: 2\nexperiments:\n"
              "  - name: a\n    topologies: [pair]\n    sizes: [4K]\n"
              "  - name: b\n    topologies: [star:4]\n    sizes: [4K, 8K]\n    iters: 3\n")
    assert [(p.experiment, p.topology, p.iters) for p in c.points] == [
        ("a", "pair", 2), ("b", "star:4", 3), ("b", "star:4", 3)]


def test_point_ids_are_stable_and_canonical():
    p = loads(BASE).points[1]
    # A changed id makes every stored point look new: only a change of what a point measures
    # may change it (the GPU endpoint joined the parameters when ranks began to stand in for
    # GPUs; points stored before measured the ideal endpoint and are measured again).
    assert p.id == "d202c6d0498a5fa2"
    assert p.gpu == "h100"
    same = loads("sizes: [65536, 1048576]\nlinks: [copper-800g]\n# moved around\n"
                 "topologies: [pair]\nname: other\n").points[1]
    assert same.id == p.id
    assert point_id(dict(reversed(list(p.params().items())))) == p.id
    assert Point(**{**p.__dict__, "size": 2 << 20}).id != p.id


def test_shipped_campaigns_load():
    smoke = load(ROOT / "campaigns/smoke.yaml")
    assert smoke.name == "smoke" and 1 <= len(smoke.points) <= 4
    wall = load(ROOT / "campaigns/networking-wall.yaml")
    assert {p.experiment for p in wall.points} == {"throughput", "faults", "reach"}
    assert {p.link for p in wall.points} == {"copper-800g", "optical-800g",
                                             "wide-and-slow-800g"}
    assert wall.failures is not None and wall.failures.gpus == 100_000


# --- the store --------------------------------------------------------------------------------


def test_store_put_has_records_and_replace(tmp_path):
    url = f"sqlite://{tmp_path}/r.sqlite"
    a, b = records.point(size=4096), records.point(size=8192)
    with open_store(url) as store:
        assert not store.has(a.id)
        store.put(a.id, records.measured(a, busbw=1.0))
        store.put(b.id, records.skipped(b))
        store.put(a.id, records.measured(a, busbw=3.0))
        assert store.has(a.id) and store.has(b.id)
        assert [r.get("result", {}).get("busbw_gbps") for r in store.records()] == [3.0, None]
    db = sqlite3.connect(tmp_path / "r.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM points").fetchone() == (2, 2)


def test_store_urls(tmp_path):
    assert isinstance(open_store(str(tmp_path / "bare.sqlite")), SqliteStore)
    with pytest.raises(NetwallError, match=r"^no store for scheme 'postgres' \(available: "
                                           r"sqlite, jsonl\)$"):
        open_store("postgres://db/x")
    with pytest.raises(NetwallError, match="no results database at"):
        open_store(str(tmp_path / "missing.sqlite"), create=False)
    (tmp_path / "junk.sqlite").write_text("not a database" * 100)
    with pytest.raises(NetwallError, match="cannot open results database"):
        open_store(str(tmp_path / "junk.sqlite"))


# --- the runner, with a stand-in network ------------------------------------------------------


class FakeEmulation:
    """Enough of Emulation for the runner: copper cannot reach across racks, 8K fails at
    run time, and every build is counted."""

    builds = 0

    def __init__(self, point: Point, capabilities) -> None:
        if point.topology.startswith("racks:") and point.link.startswith("copper"):
            raise NetwallError("link rack0--spine0 is 3.6 m long but copper-800g reaches 2 m")
        self.capabilities, self.not_emulated = "caps", []
        self.dilation = self.fixed_dilation = point.dilation or 1000.0
        self.topology = SimpleNamespace(name=point.topology)
        self.link = point.link
        self.spec = self.pricing = self  # checks requests and prices them too

    def run_request(self, collective, algorithm, size, iters, warmup, faults=()):
        for fault in faults:
            if fault.name != "gpu0--gpu1":
                raise NetwallError(f"fault on {fault.name}: no such link")
        return SimpleNamespace(collective=collective, algorithm=algorithm, size=size,
                               iters=iters, warmup=warmup, faults=faults)

    def __enter__(self):
        FakeEmulation.builds += 1
        return self

    def __exit__(self, *exc):
        return None

    def settings(self):
        return {"profiles": {}, "dilation": self.dilation}

    def run_s(self, request):
        return request.size * 1e-6 * request.iters  # a second per MB and call

    def measure(self, request):
        collective, algorithm, size = request.collective, request.algorithm, request.size
        iters, faults = request.iters, request.faults
        if size == 8192:
            raise NetwallError("collective failed: rank 1 waits for rank 0")
        t = size / 50e9 * (1 + len(faults))
        return RunResult(
            collective=collective, algorithm=algorithm, ranks=2, bytes=size, count=size // 4,
            type="float", redop="sum", iters=iters, time_s=t, algbw_gbps=size / t / 1e9,
            busbw_gbps=size / t / 1e9, model_time_s=t, model_emulated_time_s=t * 0.9,
            model_error=0.11, gpu="ideal", protocol="Simple", check=True,
            retransmitted_bytes=0, retransmitted_frames=0,
            faults=[], faults_not_struck=[f.spec for f in faults if f.at_s >= t],
            dilation=self.dilation, dilation_attempts=[], fidelity=_fidelity(size),
            wall_s=1.0, emulated_s=1.0 / 1234, slowdown=1234.0, slowdown_floor=1.0,
            energy_j=1e-6, energy_by_profile_j={}, joules_per_gb=0.5, links=[],
            link=self.link, topology=self.topology.name)


def _fidelity(size: int) -> dict:
    """16K points read as distorted by the host; the others as proven."""
    if size == 16384:
        return {"faithful": False, "host_error": 0.25,
                "flags": ["host software added about 25.0% of this time"]}
    return {"faithful": True, "host_error": 0.001, "flags": []}


FAKE = """\
name: fake
links: [copper-800g, optical-800g]
iters: 1
experiments:
  - name: throughput
    topologies: [pair]
    sizes: [4K, 8K, 16K]
    faults: [[], ["down:gpu0--gpu1@0+1us"], ["down:gpu9--gpu1@0+1us"]]
  - name: reach
    topologies: ["racks:2x2"]
    spine_link: same
    layout: gpus=2
    sizes: [4K]
failures:
  gpus: 1000
  days: 7
  links: {copper-800g: 3, wide-and-slow-800g: 3}
  trials: 50
"""


@pytest.fixture
def fake_db(tmp_path):
    """A store filled by one fake run of FAKE; returns (campaign, store url, counts)."""
    campaign = loads(FAKE)
    url = str(tmp_path / "fake.sqlite")
    with open_store(url) as store:
        counts = run_campaign(campaign, store, io.StringIO(), emulation=FakeEmulation)
    return campaign, url, counts


def test_runner_measures_skips_and_resumes(fake_db):
    campaign, url, counts = fake_db
    # 2 links x 3 sizes x 3 fault sets on pair + 2 reach points; the missing-link fault set
    # (6), the 8K points (4 left) and copper's reach point are skipped.
    assert len(campaign.points) == 20
    assert counts == {"measured": 9, "skipped": 11, "wrong": 0}
    with open_store(url) as store:
        records = store.records()
        assert {r["id"] for r in records} == campaign.ids()
        reasons = {r["reason"] for r in records if r["status"] == "skipped"}
        assert reasons == {"reach", "error"}
        ok = next(r for r in records if r["status"] == "ok" and r["kind"] == "point")
        assert {"netwall", "host", "time", "settings", "point", "result"} <= set(ok)
        assert ok["host"]["kernel"] and ok["time"].endswith("+00:00")
        builds = FakeEmulation.builds
        again = run_campaign(campaign, store, io.StringIO(), emulation=FakeEmulation)
    assert again == {"measured": 0, "skipped": 0, "wrong": 0}
    assert FakeEmulation.builds == builds  # nothing left to do builds nothing


def test_a_failed_run_rebuilds_the_network_for_the_rest(tmp_path):
    campaign = loads("name: r\ntopologies: [pair]\nlinks: [copper-800g]\n"
                     "sizes: [4K, 8K, 16K]\n")
    before = FakeEmulation.builds
    with open_store(str(tmp_path / "r.sqlite")) as store:
        counts = run_campaign(campaign, store, io.StringIO(), emulation=FakeEmulation)
    assert counts == {"measured": 2, "skipped": 1, "wrong": 0}
    assert FakeEmulation.builds - before == 2


def test_a_campaign_past_the_time_limit_is_refused_before_measuring(tmp_path):
    campaign = loads("name: long\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [1G]\n"
                     "iters: 5000\n")  # 1074 s per call x 5000: 62 days
    before = FakeEmulation.builds
    with open_store(str(tmp_path / "l.sqlite")) as store, \
            pytest.raises(NetwallError, match=r"about 62 days on this host \(limit 30 days\)"):
        run_campaign(campaign, store, io.StringIO(), emulation=FakeEmulation)
    assert FakeEmulation.builds == before  # nothing built


def unbuilt(point: Point, _capabilities, _emulation=runner._emulation, **_spread):
    """The runner's own Emulation, validated and priced for real on a stand-in kernel and
    host: building it fails the test."""
    from emulator.kernel.capabilities import Capabilities

    caps = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=False,
                        bpf_loss=True, ovs=False)
    emu = _emulation(point, caps)
    emu.start = lambda: pytest.fail("a network was built")
    return emu


HELD = ("name: held\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n"
        "dilation: 1000\nfaults: [[], ['down:gpu0--gpu1@0+3600s']]\n")


def test_fault_outages_count_toward_a_campaigns_time_limit(tmp_path):
    """A link held down for an hour holds the timed calls and the probe up an hour each,
    times their dilations (about 125 days at 1000): the campaign is refused before anything
    is built, where the same point without the fault measures for seconds."""
    with open_store(str(tmp_path / "h.sqlite")) as store, \
            pytest.raises(NetwallError, match=r"about 125 days on this host \(limit 30 days\)"
                                              r".* shorter faults"):
        run_campaign(loads(HELD), store, io.StringIO(), emulation=unbuilt)


def test_campaign_status_counts_fault_outages(tmp_path, monkeypatch, capsys):
    from emulator.cli.main import main

    monkeypatch.setattr(runner, "_emulation", unbuilt)
    spec = tmp_path / "held.yaml"
    spec.write_text(HELD)
    assert main(["campaign", "status", str(spec), "--db", str(tmp_path / "h.sqlite")]) == 0
    assert "2 points to measure, about 125 days of measuring" in capsys.readouterr().out


def test_progress_counts_to_total(tmp_path):
    out = io.StringIO()
    with open_store(str(tmp_path / "p.sqlite")) as store:
        run_campaign(loads(FAKE), store, out, emulation=FakeEmulation)
    assert "21/21 points" in out.getvalue()  # 20 points and the failures run
    assert "\r" not in out.getvalue()  # not a terminal: clean lines, no redrawing
    assert all(line.startswith("netwall: ") for line in out.getvalue().splitlines())


# --- export and report ------------------------------------------------------------------------


def test_export_csv_and_json(fake_db):
    campaign, url, _ = fake_db
    with open_store(url) as store:
        records = store.records()
    text = io.StringIO()
    export(records, "csv", text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    assert len(rows) == len(campaign.points)
    assert tuple(rows[0]) == COLUMNS
    assert {r["status"] for r in rows} == {"ok", "skipped: reach", "skipped: error"}
    measured = [r for r in rows if r["status"] == "ok"]
    assert {r["faithful"] for r in measured} == {"True", "False"}  # the verdict, per point
    assert all(r["fidelity_flags"].startswith("host software") for r in measured
               if r["faithful"] == "False") and all(r["slowdown"] for r in measured)
    text = io.StringIO()
    export(records, "json", text)
    data = json.loads(text.getvalue())  # strict JSON: no Infinity
    assert len(data) == len(campaign.ids())
    assert any(r["kind"] == "failures" for r in data)


def test_report_writes_plots_and_html(fake_db, tmp_path):
    _, url, _ = fake_db
    with open_store(url) as store:
        page = report(store.records(), tmp_path / "out")
    for stem in ("busbw-allreduce-ring", "time-vs-model", "energy", "faults", "failures"):
        for ext in ("png", "svg"):
            assert (tmp_path / "out" / f"{stem}.{ext}").stat().st_size > 1000, stem
    html = page.read_text()
    assert "<img src='busbw-allreduce-ring.png'" in html
    assert "skipped: reach" in html and html.count("<tr>") > 20
    assert "is 3.6 m long but copper-800g reaches 2 m" in html  # the skipped point's reason
    assert "measured points are NOT FAITHFUL" in html
    assert "host software added about 25.0% of this time" in html


# --- the commands, short of building anything ---------------------------------------------------


def test_commands_exit_2_with_one_line(tmp_path, capsys):
    from emulator.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "sizes: [1M, huge]\n".replace("sizes", "iters"))
    assert main(["campaign", "run", str(bad), "--db", str(tmp_path / "x.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.yaml line 5, key 'iters'" in err
    assert not (tmp_path / "x.sqlite").exists()
    assert main(["export", "--db", "mysql://h/db"]) == 2
    assert "no store for scheme 'mysql'" in capsys.readouterr().err


def test_status_and_export_commands(fake_db, tmp_path, capsys):
    from emulator.cli.main import main

    _, url, _ = fake_db
    (tmp_path / "fake.yaml").write_text(FAKE)
    assert main(["campaign", "status", str(tmp_path / "fake.yaml"), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "campaign fake: 21/21 points done" in out and "failures (Monte Carlo)" in out
    target = tmp_path / "all.json"
    assert main(["export", "--db", url, "--format", "json", "-o", str(target)]) == 0
    assert len(json.loads(target.read_text())) == 21


def test_malformed_campaign_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [64K, 1.5M]\n")
    run = netwall("campaign", "run", str(bad), "--db", str(tmp_path / "bad.sqlite"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "bad.yaml line 4, key 'sizes'" in run.stderr
    assert not (tmp_path / "bad.sqlite").exists()


def test_two_fabric_clusters_and_bundles_in_a_campaign():
    """A campaign sweeps cluster designs too: cluster:DxG with a layout, bundle profiles."""
    camp = loads("name: c\ntopologies: ['cluster:1x8']\nlayout: gpus=4\n"
                 "links: [9xoptical-800g, 9xwide-and-slow-800g]\nsizes: [1M]\n", "c.yaml")
    assert {p.link for p in camp.points} == {"9xoptical-800g", "9xwide-and-slow-800g"}
    assert {p.layout for p in camp.points} == {"gpus=4"}
    with pytest.raises(NetwallError, match="no link profile '9xunobtainium'"):
        loads("name: c\ntopologies: [pair]\nlinks: [9xunobtainium]\nsizes: [1M]\n", "c.yaml")
