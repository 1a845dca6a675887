"""When each received frame reaches the GPU, as a wire would deliver it (traffic.machine holds
every data frame until then)."""

from __future__ import annotations

from bisect import bisect_right
from typing import Protocol

from traffic.protocol import Route

#: Frames of an arriving link kept for placing a later-received one before them: how far
#: out of order frames from several senders may come in (a few frames each, in practice).
KEPT_FRAMES = 32


class Holder(Protocol):
    """What waits for a landed frame: its receive (callstate.Incoming), held until `held`."""

    held: float


class Landing:
    """One received frame on its arriving link: when it reaches the GPU (`at`), and what
    waits for it (`holder`, once it has landed), which a frame placed before it later delays.
    """

    __slots__ = ("sent", "route", "per_link", "delay", "received", "done", "at", "holder")

    def __init__(self, sent: float, route: float, per_link: float, delay: float,
                 received: float) -> None:
        self.sent = sent  # when it was due to leave its sender
        self.route = route  # when its last bit is across its route's slowest link
        self.per_link = per_link  # its transmission time on the arriving link
        self.delay = delay  # the route's link delay, held here
        self.received = received
        self.done = self.at = 0.0
        self.holder: Holder | None = None

    def __lt__(self, other: Landing) -> bool:
        return self.sent < other.sent

    def place(self, free: float) -> float:
        """Put it on the arriving link, free from `free` on; when the link is free again.
        A frame delayed since it landed delays what waits for it."""
        self.done = max(self.route, max(self.sent, free) + self.per_link)
        at = max(self.done + self.delay, self.received)
        if at > self.at:
            self.at = at
            if self.holder is not None and at > self.holder.held:
                self.holder.held = at
        return self.done


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
    A frame handed over before it was due (traffic.machine.Machine.sendable) is paced from
    its stamp all the same. Frames from several senders share the arriving link in the
    order they were sent, not the order they were received in, where every route onto the
    link is one agents pace end to end (Route.paced): one received after frames sent later
    than it is placed before them, and they (and what waits for them) are delayed, so the
    link's share does not depend on which agent's turn came first. A link that frames reach
    across a link between switches takes them in the order they were received: only the
    kernel paces that link, and the order it lets frames through is the wire's.
    A sender's frames leave one transmission time apart on each of its links, to whichever
    peers (departure, left).
    """

    def __init__(self, routes: dict[int, Route], dilation: float) -> None:
        # By sender, at the program's dilation: (delay, seconds per wire byte on the route's
        # slowest link, the link frames arrive on, seconds per wire byte on it).
        self.hold = {src: (r.delay_s * dilation, 8 / r.rate_bps * dilation, r.link,
                           8 / r.link_rate_bps * dilation) for src, r in routes.items()}
        self.route_free: dict[int, float] = {}  # when the last frame from a sender is across
        # Each arriving link's latest frames, in the order they were sent, and when the link
        # was free before the first of them.
        self.arriving: dict[int, list[Landing]] = {}
        self.link_free: dict[int, float] = {}
        self.sent_order = {r.link for r in routes.values()} - {
            r.link for r in routes.values() if not r.paced}
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

    def across(self, src: int, wire_bytes: int, received: float, sent: float) -> Landing:
        """A frame of `wire_bytes` from `src`, received by the kernel at `received`, due to
        leave at `sent`: when it reaches the GPU (its `at`, CLOCK_MONOTONIC seconds)."""
        delay, per_byte, link, link_per_byte = self.hold.get(src, (0.0, 0.0, -1, 0.0))
        route = max(sent, self.route_free.get(src, 0.0)) + wire_bytes * per_byte
        self.route_free[src] = route
        landing = Landing(sent, route, wire_bytes * link_per_byte, delay, received)
        frames = self.arriving.setdefault(link, [])
        if not frames or frames[-1].sent <= sent or link not in self.sent_order:  # last
            landing.place(frames[-1].done if frames else self.link_free.get(link, 0.0))
            frames.append(landing)
        else:  # sent before frames already placed: before them, and they after it
            first = bisect_right(frames, landing)
            frames.insert(first, landing)
            free = frames[first - 1].done if first else self.link_free.get(link, 0.0)
            for later in frames[first:]:
                free = later.place(free)
        if len(frames) > 2 * KEPT_FRAMES:
            self.link_free[link] = frames[-KEPT_FRAMES - 1].done
            del frames[:-KEPT_FRAMES]
        return landing
