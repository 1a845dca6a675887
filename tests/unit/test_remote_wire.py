"""The controller-worker wire: clock offsets from round trips, times moved between clocks."""

from __future__ import annotations

import json

import pytest

from emulator.remote import wire
from foundation.errors import NetwallError
from traffic.protocol import AgentStats, Go, Report, Setup, decode, encode


def test_the_narrowest_round_trip_sets_the_offset():
    # The worker's clock runs 100 s behind; the second sample is the tightest.
    samples = [(10.0, -89.0, 12.0), (20.0, -79.9995, 20.001), (30.0, -69.0, 31.0)]
    offset, uncertainty = wire.offset(samples)
    assert offset == pytest.approx(100.0, abs=1e-3)
    assert uncertainty == pytest.approx(0.0005)


def test_go_and_report_move_between_clocks_and_round_trip():
    go = encode(Go(start=1000.0, timeout=5.0, rto=0.1, dilation=10.0))
    assert decode(wire.to_worker(go, 100.0), Go).start == 900.0
    report = encode(Report(calls={3: (900.5, 901.0)}, checks={}, stats=AgentStats()))
    assert decode(wire.from_worker(report, 100.0), Report).calls == {3: (1000.5, 1001.0)}


def test_other_lines_and_a_shared_clock_pass_unchanged():
    setup = encode(Setup(rank=0, ranks=1, peers={}, mtu=65000, rto=0.1, sndbuf=1, routes={}))
    assert wire.to_worker(setup, 5.0) == setup
    go = encode(Go(start=1.0, timeout=5.0, rto=0.1, dilation=10.0))
    assert wire.to_worker(go, 0.0) == go


def test_objects_travel_as_text_and_requests_are_json():
    assert wire.unpack(wire.pack({"a": (1, 2)})) == {"a": (1, 2)}
    assert json.loads(wire.request("redilate", plan="x")) == {"op": "redilate", "plan": "x"}


@pytest.mark.parametrize("line", ["not json", "[1, 2]"])
def test_a_bad_worker_line_is_one_line(line):
    with pytest.raises(NetwallError, match="worker protocol"):
        wire.parse(line)
