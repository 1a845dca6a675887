"""Shared fixtures. Tests under tests/root (marked `root`) build real networks; each is checked
for leftovers.

A root test that leaves a netwall interface, a Mininet host shell, an agent or a state record
behind fails, and the leftovers are removed so the next test starts clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from emulator.models.dilation import link_shape
from emulator.models.plan import FRAME_BYTES
from emulator.models.profiles import catalogue

HERE = Path(__file__).resolve().parent
CAN_BUILD = os.geteuid() == 0 and shutil.which("mnexec") and shutil.which("iperf3")


def pytest_collection_modifyitems(config, items):
    """Tests say what they need: every test under tests/root is marked `root` and none
    elsewhere is, so `pytest tests/unit` never needs root. Without root, root tests skip."""
    for item in items:
        in_root = HERE / "root" in Path(item.path).resolve().parents
        if ("root" in item.keywords) != in_root:
            raise pytest.UsageError(
                f"{item.nodeid}: tests under tests/root are marked root, and only they are")
    if CAN_BUILD:
        return
    skip = pytest.mark.skip(reason="needs root, Mininet (mnexec) and iperf3")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def leftovers() -> list[str]:
    """netwall's traces on this machine: root-namespace interfaces, host shells, agents."""
    out = []
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if "-eth" in name or "02:4e:" in line:
            out.append(f"interface {name}")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"mininet:" in cmdline or b"traffic.agent" in cmdline:
                out.append(f"process {proc.name}: {cmdline[:60]!r}")
    state_dir = Path(os.environ.get("NETWALL_STATE_DIR", "/run/netwall"))
    if state_dir.is_dir():
        out += [f"state record {p.name}" for p in state_dir.glob("*.json")]
    return out


@pytest.fixture(autouse=True)
def no_leftovers(request):
    if "root" not in request.keywords:
        yield
        return
    before = leftovers()
    yield
    after = [x for x in leftovers() if x not in before]
    if after:
        from emulator.kernel import records as state

        state.clean()
        pytest.fail(f"test left behind: {after}")


def netwall(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the netwall command as a user would, in a child process."""
    return subprocess.run([sys.executable, "-m", "emulator.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=Path(__file__).resolve().parent.parent)


@pytest.fixture
def copper_shape():
    """The shaping of a copper-800g link at dilation 2000, with a recognisable queue limit."""
    profile = catalogue()["copper-800g"]
    return replace(link_shape(profile.rate_gbps, 0, 0, profile.queue_bytes, dilation=2000,
                              frame_bytes=FRAME_BYTES), limit_packets=77)
