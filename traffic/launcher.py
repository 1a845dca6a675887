"""The controller's side of the agents: start one per GPU host, hand out work, gather times.

Agents run in the hosts' namespaces (Mininet's popen), stay up for the whole emulation, and
take one JSON command per collective call. All ranks start a call at the same CLOCK_MONOTONIC
instant (one clock serves every namespace), so a call's time is the last rank's finish minus
that instant, as a GPU timeline would show it.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from emulator.errors import NetwallError
from traffic.schedule import Schedule

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_MARGIN_S = 0.05  # time for every agent to read its command before the common start


class Agents:
    """One agent process per GPU host, in rank order."""

    def __init__(self, hosts: list, peers: list[dict], mtu: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        self.procs: list[subprocess.Popen] = []
        for rank, host in enumerate(hosts):
            proc = host.popen([sys.executable, "-m", "traffic.agent"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=str(PROJECT_ROOT))
            self.procs.append(proc)
            self._send(rank, {"rank": rank, "peers": peers[rank], "mtu": mtu})
        self._gather(deadline=time.monotonic() + 60)

    def run(self, schedule: Schedule, op: int, iters: int, check: bool, timeout: float) -> dict:
        """Run `iters` back-to-back calls of `schedule`; return the start and each rank's ends."""
        per_rank: list[list] = [[] for _ in self.procs]
        for s, step in enumerate(schedule.steps):
            for m in step:
                row = [s, m.src, m.dst, m.src_offset, m.dst_offset, m.length, int(m.reduce)]
                per_rank[m.src].append(row)
                if m.dst != m.src:
                    per_rank[m.dst].append(row)
        start = time.monotonic() + START_MARGIN_S
        for rank, moves in enumerate(per_rank):
            self._send(rank, {"cmd": "run", "op": op, "iters": iters, "start": start,
                              "size": schedule.size, "steps": len(schedule.steps),
                              "moves": moves, "check": check, "timeout": timeout,
                              "collective": schedule.collective, "ranks": schedule.ranks})
        replies = self._gather(deadline=start + timeout * (len(schedule.steps) + 1) * iters + 30)
        failures = [r["error"] for r in replies if not r.get("ok")]
        if failures:
            raise NetwallError(f"collective failed: {failures[0]}")
        return {"start": start, "replies": replies}

    def _send(self, rank: int, obj: dict) -> None:
        proc = self.procs[rank]
        try:
            proc.stdin.write(json.dumps(obj) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            raise NetwallError(f"agent of rank {rank} died: {self._stderr(rank)}") from None

    def _gather(self, deadline: float) -> list[dict]:
        """One reply line from every agent, or a clear error naming the first silent rank."""
        replies: dict[int, dict] = {}
        streams = {proc.stdout.fileno(): rank for rank, proc in enumerate(self.procs)}
        while len(replies) < len(self.procs):
            waiting = [fd for fd, rank in streams.items() if rank not in replies]
            left = deadline - time.monotonic()
            ready = select.select(waiting, [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                silent = min(streams[fd] for fd in waiting)
                raise NetwallError(f"agent of rank {silent} did not answer in time")
            for fd in ready:
                rank = streams[fd]
                line = self.procs[rank].stdout.readline()
                if not line:
                    raise NetwallError(f"agent of rank {rank} died: {self._stderr(rank)}")
                replies[rank] = json.loads(line)
        return [replies[r] for r in range(len(self.procs))]

    def _stderr(self, rank: int) -> str:
        proc = self.procs[rank]
        proc.kill()
        err = proc.stderr.read().strip().splitlines()
        return err[-1] if err else f"exit code {proc.wait()}"

    def stop(self) -> None:
        """Ask every agent to exit; kill those still busy (an interrupted call) after 2 s."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.stdin.write('{"cmd": "exit"}\n')
                    proc.stdin.close()
                except (BrokenPipeError, ValueError):
                    pass
        deadline = time.monotonic() + 2
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                stream.close()
        self.procs = []
