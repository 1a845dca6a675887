"""Tables as text: aligned plain columns for terminals and logs, and Markdown for reports.

Every table netwall prints or writes goes through here, so they all read alike: a header, a
rule of dashes, names left-aligned and numbers right-aligned, two spaces between columns,
no trailing blanks. Nothing is added to the cells but spaces, dashes and (in Markdown) pipes:
no box drawing, no colour, whatever the output, so a table reads the same on a terminal, in
a CI log, through a pipe or quoted in a lab.

Cells are formatted by the caller (a table does not know how many digits a figure deserves);
anything not a string goes through str(), None is an empty cell, and a line break becomes a
space. `align` gives one character a column, "<" (left) or ">" (right); without it a column
is right-aligned when every cell it has, other than "" and "-", starts with a number ("800",
"-1.5%", "64 MiB", "2.3x", "inf"), and left-aligned otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

GAP = "  "  # between columns of a plain table
PIPE = "\\|"  # a "|" inside a Markdown cell
BLANKS = ("", "-")  # cells that say "nothing here" and do not decide a column's alignment
_NUMBER = re.compile(r"[-+]?(\d|\.\d|inf\b|nan\b)", re.IGNORECASE)


def _cells(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[list[str]]:
    """The rows as strings, each checked to have one cell a column."""
    out = []
    for number, row in enumerate(rows, 1):
        if len(row) != len(columns):
            raise ValueError(f"table row {number} has {len(row)} cells for {len(columns)} "
                             f"columns: {list(row)!r}")
        out.append(["" if cell is None else " ".join(str(cell).splitlines()) for cell in row])
    return out


def _alignment(columns: Sequence[str], body: list[list[str]], align: str | None) -> str:
    """One of "<" or ">" a column: as given, or ">" for a column of numbers."""
    if align is None:
        return "".join(
            ">" if (cells := [r[i] for r in body if r[i] not in BLANKS])
            and all(_NUMBER.match(c) for c in cells) else "<"
            for i in range(len(columns)))
    if len(align) != len(columns) or set(align) - {"<", ">"}:
        raise ValueError(f"align {align!r}: one '<' or '>' for each of {len(columns)} columns")
    return align


def table(columns: Sequence[str], rows: Iterable[Sequence[object]],
          align: str | None = None) -> str:
    """Aligned plain text: the header, a rule of dashes, one line a row (no final newline)."""
    body = _cells(columns, rows)
    sides = _alignment(columns, body, align)
    lines = [list(columns), *body]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    lines.insert(1, ["-" * w for w in widths])
    return "\n".join(
        GAP.join(cell.ljust(w) if side == "<" else cell.rjust(w)
                 for cell, w, side in zip(line, widths, sides, strict=True)).rstrip()
        for line in lines)


def markdown(columns: Sequence[str], rows: Iterable[Sequence[object]],
             align: str | None = None) -> str:
    """A Markdown (GitHub) table, cells unpadded: `| a | b |`, `|---|---:|`, then the rows."""
    body = _cells(columns, rows)
    sides = _alignment(columns, body, align)

    def line(cells: Iterable[str]) -> str:
        return "|" + "|".join(f" {c.replace('|', PIPE)} " if c else " " for c in cells) + "|"

    rule = "|" + "|".join("---:" if side == ">" else "---" for side in sides) + "|"
    return "\n".join([line(columns), rule, *map(line, body)])
