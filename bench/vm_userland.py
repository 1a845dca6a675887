"""The Vagrant box's own userland provisions and runs netwall (minutes, so not in the suite).

    sudo .venv/bin/python -m bench.vm_userland [--refresh] [--record]

The box's release (bench/vm_box.json) is built with Debian's own debootstrap, and the
Vagrantfile's provisioning script runs in a chroot of it, word for word, on a clean clone of
this repository's HEAD at /vagrant: the README's install step (`./netwall.sh install`: apt,
then pip from PyPI), `netwall` linked onto PATH, `netwall check`. Then the Python, Debian and
Mininet versions it installed are compared with the record, the box's kernel package is
checked to ship sch_netem.ko, and a small `netwall run` goes through PATH. The provisioning
(whose `netwall check` may build a network) and the run hold the lock every network-building
run on this machine shares.

Only the kernel is not the box's: a chroot shares the host's. `modprobe` is stubbed there
(it would load into the host kernel), and where the host kernel has no netem, `netwall
check` in the chroot says netem NO: expected, and the run's rates are still emulated.
Services that packages would start (Open vSwitch) are held off with a policy-rc.d, as in any
chroot. pip reaches PyPI with the host's CA bundle (HOST_CA).

The debootstrapped system is cached as a tarball, and the .deb files apt fetches beside it,
under /var/cache/netwall/vm-userland (--refresh rebuilds the tarball; pip fetches anew, as
the box would). Each run unpacks a fresh copy and deletes it afterwards, also on failure;
the last run's full output stays in last-run.log there. --record writes the result into
BENCHMARKS.md's own section for it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import vm_box
from bench.chroot import ENV, Root
from bench.vm_report import Failed, last_line, netem_line, provisioning, ran, record, section

CACHE = Path("/var/cache/netwall/vm-userland")
LOCK = Path("/tmp/netwall-root.lock")
#: This machine may reach PyPI through a proxy whose CA only the host trusts: the host's CA
#: bundle goes to pip in the chroot (PIP_CERT), and nothing else of the host's pip setup.
HOST_CA = "/etc/host-ca-certificates.crt"
RUN = "netwall run --topology pair --size 1M -n 1 --link copper-800g"
#: Stand-ins in the chroot: no services started, no modules loaded into the host's kernel.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
MODPROBE = "#!/bin/sh\necho \"modprobe $*: skipped in a chroot (the host's kernel)\" >&2\n"
#: The box's own facts, as its userland states them (Open vSwitch: the docs say it comes).
FACTS = ("python3 -c 'import platform; print(platform.python_version())'; "
         "cut -d. -f1 /etc/debian_version; "
         "dpkg-query -W -f '${Version}\\n' mininet openvswitch-switch")
#: Does the box's kernel package ship netem? Its .deb is cached with the others.
KERNEL = ("set -o pipefail; cd /var/cache/apt/archives && pkg=$(apt-cache depends {package} | "
          "sed -n 's/.*Depends: \\(linux-image-[^ ]*\\)$/\\1/p' | head -1) && "
          "{{ ls \"$pkg\"_*.deb >/dev/null 2>&1 || apt-get download -qq \"$pkg\"; }} && "
          "dpkg-deb -c \"$pkg\"_*.deb | grep -o 'kernel/net/sched/sch_netem\\.ko[.a-z]*' | "
          "sed \"s|^|$pkg: |\"")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vm_userland")
    parser.add_argument("--refresh", action="store_true", help="rebuild the cached base system")
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md's section")
    args = parser.parse_args(argv)
    missing = [t for t in ("debootstrap", "unshare", "git", "tar")
               if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        need = f"{', '.join(missing)} (apt-get install -y debootstrap)" if missing else "root"
        print(f"vm_userland: needs {need}", file=sys.stderr)
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"vm_userland: another run holds {CACHE / 'lock'}", file=sys.stderr)
            return 2
        signal.signal(signal.SIGTERM, terminated)
        for stale in CACHE.glob("work-*"):  # a run killed outright (SIGKILL, power)
            remove(Root(stale / "rootfs", {}))
        return measure(vm_box.record(), args.refresh, args.record)


def measure(box: dict[str, str], refresh: bool, write_section: bool) -> int:
    log = CACHE / "last-run.log"
    log.write_text("")
    steps: list[tuple[str, float, str]] = []
    try:
        verify(box, refresh, steps, log)
        outcome = "passed"
    except (Failed, OSError, RuntimeError, subprocess.SubprocessError) as e:
        outcome = f"FAILED: {e}"
    except KeyboardInterrupt:
        outcome = "FAILED: interrupted"
    print(f"vm_userland: {outcome} ({sum(s[1] for s in steps):.0f} s; log {log})")
    if write_section:
        record(section(box, steps, outcome))
    return 0 if outcome == "passed" else 1


def terminated(signum, frame) -> None:
    """SIGTERM ends the run like a failure, so the cleanup in `finally` still happens."""
    raise Failed("terminated (SIGTERM)")


def verify(box: dict[str, str], refresh: bool, steps: list, log: Path) -> None:
    """Every step in turn, each appended to `steps` as (what, seconds, result)."""
    tarball = CACHE / f"{box['codename']}-amd64.tar"
    start = time.monotonic()
    fresh = refresh or not tarball.exists()
    if fresh:
        debootstrap(box["codename"], tarball, log)
    steps.append((f"debootstrap {box['codename']}" if fresh else "base system, from the cache",
                  time.monotonic() - start, str(tarball)))
    with scratch({"/var/cache/apt/archives": CACHE / "apt"}, {"PIP_CERT": HOST_CA}) as root:
        clone = root.path / "vagrant"  # where Vagrant puts the repository
        timed(steps, "unpack, clone HEAD to /vagrant", lambda: prepare(root, tarball, clone, log))
        with shared_lock():  # netwall check may calibrate this host on a network it builds
            timed(steps, "Vagrantfile provisioning (netwall.sh install, PATH, netwall check)",
                  lambda: netem_line(step(root, provisioning(clone / "Vagrantfile"), log, 1800)))
        timed(steps, "the box's Python, Debian, Mininet, Open vSwitch",
              lambda: facts(root, box, log))
        timed(steps, f"{box['kernel_package']} ships netem",
              lambda: last_line(step(root, KERNEL.format(package=box["kernel_package"]), log,
                                     900)))
        with shared_lock():
            timed(steps, RUN, lambda: ran(step(root, RUN, log, 300)))


@contextlib.contextmanager
def shared_lock() -> Iterator[None]:
    """The lock every network-building run on this machine takes; steps are timed inside
    it, so waiting for it is not counted."""
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def scratch(binds: dict[str, Path], env: dict[str, str]) -> Iterator[Root]:
    """A root file system in a fresh work directory of the cache, removed afterwards."""
    root = Root(Path(tempfile.mkdtemp(dir=CACHE, prefix="work-")) / "rootfs", binds, env)
    try:
        yield root
    finally:
        remove(root)


def remove(root: Root) -> None:
    root.remove()
    shutil.rmtree(root.path.parent)


def debootstrap(codename: str, tarball: Path, log: Path) -> None:
    """Build the base system into the cache, whole or not at all."""
    with scratch({}, {}) as root:
        try:
            command = ["unshare", "--mount", "--propagation", "private", "debootstrap",
                       "--arch=amd64", codename, str(root.path)]  # from Debian's own mirror
            host(command, log, "debootstrap")
            # As on the box: the release's updates too, from the same mirror.
            sources = root.path / "etc/apt/sources.list"
            release = sources.read_text().splitlines()[0]
            sources.write_text(f"{release}\n{release.replace(codename, codename + '-updates')}\n")
            host(["tar", "-C", str(root.path), "-cf", f"{tarball}.part", "."], log, "tar")
            os.replace(f"{tarball}.part", tarball)
        finally:
            Path(f"{tarball}.part").unlink(missing_ok=True)


def prepare(root: Root, tarball: Path, clone: Path, log: Path) -> str:
    """A fresh copy of the base system, the stand-ins, DNS, and the repository at /vagrant."""
    root.path.mkdir()
    host(["tar", "-C", str(root.path), "-xf", str(tarball)], log, "untar")
    write(root.path / "usr/sbin/policy-rc.d", POLICY_RC_D)
    write(root.path / "usr/local/sbin/modprobe", MODPROBE)
    shutil.copyfile("/etc/resolv.conf", root.path / "etc/resolv.conf")
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root.path / HOST_CA.lstrip("/"))
    host(["git", "clone", "-q", "--no-local", str(vm_box.PROJECT), str(clone)], log, "git clone")
    head = subprocess.run(["git", "-C", str(clone), "log", "-1", "--format=%h"],
                          capture_output=True, text=True).stdout.strip()
    return f"HEAD {head}"


def facts(root: Root, box: dict[str, str], log: Path) -> str:
    """Python, Debian release and Mininet as installed, against the record."""
    python, debian, mininet, ovs = step(root, FACTS, log, 60).split()[-4:]
    got = {"python": python, "debian": debian, "mininet": mininet.split("-")[0]}
    wrong = [f"{k} {v} (recorded {box[k]})" for k, v in got.items() if v != box[k]]
    if wrong:
        raise Failed(f"the box's userland differs from bench/vm_box.json: {', '.join(wrong)}")
    return f"Python {python}, Debian {debian}, Mininet {mininet}, Open vSwitch {ovs}"


def step(root: Root, command: str, log: Path, timeout: float) -> str:
    """One command in the chroot; its output goes to the log, a failure to one line."""
    try:
        done = root.run(command, timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"{command.splitlines()[0]!r} took over {timeout:.0f} s") from None
    with log.open("a") as f:
        f.write(f"$ {command}\n{done.stdout}\n")
    if done.returncode != 0:
        last = done.stdout.strip().splitlines()[-1:] or [""]
        raise Failed(f"{command.splitlines()[0]!r} exited {done.returncode}: {last[0]}")
    return done.stdout


def host(argv: list[str], log: Path, what: str) -> None:
    with log.open("a") as f:
        if subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=ENV).returncode:
            raise Failed(f"{what} failed (see {log})")


def timed(steps: list, what: str, action) -> None:
    start = time.monotonic()
    try:
        result = action()
    except Failed as e:
        steps.append((what, time.monotonic() - start, f"**failed**: {e}"))
        raise
    steps.append((what, time.monotonic() - start, result))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


if __name__ == "__main__":
    sys.exit(main())
