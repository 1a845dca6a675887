"""Every option and file field at its edges: one clear line, exit 2, nothing left behind.

These runs are refused before anything is built; they need root only for the kernel probe.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import netwall

pytestmark = pytest.mark.root

RUN = ["run", "--link", "copper-800g"]
CASES = [
    (RUN + ["--iters", "0"], "--iters: must be from 1 to 100000, got 0"),
    (RUN + ["--iters", "-3"], "--iters: must be from 1 to 100000, got -3"),
    (RUN + ["--warmup", "-1"], "--warmup: must be from 0 to 100000, got -1"),
    (RUN + ["--iters", "many"], "--iters: not a whole number: 'many'"),
    (RUN + ["--dilation", "0"], "--dilation: must be > 0"),
    (RUN + ["--dilation", "-5"], "--dilation: must be > 0"),
    (RUN + ["--dilation", "0.5"], "--dilation must be a number >= 1"),
    (RUN + ["--dilation", "nan"], "--dilation: must be a finite number"),
    (RUN + ["--dilation", "1e15"], "--dilation: must be > 0 and <= 1e+09"),
    (RUN + ["--size", "0"], "size must be positive"),
    (RUN + ["--size", "6"], "multiple of 4"),
    (RUN + ["--size", "-4"], "not a size"),
    (RUN + ["--size", "64T"], "not a size"),
    (RUN + ["--size", "512G"], "GiB available"),
    (RUN + ["-b", "16M", "-e", "1M"], "--min-bytes <= --max-bytes"),
    (RUN + ["-f", "1"], "--step-factor: must be > 1"),
    (RUN + ["-f", "inf"], "--step-factor: must be a finite number"),
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
    (RUN + ["--layout", "pitch=1"], "racks:RxG and cluster:DxG topologies only"),
    (RUN + ["--profile-file", "/nonexistent.yaml"], "/nonexistent.yaml"),
    (["run", "--link", "copper-800g", "--link", "nope"], "unknown link profile 'nope'"),
    (["replay", "/nonexistent.jsonl"], "nonexistent.jsonl"),
    (["replay", "--workload", "nope"], "nope"),
    (["failures", "--days", "-1"], "days"),
    (["failures", "--gpus", "0"], "gpus"),
    (["failures", "--links", "nope=3"], "unknown link profile 'nope'"),
    (["campaign", "run", "/nonexistent.yaml"], "nonexistent.yaml"),
    # issue 12: every option bounded before anything is built
    (RUN + ["--fault", "flap=1000000:gpu0--nvs0@0+1us"], "use 1 to 1000"),
    (RUN + ["--fault", "down:gpu0--nvs0@0+99999999999999999999s"], "within 3600 s"),
    (RUN + ["--iters", "1000000000"], "must be from 1 to 100000"),
    (RUN + ["-b", "4", "-e", "1G", "-f", "1.0000001"], "more than 10000 sizes"),
    (RUN + ["--size", "99999999999999999999"], "not a size"),
    (["replay", "--workload", "dp-step", "--steps", "1000000000"], "steps"),
    (["replay", "--workload", "dp-step", "--scale", "inf"], "scale"),
    (["failures", "--seed", "-1"], "seed must be an integer"),
    (["failures", "--gpus", "1000000000000000", "--days", "1000000000"], "gpus must be"),
    (["failures", "--trials", "100000000"], "trials must be an integer from 1 to 1000000"),
    (["run", "--topology", "racks:2x4", "--link", "copper-800g", "--layout",
      "pitch=1,pitch=2"], "given twice"),
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


JUNK = bytes(range(256)) * 4
BAD_FILES = {
    "junk profile": (["run", "--link", "copper-800g", "--profile-file", "{}"], JUNK,
                     "is not UTF-8 text"),
    "junk campaign": (["campaign", "status", "{}"], JUNK, "is not UTF-8 text"),
    "empty trace": (["replay", "{}", "--link", "copper-800g"], b"", "no calls"),
    "duplicate topology key": (["run", "--link", "copper-800g", "--topology", "{}"],
                               b"gpus: 2\nlinks: [{a: gpu0, b: gpu1}]\ngpus: 3\n", "given twice"),
    "escaping campaign name": (["campaign", "run", "{}"],
                               b"name: ../../escaped\ntopologies: [pair]\n"
                               b"links: [copper-800g]\nsizes: [4K]\n", "is not a name"),
    "a billion repetitions": (["campaign", "status", "{}"],
                              b"topologies: [pair]\nlinks: [copper-800g]\nsizes: [4K]\n"
                              b"repetitions: 1000000000\n", "from 1 to 100000"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_are_refused_in_one_line_before_building(tmp_path, name):
    args, content, words = BAD_FILES[name]
    path = tmp_path / "input.yaml"
    path.write_bytes(content)
    done = netwall(*[a.format(path) for a in args])
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert not (tmp_path.parent.parent / "escaped.sqlite").exists()


def test_junk_on_the_profile_path_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "junk.yaml").write_bytes(JUNK)
    monkeypatch.setenv("NETWALL_PROFILE_PATH", str(tmp_path))
    done = netwall("profiles")
    assert done.returncode == 2 and "is not UTF-8 text" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_fault_that_never_struck_says_so_in_the_table_and_json():
    """A fault 1 s into a call of microseconds cannot strike: the run must say it did not."""
    args = ["run", "--topology", "pair", "--link", "copper-800g", "--size", "64K",
            "--iters", "1", "--warmup", "0", "--fault", "down:gpu0--gpu1@1s"]
    table = netwall(*args)
    assert table.returncode == 0, table.stderr
    assert "down:gpu0--gpu1@1s DID NOT STRIKE: the timed calls ended at" in table.stdout
    done = netwall(*args, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["results"][0]
    assert result["faults_not_struck"] == ["down:gpu0--gpu1@1s"]
    assert any(e["state"] == "not struck" for e in result["faults"])
