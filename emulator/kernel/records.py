"""What a running emulation leaves on the machine, written down so a killed run can be cleaned.

Each emulation keeps a small JSON record in /run/netwall (a tmpfs: it does not survive a
reboot, and neither do namespaces): the controlling process and the node shells it started
(GPUs and switches, each holding a network namespace) and agents. Everything netwall builds
lives in those namespaces, so killing the recorded processes (and anything else inside their
namespaces) removes it all; `netwall clean` does that for the records of dead controllers. A
host that builds part of a cluster spread over several hosts also records the VXLAN tunnels
it made in its own namespace (`devices`), which no namespace takes with it: clean deletes
those by name.

Pids are reused, and a stale record may name a pid that is now someone else's process. So
each process is recorded with its proof, taken when it was made: its start time
(/proc/PID/stat field 22, clock ticks since boot; a reused pid starts later) and, for a node
shell, the inode of the network namespace it holds (an agent must be in one of those).
Nothing is signalled unless both still hold.

Teardown (Record.close) is idempotent and runs with interrupts held back (`shielded`), and
the record is removed last, only once every process it names is gone: a second Ctrl-C, or a
teardown cut short before it began (then it runs at exit), can no longer leave namespaces
behind without a record that names them.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from emulator.kernel import vxlan
from emulator.kernel.netns import iproute
from foundation.outputs import make_dir, write_file

STATE_DIR = Path(os.environ.get("NETWALL_STATE_DIR", "/run/netwall"))
#: How long teardown waits for killed processes to be gone before it keeps the record
#: (a process in uninterruptible sleep): `netwall clean` finishes the job later.
GONE_TIMEOUT_S = 5.0
#: The signals that interrupt a command (emulator.cli.main): held back during teardown.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_serial = itertools.count()
_made: list[Path] = []  # every record this process wrote: what it built
_open: list[Record] = []  # records whose teardown has not finished: finished at exit
_at_exit = False


def built() -> bool:
    """Whether this process has built an emulated network (each one writes a record)."""
    return bool(_made)


# -- proofs ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and start time (field 22 of /proc/PID/stat), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rfind(")") + 2:].split()  # the name (field 2) may hold spaces
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), None if it is gone."""
    stat = _stat(pid)
    return stat[1] if stat is not None and stat[0] not in "ZX" else None


def netns(pid: int | str) -> int | None:
    """The inode of process `pid`'s network namespace, None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _protected() -> set[int]:
    """Namespaces no record may empty: this process's and init's (the host's own)."""
    return {ns for ns in (netns("self"), netns(1)) if ns is not None}


def _proven(pid: int, start: int, namespaces: set[int]) -> bool:
    """Whether `pid` is still the process a record made: same start time, and in a
    namespace the record made (never the host's own)."""
    return start_time(pid) == start and netns(pid) in namespaces - _protected()


def _members(namespaces: set[int]) -> list[int]:
    """Every live process in one of `namespaces` (a console command's background job, an
    agent not yet recorded): they hold the namespace, and with it its interfaces."""
    namespaces = namespaces - _protected()
    if not namespaces:
        return []
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and netns(p.name) in namespaces and start_time(int(p.name))]


def _kill_and_wait(record: dict, timeout: float) -> tuple[list[str], bool]:
    """Kill what `record` proves is its own; returns what it did, in words, and whether
    every such process is gone."""
    hosts, agents = record["hosts"], record["agents"]
    made = {ns for _, _, ns in hosts}
    proven = [("agent", p) for p, s in agents if _proven(p, s, made)]
    proven += [("host", p) for p, s, ns in hosts if _proven(p, s, {ns})]
    held = {netns(p) for _, p in proven} - {None}  # namespaces still held: provably ours
    targets = dict.fromkeys(p for _, p in proven)
    targets.update(dict.fromkeys(_members(held)))
    done = []
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            kind = next((k for k, p in proven if p == pid), "other")
            done.append(f"killed {kind} process {pid}" if kind != "other" else
                        f"killed process {pid} in a netwall namespace")
    deadline = time.monotonic() + timeout
    while (left := [p for p in targets if start_time(p) is not None]) and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    return done, not left


# -- interrupts during teardown ----------------------------------------------------------


_shield = threading.local()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the body runs (teardown), then deliver
    any that came to the handler they would have reached. Only the main thread handles
    signals; elsewhere this does nothing. Nested uses hold them once."""
    if threading.current_thread() is not threading.main_thread() or \
            getattr(_shield, "depth", 0):
        _shield.depth = getattr(_shield, "depth", 0) + 1
        try:
            yield
        finally:
            _shield.depth -= 1
        return
    came: list[int] = []
    before = {}
    try:
        for signum in INTERRUPTS:
            before[signum] = signal.signal(signum, lambda s, _f: came.append(s))
        _shield.depth = 1
        yield
    finally:
        _shield.depth = 0
        for signum, handler in before.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(came):
            signal.raise_signal(signum)  # now, to whoever would have had it


# -- records -----------------------------------------------------------------------------


class Record:
    """This process's record of one emulation, rewritten atomically as it grows."""

    def __init__(self, topology: str) -> None:
        self.data: dict = {"pid": os.getpid(), "start": start_time(os.getpid()),
                           "topology": topology, "hosts": [], "agents": [], "devices": []}
        # One file per emulation: a process may run several, one after another or at once.
        self.path = STATE_DIR / f"{os.getpid()}-{next(_serial)}.json"
        self._save()
        _made.append(self.path)
        global _at_exit
        if not _at_exit:
            _at_exit = True
            atexit.register(_close_all)
        _open.append(self)

    def add(self, kind: str, items: Iterable[int] | Iterable[str]) -> None:
        """Pids of `hosts` (node shells, each in the namespace it made) or `agents` (each in
        a host's), with their proof; or names of `devices`."""
        if kind == "hosts":
            items = [[p, start_time(p), netns(p)] for p in items]
        elif kind == "agents":
            items = [[p, start_time(p)] for p in items]
        self.data[kind] = self.data[kind] + list(items)
        self._save()

    def _save(self) -> None:
        make_dir(STATE_DIR)
        write_file(self.path, json.dumps(self.data))

    def kill(self) -> bool:
        """Kill every process the record proves is its own, and anything else in their
        namespaces (while they still prove them), and wait until they are gone: did they
        go? Idempotent; interrupts wait until it is over."""
        with shielded():
            return not self.path.exists() or _kill_and_wait(_read(self.path), GONE_TIMEOUT_S)[1]

    def close(self) -> None:
        """Kill whatever the record names that still runs, delete its tunnels, and only then
        remove the record (kept if a process would not go: `netwall clean` ends it).
        Idempotent; interrupts wait until it is over."""
        with shielded():
            if self.kill():
                _delete_devices(self.data["devices"])
                self.remove()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(ValueError):
            _open.remove(self)


def _close_all() -> None:
    """At exit: finish every teardown an interrupt cut short before it began."""
    for record in list(_open):
        record.close()


def _delete_devices(names: list[str]) -> list[str]:
    if not names:
        return []
    ipr = iproute(None)
    try:
        return [f"deleted tunnel {name}" for name in vxlan.remove(ipr, names)]
    finally:
        ipr.close()


def disable_bridge_netfilter() -> None:
    """Bridged frames must not detour through iptables (Mininet warns about this too)."""
    for family in ("iptables", "ip6tables", "arptables"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            Path(f"/proc/sys/net/bridge/bridge-nf-call-{family}").write_text("0")


def stale_records() -> list[dict]:
    """Records whose controlling process is gone (or its pid is now another process's):
    what a killed run left behind."""
    out = []
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        record = _read(path)
        started = start_time(record["pid"]) if record["pid"] > 0 else None
        if started is None or (record["start"] is not None and started != record["start"]):
            record["_path"] = str(path)
            out.append(record)
    return out


def _read(path: Path) -> dict:
    """A record as clean() can trust it, whatever the file holds (a damaged or hand-edited
    record must not stop clean or later runs): pids are positive integers, each with its
    proof (a pid without one, as records before proofs were kept, is never signalled).
    With no readable owner, its owner is the pid its name starts with, or none (then it is
    stale)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        data = {}
    data = data if isinstance(data, dict) else {}
    owner = path.stem.split("-")[0]
    pid = data.get("pid")
    if not _is_number(pid):
        pid = int(owner) if owner.isdigit() and len(owner) < 10 else 0
    devices = data.get("devices")
    names = [d for d in devices if _is_device(d)] if isinstance(devices, list) else []
    start = data.get("start")
    return {"pid": pid, "start": start if _is_number(start) else None,
            "hosts": _proofs(data.get("hosts"), 3), "agents": _proofs(data.get("agents"), 2),
            "devices": names}


def _is_device(value: object) -> bool:
    """Only the tunnel names netwall makes (emulator.kernel.vxlan): a damaged record must
    not name one of the host's own interfaces."""
    return isinstance(value, str) and value.startswith("nwv") and value[3:].isdigit()


def _proofs(value: object, width: int) -> list[tuple[int, ...]]:
    """[pid, start, (namespace)] entries, each a positive integer below 2^63; others are
    dropped."""
    if not isinstance(value, list):
        return []
    return [tuple(item) for item in value
            if isinstance(item, list) and len(item) == width and all(map(_is_number, item))]


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def clean() -> list[str]:
    """Remove what dead netwall runs left. Idempotent; returns what it removed, in words.

    Killing a dead run's node shells and agents removes its namespaces, and with them every
    interface, bridge and qdisc it made: netwall puts nothing in the host's own namespace.
    Only processes the record proves are the ones it made are signalled.
    """
    done = []
    for record in stale_records():
        killed, gone = _kill_and_wait(record, GONE_TIMEOUT_S)
        done += killed + _delete_devices(record["devices"])
        if gone:
            with contextlib.suppress(FileNotFoundError):
                Path(record["_path"]).unlink()
                done.append(f"removed the record of dead run {record.get('pid')}")
    return done
