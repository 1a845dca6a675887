"""Switch segments: the switches bridged together into one L2 broadcast domain.

Switches are Linux bridges joined by switch-to-switch links; GPUs route IP and never bridge,
so a segment is a component of the switch-only graph. Three users must agree on it, which
is why there is one search: the validator allows a GPU at most one port per segment (so the
bridges' MAC learning and the predicted path are unambiguous), the plan picks as next-hop
MAC the next GPU's one interface on the segment, and the plan's static forwarding entries
give every bridge the port toward each GPU MAC of its segment. Were they to disagree, a
route could name a MAC that no bridge forwards.
"""

from __future__ import annotations

from .graph import Topology


def segment(topo: Topology, switch: str) -> dict[str, int | None]:
    """Every switch in the segment of `switch`, mapped to the link `switch` forwards on
    toward it (None for `switch` itself), in the order the search meets them.

    Switch links form a forest (validated), so that first link is the bridge's one port
    toward everything hanging off the other switch. The search itself stops on loops too.
    """
    first_link: dict[str, int | None] = {switch: None}
    todo = [switch]
    while todo:
        node = todo.pop()
        for link in topo.links_of(node):
            far = topo.other(link, node)
            if not topo.is_gpu(far) and far not in first_link:
                first_link[far] = first_link[node] if node != switch else link
                todo.append(far)
    return first_link


def switch_segments(topo: Topology) -> dict[str, frozenset[str]]:
    """Every switch mapped to its segment (the same frozenset for all switches of one)."""
    segments: dict[str, frozenset[str]] = {}
    for start in topo.switches:
        if start not in segments:
            members = frozenset(segment(topo, start))
            segments.update(dict.fromkeys(members, members))
    return segments
