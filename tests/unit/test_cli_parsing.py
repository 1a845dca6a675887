"""Tests for the pure parts of emulator.cli.main: sizes, sweeps and the argument parser.

Nothing here runs a command that builds a network; `main` is only driven to parser errors.
"""

from __future__ import annotations

import argparse
import math
import signal
from contextlib import contextmanager

import pytest

from emulator.cli.main import main
from emulator.cli.parsing import build_parser, parse_size, sweep
from emulator.models.profiles import FAMILY_DEFAULTS
from foundation.errors import NetwallError
from traffic.schedule import validate_size

K, M, G = 1024, 1024 * 1024, 1024 * 1024 * 1024


@contextmanager
def deadline(seconds: float):
    """Fail instead of hanging: raise TimeoutError if the body runs longer than `seconds`."""

    def expire(_signum, _frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- parse_size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,want",
    [("4096", 4096), ("0", 0), ("64K", 64 * K), ("16M", 16 * M), ("1G", G), ("64k", 64 * K),
     ("16m", 16 * M), ("8KB", 8 * K), ("4MB", 4 * M), ("512B", 512), (" 2M ", 2 * M),
     ("3G", 3 * G)],
)
def test_parse_size_powers_of_two(text, want):
    assert parse_size(text) == want


@pytest.mark.parametrize(
    "text",
    ["", " ", "abc", "-1", "-4K", "1.5M", "16T", "M", "K16", "0x10", "1e6", "16 MiB", "4,096"],
)
def test_parse_size_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_size(text)
    message = str(info.value)
    assert "\n" not in message
    assert repr(text) in message


# --- sweep (nccl-tests -b/-e/-f) --------------------------------------------------------------


@pytest.mark.parametrize(
    "low,high,factor,want",
    [
        (M, 16 * M, 4, [M, 4 * M, 16 * M]),
        (M, 16 * M, 2, [M, 2 * M, 4 * M, 8 * M, 16 * M]),
        (M, 15 * M, 2, [M, 2 * M, 4 * M, 8 * M]),  # max is an upper bound, not always hit
        (8, 8, 2, [8]),
        (8, 8, 1, [8]),  # one size needs no factor
        (4, 100, 3, [4, 12, 36]),
        (K, M, 1024, [K, M]),
        (K, M, 2000, [K]),
    ],
)
def test_sweep_multiplies_from_min_to_max(low, high, factor, want):
    assert sweep(low, high, factor) == want


def test_sweep_sizes_stay_within_bounds_and_grow():
    sizes = sweep(4, 1 << 30, 2)
    assert sizes[0] == 4 and sizes[-1] <= 1 << 30
    assert len(sizes) == 29  # 2^2 .. 2^30
    assert all(b == 2 * a for a, b in zip(sizes, sizes[1:], strict=False))


@pytest.mark.parametrize(
    "low,high,factor",
    [(0, M, 2), (-4, M, 2), (2 * M, M, 2), (M, 2 * M, 1), (M, 2 * M, 0.5), (M, 2 * M, 0),
     (M, 2 * M, -2)],
)
def test_sweep_errors_are_one_line(low, high, factor):
    with pytest.raises(NetwallError) as info:
        sweep(low, high, factor)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("low,high,factor", [(4, 100, 1.2), (1, 10, 1.5)])
def test_sweep_with_a_small_fractional_factor_terminates(low, high, factor):
    with deadline(0.3):
        sizes = sweep(low, high, factor)
    assert sizes[0] == low
    assert all(a < b <= high for a, b in zip(sizes, sizes[1:], strict=False))


@pytest.mark.parametrize("factor", [math.nan, math.inf])
def test_sweep_non_finite_factor_is_a_netwall_error(factor):
    with deadline(0.3):
        try:
            sizes = sweep(M, 16 * M, factor)
        except NetwallError as e:
            assert "\n" not in str(e)
            return
    # Accepting inf as "just the first size" would also be sound; nan never is.
    assert factor == math.inf and sizes == [M]


def test_sweep_with_fractional_factor_gives_runnable_sizes():
    for size in sweep(M, 16 * M, 1.1):
        validate_size("allreduce", 2, size)


# --- the parser -------------------------------------------------------------------------------


def test_run_defaults():
    args = build_parser().parse_args(["run"])
    assert args.command == "run"
    assert args.topology == "star:8"
    assert (args.min_bytes, args.max_bytes, args.step_factor) == (M, 16 * M, 4.0)
    assert args.iters == 5
    assert args.warmup == 1
    assert args.size is None and args.link is None and args.dilation is None
    assert args.collective == "allreduce" and args.algorithm is None  # the collective's first
    assert args.check is True and args.strict is False and args.json is False
    assert sweep(args.min_bytes, args.max_bytes, args.step_factor) == [M, 4 * M, 16 * M]
    assert len(FAMILY_DEFAULTS) == 3


def test_run_options_parse():
    args = build_parser().parse_args(
        ["run", "--topology", "ring:4", "--size", "64K", "--size", "1M", "-b", "8", "-e", "1G",
         "-f", "2", "-n", "9", "--link", "copper-800g", "--link", "optical-800g",
         "--dilation", "250", "--no-check", "--json"])
    assert args.topology == "ring:4"
    assert args.size == [64 * K, M]
    assert (args.min_bytes, args.max_bytes, args.step_factor) == (8, G, 2.0)
    assert args.iters == 9
    assert args.link == ["copper-800g", "optical-800g"]
    assert args.dilation == 250.0
    assert args.check is False and args.json is True


@pytest.mark.parametrize("command", ["check", "profiles", "clean"])
def test_other_commands_parse(command):
    assert build_parser().parse_args([command]).command == command


def one_line_usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_unknown_command_is_one_line_exit_2(capsys):
    err = one_line_usage_error(capsys, ["bogus"])
    assert "bogus" in err
    assert err.startswith("netwall: error:")


def test_missing_command_is_one_line_exit_2(capsys):
    one_line_usage_error(capsys, [])


@pytest.mark.parametrize(
    "argv,fragment",
    [(["run", "--size", "lots"], "lots"), (["run", "-b", "1.5M"], "1.5M"),
     (["run", "--iters", "many"], "many"), (["run", "--bogus-flag"], "--bogus-flag"),
     (["run", "--dilation", "x"], "x")],
)
def test_bad_run_options_are_one_line_exit_2(capsys, argv, fragment):
    assert fragment in one_line_usage_error(capsys, argv)


def test_version_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("netwall ")


@pytest.mark.parametrize("argv", [["run", "--gpu", "a100", "--size", "1M"],
                                  ["replay", "--workload", "dp-step", "--gpu", "a100"],
                                  ["gpus", "--link", "copper-9000"]])
def test_an_unknown_gpu_or_link_is_one_line_before_anything_is_built(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "unknown GPU profile 'a100'" in err or "unknown link profile 'copper-9000'" in err


def test_gpus_lists_each_protocol_with_the_sizes_it_is_picked_for(capsys):
    assert main(["gpus", "--topology", "star:8", "--link", "nvlink4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# protocol picked for allreduce/ring on star:8, link nvlink4")
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("h100")}
    assert "LL" in rows["h100"] and "1K - 256K" in rows["h100"]
    assert "ideal" in out and "free" in out
    nvls = [line for line in out.splitlines() if " NVLS " in line]
    assert "NCCL's choice from 2 MiB" in nvls[1] and "NCCL's choice from 4 MiB" in nvls[0]
    # gb200's NVLS efficiency is a bus share: each link's data share on 8 GPUs, 1.04 x 9/14
    assert "0.669 (bus 1.04)" in nvls[0] and "0.685" in nvls[1] and "bus" not in nvls[1]
    assert main(["gpus", "--topology", "racks:2x4", "--link", "nvlink4"]) == 0
    assert "--algorithm nvls (Simple)" in capsys.readouterr().out  # rack switches: named only
    assert main(["gpus", "--json"]) == 0
    assert '"launch_us"' in capsys.readouterr().out
