"""The teaching labs (labs/*.md) never rot: every command they give runs here (root), with
`netwall` replaced by this interpreter's `-m emulator.cli.main`, through `bash -c` from the
repository root. tests/unit/test_lab_structure.py checks their structure without root.

This test checks that the commands run, not the figures they print (those are the benches'
job): `run` and `replay` lines that leave the dilation to netwall run at a fixed one without
the proof, and `compare` without the proof. At the dilations netwall chooses and proves on a
2-core host, the commands of labs 1-3, 5 and 6 took about 5.5 minutes one after another
(2026-12-06, the machine shared with other work); this way all six labs take under 4.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.labtext import LAB_FILES, ROOT, TIMEOUT_S, as_python, commands

#: Dilation for lab lines that leave it to netwall: large enough that a step of 8 ranks
#: is not all host time, small enough that a lab's slowest line takes seconds.
TEST_DILATION = "2000"


def quick(line: str) -> str:
    """The lab line with the test's fixed dilation and no proof where it applies."""
    words = line.split("#")[0].split()
    command = words[words.index("netwall") + 1]
    extra = []
    if command in ("run", "replay") and "--dilation" not in words:
        extra = ["--dilation", TEST_DILATION, "--no-probe"]
    elif command == "compare":
        extra = ["--no-probe"]
    return as_python(line) + "".join(f" {word}" for word in extra)


@pytest.mark.root
@pytest.mark.parametrize("lab", LAB_FILES, ids=[p.name for p in LAB_FILES])
def test_lab_commands(lab: Path):
    lines = commands(lab)
    assert lines, f"{lab.name} has no sh blocks"
    for line, status in lines:
        try:
            done = subprocess.run(["bash", "-c", quick(line)], cwd=ROOT, text=True,
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
