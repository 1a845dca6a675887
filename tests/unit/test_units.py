"""Tests for foundation.units: sizes, durations, percentages and rates, without root."""

from __future__ import annotations

import pytest

from emulator.cli.parsing import build_parser
from foundation.errors import NetwallError
from foundation.units import (
    MAX_SIZE,
    format_rate,
    format_size,
    parse_duration,
    parse_percent,
    parse_size,
)

K, M, G = 1 << 10, 1 << 20, 1 << 30


def one_line_error(fn, *args) -> str:
    with pytest.raises(NetwallError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, want", [
    ("4096", 4096), ("0", 0), ("64K", 64 * K), ("16M", 16 * M), ("1G", G), ("64k", 64 * K),
    ("8KB", 8 * K), ("4mb", 4 * M), ("512B", 512), (" 2M ", 2 * M), ("2 M", 2 * M),
    ("1024G", MAX_SIZE), (str(MAX_SIZE), MAX_SIZE),
])
def test_parse_size(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize("text", [
    "", " ", "abc", "-1", "-4K", "1.5M", "16T", "M", "K16", "0x10", "1e6", "16 MiB", "4,096",
    "1" * 16, "\x00", "a" * 1000,
])
def test_parse_size_rejects_what_is_not_a_size(text):
    message = one_line_error(parse_size, text)
    assert message.startswith("not a size: ") and message.endswith("(use e.g. 4096, 64K, 16M, 1G)")
    assert len(message) < 120  # a long value is cut short


@pytest.mark.parametrize("value", [None, 4096, 1.5, b"1M", ["1M"]])
def test_parse_size_rejects_what_is_not_text(value):
    assert one_line_error(parse_size, value).startswith("not a size: ")


@pytest.mark.parametrize("text", ["1025G", str(MAX_SIZE + 1), "1" * 15])
def test_parse_size_bound(text):
    assert one_line_error(parse_size, text) == f"size {text!r} is more than 1024 GiB"


@pytest.mark.parametrize("size, short, spaced", [
    (0, "0", "0 B"), (512, "512", "512 B"), (K, "1K", "1 KiB"), (1536, "1.5K", "1.5 KiB"),
    (64 * K, "64K", "64 KiB"), (M, "1M", "1 MiB"), (16 * M, "16M", "16 MiB"),
    (3 * G, "3G", "3 GiB"), (MAX_SIZE, "1024G", "1024 GiB"), (2.0 ** 20, "1M", "1 MiB"),
])
def test_format_size(size, short, spaced):
    assert format_size(size) == short
    assert format_size(size, spaced=True) == spaced


@pytest.mark.parametrize("size", [0, 4, 4096, 64 * K, 3 * M, 16 * M, G, 5 * G, MAX_SIZE])
def test_parse_size_reads_format_size_back(size):
    assert parse_size(format_size(size)) == size


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, want", [
    ("50us", 50e-6), ("2ms", 2e-3), ("0.1s", 0.1), ("20ns", 20e-9), ("3", 3.0), ("0", 0.0),
    ("1e-3", 1e-3), ("1e3ms", 1.0), ("2.5e+2us", 250e-6), (".5s", 0.5),
])
def test_parse_duration(text, want):
    assert parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("text", [
    "", "s", "5parsecs", "5m", "5 s", "-1s", "1.2.3s", "1e", "1e400s", "1e400", "5S", "inf",
    "nan", "\x00",
])
def test_parse_duration_rejects(text):
    assert one_line_error(parse_duration, text) == \
        f"{text!r} must be a time like 50us, 2ms or 0.1s"


@pytest.mark.parametrize("value", [None, 5, 0.5])
def test_parse_duration_rejects_what_is_not_text(value):
    assert "must be a time like 50us, 2ms or 0.1s" in one_line_error(parse_duration, value)


def test_parse_duration_names_what_it_reads():
    assert one_line_error(parse_duration, "5x", "fault f: the start") == \
        "fault f: the start must be a time like 50us, 2ms or 0.1s"


# --- percentages ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, want", [
    ("2%", 0.02), ("2", 0.02), ("0.5%", 0.005), (" 2% ", 0.02), ("99.9%", 0.999),
    ("1e-3", 1e-5),
])
def test_parse_percent(text, want):
    assert parse_percent(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "%", "abc", "2 %%x", "two%", None])
def test_parse_percent_rejects_what_is_not_a_percentage(text):
    assert one_line_error(parse_percent, text) == f"not a percentage: {text!r} (e.g. 2%)"


@pytest.mark.parametrize("text", ["0", "0%", "100%", "150%", "-1%", "nan", "inf%"])
def test_parse_percent_bounds(text):
    assert one_line_error(parse_percent, text) == f"must be between 0 and 100%, got {text!r}"


def test_the_cli_reads_percentages_with_parse_percent(capsys):
    assert build_parser().parse_args(["run", "--tolerance", "5%"]).tolerance == pytest.approx(0.05)
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "--tolerance", "150%"])
    assert info.value.code == 2
    assert "must be between 0 and 100%, got '150%'" in capsys.readouterr().err


# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bps, want", [
    (1e9, "1.000 Gb/s"), (2.5e9, "2.500 Gb/s"), (800e9, "800.000 Gb/s"),
    (999.994e6, "999.99 Mb/s"), (100e6, "100.00 Mb/s"), (10e6, "10.00 Mb/s"), (0, "0.00 Mb/s"),
])
def test_format_rate(bps, want):
    assert format_rate(bps) == want
