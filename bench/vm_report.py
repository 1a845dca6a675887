"""What the VM userland bench (bench/vm_userland.py) reads from its steps' output, and the
section of BENCHMARKS.md it writes: pure text handling, tested in the default suite."""

from __future__ import annotations

import re
from pathlib import Path

from bench import vm_box
from bench.sections import splice
from foundation.text.table import markdown as md

HEADING = "## The Vagrant box's userland (bench/vm_userland.py)"


class Failed(Exception):
    """A step failed; the message is the one-line reason."""


def provisioning(vagrantfile: Path) -> str:
    """The Vagrantfile's inline provisioning script, as the VM would run it."""
    text = vagrantfile.read_text()
    found = re.search(r"<<-SHELL\n(.*?)\n\s*SHELL\n", text, re.DOTALL)
    if not found:
        raise Failed("the Vagrantfile has no inline provisioning script")
    return found.group(1)


def netem_line(out: str) -> str:
    """`netem yes` or `netem NO`, from `netwall check`'s report."""
    return next((" ".join(x.split()[:2]) for x in out.splitlines()
                 if x.strip().startswith("netem ")), "netem ?")


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def ran(out: str) -> str:
    """The run's last row, checked to have verified its result (its `check` column says ok),
    with the dilation it ran at and the host's share, or NOT FAITHFUL if flagged.

    Columns are found by the names in the table's header line (`# size count ...`), so a
    column added to `netwall run`'s table, or a note or cost line after the rows, does not
    shift what is read."""
    lines = out.strip().splitlines()
    header = next((x.lstrip("#").split() for x in lines
                   if x.startswith("#") and {"size", "check"} <= set(x.lstrip("#").split())),
                  None)
    rows = [x.split() for x in lines
            if header and not x.startswith(("#", "netwall")) and len(x.split()) == len(header)]
    if not rows or rows[-1][header.index("check")] != "ok":
        raise Failed(f"netwall run did not verify its result: {lines[-1:]}")
    row = dict(zip(header, rows[-1], strict=True))
    proof = "NOT FAITHFUL" if any("NOT FAITHFUL" in x for x in lines) else "faithful"
    extra = f", D {row['D']}, host {row['host']}, {proof}" if "host" in row else ""
    return (f"{row['size']} {row['count']} {row['type']} {row['time(us)']} ... ok{extra}")


def section(box: dict[str, str], steps: list, outcome: str) -> str:
    """BENCHMARKS.md's section for this bench."""
    table = md(("step", "time (s)", "result"),
               [(what, f"{seconds:.0f}", result) for what, seconds, result in steps], align="<><")
    total = sum(s[1] for s in steps)
    return f"""{HEADING}

The Vagrantfile's provisioning on the box's own userland: Debian {box['debian']}
({box['codename']}) built by debootstrap, in a chroot, from a clean clone of HEAD
(`sudo .venv/bin/python -m bench.vm_userland --record`, not part of `netwall.sh bench`).
The kernel is this machine's (a chroot shares it), so `modprobe` is skipped in the chroot
and `netwall check` there reports this machine's netem: NO where its kernel has none, as
expected; the box's own kernel package is checked to ship sch_netem.ko instead. The base
system and apt's downloads are cached in /var/cache/netwall/vm-userland after a first run.
Times leave out waiting for the lock that network-building runs here share.

{table}

Result: {outcome}, {total:.0f} s in all.
"""


def record(text: str) -> None:
    """Replace this bench's section of BENCHMARKS.md (or add it), leaving the others."""
    path = vm_box.PROJECT / "BENCHMARKS.md"
    path.write_text(splice(path.read_text(), [text]))
