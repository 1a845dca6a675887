"""The teaching labs (labs/*.md) never rot: every command they give runs here (root), with
`netwall` replaced by this interpreter's `-m emulator.cli.main`, through `bash -c` from the
repository root. tests/unit/test_lab_structure.py checks their structure without root.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.labtext import LAB_FILES, ROOT, TIMEOUT_S, as_python, commands


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
