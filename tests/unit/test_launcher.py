"""The launcher's side of a program (traffic.launcher.Agents.execute) with agents that are
pipes: which Go every rank is sent. No namespaces, no processes."""

from __future__ import annotations

import os

import pytest

from traffic.launcher import Agents, CallPlan
from traffic.protocol import (
    AgentStats,
    Go,
    Load,
    Loaded,
    Ready,
    Report,
    Setup,
    decode,
    encode,
)
from traffic.schedule import build

RANKS = 2


class PipeAgent:
    """An agent process as the launcher sees it (stdin, stdout): it answers each command
    at once and keeps the Go it was sent."""

    def __init__(self) -> None:
        read, self._write = os.pipe()
        self.stdout = os.fdopen(read, "rb", buffering=0)
        self.stdin = self
        self.gos: list[Go] = []

    def write(self, line: str) -> None:
        command = decode(line, Setup, Load, Go)
        if isinstance(command, Setup):
            reply = Ready(rank=command.rank)
        elif isinstance(command, Load):
            reply = Loaded()
        else:
            self.gos.append(command)
            reply = Report(calls={}, checks={}, stats=AgentStats())
        os.write(self._write, (encode(reply) + "\n").encode())

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.stdout.close()
        os.close(self._write)


@pytest.fixture
def agents():
    procs = [PipeAgent() for _ in range(RANKS)]
    yield Agents(procs, [{}] * RANKS, mtu=4096, rto=0.01, sndbuf=1 << 20,
                 routes=[{}] * RANKS, start_margin=0.0), procs
    for proc in procs:
        proc.close()


def program(gap_s: float) -> list[CallPlan]:
    schedule = build("allreduce", "ring", RANKS, 4096)
    return [CallPlan(0, schedule, (0, 1)), CallPlan(1, schedule, (0, 1), gap_s=gap_s)]


@pytest.mark.parametrize("gap_s, skip", [(0.0, False), (0.002, True)])
def test_only_a_program_with_compute_gaps_asks_its_agents_to_skip_them(agents, gap_s, skip):
    """Back-to-back calls have nothing to skip, and an agent told to skip tells the shared
    clock each time it turns busy or quiet (a lock, twice a step): 1 MiB runs read 11% more
    without it."""
    launcher, procs = agents
    launcher.execute(program(gap_s), timeout=1.0, expected_s=0.01, rto=0.01, dilation=1.0)
    assert [proc.gos[-1].skip for proc in procs] == [skip] * RANKS
    launcher.execute(program(gap_s), timeout=1.0, expected_s=0.01, rto=0.01, dilation=1.0,
                     skip=False)
    assert not any(proc.gos[-1].skip for proc in procs)
