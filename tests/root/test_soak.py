"""A soak test: many consecutive runs leak no interfaces, namespaces, processes or fds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emulator import Emulation
from emulator.kernel.capabilities import probe

pytestmark = pytest.mark.root
RUNS = 40  # one leaked fd, link or namespace per run would show in the first


def namespaces() -> set[int]:
    """Network namespaces alive on the machine (one per distinct /proc/*/ns/net inode)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found.add(os.stat(proc / "ns" / "net").st_ino)
            except OSError:
                continue
    return found


def test_many_runs_leak_nothing():
    caps = probe()
    Emulation("pair", "copper-800g", capabilities=caps).start().stop()  # warm imports, caches
    fds = len(os.listdir("/proc/self/fd"))
    links = set(os.listdir("/sys/class/net"))
    spaces = namespaces()
    for _ in range(RUNS):
        with Emulation("pair", "copper-800g", dilation=100, capabilities=caps) as emu:
            result = emu.run("allreduce", "ring", size=64 * 1024, iters=1, warmup=0,
                             prove=False)
            assert result.check is True
    assert len(os.listdir("/proc/self/fd")) == fds
    assert set(os.listdir("/sys/class/net")) == links
    assert namespaces() <= spaces  # (other processes' may come and go; none of ours stay)
