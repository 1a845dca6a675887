"""Physical layout: where GPUs and switches sit, how long the cables between them are,
and which link technologies can reach.

Geometry (docs/layout.md has the diagram and the source of every default):

* Racks stand in rows of `racks_per_row`; floor slot s is row s // racks_per_row, column
  s % racks_per_row (row-major). Adjacent racks in a row are `rack_pitch_m` apart, adjacent
  rows `row_pitch_m` apart (rack depth plus half a hot and half a cold aisle).
* A rack's `gpus_per_rack` GPUs fill its usable height evenly: GPU k (0 = lowest) sits at
  (k + 0.5) * rack_height_m / gpus_per_rack. Switches sit at mid-height, as the NVLink switch
  trays of an NVL72 rack do.
* A cable inside one rack runs vertically between the two trays. A cable between racks rises
  to an overhead tray `tray_clearance_m` above the rack tops, follows the trays along and
  across rows (Manhattan distance), and drops into the far rack. Every cable gets `slack_m`.

Lengths are rounded to the millimetre, so a length computed here and compared with a reach
by `topologies.validate` give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from foundation.errors import NetwallError
from foundation.inputs import is_whole, shown

from .graph import MAX_GPUS, SCALE_OUT, SCALE_UP, Link, Topology

MAX_RACK_GPUS = 4096  # GPUs in one rack; far above any shipping design (NVL72: 72)
MAX_REPORT_GPUS = 1_000_000  # bounds the floor that scale_up_domain walks


@dataclass(frozen=True)
class Layout:
    """Physical dimensions of a GPU floor, in metres. Bad values raise NetwallError."""

    gpus_per_rack: int = 8  # GPUs physically in one rack (72 for an NVL72 rack)
    rack_pitch_m: float = 0.6  # centre-to-centre, adjacent racks in a row (600 mm racks)
    rack_height_m: float = 2.0  # usable vertical run inside a rack (42U = 1.87 m, 48U = 2.13 m)
    slack_m: float = 0.5  # service loop and routing slack per cable (netwall choice)
    racks_per_row: int = 16  # TIA-942-derived guidance: rows of at most 20 racks
    row_pitch_m: float = 2.1  # 7-tile aisle pitch (4.2 m) holds two rows
    tray_clearance_m: float = 0.3  # overhead cable tray above the rack tops (netwall choice)

    def __post_init__(self) -> None:
        for name, low, high in (("gpus_per_rack", 1, MAX_RACK_GPUS), ("racks_per_row", 1, 10_000)):
            value = getattr(self, name)
            if not is_whole(value, low, high):
                raise NetwallError(
                    f"layout: {name} must be a whole number {low}..{high}, got {shown(value)}"
                )
        for name, zero_ok in (
            ("rack_pitch_m", False),
            ("rack_height_m", False),
            ("slack_m", False),
            ("row_pitch_m", False),
            ("tray_clearance_m", True),
        ):
            value = getattr(self, name)
            ok = (
                not isinstance(value, bool)
                and isinstance(value, int | float)
                and math.isfinite(value)
                and (value >= 0 if zero_ok else value > 0)
                and value <= 1000
            )
            if not ok:
                bound = ">= 0" if zero_ok else "> 0"
                raise NetwallError(
                    f"layout: {name} must be a number of metres {bound} and <= 1000, "
                    f"got {shown(value)}"
                )


_ALIASES = {
    "gpus": "gpus_per_rack",
    "pitch": "rack_pitch_m",
    "height": "rack_height_m",
    "slack": "slack_m",
    "row": "racks_per_row",
    "row_pitch": "row_pitch_m",
    "tray": "tray_clearance_m",
}


def parse_layout(text: str, gpus_per_rack: int | None = None) -> Layout:
    """A Layout from "pitch=0.6,height=2,slack=0.5,row=16,row_pitch=2.1,tray=0.3".

    Keys are the field names or the short aliases above; an empty text gives the defaults.
    gpus_per_rack (e.g. G of racks:RxG) applies unless the text sets it.
    """
    names = {f.name: f for f in fields(Layout)}
    values: dict[str, Any] = {}
    if gpus_per_rack is not None:
        values["gpus_per_rack"] = gpus_per_rack
    given: dict[str, str] = {}  # key -> the item that set it
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, raw = (s.strip() for s in item.partition("="))
        key = _ALIASES.get(key, key)
        if not eq or key not in names:
            known = ", ".join(sorted(set(names) | set(_ALIASES)))
            raise NetwallError(f"layout: bad item {shown(item)}; use key=value with key one of "
                               f"{known}")
        if key in given:
            raise NetwallError(f"layout: {key} given twice ({given[key]} and {shown(item)})")
        given[key] = shown(item)
        try:
            values[key] = int(raw) if key in ("gpus_per_rack", "racks_per_row") else float(raw)
        except ValueError:
            raise NetwallError(f"layout: {key}={shown(raw)} is not a number") from None
    return Layout(**values)


def _mm(length: float) -> float:
    return round(length, 3)


def gpu_height(layout: Layout, gpu_index_in_rack: int) -> float:
    """Height above the rack floor of GPU k's tray (k = 0 is the lowest)."""
    g = layout.gpus_per_rack
    if not is_whole(gpu_index_in_rack, 0, g - 1):
        raise NetwallError(f"layout: GPU index {gpu_index_in_rack!r} is not in 0..{g - 1}")
    return (gpu_index_in_rack + 0.5) * layout.rack_height_m / g


def slot_position(layout: Layout, slot: int) -> tuple[int, int]:
    """(row, column) of floor slot `slot` (row-major, racks_per_row to a row)."""
    if not is_whole(slot, 0):
        raise NetwallError(f"layout: rack slot must be a whole number >= 0, got {slot!r}")
    return divmod(slot, layout.racks_per_row)


def floor_distance(layout: Layout, slot_a: int, slot_b: int) -> float:
    """Manhattan distance along the overhead trays between two racks' centres."""
    (row_a, col_a), (row_b, col_b) = slot_position(layout, slot_a), slot_position(layout, slot_b)
    return abs(col_a - col_b) * layout.rack_pitch_m + abs(row_a - row_b) * layout.row_pitch_m


def cable_length_gpu_to_switch(layout: Layout, gpu_index_in_rack: int) -> float:
    """GPU k to the switch at mid-height of its own rack: vertical run plus slack."""
    vertical = abs(gpu_height(layout, gpu_index_in_rack) - layout.rack_height_m / 2)
    return _mm(vertical + layout.slack_m)


def cable_length_gpu_to_rack(
    layout: Layout, gpu_index_in_rack: int, gpu_slot: int, switch_slot: int
) -> float:
    """GPU k of the rack in gpu_slot to a mid-height switch in the rack in switch_slot.

    Same rack: the in-rack vertical run. Another rack: up to the overhead tray, along the
    trays, down to the switch, plus slack.
    """
    if gpu_slot == switch_slot:
        slot_position(layout, gpu_slot)
        return cable_length_gpu_to_switch(layout, gpu_index_in_rack)
    height, clearance = layout.rack_height_m, layout.tray_clearance_m
    up = height - gpu_height(layout, gpu_index_in_rack) + clearance
    down = height / 2 + clearance
    return _mm(up + floor_distance(layout, gpu_slot, switch_slot) + down + layout.slack_m)


def cable_length_in_rack(layout: Layout) -> float:
    """The longest cable between two switches of one rack (a leaf and the spine of a network
    rack): the rack's whole height, plus slack."""
    return _mm(layout.rack_height_m + layout.slack_m)


def cable_length_rack_to_spine(layout: Layout, rack_index: int, spine_rack_index: int) -> float:
    """A rack's mid-height switch to the spine switch at mid-height of its own rack.

    Both arguments are floor slots. Up to the overhead tray, along and across rows, down,
    plus slack.
    """
    if rack_index == spine_rack_index:
        raise NetwallError(f"layout: rack slot {rack_index} is the spine's own rack")
    rise = layout.rack_height_m / 2 + layout.tray_clearance_m
    return _mm(2 * rise + floor_distance(layout, rack_index, spine_rack_index) + layout.slack_m)


def spine_slot(layout: Layout, racks: int) -> int:
    """The floor slot of the spine's own rack: the middle of the first row (which holds the
    spine and up to racks_per_row - 1 GPU racks)."""
    return (min(racks + 1, layout.racks_per_row) - 1) // 2


def rack_slot(rack_index: int, spine: int) -> int:
    """Floor slot of GPU rack `rack_index` when GPU racks fill the slots around the spine's."""
    return rack_index + (rack_index >= spine)


@dataclass(frozen=True)
class Domain:
    """What one scale-up switch in the central rack of a floor can reach."""

    gpus: int  # GPUs whose cable to the switch fits the reach
    racks: int  # racks with at least one such GPU
    full_racks: int  # racks all of whose GPUs fit
    in_rack: int  # GPUs of the switch's own rack that fit
    longest_m: float  # the longest cable among those that fit (0 if none)
    switch_slot: int  # floor slot of the switch's rack
    floor_racks: int  # racks on the floor (ceil(gpus / gpus_per_rack))


def _check_gpus(gpus: int) -> None:
    if not is_whole(gpus, 1, MAX_REPORT_GPUS):
        raise NetwallError(
            f"layout: GPU count must be a whole number 1..{MAX_REPORT_GPUS}, got {gpus!r}"
        )


def _check_reach(reach_m: float) -> None:
    if isinstance(reach_m, bool) or not isinstance(reach_m, int | float) or not (
        math.isfinite(reach_m) and reach_m > 0
    ):
        raise NetwallError(f"layout: reach must be a positive number of metres, got {reach_m!r}")


def central_slot(layout: Layout, floor_racks: int) -> int:
    """The slot nearest the middle of a floor of floor_racks racks filled row-major."""
    rows = -(-floor_racks // layout.racks_per_row)
    row = (rows - 1) // 2
    columns = min(layout.racks_per_row, floor_racks - row * layout.racks_per_row)
    return row * layout.racks_per_row + (columns - 1) // 2


def scale_up_domain(gpus: int, layout: Layout, tier_profile_reach_m: float) -> Domain:
    """How much of a floor of `gpus` GPUs one scale-up switch can gather with a given reach.

    The floor holds ceil(gpus / gpus_per_rack) racks filled row-major (a partial last rack
    fills from the bottom); the switch sits at mid-height of the central rack. A GPU belongs
    to the domain if its cable to the switch (cable_length_gpu_to_rack) fits the reach.
    Reach is the only limit modelled: switch radix is not.
    """
    _check_gpus(gpus)
    _check_reach(tier_profile_reach_m)
    g = layout.gpus_per_rack
    floor_racks = -(-gpus // g)
    centre = central_slot(layout, floor_racks)
    reached = racks = full = in_rack = 0
    longest = 0.0
    for slot in range(floor_racks):
        present = g if slot < floor_racks - 1 else gpus - g * (floor_racks - 1)
        count = 0
        # Off the switch rack a higher GPU has a shorter cable, so walk down from the top.
        order = range(present) if slot == centre else range(present - 1, -1, -1)
        for k in order:
            length = cable_length_gpu_to_rack(layout, k, slot, centre)
            if length <= tier_profile_reach_m:
                count += 1
                longest = max(longest, length)
            elif slot != centre:
                break
        if count:
            reached += count
            racks += 1
            full += count == present
        if slot == centre:
            in_rack = count
    return Domain(reached, racks, full, in_rack, longest, centre, floor_racks)


def reach_report(gpus: int, layout: Layout, catalogue: Mapping[str, Any]) -> list[dict]:
    """One row per profile (by reach, then name): the scale-up domain it allows on a floor of
    `gpus` GPUs, and whether all of them fit in one domain.

    catalogue maps names to objects with `.name` and `.reach_m`
    (emulator.models.profiles.catalogue()).
    """
    rows = []
    for profile in sorted(catalogue.values(), key=lambda p: (p.reach_m, p.name)):
        domain = scale_up_domain(gpus, layout, profile.reach_m)
        rows.append(
            {
                "profile": profile.name,
                "reach_m": profile.reach_m,
                "gpus": domain.gpus,
                "in_rack": domain.in_rack,
                "racks": domain.racks,
                "full_racks": domain.full_racks,
                "floor_racks": domain.floor_racks,
                "longest_m": domain.longest_m,
                "fits": domain.gpus >= gpus,
            }
        )
    return rows


def racks_topology(
    racks: int,
    gpus_per_rack: int,
    link: str,
    spine_link: str,
    layout: Layout | None = None,
    name: str | None = None,
) -> Topology:
    """racks:RxG as topologies.parse builds it (same names, link order and tiers), but every
    link carries the length the layout gives it: GPU k of a rack to the rack switch at the
    rack's mid-height, and each rack switch to spine0 in its own rack in the middle of the
    first row. GPU racks fill the other slots row-major.
    """
    for what, value, low in (("racks", racks, 2), ("GPUs per rack", gpus_per_rack, 1)):
        if not is_whole(value, low):
            raise NetwallError(
                f"racks topology: {what} must be a whole number >= {low}, got {value!r}"
            )
    if racks * gpus_per_rack > MAX_GPUS:
        raise NetwallError(f"racks topology: {racks}x{gpus_per_rack} is more than {MAX_GPUS} GPUs")
    layout = Layout(gpus_per_rack=gpus_per_rack) if layout is None else layout
    if layout.gpus_per_rack != gpus_per_rack:
        raise NetwallError(
            f"racks topology: {gpus_per_rack} GPUs per rack but the layout holds "
            f"{layout.gpus_per_rack}; make them agree"
        )
    spine = spine_slot(layout, racks)
    rack_names = tuple(f"rack{r}" for r in range(racks))
    gpus = tuple(f"gpu{i}" for i in range(racks * gpus_per_rack))
    links = [
        Link(
            gpu,
            rack_names[i // gpus_per_rack],
            link,
            cable_length_gpu_to_switch(layout, i % gpus_per_rack),
            SCALE_UP,
        )
        for i, gpu in enumerate(gpus)
    ]
    links += [
        Link(
            rack,
            "spine0",
            spine_link,
            cable_length_rack_to_spine(layout, rack_slot(r, spine), spine),
            SCALE_OUT,
        )
        for r, rack in enumerate(rack_names)
    ]
    name = name or f"racks:{racks}x{gpus_per_rack}"
    return Topology(name, gpus, rack_names + ("spine0",), tuple(links))
