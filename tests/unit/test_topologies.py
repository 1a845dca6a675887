"""Tests for the pure topology package: builders, YAML files, validation and routing."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from foundation.errors import NetwallError
from topologies import (
    DIRECT,
    SCALE_OUT,
    SCALE_UP,
    Hop,
    Link,
    Topology,
    load_file,
    next_hops,
    parse,
    path,
    validate,
)


@dataclass(frozen=True)
class FakeProfile:
    name: str
    reach_m: float


CATALOGUE = {
    p.name: p
    for p in (
        FakeProfile("copper-800g", 2.0),
        FakeProfile("optical-800g", 100.0),
        FakeProfile("wide-and-slow-800g", 50.0),
    )
}


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(NetwallError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


TWO_TIER = """\
name: two-tier
gpus: 4
switches: [sw0, sw1, core]
default_link: {profile: copper-800g, length_m: 1.0}
links:
  - {a: gpu0, b: sw0}
  - {a: gpu1, b: sw0, length_m: 1.5}
  - {a: gpu2, b: sw1}
  - {a: gpu3, b: sw1}
  - {a: sw0, b: core, profile: optical-800g, length_m: 30}
  - {a: sw1, b: core, profile: optical-800g, length_m: 30}
  - {a: gpu1, b: gpu2}
"""


# --- builders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, links, gpus, switches",
    [
        ("pair", 1, 2, 0),
        ("ring:3", 3, 3, 0),
        ("ring:6", 6, 6, 0),
        ("mesh:2", 1, 2, 0),
        ("mesh:5", 10, 5, 0),
        ("mesh:64", 64 * 63 // 2, 64, 0),
        ("star:8", 8, 8, 1),
        ("racks:3x2", 3 * 2 + 3, 6, 4),
        ("racks:2x1", 2 + 2, 2, 3),
        ("racks:32x32", 1024 + 32, 1024, 33),
    ],
)
def test_builtin_sizes(spec, links, gpus, switches):
    topo = parse(spec, "copper-800g")
    assert topo.name == spec
    assert len(topo.links) == links
    assert topo.gpus == tuple(f"gpu{i}" for i in range(gpus))
    assert len(topo.switches) == switches
    assert [topo.rank(g) for g in topo.gpus] == list(range(gpus))


def test_ring_mesh_star_shapes():
    ring = parse("ring:4", "copper-800g")
    assert [(x.a, x.b) for x in ring.links] == [
        ("gpu0", "gpu1"), ("gpu1", "gpu2"), ("gpu2", "gpu3"), ("gpu3", "gpu0")
    ]
    assert {x.tier for x in ring.links} == {DIRECT}
    mesh = parse("mesh:4", "copper-800g")
    assert {frozenset((x.a, x.b)) for x in mesh.links} == {
        frozenset((f"gpu{i}", f"gpu{j}")) for i in range(4) for j in range(i + 1, 4)
    }
    star = parse("star:3", "copper-800g")
    assert star.switches == ("nvs0",)
    assert all(x.b == "nvs0" and x.tier == SCALE_UP for x in star.links)


def test_racks_layout_tiers_profiles_lengths():
    topo = parse("racks:3x2", "copper-800g", spine_link="wide-and-slow-800g")
    assert topo.switches == ("rack0", "rack1", "rack2", "spine0")
    gpu_links = [x for x in topo.links if x.tier == SCALE_UP]
    assert [(x.a, x.b) for x in gpu_links] == [
        ("gpu0", "rack0"), ("gpu1", "rack0"), ("gpu2", "rack1"),
        ("gpu3", "rack1"), ("gpu4", "rack2"), ("gpu5", "rack2"),
    ]
    assert {(x.profile, x.length_m) for x in gpu_links} == {("copper-800g", 1.0)}
    spine = [x for x in topo.links if x.tier == SCALE_OUT]
    assert [(x.a, x.b) for x in spine] == [("rack0", "spine0"), ("rack1", "spine0"),
                                           ("rack2", "spine0")]
    assert {(x.profile, x.length_m) for x in spine} == {("wide-and-slow-800g", 20.0)}


def test_length_overrides():
    topo = parse("racks:2x2", "copper-800g", length_m=1.5, spine_length_m=40)
    assert {x.length_m for x in topo.links if x.tier == SCALE_UP} == {1.5}
    assert {x.length_m for x in topo.links if x.tier == SCALE_OUT} == {40}
    assert {x.length_m for x in parse("ring:3", "c", length_m=0.5).links} == {0.5}
    assert {x.length_m for x in parse("pair", "c").links} == {1.0}


@pytest.mark.parametrize(
    "spec, says",
    [
        ("foo", "unknown topology 'foo' (use pair, ring:N, mesh:N, star:N, racks:RxG, cluster:DxG"),
        ("pair:2", "unknown topology 'pair:2'"),
        ("ring", "unknown topology 'ring'"),
        ("torus:4", "unknown topology 'torus:4'"),
        ("ring:x", "'x' is not a whole number (use ring:N)"),
        ("ring:", "'' is not a whole number"),
        ("ring:3.5", "'3.5' is not a whole number"),
        ("ring:-3", "'-3' is not a whole number"),
        ("ring:2", "ring takes 3 to 1024 GPUs"),
        ("ring:1025", "ring takes 3 to 1024 GPUs"),
        ("mesh:1", "mesh takes 2 to 64 GPUs"),
        ("mesh:65", "mesh takes 2 to 64 GPUs"),
        ("star:1", "star takes 2 to 1024 GPUs"),
        ("star:1025", "star takes 2 to 1024 GPUs"),
        ("racks:2x", "'' is not a whole number (use racks:RxG)"),
        ("racks:x2", "'' is not a whole number"),
        ("racks:4", "use racks:RxG"),
        ("racks:1x8", "racks takes R >= 2 racks of G >= 1 GPUs"),
        ("racks:2x0", "racks takes R >= 2"),
        ("racks:33x32", "at most 1024 GPUs in total"),
    ],
)
def test_bad_specs(spec, says):
    message = one_line_error(parse, spec, "copper-800g")
    assert says in message
    assert repr(spec) in message


# --- ports and interfaces -------------------------------------------------------------------


def test_ports_follow_link_order():
    ring = parse("ring:4", "copper-800g")
    assert ring.links_of("gpu0") == [0, 3]
    assert ring.port(0, "gpu0") == 0 and ring.port(3, "gpu0") == 1
    assert ring.interface(3, "gpu0") == "gpu0-eth1"
    assert ring.port(0, "gpu1") == 0 and ring.port(1, "gpu1") == 1
    assert ring.other(3, "gpu0") == "gpu3"
    racks = parse("racks:2x3", "copper-800g")
    assert all(racks.port(racks.links_of(g)[0], g) == 0 for g in racks.gpus)
    assert racks.links_of("rack1") == [3, 4, 5, 7]
    assert racks.interface(7, "rack1") == "rack1-eth3"
    assert racks.links_of("spine0") == [6, 7]
    assert racks.is_gpu("gpu5") and not racks.is_gpu("rack0")
    with pytest.raises(ValueError):
        racks.port(0, "gpu1")
    with pytest.raises(ValueError):
        racks.other(0, "gpu1")


def test_topology_stays_hashable_and_comparable():
    a, b = parse("star:4", "copper-800g"), parse("star:4", "copper-800g")
    next_hops(a)  # fills a's cache
    assert a == b and hash(a) == hash(b)


# --- YAML files -----------------------------------------------------------------------------


def test_yaml_file(tmp_path):
    topo = parse(str(write(tmp_path, TWO_TIER)), "ignored")
    assert topo.name == "two-tier"
    assert topo.gpus == ("gpu0", "gpu1", "gpu2", "gpu3")
    assert topo.switches == ("sw0", "sw1", "core")
    assert [x.tier for x in topo.links] == [SCALE_UP] * 4 + [SCALE_OUT] * 2 + [DIRECT]
    assert [x.length_m for x in topo.links] == [1.0, 1.5, 1.0, 1.0, 30.0, 30.0, 1.0]
    assert [x.profile for x in topo.links[3:6]] == ["copper-800g", "optical-800g",
                                                    "optical-800g"]
    validate(topo, CATALOGUE)


def test_yaml_defaults_and_names(tmp_path):
    file = write(tmp_path, "gpus: [b0, a1]\nlinks:\n  - {a: b0, b: a1}\n", "lab.yml")
    topo = load_file(file, "wide-and-slow-800g")
    assert topo.name == "lab"
    assert topo.gpus == ("b0", "a1") and topo.rank("a1") == 1
    assert topo.switches == ()
    assert topo.links == (Link("b0", "a1", "wide-and-slow-800g", 1.0, DIRECT),)


def test_existing_file_without_yaml_suffix(tmp_path):
    file = write(tmp_path, "gpus: 2\nlinks: [{a: gpu0, b: gpu1}]\n", "plain.topo")
    assert parse(str(file), "copper-800g").name == "plain"


def test_file_with_length_options_is_refused(tmp_path):
    file = write(tmp_path, "gpus: 2\nlinks: [{a: gpu0, b: gpu1}]\n")
    message = one_line_error(parse, str(file), "copper-800g", length_m=2)
    assert str(file) in message and "length" in message


def test_missing_file():
    message = one_line_error(parse, "/nonexistent/x.yaml", "copper-800g")
    assert message == "topology file /nonexistent/x.yaml not found"


@pytest.mark.parametrize(
    "text, says",
    [
        ("gpus: [gpu0\nlinks: []\n", "line 2: YAML syntax error"),
        ("links:\n  - {a: gpu0, b: gpu1\n", "line 3: YAML syntax error"),
        ("- gpu0\n", "expected a mapping with keys gpus and links, got a list"),
        ("", "expected a mapping"),
        ("links: []\n", "missing key 'gpus'"),
        ("gpus: 2\n", "missing key 'links'"),
        ("gpus: 2\nlinks: []\nswitch: [s]\n", "unknown key 'switch' (known: name, gpus"),
        ("gpus: true\nlinks: []\n", "gpus must be a count or a list of names"),
        ("gpus: 1\nlinks: []\n", "gpus must be 2 to 1024, got 1"),
        ("gpus: 5000\nlinks: []\n", "gpus must be 2 to 1024"),
        ("gpus: [gpu0, 7]\nlinks: []\n", "gpus[1] must be a non-empty string, got a number 7"),
        ("gpus: 2\nswitches: sw0\nlinks: []\n", "switches must be a list of names"),
        ("gpus: 2\nname: 5\nlinks: []\n", "name must be a non-empty string"),
        ("gpus: 2\nlinks: {a: gpu0}\n", "links must be a list, got a mapping"),
        ("gpus: 2\nlinks: [gpu0-gpu1]\n", "links[0] must be a mapping like {a: gpu0, b: sw0}"),
        ("gpus: 2\nlinks: [{a: gpu0}]\n", "links[0]: missing key 'b'"),
        ("gpus: 2\nlinks: [{a: gpu0, b: gpu1, len: 3}]\n", "links[0]: unknown key 'len'"),
        ("gpus: 2\nlinks: [{a: gpu0, b: gpu9}]\n", "links[0]: unknown node 'gpu9'"),
        ("gpus: 2\nlinks: [{a: gpu0, b: gpu1}, {a: gpu0, b: 1}]\n", "links[1].b must be a"),
        ("gpus: 2\nlinks: [{a: gpu0, b: gpu1, length_m: true}]\n",
         "links[0].length_m must be a number, got a boolean True"),
        ("gpus: 2\nlinks: [{a: gpu0, b: gpu1, length_m: '3'}]\n",
         "links[0].length_m must be a number, got a string '3'"),
        ("gpus: 2\nlinks: [{a: gpu0, b: gpu1, profile: 800}]\n", "links[0].profile must be a"),
        ("gpus: 2\ndefault_link: copper\nlinks: []\n", "default_link must be a mapping"),
        ("gpus: 2\ndefault_link: {reach: 3}\nlinks: []\n", "default_link: unknown key 'reach'"),
        ("gpus: 2\ndefault_link: {length_m: yes}\nlinks: []\n",
         "default_link.length_m must be a number"),
    ],
)
def test_bad_yaml(tmp_path, text, says):
    file = write(tmp_path, text)
    message = one_line_error(load_file, file, "copper-800g")
    assert message.startswith(f"topology file {file}")
    assert says in message


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["pair", "ring:5", "mesh:4", "star:8", "racks:3x2"])
def test_builtins_validate(spec):
    validate(parse(spec, "copper-800g", spine_link="optical-800g"), CATALOGUE)


def test_reach_message_is_exact():
    topo = parse("racks:2x2", "copper-800g", spine_link="copper-800g")
    message = one_line_error(validate, topo, CATALOGUE)
    assert message == "link rack0--spine0 is 20 m long but copper-800g reaches 2 m"
    too_long = parse("pair", "copper-800g", length_m=2.5)
    assert one_line_error(validate, too_long, CATALOGUE) == (
        "link gpu0--gpu1 is 2.5 m long but copper-800g reaches 2 m"
    )
    validate(parse("pair", "copper-800g", length_m=2), CATALOGUE)  # exactly at reach is fine


def topo_of(gpus, switches, pairs, profile="copper-800g", length=1.0, name="t") -> Topology:
    """A topology from (a, b) pairs, with tiers derived from the node kinds."""
    def tier(a, b):
        return {2: DIRECT, 1: SCALE_UP, 0: SCALE_OUT}[(a in gpus) + (b in gpus)]
    links = tuple(Link(a, b, profile, length, tier(a, b)) for a, b in pairs)
    return Topology(name, tuple(gpus), tuple(switches), links)


G2 = ("gpu0", "gpu1")


@pytest.mark.parametrize(
    "topo, says",
    [
        (topo_of(("gpu0", "Gpu1"), (), [("gpu0", "Gpu1")]), "bad node name 'Gpu1'"),
        (topo_of(("gpu0", "gpu123456"), (), [("gpu0", "gpu123456")]), "bad node name 'gpu123456'"),
        (topo_of(("gpu0", "1gpu"), (), [("gpu0", "1gpu")]), "bad node name '1gpu'"),
        (topo_of(("gpu0", "gpu-1"), (), [("gpu0", "gpu-1")]), "bad node name 'gpu-1'"),
        (topo_of(G2, ("gpu1",), [("gpu0", "gpu1")]), "node name 'gpu1' is used twice"),
        (topo_of(("gpu0", "gpu0"), (), [("gpu0", "gpu0")]), "node name 'gpu0' is used twice"),
        (topo_of(("gpu0",), ("sw0",), [("gpu0", "sw0")]), "topology t has 1 GPUs; use 2 to 1024"),
        (topo_of(G2, (), [("gpu0", "gpu7")]), "link gpu0--gpu7: unknown node 'gpu7'"),
        (topo_of(G2, (), [("gpu0", "gpu1"), ("gpu1", "gpu1")]), "link gpu1--gpu1 joins gpu1 to"),
        (topo_of(G2, (), [("gpu0", "gpu1"), ("gpu1", "gpu0")]),
         "link gpu1--gpu0: gpu1 and gpu0 are already joined (links 0 and 1)"),
        (topo_of(G2, (), [("gpu0", "gpu1")], length=0.0), "link gpu0--gpu1: length must be a"),
        (topo_of(G2, (), [("gpu0", "gpu1")], length=-1.0), "got -1"),
        (topo_of(G2, (), [("gpu0", "gpu1")], length=float("nan")), "got nan"),
        (topo_of(G2, (), [("gpu0", "gpu1")], length=float("inf")), "got inf"),
        (topo_of(G2, ("nvs0",), [("gpu0", "nvs0"), ("gpu1", "nvs0")], profile="x"),
         "link gpu0--nvs0: unknown link profile 'x' (known: copper-800g, optical-800g, "
         "wide-and-slow-800g)"),
        (topo_of(G2, ("sw0", "sw1"), [("gpu0", "gpu1"), ("gpu0", "sw0")]),
         "switch sw1 has no links"),
        (topo_of(("gpu0", "gpu1", "gpu2"), (), [("gpu0", "gpu1")]),
         "topology t is disconnected: GPU gpu2 cannot reach gpu0"),
        (topo_of(G2, ("sw0", "sw1"), [("gpu0", "gpu1"), ("sw0", "sw1")]),
         "topology t is disconnected: switch sw0 cannot reach gpu0"),
        (topo_of(G2, ("sw0", "sw1", "sw2"),
                 [("gpu0", "sw0"), ("gpu1", "sw1"), ("sw0", "sw1"), ("sw1", "sw2"),
                  ("sw2", "sw0")]),
         "link sw2--sw0 closes a loop among switches"),
        (topo_of(G2, ("sw0", "sw1"),
                 [("gpu0", "sw0"), ("gpu0", "sw1"), ("sw0", "sw1"), ("gpu1", "sw1")]),
         "gpu0 has two links into one L2 segment (via sw0 and sw1)"),
    ],
)
def test_validation_errors(topo, says):
    assert says in one_line_error(validate, topo, CATALOGUE)


def test_wrong_tier_is_caught():
    topo = parse("star:2", "copper-800g")
    bad = replace(topo, links=(replace(topo.links[0], tier=DIRECT),) + topo.links[1:])
    assert "link gpu0--nvs0: tier is 'direct' but should be 'scale-up'" in one_line_error(
        validate, bad, CATALOGUE
    )


def test_node_with_too_many_links_for_its_interface_names():
    topo = topo_of([f"g{i}" for i in range(1001)], ("switch00",),
                   [(f"g{i}", "switch00") for i in range(1001)])
    assert "switch00 has 1001 links; its last interface name switch00-eth1000 would pass " \
           "the 15 characters" in one_line_error(validate, topo, CATALOGUE)
    validate(topo_of([f"g{i}" for i in range(1001)], ("sw0",),  # sw0-eth1000: room to spare
                     [(f"g{i}", "sw0") for i in range(1001)]), CATALOGUE)


def test_a_switch_takes_at_most_a_bridges_ports():
    topo = topo_of([f"g{i}" for i in range(1024)], ("sw0",),
                   [(f"g{i}", "sw0") for i in range(1024)])
    assert "switch sw0 has 1024 links; a Linux bridge takes at most 1023" in one_line_error(
        validate, topo, CATALOGUE)


def test_gpu_in_two_separate_segments_is_fine():
    topo = topo_of(("gpu0", "gpu1"), ("sw0", "sw1"),
                   [("gpu0", "sw0"), ("gpu1", "sw0"), ("gpu0", "sw1"), ("gpu1", "sw1")])
    validate(topo, CATALOGUE)


# --- routing --------------------------------------------------------------------------------


def hops_between(topo, a, b):
    return len(path(topo, a, b))


def test_path_lengths():
    star = parse("star:8", "copper-800g")
    assert {hops_between(star, a, b) for a in star.gpus for b in star.gpus if a != b} == {2}
    racks = parse("racks:3x2", "copper-800g")
    assert hops_between(racks, "gpu0", "gpu1") == 2
    assert hops_between(racks, "gpu0", "gpu2") == 4
    assert hops_between(racks, "gpu5", "gpu0") == 4
    ring = parse("ring:6", "copper-800g")
    assert hops_between(ring, "gpu0", "gpu3") == 3
    assert hops_between(ring, "gpu0", "gpu5") == 1
    mesh = parse("mesh:5", "copper-800g")
    assert {hops_between(mesh, a, b) for a in mesh.gpus for b in mesh.gpus if a != b} == {1}
    assert path(mesh, "gpu2", "gpu2") == ()


def test_path_hops_and_tie_break():
    ring = parse("ring:6", "copper-800g")
    # gpu0 has two equally short ways to gpu3; link 0 (to gpu1) beats link 5 (to gpu5).
    assert path(ring, "gpu0", "gpu3") == (
        Hop(0, "gpu0", "gpu1"), Hop(1, "gpu1", "gpu2"), Hop(2, "gpu2", "gpu3")
    )
    racks = parse("racks:2x2", "copper-800g")
    assert path(racks, "gpu3", "gpu0") == (
        Hop(3, "gpu3", "rack1"), Hop(5, "rack1", "spine0"),
        Hop(4, "spine0", "rack0"), Hop(0, "rack0", "gpu0"),
    )


def test_path_transits_gpus_in_yaml_topology(tmp_path):
    topo = load_file(write(tmp_path, TWO_TIER), "copper-800g")
    # gpu1--gpu2 is a direct link, so gpu0 reaches gpu2 through gpu1 (3 hops) rather than
    # via the core (4 hops), but gpu3 via the core (4 hops, not 5 through gpu1 and gpu2).
    assert [h.dst for h in path(topo, "gpu0", "gpu2")] == ["sw0", "gpu1", "gpu2"]
    assert [h.dst for h in path(topo, "gpu0", "gpu3")] == ["sw0", "core", "sw1", "gpu3"]
    table = next_hops(topo)
    assert table["gpu0"]["gpu2"] == (0, "gpu1")
    assert table["gpu1"]["gpu2"] == (6, "gpu2")
    assert table["gpu0"]["gpu3"] == (0, "gpu3")
    assert table["gpu3"]["gpu1"] == (3, "gpu2")  # sw1, gpu2, gpu1: 3 hops


def check_consistency(topo):
    table = next_hops(topo)
    for a in topo.gpus:
        assert set(table[a]) == set(topo.gpus) - {a}
        for c, (link, b) in table[a].items():
            route = path(topo, a, c)
            assert route[0].link == link and route[0].src == a
            assert path(topo, a, b) + path(topo, b, c) == route
            # the hops chain and the next GPU is the first GPU on the path
            assert all(x.dst == y.src for x, y in zip(route, route[1:], strict=False))
            assert next(h.dst for h in route if topo.is_gpu(h.dst)) == b
            assert all(topo.other(h.link, h.src) == h.dst for h in route)


@pytest.mark.parametrize("spec", ["ring:6", "mesh:4", "racks:3x2", "star:5", "pair"])
def test_routes_are_consistent(spec):
    check_consistency(parse(spec, "copper-800g"))


def test_routes_are_consistent_in_yaml_topologies(tmp_path):
    check_consistency(load_file(write(tmp_path, TWO_TIER), "copper-800g"))
    # Equal-cost alternatives everywhere: two separate switch planes plus a direct ring.
    planes = topo_of(
        ("gpu0", "gpu1", "gpu2", "gpu3"), ("pa", "pb"),
        [("gpu0", "gpu1"), ("gpu1", "gpu2"), ("gpu2", "gpu3"), ("gpu3", "gpu0")]
        + [(g, s) for s in ("pb", "pa") for g in ("gpu3", "gpu2", "gpu1", "gpu0")],
    )
    validate(planes, CATALOGUE)
    check_consistency(planes)


def random_topology(seed: int) -> Topology:
    """Switch trees, each GPU attached at most once per tree, plus random direct links."""
    rng = random.Random(seed)
    gpus = [f"gpu{i}" for i in range(rng.randint(2, 9))]
    switches = [f"sw{i}" for i in range(rng.randint(0, 6))]
    pairs, tree = [], {}
    for i, switch in enumerate(switches):  # join each switch to an earlier one, or start a tree
        parent = rng.choice(switches[:i]) if i and rng.random() < 0.6 else None
        tree[switch] = tree[parent] if parent else switch
        if parent:
            pairs.append((switch, parent))
    for root in set(tree.values()):
        members = [s for s in switches if tree[s] == root]
        for gpu in rng.sample(gpus, rng.randint(1, len(gpus))):
            pairs.append((gpu, rng.choice(members)))
    pairs += [(a, b) for i, a in enumerate(gpus) for b in gpus[i + 1:] if rng.random() < 0.2]
    pairs += [(a, b) for a, b in zip(gpus, gpus[1:], strict=False)
              if (a, b) not in pairs]  # a chain of direct links keeps it connected
    rng.shuffle(pairs)
    return topo_of(gpus, switches, pairs)


@pytest.mark.parametrize("seed", range(60))
def test_routes_are_consistent_on_random_topologies(seed):
    topo = random_topology(seed)
    validate(topo, CATALOGUE)
    check_consistency(topo)


def test_routing_errors():
    star = parse("star:3", "copper-800g")
    racks = parse("racks:2x2", "copper-800g")  # its rack switches do not reduce (no NVLS)
    assert "no GPU 'rack0'" in one_line_error(path, racks, "rack0", "gpu1")
    assert [hop.link for hop in path(star, "nvs0", "gpu1")] == [1]  # an NVLS switch's agent
    assert "no GPU 'gpu9'" in one_line_error(path, star, "gpu0", "gpu9")
    split = topo_of(("gpu0", "gpu1", "gpu2"), (), [("gpu0", "gpu1")])
    assert "gpu2 cannot reach gpu0" in one_line_error(path, split, "gpu2", "gpu0")
    assert "gpu2" not in next_hops(split)["gpu0"]


@pytest.mark.parametrize("spec", ["star:256", "racks:16x16"])
def test_routing_covers_every_pair_of_a_large_cluster(spec):
    # No timing threshold here (BENCHMARKS.md times start-up); every pair must route.
    topo = parse(spec, "copper-800g")
    table = next_hops(topo)
    assert len(table) == 256
    for a in topo.gpus:
        for c in topo.gpus:
            hops = path(topo, a, c)
            assert (len(hops) == 0) == (a == c)
