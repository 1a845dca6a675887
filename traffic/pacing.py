"""When each received frame reaches the GPU, as a wire would deliver it (traffic.machine holds
every data frame until then)."""

from __future__ import annotations

from traffic.protocol import Route


class Wire:
    """When each received frame reaches the GPU, as a wire would deliver it.

    A wire delivers a frame once its last bit is across, one transmission time after the one
    before it; the kernel's token-bucket shaper releases a frame as soon as it may start, and
    a frame or two for free after an idle gap (its bucket, which keeps the rate when timers
    fire late). So each frame is paced again here, from the kernel's receive time, at its
    route's slowest rate and at the rate of the link it arrives on (shared by every sender
    behind it), then held for the route's link delay where no netem delays it. The shaper
    keeps the average rate; this keeps each frame's time.
    """

    def __init__(self, routes: dict[int, Route], dilation: float) -> None:
        # By sender, at the program's dilation: (delay, seconds per wire byte on the route's
        # slowest link, the link frames arrive on, seconds per wire byte on it).
        self.hold = {src: (r.delay_s * dilation, 8 / r.rate_bps * dilation, r.link,
                           8 / r.link_rate_bps * dilation) for src, r in routes.items()}
        self.route_free: dict[int, float] = {}  # when the last frame from a sender is across
        self.link_free: dict[int, float] = {}  # the same for each arriving link

    def across(self, src: int, wire_bytes: int, received: float) -> float:
        """When a frame of `wire_bytes` from `src`, received by the kernel at `received`,
        reaches the GPU (CLOCK_MONOTONIC seconds)."""
        delay, per_byte, link, link_per_byte = self.hold.get(src, (0.0, 0.0, -1, 0.0))
        route = max(received, self.route_free.get(src, 0.0)) + wire_bytes * per_byte
        last_hop = max(received, self.link_free.get(link, 0.0)) + wire_bytes * link_per_byte
        self.route_free[src] = route
        self.link_free[link] = done = max(route, last_hop)
        return done + delay
