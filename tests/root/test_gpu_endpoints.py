"""GPU endpoints and link delay on real networks (root only): the agents hold frames for their
link's delay where the kernel has no netem, and pay a GPU's launch, step and protocol costs."""

from __future__ import annotations

import dataclasses

import pytest

from emulator import Emulation
from emulator.kernel.capabilities import probe
from emulator.models.alphabeta import route_latency_s

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def without_netem():
    """This kernel's capabilities less netem: the agents hold link delay on every kernel,
    so the test measures the same mechanism in CI and in the netem VM."""
    return dataclasses.replace(probe(), netem=False)


def _ping_pong_s(length_m: float, caps) -> tuple[float, float, float]:
    """A 2-rank ring all-reduce of 8 bytes: two dependent transfers, one each way."""
    with Emulation("pair", "optical-800g", length_m=length_m, dilation=5000, gpu="ideal",
                   capabilities=caps) as emu:
        assert "held by the receiving agents" in emu.delay_mechanism
        result = emu.run("allreduce", "ring", size=8, iters=5, prove=False)
        one_way = route_latency_s(emu.topology, emu.catalogue, 0, 1)
    assert result.check is True
    return result.time_s, result.model_time_s, one_way


def test_link_delay_is_emulated_without_netem(without_netem):
    short, _, short_way = _ping_pong_s(1.0, without_netem)
    long, model, long_way = _ping_pong_s(400.0, without_netem)
    assert long_way - short_way > 1.9e-6  # 400 m of fibre: about 2 us each way
    # the round trip grows by twice the one-way delay it added, and matches the model
    assert long - short == pytest.approx(2 * (long_way - short_way), rel=0.15)
    assert long == pytest.approx(model, rel=0.1)


def test_a_gpu_pays_launch_step_and_protocol_costs(without_netem):
    times, links = {}, {}
    for gpu in ("ideal", "h100"):
        with Emulation("star:4", "copper-800g", dilation=20000, gpu=gpu,
                       capabilities=without_netem) as emu:
            result = emu.run("allreduce", "ring", size=64 << 10, iters=3, prove=False)
        assert result.check is True
        # a 16 KB step of the ideal endpoint is a few wake-ups of the host: looser
        assert result.model_error == pytest.approx(0, abs=0.05 if gpu == "h100" else 0.1)
        times[gpu], links[gpu] = result, sum(link.bytes for link in result.links)
        for link in result.links:  # the protocol's padding is on the wire, to the byte
            assert link.bytes == link.expected_bytes, link
    assert times["h100"].protocol == "LL" and times["ideal"].protocol == "Simple"
    added = times["h100"].time_s - times["ideal"].time_s
    assert added == pytest.approx(times["h100"].model_time_s - times["ideal"].model_time_s,
                                  rel=0.1)
    assert added > 20e-6  # NCCL's launch and latency, on every call
    assert links["h100"] > 1.9 * links["ideal"]  # LL: 8 bytes of flags per 8 of data
