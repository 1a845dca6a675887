"""The receiving agent delivers frames as a wire would (traffic.pacing.Wire): one
transmission time apart, each once its last bit is across, then after the link delay,
whatever burst the shaper's bucket let through."""

import pytest

from traffic.pacing import Wire
from traffic.protocol import Route

FRAME = 1000  # wire bytes
RATE = 8e6  # bit/s: a 1000-byte frame takes 1 ms
W = 1e-3


def wire(delay_s=0.0, route_rate=RATE, dilation=1.0, senders=(1,), link=7):
    return Wire({src: Route(delay_s, route_rate, link, RATE) for src in senders}, dilation)


def test_a_frame_alone_arrives_one_transmission_time_after_it_left_plus_the_delay():
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0) == pytest.approx(10.0 + W + 2e-3)


def test_a_burst_is_delivered_one_frame_time_apart():
    """Three frames the shaper let through at once (its bucket): the wire takes 3 ms."""
    w = wire()
    times = [w.across(1, FRAME, 10.0) for _ in range(3)]
    assert times == pytest.approx([10.0 + W, 10.0 + 2 * W, 10.0 + 3 * W])


def test_frames_already_a_frame_time_apart_are_not_delayed_further():
    w = wire()
    times = [w.across(1, FRAME, 10.0 + k * W) for k in range(4)]
    assert times == pytest.approx([10.0 + (k + 1) * W for k in range(4)])


def test_an_idle_gap_is_not_carried_over():
    w = wire()
    w.across(1, FRAME, 10.0)
    assert w.across(1, FRAME, 20.0) == pytest.approx(20.0 + W)


def test_senders_sharing_the_arriving_link_share_its_rate():
    """Two senders' frames released together on one last hop: the second waits for the
    first (each sender's own route alone would let both in after one frame time)."""
    w = wire(senders=(1, 2))
    first, second = w.across(1, FRAME, 10.0), w.across(2, FRAME, 10.0)
    assert (first, second) == pytest.approx((10.0 + W, 10.0 + 2 * W))


def test_a_slower_link_earlier_on_the_route_paces_its_senders_frames():
    w = wire(route_rate=RATE / 4)  # the route's bottleneck: 4 ms a frame
    times = [w.across(1, FRAME, 10.0) for _ in range(2)]
    assert times == pytest.approx([10.0 + 4 * W, 10.0 + 8 * W])


def test_times_are_dilated():
    w = wire(delay_s=1e-6, dilation=1000.0)
    assert w.across(1, FRAME, 0.0) == pytest.approx(1000 * W + 1e-3)


def test_an_unknown_sender_is_delivered_when_received():
    assert wire().across(99, FRAME, 5.0) == 5.0
