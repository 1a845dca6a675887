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


def _held_namespaces(inodes: set[int], by: float) -> list[str]:
    """Processes started by `by` (CLOCK_BOOTTIME, s) still in one of these network
    namespaces: a namespace that outlived its run. (Once one is gone, the kernel may give
    its inode to another run's new namespace, whose processes start later.)"""
    ticks = by * os.sysconf("SC_CLK_TCK")
    return [proc.name for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and state.netns(proc.name) in inodes
            and (state.start_time(int(proc.name)) or ticks + 1) <= ticks]


@pytest.mark.parametrize("gap", [0.0, 0.2, 1.0])
def test_a_second_ctrl_c_during_teardown_leaves_nothing(gap):
    """Two SIGINTs `gap` s apart: the second lands in the teardown the first began (the
    agents' goodbye, the kill, the record). Nothing the record named may survive it, and
    the record goes only once all of it is gone."""
    proc = start_long_run()
    path = state.STATE_DIR / f"{proc.pid}-0.json"
    record = json.loads(path.read_text())
    pids = [p for p, *_ in record["hosts"] + record["agents"]]
    inodes = {ns for _, _, ns in record["hosts"]}
    # 4 GPUs and their switch, and an agent in each (the switch's: it takes part in NVLS
    # calls)
    assert len(pids) == 10 and len(inodes) == 5
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    ended = time.clock_gettime(time.CLOCK_BOOTTIME)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["netwall: interrupted; the emulated network was removed"]
    assert [p for p in pids if state.start_time(p) is not None] == []
    assert _held_namespaces(inodes, ended) == []
    assert not path.exists()


def test_clean_signals_only_what_a_stale_record_proves(tmp_path):
    """A stale record names decoys whose command lines say `mininet:`: one whose pid looks
    recycled (another start time), one in the host's own namespace, one in a namespace the
    record never made. Only the process the record really made dies, with whatever else
    runs in its namespace."""
    def spawn(name: str, netns: bool) -> subprocess.Popen:
        unshare = ["unshare", "--net"] if netns else []
        return subprocess.Popen([*unshare, "bash", "-c", f'exec -a "mininet:{name}" sleep 60'])

    recycled, own_ns, foreign, genuine = (spawn("gpu0", True), spawn("gpu1", False),
                                          spawn("gpu2", True), spawn("gpu3", True))
    procs = [recycled, own_ns, foreign, genuine]
    try:
        deadline = time.monotonic() + 10
        while not all(b"mininet:" in Path(f"/proc/{p.pid}/cmdline").read_bytes() for p in procs):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        guest = subprocess.Popen(["nsenter", "-t", str(genuine.pid), "-n", "sleep", "60"])
        procs.append(guest)
        while state.netns(guest.pid) != state.netns(genuine.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        other = subprocess.Popen(["unshare", "--net", "true"])  # a namespace that is gone
        other.wait()

        def proof(p, start_shift=0, ns=None):
            return [p.pid, state.start_time(p.pid) + start_shift, ns or state.netns(p.pid)]

        record = {"pid": own_ns.pid, "start": state.start_time(own_ns.pid) - 1,  # recycled
                  "hosts": [proof(recycled, -5), proof(own_ns), proof(foreign, 0, 12345),
                            proof(genuine)],
                  "agents": [[own_ns.pid, state.start_time(own_ns.pid)]]}
        (tmp_path / f"{own_ns.pid}-0.json").write_text(json.dumps(record))
        done = subprocess.run([sys.executable, "-m", "emulator.cli.main", "clean"],
                              capture_output=True, text=True, cwd=PROJECT, timeout=60,
                              env=dict(os.environ, NETWALL_STATE_DIR=str(tmp_path)))
        assert done.returncode == 0, done.stderr
        assert f"killed host process {genuine.pid}" in done.stdout
        assert f"killed process {guest.pid} in a netwall namespace" in done.stdout
        for p in (genuine, guest):
            assert p.wait(timeout=10) == -signal.SIGKILL
        assert [p.poll() for p in (recycled, own_ns, foreign)] == [None, None, None]
        assert list(tmp_path.iterdir()) == []
    finally:
        for p in procs:
            p.kill()
            p.wait()
