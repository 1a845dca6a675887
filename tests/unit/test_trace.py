"""The JSONL trace format: parsing, validation (one-line errors), resolution, round trip."""

from __future__ import annotations

import json

import pytest

from foundation.errors import NetwallError
from traffic.trace import (
    COLLECTIVES,
    Call,
    dump_trace,
    load_trace,
    modelled_span_s,
    parse_trace,
    resolve,
)

GOOD = """\
# a comment, then a blank line

{"collective": "allreduce", "bytes": 1048576, "group": "all"}
{"id": 7, "collective": "broadcast", "bytes": 4096, "group": [2, 0, 1], "root": 2, "comm": "b"}
{"id": 8, "collective": "allgather", "algorithm": "ring", "bytes": 64, "group": [0, 1],
 "stream": "tp", "gap_us": 12.5, "after": [0, 7], "step": 3}
"""


def parse(text: str, name: str = "t.jsonl") -> list[Call]:
    return parse_trace(text.splitlines(), name)


def test_defaults_and_explicit_values():
    good = GOOD.replace(',\n "stream"', ', "stream"')  # one object per line
    a, b, c = parse(good)
    assert a == Call(id=0, collective="allreduce", algorithm=None, bytes=1048576, group=(),
                     comm="world", stream="0")
    assert (b.id, b.group, b.root, b.comm, b.stream) == (7, (2, 0, 1), 2, "b", "0")
    assert (c.algorithm, c.stream, c.gap_us, c.after, c.step) == ("ring", "tp", 12.5, (0, 7), 3)
    assert c.comm == "g0-1"  # derived from the group


def test_round_trip_and_file(tmp_path):
    calls = [
        Call(0, "allreduce", None, 1 << 20, (), "world", "0"),
        Call(3, "reduce", "tree", 4096, (3, 1, 2), "r", "s1", gap_us=0.125, root=1, step=2),
        Call(4, "sendrecv", None, 8, (0, 1), "p", "pp", after=(0, 3)),
        Call(5, "alltoall", None, 4 * 4 * 1000, (0, 1, 2, 3), "ep0", "ep", gap_us=3.0),
    ]
    text = dump_trace(calls, header=["made by a test"])
    assert text.startswith("# made by a test\n")
    assert all(json.loads(line) for line in text.splitlines()[1:])
    assert parse(text) == calls
    path = tmp_path / "trace.jsonl"
    path.write_text(text)
    assert load_trace(path) == calls
    assert dump_trace(load_trace(path)) == dump_trace(calls)


def test_every_collective_is_accepted():
    lines = [json.dumps({"collective": c, "bytes": 64, "group": [0, 1],
                         **({"peer": 1} if c == "send" else {})}) for c in COLLECTIVES]
    assert [c.collective for c in parse("\n".join(lines))] == list(COLLECTIVES)


@pytest.mark.parametrize("line, key", [
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1]', "bad JSON"),
    ('[1, 2]', "JSON object"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "size": 8}', "'size'"),
    ('{"bytes": 8, "group": [0, 1]}', "'collective'"),
    ('{"collective": "allreduce", "group": [0, 1]}', "'bytes'"),
    ('{"collective": "allreduce", "bytes": 8}', "'group'"),
    ('{"collective": "allreduce", "bytes": true, "group": [0, 1]}', "'bytes'"),
    ('{"collective": "allreduce", "bytes": "16M", "group": [0, 1]}', "'bytes'"),
    ('{"collective": "allreduce", "bytes": 8.0, "group": [0, 1]}', "'bytes'"),
    ('{"collective": "allreduce", "bytes": 0, "group": [0, 1]}', "'bytes'"),
    ('{"collective": "allreduce", "bytes": -4, "group": [0, 1]}', "'bytes'"),
    ('{"collective": "gather", "bytes": 8, "group": [0, 1]}', "'collective'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 0]}', "'group'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, -1]}', "'group'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0]}', "'group'"),
    ('{"collective": "allreduce", "bytes": 8, "group": "most"}', "'group'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, true]}', "'group'"),
    ('{"collective": "broadcast", "bytes": 8, "group": [0, 1], "root": 2}', "'root'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "id": -1}', "'id'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "gap_us": -1}', "'gap_us'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "gap_us": "5"}', "'gap_us'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "after": [9]}', "'after'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "after": 0}', "'after'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "step": 1.5}', "'step'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "stream": ""}', "'stream'"),
    ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "algorithm": 3}', "'algorithm'"),
])
def test_errors_are_one_line_naming_file_line_and_key(line, key):
    text = '{"collective": "allreduce", "bytes": 8, "group": [0, 1]}\n' + line
    with pytest.raises(NetwallError) as e:
        parse(text, "my.jsonl")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("my.jsonl:2: ")
    assert key in msg


def test_duplicate_id_and_after_naming_a_later_call():
    first = '{"id": 1, "collective": "allreduce", "bytes": 8, "group": [0, 1]}'
    with pytest.raises(NetwallError, match=r"^t.jsonl:2: key 'id': 1 already used on line 1$"):
        parse(first + "\n" + first)
    later = ('{"id": 1, "collective": "allreduce", "bytes": 8, "group": [0, 1], "after": [2]}\n'
             '{"id": 2, "collective": "allreduce", "bytes": 8, "group": [0, 1]}')
    with pytest.raises(NetwallError, match=r"^t.jsonl:1: key 'after': 2 is not the id"):
        parse(later)
    selfref = '{"id": 1, "collective": "allreduce", "bytes": 8, "group": [0, 1], "after": [1]}'
    with pytest.raises(NetwallError, match="'after'"):
        parse(selfref)


def test_a_comm_keeps_its_group():
    text = ('{"collective": "allreduce", "bytes": 8, "group": [0, 1], "comm": "x"}\n'
            '{"collective": "allreduce", "bytes": 8, "group": [0, 2], "comm": "x"}')
    with pytest.raises(NetwallError, match=r"^t.jsonl:2: key 'group': comm 'x' had group"):
        parse(text)


def test_resolve():
    calls = parse('{"collective": "broadcast", "bytes": 8, "group": "all", "root": 3}\n'
                  '{"id": 5, "collective": "allreduce", "bytes": 8, "group": [1, 3]}')
    out = resolve(calls, 4)
    assert out[0].group == (0, 1, 2, 3) and out[1].group == (1, 3)
    assert calls[0].group == ()  # the input is left alone
    with pytest.raises(NetwallError) as e:
        resolve(calls, 3)
    assert "\n" not in str(e.value) and str(e.value).startswith("call 0: root 3")
    with pytest.raises(NetwallError, match=r"^call 5: rank 3 .* 3 ranks"):
        resolve(calls[1:], 3)


def test_load_trace_missing_file(tmp_path):
    with pytest.raises(NetwallError, match="trace .*nope.jsonl not found"):
        load_trace(tmp_path / "nope.jsonl")


def test_the_modelled_span_overlaps_streams_and_queues_calls_on_one():
    tp = [Call(i, "allreduce", None, 1024, (0, 1), "tp", "tp", gap_us=10.0) for i in (0, 1)]
    dp = Call(2, "allreduce", None, 1024, (1, 2), "dp", "dp")  # rank 1 on both streams
    after = Call(3, "allreduce", None, 1024, (2, 3), "dp", "dp", after=(1,))
    grouped = Call(4, "allreduce", None, 1024, (2, 3), "dp", "dp", grouped=True)
    times = {0: 5e-6, 1: 5e-6, 2: 7e-6, 3: 1e-6, 4: 3e-6}
    calls = [*tp, dp, after, grouped]
    # tp: 10 + 5 + 10 + 5 = 30 us; dp runs beside it (7 us); call 3 waits for call 1 (30 us)
    # and for call 2 on its stream, so ends at 31; the grouped call starts with it, ends at 33
    assert modelled_span_s(calls, times) == pytest.approx(33e-6)
    assert modelled_span_s(calls, times, gaps=False) == pytest.approx(13e-6)  # 5+5, 3 more
    assert modelled_span_s(calls, times) < 10e-6 * 2 + sum(times.values())  # not the sum
    assert modelled_span_s([], {}) == 0.0
