"""Datatypes and reduction ops (nccl-tests' -d and -o) as the agents really run them: schedules
aligned to the element, inputs and expected results per datatype and op, exact in each."""

from __future__ import annotations

import numpy as np
import pytest

from foundation.errors import NetwallError
from traffic.header import frame_payload
from traffic.schedule import (
    ALGORITHMS,
    COLLECTIVES,
    DTYPES,
    OPS,
    POINT_TO_POINT,
    UFUNCS,
    WIDEST,
    build,
    datatype,
    element_size,
    expected,
    initial,
    reduced,
    simulate,
    validate_schedule,
    validate_size,
)

SIZES = {"int8": 1, "uint8": 1, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "half": 2,
         "float": 4, "double": 8}


def test_every_nccl_tests_datatype_has_its_element_size():
    assert {name: element_size(name) for name in DTYPES} == SIZES
    assert max(SIZES.values()) == WIDEST


def test_frames_carry_whole_elements_of_every_datatype():
    for mtu in (1500, 9000, 65000):
        assert frame_payload(mtu) % WIDEST == 0


@pytest.mark.parametrize("name", ["bfloat16", "bf16", "float128", "", "FLOAT"])
def test_unknown_datatypes_are_refused(name):
    with pytest.raises(NetwallError, match="accepted"):
        datatype(name)


def brute_force(collective: str, ranks: int, size: int, dtype: str, op: str) -> np.ndarray:
    """Every rank's input reduced one by one in the datatype (the agents' arithmetic)."""
    inputs = [initial(collective, ranks, size, r, 0, dtype, op) for r in range(ranks)]
    total = inputs[0].copy()
    with np.errstate(over="ignore"):
        for other in inputs[1:]:
            UFUNCS[op](total, other, out=total)
    if op == "avg":
        if total.dtype.kind == "f":
            total /= total.dtype.type(ranks)
        else:
            total = np.array([int(v / ranks) if v < 0 else int(v) // ranks
                              for v in total.tolist()]).astype(total.dtype)
    return total


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("ranks", [2, 3, 8, 17])
def test_expected_is_the_inputs_reduced_in_the_datatype(dtype, op, ranks):
    size = 64 * element_size(dtype)
    region, values = expected("allreduce", ranks, size, 0, 0, dtype, op)
    assert values.dtype == np.dtype(DTYPES[dtype])
    assert np.array_equal(values, brute_force("allreduce", ranks, size, dtype, op)[region])


@pytest.mark.parametrize("dtype", ["half", "float", "double"])
def test_float_sums_stay_exact_at_many_ranks(dtype):
    """Inputs are small integers: the sum is the same in any order, even in half."""
    ranks = 300
    values = reduced(ranks, 32 * element_size(dtype), dtype, "sum")
    exact = reduced(ranks, 32 * 8, "int64", "sum")
    if dtype != "half":
        assert np.array_equal(values.astype(np.int64), exact)
    assert np.all(values == np.round(values)) and np.all(np.isfinite(values))


def test_inputs_are_integers_and_prod_inputs_powers_of_two():
    for dtype in DTYPES:
        buf = initial("allreduce", 4, 32 * element_size(dtype), 1, 0, dtype, "prod")
        assert set(buf.tolist()) <= {1, 2}
        buf = initial("allreduce", 4, 32 * element_size(dtype), 1, 0, dtype, "sum")
        assert set(buf.tolist()) <= set(range(16))


def test_integer_results_wrap_as_the_hardware_does():
    values = reduced(20, 16, "int8", "sum")
    exact = reduced(20, 16 * 8, "int64", "sum")
    assert np.array_equal(values, exact.astype(np.int8))
    assert reduced(20, 16, "uint8", "avg").tolist() == (exact % 256 // 20).tolist()


def test_avg_is_the_sum_divided_by_the_ranks():
    assert np.array_equal(reduced(4, 64, "float", "avg"), reduced(4, 64, "float", "sum") / 4)
    assert np.array_equal(reduced(4, 64, "int32", "avg"), reduced(4, 64, "int32", "sum") // 4)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", OPS)
def test_every_schedule_computes_the_expected_result_in_every_datatype_and_op(dtype, op):
    ranks = 4
    for collective in COLLECTIVES:
        for algorithm in ALGORITHMS[collective]:
            if algorithm == "hierarchical":
                continue
            n = 2 if collective in POINT_TO_POINT else ranks
            size = n * element_size(dtype) * 12
            s = build(collective, algorithm, n, size, dtype=dtype, op=op, root=1)
            validate_schedule(s)
            bufs = simulate(s)
            for rank in range(n):
                region, values = expected(collective, n, size, rank, s.root, dtype, s.op)
                assert np.array_equal(bufs[rank][region], values), (collective, algorithm)


def test_hierarchical_schedules_take_the_datatype_too():
    s = build("allreduce", "hierarchical", 4, 4 * 8 * 5, groups=[[0, 1], [2, 3]],
              dtype="double", op="max")
    validate_schedule(s)
    region, values = expected("allreduce", 4, s.size, 0, 0, "double", "max")
    assert all(np.array_equal(b[region], values) for b in simulate(s))


def test_collectives_without_a_reduction_record_none():
    assert build("allgather", "ring", 4, 64, op="max").op == "none"
    assert build("allreduce", "ring", 4, 64, op="max").op == "max"


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_schedules_align_to_the_element_size(dtype):
    e = element_size(dtype)
    for collective in COLLECTIVES:
        for algorithm in ALGORITHMS[collective]:
            if algorithm == "hierarchical":
                continue
            n = 2 if collective in POINT_TO_POINT else 3
            s = build(collective, algorithm, n, n * e * 7, dtype=dtype, chunk=2 * e)
            assert s.element == e and s.dtype == dtype
            for step in s.steps:
                for m in step:
                    assert m.src_offset % e == 0 and m.dst_offset % e == 0 and m.length % e == 0


@pytest.mark.parametrize("dtype,size", [("double", 12), ("half", 3), ("int32", 6)])
def test_sizes_must_be_whole_elements_of_the_datatype(dtype, size):
    with pytest.raises(NetwallError, match=dtype):
        validate_size("allreduce", 2, size, dtype)
    with pytest.raises(NetwallError):
        build("allreduce", "ring", 2, size, dtype=dtype)


def test_a_chunk_must_be_whole_elements_of_the_datatype():
    with pytest.raises(NetwallError, match="multiple of 8"):
        build("broadcast", "ring", 2, 64, dtype="double", chunk=12)
    build("broadcast", "ring", 2, 64, dtype="int8", chunk=3)


def test_an_unaligned_move_fails_validation():
    s = build("allreduce", "ring", 2, 32, dtype="double")
    step = s.steps[0]
    bad = type(s)(s.collective, s.algorithm, s.ranks, s.size, s.buffer,
                  ((type(step[0])(step[0].src, step[0].dst, 4, 4, 8, True),),) + s.steps[1:],
                  s.root, s.dtype, s.op)
    with pytest.raises(ValueError, match="8-byte"):
        validate_schedule(bad)


def test_reductions_use_the_op_s_ufunc():
    assert UFUNCS["prod"] is np.multiply and UFUNCS["min"] is np.minimum
    assert UFUNCS["max"] is np.maximum and UFUNCS["sum"] is UFUNCS["avg"] is np.add


def test_an_unknown_op_is_refused():
    with pytest.raises(NetwallError, match="sum, prod, min, max, avg"):
        build("allreduce", "ring", 2, 64, op="xor")
