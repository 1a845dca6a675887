"""Every sample output quoted in the README, docs and labs is in the format the code prints
today: each table's column line is compared with the one the formatter makes (not a copy
of it), so a new column (as `exposed` was) fails here until the docs show it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.cli import comparison, nccltests, tables
from emulator.cli.listings import failures_table, reach_table
from emulator.models.profiles import catalogue
from emulator.models.reliability import fleet, simulate
from foundation.text.table import table
from topologies.layout import parse_layout, reach_report

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "BENCHMARKS.md", *(ROOT / "docs").glob("*.md"),
               *(ROOT / "labs").glob("*.md"), *(ROOT / "labs" / "answers").glob("*.md")])


def columns(line: str) -> list[str]:
    """A column line's names: separated by two spaces or more (names hold single ones)."""
    return re.split(r"\s{2,}", line.strip().lstrip("#").strip())


def quoted(marker) -> list[tuple[str, int, str]]:
    """(file, line number, line) of every line in the docs that `marker` picks out."""
    return [(p.relative_to(ROOT).as_posix(), n, line)
            for p in DOCS for n, line in enumerate(p.read_text().splitlines(), 1)
            if marker(line)]


COMPARE = columns(table(comparison.COLUMNS, [["x"] * len(comparison.COLUMNS)])
                  .splitlines()[0])
RUN = columns(tables.RUN_COLUMNS)
FAILURES = columns(failures_table(simulate(fleet(1000, {"optical-800g": 3}), catalogue(), 1, 10,
                                           1)).splitlines()[0])
NCCL = columns(next(line for line in nccltests.header(nccltests.Settings(
    collective="allreduce", algorithm="ring", topology="star:8", link="copper-800g",
    hosts=("gpu0",), min_bytes=1024, max_bytes=2048, step_factor=2, warmup=1, iters=5,
    check_iters=1, root=0, pid=1, gpu="h100", link_delay="netem")) if "redop" in line))
REACH = columns(reach_table(reach_report(64, parse_layout(""), catalogue())).splitlines()[0])
SAMPLES = {
    "compare": (lambda line: line.startswith("design ") and "scale-up" in line, COMPARE),
    "run": (lambda line: line.startswith("#") and " count " in line and "proto" in line,
            RUN),
    "failures": (lambda line: line.startswith("profile ") and "link down/day" in line,
                 FAILURES),
    "reach": (lambda line: line.startswith("profile ") and "reach m" in line, REACH),
    "nccl-tests": (lambda line: line.startswith("#") and "redop" in line and "count" in line,
                   NCCL),
}


@pytest.mark.parametrize("kind", SAMPLES)
def test_every_quoted_column_line_is_todays(kind):
    marker, want = SAMPLES[kind]
    found = quoted(marker)
    assert found, f"no {kind} sample in the docs: the marker no longer finds them"
    stale = [f"{f}:{n}" for f, n, line in found if columns(line) != want]
    assert not stale, f"{kind} samples not in today's format ({' | '.join(want)}): {stale}"


def test_the_formatters_columns_are_what_the_test_compares():
    assert "exposed" in COMPARE and COMPARE[0] == "design" and len(COMPARE) == \
        len(comparison.COLUMNS)
    assert RUN[:3] == ["size", "count", "type"] and RUN[-1] == "host"
