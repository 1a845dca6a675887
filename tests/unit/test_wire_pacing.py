"""The receiving agent delivers frames as a wire would (traffic.pacing.Wire): one
transmission time apart, each once its last bit is across, then after the link delay,
whatever burst the shaper's bucket let through; from when each was due to leave (its stamp),
never before the kernel received it. The sending agent stamps its frames as its link would let
them leave, and may hand them over before then."""

import pytest

from traffic.pacing import KEPT_FRAMES, Wire
from traffic.protocol import Route

FRAME = 1000  # wire bytes
RATE = 8e6  # bit/s: a 1000-byte frame takes 1 ms
W = 1e-3


def wire(delay_s=0.0, route_rate=RATE, dilation=1.0, senders=(1,), link=7, paced=True):
    return Wire({src: Route(delay_s, route_rate, link, RATE, paced) for src in senders},
                dilation)


def test_a_frame_alone_arrives_one_transmission_time_after_it_left_plus_the_delay():
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0, 10.0).at == pytest.approx(10.0 + W + 2e-3)


def test_a_burst_is_delivered_one_frame_time_apart():
    """Three frames the shaper let through at once (its bucket): the wire takes 3 ms."""
    w = wire()
    times = [w.across(1, FRAME, 10.0, 10.0).at for _ in range(3)]
    assert times == pytest.approx([10.0 + W, 10.0 + 2 * W, 10.0 + 3 * W])


def test_frames_already_a_frame_time_apart_are_not_delayed_further():
    w = wire()
    times = [w.across(1, FRAME, 10.0 + k * W, 10.0 + k * W).at for k in range(4)]
    assert times == pytest.approx([10.0 + (k + 1) * W for k in range(4)])


def test_an_idle_gap_is_not_carried_over():
    w = wire()
    w.across(1, FRAME, 10.0, 10.0)
    assert w.across(1, FRAME, 20.0, 20.0).at == pytest.approx(20.0 + W)


def test_senders_sharing_the_arriving_link_share_its_rate():
    """Two senders' frames released together on one last hop: the second waits for the
    first (each sender's own route alone would let both in after one frame time)."""
    w = wire(senders=(1, 2))
    first, second = w.across(1, FRAME, 10.0, 10.0).at, w.across(2, FRAME, 10.0, 10.0).at
    assert (first, second) == pytest.approx((10.0 + W, 10.0 + 2 * W))


def test_senders_share_the_arriving_link_in_the_order_they_sent_whatever_the_receipt():
    """Sender 2's frame left half a frame time before sender 1's but the kernel handed it
    over after it (another agent's turn came first): it still crosses the link first, and
    sender 1's frame waits for it, as when they are received in the order they left."""
    received_in_order = wire(senders=(1, 2))
    early = received_in_order.across(2, FRAME, 10.0, 10.0).at
    late = received_in_order.across(1, FRAME, 10.0, 10.0 + W / 2).at
    out_of_order = wire(senders=(1, 2))
    late_first = out_of_order.across(1, FRAME, 10.0, 10.0 + W / 2)
    early_second = out_of_order.across(2, FRAME, 10.0, 10.0)
    assert (early, late) == pytest.approx((10.0 + W, 10.0 + 2 * W))
    assert (early_second.at, late_first.at) == pytest.approx((early, late))


def test_a_link_reached_past_a_link_between_switches_takes_frames_as_received():
    """The same two frames, where sender 2's route crosses a link between switches (only
    the kernel paces it, so the order it lets frames through is the wire's): the frame
    received first crosses the arriving link first, whatever its stamp."""
    w = Wire({1: Route(0.0, RATE, 7, RATE, paced=True),
              2: Route(0.0, RATE, 7, RATE, paced=False)}, 1.0)
    first = w.across(1, FRAME, 10.0, 10.0 + W / 2)
    second = w.across(2, FRAME, 10.0, 10.0)
    assert (first.at, second.at) == pytest.approx((10.0 + 1.5 * W, 10.0 + 2.5 * W))


class Receive:
    held = 0.0


def test_what_waits_for_a_frame_waits_longer_when_one_sent_before_it_comes_in_later():
    """Sender 1's frame has landed (its receive holds until it is across); a frame sender 2
    sent half a frame time before it comes in after it, goes first, and the receive's hold
    moves on by half a frame time. A frame that comes in order delays nothing before it."""
    w = wire(senders=(1, 2))
    first = w.across(1, FRAME, 10.0, 10.0 + W / 2)
    receive = Receive()
    receive.held, first.holder = first.at, receive
    assert receive.held == pytest.approx(10.0 + 1.5 * W)
    w.across(2, FRAME, 10.0, 10.0)
    assert receive.held == pytest.approx(10.0 + 2 * W)
    w.across(2, FRAME, 10.0, 10.0 + 5 * W)
    assert receive.held == pytest.approx(10.0 + 2 * W)


def test_only_the_latest_frames_of_a_link_are_kept_for_placing_others_before_them():
    """However many frames a link carries, it keeps a bounded number to place a late one
    before, and the link stays as busy as the frames it dropped left it."""
    w = wire(senders=(1, 2))
    times = [w.across(1, FRAME, 10.0, 10.0).at for _ in range(5 * KEPT_FRAMES)]
    assert times[-1] == pytest.approx(10.0 + 5 * KEPT_FRAMES * W)
    assert len(w.arriving[7]) <= 2 * KEPT_FRAMES
    assert w.across(2, FRAME, 10.0, 10.0).at == pytest.approx(10.0 + (5 * KEPT_FRAMES + 1) * W)


def test_a_slower_link_earlier_on_the_route_paces_its_senders_frames():
    w = wire(route_rate=RATE / 4)  # the route's bottleneck: 4 ms a frame
    times = [w.across(1, FRAME, 10.0, 10.0).at for _ in range(2)]
    assert times == pytest.approx([10.0 + 4 * W, 10.0 + 8 * W])


def test_times_are_dilated():
    w = wire(delay_s=1e-6, dilation=1000.0)
    assert w.across(1, FRAME, 0.0, 0.0).at == pytest.approx(1000 * W + 1e-3)


def test_an_unknown_sender_is_delivered_when_received():
    assert wire().across(99, FRAME, 5.0, 4.0).at == 5.0


# -- stamps: when each frame was due to leave ---------------------------------------------------
def test_a_frame_stamped_before_it_was_received_is_paced_from_its_stamp():
    """A late sender's frame, received 0.5 ms after it was due: the wire had it across one
    transmission time and the delay after its stamp, later than the kernel handed it over."""
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0 + W / 2, 10.0).at == pytest.approx(
        10.0 + W + 2e-3)


def test_a_frame_is_never_delivered_before_the_kernel_received_it():
    assert wire(delay_s=2e-3).across(1, FRAME, 10.5, 10.0).at == 10.5


def test_a_frame_handed_over_before_it_was_due_is_paced_from_its_stamp():
    """A step's frames go to the kernel as the step begins, due after the GPU's step
    latency: the wire starts them when they are due, not when the kernel had them."""
    assert wire(delay_s=2e-3).across(1, FRAME, 10.0, 11.0).at == pytest.approx(11.0 + W + 2e-3)


def test_frames_received_late_together_are_delivered_when_received():
    """Three frames stamped a frame time apart, held up by the host and received at once
    long after: each was across by then, so none waits a frame time for the one before."""
    w = wire()
    assert [w.across(1, FRAME, 20.0, 10.0 + k * W).at for k in range(3)] == [20.0] * 3


def test_late_frames_are_paced_from_their_stamps_not_from_one_another():
    """A burst stamped at once, received a frame time later: the wire takes three frame
    times from the stamp, not from the receipt."""
    w = wire()
    times = [w.across(1, FRAME, 10.0 + W, 10.0).at for _ in range(3)]
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
