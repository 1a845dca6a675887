"""GPU endpoint profiles and the terms they add: loading, validation, NCCL's protocol choice,
the model, the protocol's padding on the wire, and the routes agents hold frames by."""

from __future__ import annotations

import math
import textwrap

import pytest

from emulator.models import endpoints
from emulator.models.accounting import wire_loads
from emulator.models.alphabeta import call_costs, model_time_s, routes_to
from emulator.models.endpoints import FREE, costs, get_gpu, gpus, load_gpu
from emulator.models.profiles import catalogue
from foundation.errors import NetwallError
from topologies import parse
from traffic.header import FRAME_OVERHEAD, frame_data, frame_payload, padding, wire_bytes
from traffic.schedule import build

CAT = catalogue()
GPUS = gpus()
STAR = parse("star:8", "nvlink4")


def test_the_builtin_gpus_load_with_a_source_for_every_number():
    assert {"ideal", "h100", "gb200"} <= set(GPUS)
    for gpu in GPUS.values():
        numbers = 2 + 3 * len(gpu.protocols) + (5 if gpu.nvls else 0) + (3 if gpu.nccl else 0)
        assert len(gpu.sources) == numbers and all(s.strip() for s in gpu.sources.values())
        assert set(gpu.protocols) <= set(endpoints.PROTOCOLS)


def test_the_default_endpoint_is_a_real_gpu():
    assert endpoints.DEFAULT == "h100" and GPUS["h100"].launch_us > 0


def test_protocol_efficiencies_follow_their_wire_formats():
    h100 = GPUS["h100"].protocols
    simple = h100["Simple"].efficiency
    assert h100["LL"].efficiency == pytest.approx(0.5 * simple, abs=1e-3)  # 8 of 16 bytes
    assert h100["LL128"].efficiency == pytest.approx(120 / 128 * simple, abs=1e-3)


def _gpu_file(tmp_path, body: str):
    path = tmp_path / "gpu.yaml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """\
    name: test-gpu
    description: a test
    launch_us: {value: 5, source: "s"}
    reduce_gbytes_per_s: {value: 100, source: "s"}
    protocols:
      Simple:
        base_us: {value: 1, source: "s"}
        step_us: {value: 0.5, source: "s"}
        efficiency: {value: 0.9, source: "s"}
    """


def test_a_gpu_file_loads(tmp_path):
    gpu = load_gpu(_gpu_file(tmp_path, GOOD))
    assert gpu.protocols["Simple"].step_us == 0.5 and gpu.reduce_gbytes_per_s == 100


@pytest.mark.parametrize("change,message", [
    (("launch_us: {value: 5, source: \"s\"}", "launch_us: {value: 5}"), "without a source"),
    (("Simple:", "Fast:"), "'protocols.Fast': unknown protocol"),
    (("efficiency: {value: 0.9", "efficiency: {value: 1.5"), "must be in (0, 1]"),
    (("    reduce_gbytes_per_s: {value: 100, source: \"s\"}\n", ""), "missing field"),
    (("step_us: {value: 0.5, source: \"s\"}", "step: 1"), "must have exactly"),
    (("description: a test", "description: a test\n    colour: red"), "unknown field"),
])
def test_a_bad_gpu_file_is_one_line_naming_the_key(tmp_path, change, message):
    with pytest.raises(NetwallError) as e:
        load_gpu(_gpu_file(tmp_path, GOOD.replace(*change)))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_gpu_lists_the_known_ones():
    with pytest.raises(NetwallError, match=r"unknown GPU profile 'a100' \(known: gb200, h100"):
        get_gpu("a100", GPUS)


def test_the_ideal_endpoint_costs_nothing():
    schedule = build("allreduce", "ring", 8, 1 << 20)
    ideal, _ = call_costs(schedule, STAR, CAT, GPUS["ideal"])
    assert (ideal.start_s, ideal.step_s, ideal.efficiency, ideal.reduce_s_per_byte) == \
        (0.0, 0.0, 1.0, 0.0)
    assert model_time_s(schedule, STAR, CAT, ideal) == model_time_s(schedule, STAR, CAT, FREE)


def test_nccl_picks_ll_for_small_calls_and_simple_for_large_ones():
    picks = {size: call_costs(build("allreduce", "ring", 8, size), STAR, CAT,
                              GPUS["h100"])[0].protocol
             for size in (1 << 10, 64 << 10, 64 << 20)}
    assert picks == {1 << 10: "LL", 64 << 10: "LL", 64 << 20: "Simple"}


def test_the_chosen_protocol_is_the_fastest_in_the_model():
    for size in (4 << 10, 1 << 20, 8 << 20, 256 << 20):
        schedule = build("allreduce", "ring", 8, size)
        chosen, chosen_s = call_costs(schedule, STAR, CAT, GPUS["h100"])
        every = [model_time_s(schedule, STAR, CAT, costs(GPUS["h100"], p))
                 for p in GPUS["h100"].protocols]
        assert model_time_s(schedule, STAR, CAT, chosen) == min(every) == chosen_s


def test_the_model_adds_launch_steps_and_protocol_bytes():
    schedule = build("allreduce", "ring", 8, 16 << 20)
    links = model_time_s(schedule, STAR, CAT, FREE)
    simple = costs(GPUS["h100"], "Simple")
    steps = len(schedule.steps)
    want = simple.start_s + steps * simple.step_s
    # the bandwidth term grows by 1/efficiency, the latency term does not
    latency = model_time_s(build("allreduce", "ring", 8, 8), STAR, CAT, FREE)
    want += latency + (links - latency) / simple.efficiency
    assert model_time_s(schedule, STAR, CAT, simple) == pytest.approx(want, rel=1e-3)


def test_a_slow_reduction_sets_the_step_time():
    schedule = build("allreduce", "ring", 8, 16 << 20)
    slow = endpoints.CallCosts("Simple", 0.0, 0.0, 1.0, 1e-9)  # 1 GB/s of reduction
    reduce_steps = sum(any(m.reduce for m in step) for step in schedule.steps)
    floor = reduce_steps * (16 << 20) / 8 * 1e-9
    assert model_time_s(schedule, STAR, CAT, slow) >= floor
    assert model_time_s(schedule, STAR, CAT, FREE) < floor / 10


@pytest.mark.parametrize("efficiency", [1.0, 0.822, 0.5])
def test_padding_fills_each_frame_to_the_protocols_share(efficiency):
    payload = frame_payload(65000)
    data = frame_data(payload, efficiency)
    assert data % 8 == 0 and data + padding(data, efficiency) <= payload + 8
    assert data / (data + padding(data, efficiency)) == pytest.approx(efficiency, abs=1e-4)


def test_ll_doubles_the_bytes_on_the_wire():
    payload = frame_payload(65000)
    length = 10 * frame_data(payload, 0.5)
    assert wire_bytes(length, payload, 0.5) == 2 * length + 10 * FRAME_OVERHEAD
    assert wire_bytes(length, payload) < wire_bytes(length, payload, 0.5)


def test_the_expected_link_bytes_carry_the_padding():
    schedule = build("allreduce", "ring", 8, 1 << 20)
    plain = sum(wire_loads(STAR, schedule, frame_payload(65000)).values())
    padded = sum(wire_loads(STAR, schedule, frame_payload(65000), 0.5).values())
    assert padded > 1.9 * plain


def test_routes_give_each_senders_delay_rates_and_arriving_link():
    topo = parse("racks:2x2", "nvlink4", spine_link="optical-800g")
    routes = routes_to(topo, CAT, 0)
    assert set(routes) == {1, 2, 3}
    same_rack, other_rack = routes[1], routes[2]
    nvlink, optical = CAT["nvlink4"], CAT["optical-800g"]
    assert same_rack.rate_bps == nvlink.rate_gbps * 1e9
    assert other_rack.rate_bps == optical.rate_gbps * 1e9  # the spine is the bottleneck
    assert other_rack.delay_s > same_rack.delay_s > 0
    hop = nvlink.delay_ns(topo.links[0].length_m) * 1e-9
    assert same_rack.delay_s == pytest.approx(2 * hop)
    assert all(math.isfinite(r.delay_s) for r in routes.values())
    # Every sender's frames arrive on rank 0's one link, at that link's rate.
    (own,) = [i for i, cable in enumerate(topo.links) if topo.gpus[0] in (cable.a, cable.b)]
    assert {(r.link, r.link_rate_bps) for r in routes.values()} == \
        {(own, nvlink.rate_gbps * 1e9)}
    # Agents pace the rack's two links; the spine's links only the kernel does.
    assert same_rack.paced and not other_rack.paced


@pytest.mark.parametrize("spec", ["star:8", "ring:4"])
def test_routes_of_at_most_two_links_are_paced_by_agents_end_to_end(spec):
    topo = parse(spec, "copper-800g")
    assert all(r.paced for dst in range(len(topo.gpus)) for r in routes_to(topo, CAT, dst).values())


def test_on_a_ring_frames_arrive_on_the_link_from_their_side():
    topo = parse("ring:4", "copper-800g")
    routes = routes_to(topo, CAT, 0)
    def touching(rank):
        return {i for i, c in enumerate(topo.links) if topo.gpus[rank] in (c.a, c.b)}
    assert routes[1].link in touching(0) & touching(1)
    assert routes[3].link in touching(0) & touching(3)
    assert routes[1].link != routes[3].link


@pytest.mark.parametrize("netem,bpf,says", [
    (True, True, "Link delay: netem delays each frame in the kernel."),
    (False, True, "Link delay: held by the receiving agents (no netem here)"),
    (False, False, "Bit-error loss is NOT emulated"),
])
def test_check_says_how_link_delay_is_emulated(netem, bpf, says):
    from emulator.kernel.capabilities import Capabilities

    caps = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=netem,
                        bpf_loss=bpf, ovs=False)
    report = caps.report()
    assert says in report
    assert ("held by the receiving agents" in report) == (not netem)


def test_an_emulation_states_its_delay_mechanism_and_holds_only_without_netem():
    from emulator.emulation import Emulation
    from emulator.kernel.capabilities import Capabilities

    for netem in (True, False):
        caps = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=netem,
                            bpf_loss=True, ovs=False)
        emu = Emulation("star:4", "optical-800g", length_m=100, capabilities=caps)
        routes = emu.routes()
        # from the other GPUs and the NVLS switch's agent (participant 4), and to it
        assert len(routes) == 5 and set(routes[0]) == {1, 2, 3, 4}
        assert set(routes[4]) == {0, 1, 2, 3}
        route = routes[0][1]
        assert route.rate_bps == route.link_rate_bps == 800e9
        assert (route.delay_s > 0) == (not netem)  # netem delays frames itself
        assert emu.delay_mechanism.startswith("netem" if netem else "held by the receiving")
        assert emu.not_emulated == []
