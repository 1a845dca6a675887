"""iperf3, the outside referee: what a well-known TCP tool measures on the emulated links.

netwall's own agents could be wrong about their own speed; iperf3 is not netwall's. Tests
check shaping against it, and the benchmarks put the agents' goodput beside it.
"""

from __future__ import annotations

import json
import subprocess
import time

from foundation.errors import NetwallError

PORT = 5201


def iperf3_flows(pairs: list[tuple], seconds: int = 3, bidir: bool = False) -> float:
    """Run one TCP flow per (client host, server host, server address) pair, all at once;
    return the summed goodput in bit/s (both directions with `bidir`)."""
    servers = [server.popen(["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL) for _, server, _ in pairs]
    try:
        deadline = time.monotonic() + 10
        while not all(server.cmd(f"ss -ltnH 'sport = :{PORT}'").strip()
                      for _, server, _ in pairs):
            if time.monotonic() > deadline:
                raise RuntimeError("iperf3 servers did not start")
            time.sleep(0.05)
        extra = ["--bidir"] if bidir else []
        # A dead link must not hang the referee: give up connecting after 3 s, and on a
        # stalled flow 15 s after it should have ended.
        command = ["iperf3", "-t", str(seconds), "-O", "1", "-J", "--connect-timeout", "3000",
                   *extra, "-c"]
        clients = [client.popen([*command, address], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
                   for client, _, address in pairs]
        total = 0.0
        for client in clients:
            try:
                report = json.loads(client.communicate(timeout=seconds + 15)[0])
            except (subprocess.TimeoutExpired, ValueError):
                client.kill()
                client.wait()
                raise NetwallError("iperf3 got no answer (is the link down?)") from None
            if "error" in report or "sum_received" not in report.get("end", {}):
                raise NetwallError(f"iperf3: {report.get('error', 'no result')}")
            end = report["end"]
            total += end["sum_received"]["bits_per_second"]
            if bidir:
                total += end["sum_received_bidir_reverse"]["bits_per_second"]
        return total
    finally:
        for server in servers:
            server.kill()
            server.wait()
