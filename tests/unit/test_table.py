"""foundation.text.table: plain aligned tables and Markdown tables, from hand-made rows."""

from __future__ import annotations

import pytest

from foundation.text.table import markdown, table


def test_plain_table_aligns_names_left_and_numbers_right():
    text = table(("name", "rate", "share"), [("copper-800g", 800, "50.0%"),
                                             ("optical-1.6t", "1600", "-5.5%")])
    assert text.splitlines() == [
        "name          rate  share",
        "------------  ----  -----",
        "copper-800g    800  50.0%",
        "optical-1.6t  1600  -5.5%",
    ]


def test_widths_come_from_the_widest_cell_header_included():
    lines = table(("a long header", "n"), [("x", 123456)]).splitlines()
    assert lines[0] == "a long header       n"
    assert lines[1] == "-------------  ------"
    assert lines[2] == "x              123456"
    assert len({len(line) for line in lines}) == 1  # numbers end the line: nothing stripped


def test_no_trailing_blanks_and_nothing_but_ascii_rule_characters():
    text = table(("name", "note"), [("a", ""), ("bbbbbb", "x")])
    assert all(line == line.rstrip() for line in text.splitlines())
    assert text.splitlines()[2] == "a"
    assert set(text) <= set("abnmeotx -\n")  # no box drawing, no escape codes
    assert not text.endswith("\n")


def test_empty_rows_give_the_header_and_rule():
    assert table(("profile", "joules"), []) == "profile  joules\n-------  ------"
    assert markdown(("profile", "joules"), []) == "| profile | joules |\n|---|---|"


def test_numbers_with_units_signs_and_infinity_are_numbers():
    for cell in ("64 MiB", "2.3x", "-1.5%", "+0.1%", ".5", "inf", "1.0e-13", "3 [1, 5]"):
        assert table(("h", "v"), [("a", cell), ("b", "1")]).splitlines()[3] == \
            "b" + " " * (2 + max(len(cell), 1) - 1) + "1"


def test_placeholders_and_empty_cells_do_not_decide_alignment():
    lines = table(("what", "value"), [("a", "12"), ("total", "-"), ("c", "")]).splitlines()
    assert lines[2] == "a         12"
    assert lines[3] == "total      -"
    lines = table(("what", "state"), [("a", "-"), ("b", "")]).splitlines()
    assert lines[2] == "a     -"  # a column of nothing but placeholders stays left


def test_a_column_with_any_word_is_left_aligned():
    lines = table(("D", "x"), [("auto", 1), ("5000", 2)]).splitlines()
    assert lines[2:] == ["auto  1", "5000  2"]
    assert table(("x",), [("no",), ("yes",)]).splitlines()[2:] == ["no", "yes"]


def test_explicit_alignment_wins():
    lines = table(("name", "n"), [("800g", "7"), ("x", "12")], align="><").splitlines()
    assert lines == ["name  n", "----  --", "800g  7", "   x  12"]


@pytest.mark.parametrize("align", ["<", "<<<", "<^", "lr"])
def test_bad_alignment_is_refused(align):
    with pytest.raises(ValueError, match="one '<' or '>' for each of 2 columns"):
        table(("a", "b"), [], align=align)


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="row 2 has 1 cells for 2 columns"):
        table(("a", "b"), [("x", "y"), ("z",)])
    with pytest.raises(ValueError, match="row 1 has 3 cells"):
        markdown(("a", "b"), [("x", "y", "z")])


def test_cells_are_stringified_and_line_breaks_flattened():
    lines = table(("a", "b"), [(None, 1.5), ("two\nlines", True)]).splitlines()
    assert lines[2] == "           1.5"  # "True" is a word: the column is left-aligned
    assert lines[3] == "two lines  True"


def test_rows_may_be_any_iterable_of_sequences():
    rows = ((str(i), i * i) for i in range(3))
    assert table(["i", "square"], rows).splitlines()[-1] == "2       4"


def test_markdown_form():
    text = markdown(("link", "size", "error", "verdict"),
                    [("copper-800g", "1 MiB", "-0.3%", "faithful"),
                     ("optical-800g", "16 MiB", "+12.0%", "**flagged**")])
    assert text.splitlines() == [
        "| link | size | error | verdict |",
        "|---|---:|---:|---|",
        "| copper-800g | 1 MiB | -0.3% | faithful |",
        "| optical-800g | 16 MiB | +12.0% | **flagged** |",
    ]


def test_markdown_empty_cells_and_pipes():
    text = markdown(("GPUs", "links", "outcome"), [(256, "", "failed: a | b")], align=">><")
    assert text.splitlines()[1:] == ["|---:|---:|---|", "| 256 | | failed: a \\| b |"]
