"""Two-fabric clusters on a real network: the per-link byte counters show traffic inside a
domain never touching a NIC, and traffic between domains never touching a domain switch."""

from __future__ import annotations

import pytest

from emulator import Emulation
from traffic.trace import Call

pytestmark = pytest.mark.root


def _calls(groups: list[tuple[int, ...]], collective: str) -> list[Call]:
    return [Call(id=i, collective=collective, algorithm=None, bytes=len(g) * 64 * 1024,
                 group=g, comm=f"c{i}", stream=f"s{i}") for i, g in enumerate(groups)]


def _carried(result) -> dict[str, int]:
    return {link.link: link.bytes for link in result.links if link.bytes}


def _scale_up(name: str) -> bool:
    return "nvs" in name


def test_each_fabric_carries_only_its_traffic():
    with Emulation("cluster:2x4", "nvlink5", spine_link="optical-800g", gpu="ideal") as emu:
        inside = emu.replay(_calls([(0, 1, 2, 3), (4, 5, 6, 7)], "allreduce"), check=True,
                            prove=False, name="inside")
        across = emu.replay(_calls([(0, 4), (1, 6), (2, 7), (3, 5)], "alltoall"), check=True,
                            prove=False, name="across")
    carried = _carried(inside)
    assert all(call.check for call in inside.calls)
    assert carried and all(_scale_up(name) for name in carried), carried
    assert {f"gpu{r}->nvs{r // 4}" for r in range(8)} <= set(carried)  # every GPU sent
    carried = _carried(across)
    assert all(call.check for call in across.calls)
    assert carried and not any(_scale_up(name) for name in carried), carried
    assert {"gpu1->leaf1", "leaf1->spine0", "spine0->leaf2", "leaf2->gpu6",
            "gpu0->leaf0", "leaf0->gpu4"} <= set(carried)
    assert not any(name.startswith("leaf0->spine0") for name in carried)  # rail 0 stays
