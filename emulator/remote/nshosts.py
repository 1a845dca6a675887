"""Several "hosts" on one machine: network namespaces joined by veth NICs, each with its own
sshd, so the whole multi-host path (partition, tunnels, SSH control, gathering, teardown, a
killed worker) runs where there is one machine (tests/root, bench/multihost.py).

Each host is a named namespace `<prefix>h<i>` holding one NIC (`eth0`, MTU 65535, so an
emulated 65000-byte frame plus VXLAN's 50 bytes crosses whole) on a bridge in this
namespace, and an sshd that lets in one key generated for the testbed. Its sessions get
NETWALL_STATE_DIR=/run/netwall/<host> (SetEnv), so the hosts' run records never mix, as on
separate machines. The controller finds users, keys and host keys in the ssh_config file
NETWALL_SSH_CONFIG names (`env`). stop() removes all of it, whatever state it is in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from emulator.kernel.records import STATE_DIR
from emulator.remote.sshlib import asyncssh

SSHD = "/usr/sbin/sshd"
NIC_MTU = 65535


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class NamespaceHosts:
    """`count` namespace hosts; start() builds them, stop() removes them."""

    def __init__(self, count: int, prefix: str | None = None) -> None:
        self.count = count
        self.prefix = prefix or f"nwt{os.getpid() % 100000}"
        subnet = os.getpid() % 250
        self.addresses = [f"10.231.{subnet}.{2 + i}" for i in range(count)]
        self.gateway = f"10.231.{subnet}.1"
        self.bridge = f"{self.prefix}br"
        self.names = [f"{self.prefix}h{i}" for i in range(count)]
        self.dir = Path(tempfile.mkdtemp(prefix="netwall-nshosts-"))
        self.sshd: list[subprocess.Popen] = []

    @property
    def hosts(self) -> str:
        """The host list, as --hosts takes it."""
        return ",".join(f"root@{a}" for a in self.addresses)

    @property
    def env(self) -> dict[str, str]:
        return {"NETWALL_SSH_CONFIG": str(self.dir / "ssh_config")}

    def state_dir(self, host: int) -> Path:
        return STATE_DIR / self.names[host]

    def start(self) -> NamespaceHosts:
        try:
            self._network()
            self._ssh()
        except BaseException:
            self.stop()
            raise
        return self

    def _network(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        for i, (name, address) in enumerate(zip(self.names, self.addresses, strict=True)):
            _ip("netns", "add", name)
            _ip("link", "add", f"{self.prefix}n{i}", "mtu", str(NIC_MTU), "type", "veth",
                "peer", "name", "eth0", "mtu", str(NIC_MTU), "netns", name)
            _ip("link", "set", f"{self.prefix}n{i}", "master", self.bridge, "up")
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "set", self.bridge, "up")

    def _ssh(self) -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(self.dir / "id_ed25519")
        (self.dir / "id_ed25519").chmod(0o600)  # ssh refuses keys others can read
        key.write_public_key(self.dir / "authorized_keys")
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(self.dir / "host_key")
        (self.dir / "host_key").chmod(0o600)
        public = host_key.export_public_key().decode().strip()
        (self.dir / "known_hosts").write_text(
            "".join(f"{a} {public}\n" for a in self.addresses))
        (self.dir / "ssh_config").write_text(
            f"Host {' '.join(self.addresses)}\n  User root\n"
            f"  IdentityFile {self.dir / 'id_ed25519'}\n"
            f"  UserKnownHostsFile {self.dir / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        for name, address in zip(self.names, self.addresses, strict=True):
            config = self.dir / f"sshd_{name}"
            config.write_text(
                f"ListenAddress {address}\nHostKey {self.dir / 'host_key'}\n"
                f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile none\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                f"SetEnv NETWALL_STATE_DIR={STATE_DIR / name}\n")
            self.sshd.append(subprocess.Popen(
                ["ip", "netns", "exec", name, SSHD, "-D", "-e", "-f", str(config)],
                stdout=subprocess.DEVNULL, stderr=(self.dir / f"{name}.log").open("w")))
        for name, address in zip(self.names, self.addresses, strict=True):
            if not _listening(address, 22):
                log = (self.dir / f"{name}.log").read_text().strip().splitlines()
                raise RuntimeError(f"sshd on {name} did not start: {log[-1] if log else ''}")

    def processes(self, host: int) -> list[int]:
        """Every process in a host's namespace (its sshd and what sessions started)."""
        out = subprocess.run(["ip", "netns", "pids", self.names[host]], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    def worker(self, host: int) -> int | None:
        """The pid of the netwall worker on a host, if one runs."""
        for pid in self.processes(host):
            with contextlib.suppress(OSError):
                if b"emulator.remote.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
        return None

    def leftovers(self) -> list[str]:
        """What netwall left on any host: interfaces besides lo and eth0, processes besides
        sshd, run records."""
        found = []
        for i, name in enumerate(self.names):
            links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True,
                                   text=True).stdout
            for line in links.splitlines():
                ifname = line.split(":")[1].strip().split("@")[0]
                if ifname not in ("lo", "eth0"):
                    found.append(f"{name}: interface {ifname}")
            sshd = {p.pid for p in self.sshd}
            for pid in self.processes(i):
                with contextlib.suppress(OSError):
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                    if comm != "sshd" and pid not in sshd:
                        found.append(f"{name}: process {pid} ({comm})")
            records = self.state_dir(i)
            found += [f"{name}: record {p.name}" for p in records.glob("*.json")] \
                if records.is_dir() else []
        return found

    def stop(self) -> None:
        """Remove everything: every process in the hosts' namespaces, the namespaces, the
        bridge, the keys, the hosts' record directories."""
        for i, name in enumerate(self.names):
            for pid in self.processes(i) if Path(f"/run/netns/{name}").exists() else []:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.sshd:
            proc.kill()
            proc.wait()
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(STATE_DIR / name, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _listening(address: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
