"""Point-to-point calls in traces: a send inside a communicator, grouped calls, refusals."""

from __future__ import annotations

import json

import pytest

from foundation.errors import NetwallError
from traffic.trace import dump_trace, parse_trace, resolve, takers

PP = [
    {"id": 0, "collective": "send", "bytes": 4096, "group": [0, 2, 4], "comm": "pp",
     "root": 0, "peer": 1, "stream": "pp"},
    {"id": 1, "collective": "send", "bytes": 4096, "group": [0, 2, 4], "comm": "pp",
     "root": 2, "peer": 1, "stream": "pp", "grouped": True, "after": [0]},
    {"id": 2, "collective": "allreduce", "bytes": 64, "group": "all", "after": [1]},
]


def parse(objs: list[dict]) -> list:
    return parse_trace([json.dumps(o) for o in objs], "pp.jsonl")


def test_a_send_names_its_sender_and_receiver_inside_its_communicator():
    first, second, world = resolve(parse(PP), 6)
    assert takers(first) == (0, 2)  # root 0 -> peer 1 of [0, 2, 4]
    assert takers(second) == (4, 2)
    assert second.grouped and not first.grouped
    assert takers(world) == tuple(range(6))
    assert first.comm == second.comm == "pp"  # one communicator, both directions


def test_sends_round_trip_through_jsonl():
    calls = parse(PP)
    text = dump_trace(calls)
    assert '"peer": 1' in text and '"grouped": true' in text
    assert parse_trace(text.splitlines(), "again") == calls


@pytest.mark.parametrize("change, message", [
    ({"peer": None}, "missing key 'peer'"),
    ({"peer": 0}, "must differ from its sender"),
    ({"peer": 3}, "outside a group of 3"),
    ({"peer": "1"}, "expected an integer"),
    ({"grouped": 1}, "'grouped': expected true or false"),
])
def test_bad_sends_are_refused_in_one_line(change, message):
    obj = dict(PP[0])
    for key, value in change.items():
        if value is None:
            obj.pop(key)
        else:
            obj[key] = value
    with pytest.raises(NetwallError, match=message) as e:
        parse([obj])
    assert "\n" not in str(e.value) and str(e.value).startswith("pp.jsonl:1:")


def test_peer_belongs_to_sends_only():
    with pytest.raises(NetwallError, match="'peer' is for a send only, not allreduce"):
        parse([{"collective": "allreduce", "bytes": 64, "group": [0, 1], "peer": 1}])


def test_resolving_refuses_a_peer_outside_the_whole_job():
    calls = parse([{"collective": "send", "bytes": 64, "group": "all", "peer": 5}])
    with pytest.raises(NetwallError, match="call 0: peer 5 is outside its group of 4"):
        resolve(calls, 4)
