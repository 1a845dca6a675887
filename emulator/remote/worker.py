"""A host's worker: builds its share of a cluster spread over several hosts, runs its agents,
and answers its controller over the SSH session that started it.

The controller runs `python -m emulator.remote.worker` on each host (emulator.remote.ssh)
and speaks emulator.remote.wire on its stdin and stdout. The worker builds the nodes it is
given (emulator.kernel.network.Share: the cables to other hosts become VXLAN tunnels),
forks an agent per GPU it holds, relays the agents' lines, and reads counters, re-dilates
and changes links when asked. When its session ends, normally or not (the controller
killed, the connection lost), stdin closes and the worker tears its share down; what a
killed worker leaves, its record names for `netwall clean` (emulator.kernel.records).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
from pathlib import Path

from emulator.kernel import records as state
from emulator.kernel.network import Network, Share
from emulator.models.verdict import cpu_times
from emulator.remote import wire
from foundation.errors import NetwallError
from foundation.version import netwall_version
from traffic.board import Board
from traffic.forkserver import AgentProcess
from traffic.launcher import spawn_agents


def boot_id() -> str:
    """This kernel's boot: hosts that share one share CLOCK_MONOTONIC too."""
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def ssh_address() -> str:
    """The address the controller reached this host at (SSH_CONNECTION's third word): the
    one its tunnels start from."""
    words = os.environ.get("SSH_CONNECTION", "").split()
    return words[2] if len(words) == 4 else ""


class Worker:
    def __init__(self) -> None:
        self.network: Network | None = None
        self.agents: dict[int, AgentProcess] = {}
        self.buffers: dict[int, bytes] = {}
        self.board: Board | None = None

    # -- requests --------------------------------------------------------------------------
    def hello(self) -> dict:
        return {"version": netwall_version(), "boot_id": boot_id(), "address": ssh_address()}

    def clock(self) -> float:
        return time.monotonic()

    def build(self, plan: str, netem: bool, nodes: list[str],
              remote: dict[str, str], local: str, port: int) -> list[int]:
        """Build this host's share and fork its agents; returns their ranks."""
        removed = state.clean()
        if removed:
            print(f"netwall: removed what an earlier, killed run left ({len(removed)} items)",
                  file=sys.stderr)
        share = Share(frozenset(nodes), {int(k): v for k, v in remote.items()}, local, port)
        self.network = Network(wire.unpack(plan), netem, share=share)
        self.network.start()
        topo = self.network.plan.topology
        self.board = Board(len(topo.gpus))
        procs = spawn_agents([host.pid for host in self.network.hosts], self.board)
        self.network.record.add("agents", [p.pid for p in procs])
        ranks = [topo.rank(gpu) for gpu in self.network.gpus]
        self.agents = dict(zip(ranks, procs, strict=True))
        return ranks

    def counters(self, settle: float = 2.0) -> list:
        assert self.network is not None
        return [[link, name, c]
                for (link, name), c in self.network.counters(settle=settle).items()]

    def progress(self) -> dict:
        """Its agents' rows of the progress board (traffic.board): each rank's call and step
        pairs, and the bytes resent from it to each peer."""
        assert self.board is not None
        reading = self.board.read()
        return {"pairs": {str(rank): reading.pairs[rank].tolist() for rank in self.agents},
                "resent": [[s, d, b] for (s, d), b in reading.resent().items()]}

    def cpu(self) -> list:
        """This host's (busy, total) CPU jiffies, for the verdict's CPU share."""
        return list(cpu_times())

    def redilate(self, plan: str) -> None:
        """The same network at the dilation of `plan` (the controller's, redilated)."""
        assert self.network is not None
        self.network.redilate(wire.unpack(plan))

    def set_link(self, link: int, rate_gbps: float, loss: float) -> None:
        assert self.network is not None
        self.network.set_link(link, rate_gbps, loss)

    def stop(self) -> None:
        agents, self.agents = self.agents, {}
        network, self.network = self.network, None
        board, self.board = self.board, None
        try:
            for proc in agents.values():
                proc.kill()
                proc.wait(2)
                proc.close()
        finally:
            if network is not None:
                network.stop()
            if board is not None:
                board.close()

    # -- the loop ----------------------------------------------------------------------------
    def serve(self) -> None:
        """Answer requests and relay agents until stop or the end of stdin."""
        stdin = sys.stdin.fileno()
        pending = b""
        try:
            while True:
                fds = {stdin: None} | {p.stdout.fileno(): r for r, p in self.agents.items()}
                waiting = select.poll()  # not select(): hundreds of agents pass fd 1024
                for fd in fds:
                    waiting.register(fd, select.POLLIN)
                for fd, _ in waiting.poll():
                    if fd != stdin:
                        self._relay(fds[fd], fd)
                        continue
                    chunk = os.read(stdin, 1 << 16)
                    if not chunk:
                        return
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if self._handle(wire.parse(line)):
                            return
        finally:
            self.stop()

    def _handle(self, message: dict) -> bool:
        """Carry out one line from the controller; True once it asked to stop."""
        op = message.pop("op", None)
        if op == "agent":
            proc = self.agents.get(message["rank"])
            if proc is not None:
                with contextlib.suppress(BrokenPipeError):  # its death is reported apart
                    proc.stdin.write(message["line"] + "\n")
                    proc.stdin.flush()
            return False
        try:
            if op == "stop":
                self.stop()
                _say({"reply": None})
                return True
            handler = {"hello": self.hello, "clock": self.clock, "build": self.build,
                       "counters": self.counters, "progress": self.progress, "cpu": self.cpu,
                       "redilate": self.redilate,
                       "set_link": self.set_link}.get(op)
            if handler is None:
                raise NetwallError(f"worker: unknown request {op!r}")
            _say({"reply": handler(**message)})
        except Exception as e:  # noqa: BLE001 - every failure goes back as one line
            text = str(e) if isinstance(e, NetwallError) else f"{type(e).__name__}: {e}"
            _say({"error": " ".join(text.split())})
        return False

    def _relay(self, rank: int, fd: int) -> None:
        """Whole lines an agent wrote, each wrapped with its rank; its death, once."""
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            proc = self.agents.pop(rank)
            err = proc.stderr.read().strip().splitlines()
            _say({"rank": rank, "died": err[-1] if err else "it exited without a word"})
            return
        lines = (self.buffers.get(rank, b"") + chunk).split(b"\n")
        self.buffers[rank] = lines.pop()
        for line in lines:
            _say({"rank": rank, "line": line.decode()})


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    Worker().serve()


if __name__ == "__main__":
    main()
