"""Sizes, durations, percentages and rates: read from what users type, written for people.

One pure module so that every command, campaign file and fault spec accepts the same forms
and every bad value is one NetwallError line naming the form to use. Sizes are powers of
two ('64K' is 65536 bytes, as nccl-tests reads them); rates are decimal (1 Gb/s is 1e9
bit/s, as links are sold).
"""

from __future__ import annotations

import math
import re

from foundation.errors import NetwallError
from foundation.inputs import shown

MAX_SIZE = 1 << 40  # bytes of one collective call: far past any host's memory
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
DURATION_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_size(text: str) -> int:
    """Bytes from '4096', '64K', '16M' or '1G' (powers of two, as nccl-tests reads them), at
    most MAX_SIZE; anything else is one NetwallError line."""
    match = re.fullmatch(r"\s*(\d{1,15})\s*([KMG]?)B?\s*", text.upper()) \
        if isinstance(text, str) else None
    if not match:
        raise NetwallError(f"not a size: {shown(text)} (use e.g. 4096, 64K, 16M, 1G)")
    size = int(match.group(1)) * SIZE_UNITS[match.group(2)]
    if size > MAX_SIZE:
        raise NetwallError(f"size {shown(text)} is more than {MAX_SIZE >> 30} GiB")
    return size


def format_size(size: float, spaced: bool = False) -> str:
    """`size` bytes in the largest unit of SIZE_UNITS it reaches: '64K', '1.5M', '3G' (what
    parse_size reads back) or, spaced, '64 KiB', '1.5 MiB' (for tables and prose)."""
    for unit in ("G", "M", "K"):
        if size >= SIZE_UNITS[unit]:
            value = f"{size / SIZE_UNITS[unit]:g}"
            return f"{value} {unit}iB" if spaced else f"{value}{unit}"
    return f"{size:g} B" if spaced else f"{size:g}"


def parse_duration(text: str, what: str | None = None) -> float:
    """Seconds from '50us', '2ms', '0.1s', '20ns' or a bare number of seconds ('1e-3'): finite
    and not negative. The error names `what` (e.g. "fault X: the start"), else the text."""
    match = re.fullmatch(r"([0-9.]+(?:e[+-]?[0-9]+)?)([a-z]*)", text) \
        if isinstance(text, str) else None
    unit = match.group(2) if match else ""
    try:
        value = float(match.group(1)) * DURATION_UNITS[unit or "s"] if match else math.nan
    except (KeyError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise NetwallError(f"{what or shown(text)} must be a time like 50us, 2ms or 0.1s")
    return value


def parse_percent(text: str) -> float:
    """'2%', '2' or '0.5%' as a fraction, strictly between 0 and 1."""
    try:
        value = float(text.strip().rstrip("%")) / 100
    except (AttributeError, ValueError):
        raise NetwallError(f"not a percentage: {text!r} (e.g. 2%)") from None
    if not 0 < value < 1:
        raise NetwallError(f"must be between 0 and 100%, got {text!r}")
    return value


def format_rate(bps: float) -> str:
    """A rate in bit/s as Gb/s from 1 Gb/s up, else Mb/s: '2.500 Gb/s', '100.00 Mb/s'."""
    return f"{bps / 1e9:.3f} Gb/s" if bps >= 1e9 else f"{bps / 1e6:.2f} Mb/s"
