"""Section 6 of issue 26: a built-in topology spec means the built-in whatever files the
working directory holds, and every numeric option is refused out of range in one line."""

from __future__ import annotations

import pytest

from emulator.cli.main import main
from topologies import parse


def test_a_file_named_like_a_builtin_never_replaces_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("ring:4", "pair", "star:8"):
        (tmp_path / name).write_text("gpus: 5\nswitches: [sw]\nlinks: [{a: gpu0, b: sw}, "
                                     "{a: gpu1, b: sw}, {a: gpu2, b: sw}, {a: gpu3, b: sw}, "
                                     "{a: gpu4, b: sw}]\n")
    assert len(parse("ring:4", "copper-800g").gpus) == 4
    assert len(parse("pair", "copper-800g").gpus) == 2
    assert len(parse("star:8", "copper-800g").gpus) == 8
    assert len(parse("./ring:4", "copper-800g").gpus) == 5  # the file, by its path
    assert len(parse(str(tmp_path / "ring:4"), "copper-800g").gpus) == 5


@pytest.mark.parametrize("words, refused", [
    (["run", "--vxlan-port", "99999"], "argument --vxlan-port: must be from 1 to 65535"),
    (["run", "--vxlan-port", "0"], "argument --vxlan-port: must be from 1 to 65535"),
    (["run", "-n", "0"], "argument -n/--iters: must be from 1"),
    (["run", "-w", "-1"], "argument -w/--warmup: must be from 0"),
    (["run", "--root", "-1"], "argument --root: must be from 0"),
    (["run", "-f", "inf"], "argument -f/--step-factor: must be a finite number"),
    (["run", "--length-m", "1e400"], "argument --length-m: must be a finite number"),
    (["run", "--spine-length-m", "0"], "argument --spine-length-m: must be > 0"),
    (["run", "--dilation", "nan"], "argument --dilation: must be a finite number"),
    (["run", "--nic-gbps", "-4"], "argument --nic-gbps: must be > 0"),
    (["compare", "-n", "999999999"], "argument -n/--iters: must be from 1 to 100000"),
    (["replay", "--scale", "0"], "argument --scale: must be > 0"),
    (["replay", "--steps", "10" * 30], "argument --steps: must be from 1"),
    (["run", "--vxlan-port", "abc"], "argument --vxlan-port: not a whole number: 'abc'"),
])
def test_a_number_option_out_of_range_is_one_line(capsys, words, refused):
    with pytest.raises(SystemExit) as stop:
        main(words)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and refused in err, err


def test_an_unknown_spine_link_is_refused_on_any_topology(capsys):
    assert main(["run", "--topology", "star:4", "--link", "copper-800g", "--spine-link",
                 "nope", "--dilation", "100"]) == 2
    assert "unknown link profile 'nope'" in capsys.readouterr().err
