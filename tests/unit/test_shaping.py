"""The shaping tree handed to netlink, including the netem leaf this kernel cannot build.

This machine's kernel has no sch_netem, so the netem branch is checked against a recording
stand-in for the netlink socket: the only part of netwall tested without the real kernel.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from emulator.kernel import shaping
from emulator.models.dilation import link_shape
from emulator.models.plan import FRAME_BYTES
from emulator.models.profiles import catalogue


class RecordingNetlink:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def tc(self, command, kind, index, handle, **kwargs):
        self.calls.append((command, kind, index, handle, kwargs))


@pytest.fixture
def optical_shape():
    profile = catalogue()["optical-800g"]
    shape = link_shape(profile.rate_gbps, profile.delay_ns(30.0),
                       profile.frame_loss(FRAME_BYTES), profile.queue_bytes,
                       dilation=1000, frame_bytes=FRAME_BYTES)
    return profile, replace(shape, limit_packets=200)


def test_with_netem_the_leaf_carries_delay_and_loss(optical_shape):
    profile, shape = optical_shape
    nl = RecordingNetlink()
    shaping.apply(nl, 7, shape, netem=True, frame_bytes=FRAME_BYTES)
    (c1, k1, i1, h1, root), (c2, k2, _, h2, cls), (c3, k3, _, h3, leaf) = nl.calls
    assert (c1, k1, i1, h1, root["default"]) == ("add", "htb", 7, shaping.ROOT, 1)
    assert (c2, k2, h2, cls["parent"]) == ("add-class", "htb", shaping.CLASS, shaping.ROOT)
    assert cls["rate"] == cls["ceil"] == f"{int(800e9 / 1000)}bit"
    assert (c3, k3, h3, leaf["parent"]) == ("add", "netem", shaping.LEAF, shaping.CLASS)
    # 30 m of fibre plus the FEC/DSP delay, stretched by D = 1000, in microseconds.
    expected_us = (profile.delay_ns_per_m * 30 + profile.fec_delay_ns) * 1000 / 1000
    assert leaf["delay"] == round(expected_us)
    assert leaf["loss"] == pytest.approx(100 * profile.frame_loss(FRAME_BYTES))
    # The delay line holds a bandwidth-delay product of frames on top of the queue.
    in_flight = shape.rate_bps / 8 * shape.delay_us / 1e6 / FRAME_BYTES
    assert leaf["limit"] >= shape.limit_packets + int(in_flight)


def test_without_netem_the_leaf_is_a_fifo_sized_from_the_queue(optical_shape):
    _, shape = optical_shape
    nl = RecordingNetlink()
    shaping.apply(nl, 7, shape, netem=False, frame_bytes=FRAME_BYTES)
    assert [c[1] for c in nl.calls] == ["htb", "htb", "pfifo"]
    assert nl.calls[2][4]["limit"] == shape.limit_packets


def test_a_link_without_delay_or_loss_needs_no_netem():
    shape = link_shape(100, 0.0, 0.0, 1 << 20, dilation=100, frame_bytes=FRAME_BYTES)
    nl = RecordingNetlink()
    shaping.apply(nl, 1, shape, netem=True, frame_bytes=FRAME_BYTES)
    assert nl.calls[-1][1] == "pfifo"
