"""NVLS (NVLink SHARP): the schedule with the switch as a participant, its bytes on every
link, its steps, its model time and busbw, and where NCCL's choice picks it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from emulator.models import nccltuning
from emulator.models.accounting import link_loads, wire_loads
from emulator.models.alphabeta import Choice, call_costs, model_time_s, nccl_choice, nvls_span
from emulator.models.endpoints import FREE, CallCosts, get_gpu, load_gpu, nvls_costs
from emulator.models.metrics import busbw_gbps
from emulator.models.profiles import catalogue
from foundation.errors import NetwallError
from topologies import cluster, parse
from traffic.collectives.nvls import SLICES
from traffic.header import FRAME_OVERHEAD, wire_bytes
from traffic.schedule import build, simulate, validate_schedule

CAT = catalogue()


def directions(topo, loads, switch="nvs0"):
    """Bytes per GPU link: (GPU -> switch, switch -> GPU), by GPU."""
    up = {link: b for (link, sender), b in loads.items() if sender != switch}
    down = {link: b for (link, sender), b in loads.items() if sender == switch}
    return up, down


@pytest.mark.parametrize("n", [2, 3, 8, 16])
def test_every_gpu_link_carries_n_plus_1_over_n_of_the_buffer_each_way(n):
    """NCCL's one-node NVLS: every shard read by its head's ld_reduce (S up), the reduced
    shard back to the head (S/n down), the head's multimem.st (S/n up), its multicast (S
    down): (n+1)/n S each way, against a ring's 2(n-1)/n S."""
    size = 4 * n * SLICES * 16
    topo = parse(f"star:{n}", "nvlink4")
    nvls = build("allreduce", "nvls", n, size)
    up, down = directions(topo, link_loads(topo, [m for step in nvls.steps for m in step]))
    assert len(up) == len(down) == n
    assert set(up.values()) == set(down.values()) == {size * (n + 1) // n}
    ring = build("allreduce", "ring", n, size)
    ring_sent = max(sum(m.length for step in ring.steps for m in step if m.src == r)
                    for r in range(n))
    assert ring_sent == 2 * (n - 1) * size // n
    assert (size * (n + 1) // n < ring_sent) == (n > 3)  # NVLS moves less from 4 GPUs up


def test_the_switch_does_every_reduction_and_holds_no_result():
    n, size = 8, 8 * 4 * SLICES
    s = build("allreduce", "nvls", n, size, op="max", dtype="int32")
    assert (s.ranks, s.switches, s.participants) == (n, 1, n + 1)
    assert {m.dst for step in s.steps for m in step if m.reduce} == {n}
    assert all(m.src == n for step in s.steps for m in step if m.dst < n)  # GPUs hear only it
    validate_schedule(s)
    buffers = simulate(s)
    assert len(buffers) == n + 1
    assert all((b == buffers[0]).all() for b in buffers[:n])


@pytest.mark.parametrize("n", [2, 5, 8])
def test_step_counts(n):
    """All-reduce: slice j's four moves at steps 2j, 2j+1, 2j+3, 2j+4, so 2K + 3 steps for
    K slices; reduce-scatter and all-gather: one segment per step, pipelined, n + 1."""
    size = 4 * n * SLICES
    assert len(build("allreduce", "nvls", n, size).steps) == 2 * SLICES + 3
    assert len(build("allreduce", "nvls", n, size, chunk=size // 4).steps) == 2 * 4 + 3
    assert len(build("reducescatter", "nvls", n, size).steps) == n + 1
    assert len(build("allgather", "nvls", n, size).steps) == n + 1


def test_reduce_scatter_and_all_gather_carry_the_buffer_one_way_and_a_segment_the_other():
    n, size = 8, 8 * 4 * 64
    topo = parse(f"star:{n}", "nvlink4")
    rs = build("reducescatter", "nvls", n, size)
    up, down = directions(topo, link_loads(topo, [m for st in rs.steps for m in st]))
    assert set(up.values()) == {size} and set(down.values()) == {size // n}
    ag = build("allgather", "nvls", n, size)
    up, down = directions(topo, link_loads(topo, [m for st in ag.steps for m in st]))
    assert set(up.values()) == {size // n} and set(down.values()) == {size}


def test_wire_loads_count_each_multicast_copy_on_its_own_port():
    n, size = 4, 4 * 4 * SLICES * 64
    topo = parse(f"star:{n}", "nvlink4")
    s = build("allreduce", "nvls", n, size)
    wire = wire_loads(topo, s, 8000)
    moves = [m for st in s.steps for m in st]
    for gpu in range(n):
        link = topo.links_of(f"gpu{gpu}")[0]
        into = [m for m in moves if m.dst == gpu]
        assert wire[(link, "nvs0")] == sum(wire_bytes(m.length, 8000) for m in into) + \
            FRAME_OVERHEAD * sum(1 for m in moves if m.src == gpu)  # its ACKs back


def test_model_time_is_the_pipeline_of_big_and_small_steps():
    """Links only: even steps carry a slice each way on every link, odd steps a shard; the
    pipeline fills over two slices and drains over two."""
    n, k, size = 8, SLICES, 8 * 4 * SLICES * 1024
    topo = parse(f"star:{n}", "nvlink4")
    rate = CAT[topo.links[0].profile].rate_gbps * 1e9 / 8
    alpha = CAT[topo.links[0].profile].delay_ns(topo.links[0].length_m) * 1e-9
    s = build("allreduce", "nvls", n, size)
    want = (k + 2) * (alpha + size / k / rate) + (k + 1) * (alpha + size / k / n / rate)
    assert model_time_s(s, topo, CAT) == pytest.approx(want, rel=1e-9)


def test_nvls_busbw_passes_the_rings_ceiling():
    """nccl-tests' busbw (2(n-1)/n x algbw, also for NVLS) of a large NVLS all-reduce beats
    the link's line rate, which a ring's busbw can at best reach."""
    n, size = 8, 1 << 30
    topo = parse(f"star:{n}", "nvlink4")
    line = CAT["nvlink4"].rate_gbps / 8
    ring = busbw_gbps("allreduce", n, size, model_time_s(build("allreduce", "ring", n, size),
                                                           topo, CAT))
    nvls = busbw_gbps("allreduce", n, size, model_time_s(build("allreduce", "nvls", n, size),
                                                           topo, CAT))
    assert ring <= line * 1.0001 < nvls


def test_the_switch_pays_its_own_reduction_rate():
    n, size = 8, 8 * 4 * SLICES * 256
    topo = parse(f"star:{n}", "nvlink4")
    s = build("allreduce", "nvls", n, size)
    slow = CallCosts("Simple", 0.0, 0.0, 1.0, 1e-9 / 1.0)  # 1 GB/s of reduced data
    # each even step reduces n slices at the switch: n * S / K bytes at 1 GB/s
    assert model_time_s(s, topo, CAT, slow) >= SLICES * n * (size / SLICES) * 1e-9


def test_h100_nvls_costs_are_simple_with_nvls_terms():
    h100 = get_gpu("h100")
    c = nvls_costs(h100, 8)
    assert c.protocol == "Simple" and c.efficiency == h100.nvls.efficiency
    assert c.start_s == pytest.approx((h100.launch_us + h100.nvls.base_us) * 1e-6)
    topo = parse("star:8", "nvlink4")
    picked, model = call_costs(build("allreduce", "nvls", 8, 1 << 24), topo, CAT, h100)
    assert picked == c and model > c.start_s


def test_a_gpu_without_nvls_terms_says_so(tmp_path):
    ideal = get_gpu("ideal")
    assert ideal.nvls is None
    with pytest.raises(NetwallError, match="no NVLS terms"):
        nvls_costs(ideal, 8)
    with open(get_gpu("h100").path) as f:
        text = f.read()
    broken = tmp_path / "x.yaml"
    broken.write_text(text.replace("  step_us: {value: 0, source", "  stepus: {value: 0, source"))
    with pytest.raises(NetwallError, match="nvls") as info:
        load_gpu(broken)
    assert "\n" not in str(info.value)


def test_hoppers_link_share_holds_and_blackwells_bus_share_holds():
    """h100's NVLS efficiency is each link's data share whatever the rank count (NCCL issue
    1455: 308-315 GB/s per link on 5 to 8 GPUs); gb200's is a bus share, so its links carry
    less data as the ranks grow and the modelled busbw stays put (841 GB/s published on 8 x
    B200, 847 on the 72-GPU NVL72)."""
    h100, gb200 = get_gpu("h100"), get_gpu("gb200")
    assert h100.nvls.scales_as == "link" and gb200.nvls.scales_as == "bus"
    assert {nvls_costs(h100, n).efficiency for n in (2, 5, 8, 16)} == {h100.nvls.efficiency}
    share = {n: nvls_costs(gb200, n).efficiency for n in (8, 16, 72)}
    assert share[8] > share[16] > share[72]
    assert share[72] == pytest.approx(gb200.nvls.efficiency * 73 / 142)
    assert nvls_costs(gb200, 2).efficiency == 1.0  # never past the link's rate

    def busbw(gpu, n, size=1 << 34):
        _, model = call_costs(build("allreduce", "nvls", n, size), parse(f"star:{n}", "nvlink5"),
                              CAT, gpu)
        return busbw_gbps("allreduce", n, size, model)

    assert busbw(gb200, 72) == pytest.approx(busbw(gb200, 8), rel=0.01)
    # h100: busbw as 2(n-1)/(n+1), 1.56 on 8 against 1.33 on 5 (NCCL issue 1455: 480, 420)
    assert busbw(h100, 8) / busbw(h100, 5) == pytest.approx(1.556 / 1.333, rel=0.02)


@pytest.mark.parametrize("scales, refused", [
    ("both", "nvls.scales_as"),  # link or bus, nothing else
    ("link", "nvls.efficiency"),  # gb200's 1.04 is a bus share: as a link share, past 1
])
def test_nvls_scales_as_is_checked(tmp_path, scales, refused):
    with open(get_gpu("gb200").path) as f:
        text = f.read()
    broken = tmp_path / "x.yaml"
    broken.write_text(text.replace("scales_as: {value: bus,", f"scales_as: {{value: {scales},"))
    with pytest.raises(NetwallError, match=refused) as info:
        load_gpu(broken)
    assert "\n" not in str(info.value)


def test_nccl_picks_nvls_for_large_all_reduces_on_one_nvls_switch():
    h100 = get_gpu("h100")
    topo = parse("star:8", "nvlink4")
    group = tuple(range(8))

    def pick(collective, size, topo=topo, group=group, gpu=h100):
        return nccl_choice(collective, size, group, topo, gpu).algorithm

    # NCCL's tuning model on 8 x H100: ring (LL) up to 1 MiB, NVLS from 2 MiB, as NCCL
    # printed it (nccl-tests issue 309: "8B~1MB: Algo RING proto LL, 2MB~16GB: Algo NVLS")
    assert pick("allreduce", 1 << 20) == "ring"
    # the model crosses at about 1.15 MB: nccl-tests' powers of two meet it first at 2 MiB
    assert pick("allreduce", 1_100_000) == "ring"
    assert pick("allreduce", 1_200_000) == "nvls"
    assert pick("allreduce", 2 << 20) == "nvls"
    assert pick("allreduce", 1 << 30) == "nvls"
    assert pick("allgather", 1 << 30) == "ring"  # NVLS there only when asked for
    assert pick("allreduce", 1 << 30, gpu=get_gpu("ideal")) == "ring"
    racks = parse("racks:2x4", "nvlink4")  # rack switches do not reduce
    assert pick("allreduce", 1 << 30, topo=racks) == "ring"
    two = cluster.topology(cluster.parse_spec("cluster:2x8", "nvlink4", "optical-800g"),
                           "cluster:2x8")
    assert two.nvls == ("nvs0", "nvs1")
    assert pick("allreduce", 1 << 30, topo=two, group=tuple(range(16))) == "ring"  # 2 domains
    second = tuple(range(8, 16))
    assert two.nvls_switch(second) == 16 + 1
    assert pick("allreduce", 1 << 30, topo=two, group=second) == "nvls"
    # 4 GPUs: NCCL's model runs the ring at every size (LL128 and Simple's bandwidth over 6
    # steps pass NVLS's over its 4 channels), as the 4-GPU runs of NCCL issue 1455 show no
    # NVLS gain (busbw 365-370 GB/s either way)
    assert pick("allreduce", 1 << 30, topo=parse("star:4", "nvlink4"), group=(0, 1, 2, 3)) \
        == "ring"


def test_nccl_choice_says_why():
    h100, topo, group = get_gpu("h100"), parse("star:8", "nvlink4"), tuple(range(8))
    assert nccl_choice("allreduce", 4 << 20, group, topo, h100).why == \
        "NCCL's choice from 2 MiB on 8 GPUs"
    assert nccl_choice("allreduce", 1 << 20, group, topo, h100).why == \
        "NCCL's choice below 2 MiB on 8 GPUs"
    assert nccl_choice("allreduce", 1 << 20, group, topo, h100, named="nvls") == \
        Choice("nvls", "named")
    assert nvls_span(h100, 4) == "never"
    # a 72-GPU NVL72: the ring's 142 steps of latency lose to NVLS's one term at every size
    gb200 = get_gpu("gb200")
    assert nvls_span(gb200, 72) == "at every size"
    nvl72 = parse("star:72", "nvlink5")
    assert nccl_choice("allreduce", 1 << 10, tuple(range(72)), nvl72, gb200).algorithm == "nvls"


def test_nccl_tuning_model_matches_its_own_tables():
    """NCCL's model of 8 x H100 with NCCL's constants: the ring's latencies (baseLat + 14
    steps of hwLat) and NVLS's busbw near the ~480 GB/s NCCL's maintainers state (nccl-tests
    issue 212)."""
    t = get_gpu("h100").nccl
    ring = nccltuning.ring_us(t, 8, 0)
    assert ring == pytest.approx({"LL": 6.6 + 14 * 0.6, "LL128": 14 + 14 * 1.9,
                                  "Simple": 8.4 + 14 * 3.4})
    assert nccltuning.nvls_us(t, 8, 0) == nccltuning.NVLS_US
    assert 460 < nccltuning.nvls_gbps(t, 8) < 500


def test_a_broken_nccl_section_is_one_line(tmp_path):
    text = Path(get_gpu("h100").path).read_text()
    for bad, key in (("  arch: hopper", "  arch: volta"), ("  arch: hopper", "  arch: [1]"),
                     ("ring_channels: {value: 12,", "ring_channels: {value: 0,")):
        broken = tmp_path / "gpu.yaml"
        broken.write_text(text.replace(bad, key))
        with pytest.raises(NetwallError, match="nccl") as info:
            load_gpu(broken)
        assert "\n" not in str(info.value)


def test_nvls_switches_in_a_topology_file(tmp_path):
    base = "gpus: [a, b]\nswitches: [sw]\nlinks: [{a: a, b: sw}, {a: b, b: sw}]\n"
    good = tmp_path / "good.yaml"
    good.write_text(base + "nvls: [sw]\n")
    topo = parse(str(good), "nvlink4")
    assert topo.nvls == ("sw",) and topo.node(2) == "sw" and topo.nvls_switch((0, 1)) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "nvls: [a]\n")
    with pytest.raises(NetwallError, match="'a' is not one of the switches"):
        parse(str(bad), "nvlink4")
    assert parse("racks:2x2", "nvlink4").nvls == ()
    assert dataclasses.replace(topo, nvls=()).nvls_switch((0, 1)) is None
    assert FREE.efficiency == 1.0


def test_an_unknown_collective_is_left_for_the_schedule_to_refuse_in_one_line():
    h100, topo, group = get_gpu("h100"), parse("star:8", "nvlink4"), tuple(range(8))
    choice = nccl_choice("allsum", 1 << 20, group, topo, h100)  # no KeyError here
    with pytest.raises(NetwallError, match="no collective 'allsum'"):
        build("allsum", choice.algorithm, 8, 1 << 20)


def test_an_nvls_section_without_scales_as_holds_the_link_share(tmp_path):
    with open(get_gpu("h100").path) as f:
        lines = [line for line in f if "scales_as:" not in line]
    mine = tmp_path / "x.yaml"
    mine.write_text("".join(lines))
    gpu = load_gpu(mine)
    assert gpu.nvls.scales_as == "link" and "nvls.scales_as" not in gpu.sources
