"""What a running emulation leaves on the machine, written down so a killed run can be cleaned.

Each emulation keeps a small JSON record in /run/netwall (a tmpfs: it does not survive a
reboot, and neither do namespaces): the controlling process and the pids of its node shells
(GPUs and switches, each holding a network namespace) and agents. Everything netwall builds
lives in those namespaces, so killing the recorded processes removes it all; `netwall
clean` does that for the records of dead controllers. A host that builds part of a cluster
spread over several hosts also records the VXLAN tunnels it made in its own namespace
(`devices`), which no namespace takes with it: clean deletes those by name.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
from pathlib import Path

from emulator.kernel import vxlan
from emulator.kernel.netns import iproute
from foundation.outputs import make_dir, write_file

STATE_DIR = Path(os.environ.get("NETWALL_STATE_DIR", "/run/netwall"))


_serial = itertools.count()
_made: list[Path] = []  # every record this process wrote: what it built


def built() -> bool:
    """Whether this process has built an emulated network (each one writes a record)."""
    return bool(_made)


class Record:
    """This process's record of one emulation, rewritten atomically as it grows."""

    def __init__(self, topology: str) -> None:
        self.data = {"pid": os.getpid(), "topology": topology, "hosts": [], "agents": [],
                     "devices": []}
        # One file per emulation: a process may run several, one after another or at once.
        self.path = STATE_DIR / f"{os.getpid()}-{next(_serial)}.json"
        self._save()
        _made.append(self.path)

    def add(self, kind: str, items: list[int] | list[str]) -> None:
        """Pids of `hosts` or `agents`, or names of `devices`."""
        self.data[kind] = self.data[kind] + list(items)
        self._save()

    def _save(self) -> None:
        make_dir(STATE_DIR)
        write_file(self.path, json.dumps(self.data))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def disable_bridge_netfilter() -> None:
    """Bridged frames must not detour through iptables (Mininet warns about this too)."""
    for family in ("iptables", "ip6tables", "arptables"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            Path(f"/proc/sys/net/bridge/bridge-nf-call-{family}").write_text("0")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False  # not a process: kill(0) would ask about our own process group
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
        record = _read(path)
        if not _alive(record["pid"]):
            record["_path"] = str(path)
            out.append(record)
    return out


def _read(path: Path) -> dict:
    """A record as clean() can trust it: pids are positive integers, whatever the file holds
    (a damaged or hand-edited record must not stop clean or later runs). With no readable
    owner, its owner is the pid its name starts with, or none (then it is stale)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    owner = path.stem.split("-")[0]
    pid = data.get("pid")
    if not _is_pid(pid):
        pid = int(owner) if owner.isdigit() and len(owner) < 10 else 0
    devices = data.get("devices")
    names = [d for d in devices if _is_device(d)] if isinstance(devices, list) else []
    return {"pid": pid, "hosts": _pids(data.get("hosts")), "agents": _pids(data.get("agents")),
            "devices": names}


def _is_device(value: object) -> bool:
    """Only the tunnel names netwall makes (emulator.kernel.vxlan): a damaged record must
    not name one of the host's own interfaces."""
    return isinstance(value, str) and value.startswith("nwv") and value[3:].isdigit()


def _pids(value: object) -> list[int]:
    return [p for p in value if _is_pid(p)] if isinstance(value, list) else []


def _is_pid(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


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
        if record["devices"]:
            ipr = iproute(None)
            try:
                done += [f"deleted tunnel {name}" for name in vxlan.remove(ipr, record["devices"])]
            finally:
                ipr.close()
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
