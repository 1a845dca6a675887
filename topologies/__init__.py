"""netwall topologies: the pure graph model, builders, validation and routing.

Nothing here touches the network; the emulator builds what these describe.
"""

from .builtin import parse
from .graph import DIRECT, MAX_GPUS, SCALE_OUT, SCALE_UP, TIERS, Link, Topology
from .routing import Hop, next_hops, path, path_totals
from .segments import segment, switch_segments
from .validate import validate
from .yamlfile import load_file

__all__ = [
    "DIRECT",
    "MAX_GPUS",
    "SCALE_OUT",
    "SCALE_UP",
    "TIERS",
    "Hop",
    "Link",
    "Topology",
    "load_file",
    "next_hops",
    "parse",
    "path",
    "path_totals",
    "segment",
    "switch_segments",
    "validate",
]
