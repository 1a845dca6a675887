"""Tests for topologies.layout: cable lengths from a rack layout, and which technologies reach.

Expected lengths are worked out by hand from the geometry in docs/layout.md, not copied
from the code: GPU k of G sits at (k + 0.5) * H / G, switches at H / 2, cables between
racks rise to a tray `tray` above the rack tops, run along pitch * columns + row pitch *
rows, drop to mid-height, and every cable adds the slack.
"""

from __future__ import annotations

import pytest

from emulator.models.profiles import catalogue
from foundation.errors import NetwallError
from topologies import SCALE_OUT, SCALE_UP, parse, validate
from topologies.layout import (
    Layout,
    cable_length_gpu_to_rack,
    cable_length_gpu_to_switch,
    cable_length_rack_to_spine,
    parse_layout,
    racks_topology,
    reach_report,
    scale_up_domain,
    spine_slot,
)

CATALOGUE = catalogue()
REACH = {name: p.reach_m for name, p in CATALOGUE.items()}
SHIPPED_800G = {n: p for n, p in CATALOGUE.items() if n.endswith("-800g")}


def test_shipped_reaches_are_what_the_hand_numbers_assume():
    assert REACH["copper-800g"] == 2.0
    assert REACH["wide-and-slow-800g"] == 50.0
    assert REACH["optical-800g"] == 500.0
    assert REACH["copper-1.6t"] == 1.0


def test_defaults():
    layout = Layout()
    assert (layout.gpus_per_rack, layout.rack_pitch_m, layout.rack_height_m) == (8, 0.6, 2.0)
    assert (layout.slack_m, layout.racks_per_row, layout.row_pitch_m) == (0.5, 16, 2.1)
    assert layout.tray_clearance_m == 0.3


def test_in_rack_lengths():
    # 8 GPUs in 2 m: heights 0.125, 0.375, ... 1.875; switch at 1.0; slack 0.5.
    layout = Layout()
    expected = [1.375, 1.125, 0.875, 0.625, 0.625, 0.875, 1.125, 1.375]
    assert [cable_length_gpu_to_switch(layout, k) for k in range(8)] == expected
    # 72 GPUs: lowest at 1/72 m, vertical 1 - 1/72 = 0.98611, + 0.5 -> 1.486 (mm rounding).
    assert cable_length_gpu_to_switch(Layout(gpus_per_rack=72), 0) == 1.486
    # One GPU sits level with the switch: only the slack remains.
    assert cable_length_gpu_to_switch(Layout(gpus_per_rack=1), 0) == 0.5


def test_cross_rack_lengths():
    layout = Layout()
    # Top GPU (1.875 m) of the next rack: up 0.125 + 0.3, along 0.6, down 1.0 + 0.3, + 0.5.
    assert cable_length_gpu_to_rack(layout, 7, 1, 0) == 2.825
    # Bottom GPU of the rack behind (slot 16 = row 1, col 0): up 2.175, across 2.1, down 1.3, +0.5.
    assert cable_length_gpu_to_rack(layout, 0, 16, 0) == 6.075
    # Same slot is the in-rack run.
    assert cable_length_gpu_to_rack(layout, 0, 3, 3) == 1.375
    # Rack switch to spine switch: 2 x (1.0 + 0.3) + 0.6 x columns + 2.1 x rows + 0.5.
    assert cable_length_rack_to_spine(layout, 0, 2) == 4.3
    assert cable_length_rack_to_spine(layout, 20, 7) == 7.0  # row 1 col 4 vs row 0 col 7
    with pytest.raises(NetwallError, match="spine's own rack"):
        cable_length_rack_to_spine(layout, 2, 2)


def test_racks_topology_matches_builtin_shape_and_carries_lengths():
    topo = racks_topology(4, 8, "copper-800g", "optical-800g", Layout())
    plain = parse("racks:4x8", "copper-800g")
    assert topo.name == "racks:4x8"
    assert (topo.gpus, topo.switches) == (plain.gpus, plain.switches)
    shape = [(link.a, link.b, link.profile, link.tier) for link in topo.links]
    assert shape == [(link.a, link.b, link.profile, link.tier) for link in plain.links]
    assert all(link.tier == SCALE_UP for link in topo.links[:32])
    assert all(link.tier == SCALE_OUT for link in topo.links[32:])
    per_gpu = [1.375, 1.125, 0.875, 0.625, 0.625, 0.875, 1.125, 1.375]
    assert [link.length_m for link in topo.links[:32]] == per_gpu * 4
    # 5 slots in row 0, spine in slot 2; racks in slots 0, 1, 3, 4: 3.1 + 0.6 x |dc|.
    assert spine_slot(Layout(), 4) == 2
    assert [link.length_m for link in topo.links[32:]] == [4.3, 3.7, 3.7, 4.3]
    validate(topo, CATALOGUE)  # copper in the rack, optics to the spine: all fit


def test_racks_topology_spans_rows():
    topo = racks_topology(20, 8, "copper-800g", "optical-800g", Layout())
    spine = {link.a: link.length_m for link in topo.links if link.b == "spine0"}
    # Spine in slot 7; rack14 -> slot 15 (8 columns away), rack19 -> slot 20 (row 1, col 4).
    assert spine["rack14"] == 7.9
    assert spine["rack19"] == 7.0
    assert spine["rack6"] == 3.7


def test_validate_rejects_copper_spine_links():
    topo = racks_topology(4, 8, "copper-800g", "copper-800g", Layout())
    with pytest.raises(NetwallError, match=r"^link rack0--spine0 is 4.3 m long but copper-800g "
                       r"reaches 2 m$"):
        validate(topo, CATALOGUE)


def test_validate_rejects_short_copper_from_the_rack_ends():
    topo = racks_topology(2, 8, "copper-1.6t", "optical-800g", Layout())
    with pytest.raises(NetwallError, match=r"^link gpu0--rack0 is 1.375 m long but copper-1.6t "
                       r"reaches 1 m$"):
        validate(topo, CATALOGUE)


def test_wide_and_slow_spine_links_fit():
    validate(racks_topology(20, 8, "copper-800g", "wide-and-slow-800g", Layout()), CATALOGUE)


def test_copper_keeps_the_domain_to_one_rack():
    # Own rack: worst 1.375 m <= 2. Next rack's best GPU: 2.825 m > 2.
    domain = scale_up_domain(128, Layout(), REACH["copper-800g"])
    assert (domain.gpus, domain.racks, domain.in_rack, domain.longest_m) == (8, 1, 8, 1.375)
    big = scale_up_domain(1024, Layout(gpus_per_rack=72), REACH["copper-800g"])
    assert (big.gpus, big.racks, big.full_racks) == (72, 1, 1)


def test_short_copper_limits_gpus_per_rack():
    # 1 m reach leaves 0.5 m of vertical run: heights in [0.5, 1.5] m.
    # G=8: (k + 0.5) / 4 in [0.5, 1.5] -> k = 2..5; G=72: (k + 0.5) / 36 -> k = 18..53.
    assert scale_up_domain(64, Layout(), REACH["copper-1.6t"]).in_rack == 4
    assert scale_up_domain(720, Layout(gpus_per_rack=72), REACH["copper-1.6t"]).in_rack == 36


def test_optical_spans_the_whole_row_and_floor():
    domain = scale_up_domain(128, Layout(), REACH["optical-800g"])
    # One row of 16 racks, switch in column 7; farthest GPU: column 15, bottom tray:
    # 2.175 + 8 x 0.6 + 1.3 + 0.5 = 8.775.
    assert (domain.gpus, domain.racks, domain.full_racks) == (128, 16, 16)
    assert domain.longest_m == 8.775


def test_wide_and_slow_spans_tens_of_metres_but_not_a_large_floor():
    # 16384 GPUs = 2048 racks = 128 rows; switch in row 63, column 7.
    # GPU k of a rack at (dr, dc) fits iff 0.6|dc| + 2.1|dr| <= 45.9 + h_k.
    # Whole rack (h_0 = 0.125) at |dc| = 8 fits iff |dr| <= 19 -> 39 full rows of 16 = 624.
    # Top GPU (1.875) at dc = 0 fits iff |dr| <= 22 -> at most 45 rows = 720 racks.
    ws = scale_up_domain(16384, Layout(), REACH["wide-and-slow-800g"])
    assert 624 <= ws.full_racks <= ws.racks <= 720
    assert 624 * 8 <= ws.gpus < 16384
    assert 45 < ws.longest_m <= 50
    optical = scale_up_domain(16384, Layout(), REACH["optical-800g"])
    assert optical.gpus == 16384
    # Farthest: row 127 (64 rows away), column 15 (8 away): 2.175 + 134.4 + 4.8 + 1.8.
    assert optical.longest_m == 143.175
    copper = scale_up_domain(16384, Layout(), REACH["copper-800g"])
    assert copper.racks == 1 < ws.racks < optical.racks == 2048


def test_domain_small_grid_by_hand():
    # 1 GPU per rack at mid-height, no tray clearance: cross-rack cable = 2.5 + distance.
    layout = Layout(gpus_per_rack=1, rack_pitch_m=1.0, rack_height_m=2.0, slack_m=0.5,
                    racks_per_row=5, row_pitch_m=2.0, tray_clearance_m=0.0)
    # 25 racks in 5 rows, switch at row 2 col 2. Reach 6 -> distance <= 3.5:
    # row 2: all 5; rows 1 and 3: |dc| <= 1 -> 3 each; rows 0 and 4: 4 m > 3.5 -> none.
    domain = scale_up_domain(25, layout, 6.0)
    assert (domain.gpus, domain.racks, domain.switch_slot, domain.floor_racks) == (11, 11, 12, 25)
    assert domain.longest_m == 5.5  # one row (2 m) + one column (1 m) + 2.5
    assert scale_up_domain(25, layout, 0.4).gpus == 0
    assert scale_up_domain(25, layout, 0.5).gpus == 1


def test_reach_report():
    rows = reach_report(16384, Layout(), SHIPPED_800G)
    assert [r["profile"] for r in rows] == ["copper-800g", "wide-and-slow-800g", "optical-800g"]
    copper, ws, optical = rows
    assert (copper["gpus"], copper["racks"], copper["fits"]) == (8, 1, False)
    assert not ws["fits"] and ws["racks"] >= 624
    assert optical["fits"] and optical["racks"] == 2048


def test_parse_layout():
    layout = parse_layout("pitch=0.8, row=4, slack_m=0.25", 72)
    assert layout == Layout(gpus_per_rack=72, rack_pitch_m=0.8, racks_per_row=4, slack_m=0.25)
    assert parse_layout("", 8) == Layout()
    assert parse_layout("gpus=72") == Layout(gpus_per_rack=72)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gpus_per_rack": 0}, "gpus_per_rack must be a whole number"),
        ({"gpus_per_rack": True}, "gpus_per_rack must be a whole number"),
        ({"gpus_per_rack": 2.5}, "gpus_per_rack must be a whole number"),
        ({"rack_pitch_m": 0}, "rack_pitch_m must be a number of metres > 0"),
        ({"rack_height_m": -2}, "rack_height_m must be"),
        ({"slack_m": float("nan")}, "slack_m must be"),
        ({"racks_per_row": 0}, "racks_per_row must be"),
        ({"row_pitch_m": "2"}, "row_pitch_m must be"),
        ({"tray_clearance_m": -0.1}, "tray_clearance_m must be a number of metres >= 0"),
    ],
)
def test_bad_layouts(kwargs, message):
    with pytest.raises(NetwallError, match=message) as caught:
        Layout(**kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: parse_layout("pitch"), "bad item 'pitch'"),
        (lambda: parse_layout("width=3"), "bad item 'width=3'"),
        (lambda: parse_layout("pitch=wide"), "pitch_m='wide' is not a number"),
        (lambda: parse_layout("row=2.5"), "racks_per_row='2.5' is not a number"),
        (lambda: racks_topology(4, 8, "copper-800g", "optical-800g", Layout(gpus_per_rack=72)),
         "8 GPUs per rack but the layout holds 72"),
        (lambda: racks_topology(1, 8, "copper-800g", "optical-800g"), "racks must be"),
        (lambda: racks_topology(2, 1024, "copper-800g", "optical-800g"), "more than 1024"),
        (lambda: scale_up_domain(0, Layout(), 2.0), "GPU count must be"),
        (lambda: scale_up_domain(8, Layout(), -1), "reach must be a positive"),
        (lambda: cable_length_gpu_to_switch(Layout(), 8), r"GPU index 8 is not in 0\.\.7"),
    ],
)
def test_bad_calls(call, message):
    with pytest.raises(NetwallError, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)
