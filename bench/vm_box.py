"""The Vagrant box's userland as data, and the pure check that it can install netwall.

The VM path broke without anyone noticing when setup.cfg asked for more than the box's
Python gave (an Ubuntu 22.04 box, Python 3.10, against python_requires >= 3.11). vm_box.json
records what the box provides; the fast suite checks that record against the Vagrantfile and
setup.cfg (tests/unit/test_vm_box.py), and bench/vm_userland.py checks it against the box's real
userland, built with debootstrap, so a bump on either side is caught.
"""

from __future__ import annotations

import configparser
import json
import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PROJECT = Path(__file__).resolve().parent.parent
RECORD = Path(__file__).with_name("vm_box.json")


def record() -> dict[str, str]:
    """The box: its Vagrant name, Debian release and codename, Python and Mininet versions."""
    return json.loads(RECORD.read_text())


def vagrant_box(vagrantfile: str) -> str:
    """The box a Vagrantfile names in its one `config.vm.box = "..."` line."""
    boxes = re.findall(r'^\s*config\.vm\.box\s*=\s*"([^"]+)"', vagrantfile, re.MULTILINE)
    if len(boxes) != 1:
        raise ValueError(f"the Vagrantfile names {len(boxes)} boxes, not one")
    return boxes[0]


def requirements(setup_cfg: str) -> tuple[str, list[Requirement]]:
    """python_requires, and what `netwall.sh install` installs: install_requires and [dev]."""
    cfg = configparser.ConfigParser()
    cfg.read_string(setup_cfg)
    lines = (cfg["options"]["install_requires"] + cfg["options.extras_require"]["dev"])
    return cfg["options"]["python_requires"], [Requirement(x) for x in lines.split() if x]


def pinned_requires_python(reqs: list[Requirement]) -> dict[str, str | None]:
    """Each pinned package's own Requires-Python, read from its installed distribution.

    Only pins are checked: for a range (numpy>=1.24) pip picks a release the box's Python
    takes. The installed version must be the pinned one, or its metadata says nothing.
    """
    found = {}
    for req in reqs:
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if not pins:
            continue
        installed = metadata.version(req.name)
        if installed != pins[0]:
            raise LookupError(f"{req.name} {installed} is installed but setup.cfg pins "
                              f"{pins[0]}: rerun ./netwall.sh install")
        found[f"{req.name}=={pins[0]}"] = metadata.metadata(req.name).get("Requires-Python")
    return found


def refusals(python: str, python_requires: str, pins: dict[str, str | None]) -> list[str]:
    """Why a box with this Python cannot install netwall (empty when it can)."""
    why = []
    if not SpecifierSet(python_requires).contains(python, prereleases=True):
        why.append(f"setup.cfg's python_requires {python_requires} refuses Python {python}")
    for pin, requires in pins.items():
        if requires and not SpecifierSet(requires).contains(python, prereleases=True):
            why.append(f"{pin} requires Python {requires}, the box has {python}")
    return why
