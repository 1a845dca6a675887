"""A built cluster: its fabric (this host's Network, or a Cluster spread over several
hosts), one agent per GPU, and the Batches that run programs on them. They come up together
and go down together, whatever interrupts them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from emulator.batches import Batches
from emulator.kernel import records as state
from emulator.kernel.links import Fabric, LinkStates
from emulator.models.partition import Partition
from emulator.models.plan import EMULATION_MTU, Plan
from emulator.remote.wire import REMOTE_START_MARGIN_S
from foundation.hostlist import Host
from traffic import scheduling
from traffic.board import Board, Reading
from traffic.header import frame_payload
from traffic.launcher import Agents, spawn_agents, start_margin
from traffic.protocol import Route


@dataclass
class Running:
    """What a running emulation drives; stop() removes it all."""

    fabric: Fabric
    agents: Agents | None = None
    batches: Batches | None = None
    #: The agents' scheduling policy as the kernel granted it (traffic.scheduling); None
    #: over several hosts, where each worker's agents take it on their own host.
    scheduling: scheduling.Policy | None = None
    #: Where the agents show their calls' steps and repairs (traffic.board); None over
    #: several hosts, where each worker keeps its own (emulator.remote.cluster reads them).
    board: Board | None = None

    def progress(self) -> Reading:
        """The agents' progress board now: this host's, or every host's merged."""
        return self.board.read() if self.board is not None else self.fabric.progress()

    def stop(self) -> None:
        with state.shielded():  # a second Ctrl-C waits until the fabric is gone
            agents, self.agents, self.batches = self.agents, None, None
            try:
                if agents is not None:
                    agents.stop()
            finally:
                self.fabric.stop()
                if self.board is not None:
                    self.board.close()
                    self.board = None


def build(plan: Plan, netem: bool, links: LinkStates, routes: list[dict[int, Route]],
          partition: Partition | None = None, hosts: list[Host] | None = None,
          vxlan_port: int = 0) -> Running:
    """The cluster `plan` describes, on this host or (with a partition) over `hosts`, with
    `links` attached to its fabric and an agent per GPU knowing its `routes`."""
    from emulator.kernel.network import Network  # Mininet is imported only when building

    leftovers = state.clean()
    if leftovers:
        print(f"netwall: removed what an earlier, killed run left ({len(leftovers)} items)",
              file=sys.stderr)
    if partition is not None:
        from emulator.remote.cluster import Cluster  # asyncssh, only over several hosts

        fabric = Cluster(plan, netem, hosts or [], partition, vxlan_port, links)
    else:
        fabric = Network(plan, netem=netem, links=links)
    built = Running(fabric)
    try:
        fabric.start()
        if partition is not None:
            procs, margin = fabric.agents, REMOTE_START_MARGIN_S
        else:  # an agent per GPU, then one per NVLS switch (its participant in calls)
            pids = [host.pid for host in fabric.hosts]
            pids += [fabric.node(s).pid for s in plan.topology.nvls]
            built.board = Board(len(pids))
            procs, margin = spawn_agents(pids, built.board), start_margin(len(pids))
            fabric.record.add("agents", [p.pid for p in procs])
            built.scheduling = scheduling.report([p.pid for p in procs])
            if not built.scheduling.realtime:
                print(f"netwall: agents run under {built.scheduling.describe()}: they wake "
                      "later on a busy host, so more results need a larger dilation or are "
                      "flagged", file=sys.stderr)
        topology = plan.topology
        peers = [plan.peers(g) for g in topology.gpus]
        if partition is None:
            peers += [plan.switch_peers(s) for s in topology.nvls]
        built.agents = Agents(procs, peers, EMULATION_MTU, plan.retransmit_timeout_s(),
                             plan.send_buffer_bytes(), routes[:len(peers)],
                             start_margin=margin)
        built.batches = Batches(built.agents, fabric, links, topology,
                               frame_payload(EMULATION_MTU))
    except BaseException:
        built.stop()
        raise
    return built
