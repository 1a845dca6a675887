"""Stored campaign records as CSV or JSON for other tools (`netwall export`).

CSV is read by spreadsheets, which run a cell that starts with '=', '+', '-' or '@' (or a
tab or carriage return before one) as a formula: a campaign, experiment, profile or
topology file named `=HYPERLINK(...)` would run when the export is opened. Such a text cell
is prefixed with a single quote, as OWASP's rule for CSV injection says; numbers, negative
ones included, and text that is only a number stay as they are.
"""

from __future__ import annotations

import csv
import json
import math
import re
from typing import Any, TextIO

from emulator.experiments.report import COLUMNS, row
from foundation.errors import NetwallError

FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def cell(value: Any) -> Any:
    """`value` as a spreadsheet may read it without running it."""
    if isinstance(value, str) and value.startswith(FORMULA) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def export(records: list[dict], fmt: str, out: TextIO) -> None:
    """CSV: one row per point, the key columns. JSON: every record whole (non-finite numbers,
    e.g. hours between events that never happen, become null so any JSON reader takes it)."""
    if fmt == "csv":
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: cell(v) for k, v in row(r).items()} for r in records
                         if r["kind"] == "point")
    elif fmt == "json":
        json.dump(_finite(records), out, indent=1, allow_nan=False)
        out.write("\n")
    else:
        raise NetwallError(f"no export format {fmt!r} (use csv or json)")


def _finite(value: Any) -> Any:
    """Records as JSON allows them (the schema bounds their depth, so this recursion is)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
