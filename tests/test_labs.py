"""The teaching labs (labs/*.md) never rot: every command they give runs here.

A lab marks the commands a student runs as fenced blocks with the info string `sh`: every
line is `netwall ...` or `printf '...' | netwall ...` (no sudo, no other shell; a line may end
with `# comment`). A block whose info string is `sh exit=N` holds commands that must fail with
exit status N (a refused cable, a collective that cannot finish), which the lab explains.

`test_lab_commands` (root) runs them all, with `netwall` replaced by this interpreter's
`-m emulator.cli.main`, through `bash -c` from the repository root. `test_lab_structure` (no root)
checks each lab's sections, its answer key, the index, and that every command parses.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
LAB_FILES = sorted(LABS.glob("[0-9][0-9]-*.md"))
SECTIONS = ("Goals", "Setup", "Steps", "What you should see", "Questions")
CONSOLE_COMMANDS = {"links", "profiles", "counters", "collective", "iperf", "fail", "restore",
                    "ber", "help", "exit"}
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


@pytest.mark.root
@pytest.mark.parametrize("lab", LAB_FILES, ids=[p.name for p in LAB_FILES])
def test_lab_commands(lab: Path):
    lines = commands(lab)
    assert lines, f"{lab.name} has no sh blocks"
    for line, status in lines:
        try:
            done = subprocess.run(["bash", "-c", as_python(line)], cwd=ROOT, text=True,
                                  capture_output=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{lab.name}: timed out after {TIMEOUT_S} s: {line}")
        where = (f"{lab.name}: {line}\nstdout:\n{done.stdout[-3000:]}\n"
                 f"stderr:\n{done.stderr[-3000:]}")
        assert done.returncode == status, f"exit {done.returncode}, expected {status}: {where}"
        if status == 0:
            assert done.stdout.strip(), f"no output: {where}"
            assert "Traceback" not in done.stdout + done.stderr, where
        else:
            assert "netwall: error:" in done.stderr, where


def test_lab_structure():
    from emulator.cli.parsing import build_parser

    assert len(LAB_FILES) >= 5, [p.name for p in LAB_FILES]
    index = (LABS / "README.md").read_text()
    for lab in LAB_FILES:
        text = lab.read_text()
        headings = re.findall(r"^## (.+?)\s*$", text, re.M)
        for section in SECTIONS:
            assert section in headings, f"{lab.name}: no '## {section}' section"
        assert [h for h in headings if h in SECTIONS] == list(SECTIONS), \
            f"{lab.name}: sections out of order: {headings}"
        answer = LABS / "answers" / lab.name
        assert answer.is_file(), f"{lab.name}: no answer key {answer.relative_to(ROOT)}"
        assert f"answers/{lab.name}" in text, f"{lab.name} does not point to its answer key"
        assert f"({lab.name})" in index, f"labs/README.md does not list {lab.name}"
        # Each question has an answer.
        asked = len(re.findall(r"^\d+\. ", text.split("## Questions", 1)[1], re.M))
        answered = len(re.findall(r"^\d+\. ", answer.read_text(), re.M))
        assert asked and answered >= asked, f"{lab.name}: {asked} questions, {answered} answers"
        lines = commands(lab)
        assert lines, f"{lab.name} has no sh blocks"
        for line, _status in lines:
            match = LINE.match(line)
            assert match, f"{lab.name}: not a lab command: {line}"
            try:
                build_parser().parse_args(shlex.split(match["args"]))
            except SystemExit as e:
                pytest.fail(f"{lab.name}: netwall rejects the arguments ({e}): {line}")
            if match["input"]:
                for step in shlex.split(match["input"])[0].split("\\n"):
                    word = step.split()[0] if step.split() else ""
                    assert not word or word in CONSOLE_COMMANDS, \
                        f"{lab.name}: unknown console command {word!r}: {line}"
