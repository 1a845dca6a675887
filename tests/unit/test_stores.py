"""Stores and task files read back as untrusted input (issue 26, sections 1 and 6): every
record checked against the one schema, bad ones named and skipped, merges that never
overwrite, readers that change nothing, CSV that no spreadsheet runs, and campaign ids that
follow what defines a point."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest

from emulator.cli.main import main
from emulator.experiments import schema
from emulator.experiments.campaign import loads
from emulator.experiments.compare import Row
from emulator.experiments.export import cell, export
from emulator.experiments.slurm import merge
from emulator.experiments.store import JsonlStore, open_store
from foundation.errors import NetwallError
from tests import records

#: Stored texts no reader may trust, each with the words its rejection must contain.
HOSTILE = [
    (b"[1, 2, 3]", "is a list, not a record"),
    (b"{}", "kind is None"),
    (b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
    (b"{" + b'"a":{' * 40 + b"}" * 41, "nests deeper than 32"),
    (b"not json at all", "is not JSON"),
    (b"\xff\xfe{\"kind\": \"point\"}", "is not JSON"),
    (b'{"kind": "point", "status": "ok", "id": "%s"}', "has no key campaign"),
    (b'{"kind": "failures", "id": "%s"}', "has no key campaign"),
    (b'{"kind": "planet", "id": "%s"}', "kind is 'planet'"),
]


def _store_with(path: Path, raw: list[tuple[str, bytes]]) -> None:
    """A netwall store holding one good record and the given raw rows."""
    with open_store(str(path)) as store:
        good = records.point(size=4096)
        store.put(good.id, records.measured(good))
    db = sqlite3.connect(path)
    with db:
        for key, text in raw:
            db.execute("INSERT INTO points VALUES (?, 'point', 'ok', '', ?)", (key, text))
    db.close()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(("raw", "words"), HOSTILE)
def test_a_bad_sqlite_record_is_named_and_skipped(tmp_path, raw, words):
    path = tmp_path / "r.sqlite"
    _store_with(path, [("bad", raw.replace(b"%s", b"bad"))])
    with open_store(str(path), create=False) as store:
        assert len(store.records()) == 1 and not store.has("bad")
        assert len(store.rejected) == 1 and store.rejected[0].startswith(f"{path} id 'bad': ")
        assert words in store.rejected[0]


@pytest.mark.parametrize(("raw", "words"), HOSTILE)
def test_a_bad_jsonl_line_is_named_and_skipped(tmp_path, raw, words):
    path = tmp_path / "task-0.jsonl"
    good = records.point(size=4096)
    JsonlStore.open(str(path)).put(good.id, records.measured(good))
    with open(path, "ab") as f:
        f.write(raw.replace(b"%s", b"bad") + b"\n")
    store = JsonlStore.open(str(path), create=False)
    assert [r["id"] for r in store.records()] == [good.id]
    assert len(store.rejected) == 1 and store.rejected[0].startswith(f"{path} line 2: ")
    assert words in store.rejected[0]


def test_a_record_stored_under_another_id_is_bad(tmp_path):
    path = tmp_path / "r.sqlite"
    p = records.point()
    _store_with(path, [("other", json.dumps(records.measured(p)).encode())])
    with open_store(str(path), create=False) as store:
        assert not store.has("other") and "differs from the one it is stored under" in \
            store.rejected[0]


def test_a_record_longer_than_the_limit_is_not_read(tmp_path, monkeypatch):
    from emulator.experiments import store as module

    monkeypatch.setattr(module, "MAX_RECORD_BYTES", 1000)
    path = tmp_path / "r.sqlite"
    _store_with(path, [("big", b'{"pad": "' + b"x" * 5000 + b'"}')])
    (tmp_path / "t.jsonl").write_bytes(b'{"pad": "' + b"x" * 5000 + b'"}\n{"x": 1}\n')
    with open_store(str(path), create=False) as store:
        assert len(store.records()) == 1 and "big': is 5011 bytes, more than 1000" in \
            store.rejected[-1]
    task = JsonlStore.open(str(tmp_path / "t.jsonl"), create=False)
    assert "line 1: is more than 1000 bytes" in task.rejected[0] and "line 2" in task.rejected[1]


def test_every_record_kind_the_runner_and_compare_write_passes():
    p = records.point()
    for record in (records.measured(p), records.skipped(p)):
        assert schema.check(record, p.id) is record
    assert set(schema.ROW) == set(Row.__dataclass_fields__)  # the schema follows compare.Row


def test_readers_change_nothing_and_refuse_another_applications_database(tmp_path, capsys):
    ours = tmp_path / "ours.sqlite"
    _store_with(ours, [("bad", b"[]")])
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE mail (id INTEGER, body TEXT)")
    db.commit()
    db.close()
    text = tmp_path / "notes.sqlite"
    text.write_text("a shopping list\n" * 50)
    before = _snapshot(tmp_path)
    for path in (other, text):
        assert main(["export", "--db", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("netwall: error: ")
    assert main(["export", "--db", str(ours)]) == 0
    out, err = capsys.readouterr()
    assert len(list(csv.DictReader(io.StringIO(out)))) == 1
    assert err == f"netwall: warning: skipped 1 bad record(s): {ours} id 'bad': is a list, " \
                  "not a record\n"
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: c\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n")
    assert main(["campaign", "status", str(campaign), "--db", str(other)]) == 2
    assert "not a netwall results database" in capsys.readouterr().err
    assert main(["report", "--db", str(text), "--out", str(tmp_path / "o")]) == 2
    capsys.readouterr()
    after = _snapshot(tmp_path)
    after.pop("c.yaml")
    assert after == before  # no WAL switch, no table, no -wal or -shm file, no report dir
    with pytest.raises(NetwallError, match="not a netwall results database"):
        open_store(str(other))  # a writer does not take it over either


def test_a_store_named_twice_is_read_once(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    _store_with(path, [])
    assert main(["export", "--db", str(path), "--db", f"sqlite://{tmp_path}/./r.sqlite",
                 "--db", str(path)]) == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 1


def test_an_empty_store_url_and_a_negative_time_limit_are_refused(tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: c\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n")
    for argv in (["campaign", "run", str(campaign), "--db", ""],
                 ["campaign", "status", str(campaign), "--db", ""],
                 ["export", "--db", ""], ["report", "--db", " ", "--out", "o"],
                 ["campaign", "submit", str(campaign), "--time", "-5", "--executor", "local"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("names no location" in err or "--time" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "results"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
    assert not list(tmp_path.glob("results/*.slurm/task-*"))


# --- merge ------------------------------------------------------------------------------


def test_merge_never_overwrites_and_names_what_it_refuses(tmp_path, capsys):
    p, q = records.point(size=4096), records.point(size=8192)
    folder = tmp_path / "tasks"
    folder.mkdir()
    task = JsonlStore.open(str(folder / "task-0.jsonl"))
    task.put(p.id, {"id": p.id, "note": "garbage"})  # reuses a stored id, no schema
    task.put(q.id, records.measured(q, busbw=7.0))  # differs from the stored one
    with open(folder / "task-1.jsonl", "wb") as f:
        f.write(b"\xff\xfe not utf-8\n" + b'{"id": "x", "kind": "po')  # cut short
    db = tmp_path / "c.sqlite"
    with open_store(str(db)) as store:
        store.put(p.id, records.measured(p))
        store.put(q.id, records.measured(q, busbw=40.0))
        merged = merge(folder, store)
        assert (merged.new, merged.same, merged.files) == (0, 0, 2)
        assert len(merged.refused) == 2 and "line 1: kind is None" in merged.refused[0]
        assert "differs from the record stored under that id" in merged.refused[1]
        assert len(merged.unreadable) == 2  # the non-UTF-8 line and the cut-short one
        assert store.get(p.id) == records.measured(p)
        assert store.get(q.id)["result"]["busbw_gbps"] == 40.0
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: c\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n")
    assert main(["campaign", "merge", str(campaign), "--db", str(db), "--folder",
                 str(folder)]) == 2
    out, err = capsys.readouterr()
    assert "merged 0 new record(s)" in out
    assert err.count("\n") == 2 and "netwall: error: refused 2 record(s): " in err


def test_merge_from_a_missing_folder_is_one_line_and_makes_no_store(tmp_path, capsys):
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: c\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n")
    db = tmp_path / "c.sqlite"
    assert main(["campaign", "merge", str(campaign), "--db", str(db), "--folder",
                 str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no task folder" in err and not db.exists()


# --- CSV that spreadsheets do not run --------------------------------------------------


def test_csv_cells_that_would_be_formulas_are_prefixed_and_numbers_stay():
    assert [cell(v) for v in ("=1+1", "+x", "-x", "@SUM(A1)", "\t=1", "-0.5", "+3", "1e-3",
                              "ring:4", -0.25, 3)] == [
        "'=1+1", "'+x", "'-x", "'@SUM(A1)", "'\t=1", "-0.5", "+3", "1e-3", "ring:4", -0.25, 3]
    p = records.point(experiment="=HYPERLINK(\"http://x\")", topology="@evil.yaml")
    record = records.measured(p, campaign="-cmd")
    text = io.StringIO()
    export([record], "csv", text)
    row = next(csv.DictReader(io.StringIO(text.getvalue())))
    assert row["experiment"] == "'=HYPERLINK(\"http://x\")" and row["topology"] == "'@evil.yaml"
    assert row["campaign"] == "'-cmd" and row["model_error"] == "-0.1"


# --- what defines a point ---------------------------------------------------------------


def test_duplicate_points_are_one_point():
    c = loads("name: d\ntopologies: [pair, pair, ' pair']\nlinks: [copper-800g]\n"
              "sizes: [64K, 65536, 65536]\n")
    assert len(c.points) == 1 and len(c.ids()) == 1


def test_a_topology_file_is_identified_by_its_content_not_its_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = ("name: two\ngpus: [gpu0, gpu1]\nlinks:\n  - {a: gpu0, b: gpu1, length_m: 1}\n")
    Path("a.yaml").write_text(text)
    os.mkdir("moved")
    Path("moved/b.yaml").write_text(text)

    def ids(*files: str) -> list[str]:
        c = loads(f"name: t\ntopologies: [{', '.join(files)}]\nlinks: [copper-800g]\n"
                  "sizes: [4K]\n")
        return [p.id for p in c.points]

    first = ids("a.yaml")
    assert ids("moved/b.yaml") == first and ids("a.yaml", "moved/b.yaml") == first
    Path("a.yaml").write_text(text.replace("length_m: 1", "length_m: 1.5"))
    assert ids("a.yaml") != first  # an edited file: the point is measured again
    stored = loads("name: t\ntopologies: [a.yaml]\nlinks: [copper-800g]\nsizes: [4K]\n")
    assert len(stored.points[0].params()["topology_sha256"]) == 64
    assert schema.check(records.measured(stored.points[0]), stored.points[0].id)


def test_a_stored_name_that_climbs_out_never_makes_a_file_outside_out(tmp_path, capsys):
    """`report` builds file names from collective and algorithm names: a record whose name
    is a path is not a record (and the writer's names are sanitised besides)."""
    p = records.point()
    bad = records.measured(p)
    bad["point"]["collective"] = "x/../../../../escaped"
    path = tmp_path / "r.sqlite"
    _store_with(path, [(p.id, json.dumps(bad).encode())])
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    assert main(["report", "--db", str(path), "--out", str(work / "out")]) == 0
    assert "collective must be a name" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped*"))
    assert {q.parent for q in (work / "out").iterdir()} == {work / "out"}


def test_text_no_utf_8_output_can_hold_is_a_bad_record(tmp_path):
    """JSON may spell a lone surrogate (\\udc80); written to a UTF-8 file or stdout it
    would fail half-way through an export."""
    record = records.measured(campaign="a\udc80b")
    with pytest.raises(schema.BadRecord, match="holds text that is not UTF-8"):
        schema.check(json.loads(json.dumps(record)))
    path = tmp_path / "r.sqlite"
    _store_with(path, [("s", json.dumps(dict(record, id="s")).encode())])
    with open_store(str(path), create=False) as store:
        assert len(store.records()) == 1 and "not UTF-8" in store.rejected[0]


@pytest.mark.parametrize("scheme", ["", "jsonl://"])
def test_a_store_that_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, scheme):
    """A FIFO would hang a writer, a device would be written through: one line instead."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/null")):
        for create in (True, False):
            with pytest.raises(NetwallError, match=f"{path} is not a regular file$"):
                open_store(f"{scheme}{path}", create=create)


def test_duplicate_points_are_measured_once_and_resume_counts_right(tmp_path):
    from emulator.experiments.runner import run_campaign
    from tests.unit.test_campaign import FakeEmulation

    c = loads("name: d\ntopologies: [pair, pair]\nlinks: [copper-800g]\n"
              "sizes: [64K, 65536, 128K]\ndilation: 1000\n")
    with open_store(str(tmp_path / "d.sqlite")) as store:
        first = run_campaign(c, store, io.StringIO(), emulation=FakeEmulation)
        assert first["measured"] == 2 and len(store.records()) == 2
        progress = io.StringIO()
        again = run_campaign(c, store, progress, emulation=FakeEmulation)
    assert again == {"measured": 0, "skipped": 0, "wrong": 0}
    assert "resuming: 2 of 2 points are stored already" in progress.getvalue()


def test_a_user_profile_is_identified_by_its_definition(tmp_path, monkeypatch):
    """A profile from NETWALL_PROFILE_PATH defines the point: edited, the point is new;
    netwall's own profiles leave ids as they were (the built-in ids are pinned elsewhere)."""
    from emulator.models.profiles import BUILTIN_DIR

    text = (BUILTIN_DIR / "copper-800g.yaml").read_text().replace("name: copper-800g",
                                                                  "name: my-copper")
    (tmp_path / "my-copper.yaml").write_text(text)
    monkeypatch.setenv("NETWALL_PROFILE_PATH", str(tmp_path))
    spec = "name: u\ntopologies: [pair]\nlinks: [my-copper, copper-800g]\nsizes: [4K]\n"
    mine, builtin = loads(spec).points
    assert mine.profiles_sha256 and builtin.profiles_sha256 is None
    assert "profiles_sha256" not in builtin.params()
    (tmp_path / "my-copper.yaml").write_text(text.replace("value: 4.5", "value: 5.0"))
    edited, same = loads(spec).points
    assert edited.id != mine.id and same.id == builtin.id
