"""The controller's side of a cluster spread over several hosts: what Network is on one.

Cluster stands where emulator.kernel.network.Network stands for Emulation: it starts every
host's share (a worker per host over SSH, all building at once), reads and merges their
per-link counters, re-dilates and changes links on the hosts holding them, and tears every
share down. Its agents are RemoteAgent objects: to the launcher they look like the agents it
forks (pipes it polls, lines it writes), and they carry the lines over each host's session,
with program start instants and reported times moved between clocks (emulator.remote.wire).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time

import numpy as np

from emulator.kernel.links import LinkStates
from emulator.models.partition import Partition
from emulator.models.plan import Plan
from emulator.remote import ssh, wire
from emulator.remote.worker import boot_id
from foundation.errors import NetwallError
from foundation.hostlist import Host
from foundation.version import netwall_version
from traffic.board import SLOTS, Reading

F_SETPIPE_SZ = 1031
CLOCK_SAMPLES = 16


class _Stderr:
    """What the launcher reads when an agent dies: the reason, in one line."""

    def __init__(self) -> None:
        self.reason = ""

    def read(self) -> str:
        return self.reason or "its host's worker stopped"


class _Stdin:
    """Lines the launcher writes to a remote agent, sent over its host's session."""

    def __init__(self, agent: RemoteAgent) -> None:
        self.agent = agent
        self.closed = False

    def write(self, text: str) -> None:
        agent = self.agent
        if agent.session.dead is not None or agent.exited:
            raise BrokenPipeError(agent.stderr.read())
        for line in text.splitlines():
            request = wire.request("agent", rank=agent.rank,
                                   line=wire.to_worker(line, agent.shift))
            agent.loop.call(agent.session.send, request)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class RemoteAgent:
    """One agent on another host, as much of traffic.forkserver.AgentProcess as the launcher
    uses: its replies come through a local pipe, filled from the loop's thread."""

    def __init__(self, rank: int, session: ssh.Session, loop: ssh.Loop, shift: float) -> None:
        self.rank = rank
        self.session = session
        self.loop = loop
        self.shift = shift
        self.exited = False
        read, self._write = os.pipe()
        fcntl.fcntl(self._write, F_SETPIPE_SZ, 1 << 20)  # the loop thread must not block
        self.stdout = open(read)  # noqa: SIM115 - closed by close()
        self.stdin = _Stdin(self)
        self.stderr = _Stderr()

    def deliver(self, line: str) -> None:
        if self._write >= 0:
            os.write(self._write, (wire.from_worker(line, self.shift) + "\n").encode())

    def died(self, reason: str) -> None:
        self.stderr.reason = self.stderr.reason or reason
        self.exited = True
        if self._write >= 0:
            os.close(self._write)  # the launcher reads the end of its pipe: a death
            self._write = -1

    def poll(self) -> bool | None:
        return True if self.exited else None

    def wait(self, timeout: float | None = None) -> bool:  # noqa: ARG002 - Popen's
        """Whether it exited: its worker stops it with the share, nothing to wait for."""
        return self.exited

    def kill(self) -> None:
        """Its worker kills it when the share is torn down."""

    def close(self) -> None:
        self.loop.call(self.died, "closed")
        self.stdout.close()


class Cluster:
    """Every host's share of one emulated cluster, driven over SSH: a Fabric
    (emulator.kernel.links), whose link changes `links` makes from now on."""

    def __init__(self, plan: Plan, netem: bool, hosts: list[Host], part: Partition,
                 port: int, links: LinkStates) -> None:
        self.plan = plan
        self.links = links
        links.attach(self)
        self.netem = netem
        self.names = hosts
        self.part = part
        self.port = port
        self.loop: ssh.Loop | None = None
        self.sessions: list[ssh.Session] = []
        self.agents: list[RemoteAgent] = []
        self.offsets: list[tuple[float, float]] = []  # per host: clock offset, uncertainty
        self.hosts: list = []  # no Mininet host here: the GPUs live on the other hosts
        self.net = None

    def start(self) -> None:
        """Connect to every host (all or none), check them, build every share at once."""
        self.loop = ssh.Loop()
        by_rank: dict[int, RemoteAgent] = {}

        def on_agent(rank: int, line: str) -> None:
            by_rank[rank].deliver(line)

        def deaths(host: int):
            def on_death(rank: int | None, reason: str) -> None:
                for r, agent in list(by_rank.items()):  # the main thread may be adding
                    if (rank is None and self.part.host[self.plan.topology.gpus[r]] == host) \
                            or r == rank:
                        agent.died(reason)
            return on_death

        opened = self.loop.gather([ssh.Session.open(h, on_agent, deaths(i))
                                   for i, h in enumerate(self.names)])
        self.sessions = [s for s in opened if isinstance(s, ssh.Session)]
        failed = [e for e in opened if isinstance(e, BaseException)]
        if failed:
            raise failed[0]
        hello = self._all("hello")
        for host, answer in zip(self.names, hello, strict=True):
            if answer["version"] != netwall_version():
                raise NetwallError(f"host {host} runs netwall {answer['version']}, the "
                                   f"controller {netwall_version()}: install one version")
        self.offsets = [(0.0, 0.0) if answer["boot_id"] == boot_id() else self._offset(i)
                        for i, answer in enumerate(hello)]
        addresses = [answer["address"] or str(h.address) for h, answer in
                     zip(self.names, hello, strict=True)]
        topo = self.plan.topology
        plan = wire.pack(self.plan)
        builds = []
        for host, session in enumerate(self.sessions):
            remote = {str(link): addresses[self.part.host[self._far(link, host)]]
                      for link in self.part.cross_links()
                      if host in (self.part.host[topo.links[link].a],
                                  self.part.host[topo.links[link].b])}
            builds.append(session.request("build", plan=plan, netem=self.netem,
                                          nodes=self.part.nodes_of(host), remote=remote,
                                          local=addresses[host], port=self.port))
        ranks = self._gather(builds)
        for host, host_ranks in enumerate(ranks):
            for rank in host_ranks:
                by_rank[rank] = RemoteAgent(rank, self.sessions[host], self.loop,
                                            self.offsets[host][0])
        self.agents = [by_rank[r] for r in range(len(topo.gpus))]

    def _far(self, link: int, host: int) -> str:
        cable = self.plan.topology.links[link]
        return cable.b if self.part.host[cable.a] == host else cable.a

    def _offset(self, host: int) -> tuple[float, float]:
        """The host's clock offset by CLOCK_SAMPLES round trips (emulator.remote.wire)."""
        samples = []
        for _ in range(CLOCK_SAMPLES):
            t0 = time.monotonic()
            tw = self.loop.run(self.sessions[host].request("clock"), ssh.REQUEST_TIMEOUT_S)
            samples.append((t0, tw, time.monotonic()))
        return wire.offset(samples)

    def _gather(self, coros: list) -> list:
        """Requests to several hosts at once; the first failure, in one line."""
        answers = self.loop.gather(coros, ssh.REQUEST_TIMEOUT_S)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers

    def _all(self, op: str, **fields) -> list:
        return self._gather([s.request(op, **fields) for s in self.sessions])

    @property
    def clock_uncertainty_s(self) -> float:
        return max((u for _, u in self.offsets), default=0.0)

    # -- what Emulation asks of a network ------------------------------------------------
    def counters(self, settle: float = 2.0) -> dict[tuple[int, str], dict[str, int]]:
        """Every host's link counters (each read as Network.counters reads, with `settle`),
        merged: each directed link is counted on the host of its sending end."""
        merged = {}
        for rows in self._all("counters", settle=settle):
            merged.update({(link, name): c for link, name, c in rows})
        return merged

    def progress(self) -> Reading:
        """Every host's rows of its progress board (traffic.board), as one board."""
        ranks = len(self.plan.topology.gpus)
        pairs = np.zeros((ranks, 2 * SLOTS))
        repairs = np.zeros((ranks, ranks))
        for answer in self._all("progress"):
            for rank, row in answer["pairs"].items():
                pairs[int(rank)] = row
            for sender, receiver, nbytes in answer["resent"]:
                repairs[sender, receiver] = nbytes
        return Reading(pairs, repairs)

    def cpu_times(self) -> list[tuple[int, int]]:
        """Every host's (busy, total) CPU jiffies: the verdict reports the busiest host."""
        return [(busy, total) for busy, total in self._all("cpu")]

    def redilate(self, plan: Plan) -> None:
        if plan.dilation != self.plan.dilation:
            self._all("redilate", plan=wire.pack(plan))
            self.plan = plan

    def set_link(self, link: int, rate_gbps: float, loss_probability: float) -> None:
        cable = self.plan.topology.links[link]
        hosts = sorted({self.part.host[cable.a], self.part.host[cable.b]})
        self._gather([self.sessions[h].request("set_link", link=link, rate_gbps=rate_gbps,
                                               loss=loss_probability) for h in hosts])

    def stop(self) -> None:
        """Tear every share down; a host whose worker died gets `netwall clean` instead."""
        loop, self.loop = self.loop, None
        if loop is None:
            return
        try:
            for agent in self.agents:
                agent.close()
            self.agents = []

            async def down(session: ssh.Session) -> None:
                try:
                    if session.dead is None:  # its share is down once it has exited
                        try:
                            await asyncio.wait_for(session.request("stop"), 60)
                            await asyncio.wait_for(session.process.wait(), 10)
                        except TimeoutError:
                            raise NetwallError(
                                f"host {session.host} did not tear its share down in time: "
                                "run `netwall clean --hosts` for it") from None
                    else:  # killed: its record tells `netwall clean` what it left
                        await ssh.run(session.host, ssh.netwall_command("emulator.cli.main",
                                                                        "clean"))
                finally:
                    session.conn.close()

            results = loop.gather([down(s) for s in self.sessions], 120)
            self.sessions = []
            errors = [r for r in results if isinstance(r, NetwallError)]
            if errors:
                raise errors[0]
        finally:
            loop.close()
