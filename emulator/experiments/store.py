"""Where campaign results live: one small interface, selected by URL.

A campaign may run for hours and be killed at any moment, so a store keeps each finished
point in one atomic write: after a crash it holds every point that was finished and nothing
half-written, and a rerun asks `has(id)` to skip them. SQLite (in WAL mode, one transaction
per point) is the embedded default; another backend only has to implement `Store` and be
added to STORES.

What is read back is input, not trusted: every record is checked against the one schema
(emulator.experiments.schema) before it is used, and one that fails is named (file and id)
in `rejected` and skipped, never half-used, so `has` is true only for a usable record (a
campaign re-measures a point whose record is bad). A record of more than MAX_RECORD_BYTES is
not read at all. Readers (`create=False`: export, report, status) open a store read-only and
change nothing in it; a file that is not a netwall store (another application's database, a
text file) is one line, for readers and writers alike.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from emulator.experiments.schema import BadRecord, check
from foundation.errors import NetwallError
from foundation.outputs import make_dir

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")
#: The longest record read back (real ones are a few KiB; a point's per-link counters grow
#: with the topology, 10k links is about 2 MiB).
MAX_RECORD_BYTES = 16 * 2**20
#: Bad records a store's `problem()` line names before it only counts the rest.
NAMED = 3
#: The reason given for a line or row that is not JSON at all (in a task file: most likely
#: a line a killed task cut short, which merge names but does not count as refused).
NOT_JSON = "is not JSON"


def same(a: dict, b: dict) -> bool:
    """Two records hold the same content (key order aside; NaN equals NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Store(ABC):
    """Records by point id; `put` is all or nothing."""

    #: Bad records met while reading, each named by file and id or line, with the reason.
    rejected: list[str]

    @classmethod
    @abstractmethod
    def open(cls, location: str, create: bool = True) -> Store:
        """Open the store at `location` (the URL without its scheme); `create=False` opens
        an existing store read-only."""

    @abstractmethod
    def get(self, point_id: str) -> dict | None:
        """The usable record of `point_id`, or None (none, or a bad one: see rejected)."""

    def has(self, point_id: str) -> bool:
        return self.get(point_id) is not None

    @abstractmethod
    def put(self, point_id: str, record: dict) -> None:
        """Store one record atomically, replacing any earlier record of that id."""

    @abstractmethod
    def add(self, point_id: str, record: dict) -> str:
        """Store `record` only if no record holds `point_id`, atomically: 'new', 'same'
        (an equal record is stored), or 'different' (another record is stored; kept)."""

    @abstractmethod
    def records(self) -> list[dict]:
        """Every usable record, in the order they were first stored."""

    @abstractmethod
    def close(self) -> None: ...

    def reject(self, where: str, error: BadRecord | ValueError | RecursionError) -> None:
        reason = str(error) if isinstance(error, BadRecord) else NOT_JSON \
            if not isinstance(error, RecursionError) else "nests too deep to read"
        line = f"{where}: {reason}"
        if line not in self.rejected:
            self.rejected.append(line)

    def problem(self) -> str | None:
        """One line naming the bad records met, or None."""
        return summary("skipped", "bad record(s)", self.rejected)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summary(verb: str, what: str, problems: list[str]) -> str | None:
    """One line naming the first NAMED problems and counting the rest; None for none."""
    if not problems:
        return None
    more = len(problems) - NAMED
    return (f"{verb} {len(problems)} {what}: {'; '.join(problems[:NAMED])}"
            + (f"; and {more} more" if more > 0 else ""))


def parse(raw: bytes | str, where: str, point_id: str | None, store: Store) -> dict | None:
    """A record from its stored text, checked; None (and named in store.rejected) if bad."""
    try:
        return check(json.loads(raw), point_id)
    except (ValueError, RecursionError) as e:  # BadRecord, JSON, UTF-8
        store.reject(where, e)
        return None


class SqliteStore(Store):
    """One table, one row per point: id, kind, status, time and the record as JSON."""

    COLUMNS = ("id", "kind", "status", "finished", "record")
    SCHEMA = ("CREATE TABLE IF NOT EXISTS points (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
              "status TEXT NOT NULL, finished TEXT NOT NULL, record TEXT NOT NULL)")

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self.db = connection
        self.path = path
        self.rejected = []

    @classmethod
    def open(cls, location: str, create: bool = True) -> SqliteStore:
        path = Path(location)
        if path.is_symlink():  # a root process must not write where a planted link points
            raise NetwallError(f"results database {location} is a symbolic link; name the "
                               "file it points to instead")
        _regular(path, location, "results database", create)
        try:
            if create:
                make_dir(path.parent)
                db = sqlite3.connect(path, timeout=30)
            else:
                # Read-only; a database no writer has open (no -wal file) is read as
                # immutable, so reading leaves no -wal or -shm file behind either.
                ro = "" if Path(f"{path}-wal").exists() else "&immutable=1"
                db = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro{ro}",
                                     uri=True, timeout=30)
            db.text_factory = bytes  # decoded per record: one bad row is one bad record
            cls._check_tables(db, location)
            if create:
                # WAL: readers (status, report) never block the runner, and a killed writer
                # leaves the database as of its last commit.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                with db:
                    db.execute(cls.SCHEMA)
        except sqlite3.DatabaseError as e:
            raise NetwallError(f"cannot open results database {location}: {e}") from None
        except OSError as e:
            raise NetwallError(f"cannot open results database {location}: {e.strerror or e}"
                               ) from None
        return cls(db, location)

    @classmethod
    def _check_tables(cls, db: sqlite3.Connection, location: str) -> None:
        """Refuse another application's database: tables but no `points`, or a `points`
        without netwall's columns."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return  # a new, empty database (a reader then finds no records)
        columns = {r[1] for r in db.execute("PRAGMA table_info(points)")}
        missing = [c for c in cls.COLUMNS if c.encode() not in columns]
        if missing:
            raise NetwallError(f"{location} is not a netwall results database (it has no "
                               f"table 'points' with columns {', '.join(cls.COLUMNS)})")

    def _read(self, sql: str, *args) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise NetwallError(f"cannot read results database {self.path}: {e}") from None

    def _write(self, sql: str, *args) -> int:
        try:
            with self.db:  # one transaction: committed whole or rolled back
                return self.db.execute(sql, args).rowcount
        except sqlite3.DatabaseError as e:
            raise NetwallError(f"cannot write results database {self.path}: {e}") from None

    def get(self, point_id: str) -> dict | None:
        rows = self._read("SELECT length(CAST(record AS BLOB)), CASE WHEN "
                          "length(CAST(record AS BLOB)) <= ? THEN CAST(record AS BLOB) END "
                          "FROM points WHERE id = ?", MAX_RECORD_BYTES, point_id)
        return self._record(point_id, *rows[0]) if rows else None

    def _record(self, point_id: str, size: int, raw: bytes | None) -> dict | None:
        where = f"{self.path} id {point_id[:40]!r}"
        if raw is None:
            self.reject(where, BadRecord("is null" if size is None else
                                         f"is {size} bytes, more than {MAX_RECORD_BYTES}"))
            return None
        return parse(raw, where, point_id, self)

    def put(self, point_id: str, record: dict) -> None:
        self._write("INSERT INTO points (id, kind, status, finished, record) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "kind = excluded.kind, status = excluded.status, "
                    "finished = excluded.finished, record = excluded.record",
                    *self._row(point_id, record))

    def add(self, point_id: str, record: dict) -> str:
        if self._write("INSERT INTO points (id, kind, status, finished, record) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                       *self._row(point_id, record)):
            return "new"
        stored = self._read("SELECT CAST(record AS BLOB) FROM points WHERE id = ?", point_id)
        try:
            return "same" if same(json.loads(stored[0][0]), record) else "different"
        except (ValueError, RecursionError):
            return "different"

    @staticmethod
    def _row(point_id: str, record: dict) -> tuple:
        return (point_id, record.get("kind", "point"), record.get("status", "ok"),
                record.get("time", ""), json.dumps(record))

    def records(self) -> list[dict]:
        out = []
        try:
            rows = self.db.execute(
                "SELECT id, length(CAST(record AS BLOB)), CASE WHEN length(CAST(record AS "
                "BLOB)) <= ? THEN CAST(record AS BLOB) END FROM points ORDER BY rowid",
                (MAX_RECORD_BYTES,))
            for key, size, raw in rows:
                name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
                record = self._record(name, size, raw)
                if record is not None:
                    out.append(record)
        except sqlite3.DatabaseError as e:
            raise NetwallError(f"cannot read results database {self.path}: {e}") from None
        return out

    def close(self) -> None:
        self.db.close()


class JsonlStore(Store):
    """One JSON record a line, appended and synced: the file a Slurm task writes alone
    (emulator.experiments.slurm), safe on NFS where SQLite's locking is not. A line cut
    short by a killed writer is not a record; the last usable record of an id wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected = []
        self._records = self._read() if path.is_file() else {}

    @classmethod
    def open(cls, location: str, create: bool = True) -> JsonlStore:
        path = Path(location)
        if path.is_symlink():
            raise NetwallError(f"results file {location} is a symbolic link; name the file it "
                               "points to instead")
        _regular(path, location, "results file", create)
        if create:
            make_dir(path.parent)
        try:
            return cls(path)
        except OSError as e:
            raise NetwallError(f"cannot read results file {location}: {e.strerror or e}"
                               ) from None

    def _read(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        with open(self.path, "rb") as f:
            for number, line in _lines(f):
                where = f"{self.path} line {number}"
                if line is None:
                    self.reject(where, BadRecord(f"is more than {MAX_RECORD_BYTES} bytes"))
                elif line.strip():
                    record = parse(line, where, None, self)
                    if record is not None:
                        records[record["id"]] = record
        return records

    def get(self, point_id: str) -> dict | None:
        return self._records.get(point_id)

    def put(self, point_id: str, record: dict) -> None:
        record = dict(record, id=point_id)
        line = json.dumps(record) + "\n"
        try:
            with open(self.path, "a") as f:
                if f.tell() and not _ends_in_newline(self.path):
                    f.write("\n")  # end a line a killed writer cut short: it stays no record
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise NetwallError(f"cannot write results file {self.path}: {e.strerror or e}"
                               ) from None
        self._records[point_id] = record

    def add(self, point_id: str, record: dict) -> str:
        stored = self._records.get(point_id)
        if stored is None:
            self.put(point_id, record)
            return "new"
        return "same" if same(stored, dict(record, id=point_id)) else "different"

    def records(self) -> list[dict]:
        return list(self._records.values())

    def close(self) -> None:
        pass


class NoStore(NetwallError):
    """A reader named a store that does not exist yet (a campaign not run: status reads it
    as empty)."""


def _regular(path: Path, location: str, what: str, create: bool) -> None:
    """A store is a regular file: one that exists for a reader, and nothing else (a FIFO,
    a device, a directory) in its place for a writer."""
    if path.exists() and not path.is_file():
        raise NetwallError(f"{what} {location} is not a regular file")
    if not create and not path.exists():
        raise NoStore(f"no {what} at {location}")


def _lines(f: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) of a file, reading at most MAX_RECORD_BYTES at a time: a longer
    line is skipped unread and given as None."""
    number = 0
    while line := f.readline(MAX_RECORD_BYTES + 1):
        number += 1
        if len(line) > MAX_RECORD_BYTES:
            while line and not line.endswith(b"\n"):
                line = f.readline(2**20)
            yield number, None
        else:
            yield number, line


def _ends_in_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


STORES: dict[str, type[Store]] = {"sqlite": SqliteStore, "jsonl": JsonlStore}


def locate(url: str) -> tuple[str, str]:
    """(scheme, location) of a store URL: `sqlite:///abs/path.sqlite`, `sqlite://rel/path`,
    `jsonl://path` or a bare path (SQLite); an unknown scheme or no location is one line."""
    match = _SCHEME.match(url)
    scheme, location = (match.group(1).lower(), match.group(2)) if match else ("sqlite", url)
    if scheme not in STORES:
        raise NetwallError(f"no store for scheme '{scheme}' (available: {', '.join(STORES)})")
    if not location.strip():
        raise NetwallError(f"store URL {url!r} names no location")
    if "\0" in location:
        raise NetwallError(f"store URL {url[:60]!r} holds a NUL character")
    return scheme, location


def open_store(url: str, create: bool = True) -> Store:
    """The store a URL names (see locate). `create=False` opens an existing store read-only
    and refuses to start an empty one (for readers)."""
    scheme, location = locate(url)
    return STORES[scheme].open(location, create=create)


def same_store(a: str, b: str) -> bool:
    """Two URLs name the same store (`--db x --db ./x`)."""
    (sa, la), (sb, lb) = locate(a), locate(b)
    return sa == sb and os.path.realpath(la) == os.path.realpath(lb)
