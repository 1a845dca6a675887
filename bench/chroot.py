"""Commands inside a Debian root file system, leaving nothing behind on the host.

Each command runs in a private mount namespace of its own (`unshare --mount --propagation
private`): /proc, /sys, /dev, a fresh /run and the cache directories are mounted there, and
vanish with the namespace when the command ends, even if this process is killed, since
nothing is ever mounted in the host's namespace. Processes a command leaves behind in the
root file system (a daemon a package started, a Mininet shell) are killed after it, and the
root is deleted only once nothing is mounted under it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

#: What a chroot needs of the host, mounted inside the new namespace before the chroot. The
#: root is bound onto itself to be a mount point, as in a VM: mnexec makes "/" private.
MOUNTS = """set -e
r="$1"
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"
"""
#: A clean environment: nothing of the host's (pip indexes, virtualenvs) leaks in.
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


class Root:
    """A root file system at `path`; `binds` maps a directory inside it to one on the host,
    `env` adds to the clean environment its commands run in."""

    def __init__(self, path: Path, binds: dict[str, Path], env: dict[str, str] | None = None
                 ) -> None:
        self.path = path
        self.binds = binds
        self.env = {**ENV, **(env or {})}

    def run(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        """`bash -c command` inside the root as root, for at most `timeout` seconds."""
        script = MOUNTS
        for inside, host in self.binds.items():
            host.mkdir(parents=True, exist_ok=True)
            script += f'mkdir -p "$r{inside}"\nmount --bind {host} "$r{inside}"\n'
        script += 'exec chroot "$r" /bin/bash -c "$2"\n'
        argv = ["unshare", "--mount", "--propagation", "private",
                "/bin/bash", "-c", script, "chroot", str(self.path), command]
        # Output goes to a file, not a pipe: a daemon left behind would hold a pipe open.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    env=self.env, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                self.kill_strays()
            out.seek(0)
            return subprocess.CompletedProcess(argv, proc.returncode, out.read())

    def processes(self) -> list[int]:
        """Processes whose root directory is this root (or below it)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    root = Path(os.readlink(entry / "root"))
                except OSError:
                    continue
                if root == self.path or self.path in root.parents:
                    found.append(int(entry.name))
        return found

    def kill_strays(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Delete the root, refusing while anything is still mounted under it."""
        self.kill_strays()
        with open("/proc/self/mountinfo") as f:
            mounted = [line.split()[4] for line in f]
        inside = [m for m in mounted if m == str(self.path) or m.startswith(f"{self.path}/")]
        if inside:
            raise RuntimeError(f"{inside[0]} is still mounted; not deleting {self.path}")
        if self.path.exists():
            shutil.rmtree(self.path)
