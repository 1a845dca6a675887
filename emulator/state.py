"""What a running emulation leaves on the machine, written down so a killed run can be cleaned.

Each emulation keeps a small JSON record in /run/netwall (a tmpfs: it does not survive a
reboot, and neither do namespaces): the controlling process and the pids of its node shells
(GPUs and switches, each holding a network namespace) and agents. Everything netwall builds
lives in those namespaces, so killing the recorded processes removes it all; `netwall
clean` does that for the records of dead controllers.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
from pathlib import Path

STATE_DIR = Path(os.environ.get("NETWALL_STATE_DIR", "/run/netwall"))


_serial = itertools.count()


class Record:
    """This process's record of one emulation, rewritten atomically as it grows."""

    def __init__(self, topology: str) -> None:
        self.data = {"pid": os.getpid(), "topology": topology, "hosts": [], "agents": []}
        # One file per emulation: a process may run several, one after another or at once.
        self.path = STATE_DIR / f"{os.getpid()}-{next(_serial)}.json"
        self._save()

    def add(self, kind: str, pids: list[int]) -> None:
        self.data[kind] = self.data[kind] + list(pids)
        self._save()

    def _save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def disable_bridge_netfilter() -> None:
    """Bridged frames must not detour through iptables (Mininet warns about this too)."""
    for family in ("iptables", "ip6tables", "arptables"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            Path(f"/proc/sys/net/bridge/bridge-nf-call-{family}").write_text("0")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_records() -> list[dict]:
    """Records whose controlling process is gone: what a killed run left behind."""
    out = []
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            owner = path.stem.split("-")[0]
            record = {"pid": int(owner) if owner.isdigit() else 0}
        if not _alive(record.get("pid", 0)):
            record["_path"] = str(path)
            out.append(record)
    return out


def clean() -> list[str]:
    """Remove what dead netwall runs left. Idempotent; returns what it removed, in words.

    Killing a dead run's node shells and agents removes its namespaces, and with them every
    interface, bridge and qdisc it made: netwall puts nothing in the host's own namespace.
    """
    done = []
    for record in stale_records():
        for kind, marker in (("agents", b"traffic.agent"), ("hosts", b"mininet:")):
            for pid in record.get(kind, []):
                if _cmdline_has(pid, marker):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        done.append(f"killed {kind[:-1]} process {pid}")
        with contextlib.suppress(FileNotFoundError):
            Path(record["_path"]).unlink()
            done.append(f"removed the record of dead run {record.get('pid')}")
    return done


def _cmdline_has(pid: int, marker: bytes) -> bool:
    """Only kill a recorded pid if it is still what we started (pids are reused)."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
