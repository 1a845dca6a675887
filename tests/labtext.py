"""The teaching labs' commands, read from labs/*.md: shared by the structure test (no root)
and the test that runs every command (root).

A lab marks the commands a student runs as fenced blocks with the info string `sh`: every
line is `netwall ...` or `printf '...' | netwall ...` (no sudo, no other shell; a line may end
with `# comment`). A block whose info string is `sh exit=N` holds commands that must fail with
exit status N (a refused cable, a collective that cannot finish), which the lab explains.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
LAB_FILES = sorted(LABS.glob("[0-9][0-9]-*.md"))
SECTIONS = ("Goals", "Setup", "Steps", "What you should see", "Questions")
CONSOLE_COMMANDS = {"links", "profiles", "counters", "collective", "iperf", "fail", "restore",
                    "ber", "help", "exit",
                    # Mininet's own, and a command run on a node (`gpu0 ping -c1 gpu3`)
                    "nodes", "net", "dump", "intfs", "pingall", "pingpair", "link"}
NODE = re.compile(r"^(?:gpu|nvs|rack|spine)[0-9]+$")
TIMEOUT_S = 180

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)
LINE = re.compile(r"^(?:printf (?P<input>'[^']*') \| )?netwall (?P<args>[^#]*?)\s*(?:#.*)?$")


def commands(path: Path) -> list[tuple[str, int]]:
    """(command line, expected exit status) for every line of the file's sh blocks."""
    out = []
    for block in FENCE.finditer(path.read_text()):
        info = block["info"].split()
        if not info or info[0] != "sh":
            continue
        status = 0
        for word in info[1:]:
            if word.startswith("exit="):
                status = int(word.removeprefix("exit="))
        lines = block["body"].replace("\\\n", " ").splitlines()
        out += [(line.strip(), status) for line in lines if line.strip()]
    return out


def as_python(line: str) -> str:
    """The command with `netwall` run as this interpreter's `-m emulator.cli.main`."""
    match = LINE.match(line)
    assert match, f"not a lab command (netwall ... or printf '...' | netwall ...): {line}"
    netwall = f"{shlex.quote(sys.executable)} -m emulator.cli.main"
    prefix = f"printf {match['input']} | " if match["input"] else ""
    return f"{prefix}{netwall} {match['args']}"
