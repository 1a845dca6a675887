"""Two-fabric clusters (topologies/cluster.py): the graph, its YAML form, the routing that
keeps each fabric to its traffic, and the reach check."""

from __future__ import annotations

import pytest

from emulator.models.profiles import bundle, catalogue, with_bundles
from foundation.errors import NetwallError
from topologies import load_file, next_hops, parse, path, validate
from topologies.cluster import Cluster, check_reach, fabric, from_mapping, topology
from topologies.layout import Layout

BASE = catalogue()
CATALOGUE = with_bundles(BASE, ("9xoptical-800g", "9xwide-and-slow-800g"))


def catalogue_of(topo):
    """The catalogue with every bundle the topology names (its leaves' uplinks)."""
    return with_bundles(CATALOGUE, [cable.profile for cable in topo.links])


def _domain(topo, gpu: str, size: int) -> int:
    return topo.rank(gpu) // size


@pytest.mark.parametrize("spec, layout", [("cluster:2x4", "gpus=4"), ("cluster:3x4", "gpus=2"),
                                          ("cluster:1x8", "gpus=2"), ("cluster:4x3", "gpus=1"),
                                          ("cluster:2x2", None), ("cluster:5x6", "gpus=3")])
def test_every_route_stays_on_its_fabric(spec, layout):
    """Inside a domain every hop is a scale-up cable; across domains none is."""
    size = int(spec.split("x")[1])
    topo = parse(spec, "optical-800g", "optical-800g", layout=layout)
    validate(topo, catalogue_of(topo))
    for src in topo.gpus:
        for dst in topo.gpus:
            if src == dst:
                continue
            fabrics = {fabric(topo, hop.link) for hop in path(topo, src, dst)}
            same = _domain(topo, src, size) == _domain(topo, dst, size)
            assert fabrics == ({"scale-up"} if same else {"scale-out"}), (src, dst)


def test_routes_take_the_expected_hops():
    topo = parse("cluster:2x4", "nvlink5", "optical-800g")
    assert [h.dst for h in path(topo, "gpu0", "gpu3")] == ["nvs0", "gpu3"]
    assert [h.dst for h in path(topo, "gpu0", "gpu4")] == ["leaf0", "gpu4"]  # one rail
    assert [h.dst for h in path(topo, "gpu1", "gpu4")] == ["leaf1", "spine0", "leaf0", "gpu4"]
    hops = next_hops(topo)  # the installed routes agree: the next GPU is the destination
    assert hops["gpu1"]["gpu4"][1] == "gpu4" and hops["gpu0"]["gpu3"][1] == "gpu3"


def test_graph_shape_and_link_order():
    topo = parse("cluster:3x4", "nvlink5", "optical-800g")
    assert topo.gpus == tuple(f"gpu{r}" for r in range(12))
    assert topo.switches == ("nvs0", "nvs1", "nvs2", "leaf0", "leaf1", "leaf2", "leaf3",
                             "spine0")
    kinds = [fabric(topo, i) for i in range(len(topo.links))]
    assert kinds == ["scale-out"] * (4 + 12) + ["scale-up"] * 12  # spine, NICs, scale-up
    assert topo.interface(topo.links_of("gpu5")[0], "gpu5") == "gpu5-eth0"  # the NIC
    assert topo.other(topo.links_of("gpu5")[0], "gpu5") == "leaf1"  # rail 1
    assert topo.other(topo.links_of("gpu5")[1], "gpu5") == "nvs1"
    assert {topo.links[i].profile for i in topo.links_of("nvs1")} == {"nvlink5"}
    # Each leaf's uplink carries its 3 GPUs' NICs: the scale-out network is non-blocking.
    assert {topo.links[i].profile for i in topo.links_of("spine0")} == {"3xoptical-800g"}
    validate(topo, catalogue_of(topo))


def test_cable_lengths_come_from_the_layout():
    one_rack = parse("cluster:2x4", "nvlink5", "optical-800g")
    assert max(c.length_m for c in one_rack.links if c.profile == "nvlink5") == 1.25
    two_racks = parse("cluster:1x8", "nvlink5", "optical-800g", layout="gpus=4")
    far = [c for c in two_racks.links if c.b == "nvs0" and c.length_m > 2]
    assert {c.a for c in far} == {"gpu4", "gpu5", "gpu6", "gpu7"}  # the other rack
    with pytest.raises(NetwallError, match="cable lengths come from its rack layout"):
        parse("cluster:2x4", "nvlink5", "optical-800g", length_m=1.0)


def test_reach_check_names_the_cable():
    c = Cluster(1, 8, "nvlink5", "optical-800g", Layout(gpus_per_rack=4))
    topo = topology(c, "copper-2-racks")
    with pytest.raises(NetwallError) as e:
        check_reach(c, topo, catalogue_of(topo))
    message = str(e.value)
    assert "nvlink5 cannot cable a domain of 8 GPUs over 2 racks of 4" in message
    assert "gpu4--nvs0 is" in message and "reaches 2 m" in message
    for profile in ("9xoptical-800g", "9xwide-and-slow-800g"):
        fine = Cluster(1, 8, profile, "optical-800g", Layout(gpus_per_rack=4))
        laid = topology(fine, "x")
        check_reach(fine, laid, catalogue_of(laid))
    with pytest.raises(NetwallError, match="gpu4--nvs0"):  # validate refuses it as well
        validate(topo, catalogue_of(topo))


@pytest.mark.parametrize("spec, says", [
    ("cluster:2", "use cluster:DxG"), ("cluster:2x1", "GPUs per domain must be"),
    ("cluster:0x4", "domains must be"), ("cluster:64x64", "more than 1024 GPUs"),
])
def test_bad_specs(spec, says):
    with pytest.raises(NetwallError, match=says):
        parse(spec, "nvlink5", "optical-800g")


def test_yaml_form(tmp_path):
    file = tmp_path / "two.yaml"
    file.write_text("name: two\ncluster: {domains: 2, domain_gpus: 4, layout: gpus=2,\n"
                    "  scale_up: {profile: optical-800g, cables: 9}}\n")
    topo = load_file(file, "nvlink5")
    built = parse("cluster:2x4", "9xoptical-800g", "optical-800g", layout="gpus=2")
    assert topo.name == "two" and topo.links == built.links and topo.gpus == built.gpus
    file.write_text("cluster: {domains: 2, domain_gpus: 4, racks: 3}\n")
    with pytest.raises(NetwallError, match=r"two.yaml: cluster: unknown key 'racks'"):
        load_file(file, "nvlink5")
    file.write_text("cluster: {domains: 2}\n")
    with pytest.raises(NetwallError, match="key 'domain_gpus': expected a whole number from 2 to"):
        load_file(file, "nvlink5")
    file.write_text("cluster: {domains: 2, domain_gpus: 2}\nlinks: []\n")
    with pytest.raises(NetwallError, match="unknown key 'links'"):
        load_file(file, "nvlink5")


@pytest.mark.parametrize("value, says", [
    ({"profile": "optical-800g", "cables": 0}, "cables must be a whole number 1..999"),
    ({"profile": "optical-800g", "lanes": 2}, "expected a profile name or"),
    (7, "expected a profile name or"),
])
def test_bad_scale_up(value, says):
    with pytest.raises(NetwallError, match=says):
        from_mapping({"domains": 1, "domain_gpus": 2, "scale_up": value})


def test_bundle_adds_what_cables_add_and_keeps_sources():
    base = catalogue()["optical-800g"]
    nine = bundle(base, 9)
    assert nine.name == "9xoptical-800g" and nine.family == base.family
    assert nine.rate_gbps == 7200 and nine.lanes == 72
    assert nine.watts_per_end == pytest.approx(9 * base.watts_per_end)
    assert nine.afr == pytest.approx(9 * base.afr)
    assert (nine.reach_m, nine.pj_per_bit, nine.post_fec_ber) == (
        base.reach_m, base.pj_per_bit, base.post_fec_ber)
    assert nine.sources["afr"].startswith("derived: 9 x optical-800g's")
    assert base.sources["reach_m"] in nine.sources["reach_m"]
    assert set(nine.sources) == set(base.sources)
    assert "9xnothing" not in with_bundles(catalogue(), ["9xnothing"])
    with pytest.raises(NetwallError, match="1 to 999 cables"):
        bundle(base, 0)


def test_the_shipped_example_is_valid():
    topo = load_file("topologies/examples/two-fabric.yaml", "nvlink5")
    validate(topo, catalogue_of(topo))
    assert topo.name == "two-fabric" and len(topo.gpus) == 8
    assert {topo.links[i].profile for i in topo.links_of("nvs1")} == {"9xoptical-800g"}


def test_commands_that_build_nothing_take_clusters(capsys):
    """`netwall gpus` and `failures` know a cluster's bundles (its leaves' uplinks too)."""
    from emulator.cli.main import main

    assert main(["gpus", "--topology", "cluster:2x4", "--link", "nvlink5"]) == 0
    assert "protocol picked for allreduce/ring on cluster:2x4" in capsys.readouterr().out
    assert main(["failures", "--gpus", "1000", "--days", "1", "--trials", "10",
                 "--links", "9xoptical-800g=1"]) == 0
    assert "9xoptical-800g" in capsys.readouterr().out
