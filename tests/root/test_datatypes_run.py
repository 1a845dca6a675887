"""Datatypes and ops really reduced on a real network, and `netwall run --format nccl-tests`
read as an nccl-tests-reading script reads all_reduce_perf's output (root only)."""

from __future__ import annotations

import re

import pytest

from emulator import Emulation

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def star():
    with Emulation("star:4", "copper-800g", dilation=1000) as emu:
        yield emu


@pytest.mark.parametrize("collective,dtype,op", [
    ("allreduce", "double", "max"), ("allreduce", "int8", "prod"),
    ("allreduce", "half", "avg"), ("reducescatter", "uint64", "min"),
    ("reduce", "int32", "sum"), ("allgather", "int8", "sum")])
def test_a_datatype_and_op_are_reduced_and_verified(star, collective, dtype, op):
    result = star.run(collective, size=64 * 1024, iters=2, dtype=dtype, op=op, check_iters=2,
                      prove=False)
    assert result.check is True
    assert result.type == dtype
    assert result.redop == (op if collective != "allgather" else "none")
    assert result.count == 64 * 1024 // {"double": 8, "int8": 1, "half": 2, "uint64": 8,
                                         "int32": 4}[dtype]
    for link in result.links:  # the wire carries exactly the schedule
        assert link.bytes == link.expected_bytes, link


def test_no_check_iterations_leave_the_result_unchecked(star):
    assert star.run("allreduce", size=4096, iters=1, check_iters=0, prove=False).check is None


def test_nccl_tests_format_end_to_end():
    from tests.conftest import netwall

    done = netwall("run", "--topology", "pair", "--link", "optical-800g", "-b", "64K",
                   "-e", "256K", "-f", "4", "-n", "2", "-w", "1", "-d", "double", "-o", "max",
                   "-c", "2", "--dilation", "1000", "--no-probe", "--format", "nccl-tests")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# nThread 1 nGpus 2 minBytes 65536 maxBytes 262144 step: "
                               "4(factor) warmup iters: 1 iters: 2 agg iters: 1 validation: 2")
    assert any(line.startswith("# netwall:") and "in-place" in line for line in lines)
    assert sum(" on       gpu" in line for line in lines) == 2
    # As scripts read nccl-tests: rows are the lines not starting with '#'.
    rows = [line.split() for line in lines if line and not line.startswith("#")]
    assert [int(r[0]) for r in rows] == [65536, 262144]
    assert [int(r[1]) for r in rows] == [8192, 32768]
    assert all(r[2:5] == ["double", "max", "-1"] for r in rows)
    busbw = [float(r[7]) for r in rows] + [float(r[11]) for r in rows]
    assert all(b > 0 for b in busbw)
    assert all(r[8] == "0" and r[12] == "0" for r in rows)
    average = re.search(r"^# Avg bus bandwidth\s*:\s*(\S+)", done.stdout, re.M)
    assert average and float(average.group(1)) == pytest.approx(sum(busbw) / len(busbw),
                                                                rel=1e-3)
    assert "# Out of bounds values : 0 OK" in lines
    assert lines[-1] == "#"
