"""What the controller and a host's worker say to each other over SSH, and clock offsets.

One JSON object a line. The controller sends requests ({"op": ...}) one at a time and reads
one answer to each ({"reply": ...} or {"error": "one line"}); in between, lines of the
agents' own protocol (traffic.protocol) travel wrapped with their rank ({"rank": r,
"line": ...}), and a worker says {"rank": r, "died": ...} of an agent that exited.

Agents time everything on their host's CLOCK_MONOTONIC. Hosts on one kernel (the same
boot_id, as namespace "hosts" are) share that clock; others are offset by an amount the
controller measures by round trips: the controller reads its clock before (t0) and after
(t1) the worker reads its own (tw), so offset = (t0 + t1) / 2 - tw, within (t1 - t0) / 2;
the narrowest of several samples wins. A program's start instant goes to each host in its
own clock, and the agents' reports come back in the controller's.
"""

from __future__ import annotations

import base64
import json
import pickle
from dataclasses import replace
from typing import Any

from foundation.errors import NetwallError
from traffic.protocol import Go, Report, decode, encode

#: Margin a program's common start leaves for the "go" lines to cross SSH to every agent
#: (the launcher's own, for agents on this machine, is 50 ms).
REMOTE_START_MARGIN_S = 0.25


def request(op: str, **fields: Any) -> str:
    return json.dumps({"op": op, **fields})


def parse(line: str | bytes) -> dict:
    """A line of either side, or a NetwallError saying it is not one."""
    try:
        data = json.loads(line)
    except ValueError:
        raise NetwallError(f"worker protocol: not a JSON line: {line[:80]!r}") from None
    if not isinstance(data, dict):
        raise NetwallError(f"worker protocol: not an object: {line[:80]!r}")
    return data


def pack(value: Any) -> str:
    """An object both ends know (a Plan, a catalogue) as text: both run the same netwall,
    checked by version at the handshake, and the worker trusts its controller with root."""
    return base64.b64encode(pickle.dumps(value)).decode()


def unpack(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))  # noqa: S301 - from our own controller


def offset(samples: list[tuple[float, float, float]]) -> tuple[float, float]:
    """From (t0, tw, t1) round trips: the worker's clock offset (controller minus worker)
    and its uncertainty, from the narrowest sample."""
    t0, tw, t1 = min(samples, key=lambda s: s[2] - s[0])
    return (t0 + t1) / 2 - tw, (t1 - t0) / 2


def to_worker(line: str, shift: float) -> str:
    """An agent line on its way to a host whose clock is `shift` behind the controller's."""
    if shift and line.startswith('{"msg": "go"'):
        go = decode(line, Go)
        return encode(replace(go, start=go.start - shift))
    return line


def from_worker(line: str, shift: float) -> str:
    """An agent's line from such a host, its times put on the controller's clock."""
    if shift and line.startswith('{"msg": "report"'):
        report = decode(line, Report)
        calls = {k: (b + shift, e + shift) for k, (b, e) in report.calls.items()}
        return encode(replace(report, calls=calls))
    return line
