"""Every option and file field at its edges: one clear line, exit 2, nothing left behind.

These runs are refused before anything is built; they need root only for the kernel probe.
"""

from __future__ import annotations

import pytest

from tests.conftest import netwall

pytestmark = pytest.mark.root

RUN = ["run", "--link", "copper-800g"]
CASES = [
    (RUN + ["--iters", "0"], "--iters must be >= 1"),
    (RUN + ["--iters", "-3"], "--iters must be >= 1"),
    (RUN + ["--warmup", "-1"], "--warmup >= 0"),
    (RUN + ["--iters", "many"], "invalid int value"),
    (RUN + ["--dilation", "0"], "--dilation must be a number >= 1"),
    (RUN + ["--dilation", "-5"], "--dilation must be a number >= 1"),
    (RUN + ["--dilation", "nan"], "--dilation must be a number >= 1"),
    (RUN + ["--dilation", "1e15"], "use a smaller --dilation"),
    (RUN + ["--size", "0"], "size must be positive"),
    (RUN + ["--size", "6"], "multiple of 4"),
    (RUN + ["--size", "-4"], "not a size"),
    (RUN + ["--size", "64T"], "not a size"),
    (RUN + ["--size", "512G"], "GiB available"),
    (RUN + ["-b", "16M", "-e", "1M"], "--min-bytes <= --max-bytes"),
    (RUN + ["-f", "1"], "--step-factor must be a finite number > 1"),
    (RUN + ["-f", "inf"], "--step-factor must be a finite number > 1"),
    (RUN + ["--topology", "star:1"], "star"),
    (RUN + ["--topology", "star:100000"], "1024"),
    (RUN + ["--topology", "ring:2"], "ring"),
    (RUN + ["--topology", "racks:2x"], "racks"),
    (RUN + ["--length-m", "0"], "length"),
    (RUN + ["--length-m", "-1"], "length"),
    (RUN + ["--length-m", "3"], "is 3 m long but copper-800g reaches 2 m"),
    (RUN + ["--collective", "allsum"], "no collective 'allsum'"),
    (RUN + ["--algorithm", "magic"], "no schedule for allreduce/magic"),
    (RUN + ["--collective", "broadcast", "--root", "9"], "root"),
    (RUN + ["--collective", "broadcast", "--chunk", "6"], "chunk"),
    (RUN + ["--fault", "melt:gpu0--nvs0@0"], "unknown kind 'melt'"),
    (RUN + ["--fault", "down:gpu0--gpu9@0"], "no such link"),
    (RUN + ["--layout", "pitch=1"], "racks:RxG topologies only"),
    (RUN + ["--profile-file", "/nonexistent.yaml"], "/nonexistent.yaml"),
    (["run", "--link", "copper-800g", "--link", "nope"], "unknown link profile 'nope'"),
    (["replay", "/nonexistent.jsonl"], "nonexistent.jsonl"),
    (["replay", "--workload", "nope"], "nope"),
    (["failures", "--days", "-1"], "days"),
    (["failures", "--gpus", "0"], "gpus"),
    (["failures", "--links", "nope=3"], "unknown link profile 'nope'"),
    (["campaign", "run", "/nonexistent.yaml"], "nonexistent.yaml"),
]


@pytest.mark.parametrize("args, words", CASES, ids=[" ".join(a[1:]) for a, _ in CASES])
def test_bad_input_is_refused_in_one_line(args, words):
    done = netwall(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr


TOPOLOGY_FILES = {
    "duplicate names": ("gpus: [a, a]\nlinks: [{a: a, b: a}]\n", "used twice"),
    "disconnected": ("gpus: 4\nlinks: [{a: gpu0, b: gpu1}, {a: gpu2, b: gpu3}]\n", "reach"),
    "wrong type": ("gpus: true\nlinks: []\n", "gpus"),
    "unknown key": ("gpus: 2\nlinks: [{a: gpu0, b: gpu1}]\ncolour: red\n", "colour"),
    "empty": ("", "topology file"),
}


@pytest.mark.parametrize("name", TOPOLOGY_FILES)
def test_broken_topology_files(tmp_path, name):
    text, words = TOPOLOGY_FILES[name]
    path = tmp_path / "t.yaml"
    path.write_text(text)
    done = netwall("run", "--link", "copper-800g", "--topology", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


def test_a_profile_missing_a_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: half\nfamily: copper\ndescription: x\n")
    done = netwall("run", "--profile-file", str(path), "--link", "half", "--topology", "pair")
    assert done.returncode == 2 and "missing" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
