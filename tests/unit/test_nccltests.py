"""`netwall run --format nccl-tests` (emulator.cli.nccltests): nccl-tests' output, width for
width, and the flags that go with it (-c, -d, -o, --format).

The reference lines below are nccl-tests' own: its column header as src/common.cu prints it,
and rows as all_reduce_perf printed them (NVIDIA/nccl-tests issues #249 and #293), so a field
that moves by one column fails here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from emulator.cli import nccltests
from emulator.cli.main import main
from emulator.cli.parsing import build_parser, sweep
from emulator.result import RunResult
from foundation.errors import NetwallError

DATA = Path(__file__).resolve().parent.parent / "data"

#: nccl-tests' three column-header lines (trailing blanks included, as it prints them).
REAL_HEADER = [
    "#                                                              out-of-place                "
    "       in-place          ",
    "#       size         count      type   redop    root     time   algbw   busbw #wrong     "
    "time   algbw   busbw #wrong",
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            "
    "(us)  (GB/s)  (GB/s)       ",
]
#: Rows all_reduce_perf printed (8 B and 4 KiB of float, sum, checked).
REAL_ROWS = [
    "           8             2     float     sum      -1    17.08    0.00    0.00      0    "
    "16.76    0.00    0.00      0",
    "        4096          1024     float     sum      -1    22.76    0.18    0.18      0    "
    "22.61    0.18    0.18      0",
]


def result(**fields) -> RunResult:
    base = RunResult.from_dict(json.loads((DATA / "run-result.json").read_text()))
    return dataclasses.replace(base, **fields)


def settings(**fields) -> nccltests.Settings:
    base = nccltests.Settings(
        collective="allreduce", algorithm="ring", topology="star:4", link="copper-800g",
        hosts=("gpu0", "gpu1", "gpu2", "gpu3"), min_bytes=8, max_bytes=4096, step_factor=2.0,
        warmup=1, iters=5, check_iters=1, pid=4242)
    return dataclasses.replace(base, **fields)


def ends(line: str) -> list[int]:
    """Where each whitespace-separated field of a line ends: its column layout."""
    return [m.end() for m in re.finditer(r"\S+", line)]


def test_the_column_header_is_nccl_tests_own():
    lines = nccltests.header(settings())
    assert lines[-3:] == REAL_HEADER


@pytest.mark.parametrize("real,size,count,time_us,bw", [
    (REAL_ROWS[0], 8, 2, 17.08, 0.0), (REAL_ROWS[1], 4096, 1024, 22.76, 0.18)])
def test_a_row_has_nccl_tests_widths(real, size, count, time_us, bw):
    row = nccltests.row(result(bytes=size, count=count, time_s=time_us / 1e6, algbw_gbps=bw,
                               busbw_gbps=bw, check=True), settings())
    assert len(row) == len(real)
    assert ends(row) == ends(real)
    assert row.split()[:9] == real.split()[:9]


def test_a_row_repeats_the_one_measurement_in_place():
    row = nccltests.row(result(bytes=65536, count=16384, time_s=64.43e-6, algbw_gbps=1.0172,
                               busbw_gbps=1.5258, check=True), settings())
    assert row == ("       65536         16384     float     sum      -1    64.43    1.02    1.53"
                   "      0    64.43    1.02    1.53      0")


@pytest.mark.parametrize("time_us,text", [
    (0.5, "   0.50"), (99.994, "  99.99"), (100.0, "  100.0"), (9999.94, " 9999.9"),
    (10000.0, "  10000"), (1234567.0, "1234567")])
def test_time_is_printed_as_nccl_tests_prints_it(time_us, text):
    assert nccltests.time_text(time_us) == text


def test_unchecked_rows_say_n_a_and_wrong_ones_the_element_count():
    unchecked = nccltests.row(result(check=None), settings(check_iters=0))
    assert unchecked.split()[8] == "N/A" and unchecked.split()[12] == "N/A"
    assert unchecked[-5:] == "  N/A"
    wrong = nccltests.row(result(check=False), settings())
    assert wrong.split()[8] == "16384" and wrong.split()[12] == "16384"


def test_rooted_collectives_print_their_root_and_split_ones_a_rank_s_count():
    bcast = nccltests.row(result(collective="broadcast", redop="none"), settings(root=2))
    assert bcast.split()[2:5] == ["float", "none", "2"]
    gather = nccltests.row(result(collective="allgather", redop="none", ranks=4),
                           settings())
    assert gather.split()[:5] == ["65536", "4096", "float", "none", "-1"]


def test_the_header_names_the_run_the_emulated_gpus_and_says_it_is_netwall():
    lines = nccltests.header(settings())
    assert lines[0] == ("# nThread 1 nGpus 4 minBytes 8 maxBytes 4096 step: 2(factor) warmup "
                        "iters: 1 iters: 5 agg iters: 1 validation: 1 graph: 0")
    assert lines[1:3] == ["#", "# Using devices"]
    assert lines[3] == ("#  Rank  0 Group  0 Pid   4242 on       gpu0 device  0 [0000:00:00] "
                        "netwall ideal GPU (copper-800g)")
    assert [line.split()[2] for line in lines[3:7]] == ["0", "1", "2", "3"]
    notes = [line for line in lines if line.startswith("# netwall:")]
    assert len(notes) == 3 and any("in-place columns repeat" in n for n in notes)
    assert any(n.startswith("# netwall: GPU endpoint ideal; link delay ") for n in notes)


def test_the_footer_averages_every_busbw_printed_and_counts_wrong_results():
    rows = [result(busbw_gbps=10.0, check=True), result(busbw_gbps=20.0, check=True)]
    assert nccltests.footer(rows) == ["# Out of bounds values : 0 OK",
                                      "# Avg bus bandwidth    : 15 ", "#"]
    rows[1] = dataclasses.replace(rows[1], check=False)
    assert nccltests.footer(rows)[0] == "# Out of bounds values : 2 FAILED"


def test_an_unfaithful_result_is_flagged_on_a_comment_line():
    flagged = result(fidelity={"flags": ["the host added 9.0%"], "host_error": 0.09})
    assert nccltests.notes(flagged) == ["# netwall: NOT FAITHFUL: the host added 9.0%"]
    text = nccltests.report([flagged], settings())
    assert "\n# netwall: NOT FAITHFUL: the host added 9.0%\n" in text


def test_a_script_reading_nccl_tests_output_reads_netwall_s():
    """What nccl-tests parsers do: skip '#' lines, split rows, find the average line."""
    rows = [result(bytes=size, count=size // 4, busbw_gbps=bw, check=True)
            for size, bw in ((1 << 20, 90.5), (4 << 20, 99.25))]
    text = nccltests.report(rows, settings(min_bytes=1 << 20, max_bytes=4 << 20, step_factor=4))
    data = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert [int(f[0]) for f in data] == [1 << 20, 4 << 20]
    assert [float(f[7]) for f in data] == [90.5, 99.25]  # out-of-place busbw
    assert [float(f[11]) for f in data] == [90.5, 99.25]  # in-place busbw
    average = re.search(r"# Avg bus bandwidth\s*:\s*([0-9.]+)", text)
    assert average and float(average.group(1)) == pytest.approx(94.875)
    assert text.endswith("#\n")


# -- flags -------------------------------------------------------------------------------------

def test_run_takes_nccl_tests_flags():
    args = build_parser().parse_args(["run", "-c", "3", "-d", "double", "-o", "max",
                                      "--format", "nccl-tests"])
    assert (args.check_iters, args.datatype, args.op, args.format) == (3, "double", "max",
                                                                       "nccl-tests")
    args = build_parser().parse_args(["run"])
    assert (args.check_iters, args.check, args.datatype, args.op, args.format) == \
        (1, True, "float", "sum", "table")


@pytest.mark.parametrize("alias,name", [
    ("char", "int8"), ("int", "int32"), ("float16", "half"), ("float32", "float"),
    ("float64", "double"), ("uint64", "uint64")])
def test_datatype_aliases_become_nccl_tests_names(alias, name):
    assert build_parser().parse_args(["run", "-d", alias]).datatype == name


def one_line_exit_2(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("argv,fragment", [
    (["run", "-d", "bfloat16"], "numpy has no bfloat16"), (["run", "-d", "quad"], "quad"),
    (["run", "-o", "xor"], "xor"), (["run", "-c", "-1"], "-1"), (["run", "-c", "two"], "two"),
    (["run", "--format", "csv"], "csv")])
def test_bad_nccl_tests_flags_are_one_line_exit_2(capsys, argv, fragment):
    err = one_line_exit_2(capsys, argv)
    assert fragment in err


def test_the_datatype_error_names_what_is_accepted(capsys):
    err = one_line_exit_2(capsys, ["run", "-d", "bf16"])
    for name in ("int8/char", "uint8", "int32/int", "half/float16", "float/float32",
                 "double/float64", "uint64"):
        assert name in err


def test_json_and_nccl_tests_format_exclude_each_other(capsys):
    assert main(["run", "--json", "--format", "nccl-tests"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--json" in err


def test_the_sweep_keeps_whole_elements_of_the_datatype():
    assert all(s % 8 == 0 for s in sweep(8, 4096, 1.3, 8))
    assert sweep(1, 4, 2.0, 1) == [1, 2, 4]
    with pytest.raises(NetwallError):
        sweep(0, 8, 2.0, 8)
