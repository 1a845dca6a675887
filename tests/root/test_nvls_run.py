"""NVLS on a real network: the switch's agent reduces and multicasts over the shaped links,
the data is right on lossy links, and a GPU's cable to the switch going down mid-call is
repaired (root only)."""

from __future__ import annotations

import pytest

from emulator import Emulation, NetwallError
from emulator.models.faults import parse as parse_fault
from tests.root.test_engine import lossy_profile

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def star():
    with Emulation("star:4", "nvlink4", dilation=20000) as emu:
        yield emu


@pytest.mark.parametrize("collective", ["allreduce", "reducescatter", "allgather"])
def test_the_switch_reduces_and_multicasts_exactly_the_schedules_bytes(star, collective):
    result = star.run(collective, "nvls", size=1 << 20, iters=2, prove=False, op="max",
                      dtype="int32")
    assert result.check is True and result.algorithm == "nvls"
    assert result.retransmitted_bytes == 0
    assert {link.link for link in result.links} >= {"nvs0->gpu0", "gpu0->nvs0"}
    for link in result.links:  # every copy of the multicast crossed its own port's shaping
        assert link.bytes == link.expected_bytes, link


def test_nccls_choice_runs_nvls_for_a_large_all_reduce(star):
    assert star.spec.schedule("allreduce", None, 64 << 20).algorithm == "ring"  # 4 GPUs
    eight = Emulation("star:8", "nvlink4", dilation=20000).spec  # choosing builds nothing
    assert eight.schedule("allreduce", None, 256 << 10).algorithm == "ring"
    assert eight.schedule("allreduce", None, 256 << 20).algorithm == "nvls"
    result = star.run("allreduce", None, size=1 << 20, iters=1, prove=False)
    assert result.algorithm == "ring" and result.check is True


def test_every_link_of_the_switch_keeps_the_wires_pace_at_a_large_dilation():
    """The switch's agent sends to eight links through one port: when they shared one
    link's frames in flight, links fell behind by a share of each 2 MiB slice that the
    bucket (10 ms of the dilated rate) could not catch up: +20-27% at D 5000."""
    with Emulation("star:8", "optical-800g", dilation=5000) as emu:
        result = emu.run("allreduce", "nvls", size=64 << 20, iters=1, warmup=0, check=False,
                         prove=False)
    assert result.algorithm == "nvls" and result.retransmitted_bytes == 0
    assert abs(result.model_error) < 0.02, result.model_error


def test_lost_frames_to_and_from_the_switch_are_repaired(tmp_path):
    profile = lossy_profile(tmp_path, 0.03)
    with Emulation("star:4", "lossy-copper", profiles=[profile], dilation=1000) as emu:
        result = emu.run("allreduce", "nvls", size=2 << 20, iters=2, prove=False)
    assert result.check is True
    assert result.retransmitted_bytes > 0
    resent = {link.link.split("->")[0] for link in result.links
              if link.bytes > link.expected_bytes}
    assert resent  # lost frames crossed their link and their repairs crossed it again


def test_a_gpu_cable_to_the_switch_down_mid_call_is_repaired():
    with Emulation("star:4", "nvlink4", dilation=20000) as emu:
        base = emu.run("allreduce", "nvls", size=4 << 20, iters=1, prove=False)
        outage = 3 * base.time_s
        hit = emu.run("allreduce", "nvls", size=4 << 20, iters=1, faults=[
            parse_fault(f"down:gpu2--nvs0@{base.time_s / 4 * 1e6:.2f}us"
                        f"+{outage * 1e6:.2f}us")])
    assert hit.check is True
    assert hit.time_s > outage  # the switch could not finish while gpu2's cable was down
    assert [e.state.split(":")[0] for e in hit.faults][:2] == ["down", "up"]


def test_nvls_where_no_switch_reduces_is_one_line():
    with Emulation("ring:3", "nvlink4", dilation=20000) as emu, \
            pytest.raises(NetwallError, match="NVLS needs every rank .* has none"):
        emu.run("allreduce", "nvls", size=1 << 20, iters=1)
