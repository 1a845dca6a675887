"""Agents that wake on time: real-time scheduling for the agents, where the kernel allows it.

At each dependent step of a collective every agent becomes runnable at once, and on a host
with fewer cores than GPUs the last one runs several time slices late: that lateness, not
work, is most of the host's share of a call (docs/architecture.md, "The data plane").
Under SCHED_FIFO an agent that wakes runs at once, ahead of every normal task, until it
blocks again, which an agent does within microseconds (it waits in select for its next
frame). Agents block between batches, so the policy only matters while a batch runs.

The kernel's real-time throttling is the safety net: with it on (sched_rt_runtime_us below
sched_rt_period_us, 950 ms of every second by default) an agent that spun by mistake leaves
the rest of the machine 5% of each core. Without that net, or where the kernel refuses
(no CAP_SYS_NICE, a container whose cgroup has no real-time budget), agents stay under the
normal policy and the run says so. NETWALL_AGENT_SCHED=normal turns the policy off (to
measure what it buys).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The agents' SCHED_FIFO priority: above every normal task, below the kernel's own
#: real-time threads (interrupt threads run at 50), so a packet's softirq still preempts them.
PRIORITY = 10
ENV = "NETWALL_AGENT_SCHED"
_PROC = Path("/proc/sys/kernel")


@dataclass(frozen=True)
class Policy:
    """What the agents are to run under, and why."""

    realtime: bool
    why: str

    def describe(self) -> str:
        return f"SCHED_FIFO {PRIORITY}" if self.realtime else f"normal ({self.why})"


def decide(asked: str | None, rt_runtime_us: int | None, rt_period_us: int | None) -> Policy:
    """Real time only when asked (the default) and the kernel's throttling is on to catch an
    agent that spins."""
    if (asked or "fifo") == "normal":
        return Policy(False, f"{ENV}=normal")
    if asked not in (None, "", "fifo"):
        return Policy(False, f"{ENV}={asked!r} is neither fifo nor normal")
    if rt_runtime_us is None or rt_period_us is None:
        return Policy(False, "the kernel's real-time throttling cannot be read")
    if rt_runtime_us < 0 or rt_runtime_us >= rt_period_us:
        return Policy(False, "the kernel's real-time throttling is off, so a spinning agent "
                             "could starve the machine")
    return Policy(True, "")


def _read_int(name: str) -> int | None:
    try:
        return int((_PROC / name).read_text())
    except (OSError, ValueError):
        return None


def wanted() -> Policy:
    """The policy this machine and environment call for."""
    return decide(os.environ.get(ENV), _read_int("sched_rt_runtime_us"),
                  _read_int("sched_rt_period_us"))


def apply(policy: Policy) -> Policy:
    """Put the calling process under `policy`; what it got (a refusal falls back to normal)."""
    if not policy.realtime:
        return policy
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except OSError as e:  # EPERM: no CAP_SYS_NICE, or a cgroup without real-time budget
        return Policy(False, f"the kernel refused real-time scheduling: {e.strerror}")
    return policy


def of_process(pid: int) -> Policy:
    """The policy a running process has (the controller reports what its agents got)."""
    try:
        realtime = os.sched_getscheduler(pid) == os.SCHED_FIFO
    except OSError as e:
        return Policy(False, f"unknown: {e.strerror}")
    return Policy(True, "") if realtime else Policy(False, "not granted")


def report(pids: list[int]) -> Policy:
    """What the agents `pids` run under, read back from the kernel, with the reason where
    they did not get real time."""
    got = [of_process(pid).realtime for pid in pids]
    if got and all(got):
        return Policy(True, "")
    want = wanted()
    if not want.realtime:
        return want
    return Policy(False, f"the kernel refused real-time scheduling to {got.count(False)} of "
                         f"{len(got)} agents")
