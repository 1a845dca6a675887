"""The live view's pure parts: the drawing of a topology and a frame from counter samples,
its options, its server on loopback, and the vendored drawing library (emulator/view).

Expected loads are worked out by hand: bytes over the wall seconds between two samples,
times the dilation, in Gb/s.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from emulator.cli.parsing import build_parser
from emulator.cli.viewing import open_view, without_view
from emulator.models.faults import Fault, LinkState, link_state
from emulator.models.plan import make_plan
from emulator.models.profiles import catalogue, with_bundles
from emulator.view import frame as frames
from emulator.view.drawing import drawing, length_class, racks_of, roles
from emulator.view.server import FILES, Server
from foundation.errors import NetwallError
from topologies import parse
from topologies.cluster import parse_spec
from topologies.cluster import topology as cluster_topology
from traffic.board import SLOTS, Board

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "emulator" / "view" / "static"
#: The vendored Cytoscape.js (npm cytoscape 3.35.0, dist/cytoscape.min.js): static/README.md.
CYTOSCAPE_SHA256 = "71fa9ebec21a7ca2c40cff6aacc30d1f6464e363662ad4b2c197e1adc770cd94"
SPECS = ("pair", "ring:4", "mesh:4", "star:8", "racks:2x4", "cluster:2x4", "cluster:1x8")


def built(spec: str, link: str = "copper-800g"):
    topo = parse(spec, "nvlink5" if spec.startswith("cluster") else link)
    return topo, with_bundles(catalogue(), [c.profile for c in topo.links])


def picture(spec: str, per_rack: int | None = None):
    topo, cat = built(spec)
    plan = make_plan(topo, cat, 1000)
    return topo, drawing(topo, cat, racks_of(topo, per_rack, plan.racks()))


@pytest.mark.parametrize("spec", SPECS)
def test_every_link_is_drawn_once_between_drawn_nodes(spec):
    topo, d = picture(spec)
    assert [e["name"] for e in d["links"]] == [f"{c.a}--{c.b}" for c in topo.links]
    ids = {n["id"] for n in d["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in d["links"])
    assert set(topo.gpus) | set(topo.switches) <= ids
    assert len({(n["x"], n["y"]) for n in d["nodes"] if n["kind"] != "rack"}) == \
        len([n for n in d["nodes"] if n["kind"] != "rack"])  # no two nodes on one spot


def test_racks_group_their_gpus_and_switches():
    topo, d = picture("racks:2x4")
    parent = {n["id"]: n["parent"] for n in d["nodes"]}
    assert [parent[f"gpu{i}"] for i in range(8)] == ["rack:0"] * 4 + ["rack:1"] * 4
    assert parent["rack0"] == "rack:0" and parent["rack1"] == "rack:1"  # top-of-rack
    assert parent["spine0"] is None
    kinds = {n["id"]: n["kind"] for n in d["nodes"]}
    assert kinds["spine0"] == "spine" and kinds["rack0"] == "leaf"
    y = {n["id"]: n["y"] for n in d["nodes"]}
    assert y["spine0"] < min(y[g] for g in topo.gpus)  # the spine on top


def test_a_domain_over_two_racks_puts_its_switch_in_the_middle_rack():
    """cluster:1x8 in racks of 4, as the default comparison's optical design: two racks,
    one scale-up switch, in the first of them as topologies.cluster places it."""
    spec = parse_spec("cluster:1x8", "nvlink5", "optical-800g", "gpus=4")
    topo = cluster_topology(spec, "cluster:1x8")
    cat = with_bundles(catalogue(), [c.profile for c in topo.links])
    assert racks_of(topo, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    d = drawing(topo, cat, racks_of(topo, 4))
    parent = {n["id"]: n["parent"] for n in d["nodes"]}
    kinds = {n["id"]: n["kind"] for n in d["nodes"]}
    assert parent["nvs0"] == "rack:0" and kinds["nvs0"] == "scale-up"
    assert kinds["leaf0"] == "leaf" and parent["leaf0"] is None  # rails are not in a rack
    nics = [e for e in d["links"] if e["name"].startswith("gpu") and "leaf" in e["name"]]
    assert nics and all(e["source"].endswith(".nic") for e in nics)  # through the NIC


def test_cables_are_coloured_by_family_and_drawn_by_length_class():
    topo, d = picture("racks:2x4")
    by_name = {e["name"]: e for e in d["links"]}
    assert by_name["gpu0--rack0"]["family"] == "copper"
    assert by_name["rack0--spine0"]["family"] == "optical"
    assert by_name["gpu0--rack0"]["length_class"] == "short"  # 1 m
    assert by_name["rack0--spine0"]["length_class"] == "medium"  # 20 m
    assert (length_class(2.0), length_class(2.01), length_class(50.0), length_class(51)) == \
        ("short", "medium", "medium", "long")


def test_roles_and_the_drawing_id_follows_what_is_drawn():
    topo, cat = built("cluster:2x4")
    assert roles(topo)["nvs0"] == "scale-up" and roles(topo)["spine0"] == "spine"
    first = drawing(topo, cat, racks_of(topo, 4))
    assert drawing(topo, cat, racks_of(topo, 4))["id"] == first["id"]
    assert drawing(topo, cat, racks_of(topo, 2))["id"] != first["id"]


def test_gpus_without_switches_stand_on_a_circle():
    topo, d = picture("ring:4")
    radii = {round((n["x"] ** 2 + n["y"] ** 2) ** 0.5, 1) for n in d["nodes"]}
    assert len(radii) == 1 and all(n["kind"] == "gpu" for n in d["nodes"])


# -- frames ------------------------------------------------------------------------------
def states(topo, cat, faults=None):
    return {i: link_state(cat[c.profile], (faults or {}).get(i, []))
            for i, c in enumerate(topo.links)}


def rates(topo, cat):
    return {i: cat[c.profile].rate_gbps for i, c in enumerate(topo.links)}


def counters(topo, bytes_by_key=None, backlog=0, drops=0):
    return {(i, node): {"bytes": (bytes_by_key or {}).get((i, node), 0), "packets": 0,
                        "drops": drops, "backlog": backlog}
            for i, c in enumerate(topo.links) for node in (c.a, c.b)}


def test_loads_are_real_gbps_from_two_samples_and_the_dilation():
    """1.25 MB in 0.5 s of wall time is 20 Mb/s emulated; at D = 1000, 20 Gb/s real, a
    fortieth of an 800G copper cable."""
    topo, cat = built("star:4")
    before = frames.Sample(10.0, counters(topo))
    after = frames.Sample(10.5, counters(topo, {(0, "gpu0"): 1_250_000}, backlog=3, drops=2))
    start = frames.Sample(9.0, counters(topo))
    out = frames.links(topo, rates(topo, cat), states(topo, cat), before, after, start, 1000)
    assert [link["name"] for link in out] == [f"{c.a}--{c.b}" for c in topo.links]
    gpu0 = out[0]
    sending = next(d for d in gpu0["directions"] if d["from"] == "gpu0")
    assert sending["load_gbps"] == pytest.approx(20.0)
    assert sending["share"] == pytest.approx(20.0 / 800)
    assert gpu0["load_gbps"] == pytest.approx(20.0) and gpu0["state"] == "up"
    assert sending["bytes"] == 1_250_000 and gpu0["queue"] == 3 and gpu0["drops"] == 4
    assert all(link["load_gbps"] == 0 for link in out[1:])


def test_nothing_running_means_no_load_but_totals_stay():
    topo, cat = built("star:4")
    last = frames.Sample(3.0, counters(topo, {(1, "gpu1"): 5000}))
    out = frames.links(topo, rates(topo, cat), states(topo, cat), None, last,
                       frames.Sample(1.0, counters(topo)), 1000)
    assert all(link["load_gbps"] == 0 for link in out)
    assert out[1]["directions"][0]["bytes"] == 5000


def test_a_down_fault_turns_its_link_down_and_lost_channels_degrade():
    topo, cat = built("star:4", "wide-and-slow-800g")
    faults = {0: [Fault("down", ("gpu0", "nvs0"), 0.0)],
              1: [Fault("channels", ("gpu1", "nvs0"), 0.0, channels=10)]}  # of 16 spares
    out = frames.links(topo, rates(topo, cat), states(topo, cat, faults), None, None, None, 10)
    assert out[0]["state"] == "down" and out[0]["rate_gbps"] == 0
    assert out[0]["directions"][0]["share"] is None  # no share of nothing
    assert out[1]["state"] == "faulted" and out[1]["rate_gbps"] == out[2]["rate_gbps"]
    assert "10 channel(s) failed" in out[1]["note"] and out[2]["state"] == "up"


def test_a_degraded_rate_is_the_share_it_is_held_to():
    topo, cat = built("star:4", "wide-and-slow-800g")
    profile = cat[topo.links[0].profile]
    lost = profile.spare_lanes + 10  # past the spares: capacity lost
    faults = {0: [Fault("channels", ("gpu0", "nvs0"), 0.0, channels=lost)]}
    now = states(topo, cat, faults)
    assert now[0].rate_gbps < profile.rate_gbps
    before = frames.Sample(0.0, counters(topo))
    after = frames.Sample(1.0, counters(topo, {(0, "gpu0"): 1_000_000}))
    out = frames.links(topo, rates(topo, cat), now, before, after, before, 100)
    assert out[0]["state"] == "degraded"
    assert out[0]["share"] == pytest.approx(0.8 / now[0].rate_gbps)


def test_resends_go_to_the_cable_that_lost_the_frames():
    """On a star, gpu0 -> gpu2 crosses gpu0--nvs0 and gpu2--nvs0. 30 kB resent between them
    while gpu2's cable lost 3 frames (at gpu2's end, on arrival) and gpu0's none: all 30 kB
    are gpu2's cable's. A second pair, gpu1 -> gpu3, whose cables lost nothing, goes by
    the cables' bit-error rates where what they carried makes an error likely: gpu3's is
    raised to 1e-6 (80 errors in 10 MB); gpu1's own (the profile's) makes none likely."""
    topo, cat = built("star:4")
    raised = {3: [Fault("ber", ("gpu3", "nvs0"), 0.0, ber=1e-6)]}
    now = states(topo, cat, raised)
    lost = {0: 0, 2: 3}
    carried = dict.fromkeys(range(len(topo.links)), 10_000_000)
    assert cat[topo.links[1].profile].post_fec_ber * 8 * 10_000_000 < 1
    out, unexplained = frames.resent_by_link(topo, {(0, 2): 30_000, (1, 3): 5_000}, lost, now,
                                             carried)
    assert out == {2: 30_000, 3: 5_000} and unexplained == 0


def test_a_resend_no_loss_explains_is_left_out_and_a_down_cable_takes_all():
    topo, cat = built("star:4")
    perfect = {i: LinkState(800.0, 0.0, "up") for i in range(len(topo.links))}
    out, unexplained = frames.resent_by_link(topo, {(0, 1): 700}, {}, perfect, {})
    assert out == {} and unexplained == 700
    perfect[1] = LinkState(0.0, 0.0, "down")
    out, unexplained = frames.resent_by_link(topo, {(0, 1): 700}, {}, perfect, {})
    assert out == {1: 700} and unexplained == 0


def test_a_resend_on_healthy_cables_after_another_cable_went_down_is_left_out():
    """A ring over star:4 with gpu1's cable down a while: gpu3 -> gpu0, whose cables lost
    nothing, resent 3.4 MB after a slow acknowledgement (seen in the live view's browser
    test, which then put 1.7 MB on each healthy cable by their own bit-error rates). Those
    rates make no error likely in what the cables carried, so the bytes are left out."""
    topo, cat = built("star:4")
    now = states(topo, cat, {})
    carried = dict.fromkeys(range(len(topo.links)), 200_000_000)
    out, unexplained = frames.resent_by_link(topo, {(0, 1): 5_900_000, (3, 0): 3_400_000},
                                             {1: 80}, now, carried)
    assert out == {1: 5_900_000} and unexplained == 3_400_000


def test_a_frame_shows_each_cables_losses_and_resends_since_the_program_began():
    """Lost frames are counted at the receiving end (lost_in), both ends of a cable summed;
    resends are what the board gained since the program's first sample."""
    topo, cat = built("star:4")

    def lossy(lost_at_gpu1: int, lost_at_switch: int) -> dict:
        out = counters(topo)
        out[(1, "gpu1")]["lost_in"] = lost_at_gpu1
        out[(1, "nvs0")]["lost_in"] = lost_at_switch
        return out

    start = frames.Sample(0.0, lossy(5, 1), {(0, 1): 1000})
    after = frames.Sample(1.0, lossy(9, 2), {(0, 1): 61_000, (2, 3): 10})
    out = frames.links(topo, rates(topo, cat), states(topo, cat), start, after, start, 100)
    assert out[1]["lost"] == 5 and out[1]["resent"] == 60_000
    assert all(link["lost"] == 0 for i, link in enumerate(out) if i != 1)
    assert out[0]["resent"] == 0  # gpu0's cable carried the resends but lost nothing


def test_calls_in_progress_from_the_agents_board():
    """Ranks 0-2 are in call 11 (the program's second) at steps 2 to 4, rank 3 already in
    call 12; a call no rank is in (10, done; 13, not begun) is not listed."""
    program = [(10, "allreduce/ring 4 MiB", 6), (11, "allreduce/ring 4 MiB", 6),
               (12, "allreduce/ring 4 MiB", 6), (13, "allreduce/ring 4 MiB", 6)]
    steps = {11: {0: 1, 1: 3, 2: 2}, 12: {3: 0}}
    assert frames.in_progress(steps, program) == [
        {"number": 2, "call": "allreduce/ring 4 MiB", "steps": 6, "ranks": 3, "step": 2,
         "step_max": 4},
        {"number": 3, "call": "allreduce/ring 4 MiB", "steps": 6, "ranks": 1, "step": 1,
         "step_max": 1}]
    assert frames.in_progress({}, program) == []


def test_the_board_keeps_each_ranks_calls_and_resends():
    """A rank's row holds the calls it is in (a finished one frees its pair) and what it
    resent to each peer, read back as the view reads it; calls of other programs are
    filtered out by their ids; a forked reader sees the same pages."""
    board = Board(3)
    try:
        row = board.row(1)
        row.begin()
        row.step(7, 0, 4)
        row.step(8, 0, 2)
        row.step(7, 2, 4)
        row.repair(2, 1440)
        row.repair(2, 60)
        board.row(0).step(5, 1, 4)  # an earlier program's call, not begun again
        reading = board.read()
        assert reading.steps(frozenset({7, 8})) == {7: {1: 2}, 8: {1: 0}}
        assert reading.resent() == {(1, 2): 1500}
        row.step(7, 4, 4)  # finished
        row.step(9, 4, 4)  # never seen, finished: nothing
        assert board.read().steps(frozenset({7, 8, 9})) == {8: {1: 0}}
        for call in range(20, 20 + SLOTS + 2):  # more calls at once than pairs: the first
            row.step(call, 0, 1)
        assert len(board.read().steps(frozenset(range(100)))[8]) == 1
        pid = os.fork()
        if pid == 0:  # a forked agent writes; the parent reads
            board.row(2).repair(0, 99)
            os._exit(0)
        os.waitpid(pid, 0)
        assert board.read().resent()[(2, 0)] == 99
        row.begin()
        assert board.read().steps(frozenset(range(7, 100))) == {}
    finally:
        board.close()


@pytest.mark.parametrize(("elapsed", "expect"), [
    (0.0, (1, 1)), (0.45, (1, 3)), (1.0, (2, 1)), (2.99, (3, 6)), (7.0, (3, 6))])
def test_position_by_the_models_clock(elapsed, expect):
    """3 calls of 1 s and 6 steps each: 0.45 s in is the third step (2.7 sixths); 2.99 s
    in, call 3's last step; past the end, the last step of the last call."""
    p = frames.position(elapsed, 1.0, 3, 6)
    assert (p["call_number"], p["step"]) == expect and (p["calls"], p["steps"]) == (3, 6)


def test_result_rows_read_in_units():
    row = frames.run_row({"link": "copper-800g", "bytes": 4 << 20, "time_s": 130.64e-6,
                          "busbw_gbps": 56.19, "model_time_s": 129.52e-6,
                          "retransmitted_bytes": 0, "check": True, "dilation": 10000,
                          "fidelity": {"host_error": 0.005, "faithful": True}})
    assert row["size"] == "4 MiB" and row["time (us)"] == "130.64" and row["host"] == "+0.5%"
    assert row["check"] == "ok" and row["faithful"] == "yes"


# -- options and the server ----------------------------------------------------------------
def test_view_options_parse_and_stay_off_the_default_run():
    args = build_parser().parse_args(["run", "--view", "--view-port", "8123",
                                      "--view-hold", "2.5"])
    assert (args.view, args.view_port, args.view_hold, args.view_address) == \
        (True, 8123, 2.5, None)
    assert without_view(("run", "--view", "--view-port", "8123", "--view-hold=3")) == ("run",)
    assert without_view(("run", "--view", "--size", "1M")) == ("run", "--size", "1M")
    for bad in (["--view-port", "70000"], ["--view-port", "x"], ["--view-hold", "-1"],
                ["--view-hold", "nan"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "--view", *bad])


def test_run_with_only_view_options_is_still_the_default_comparison(monkeypatch):
    from emulator.cli import commands
    from emulator.cli.main import main

    seen = []
    monkeypatch.setattr(commands, "_compare", lambda file, *rest: seen.append(rest[-1]) or 0)
    assert main(["run", "--view", "--view-hold", "0"]) == 0
    assert seen[0].view and seen[0].view_hold == 0  # the arguments go to the comparison


def test_view_options_without_view_are_refused_and_no_view_is_made():
    args = build_parser().parse_args(["replay", "--workload", "dp", "--view-port", "8123"])
    with pytest.raises(NetwallError, match="--view-port applies with --view only"):
        open_view(args, "replay", [])
    assert open_view(build_parser().parse_args(["compare"]), "compare", []) is None


def test_a_run_without_view_imports_no_server():
    """--view costs nothing when not asked for: the commands, the emulation and the console's
    module import neither the view's server nor aiohttp."""
    code = ("import sys, emulator.cli.main, emulator.emulation, emulator.cli.viewing; "
            "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', "
            "'emulator.view.live', 'emulator.view.server'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_the_server_listens_on_loopback_and_serves_the_page_and_frames():
    server = Server()
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and server.port > 0
        server.publish({"seq": 1, "links": []}, {"id": "abc", "nodes": [], "links": []})
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b"static/view.js" in page.read()
        with urllib.request.urlopen(url + "frame.json", timeout=10) as answer:
            assert json.load(answer) == {"seq": 1, "links": []}
        with urllib.request.urlopen(url + "drawing.json", timeout=10) as answer:
            assert json.load(answer)["id"] == "abc"
        with urllib.request.urlopen(url + "events", timeout=10) as events:
            assert json.loads(events.readline().decode().removeprefix("data: ")) == \
                {"seq": 1, "links": []}
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "static/..%2Fserver.py", timeout=10)
    finally:
        server.stop()


def test_a_port_in_use_is_one_clear_error():
    first = Server()
    first.start()
    try:
        with pytest.raises(NetwallError, match=f"--view: cannot listen on 127.0.0.1 port "
                                               f"{first.port}"):
            Server(port=first.port).start()
    finally:
        first.stop()


def test_the_vendored_library_is_the_recorded_one_and_every_file_ships():
    digest = hashlib.sha256((STATIC / "cytoscape.min.js").read_bytes()).hexdigest()
    assert digest == CYTOSCAPE_SHA256
    readme = (STATIC / "README.md").read_text()
    assert CYTOSCAPE_SHA256 in readme and "3.35.0" in readme
    assert all((STATIC / name).is_file() for name in FILES)
    assert "MIT" in (STATIC / "LICENSE.cytoscape").read_text() or \
        "Permission is hereby granted" in (STATIC / "LICENSE.cytoscape").read_text()
    assert "emulator.view = static/*" in (ROOT / "setup.cfg").read_text()
