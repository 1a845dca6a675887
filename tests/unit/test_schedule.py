"""Tests for traffic.schedule: ring all-reduce as pure data, checked by simulation.

The other collectives and algorithms are in test_collectives.py.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from foundation.errors import NetwallError
from traffic.schedule import (
    ELEMENT,
    Move,
    Schedule,
    build,
    expected,
    initial_buffer,
    ring_allreduce,
    segments,
    simulate,
    validate_size,
)

# (ranks, size) pairs: even splits, uneven splits, fewer elements than ranks, one element.
CASES = [
    (2, 4),
    (2, 8),
    (2, 4096),
    (3, 4),
    (3, 12),
    (3, 100),
    (4, 64),
    (4, 4),
    (4, 12),
    (5, 1000),
    (7, 28),
    (7, 24),
    (8, 8),
    (8, 1 << 16),
    (16, 4 * 17),
    (32, 4 * 5),
]


def one_line_error(fn, *args) -> str:
    with pytest.raises(NetwallError) as info:
        fn(*args)
    message = str(info.value)
    assert message
    assert "\n" not in message
    return message


def allreduce_sum(ranks: int, size: int) -> np.ndarray:
    where, values = expected("allreduce", ranks, size, 0)
    assert where == slice(0, size // ELEMENT)
    return values


def all_match(schedule: Schedule) -> bool:
    result = simulate(schedule)
    return all(
        np.array_equal(result[r], allreduce_sum(schedule.ranks, schedule.size))
        for r in range(schedule.ranks)
    )


# --- segments -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [4, 8, 12, 40, 100, 4096, 4 * 1001])
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 8, 33])
def test_segments_tile_the_buffer_exactly_and_are_element_aligned(size, parts):
    segs = segments(size, parts)
    assert len(segs) == parts
    position = 0
    for offset, length in segs:
        assert offset == position  # contiguous, in order, no gap, no overlap
        assert length >= 0
        assert offset % ELEMENT == 0
        assert length % ELEMENT == 0
        position += length
    assert position == size


@pytest.mark.parametrize("size,parts", [(4 * 10, 3), (4 * 7, 4), (4 * 1001, 8), (4 * 3, 5)])
def test_segments_are_near_even(size, parts):
    elements = [length // ELEMENT for _, length in segments(size, parts)]
    count = size // ELEMENT
    assert min(elements) == count // parts
    assert max(elements) == -(-count // parts)


def test_segments_with_fewer_elements_than_parts_leave_some_empty():
    segs = segments(4 * 2, 5)  # two elements over five parts
    lengths = [length for _, length in segs]
    assert sorted(lengths) == [0, 0, 0, 4, 4]


# --- ring all-reduce structure ----------------------------------------------------------------


@pytest.mark.parametrize("ranks", [2, 3, 4, 5, 8, 13])
def test_ring_has_two_n_minus_one_steps(ranks):
    schedule = ring_allreduce(ranks, 4 * ranks * 3)
    assert len(schedule.steps) == 2 * (ranks - 1)
    assert (schedule.collective, schedule.algorithm) == ("allreduce", "ring")
    assert schedule.ranks == ranks
    assert schedule.size == 4 * ranks * 3


@pytest.mark.parametrize("ranks,size", [(2, 8), (3, 12), (4, 4096), (6, 4 * 6 * 5), (8, 4 * 9)])
def test_every_rank_sends_and_receives_exactly_one_move_per_step(ranks, size):
    # Every segment is non-empty here (at least one element per rank).
    assert all(length > 0 for _, length in segments(size, ranks))
    schedule = ring_allreduce(ranks, size)
    for s in range(len(schedule.steps)):
        for r in range(ranks):
            sends = schedule.sends(r, s)
            recvs = schedule.recvs(r, s)
            assert len(sends) == 1
            assert len(recvs) == 1
            assert sends[0].dst == (r + 1) % ranks
            assert recvs[0].src == (r - 1) % ranks


@pytest.mark.parametrize("ranks", [2, 3, 4, 5, 8])
def test_reduce_scatter_then_all_gather(ranks):
    schedule = ring_allreduce(ranks, 4 * ranks)
    half = ranks - 1
    assert all(m.reduce for step in schedule.steps[:half] for m in step)
    assert not any(m.reduce for step in schedule.steps[half:] for m in step)
    # A move lands at the same offset it was read from: all-reduce buffers line up.
    assert all(m.src_offset == m.dst_offset for step in schedule.steps for m in step)


@pytest.mark.parametrize("ranks,size", [(2, 4096), (3, 4 * 3 * 7), (4, 1 << 20), (8, 4 * 8 * 11)])
def test_each_rank_sends_two_n_minus_one_over_n_of_the_buffer(ranks, size):
    schedule = ring_allreduce(ranks, size)
    expected = 2 * (ranks - 1) * size // ranks  # size divides by ranks * ELEMENT here
    for r in range(ranks):
        sent = sum(m.length for s in range(len(schedule.steps)) for m in schedule.sends(r, s))
        received = sum(m.length for s in range(len(schedule.steps)) for m in schedule.recvs(r, s))
        assert sent == expected
        assert received == expected


@pytest.mark.parametrize("ranks,size", [(3, 4 * 10), (4, 4 * 7), (7, 4 * 100), (5, 4 * 3)])
def test_uneven_sizes_send_within_element_rounding(ranks, size):
    schedule = ring_allreduce(ranks, size)
    ideal = 2 * (ranks - 1) / ranks * size
    steps = len(schedule.steps)
    for r in range(ranks):
        sent = sum(m.length for s in range(steps) for m in schedule.sends(r, s))
        # Each of the 2(n-1) segments differs from size/n by less than one element.
        assert abs(sent - ideal) < steps * ELEMENT


def test_empty_segments_produce_no_moves():
    schedule = ring_allreduce(8, 4 * 3)  # three elements over eight ranks
    assert all(m.length > 0 for step in schedule.steps for m in step)
    assert any(len(step) < 8 for step in schedule.steps)


def test_moves_of_lists_sends_and_receives_in_step_order():
    schedule = ring_allreduce(4, 64)
    moves = schedule.moves_of(1)
    assert [s for s, _ in moves] == sorted(s for s, _ in moves)
    assert all(1 in (m.src, m.dst) for _, m in moves)
    assert len(moves) == 2 * len(schedule.steps)  # one send, one receive per step


# --- data check -------------------------------------------------------------------------------


def test_initial_buffers_differ_between_ranks_and_expected_is_their_sum():
    size = 4 * 40
    a, b, c = (initial_buffer(r, size) for r in range(3))
    assert a.dtype == np.float32 and len(a) == size // ELEMENT
    assert not np.array_equal(a, b)
    assert np.array_equal(allreduce_sum(3, size), a + b + c)


def test_expected_rejects_unknown_collective():
    one_line_error(expected, "alltoallv", 4, 64, 0)


@pytest.mark.parametrize("ranks,size", CASES)
def test_simulated_ring_gives_the_sum_everywhere(ranks, size):
    assert all_match(ring_allreduce(ranks, size))


def _drop_one_move(schedule: Schedule, step: int) -> Schedule:
    steps = list(schedule.steps)
    steps[step] = steps[step][1:]
    return replace(schedule, steps=tuple(steps))


def _map_step(schedule: Schedule, step: int, change) -> Schedule:
    steps = list(schedule.steps)
    steps[step] = tuple(change(m) for m in steps[step])
    return replace(schedule, steps=tuple(steps))


@pytest.mark.parametrize("ranks", [2, 3, 4, 8])
@pytest.mark.parametrize("which", ["first", "last"])
def test_dropping_a_move_breaks_the_result(ranks, which):
    schedule = ring_allreduce(ranks, 4 * ranks * 2)
    step = 0 if which == "first" else len(schedule.steps) - 1
    assert not all_match(_drop_one_move(schedule, step))


@pytest.mark.parametrize("ranks", [2, 3, 5])
def test_swapping_reduce_flags_breaks_the_result(ranks):
    schedule = ring_allreduce(ranks, 4 * ranks)
    first, last = 0, len(schedule.steps) - 1
    copied = _map_step(schedule, first, lambda m: replace(m, reduce=False))
    assert not all_match(copied)
    added = _map_step(schedule, last, lambda m: replace(m, reduce=True))
    assert not all_match(added)


def test_misaddressed_move_breaks_the_result():
    schedule = ring_allreduce(4, 64)
    shifted = _map_step(schedule, 0, lambda m: replace(m, dst_offset=(m.dst_offset + 4) % 64)
                        if m.src == 0 else m)
    assert not all_match(shifted)


def test_simulate_reads_every_send_of_a_step_before_writing():
    # Two ranks swap overwrites in one step: each must end with the other's original data.
    size = 16
    swap = (Move(0, 1, 0, 0, size, False), Move(1, 0, 0, 0, size, False))
    out = simulate(Schedule("allreduce", "ring", 2, size, size, (swap,)))
    assert np.array_equal(out[0], initial_buffer(1, size))
    assert np.array_equal(out[1], initial_buffer(0, size))


def test_simulate_adds_only_the_moved_range():
    size = 32
    move = Move(0, 1, 8, 16, 8, True)  # two elements from bytes 8..16 into bytes 16..24
    out = simulate(Schedule("allreduce", "ring", 2, size, size, ((move,),)))
    a, b = initial_buffer(0, size), initial_buffer(1, size)
    want = b.copy()
    want[4:6] += a[2:4]
    assert np.array_equal(out[1], want)
    assert np.array_equal(out[0], a)


# --- build and its errors ---------------------------------------------------------------------


def test_build_returns_the_ring_schedule():
    assert build("allreduce", "ring", 4, 64) == ring_allreduce(4, 64)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("alltoall", "ring", 4, 64), "alltoall/ring"),
        (("allreduce", "bogus", 4, 64), "allreduce/bogus"),
        (("allreduce", "ring", 1, 64), "2 ranks"),
        (("allreduce", "ring", 0, 64), "2 ranks"),
        (("allreduce", "ring", -3, 64), "2 ranks"),
        (("allreduce", "ring", 4, 0), "positive"),
        (("allreduce", "ring", 4, -4), "positive"),
        (("allreduce", "ring", 4, 6), "multiple of 4"),
        (("allreduce", "ring", 4, 1), "multiple of 4"),
    ],
)
def test_build_errors_are_one_line(args, fragment):
    assert fragment in one_line_error(build, *args)


def test_unknown_collective_lists_the_available_ones():
    message = one_line_error(build, "bcast", "ring", 4, 64)
    assert "'bcast'" in message and "allreduce" in message and "alltoall" in message


@pytest.mark.parametrize("size", [4, 8, 1 << 20])
def test_check_size_accepts_whole_float32_buffers(size):
    validate_size("allreduce", 4, size)  # no exception


@pytest.mark.parametrize("size", [0, -4, 2, 4097])
def test_check_size_rejects(size):
    one_line_error(validate_size, "allreduce", 4, size)


@pytest.mark.parametrize("ranks", [2, 3, 15, 16, 17, 40, 256])
def test_the_closed_form_sum_of_inputs_is_the_sum(ranks):
    from traffic.collectives.buffers import sum_of_inputs

    size = 4096
    direct = np.sum([initial_buffer(r, size) for r in range(ranks)], axis=0, dtype=np.float32)
    assert np.array_equal(sum_of_inputs(ranks, size), direct)


@pytest.mark.parametrize("rank, nbytes", [(0, 4), (5, 60), (17, 4100), (255, 1 << 16)])
def test_inputs_are_the_documented_pattern_and_parts_agree(rank, nbytes):
    from traffic.collectives.buffers import _input_part

    index = np.arange(nbytes // ELEMENT, dtype=np.int64)
    pattern = ((index * 7 + rank) % 16).astype(np.float32)
    assert np.array_equal(initial_buffer(rank, nbytes), pattern)
    part = slice(len(index) // 3, len(index))
    assert np.array_equal(_input_part(rank, part), pattern[part])
