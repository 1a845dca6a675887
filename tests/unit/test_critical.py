"""The critical path and exposed communication of a replayed step (emulator.models.critical)."""

from __future__ import annotations

import pytest

from emulator.models.critical import analyse_step
from traffic.trace import Call


def call(i: int, group: tuple[int, ...], stream: str, after: tuple[int, ...] = (),
         collective: str = "allreduce", root: int = 0, peer: int = 1) -> Call:
    return Call(id=i, collective=collective, algorithm=None, bytes=64, group=group,
                comm="c" + "-".join(map(str, group)), stream=stream, after=after, root=root,
                peer=peer)


def test_the_path_follows_what_each_call_waited_for():
    # rank 0 and 1: tp call 0 then tp call 2; a dp call 1 overlaps on another stream; call
    # 3 waits for call 1 (after) and is last
    calls = [call(0, (0, 1), "tp"), call(1, (0, 1), "dp"), call(2, (0, 1), "tp"),
             call(3, (0, 1), "tp", after=(1,))]
    starts = [0.0, 1.0, 4.0, 9.0]
    times = [2.0, 7.0, 1.0, 1.0]  # call 1 ends at 8, after call 2 (5): 3 waited for 1
    a = analyse_step(calls, starts, times)
    assert a.critical_path == [1, 3]
    assert a.time_s == 10.0
    # call 1 (1 to 8: nothing before it on its stream; before 1 is compute) and call 3
    # (9 to 10, after call 1's end at 8) are exposed
    assert a.exposed_s == pytest.approx(7.0 + 1.0)
    assert a.exposed_share == pytest.approx(0.8)
    assert a.streams == {"tp": pytest.approx(4.0), "dp": pytest.approx(7.0)}


def test_compute_between_calls_is_not_exposed():
    calls = [call(0, (0, 1), "s"), call(1, (0, 1), "s"), call(2, (0, 1), "s")]
    a = analyse_step(calls, [0.0, 5.0, 10.0], [1.0, 1.0, 1.0])  # 4 of compute before each
    assert a.critical_path == [0, 1, 2]
    assert a.exposed_s == pytest.approx(3.0)
    assert a.exposed_share == pytest.approx(3.0 / 11.0)


def test_a_call_waits_only_on_calls_that_share_a_rank():
    # call 2 names call 0 in `after`, but they share no rank: it did not wait for it
    calls = [call(0, (0, 1), "x"), call(1, (2, 3), "y"), call(2, (2, 3), "z", after=(0,))]
    a = analyse_step(calls, [0.0, 0.0, 6.0], [5.0, 1.0, 1.0])
    assert a.critical_path == [2]
    assert a.exposed_s == pytest.approx(1.0)  # what came before it is compute


def test_sends_wait_on_their_sender_and_receiver_streams():
    # a pipeline: 0 -> 1 then 1 -> 2 on rank 1's stream "a": the second waited for the first
    group = (0, 1, 2)
    calls = [call(0, group, "a", collective="send", root=0, peer=1),
             call(1, group, "a", collective="send", root=1, peer=2),
             call(2, group, "b", collective="send", root=2, peer=0)]
    a = analyse_step(calls, [0.0, 3.0, 0.5], [2.0, 2.0, 1.0])
    assert a.critical_path == [0, 1]
    assert a.exposed_s == pytest.approx(4.0)
