"""The receiving agent delivers frames as a wire would (traffic.pacing.Wire): one
transmission time apart, each once its last bit is across, then after the link delay,
whatever burst the shaper's bucket let through; from when each was due to leave (its stamp),
never before the kernel received it. The sending agent stamps its frames as its link would let
them leave. A frame stamped when it was received (a sender on time, no host delay) is paced
from its receipt."""

import pytest

from traffic.pacing import Wire
from traffic.protocol import Route

FRAME = 1000  # wire bytes
RATE = 8e6  # bit/s: a 1000-byte frame takes 1 ms
W = 1e-3


def wire(delay_s=0.0, route_rate=RATE, dilation=1.0, senders=(1,), link=7):
    return Wire({src: Route(delay_s, route_rate, link, RATE) for src in senders}, dilation)


def test_a_frame_alone_arrives_one_transmission_time_after_it_left_plus_the_delay():
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0, 10.0) == pytest.approx(10.0 + W + 2e-3)


def test_a_burst_is_delivered_one_frame_time_apart():
    """Three frames the shaper let through at once (its bucket): the wire takes 3 ms."""
    w = wire()
    times = [w.across(1, FRAME, 10.0, 10.0) for _ in range(3)]
    assert times == pytest.approx([10.0 + W, 10.0 + 2 * W, 10.0 + 3 * W])


def test_frames_already_a_frame_time_apart_are_not_delayed_further():
    w = wire()
    times = [w.across(1, FRAME, 10.0 + k * W, 10.0 + k * W) for k in range(4)]
    assert times == pytest.approx([10.0 + (k + 1) * W for k in range(4)])


def test_an_idle_gap_is_not_carried_over():
    w = wire()
    w.across(1, FRAME, 10.0, 10.0)
    assert w.across(1, FRAME, 20.0, 20.0) == pytest.approx(20.0 + W)


def test_senders_sharing_the_arriving_link_share_its_rate():
    """Two senders' frames released together on one last hop: the second waits for the
    first (each sender's own route alone would let both in after one frame time)."""
    w = wire(senders=(1, 2))
    first, second = w.across(1, FRAME, 10.0, 10.0), w.across(2, FRAME, 10.0, 10.0)
    assert (first, second) == pytest.approx((10.0 + W, 10.0 + 2 * W))


def test_a_slower_link_earlier_on_the_route_paces_its_senders_frames():
    w = wire(route_rate=RATE / 4)  # the route's bottleneck: 4 ms a frame
    times = [w.across(1, FRAME, 10.0, 10.0) for _ in range(2)]
    assert times == pytest.approx([10.0 + 4 * W, 10.0 + 8 * W])


def test_times_are_dilated():
    w = wire(delay_s=1e-6, dilation=1000.0)
    assert w.across(1, FRAME, 0.0, 0.0) == pytest.approx(1000 * W + 1e-3)


def test_an_unknown_sender_is_delivered_when_received():
    assert wire().across(99, FRAME, 5.0, 4.0) == 5.0


# -- stamps: when each frame was due to leave ---------------------------------------------------
def test_a_frame_stamped_before_it_was_received_is_paced_from_its_stamp():
    """A late sender's frame, received 0.5 ms after it was due: the wire had it across one
    transmission time and the delay after its stamp, later than the kernel handed it over."""
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0 + W / 2, 10.0) == pytest.approx(
        10.0 + W + 2e-3)


def test_a_frame_is_never_delivered_before_the_kernel_received_it():
    assert wire(delay_s=2e-3).across(1, FRAME, 10.5, 10.0) == 10.5


def test_a_stamp_later_than_the_receipt_counts_as_the_receipt():
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0, 11.0) == pytest.approx(10.0 + W + 2e-3)


def test_frames_received_late_together_are_delivered_when_received():
    """Three frames stamped a frame time apart, held up by the host and received at once
    long after: each was across by then, so none waits a frame time for the one before."""
    w = wire()
    assert [w.across(1, FRAME, 20.0, 10.0 + k * W) for k in range(3)] == [20.0] * 3


def test_late_frames_are_paced_from_their_stamps_not_from_one_another():
    """A burst stamped at once, received a frame time later: the wire takes three frame
    times from the stamp, not from the receipt."""
    w = wire()
    times = [w.across(1, FRAME, 10.0 + W, 10.0) for _ in range(3)]
    assert times == pytest.approx([10.0 + W, 10.0 + 2 * W, 10.0 + 3 * W])


# -- departures: a rank's frames to several peers share its link --------------------------------
def senders_on(*links):
    """This rank's routes from ranks 1, 2, ...: each arriving on the given link."""
    return Wire({src: Route(0.0, RATE, link, RATE) for src, link in enumerate(links, 1)}, 1.0)


def test_frames_to_two_peers_leaving_on_one_link_leave_one_transmission_time_apart():
    w = senders_on(7, 7)
    first = w.departure(7, 10.0)
    w.left(7, first, FRAME)
    second = w.departure(7, 10.0)
    w.left(7, second, FRAME)
    assert (first, second, w.departure(7, 10.0)) == pytest.approx((10.0, 10.0 + W,
                                                                    10.0 + 2 * W))


def test_frames_leaving_on_different_links_do_not_wait_for_each_other():
    w = senders_on(7, 8)
    w.left(7, w.departure(7, 10.0), FRAME)
    assert w.departure(8, 10.0) == 10.0
    assert w.departure(7, 10.0) == pytest.approx(10.0 + W)


def test_a_frame_due_after_the_link_is_free_leaves_when_due():
    w = senders_on(7)
    w.left(7, w.departure(7, 10.0), FRAME)
    assert w.departure(7, 10.0 + 5 * W) == 10.0 + 5 * W


def test_departures_are_dilated():
    w = Wire({1: Route(0.0, RATE, 7, RATE)}, 1000.0)
    w.left(7, w.departure(7, 0.0), FRAME)
    assert w.departure(7, 0.0) == pytest.approx(1000 * W)


def test_frames_on_an_unknown_link_are_not_paced_on_leaving():
    w = senders_on(7)
    for _ in range(3):
        w.left(-1, w.departure(-1, 10.0), FRAME)
    assert w.departure(-1, 10.0) == 10.0
    assert w.departure(7, 10.0) == 10.0  # nor do they hold a known link
