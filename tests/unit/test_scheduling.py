"""The agents' scheduling policy (traffic.scheduling): real time only with the kernel's
throttling as a safety net, and a clean fall-back wherever it is refused."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from traffic import scheduling
from traffic.scheduling import Policy, decide

ROOT = Path(__file__).resolve().parents[2]


def test_real_time_by_default_where_throttling_is_on():
    assert decide(None, 950_000, 1_000_000) == Policy(True, "")
    assert decide("fifo", 950_000, 1_000_000).realtime


@pytest.mark.parametrize("runtime", [-1, 1_000_000, 2_000_000])
def test_no_real_time_without_the_throttling_net(runtime):
    policy = decide(None, runtime, 1_000_000)
    assert not policy.realtime and "throttling is off" in policy.why


def test_no_real_time_when_throttling_cannot_be_read():
    assert not decide(None, None, 1_000_000).realtime
    assert not decide(None, 950_000, None).realtime


def test_asked_for_normal_or_for_nonsense():
    assert decide("normal", 950_000, 1_000_000) == Policy(False, "NETWALL_AGENT_SCHED=normal")
    odd = decide("rr", 950_000, 1_000_000)
    assert not odd.realtime and "'rr'" in odd.why


def test_described_for_the_settings():
    assert decide(None, 950_000, 1_000_000).describe() == f"SCHED_FIFO {scheduling.PRIORITY}"
    assert decide("normal", 950_000, 1_000_000).describe() == \
        "normal (NETWALL_AGENT_SCHED=normal)"


def test_a_refusal_falls_back_to_normal():
    """A process without CAP_SYS_NICE and no RLIMIT_RTPRIO is refused by the kernel itself
    (as root: the test drops to nobody for the one call)."""
    code = ("from traffic import scheduling; "
            "print(scheduling.apply(scheduling.Policy(True, '')).describe())")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
        if os.geteuid() == 0 and shutil.which("setpriv") else []
    if os.geteuid() == 0 and not prefix:
        pytest.skip("needs setpriv to drop root for the call")
    out = subprocess.run([*prefix, sys.executable, "-c", code], cwd=ROOT, text=True,
                         capture_output=True, check=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0)))
    assert out.stdout.strip() == \
        "normal (the kernel refused real-time scheduling: Operation not permitted)"


def test_normal_is_applied_as_a_no_op(monkeypatch):
    monkeypatch.setattr(os, "sched_setscheduler", lambda *_: pytest.fail("must not be called"))
    assert scheduling.apply(Policy(False, "x")) == Policy(False, "x")


def test_the_policy_of_a_running_process_is_read_back():
    assert not scheduling.of_process(os.getpid()).realtime  # the test runs under normal
    assert "unknown" in scheduling.of_process(2**22 + 12345).why  # no such process


def test_the_report_reads_the_agents_back(monkeypatch):
    monkeypatch.setenv(scheduling.ENV, "normal")
    assert scheduling.report([os.getpid()]) == Policy(False, "NETWALL_AGENT_SCHED=normal")
    if os.geteuid() != 0:
        return
    monkeypatch.setenv(scheduling.ENV, "fifo")
    with subprocess.Popen(["sleep", "30"]) as agent:
        try:
            assert not scheduling.report([agent.pid, os.getpid()]).realtime
            os.sched_setscheduler(agent.pid, os.SCHED_FIFO, os.sched_param(scheduling.PRIORITY))
            assert scheduling.report([agent.pid]) == Policy(True, "")
        finally:
            agent.kill()
