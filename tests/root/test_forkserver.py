"""The agent fork server: forked agents land in the right namespace and end cleanly (root)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from traffic.forkserver import PROJECT_ROOT, ForkServer
from traffic.protocol import Exit, Ready, Setup, decode, encode

pytestmark = pytest.mark.root

SETUP = Setup(rank=0, ranks=1, peers={}, mtu=9000, rto=0.1, sndbuf=1 << 20, routes={})


@pytest.fixture
def holder():
    """A process holding a fresh network namespace, as a Mininet host shell does."""
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        while os.readlink(f"/proc/{proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            pass  # unshare has not switched yet
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def server():
    server = ForkServer(dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
    yield server
    server.close()


def test_a_forked_agent_runs_in_its_hosts_namespace_and_exits_on_request(holder, server):
    agent = server.spawn(holder)
    try:
        agent.stdin.write(encode(SETUP) + "\n")
        agent.stdin.flush()
        assert decode(agent.stdout.readline()) == Ready(rank=0)
        assert os.readlink(f"/proc/{agent.pid}/ns/net") == os.readlink(f"/proc/{holder}/ns/net")
        assert b"traffic.agent" in Path(f"/proc/{agent.pid}/cmdline").read_bytes()  # for clean
        assert agent.poll() is None
        agent.stdin.write(encode(Exit()) + "\n")
        agent.stdin.flush()
        assert agent.wait(timeout=10)
    finally:
        agent.kill()
        agent.close()


def test_agents_outlive_the_server_and_end_when_their_controller_goes(holder, server):
    agents = [server.spawn(holder) for _ in range(3)]
    server.close()
    try:
        assert all(a.poll() is None for a in agents)
        agents[0].kill()
        assert agents[0].wait(timeout=10)
        assert agents[0].stdout.read() == ""  # its pipe closes: the launcher sees it die
        agents[1].stdin.close()  # the controller's end of stdin gone: the agent exits
        assert agents[1].wait(timeout=10)
        assert agents[2].poll() is None
    finally:
        for agent in agents:
            agent.kill()
            agent.close()


def test_a_bad_namespace_ends_the_agent_with_a_message(server):
    # Such an agent exits at once, often before the controller hears its pid (and the
    # server reaps it while forking the next): its pidfd must still tell its end.
    agents = []
    try:
        for _ in range(20):
            agents.append(server.spawn(2 ** 22 + 12345))  # no such process
        for agent in agents:
            assert agent.wait(timeout=10)
            assert "No such file" in agent.stderr.read()
    finally:
        for agent in agents:
            agent.close()
