"""The one schema of a stored record, checked on every read and every merge.

A store or a task file is input like any other: it may have been edited, cut short, copied
from another version, or be another application's file. Every record read back is checked
here, whole, before anything uses it: a record that fails is named (its file and id) and
skipped by readers or refused by a merge, never half-used. The schema is data: each kind of
record (a campaign point, the failures run, a compared design's row) is a mapping of key to
the shape of its value, checked by one small walker. Keys the schema does not name are kept
and not checked (a newer netwall may add some), but no value may nest deeper than MAX_DEPTH.
docs/campaigns.md describes the records.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any

#: How deep any value of a record may nest (real records nest 4 deep).
MAX_DEPTH = 32


@dataclass(frozen=True)
class Opt:
    """A key that may be missing."""

    shape: Any


@dataclass(frozen=True)
class MapOf:
    """A mapping of any names to values of one shape."""

    shape: Any


@dataclass(frozen=True)
class OneOf:
    """One of a few literal values."""

    values: tuple


@dataclass(frozen=True)
class Name:
    """A name netwall gives (a collective, an algorithm): it may name a file, so it is never
    a path (docs/campaigns.md)."""

    pattern: re.Pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,63}")


NAME = Name()
INT = "an integer"
NUMBER = "a finite number"
ANY_NUMBER = "a number"  # infinity allowed: hours between events that never happen
TEXT = "a string"
BOOL = "true or false"
ANY = "anything"

POINT = {
    "experiment": TEXT, "topology": TEXT, "link": TEXT, "gpu": Opt(TEXT), "spine_link": TEXT,
    "layout": (TEXT, None), "dilation": (NUMBER, None), "collective": NAME, "algorithm": NAME,
    "size": INT, "faults": [TEXT], "repetition": INT, "seed": INT, "iters": INT, "warmup": INT,
    "topology_sha256": Opt(TEXT), "profiles_sha256": Opt(TEXT),
}
RESULT = {
    "time_s": NUMBER, "model_emulated_time_s": NUMBER, "busbw_gbps": NUMBER,
    "algbw_gbps": NUMBER, "joules_per_gb": NUMBER, "model_error": Opt((ANY_NUMBER, None)),
    "check": Opt((BOOL, None)), "retransmitted_bytes": Opt(ANY_NUMBER),
    "fidelity": Opt({"faithful": Opt((BOOL, None)), "host_error": Opt((ANY_NUMBER, None)),
                     "flags": Opt([TEXT])}),
    "slowdown": Opt((ANY_NUMBER, None)), "faults_not_struck": Opt([TEXT]),
    "dilation": Opt((NUMBER, None)),
}
PROVENANCE = {"id": TEXT, "campaign": TEXT, "netwall": TEXT, "host": {"node": TEXT},
              "time": TEXT}
#: One profile's fleet in a failures record: emulator.models.reliability.simulate's keys.
FLEET = {key: ANY_NUMBER for key in (
    "links", "failures_per_day", "failures_per_day_p5", "failures_per_day_p95",
    "link_down_per_day", "link_down_per_day_p5", "link_down_per_day_p95",
    "hours_between_interruptions")}
FAILURES = {
    **PROVENANCE, "kind": OneOf(("failures",)), "status": OneOf(("ok",)),
    "params": {"gpus": INT, "days": NUMBER, "trials": INT, "links": MapOf(ANY_NUMBER)},
    "result": MapOf(MapOf(MapOf(ANY))),
}
ROW = {  # emulator.experiments.compare.Row, key for key (a test keeps them equal)
    "workload": TEXT, "size": (INT, None), "design": TEXT, "gpus": INT, "domains": INT,
    "domain_gpus": INT, "racks_per_domain": INT, "scale_up": TEXT, "scale_out": TEXT,
    "feasible": BOOL, "reason": (TEXT, None), "time_s": (NUMBER, None),
    "busbw_gbps": (NUMBER, None), "energy_j": (NUMBER, None), "watts_per_gpu": ANY_NUMBER,
    "failures_per_day": ANY_NUMBER, "stalls_per_day": ANY_NUMBER, "scale_up_failure": TEXT,
    "scale_out_failure": TEXT, "faithful": (BOOL, None), "exposed_share": Opt((NUMBER, None)),
    "algorithm": Opt((TEXT, None)),  # what the calls ran (issue 28); rows before it lack it
    "why": Opt((TEXT, None)),  # why that algorithm (NCCL's choice, or named); likewise
    "dilation": Opt((NUMBER, None)),  # where it was measured; rows before 2026-12-06 lack it
    "host_error": Opt((NUMBER, None)),  # the proof's host share; likewise
}
DESIGN = {**PROVENANCE, "kind": OneOf(("design",)), "status": OneOf(("ok", "skipped")),
          "row": ROW}
MEASURED = {**PROVENANCE, "kind": OneOf(("point",)), "status": OneOf(("ok",)), "point": POINT,
            "result": RESULT}
SKIPPED = {**PROVENANCE, "kind": OneOf(("point",)), "status": OneOf(("skipped",)),
           "point": POINT, "reason": TEXT, "message": TEXT}


class BadRecord(ValueError):
    """Why a record is not one netwall can use (the message names the key)."""


def check(record: Any, point_id: str | None = None) -> dict:
    """`record` if it is a whole, well-formed record (of id `point_id`, when given);
    BadRecord naming the first key at fault otherwise."""
    if not isinstance(record, dict):
        raise BadRecord(f"is {_what(record)}, not a record")
    _depth(record)
    kind = record.get("kind")
    if kind == "point":
        _walk(SKIPPED if record.get("status") == "skipped" else MEASURED, record, "")
    elif kind == "failures":
        _walk(FAILURES, record, "")
        for name, fleets in record["result"].items():  # each profile's own fleet
            if name not in fleets:
                raise BadRecord(f"has no key result.{name}.{name}")
            _walk(FLEET, fleets[name], f"result.{name}.{name}")
    elif kind == "design":
        _walk(DESIGN, record, "")
        extra = set(record["row"]) - set(ROW)
        if extra:
            raise BadRecord(f"row has unknown key(s) {', '.join(sorted(extra))[:80]}")
    else:
        raise BadRecord(f"kind is {_shown(kind)}, not point, failures or design")
    if point_id is not None and record["id"] != point_id:
        raise BadRecord(f"its id {_shown(record['id'])} differs from the one it is stored "
                        "under")
    return record


def _walk(shape: Any, value: Any, at: str) -> None:
    if isinstance(shape, tuple):  # any of several shapes (None: null)
        if any(_fits(s, value, at) for s in shape):
            return
        raise BadRecord(f"{at or 'the record'} must be "
                        f"{' or '.join('null' if s is None else _name(s) for s in shape)}, got "
                        f"{_shown(value)}")
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise BadRecord(f"{at or 'the record'} must be a mapping, got {_shown(value)}")
        for key, sub in shape.items():
            if key not in value:
                if isinstance(sub, Opt):
                    continue
                raise BadRecord(f"has no key {at + '.' if at else ''}{key}")
            _walk(sub.shape if isinstance(sub, Opt) else sub, value[key],
                  f"{at}.{key}" if at else key)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise BadRecord(f"{at} must be a list, got {_shown(value)}")
        for i, item in enumerate(value):
            _walk(shape[0], item, f"{at}[{i}]")
    elif isinstance(shape, MapOf):
        if not isinstance(value, dict):
            raise BadRecord(f"{at} must be a mapping, got {_shown(value)}")
        for key, item in value.items():
            _walk(shape.shape, item, f"{at}.{key}")
    elif isinstance(shape, Name):
        if not isinstance(value, str) or not shape.pattern.fullmatch(value):
            raise BadRecord(f"{at} must be a name (letters, digits, '_', '+', '-'), got "
                            f"{_shown(value)}")
    elif isinstance(shape, OneOf):
        if value not in shape.values or isinstance(value, bool):
            raise BadRecord(f"{at} must be {' or '.join(shape.values)}, got {_shown(value)}")
    elif not _scalar(shape, value):
        raise BadRecord(f"{at} must be {shape}, got {_shown(value)}")


def _fits(shape: Any, value: Any, at: str) -> bool:
    if shape is None:
        return value is None
    try:
        _walk(shape, value, at)
    except BadRecord:
        return False
    return True


def _scalar(shape: str, value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return {INT: isinstance(value, int) and not isinstance(value, bool),
            NUMBER: number and math.isfinite(value),
            ANY_NUMBER: number and not (isinstance(value, float) and math.isnan(value)),
            TEXT: isinstance(value, str), BOOL: isinstance(value, bool),
            ANY: True}[shape]


def _depth(record: dict) -> None:
    """Refuse a value nested deeper than MAX_DEPTH, or a string no UTF-8 output can hold (a
    lone surrogate, which JSON's \\udc80 can spell), without recursion."""
    stack: list[tuple[Any, int]] = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRecord(f"nests deeper than {MAX_DEPTH} levels")
        children = [*value, *value.values()] if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and not _encodable(child):
                raise BadRecord(f"holds text that is not UTF-8 ({_shown(child)})")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _name(shape: Any) -> str:
    if isinstance(shape, dict | MapOf):
        return "a mapping"
    if isinstance(shape, list):
        return "a list"
    return str(shape)


def _what(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _shown(value: Any) -> str:
    return reprlib.repr(value)[:40]
