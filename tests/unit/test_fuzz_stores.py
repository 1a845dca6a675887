"""Stores and task files against bytes nobody meant (hypothesis): a reader gives usable
records, names the rest, or says one line (NetwallError); never another exception, and its
memory stays bounded by the limits, not by what the file claims.

Strategies mix free bytes, free JSON and near-misses of a real record (one key removed,
retyped or nested deep), since near-misses are what reach the schema's deep checks.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.experiments import schema
from emulator.experiments.export import export
from emulator.experiments.slurm import merge
from emulator.experiments.store import JsonlStore, open_store
from foundation.errors import NetwallError
from tests import records

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                    st.sampled_from([10**400 // 10**380, -1, 2**63, float("inf"), "",
                                     "x/../../..", "=cmd", "a\udc80"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
BASE = records.measured()


@st.composite
def near_miss(draw) -> bytes:
    """A real record with one thing changed, as JSON text."""
    record = json.loads(json.dumps(draw(st.sampled_from(
        [BASE, records.skipped(), records.measured(campaign="=x")]))))
    where = record
    path = draw(st.lists(st.sampled_from(["point", "result", "host", "fidelity"]), max_size=2))
    for key in path:
        if isinstance(where.get(key), dict):
            where = where[key]
    key = draw(st.sampled_from(sorted(where)))
    action = draw(st.sampled_from(["drop", "retype", "deep"]))
    if action == "drop":
        del where[key]
    elif action == "retype":
        where[key] = draw(VALUES)
    else:
        depth = draw(st.integers(1, 3000))
        return json.dumps(record).replace(f'"{key}": ', f'"{key}": ' + "[" * depth, 1
                                          ).encode()[:-1] + b"]" * depth + b"}"
    return json.dumps(record).encode()


RAW = st.one_of(st.binary(max_size=300), VALUES.map(lambda v: json.dumps(v).encode()),
                near_miss())


def _read_all(url: str) -> list[dict]:
    """Everything a reader does with a store, inside a memory bound."""
    tracemalloc.start()
    try:
        with open_store(url, create=False) as store:
            got = store.records()
            for r in got:
                assert store.has(r["id"]) and schema.check(r) is r
            for fmt in ("csv", "json"):  # as UTF-8 bytes, as a file or stdout takes them
                out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
                export(got, fmt, out)
                out.flush()
            store.problem()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20
    return got


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=20), RAW), max_size=6))
def test_sqlite_rows_are_records_or_named(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.sqlite"
        with open_store(str(path)):
            pass
        db = sqlite3.connect(path)
        with db:
            for key, raw in rows:
                db.execute("INSERT OR REPLACE INTO points VALUES (?, 'point', 'ok', '', ?)",
                           (key, raw))
        db.close()
        got = _read_all(str(path))
        assert len(got) <= len(rows)


@FUZZ
@given(st.lists(RAW, max_size=6), st.booleans())
def test_task_files_merge_records_or_name_them(lines, newline_at_end):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
        (folder / "task-0.jsonl").write_bytes(text)
        got = _read_all(f"jsonl://{folder}/task-0.jsonl")
        with open_store(str(folder / "c.sqlite")) as store:
            merged = merge(folder, store)
            assert merged.new == len(got) and len(store.records()) == len(got)
            again = merge(folder, store)
            assert again.new == 0 and again.same == len(got)


@FUZZ
@given(st.binary(max_size=4096))
def test_any_file_as_a_store_is_records_or_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.sqlite"
        path.write_bytes(data)
        try:
            _read_all(str(path))
        except NetwallError as e:
            assert "\n" not in str(e)
        assert path.read_bytes() == data and sorted(p.name for p in Path(tmp).iterdir()) == \
            ["x.sqlite"]


def test_a_huge_line_is_skipped_in_bounded_memory(tmp_path):
    """A 64 MiB line (four times the record limit) costs at most a record's worth."""
    path = tmp_path / "task-0.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"pad": "')
        for _ in range(64):
            f.write(b"x" * 2**20)
        f.write(b'"}\n')
        f.write(json.dumps(BASE).encode() + b"\n")
    tracemalloc.start()
    try:
        store = JsonlStore.open(str(path), create=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r["id"] for r in store.records()] == [BASE["id"]]
    assert "line 1: is more than" in store.rejected[0]
    assert peak < 40 * 2**20  # one record's limit (16 MiB) read at most, plus its copy
