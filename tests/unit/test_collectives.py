"""Every collective and algorithm as pure data: checked, simulated, counted, broken on purpose.

Each generated schedule must pass validate_schedule and, simulated, leave every rank holding
`expected()`; a random unsynchronised run (the agents' semantics) must give the same result.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from foundation.errors import NetwallError
from traffic.schedule import (
    ALGORITHMS,
    COLLECTIVES,
    ELEMENT,
    POINT_TO_POINT,
    POISON,
    Move,
    Schedule,
    btree_parents,
    buffer_bytes,
    build,
    dtree_parents,
    expected,
    initial,
    initial_buffer,
    simulate,
    validate_schedule,
    validate_size,
)

RANKS = (2, 3, 4, 5, 8)
ROOTED = ("broadcast", "reduce")
PER_RANK = ("reducescatter", "allgather", "alltoall")
#: (groups of) for hierarchical all-reduce: 2x2, 2x4, 4x2, and a non-contiguous 2x2
GROUPS = (
    ((0, 1), (2, 3)),
    ((0, 1, 2, 3), (4, 5, 6, 7)),
    ((0, 1), (2, 3), (4, 5), (6, 7)),
    ((0, 2), (1, 3)),
)


def sizes_for(collective: str, n: int) -> list[int]:
    """Tiny (fewer elements than ranks where allowed), uneven, and moderate sizes."""
    if collective in PER_RANK:
        return [4 * n, 4 * n * 3, 4 * n * 64]
    return [4, 4 * (n - 1), 4 * (3 * n + 1), 4 * n * 64]


def cases() -> list[tuple]:
    out = []
    for collective in COLLECTIVES:
        for algorithm in ALGORITHMS[collective]:
            if algorithm == "hierarchical":
                for groups in GROUPS:
                    n = sum(map(len, groups))
                    for size in sizes_for(collective, n):
                        out.append((collective, algorithm, n, size, {"groups": groups}))
                continue
            for n in (2,) if collective in POINT_TO_POINT else RANKS:
                for size in sizes_for(collective, n):
                    out.append((collective, algorithm, n, size, {}))
                    if collective in ROOTED:
                        out.append((collective, algorithm, n, size, {"root": n - 1}))
                        out.append((collective, algorithm, n, size, {"root": n // 2, "chunk": 8}))
                    if algorithm == "tree" and collective == "allreduce":
                        out.append((collective, algorithm, n, size, {"chunk": 4}))
    return out


CASES = cases()


def case_id(case: tuple) -> str:
    collective, algorithm, n, size, kwargs = case
    extra = ",".join(f"{k}={v}" for k, v in kwargs.items() if k != "groups")
    if "groups" in kwargs:
        extra += f"groups={len(kwargs['groups'])}x{len(kwargs['groups'][0])}"
    return f"{collective}-{algorithm}-n{n}-{size}B{'-' + extra if extra else ''}"


def matches(schedule: Schedule, buffers: list[np.ndarray]) -> bool:
    s = schedule
    for r in range(s.ranks):
        where, want = expected(s.collective, s.ranks, s.size, r, s.root)
        if not np.array_equal(buffers[r][where], want):
            return False
    return True


def simulate_async(schedule: Schedule, rng: np.random.Generator) -> list[np.ndarray]:
    """The agents' semantics with a random interleaving: a rank starts step t once all it
    receives in steps < t has arrived, snapshots its sends then, and applies receives (of any
    step) the moment they arrive. An NVLS switch is one more participant."""
    s = schedule
    steps = len(s.steps)
    bufs = [initial(s.collective, s.ranks, s.size, r, s.root) for r in range(s.participants)]
    need = np.zeros((s.participants, steps), dtype=int)
    for t, step in enumerate(s.steps):
        for m in step:
            need[m.dst, t] += 1
    arrived = np.zeros_like(need)
    missing = [0] * s.participants  # receives of steps before `started` not yet arrived
    started = [0] * s.participants
    flight: list[tuple[int, Move, np.ndarray]] = []
    e = ELEMENT
    while True:
        ready = [r for r in range(s.participants) if started[r] < steps and missing[r] == 0]
        options = len(ready) + len(flight)
        if not options:
            break
        pick = int(rng.integers(options))
        if pick < len(ready):
            r = ready[pick]
            t = started[r]
            for m in s.sends(r, t):
                data = bufs[r][m.src_offset // e:(m.src_offset + m.length) // e].copy()
                flight.append((t, m, data))
            started[r] += 1
            missing[r] += need[r, t] - arrived[r, t]
        else:
            t, m, data = flight.pop(pick - len(ready))
            view = bufs[m.dst][m.dst_offset // e:(m.dst_offset + m.length) // e]
            if m.reduce:
                view += data
            else:
                view[:] = data
            arrived[m.dst, t] += 1
            if t < started[m.dst]:
                missing[m.dst] -= 1
    assert started == [steps] * s.participants and not flight
    return bufs


def sent_bytes(schedule: Schedule) -> list[int]:
    out = [0] * schedule.ranks
    for step in schedule.steps:
        for m in step:
            out[m.src] += m.length
    return out


def received_bytes(schedule: Schedule) -> list[int]:
    out = [0] * schedule.ranks
    for step in schedule.steps:
        for m in step:
            out[m.dst] += m.length
    return out


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(NetwallError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --- every collective x algorithm x n x size: sound and correct -------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_schedule_is_sound_and_gives_the_expected_result(case):
    collective, algorithm, n, size, kwargs = case
    schedule = build(collective, algorithm, n, size, **kwargs)
    assert (schedule.collective, schedule.algorithm) == (collective, algorithm)
    assert (schedule.ranks, schedule.size) == (n, size)
    assert schedule.buffer == buffer_bytes(collective, n, size) >= size
    assert schedule.root == (kwargs.get("root", 0) if collective in ROOTED else 0)
    validate_schedule(schedule)
    assert matches(schedule, simulate(schedule))
    for seed in range(2):
        assert matches(schedule, simulate_async(schedule, np.random.default_rng(seed)))


def test_the_matrix_covers_every_algorithm():
    built = {(c, a) for c, a, *_ in CASES}
    assert built == {(c, a) for c in COLLECTIVES for a in ALGORITHMS[c]}
    assert tuple(ALGORITHMS) == COLLECTIVES
    assert ALGORITHMS["allreduce"] == ("ring", "tree", "halving-doubling", "hierarchical",
                                       "nvls")
    assert ALGORITHMS["reducescatter"] == ALGORITHMS["allgather"] == ("ring", "nvls")
    assert all(ALGORITHMS[c][0] == "ring" for c in COLLECTIVES[:5])
    assert ALGORITHMS["alltoall"] == ALGORITHMS["sendrecv"] == ("direct",)


# --- step counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", RANKS + (16,))
def test_step_counts(n):
    size = 4 * n * 32
    assert len(build("allreduce", "ring", n, size).steps) == 2 * (n - 1)
    assert len(build("reducescatter", "ring", n, size).steps) == n - 1
    assert len(build("allgather", "ring", n, size).steps) == n - 1
    assert len(build("alltoall", "direct", n, size).steps) == n - 1
    assert len(build("sendrecv", "direct", n, size).steps) == 1
    log = n.bit_length() - 1  # floor(log2 n)
    folds = 0 if n == 1 << log else 2
    assert len(build("allreduce", "halving-doubling", n, size).steps) == 2 * log + folds


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_halving_doubling_takes_two_log2_n_steps_for_powers_of_two(n):
    schedule = build("allreduce", "halving-doubling", n, 4 * n)
    assert len(schedule.steps) == 2 * int(math.log2(n))
    # Every rank exchanges with its partner at distance n/2, ..., 1, then 1, ..., n/2.
    distances = [{abs(m.src - m.dst) for m in step} for step in schedule.steps]
    half = [{n >> (i + 1)} for i in range(int(math.log2(n)))]
    assert distances == half + half[::-1]


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("chunks", [1, 3, 8])
def test_pipelined_rooted_step_counts(n, chunks):
    size = 4 * 5 * chunks
    chunk = size // chunks
    for collective in ROOTED:
        ring = build(collective, "ring", n, size, chunk=chunk)
        tree = build(collective, "tree", n, size, chunk=chunk)
        assert len(ring.steps) == chunks + n - 2
        assert len(tree.steps) == chunks + math.ceil(math.log2(n)) - 1


@pytest.mark.parametrize("groups", GROUPS, ids=lambda g: f"{len(g)}x{len(g[0])}")
def test_hierarchical_step_count(groups):
    m, g = len(groups), len(groups[0])
    schedule = build("allreduce", "hierarchical", m * g, 4 * m * g * 8, groups=groups)
    assert len(schedule.steps) == 2 * (g - 1) + 2 * (m - 1)


def test_smaller_chunks_mean_more_steps_and_moves_but_the_same_bytes():
    for collective, algorithm in [("allreduce", "tree"), ("broadcast", "ring"),
                                  ("broadcast", "tree"), ("reduce", "ring"), ("reduce", "tree")]:
        coarse = build(collective, algorithm, 8, 4096, chunk=2048)
        fine = build(collective, algorithm, 8, 4096, chunk=256)
        assert len(fine.steps) > len(coarse.steps)
        assert sum(map(len, fine.steps)) > sum(map(len, coarse.steps))
        assert sum(sent_bytes(fine)) == sum(sent_bytes(coarse))
        assert max(m.length for step in fine.steps for m in step) == 256


# --- bytes per rank ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", RANKS + (16,))
def test_bytes_per_rank(n):
    size = 4 * n * 24  # every segment is a whole number of elements
    share = size // n
    for algorithm in ("ring",) + (("halving-doubling",) if n & (n - 1) == 0 else ()):
        schedule = build("allreduce", algorithm, n, size)
        assert sent_bytes(schedule) == [2 * (n - 1) * share] * n
        assert received_bytes(schedule) == [2 * (n - 1) * share] * n
    for collective in ("reducescatter", "allgather"):
        schedule = build(collective, "ring", n, size)
        assert sent_bytes(schedule) == received_bytes(schedule) == [(n - 1) * share] * n
    assert sent_bytes(build("alltoall", "direct", n, size)) == [(n - 1) * share] * n
    assert sent_bytes(build("sendrecv", "direct", n, size)) == [size] * n


@pytest.mark.parametrize("n", RANKS + (16,))
def test_double_tree_moves_as_many_bytes_as_the_ring(n):
    size = 4 * 2 * n * 16
    tree = build("allreduce", "tree", n, size)
    # Each half goes up n-1 edges and down n-1 edges of its tree: 2(n-1)/n S per rank on
    # average, and no rank sends more than 2 S (interior in one tree, leaf in the other).
    assert sum(sent_bytes(tree)) == 2 * (n - 1) * size
    assert max(sent_bytes(tree)) <= 2 * size


@pytest.mark.parametrize("n", [3, 5, 6, 7])
def test_halving_doubling_folds_the_extra_ranks(n):
    size = 4 * 8 * n
    schedule = build("allreduce", "halving-doubling", n, size)
    p = 1 << (n.bit_length() - 1)
    rem = n - p
    first, last = schedule.steps[0], schedule.steps[-1]
    assert {(m.src, m.dst, m.length, m.reduce) for m in first} == {
        (2 * v, 2 * v + 1, size, True) for v in range(rem)}
    assert {(m.src, m.dst, m.length, m.reduce) for m in last} == {
        (2 * v + 1, 2 * v, size, False) for v in range(rem)}
    idle = {2 * v for v in range(rem)}
    assert all(not idle & {m.src, m.dst} for step in schedule.steps[1:-1] for m in step)


@pytest.mark.parametrize("groups", GROUPS, ids=lambda g: f"{len(g)}x{len(g[0])}")
def test_hierarchical_keeps_most_bytes_inside_groups(groups):
    m, g = len(groups), len(groups[0])
    size = 4 * m * g * 10
    schedule = build("allreduce", "hierarchical", m * g, size, groups=groups)
    group_of = {r: k for k, members in enumerate(groups) for r in members}
    inside = [0] * (m * g)
    across = [0] * (m * g)
    for step in schedule.steps:
        for mv in step:
            (inside if group_of[mv.src] == group_of[mv.dst] else across)[mv.src] += mv.length
    assert inside == [2 * (g - 1) * size // g] * (m * g)
    assert across == [2 * (m - 1) * size // (g * m)] * (m * g)


# --- trees ------------------------------------------------------------------------------------


def children_of(parents: list[int]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in parents]
    for r, p in enumerate(parents):
        if p >= 0:
            out[p].append(r)
    return out


def is_tree(parents: list[int]) -> bool:
    if parents.count(-1) != 1:
        return False
    for r in range(len(parents)):  # every rank reaches the root without a cycle
        seen = set()
        while parents[r] >= 0:
            if r in seen:
                return False
            seen.add(r)
            r = parents[r]
    return True


def test_btree_matches_nccls_picture():
    # trees.cc: 0-8; 8-4,12; 4-2,6; 12-10,13; 2-1,3; 6-5,7; 10-9,11
    kids = children_of(btree_parents(14))
    assert kids[0] == [8]
    assert sorted(kids[8]) == [4, 12] and sorted(kids[4]) == [2, 6]
    assert sorted(kids[12]) == [10, 13] and sorted(kids[10]) == [9, 11]
    assert all(not kids[r] for r in range(1, 14, 2))


@pytest.mark.parametrize("n", range(2, 33))
def test_double_trees_are_binary_trees_and_complementary(n):
    first, second = dtree_parents(n)
    for parents in (first, second):
        assert is_tree(parents)
        assert all(len(k) <= 2 for k in children_of(parents))
    assert first.index(-1) == 0
    assert second.index(-1) == (1 if n % 2 else n - 1)  # ncclGetDtreeRoots
    # A rank with two children in one tree is a leaf in the other.
    a, b = children_of(first), children_of(second)
    assert all(not (len(a[r]) == 2 and b[r]) and not (len(b[r]) == 2 and a[r]) for r in range(n))


# --- buffers: initial and expected ------------------------------------------------------------


def test_buffer_bytes():
    assert buffer_bytes("allreduce", 4, 64) == 64
    assert buffer_bytes("alltoall", 4, 64) == 128
    assert buffer_bytes("sendrecv", 4, 64) == 128
    for collective in COLLECTIVES:
        assert len(initial(collective, 4, 64, 1)) == buffer_bytes(collective, 4, 64) // ELEMENT


def test_a_send_is_between_two_ranks_and_checked_at_the_receiver():
    with pytest.raises(NetwallError, match="a send is between 2 ranks"):
        build("send", "direct", 3, 64)
    s = build("send", "direct", 2, 64)
    assert [(m.src, m.dst, m.length) for step in s.steps for m in step] == [(0, 1, 64)]
    sender, receiver = simulate(s)
    assert expected("send", 2, 64, 0)[1].size == 0  # the sender has no result
    region, values = expected("send", 2, 64, 1)
    assert np.array_equal(receiver[region], values)
    assert np.array_equal(values, initial_buffer(0, 64))
    assert not np.array_equal(initial("send", 2, 64, 1), values)  # poisoned before the call


def test_alltoall_initial_places_the_own_chunk_in_the_receive_area():
    n, size = 4, 4 * 4 * 3
    buf = initial("alltoall", n, size, 2)
    mine = initial_buffer(2, size)
    assert np.array_equal(buf[:12], mine)
    assert np.array_equal(buf[12 + 6:12 + 9], mine[6:9])  # receive chunk 2 = send chunk 2
    assert np.all(np.delete(buf[12:], range(6, 9)) == POISON)
    where, want = expected("alltoall", n, size, 2)
    assert where == slice(12, 24)
    assert np.array_equal(want[3:6], initial_buffer(1, size)[6:9])  # from rank 1, its chunk 2


def test_inputs_and_poison():
    size = 4 * 12
    gather = initial("allgather", 4, size, 1)
    assert np.array_equal(gather[3:6], initial_buffer(1, size)[3:6])
    assert np.all(np.delete(gather, range(3, 6)) == POISON)
    assert np.array_equal(initial("broadcast", 4, size, 3, root=3), initial_buffer(3, size))
    assert np.all(initial("broadcast", 4, size, 0, root=3) == POISON)
    assert np.array_equal(initial("reduce", 4, size, 0, root=3), initial_buffer(0, size))
    sendrecv = initial("sendrecv", 4, size, 2)
    assert np.all(sendrecv[12:] == POISON)
    assert POISON not in initial_buffer(5, 4 * 1000)


def test_expected_values():
    n, size = 4, 4 * 8
    total = sum(initial_buffer(r, size) for r in range(n))
    where, want = expected("reducescatter", n, size, 3)
    assert where == slice(6, 8) and np.array_equal(want, total[6:8])
    where, want = expected("reduce", n, size, 2, root=2)
    assert where == slice(0, 8) and np.array_equal(want, total)
    where, want = expected("reduce", n, size, 1, root=2)
    assert where == slice(0, 0) and len(want) == 0
    where, want = expected("broadcast", n, size, 0, root=1)
    assert np.array_equal(want, initial_buffer(1, size))
    where, want = expected("sendrecv", n, size, 0)
    assert where == slice(8, 16) and np.array_equal(want, initial_buffer(3, size))
    where, want = expected("allgather", n, size, 0)
    assert np.array_equal(want[2:4], initial_buffer(1, size)[2:4])


# --- broken schedules fail --------------------------------------------------------------------

BREAKABLE = [
    ("allreduce", "ring", 4, {}),
    ("allreduce", "tree", 5, {}),
    ("allreduce", "halving-doubling", 8, {}),
    ("allreduce", "halving-doubling", 6, {}),
    ("allreduce", "hierarchical", 8, {"groups": GROUPS[1]}),
    ("reducescatter", "ring", 3, {}),
    ("allgather", "ring", 4, {}),
    ("broadcast", "tree", 5, {"root": 2}),
    ("reduce", "tree", 8, {"root": 1}),
    ("reduce", "ring", 3, {}),
    ("alltoall", "direct", 4, {}),
    ("sendrecv", "direct", 3, {}),
]


def with_step(schedule: Schedule, index: int, moves: tuple[Move, ...]) -> Schedule:
    steps = list(schedule.steps)
    steps[index] = moves
    return replace(schedule, steps=tuple(steps))


def breakages(schedule: Schedule):
    """Yield (what, broken schedule) for the first, a middle and the last step."""
    for index in sorted({0, len(schedule.steps) // 2, len(schedule.steps) - 1}):
        step = schedule.steps[index]
        yield f"drop a move of step {index}", with_step(schedule, index, step[1:])
        flipped = replace(step[0], reduce=not step[0].reduce)
        yield f"flip reduce in step {index}", with_step(schedule, index, (flipped,) + step[1:])
        for i, m in enumerate(step):  # the first move that can shift by an element and fit
            shift = -ELEMENT if m.dst_offset >= ELEMENT else ELEMENT
            if m.dst_offset + shift + m.length <= schedule.buffer:
                moved = step[:i] + (replace(m, dst_offset=m.dst_offset + shift),) + step[i + 1:]
                yield f"shift a move in step {index}", with_step(schedule, index, moved)
                break


@pytest.mark.parametrize("case", BREAKABLE, ids=lambda c: f"{c[0]}-{c[1]}-n{c[2]}")
def test_broken_schedules_give_wrong_results(case):
    collective, algorithm, n, kwargs = case
    schedule = build(collective, algorithm, n, 4 * n * 6, **kwargs)
    assert matches(schedule, simulate(schedule))
    for what, broken in breakages(schedule):
        assert not matches(broken, simulate(broken)), what


# --- validate_schedule ---------------------------------------------------------------------------


def bare(steps, ranks=3, size=32, collective="allreduce") -> Schedule:
    buffer = buffer_bytes(collective, ranks, size)
    return Schedule(collective, "test", ranks, size, buffer, tuple(tuple(s) for s in steps))


@pytest.mark.parametrize(
    "steps,fragment",
    [
        ([[Move(1, 1, 0, 0, 4, True)]], "itself"),
        ([[Move(0, 3, 0, 0, 4, True)]], "out of range"),
        ([[Move(0, 1, 0, 0, 4, True), Move(0, 1, 8, 8, 4, True)]], "same ranks"),
        ([[Move(0, 1, 0, 0, 0, True)]], "length"),
        ([[Move(0, 1, 2, 0, 4, True)]], "aligned"),
        ([[Move(0, 1, 0, 0, 6, True)]], "aligned"),
        ([[Move(0, 1, 28, 28, 8, True)]], "outside"),
        ([[Move(0, 1, 0, -4, 4, True)]], "outside"),
        ([[Move(0, 2, 0, 0, 8, True), Move(1, 2, 4, 4, 8, False)]], "overlaps"),
        ([[Move(0, 1, 0, 0, 8, True), Move(1, 2, 4, 4, 8, True)]], "overlaps"),
        ([[Move(1, 2, 4, 4, 8, True), Move(0, 1, 0, 0, 8, True)]], "overlaps"),
        # Rank 2 may start step 1 at once and overwrite rank 0's bytes before it sends them.
        ([[Move(0, 1, 0, 0, 8, False)], [Move(2, 0, 0, 0, 8, False)]], "race"),
        # Two overwrites of rank 1 from unrelated senders may land in either order.
        ([[Move(0, 1, 0, 0, 8, False)], [Move(2, 1, 0, 0, 8, False)]], "race"),
    ],
)
def test_check_schedule_rejects(steps, fragment):
    with pytest.raises(ValueError, match=fragment):
        validate_schedule(bare(steps))


def test_check_schedule_accepts_ordered_and_commuting_accesses():
    # Rank 1 forwards what it got; the later overwrite at rank 0 depends on rank 0's send.
    validate_schedule(bare([[Move(0, 1, 0, 0, 8, False)], [Move(1, 0, 0, 0, 8, False)]]))
    # Two unrelated additions into rank 1 commute.
    validate_schedule(bare([[Move(0, 1, 0, 0, 8, True)], [Move(2, 1, 0, 0, 8, True)]]))


def test_a_racy_schedule_really_can_go_wrong_without_synchronisation():
    racy = bare([[Move(0, 1, 0, 0, 8, False)], [Move(2, 0, 0, 0, 8, False)]], size=8)
    with pytest.raises(ValueError):
        validate_schedule(racy)
    global_order = simulate(racy)
    outcomes = {tuple(simulate_async(racy, np.random.default_rng(seed))[1]) for seed in range(50)}
    assert tuple(global_order[1]) in outcomes and len(outcomes) == 2


def test_simulate_rejects_a_schedule_with_the_wrong_buffer():
    schedule = replace(build("alltoall", "direct", 2, 16), buffer=16)
    with pytest.raises(ValueError, match="buffer"):
        simulate(schedule)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,kwargs,fragment",
    [
        (("gather", "ring", 4, 64), {}, "allreduce"),
        (("alltoall", "ring", 4, 64), {}, "direct"),
        (("broadcast", "halving-doubling", 4, 64), {}, "ring, tree"),
        (("allreduce", "ring", 1, 64), {}, "2 ranks"),
        (("allreduce", "ring", 4, 6), {}, "multiple of 4"),
        (("allreduce", "ring", 4, 0), {}, "positive"),
        (("allgather", "ring", 4, 8), {}, "multiple of 16"),
        (("reducescatter", "ring", 3, 16), {}, "multiple of 12"),
        (("alltoall", "direct", 5, 4 * 6), {}, "multiple of 20"),
        (("broadcast", "ring", 4, 64), {"root": 4}, "root"),
        (("reduce", "tree", 4, 64), {"root": -1}, "root"),
        (("broadcast", "tree", 4, 64), {"chunk": 6}, "chunk"),
        (("allreduce", "tree", 4, 64), {"chunk": 0}, "chunk"),
        (("allreduce", "hierarchical", 4, 64), {}, "racks:"),
        (("allreduce", "hierarchical", 4, 64), {"groups": [[0, 1, 2], [3]]}, "equal"),
        (("allreduce", "hierarchical", 4, 64), {"groups": [[0, 1], [1, 2]]}, "exactly once"),
        (("allreduce", "hierarchical", 6, 96), {"groups": [[0, 1], [2, 3]]}, "exactly once"),
    ],
)
def test_build_errors_are_one_line(args, kwargs, fragment):
    assert fragment in one_line_error(build, *args, **kwargs)


def test_check_size_per_collective():
    validate_size("alltoall", 4, 64)
    validate_size("allreduce", 3, 4)
    assert "multiple of 12" in one_line_error(validate_size, "allgather", 3, 8)
    one_line_error(validate_size, "nope", 3, 8)
    one_line_error(initial, "nope", 3, 8, 0)
    one_line_error(buffer_bytes, "nope", 3, 8)


def test_chunk_and_groups_are_ignored_where_they_mean_nothing():
    ring = build("allreduce", "ring", 4, 64)
    assert build("allreduce", "ring", 4, 64, chunk=8, groups=GROUPS[0]) == ring
    assert build("allreduce", "ring", 4, 64, root=3) == ring  # not rooted: root recorded as 0
    assert build("broadcast", "ring", 4, 64, root=3).root == 3
