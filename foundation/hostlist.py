"""The hosts one emulated cluster spreads over: read from a flag, a file or the environment.

A host is `[user@]address[:port]`, as ssh(1) takes it. The list comes from `--hosts`
(comma-separated, or `@FILE` with one host a line and `#` comments) or, without the flag,
from NETWALL_HOSTS. Everything is checked before any connection is made, so a typo is one
line and nothing is built anywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from foundation.errors import NetwallError
from foundation.inputs import read_text, shown

ENV = "NETWALL_HOSTS"
#: What a NIC between hosts carries when the user does not say (Gb/s): a common server NIC.
DEFAULT_NIC_GBPS = 25.0
#: More hosts than this is a typo (a pasted node list), not a cluster netwall can drive.
MAX_HOSTS = 64
_HOST = re.compile(r"^(?:(?P<user>[A-Za-z_][A-Za-z0-9_.-]{0,31})@)?"
                   r"(?P<address>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])"
                   r"(?::(?P<port>[0-9]{1,5}))?$")


@dataclass(frozen=True)
class Host:
    """One machine of the cluster, as SSH reaches it (user and port None: ssh's defaults)."""

    address: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{user}{address}{port}"


def parse_host(text: str) -> Host:
    """One `[user@]address[:port]`, or one line naming what is wrong with it."""
    match = _HOST.match(text.strip())
    if not match:
        raise NetwallError(f"bad host {shown(text)}: use [user@]address[:port]")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise NetwallError(f"bad host {shown(text)}: port {port} is not between 1 and 65535")
    return Host(match["address"].strip("[]"), match["user"], int(port) if port else None)


def parse_hosts(text: str) -> list[Host]:
    """A comma- (or newline-) separated host list; `#` starts a comment. Each host once."""
    words = [w for line in text.splitlines() for w in line.split("#")[0].split(",")]
    hosts = [parse_host(w) for w in words if w.strip()]
    if not hosts:
        raise NetwallError("the host list is empty")
    if len(hosts) > MAX_HOSTS:
        raise NetwallError(f"the host list names {len(hosts)} hosts; at most {MAX_HOSTS}")
    seen: set[tuple[str, int | None]] = set()
    for host in hosts:
        if (host.address, host.port) in seen:
            raise NetwallError(f"host {host} is named twice in the host list")
        seen.add((host.address, host.port))
    return hosts


def resolve_hosts(flag: str | None, environ: dict[str, str] | None = None) -> list[Host] | None:
    """The host list of `--hosts` (a list, or @FILE), else of NETWALL_HOSTS, else None (one
    machine, as always)."""
    text = flag if flag is not None else (environ if environ is not None else os.environ).get(ENV)
    if text is None:
        return None
    if text.startswith("@"):
        text = read_text(text[1:], "host file")
    return parse_hosts(text)
