"""BENCHMARKS.md rerun in parts: a section measured again takes the place of the old one,
says when it was measured and how long that took, and every other section stays as it was."""

from __future__ import annotations

import pytest

from bench import run
from bench import sections as parts

OLD = """# netwall benchmarks

An old preamble.

## Trust at speed: the verdict (bench/verdict.py)

old verdict table

## Compute gaps skipped (issue 25, measured 2026-12-05, by hand)

kept as measured by hand

## What the live view costs a run (bench/view.py, measured 2026-12-01 in 3 min)

old view table
"""


def test_a_section_measured_again_replaces_its_namesake_and_keeps_the_rest():
    fresh = parts.stamped("\n## Trust at speed: the verdict (bench/verdict.py)\n\nnew table\n",
                          "bench/verdict.py", "2026-12-05", 312.0)
    text = parts.splice(OLD, [fresh], "# netwall benchmarks\n\nA new preamble.\n")
    _, found = parts.split(text)
    assert [parts.title(s) for s in found] == [
        "Trust at speed: the verdict", "Compute gaps skipped", "What the live view costs a run"]
    assert found[0].startswith(
        "## Trust at speed: the verdict (bench/verdict.py, measured 2026-12-05 in 5 min)\n")
    assert "new table" in found[0] and "old verdict table" not in text
    assert "kept as measured by hand" in found[1] and "old view table" in found[2]
    assert text.startswith("# netwall benchmarks\n\nA new preamble.\n\n## ")
    assert "An old preamble" not in text


def test_a_section_the_file_lacks_goes_at_the_end_and_short_runs_say_seconds():
    fresh = parts.stamped("## A new bench (bench/new.py)\nrows\n", "bench/new.py",
                          "2026-12-05", 42.4)
    text = parts.splice(OLD, [fresh], "# p\n")
    _, found = parts.split(text)
    assert parts.title(found[-1]) == "A new bench"
    assert found[-1].startswith("## A new bench (bench/new.py, measured 2026-12-05 in 42 s)")
    assert parts.splice(text, [fresh], "# p\n") == text  # splicing again changes nothing


def test_every_section_of_the_shipped_file_is_found_by_its_title():
    _, found = parts.split(run.OUT.read_text())
    titles = [parts.title(s) for s in found]
    assert len(titles) == len(set(titles)) >= len(run.SECTIONS)


def test_an_unknown_section_is_one_line_and_exit_2(capsys):
    assert run.main(["--only", "verdict,nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no section 'nonsense'" in err


@pytest.mark.parametrize("name", list(run.SECTIONS))
def test_every_bench_names_a_module_that_exists(name):
    assert (run.OUT.parent / "bench" / f"{name}.py").is_file()
