"""Tests for traffic.protocol: every controller-agent message round-trips, and a malformed one
fails loudly instead of being misread."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from foundation.errors import NetwallError
from traffic.callstate import Call
from traffic.launcher import CallPlan, call_specs
from traffic.protocol import (
    MESSAGES,
    AgentStats,
    CallSpec,
    Exit,
    Failure,
    Go,
    Load,
    Loaded,
    Move,
    Peer,
    Ready,
    Report,
    Route,
    Setup,
    decode,
    encode,
    from_wire,
    to_wire,
)
from traffic.schedule import ALGORITHMS, POINT_TO_POINT, build

PEER = Peer(iface="g0-eth1", src_mac="02:4e:00:00:00:00", dst_mac="02:4e:00:01:00:00",
            src_ip="10.77.0.1", dst_ip="10.77.0.2")
MOVES = (Move(step=0, src=3, dst=5, src_offset=0, dst_offset=4096, length=4096, reduce=True),
         Move(step=1, src=5, dst=3, src_offset=8, dst_offset=0, length=1 << 40, reduce=False))
SPEC = CallSpec(id=7, comm=1, stream="s1", gap_s=0.25, start_s=0.02, step_s=1e-3, efficiency=0.5,
                reduce_s=1e-9, after=(5, 6), buffer="c/s1", init=True,
                check=False, collective="allreduce", ranks=4, local=2, root=0, size=8192,
                dtype="double", op="max", steps=2, moves=MOVES)
EXAMPLES = [
    Setup(rank=3, ranks=16, peers={5: PEER, 12: replace(PEER, dst_ip="10.77.0.13")}, mtu=9000,
          rto=0.004, sndbuf=1 << 20,
          routes={5: Route(1.5e-7, 8e11, 4, 8e11), 12: Route(3e-7, 4e11, 4, 8e11)}),
    Ready(rank=3),
    Load(calls=(SPEC, replace(SPEC, id=8, after=(), moves=()))),
    Load(calls=()),
    Loaded(),
    Go(start=123456.789012345, timeout=10.5, rto=0.02, dilation=2000.0),
    Report(calls={7: (1.5, 2.25), 8: (2.25, 3.0)}, checks={7: True, 8: False},
           stats=AgentStats(frames_sent=12, bytes_sent=48000, retransmitted_frames=1)),
    Failure(error="rank 3: no progress for 10.0 s in call 7 step 1"),
    Exit(),
]


def test_every_message_has_an_example():
    assert {type(m) for m in EXAMPLES} == set(MESSAGES.values())


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_one_json_line(message):
    line = encode(message)
    assert "\n" not in line
    assert json.loads(line)["msg"] == type(message).__name__.lower()
    back = decode(line)
    assert back == message and type(back) is type(message)
    assert decode(line.encode(), type(message)) == message  # bytes, as read from a pipe


def test_integer_keys_and_pairs_come_back_as_declared():
    setup = decode(encode(EXAMPLES[0]))
    assert list(setup.peers) == [5, 12] and setup.peers[5] == PEER
    assert setup.routes[12] == Route(3e-7, 4e11, 4, 8e11)
    assert isinstance(setup.routes[12].link, int)
    report = decode(encode(EXAMPLES[6]))
    assert report.calls[7] == (1.5, 2.25) and isinstance(report.calls[7], tuple)


def test_moves_travel_as_compact_lists_in_field_order():
    wire = to_wire(SPEC)
    assert wire["moves"][0] == [getattr(MOVES[0], f.name) for f in fields(Move)]
    assert wire["after"] == [5, 6]
    assert from_wire(CallSpec, json.loads(json.dumps(wire))) == SPEC


CASES = [pytest.param(collective, algorithm, id=f"{collective}-{algorithm}")
         for collective, algorithms in ALGORITHMS.items() for algorithm in algorithms]


@pytest.mark.parametrize(("collective", "algorithm"), CASES)
def test_launcher_built_call_specs_round_trip_and_hold_each_ranks_moves(collective, algorithm):
    group = (6, 2) if collective in POINT_TO_POINT else (6, 2, 9, 0)  # global rank of each local
    schedule = build(collective, algorithm, len(group), 4 * 4096, root=1, chunk=4096,
                     groups=[[0, 1], [2, 3]])
    group += (12,) * schedule.switches  # an NVLS switch's agent plays its last participant
    plan = CallPlan(id=11, schedule=schedule, group=group, comm=2, stream="1", gap_s=0.5,
                    after=(9, 10), buffer="b", init=True, check=True)
    specs = call_specs(plan)
    assert len(specs) == len(group)
    for local, rank in enumerate(group):
        spec = specs[local]
        assert decode(encode(Load(calls=(spec,))), Load).calls == (spec,)
        assert (spec.local, spec.steps, spec.after) == (local, len(schedule.steps), (9, 10))
        expected = [(step, group[m.src], group[m.dst], m.src_offset, m.dst_offset, m.length,
                     m.reduce) for step, m in schedule.moves_of(local)]
        assert [(m.step, m.src, m.dst, m.src_offset, m.dst_offset, m.length, m.reduce)
                for m in spec.moves] == expected
        call = Call.of(spec, rank, 64936)  # the agent's side: sends and receives by step
        assert sum(map(len, call.sends)) == sum(m.src == rank for m in spec.moves)
        assert sum(map(len, call.recvs)) == sum(m.dst == rank for m in spec.moves)


def _error(line: str, *expected: type) -> str:
    with pytest.raises(NetwallError) as e:
        decode(line, *expected)
    message = str(e.value)
    assert "\n" not in message and message.startswith("protocol: ")
    return message


def _load_line(change) -> str:
    data = json.loads(encode(Load(calls=(SPEC,))))
    change(data["calls"][0])
    return json.dumps(data)


def _report_line(change) -> str:
    data = json.loads(encode(EXAMPLES[6]))
    change(data["stats"])
    return json.dumps(data)


def test_agent_stats_travel_as_the_counters_by_name_and_sum_over_ranks():
    line = json.loads(encode(EXAMPLES[6]))
    assert line["stats"]["frames_sent"] == 12 and line["stats"]["link_down"] == 0
    assert list(line["stats"]) == [f.name for f in fields(AgentStats)]
    total = sum((AgentStats(frames_sent=r, duplicates=2 * r) for r in (1, 2, 3)), AgentStats())
    assert (total.frames_sent, total.duplicates, total.acks_sent) == (6, 12, 0)


def test_a_missing_field_is_named():
    message = _error(_load_line(lambda call: call.pop("gap_s")))
    assert "Load.calls[0]" in message and "missing field gap_s" in message


def test_an_unknown_field_is_named():
    # The old wire name of gap_s: read as it was, it would have been silently ignored.
    message = _error(_load_line(lambda call: call.update(gap=0.25)))
    assert "unknown field gap" in message


def test_a_renamed_field_is_both_missing_and_unknown():
    message = _error(_load_line(lambda call: call.update(gap=call.pop("gap_s"))))
    assert "missing field gap_s" in message and "unknown field gap" in message


@pytest.mark.parametrize(("row", "fragment"), [
    ([0, 3, 5, 0, 4096, 4096], "expected a list of step, src, dst"),  # a field short
    ([0, 3, 5, 0, 4096, 4096, True, 1], "expected a list of step, src, dst"),  # one too many
    ([0, 3, 5, 0, 4096, 4096, 1], "moves[0].reduce: expected bool, got 1"),  # old int flag
    ([0, 3, 5, 0, "4096", 4096, True], "moves[0].dst_offset: expected int"),
])
def test_a_malformed_move_is_located(row, fragment):
    message = _error(_load_line(lambda call: call["moves"].__setitem__(0, row)))
    assert fragment in message


@pytest.mark.parametrize(("line", "fragment"), [
    ("not json", "not a JSON line"),
    ('{"cmd": "exit"}', "not a known message"),  # the old, untyped form
    ('{"msg": "launch"}', "not a known message"),
    ('{"msg": ["go"]}', "not a known message"),
    ('{"msg": "go", "start": 1.0, "timeout": 2.0, "dilation": 1, "skip": true, "routes": {}}',
     "bad Go: missing field rto"),
    ('{"msg": "go", "start": 1.0, "timeout": "soon", "rto": 0.1, "dilation": 1, '
     '"skip": true, "routes": {}}', "bad Go.timeout"),
    ('{"msg": "go", "start": 1.0, "timeout": 2.0, "rto": 0.1, "dilation": 1, "skip": true, '
     '"routes": {"1": [0.0, 1e9, 2]}}', "bad Go.routes[1]: expected a list of delay_s"),
    ('{"msg": "ready", "rank": 1.5}', "bad Ready.rank: expected int, got 1.5"),
    ('{"msg": "setup", "rank": 0, "ranks": 1, "peers": {"x": {}}, "mtu": 1500, "rto": 0.1, '
     '"sndbuf": 1, "routes": {}}',
     "bad Setup.peers[x]: expected int, got 'x'"),
    ('{"msg": "report", "calls": {"1": [1.0]}, "checks": {}, "stats": {}, "skipped_s": 0}',
     "bad Report.calls[1]: expected a list of 2"),
    (_report_line(lambda stats: stats.pop("duplicates")),
     "bad Report.stats: missing field duplicates"),
    (_report_line(lambda stats: stats.update(resent=1)), "bad Report.stats: unknown field resent"),
    (_report_line(lambda stats: stats.update(acks_sent=1.0)),
     "bad Report.stats.acks_sent: expected int, got 1.0"),
    ('{"msg": "report", "calls": {}, "checks": {}, "stats": [0, 0], "skipped_s": 0}',
     "bad Report.stats: expected an object of frames_sent"),
])
def test_malformed_lines_are_refused_clearly(line, fragment):
    assert fragment in _error(line)


def test_an_unexpected_message_is_refused():
    assert "expected Report or Failure, got Loaded" in _error(encode(Loaded()), Report, Failure)


def test_numbers_widen_to_float_but_never_narrow():
    assert decode('{"msg": "go", "start": 1, "timeout": 2, "rto": 0, "dilation": 5, '
                  '"skip": false, "routes": {}}') == Go(1.0, 2.0, 0.0, 5.0, False)
    assert "expected int" in _error('{"msg": "ready", "rank": true}')
