"""Apply a LinkShape to an interface's egress through netlink (pyroute2), no `tc` processes.

Each link end gets: htb root -> one class at the link rate -> a leaf that is netem (delay and
loss, where the kernel has it) or a pfifo; either holds limit_packets frames (lossless).
Shaping the egress of both ends emulates both directions of a full-duplex link.
"""

from __future__ import annotations

import functools

from emulator.kernel import nlbatch
from emulator.models.dilation import LinkShape

ROOT = 0x10000  # 1:
CLASS = 0x10001  # 1:1
LEAF = 0x100000  # 10:
CLSACT = 0xFFFFFFF1  # where a clsact qdisc (the loss filter's) hangs


def apply(ipr, index: int, shape: LinkShape, netem: bool, frame_bytes: int) -> None:
    """Install the shaping tree on interface `index` of the namespace `ipr` talks to."""
    ipr.tc("add", "htb", index, ROOT, default=1)
    _rate_class(ipr, "add-class", index, shape, frame_bytes)
    if netem and _delays_or_loses(shape):
        _netem(ipr, "add", index, shape, frame_bytes)
    else:
        ipr.tc("add", "pfifo", index, LEAF, parent=CLASS, limit=shape.limit_packets)


def redilate(ipr, index: int, shape: LinkShape, netem: bool, frame_bytes: int) -> None:
    """A live link end at another dilation: its rate and burst, and netem's delay (the same
    tree, so the choice of leaf must not depend on the dilation: see _delays_or_loses)."""
    _rate_class(ipr, "change-class", index, shape, frame_bytes)
    if netem and _delays_or_loses(shape):
        _netem(ipr, "change", index, shape, frame_bytes)


def _delays_or_loses(shape: LinkShape) -> bool:
    """Whether the link end needs netem: any delay at all (whatever the dilation) or loss."""
    return shape.delay_us > 0 or shape.loss_percent > 0


def _netem(ipr, command: str, index: int, shape: LinkShape, frame_bytes: int) -> None:
    ipr.tc(
        command,
        "netem",
        index,
        LEAF,
        parent=CLASS,
        delay=int(round(shape.delay_us)),
        loss=shape.loss_percent,
        # Frames in flight inside netem's delay line count against its limit too.
        limit=shape.limit_packets + _in_flight(shape, frame_bytes),
    )


@functools.cache
def compiled(shape: LinkShape, netem: bool, frame_bytes: int, change: bool = False) -> bytes:
    """apply()'s requests (or, with `change`, redilate()'s), encoded once per distinct shape
    for nlbatch.stamp: a star's hundreds of identical links cost one encoding, not one each."""
    build = redilate if change else apply
    return nlbatch.compile_requests(
        lambda ipr: build(ipr, nlbatch.PLACEHOLDER, shape, netem, frame_bytes))


def change_rate(ipr, index: int, shape: LinkShape, frame_bytes: int) -> None:
    """Set a live link's rate (a fault, or its repair) without touching its queue."""
    _rate_class(ipr, "change-class", index, shape, frame_bytes)


def _rate_class(ipr, command: str, index: int, shape: LinkShape, frame_bytes: int) -> None:
    ipr.tc(
        command,
        "htb",
        index,
        CLASS,
        parent=ROOT,
        rate=f"{shape.rate_bps}bit",
        ceil=f"{shape.rate_bps}bit",
        burst=shape.burst_bytes,
        cburst=shape.burst_bytes,
        quantum=frame_bytes + 64,
        mtu=frame_bytes + 64,
    )


def _in_flight(shape: LinkShape, frame_bytes: int) -> int:
    return int(shape.rate_bps / 8 * shape.delay_us / 1e6 / frame_bytes) + 1


def counters(ipr) -> dict[int, dict[str, int]]:
    """For every interface of the namespace `ipr` talks to (by index): what its root qdisc
    has sent (bytes, packets), dropped (queue overflow) and still holds (backlog, in
    packets), and the frames its loss filter dropped on arrival (`lost_in`: a lossy or
    down link's losses, counted by the clsact qdisc it sits on, emulator.kernel.loss). One
    dump per namespace: asking per interface would dump them all each time."""
    out: dict[int, dict[str, int]] = {}
    lost: dict[int, int] = {}
    for msg in ipr.get_qdiscs():
        queue = msg.get_attr("TCA_STATS2").get_attr("TCA_STATS_QUEUE")
        if msg["parent"] == 0xFFFFFFFF:
            basic = msg.get_attr("TCA_STATS2").get_attr("TCA_STATS_BASIC")
            out[msg["index"]] = {"bytes": basic["bytes"], "packets": basic["packets"],
                                 "drops": queue["drops"], "backlog": queue["qlen"]}
        elif msg["parent"] == CLSACT:
            lost[msg["index"]] = queue["drops"]
    for index, dropped in lost.items():
        if index in out:
            out[index]["lost_in"] = dropped
    return out
