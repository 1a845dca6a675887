"""The programs a run's request becomes (emulator.proving.Prover.run), with fake batches: the
verified calls are the warm-up's first, so a size costs a program less, except where the user
asked for no warm-up. No network: each batch is a record of what ran."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emulator import Emulation
from emulator.batches import ProbeBatch, TimedBatch
from emulator.kernel.capabilities import Capabilities
from emulator.models.energy import EnergyReport
from emulator.proving import Prover

CAPS = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=False, bpf_loss=True,
                    ovs=False)
D = 1000.0


class Batches:
    """What ran, in order: (kind, dilation, calls, verified calls), and the checks' verdict."""

    def __init__(self, right: bool = True) -> None:
        self.ran: list[tuple[str, float, int, int]] = []
        self.right = right

    def calls(self, plan, request, count, checked=0):
        self.ran.append(("calls", plan.dilation, count, checked))
        if not count:
            return None
        return SimpleNamespace(checks={i: self.right for i in range(checked)})

    def timed(self, plan, request):
        self.ran.append(("timed", plan.dilation, request.iters, 0))
        return TimedBatch(1e-4, 1.0, [], {}, [(0, 100)], [(10, 200)], 0, 0, [], [],
                          EnergyReport.__new__(EnergyReport), plan.dilation,
                          [0.1] * request.iters, None)

    def probe(self, plan, request, count):
        self.ran.append(("probe", plan.dilation, count, 0))
        return ProbeBatch(1e-4, [0.2] * count)


@pytest.fixture
def spec():
    return Emulation("star:4", "copper-800g", capabilities=CAPS, dilation=D).spec


def prover(batches: Batches) -> Prover:
    pricing = SimpleNamespace(dilation=lambda cost, once=False: D)
    return Prover(batches, lambda d: SimpleNamespace(dilation=d), pricing, 0.02, chase=True)


def test_the_verified_call_is_the_warm_ups_first_so_a_size_is_two_programs_and_a_probe(spec):
    batches = Batches()
    request = spec.run_request("allreduce", "ring", 1 << 20, iters=5, warmup=1, check_iters=1)
    _, right = prover(batches).run(request, lossy=False)
    assert right is True
    assert batches.ran == [("calls", D / 10, 1, 1), ("timed", D, 5, 0),
                           ("probe", 2 * D, 1, 0)]


def test_more_verified_calls_than_warm_ups_run_that_many_before_the_timed_ones(spec):
    batches = Batches()
    request = spec.run_request("allreduce", "ring", 1 << 20, iters=5, warmup=2, check_iters=3)
    prover(batches).run(request, lossy=False)
    assert batches.ran[0] == ("calls", D / 10, 3, 3)
    request = spec.run_request("allreduce", "ring", 1 << 20, iters=5, warmup=4, check_iters=1)
    prover(batches).run(request, lossy=False)
    assert batches.ran[3] == ("calls", D / 10, 4, 1)


def test_with_no_warm_up_the_timed_calls_run_cold_and_the_verified_ones_follow(spec):
    batches = Batches(right=False)
    request = spec.run_request("allreduce", "ring", 1 << 20, iters=5, warmup=0, check_iters=2)
    _, right = prover(batches).run(request, lossy=False)
    assert right is False  # a wrong result found after the timed calls is reported
    assert [kind for kind, *_ in batches.ran] == ["calls", "timed", "probe", "calls"]
    assert batches.ran[0][2] == 0 and batches.ran[-1] == ("calls", D / 10, 2, 2)


def test_a_wrong_result_in_the_warm_up_is_reported_and_no_check_means_none(spec):
    request = spec.run_request("allreduce", "ring", 1 << 20, iters=5, warmup=1, check_iters=1)
    assert prover(Batches(right=False)).run(request, lossy=False)[1] is False
    unchecked = spec.run_request("allreduce", "ring", 1 << 20, iters=5, warmup=1,
                                 check=False)
    batches = Batches()
    assert prover(batches).run(unchecked, lossy=False)[1] is None
    assert batches.ran[0] == ("calls", D / 10, 1, 0)
