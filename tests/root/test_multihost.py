"""One emulated cluster over several hosts, on one machine: namespace "hosts" joined by veth
NICs, each with its own sshd (emulator.remote.nshosts). The whole path runs: partition,
VXLAN tunnels, SSH control, gathering, teardown, a killed worker, unreachable hosts; after
each test no host keeps an interface, a process or a record of netwall's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from emulator.remote.nshosts import NamespaceHosts

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--link", "nvlink5", "--dilation", "2000", "--gpu", "ideal", "--size", "1M",
         "-n", "2", "--nic-gbps", "100", "--json"]


@pytest.fixture(scope="module")
def testbed():
    bed = NamespaceHosts(3)
    try:
        yield bed.start()
    finally:
        bed.stop()


@pytest.fixture(autouse=True)
def clean_hosts(testbed):
    yield
    left = testbed.leftovers()
    assert left == [], f"left on the hosts: {left}"


def netwall(testbed, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, **testbed.env))


def hosts(testbed, count: int) -> str:
    return ",".join(testbed.hosts.split(",")[:count])


def result(run: subprocess.CompletedProcess) -> dict:
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["results"][0]


def link_bytes(res: dict) -> dict[str, int]:
    return {link["link"]: link["bytes"] for link in res["links"]}


def test_racks_over_two_hosts_carry_what_one_host_carries(testbed):
    spread = result(netwall(testbed, "run", "--topology", "racks:2x4", *SMALL,
                            "--hosts", hosts(testbed, 2)))
    alone = result(netwall(testbed, "run", "--topology", "racks:2x4", *SMALL))
    assert spread["check"] is True and alone["check"] is True
    assert link_bytes(spread) == link_bytes(alone)
    assert all(link["bytes"] == link["expected_bytes"] for link in spread["links"])
    assert "rack1->spine0" in link_bytes(spread)  # the cable between the hosts carried data
    assert 0 < spread["fidelity"]["cpu_busy"] <= 1  # read from every host, the busiest kept


def test_a_ring_cut_by_metis_over_three_hosts(testbed):
    spread = result(netwall(testbed, "run", "--topology", "ring:6", *SMALL,
                            "--hosts", hosts(testbed, 3)))
    assert spread["check"] is True
    assert all(link["bytes"] == link["expected_bytes"] for link in spread["links"])


def long_run(testbed) -> tuple[subprocess.Popen, dict[int, int]]:
    """A run over two hosts that lasts, once both have built their share; with the pid of
    each host's worker as first seen (read once: a later read of /proc can miss it)."""
    run = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli.main", "run", "--topology", "racks:2x4",
         "--link", "nvlink5", "--dilation", "20000", "--gpu", "ideal", "--size", "16M",
         "-n", "50", "--nic-gbps", "100", "--hosts", hosts(testbed, 2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, **testbed.env))
    deadline = time.monotonic() + 60
    workers: dict[int, int] = {}
    while len(workers) < 2 or not all(list(testbed.state_dir(h).glob("*.json"))
                                      for h in (0, 1)):
        if time.monotonic() > deadline or run.poll() is not None:
            run.kill()
            pytest.fail(f"the run did not start: {run.communicate()[1]}")
        for host in (0, 1):
            workers.setdefault(host, testbed.worker(host))
            if workers[host] is None:
                del workers[host]
        time.sleep(0.05)
    time.sleep(1.5)  # agents started, calls running
    return run, workers


def test_a_killed_controller_leaves_nothing_on_any_host(testbed):
    run, _ = long_run(testbed)
    run.kill()  # SIGKILL: no teardown of its own; each worker sees its session end
    run.communicate()
    deadline = time.monotonic() + 20
    while testbed.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_killed_worker_is_one_line_and_leaves_nothing(testbed):
    run, workers = long_run(testbed)
    try:
        os.kill(workers[1], 9)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    lines = err.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, err
    assert "worker on host" in lines[0] and testbed.addresses[1] in lines[0]
    cleaned = netwall(testbed, "clean", "--hosts", hosts(testbed, 3))
    assert cleaned.returncode == 0 and cleaned.stdout.count("nothing to clean") == 3


def test_an_unreachable_host_is_one_line_and_leaves_nothing(testbed):
    dead = f"root@{testbed.addresses[1]}:2222"  # nothing listens there
    run = netwall(testbed, "run", "--topology", "racks:2x4", *SMALL,
                  "--hosts", f"{hosts(testbed, 1)},{dead}")
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"host {dead} is unreachable over SSH" in run.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["--hosts", "root@a b"], "bad host 'root@a b'"),
    (["--hosts", "a,a"], "named twice"),
    (["--hosts", "@/nonexistent/hosts"], "host file /nonexistent/hosts not found"),
    (["--hosts", "a,b,c", "--topology", "racks:2x4"], "fewer than the 3 hosts"),
    (["--hosts", "a,b", "--topology", "racks:2x4", "--nic-gbps", "1"],
     "more than its 1 Gb/s NIC: use --dilation 801 or more"),
])
def test_bad_host_lists_and_plans_are_refused_before_connecting(testbed, extra, message):
    args = ["run", "--link", "nvlink5", "--dilation", "100", "--size", "1M", *extra]
    run = netwall(testbed, *args)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr


def test_hosts_on_other_clocks_are_measured_and_corrected(testbed, monkeypatch):
    """As if each host had a kernel of its own: the controller measures every clock offset
    by round trips (here they are 0 within the uncertainty), and the run still checks and
    carries what it must."""
    from emulator import Emulation
    from emulator.remote import cluster
    from foundation.hostlist import parse_hosts

    monkeypatch.setattr(cluster, "boot_id", lambda: "another kernel")
    monkeypatch.setenv("NETWALL_SSH_CONFIG", testbed.env["NETWALL_SSH_CONFIG"])
    with Emulation("racks:2x4", "nvlink5", dilation=2000, gpu="ideal", nic_gbps=100,
                   hosts=parse_hosts(hosts(testbed, 2))) as emu:
        offsets = emu.network.offsets
        res = emu.run("allreduce", "ring", 1 << 20, iters=2, prove=False)
        uncertainty = emu.settings()["clock_uncertainty_s"]
    assert len(offsets) == 2 and all(u > 0 for _, u in offsets)
    assert all(abs(offset) <= u + 1e-3 for offset, u in offsets)  # one kernel: truly 0
    assert uncertainty == max(u for _, u in offsets)
    assert res.check is True
    assert all(link.bytes == link.expected_bytes for link in res.links)


def test_replay_and_a_fault_on_the_cable_between_hosts(testbed):
    """replay takes a host list too; a fault on the cross-host cable is struck on both of
    its hosts (each shapes its own end) and the data still checks."""
    two = hosts(testbed, 2)
    replay = netwall(testbed, "replay", "--workload", "dp-step", "--topology", "racks:2x4",
                     "--link", "nvlink5", "--dilation", "2000", "--gpu", "ideal",
                     "--scale", "0.0005", "--check", "--no-probe", "--json", "--nic-gbps", "100",
                     "--hosts", two)
    assert replay.returncode == 0, replay.stderr
    calls = json.loads(replay.stdout)["results"][0]["calls"]
    assert calls and all(call["check"] is True for call in calls)

    once = ["run", "--topology", "racks:2x4", *SMALL, "-n", "1", "--no-probe", "--hosts", two]
    base = result(netwall(testbed, *once))
    hit = result(netwall(testbed, *once, "--fault", "down:rack1--spine0@1us+20us"))
    assert hit["check"] is True and hit["faults_not_struck"] == []
    assert [f["event"] for f in hit["faults"]][:2] == ["down starts", "down ends"]
    assert hit["time_s"] > base["time_s"]  # 20 us without the only way between the racks


def test_a_campaign_spreads_over_the_hosts_of_netwall_hosts(testbed, tmp_path):
    """campaign run takes its host list from the environment, as every command does."""
    (tmp_path / "c.yaml").write_text(
        "name: spread\ndescription: racks over two hosts\ntopologies: ['racks:2x4']\n"
        "links: [nvlink5]\ncollectives: [allreduce]\nalgorithms: [ring]\nsizes: [1M]\n"
        "gpus: [ideal]\ndilation: 2000\nrepetitions: 1\niters: 2\nwarmup: 1\n")
    run = subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "campaign", "run", "c.yaml",
         "--nic-gbps", "100"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=dict(os.environ, **testbed.env, NETWALL_HOSTS=hosts(testbed, 2),
                 PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr
    exported = subprocess.run(
        [sys.executable, "-m", "emulator.cli.main", "export", "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    [record] = json.loads(exported.stdout)
    assert record["settings"]["hosts"] == hosts(testbed, 2).split(",")
    assert record["settings"]["cross_host_links"] == 1
    assert record["result"]["check"] is True


def test_the_live_view_reads_every_hosts_counters_and_agents(testbed):
    """run --view over two hosts: while the timed calls run, every cable of the cluster
    (each counted by the host of its sending end: the racks' cables on their hosts, the
    cable between the hosts on both) shows load, a queue and drops as read there, and the
    call and step in progress come from the agents of both hosts (8 ranks in a call)."""
    run = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli.main", "run", "--topology", "racks:2x4",
         "--link", "nvlink5", "--dilation", "2000", "--gpu", "ideal", "--size", "4M",
         "-n", "20", "-w", "0", "--no-check", "--no-probe", "--nic-gbps", "100",
         "--hosts", hosts(testbed, 2), "--view", "--view-hold", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, **testbed.env))
    try:
        while not (found := re.search(r"http://127\.0\.0\.1:[0-9]+/",
                                      line := run.stderr.readline())):
            assert line, run.stderr.read()
        frames = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(found[0] + "frame.json", timeout=10) as answer:
                    frame = json.load(answer)
            except OSError:
                break  # the command ended, its view with it
            if frame["activity"].get("running") and frame["activity"]["phase"] == "timed":
                frames.append(frame)
            time.sleep(0.1)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, err
    assert frames, "no frame while the timed calls ran"
    peak = {link["name"]: max(f["links"][i]["load_gbps"] for f in frames)
            for i, link in enumerate(frames[0]["links"])}
    assert len(peak) == 10 and all(load > 0 for load in peak.values()), peak
    assert all("queue" in link and link["drops"] == 0 for f in frames for link in f["links"])
    by_agents = [c for f in frames if f["activity"].get("by") == "agents"
                 for c in f["activity"]["running_calls"]]
    assert by_agents and max(c["ranks"] for c in by_agents) == 8, by_agents
