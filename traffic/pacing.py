"""When each received frame reaches the GPU, as a wire would deliver it (traffic.machine holds
every data frame until then)."""

from __future__ import annotations

from traffic.protocol import Route


class Wire:
    """When each received frame reaches the GPU, as a wire would deliver it, and when each
    frame this rank sends leaves.

    A wire delivers a frame once its last bit is across, one transmission time after the one
    before it; the kernel's token-bucket shaper releases a frame as soon as it may start, and
    frames for free after an idle gap (its bucket). So each frame is paced again here, at its
    route's slowest rate and at the rate of the link it arrives on (shared by every sender
    behind it), then held for the route's link delay where no netem delays it. The shaper
    keeps the average rate; this keeps each frame's time.

    Pacing starts from when the frame was due to leave its sender (the header's `sent`),
    not from when the kernel received it: a sender whose turn came late, or a kernel
    that took its time, then costs nothing while the frames still arrive before the wire
    would have delivered them, and no frame reaches the GPU before the kernel received it.
    A sender's frames leave one transmission time apart on each of its links, to whichever
    peers (departure, left).
    """

    def __init__(self, routes: dict[int, Route], dilation: float) -> None:
        # By sender, at the program's dilation: (delay, seconds per wire byte on the route's
        # slowest link, the link frames arrive on, seconds per wire byte on it).
        self.hold = {src: (r.delay_s * dilation, 8 / r.rate_bps * dilation, r.link,
                           8 / r.link_rate_bps * dilation) for src, r in routes.items()}
        self.route_free: dict[int, float] = {}  # when the last frame from a sender is across
        self.link_free: dict[int, float] = {}  # the same for each arriving link
        # This rank's own links (every one carries some arrivals), for its departures.
        self.leave_per_byte = {r.link: 8 / r.link_rate_bps * dilation for r in routes.values()}
        self.leaving_free: dict[int, float] = {}  # when each link's last departure is across

    def departure(self, link: int, due: float) -> float:
        """When a frame due at `due` starts onto this rank's `link`: once the frames that
        left on it before are across (a rank's frames to several peers share its link)."""
        return max(due, self.leaving_free.get(link, 0.0))

    def left(self, link: int, start: float, wire_bytes: int) -> None:
        """A frame of `wire_bytes` started onto `link` at `start` (departure's answer)."""
        if link >= 0 and link in self.leave_per_byte:
            self.leaving_free[link] = start + wire_bytes * self.leave_per_byte[link]

    def across(self, src: int, wire_bytes: int, received: float, sent: float) -> float:
        """When a frame of `wire_bytes` from `src`, received by the kernel at `received`,
        reaches the GPU (CLOCK_MONOTONIC seconds); `sent` is when it was due to leave."""
        delay, per_byte, link, link_per_byte = self.hold.get(src, (0.0, 0.0, -1, 0.0))
        entered = min(sent, received)
        route = max(entered, self.route_free.get(src, 0.0)) + wire_bytes * per_byte
        last_hop = max(entered, self.link_free.get(link, 0.0)) + wire_bytes * link_per_byte
        self.route_free[src] = route
        self.link_free[link] = done = max(route, last_hop)
        return max(done + delay, received)
