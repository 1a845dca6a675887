"""What a user reads starts with netwall's own lines: importing the modules a command loads
prints nothing (cryptography 51 made asyncssh's import warn a dozen lines about DSA, above
the one line of every multi-host command's error)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["emulator.remote.ssh", "emulator.remote.nshosts",
                                    "emulator.cli.main"])
def test_importing_prints_nothing(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
