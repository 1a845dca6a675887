"""Where campaign results live: one small interface, selected by URL.

A campaign may run for hours and be killed at any moment, so a store keeps each finished
point in one atomic write: after a crash it holds every point that was finished and nothing
half-written, and a rerun asks `has(id)` to skip them. SQLite (in WAL mode, one transaction
per point) is the embedded default; another backend only has to implement `Store` and be
added to STORES.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path

from foundation.errors import NetwallError
from foundation.outputs import make_dir

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")


class Store(ABC):
    """Records by point id; `put` is all or nothing."""

    @classmethod
    @abstractmethod
    def open(cls, location: str, create: bool = True) -> Store:
        """Open the store at `location` (the URL without its scheme)."""

    @abstractmethod
    def has(self, point_id: str) -> bool: ...

    @abstractmethod
    def put(self, point_id: str, record: dict) -> None:
        """Store one record atomically, replacing any earlier record of that id."""

    @abstractmethod
    def records(self) -> list[dict]:
        """Every record, in the order they were first stored."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SqliteStore(Store):
    """One table, one row per point: id, kind, status, time and the record as JSON."""

    SCHEMA = ("CREATE TABLE IF NOT EXISTS points (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
              "status TEXT NOT NULL, finished TEXT NOT NULL, record TEXT NOT NULL)")

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, location: str, create: bool = True) -> SqliteStore:
        path = Path(location)
        if not create and not path.is_file():
            raise NetwallError(f"no results database at {location}")
        if path.is_symlink():  # a root process must not write where a planted link points
            raise NetwallError(f"results database {location} is a symbolic link; name the "
                               "file it points to instead")
        try:
            make_dir(path.parent)
            db = sqlite3.connect(path, timeout=30)
            # WAL: readers (status, report) never block the runner, and a killed writer
            # leaves the database as of its last commit.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with db:
                db.execute(cls.SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise NetwallError(f"cannot open results database {location}: {e}") from None
        return cls(db, location)

    def has(self, point_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM points WHERE id = ?", (point_id,)).fetchone() \
            is not None

    def put(self, point_id: str, record: dict) -> None:
        row = (point_id, record.get("kind", "point"), record.get("status", "ok"),
               record.get("time", ""), json.dumps(record))
        with self.db:  # one transaction: committed whole or rolled back
            self.db.execute("INSERT INTO points (id, kind, status, finished, record) "
                            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                            "kind = excluded.kind, status = excluded.status, "
                            "finished = excluded.finished, record = excluded.record", row)

    def records(self) -> list[dict]:
        rows = self.db.execute("SELECT record FROM points ORDER BY rowid").fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        self.db.close()


class JsonlStore(Store):
    """One JSON record a line, appended and synced: the file a Slurm task writes alone
    (emulator.experiments.slurm), safe on NFS where SQLite's locking is not. A line cut
    short by a killed writer is not a record; the last record of an id wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records = _read_lines(path)

    @classmethod
    def open(cls, location: str, create: bool = True) -> JsonlStore:
        path = Path(location)
        if not create and not path.is_file():
            raise NetwallError(f"no results file at {location}")
        if path.is_symlink():
            raise NetwallError(f"results file {location} is a symbolic link; name the file it "
                               "points to instead")
        make_dir(path.parent)
        return cls(path)

    def has(self, point_id: str) -> bool:
        return point_id in self._records

    def put(self, point_id: str, record: dict) -> None:
        line = json.dumps(dict(record, id=point_id)) + "\n"
        with open(self.path, "a") as f:
            if f.tell() and not _ends_in_newline(self.path):
                f.write("\n")  # end a line a killed writer cut short: it stays no record
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._records[point_id] = record

    def records(self) -> list[dict]:
        return list(self._records.values())

    def close(self) -> None:
        pass


def _read_lines(path: Path) -> dict[str, dict]:
    records: dict[str, dict] = {}
    if not path.is_file():
        return records
    for line in path.read_text().split("\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # empty, or cut short
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            records[record["id"]] = record
    return records


def _ends_in_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


STORES: dict[str, type[Store]] = {"sqlite": SqliteStore, "jsonl": JsonlStore}


def open_store(url: str, create: bool = True) -> Store:
    """The store a URL names: `sqlite:///abs/path.sqlite`, `sqlite://rel/path` or a bare path
    (SQLite). `create=False` refuses to start an empty store (for readers)."""
    match = _SCHEME.match(url)
    scheme, location = (match.group(1).lower(), match.group(2)) if match else ("sqlite", url)
    if scheme not in STORES:
        raise NetwallError(f"no store for scheme '{scheme}' (available: {', '.join(STORES)})")
    if not location:
        raise NetwallError(f"store URL {url!r} names no location")
    return STORES[scheme].open(location, create=create)
