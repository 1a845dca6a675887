"""SSH to the hosts of a cluster, with asyncssh, and a worker session on each.

The controller is synchronous (the launcher polls pipes); asyncssh runs in one event loop on
a thread of its own, and the controller hands it coroutines. Each host's session runs the
worker (emulator.remote.worker) from the same netwall checkout and Python as the
controller's, so every host must have netwall installed at the same path. Keys, users,
ports and known hosts are OpenSSH's: ~/.ssh/config, or the file NETWALL_SSH_CONFIG names.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from emulator.remote import wire
from emulator.remote.sshlib import asyncssh
from foundation.errors import NetwallError
from foundation.hostlist import Host
from traffic.forkserver import PROJECT_ROOT

CONNECT_TIMEOUT_S = 10.0
#: The longest a worker may take to answer a request (a build of hundreds of GPUs included).
REQUEST_TIMEOUT_S = 600.0


def netwall_command(module: str, *args: str) -> str:
    """A remote command line running `python -m module args` from this netwall checkout."""
    words = [sys.executable, "-m", module, *args]
    return f"cd {shlex.quote(str(PROJECT_ROOT))} && exec " + " ".join(map(shlex.quote, words))


class Loop:
    """An asyncio loop on a daemon thread; run() carries a coroutine out from this thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="netwall-ssh")
        self.thread.start()

    def run(self, coro: Coroutine, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def gather(self, coros: list[Coroutine], timeout: float | None = None) -> list:
        """Several coroutines at once: each one's result, or the exception it raised."""
        async def together() -> list:
            return await asyncio.gather(*coros, return_exceptions=True)

        return self.run(together(), timeout)

    def call(self, fn: Callable, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def connect(host: Host) -> asyncssh.SSHClientConnection:
    """An SSH connection to `host`, or a one-line NetwallError saying why not."""
    options: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if host.port:
        options["port"] = host.port
    if host.user:
        options["username"] = host.user
    if os.environ.get("NETWALL_SSH_CONFIG"):
        options["config"] = [os.environ["NETWALL_SSH_CONFIG"]]
    try:
        return await asyncssh.connect(host.address, **options)
    except (TimeoutError, OSError, asyncssh.Error) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise NetwallError(f"host {host} is unreachable over SSH: {reason}") from None


class Session:
    """The worker on one host: requests answered in order, agent lines handed to `on_agent`
    (rank, line) and agent deaths to `on_death` (rank, reason), from the loop's thread."""

    def __init__(self, host: Host, conn: asyncssh.SSHClientConnection,
                 process: asyncssh.SSHClientProcess, on_agent: Callable[[int, str], None],
                 on_death: Callable[[int | None, str], None]) -> None:
        self.host = host
        self.conn = conn
        self.process = process
        self.on_agent = on_agent
        self.on_death = on_death
        self.replies: asyncio.Queue = asyncio.Queue()
        self.dead: str | None = None
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, host: Host, on_agent, on_death) -> Session:
        conn = await connect(host)
        try:
            process = await conn.create_process(netwall_command("emulator.remote.worker"))
        except (OSError, asyncssh.Error) as e:
            conn.close()
            raise NetwallError(f"host {host}: cannot start the worker: {e}") from None
        return cls(host, conn, process, on_agent, on_death)

    async def _read(self) -> None:
        """Until the worker's output ends (it stopped, or was killed, or the connection
        dropped): then every agent of this host is dead, and so is any pending request."""
        reason = ""
        try:
            async for line in self.process.stdout:
                if not line.strip():
                    continue
                message = wire.parse(line)
                if "rank" in message:
                    if "died" in message:
                        self.on_death(message["rank"], message["died"])
                    else:
                        self.on_agent(message["rank"], message["line"])
                else:
                    await self.replies.put(message)
            err = (await self.process.stderr.read()).strip().splitlines()
            reason = err[-1] if err else ""
        except (NetwallError, OSError, asyncssh.Error) as e:
            reason = str(e)
        self.dead = (f"the worker on host {self.host} stopped"
                     + (f": {reason}" if reason else " (connection lost)"))
        self.on_death(None, self.dead)
        await self.replies.put({"error": self.dead})

    def send(self, line: str) -> None:
        """From the loop's thread: one line to the worker (dropped once it is gone)."""
        if self.dead is None:
            self.process.stdin.write(line + "\n")

    async def request(self, op: str, **fields: Any) -> Any:
        if self.dead is not None:
            raise NetwallError(self.dead)
        self.send(wire.request(op, **fields))
        answer = await self.replies.get()
        if "error" in answer:
            error = answer["error"]
            raise NetwallError(error if self.dead else f"host {self.host}: {error}")
        return answer["reply"]


async def run(host: Host, command: str) -> str:
    """Run one command on `host` over a connection of its own; its output (stdout)."""
    conn = await connect(host)
    async with conn:
        result = await conn.run(command)
    if result.exit_status != 0:
        err = (result.stderr or "").strip().splitlines()
        raise NetwallError(f"host {host}: {err[-1] if err else 'command failed'}")
    return str(result.stdout)


def clean_hosts(hosts: list[Host]) -> list[tuple[Host, str]]:
    """`netwall clean` on every host at once: what each removed, in one line; the first
    host that could not be cleaned is the error, after every other was."""
    loop = Loop()
    try:
        command = netwall_command("emulator.cli.main", "clean")
        answers = loop.gather([run(h, command) for h in hosts], REQUEST_TIMEOUT_S)
    finally:
        loop.close()
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [(h, "; ".join(a.split("\n")).strip("; ")) for h, a in zip(hosts, answers, strict=True)]
