"""Interrupted and killed runs: nothing may be left behind (root only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.kernel import records as state
from tests.conftest import leftovers, netwall

pytestmark = pytest.mark.root
PROJECT = Path(__file__).resolve().parents[2]
# No warm-up: the first program is the long one, so a kill lands in the middle of a call.
# Agents that lose their controller between programs exit at once (stdin closes); in a
# call they finish it first, and that is what `netwall clean` must catch.
LONG_RUN = ["run", "--topology", "star:4", "--link", "copper-800g", "--size", "64M",
            "--iters", "100", "--warmup", "0", "--dilation", "2000"]


def start_long_run(stage: str = "measuring") -> subprocess.Popen:
    """A run that would take minutes, returned once its agents are working ("measuring"),
    or once its network is being built ("building": the agents' fork server may be up).
    It runs in a session of its own, as a command started from a terminal does, with
    SIGINT's default action (a test runner may have inherited it ignored)."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", *LONG_RUN], cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    record = state.STATE_DIR / f"{proc.pid}-0.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if stage == "building" and json.loads(record.read_text())["hosts"]:
                return proc
            if json.loads(record.read_text())["agents"]:
                time.sleep(2)  # past loading the program (~0.5 s here), into the first call
                return proc
        except (OSError, ValueError):
            pass
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the run did not start its agents in 60 s")


def wait_clean(timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_tears_everything_down(signum):
    proc = start_long_run()
    assert any("mininet:nvs0" in x for x in leftovers())
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert wait_clean() == []


@pytest.mark.parametrize("stage", ["building", "measuring"])
def test_ctrl_c_reaches_the_whole_process_group_and_says_one_line(stage):
    """A terminal's Ctrl-C signals every process of the group: controller, fork server and
    agents. Only the controller speaks: no BrokenPipeError or KeyboardInterrupt traceback."""
    proc = start_long_run(stage)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "netwall: interrupted; the emulated network was " \
                                           "removed", err
    assert "Traceback" not in err and "Error" not in err, err
    assert wait_clean() == []


def test_clean_removes_what_a_killed_run_left_and_is_idempotent():
    proc = start_long_run()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    # Agents outlive their controller (they finish their call first), and so do the
    # namespaces they hold; the record names them.
    assert any("traffic.agent" in x for x in leftovers())
    done = netwall("clean")
    assert done.returncode == 0 and "killed agent process" in done.stdout
    assert wait_clean() == []
    again = netwall("clean")
    assert again.returncode == 0 and again.stdout.strip() == "nothing to clean"


def test_next_run_cleans_after_a_killed_one():
    proc = start_long_run()
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    done = netwall("run", "--topology", "star:4", "--link", "copper-800g", "--size", "64K",
                   "--iters", "1")
    assert done.returncode == 0, done.stderr
    assert "removed what an earlier, killed run left" in done.stderr
    assert wait_clean() == []
