"""Where the output goes (issue 26, section 2), through the real `netwall` command: a
device or a link to one named with -o is written in place and never replaced (as root,
replacing /dev/full would delete it); a full stdout, a reader gone before the first byte, a
closed stdout or stderr each end in one line or, for the closed pipe, quietly with 141.

Root matters here: only root could replace /dev/full, which is the defect these guard.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.experiments.store import open_store
from tests import records

pytestmark = pytest.mark.root

NETWALL = str(Path(sys.executable).with_name("netwall"))  # the installed console script
REPO = Path(__file__).resolve().parent.parent.parent
LOG = str(REPO / "tests" / "data" / "nccl-2.7-singleprocess-4gpus.log")
CAMPAIGN = "name: c\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, str]:
    """(store path, campaign file): one measured point, as `campaign run` stores it."""
    folder = tmp_path_factory.mktemp("outputs")
    path = folder / "c.sqlite"
    with open_store(str(path)) as s:
        p = records.point()
        s.put(p.id, records.measured(p))
    (folder / "c.yaml").write_text(CAMPAIGN)
    return str(path), str(folder / "c.yaml")


def commands(store: tuple[str, str]) -> dict[str, list[str]]:
    db, campaign = store
    return {"export": ["export", "--db", db], "trace import": ["trace", "import", LOG],
            "campaign status": ["campaign", "status", campaign, "--db", db],
            "profiles": ["profiles"], "gpus": ["gpus"], "reach": ["reach"],
            "failures": ["failures", "--gpus", "64", "--days", "1", "--links",
                         "copper-800g=3"]}


def shell(line: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def _device(path: str) -> tuple[bool, int]:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode), st.st_rdev


def test_export_to_a_device_writes_it_in_place_and_keeps_it(store):
    db, _ = store
    before = _device("/dev/full")
    run = subprocess.run([NETWALL, "export", "--db", db, "-o", "/dev/full"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == "netwall: error: cannot write /dev/full: No space left on device\n"
    assert _device("/dev/full") == before and before[0]
    null = _device("/dev/null")
    run = subprocess.run([NETWALL, "export", "--db", db, "-o", "/dev/null"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and _device("/dev/null") == null


def test_export_to_dev_stdout_writes_through_the_link(store):
    db, _ = store
    run = shell(f"{NETWALL} export --db {db} -o /dev/stdout | cat")
    assert run.returncode == 0 and run.stdout.startswith("id,campaign,experiment,")
    assert os.path.islink("/dev/stdout")


@pytest.mark.parametrize("name", ["export", "trace import", "campaign status", "profiles",
                                  "gpus", "reach", "failures"])
def test_every_command_on_a_full_stdout_or_a_broken_pipe(store, name):
    full = shell(f"{NETWALL} {' '.join(commands(store)[name])} > /dev/full")
    assert (full.returncode, full.stderr) == (
        2, "netwall: error: cannot write the output: No space left on device\n")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        broken = subprocess.run([NETWALL, *commands(store)[name]], stdout=write,
                                stderr=subprocess.PIPE, text=True, timeout=120, cwd=REPO)
    finally:
        os.close(write)
    assert (broken.returncode, broken.stderr) == (141, "")


@pytest.mark.parametrize(("name", "first"), [("export", "id,campaign,"),
                                             ("trace import", "# netwall trace imported"),
                                             ("profiles", "name ")])
def test_a_closed_stdout_is_one_line_and_a_closed_stderr_loses_no_output(store, name, first):
    argv = " ".join(commands(store)[name])
    closed = shell(f"{NETWALL} {argv} >&-")
    assert (closed.returncode, closed.stderr) == (2, "netwall: error: standard output is "
                                                     "closed\n")
    quiet = shell(f"{NETWALL} {argv} 2>&-")
    assert quiet.returncode == 0 and quiet.stdout.startswith(first)


def test_an_error_with_stderr_closed_is_the_exit_status_alone():
    run = shell(f"{NETWALL} export --db '' 2>&-; echo rc=$?")
    assert run.stdout == "rc=2\n" and run.stderr == ""
