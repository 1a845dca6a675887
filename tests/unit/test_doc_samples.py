"""Every sample output quoted in the README, docs and labs is in the format the code prints
today: each table's column line is compared with the one the formatter makes (not a copy
of it), so a new column (as `exposed` was) fails here until the docs show it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emulator.cli import comparison, nccltests, tables
from emulator.cli.listings import failures_table, reach_table
from emulator.models.calibration import Calibration
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


def spans(start: str) -> list[tuple[str, str]]:
    """(file, text) of every `code span` in the docs (README, docs, labs: BENCHMARKS.md keeps
    the runs of its day) that starts with `start`, its line breaks made single spaces."""
    found = []
    for p in DOCS:
        if p.name == "BENCHMARKS.md":
            continue
        prose = re.sub(r"^\s*```.*?^\s*```", "", p.read_text(), flags=re.M | re.S)
        for span in re.findall(r"`([^`]+)`", prose):
            text = re.sub(r"\s*\n\s*", " ", span).strip()
            if text.startswith(start):
                found.append((p.relative_to(ROOT).as_posix(), text))
    return found


def test_quoted_calibrations_are_what_netwall_check_prints():
    """`netwall check`'s lines quoted in the labs, rendered again by the code from the
    figures they quote: a changed wording or rounding fails here."""
    summaries, variations = spans("agents carry "), spans("over 3 rounds ")
    assert summaries and variations, "no `netwall check` sample in the docs"
    for where, text in summaries:
        m = re.match(r"agents carry ([\d.]+) Gb/s .* costs (\d+) us .* at (\d+) ranks"
                     r"(?: \(measured (.+)\))?$", text)
        assert m, f"{where}: not a calibration summary: {text}"
        cal = Calibration(float(m[1]), int(m[2]) * 1e-6, int(m[3]), "m", m[4] or "")
        want = cal.summary() if m[4] else cal.summary().split(" (measured")[0]
        assert text == want, f"{where}: {text!r} is not what netwall prints: {want!r}"
    for where, text in variations:
        m = re.match(r"over \d+ rounds the capacity varied by (\d+)% and the step cost by "
                     r"(\d+)%$", text)
        assert m, f"{where}: not a calibration's variation: {text}"
        cal = Calibration(1.0, 1e-4, 8, "m", "", capacity_spread=int(m[1]) / 100,
                          step_spread=int(m[2]) / 100)
        assert text == cal.variation(), f"{where}: {text!r} is not {cal.variation()!r}"


def test_quoted_result_rows_have_todays_columns():
    """A `run` row quoted inline (size, count, type, ..., D, host) has one value for each
    of the columns the table prints."""
    rows = [(f, t) for f, t in spans("") if re.match(r"\d+\s{2,}\d+\s{2,}[a-z0-9]+\s{2,}", t)
            and re.search(r"\s(ok|FAIL)\s", t)]
    assert rows, "no quoted result row in the docs"
    names = tables.RUN_COLUMNS.lstrip("#").split()  # no name holds a space
    stale = [f"{f}: {t}" for f, t in rows if len(t.split()) != len(names)]
    assert not stale, f"rows without today's {len(names)} columns: {stale}"
