"""Issue 12's cases, without a network: every input bounded before it is expanded, every
path confined, every refusal one line (NetwallError, or the CLI's exit 2)."""

from __future__ import annotations

import sys
import time

import pytest

from emulator.cli.main import main
from emulator.experiments.campaign import load, loads
from foundation.errors import NetwallError
from foundation.inputs import MAX_DEPTH, load_yaml, read_text

BASE = "name: t\ntopologies: [pair]\nlinks: [copper-800g]\nsizes: [64K]\n"
JUNK = bytes(range(256)) * 4


def json_range(n: int) -> str:
    return "[" + ", ".join(str(i) for i in range(n)) + "]"


def one_line(fn, *args, **kwargs) -> str:
    with pytest.raises(NetwallError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 400
    return message


def cli_error(capsys, *argv: str) -> str:
    """Run the CLI in-process; it must refuse in one line with exit 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


# --- campaign files: bounded before expansion, no path from contents ----------------------


def test_a_billion_repetitions_is_refused_at_once():
    began = time.process_time()
    message = one_line(loads, BASE + "repetitions: 1000000000\n", "c.yaml")
    assert "repetitions" in message and "100000" in message
    assert time.process_time() - began < 5  # nothing was expanded (a bound, not a timing)


def test_a_huge_matrix_is_refused_before_it_is_made():
    sizes = ", ".join(f"{4 * (i + 1)}" for i in range(2000))
    seeds = ", ".join(str(i) for i in range(1000))
    text = BASE.replace("[64K]", f"[{sizes}]") + f"seeds: [{seeds}]\n"
    assert "at most 100000 (split it into campaigns)" in one_line(loads, text, "c.yaml")


def test_experiments_add_up_against_the_bound():
    exp = "  - name: {}\n    repetitions: 40000\n"
    text = BASE + "experiments:\n" + "".join(exp.format(f"e{i}") for i in range(3))
    assert "points; at most 100000" in one_line(loads, text, "c.yaml")


def test_a_list_longer_than_the_bound_is_refused():
    seeds = ", ".join(str(i) for i in range(10_001))
    assert "at most 10000" in one_line(loads, BASE + f"seeds: [{seeds}]\n", "c.yaml")


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/abs", "a/b", ".hidden", "x" * 101,
                                  "semi;colon", "nul\x00"])
def test_a_campaign_name_is_never_a_path(name):
    text = BASE.replace("name: t", f"name: {name!r}".replace("'", '"'))
    message = one_line(loads, text.replace('"nul\x00"', '"nul\\0"'), "c.yaml")
    assert "key 'name'" in message and "is not a name" in message


def test_binary_junk_as_a_campaign_file(tmp_path):
    path = tmp_path / "junk.yaml"
    path.write_bytes(JUNK)
    assert "is not UTF-8 text" in one_line(load, path)


# --- files in general -------------------------------------------------------------------


def test_read_text_refuses_fifos_directories_and_oversized_files(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo")
    assert "not a regular file" in one_line(read_text, tmp_path / "fifo", "campaign")
    assert "campaign" in one_line(read_text, tmp_path, "campaign")
    (tmp_path / "big").write_text("x" * 2048)
    assert "larger than" in one_line(read_text, tmp_path / "big", "trace", limit=1024)
    (tmp_path / "nul").write_text("a\0b")
    assert "NUL" in one_line(read_text, tmp_path / "nul", "trace")


def test_yaml_nesting_and_aliases_are_bounded():
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert "nested deeper" in one_line(load_yaml, deep, "f")
    # libyaml's composer would recurse in C and crash the process on this
    assert "nested deeper" in one_line(load_yaml, "[" * 1_000_000 + "]" * 1_000_000, "f")
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        laughs += f"{'abcdefgh'[i]}: &{'abcdefgh'[i]} [" + ", ".join(
            [f"*{'abcdefgh'[i - 1]}"] * 10) + "]\n"
    assert "aliases expanded" in one_line(load_yaml, laughs, "f")
    assert "refers to the value that contains it" in one_line(load_yaml, "&a [*a]", "f")
    assert "bad YAML value" in one_line(load_yaml, "a: 2001-13-45", "f")


def test_yaml_values_are_counted_before_any_node_is_made():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = "[" + "a," * (2 << 20) + "a]"  # 4 MiB, 2 million values
    assert "more than 200000 values" in one_line(load_yaml, text, "f")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200  # composing it would take ~700 MiB


def test_a_trace_line_is_bounded():
    from traffic.trace import parse_trace

    line = '{"collective": "allreduce", "bytes": 4, "group": [' + "1," * (1 << 20) + "2]}"
    assert "longer than" in one_line(parse_trace, [line], "t.jsonl")


def test_yaml_duplicate_keys_are_refused():
    assert "line 2: key 'a': given twice" in one_line(load_yaml, "a: 1\na: 2\n", "f")
    assert load_yaml("a: 1\nb: {a: 2}\n", "f") == {"a": 1, "b": {"a": 2}}


def test_duplicate_keys_in_a_topology_file(tmp_path):
    from topologies import parse

    path = tmp_path / "t.yaml"
    path.write_text("gpus: 2\nlinks: [{a: gpu0, b: gpu1}]\ngpus: 4\n")
    assert "line 3: key 'gpus': given twice" in one_line(parse, str(path), "copper-800g")


@pytest.mark.parametrize("env", [False, True])
def test_binary_junk_as_a_profile_file(tmp_path, monkeypatch, env):
    from emulator.models.profiles import catalogue

    path = tmp_path / "junk.yaml"
    path.write_bytes(JUNK)
    if env:
        monkeypatch.setenv("NETWALL_PROFILE_PATH", str(tmp_path))
        assert "is not UTF-8 text" in one_line(catalogue)
    else:
        assert "is not UTF-8 text" in one_line(catalogue, [path])


# --- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["--seed", "-1"], "seed must be an integer"),
    (["--gpus", "1000000000000000", "--days", "1000000000"], "gpus must be an integer"),
    (["--days", "1e9"], "days must be > 0 and <= 36525"),
    (["--trials", "100000000"], "trials must be an integer from 1 to 1000000"),
    (["--links", "optical-800g=nan"], "must be 0 to 1000"),
])
def test_failures_options_are_bounded(capsys, argv, words):
    assert words in cli_error(capsys, "failures", *argv)


# --- faults: bounded, and reported when they never struck ---------------------------------


@pytest.mark.parametrize("spec, words", [
    ("flap=1000000:gpu0--gpu1@0+1us", "bad value '1000000' for flap (use 1 to 1000)"),
    ("down:gpu0--gpu1@0+99999999999999999999s", "within 3600 s"),
    ("down:gpu0--gpu1@1e400s", "the start must be a time"),
    ("flap=1000:gpu0--gpu1@0+2s", "within 3600 s"),
    ("channels=99999999:gpu0--gpu1@0", "use 1 to 10000"),
    ("ber=nan:gpu0--gpu1@0", "use a rate in [0, 1)"),
    ("down:gpu0--gpu1@0\n+1s", "fault 'down:gpu0--gpu1@0\\n+1s'"),
    ("x" * 10_000, "fault 'xxxx"),
])
def test_fault_specs_are_bounded(spec, words):
    from emulator.models.faults import parse

    assert words in one_line(parse, spec)


def test_a_fault_after_the_timed_calls_is_recorded_as_not_struck():
    from types import SimpleNamespace

    from emulator.kernel.links import Injector
    from emulator.models.faults import parse
    from emulator.result import FaultEvent

    links = SimpleNamespace(faultable=True)
    early, late = parse("down:gpu0--gpu1@0"), parse("ber=1e-7:gpu0--gpu1@1ms")
    injector = Injector(links, [early, late], {"gpu0--gpu1": 0}, 1000.0)
    injector.struck[id(early)] = 5e-6  # the tick applied it 5 us into the calls
    assert injector.missed(20e-6) == [late]
    assert injector.record == [FaultEvent(t_s=None, link="gpu0--gpu1", rate_gbps=None,
                                          event="ber=1e-7:gpu0--gpu1@1ms DID NOT STRIKE: the "
                                                "timed calls ended at 20.0 us",
                                          state="not struck")]
    injector = Injector(links, [early], {"gpu0--gpu1": 0}, 1000.0)
    injector.struck[id(early)] = 30e-6  # applied, but only after the calls had ended
    assert injector.missed(20e-6) == [early]


@pytest.mark.parametrize("fault", [
    dict(kind="down", link=("gpu0", "gpu1"), at_s=1e-3),
    dict(kind="flap", link=("gpu0", "gpu1"), at_s=0.0, duration_s=2e-5, count=3),
    dict(kind="channels", link=("a", "b"), at_s=0.5, duration_s=1.0, channels=40),
    dict(kind="ber", link=("a", "b"), at_s=1e-6, ber=1e-7),
])
def test_a_fault_built_in_python_is_named_by_a_spec_that_parses_back(fault):
    from emulator.models.faults import Fault, parse

    built = Fault(**fault)
    assert parse(built.spec) == built


def test_a_campaign_reports_faults_that_did_not_strike(tmp_path):
    import io

    from emulator.experiments.export import export
    from emulator.experiments.runner import run_campaign
    from emulator.experiments.store import open_store
    from tests.unit.test_campaign import FakeEmulation

    campaign = loads(BASE.replace("[64K]", "[4K]") + 'faults: [["down:gpu0--gpu1@1s"]]\n')
    out = io.StringIO()
    with open_store(str(tmp_path / "s.sqlite")) as store:
        run_campaign(campaign, store, out, emulation=FakeEmulation)
        records = store.records()
    assert "down:gpu0--gpu1@1s did not strike" in out.getvalue()
    csv = io.StringIO()
    export(records, "csv", csv)
    assert "not_struck" in csv.getvalue().splitlines()[0]
    assert ",down:gpu0--gpu1@1s,down:gpu0--gpu1@1s," in csv.getvalue()


# --- what netwall writes: confined, explicit modes, no following of planted links ----------


@pytest.fixture
def umask_000():
    import os

    old = os.umask(0)
    yield
    os.umask(old)


def test_report_refuses_a_planted_symlink_instead_of_following_it(tmp_path, umask_000):
    from emulator.experiments.report import report

    out, target = tmp_path / "out", tmp_path / "precious"
    target.write_text("keep me")
    out.mkdir(mode=0o755)
    (out / "index.html").symlink_to(target)
    with pytest.raises(NetwallError, match="index.html: it is a symbolic link"):
        report([], out)
    assert target.read_text() == "keep me" and (out / "index.html").is_symlink()
    assert [p.name for p in out.iterdir()] == ["index.html"]  # no temporary file left
    (out / "index.html").unlink()
    page = report([], out)
    assert "netwall campaign report" in page.read_text()
    assert page.stat().st_mode & 0o777 == 0o644


def test_report_and_state_are_not_world_writable_under_umask_000(tmp_path, monkeypatch,
                                                                 umask_000):
    from emulator.experiments.report import report
    from emulator.kernel import records as state

    page = report([], tmp_path / "a" / "b")
    for path in (tmp_path / "a", tmp_path / "a" / "b"):
        assert path.stat().st_mode & 0o777 == 0o755
    assert page.stat().st_mode & 0o777 == 0o644
    monkeypatch.setattr(state, "STATE_DIR", tmp_path / "run")
    record = state.Record("pair")
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755
    assert record.path.stat().st_mode & 0o777 == 0o644
    record.remove()
    from emulator.experiments.store import open_store

    with open_store(str(tmp_path / "results" / "c.sqlite")) as store:
        store.put("x", {"kind": "point"})
    assert (tmp_path / "results").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "results" / "c.sqlite").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("where", ["file", "under-file", "proc"])
def test_report_out_that_cannot_be_written_is_one_line(tmp_path, capsys, where):
    from emulator.experiments.store import open_store

    db = tmp_path / "r.sqlite"
    open_store(str(db)).close()
    (tmp_path / "file").write_text("x")
    out = {"file": tmp_path / "file", "under-file": tmp_path / "file" / "sub",
           "proc": "/proc/netwall-report"}[where]
    assert "cannot" in cli_error(capsys, "report", "--db", str(db), "--out", str(out))
    assert (tmp_path / "file").read_text() == "x"


def test_a_results_database_is_never_a_planted_link(tmp_path):
    from emulator.experiments.store import open_store

    (tmp_path / "target").write_text("precious")
    (tmp_path / "c.sqlite").symlink_to(tmp_path / "target")
    assert "symbolic link" in one_line(open_store, str(tmp_path / "c.sqlite"))
    assert (tmp_path / "target").read_text() == "precious"


def test_export_to_a_directory_is_one_line(tmp_path, capsys):
    from emulator.experiments.store import open_store

    db = tmp_path / "r.sqlite"
    open_store(str(db)).close()
    assert "is a directory" in cli_error(capsys, "export", "--db", str(db), "-o", str(tmp_path))


@pytest.mark.parametrize("content", ['{"pid": "abc"}', "[]", '"x"', "{", '{"pid": 1e999}',
                                     '{"pid": 99999999999999999999}', '{"pid": 0}',
                                     '{"pid": true, "hosts": "abc", "agents": [1.5, -1]}'])
def test_a_malformed_state_record_does_not_stop_clean(tmp_path, monkeypatch, content):
    from emulator.kernel import records as state

    monkeypatch.setattr(state, "STATE_DIR", tmp_path)
    (tmp_path / "junk-0.json").write_text(content)
    (tmp_path / "1-0.json").write_text('{"pid": 1, "hosts": ["x"]}')  # init: alive, kept
    removed = state.clean()
    assert removed == ["removed the record of dead run 0"]
    assert [p.name for p in tmp_path.iterdir()] == ["1-0.json"]
    assert state.clean() == []


# --- interrupts --------------------------------------------------------------------------


def test_ctrl_c_reaches_the_controller_not_the_fork_server_or_agents(capfd):
    """A terminal signals its foreground process group; the fork server (and the agents it
    forks, which inherit its group) are not in it. A controller that goes away mid-request
    ends the server quietly."""
    import os
    import socket

    from traffic.forkserver import PROJECT_ROOT, ForkServer

    server = ForkServer(dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
    assert os.getpgid(server.proc.pid) == server.proc.pid != os.getpgrp()
    null = os.open(os.devnull, os.O_RDWR)
    socket.send_fds(server._sock, [str(os.getpid()).encode()], [null, null, null])
    os.close(null)
    server.close()  # before reading the answer, as an interrupted controller does
    assert server.proc.returncode == 0
    assert "Traceback" not in capfd.readouterr().err  # no BrokenPipeError from the server


def test_interrupting_a_command_that_builds_nothing_claims_nothing(capsys, monkeypatch):
    from emulator.cli import main as cli

    def interrupted(_args):
        raise KeyboardInterrupt

    from emulator.kernel import records as state

    monkeypatch.setitem(cli.COMMANDS, "reach", interrupted)
    monkeypatch.setattr(state, "_made", [])  # this process built nothing
    assert main(["reach"]) == 130
    assert capsys.readouterr().err == "netwall: interrupted\n"
    monkeypatch.setattr(state, "_made", ["a record"])
    assert main(["reach"]) == 130
    assert capsys.readouterr().err == "netwall: interrupted; the emulated network was removed\n"


# --- the console refuses a bad command and stays open -------------------------------------


@pytest.mark.parametrize("line, words", [
    ("collective allreduce ring abc", "not a size: 'abc'"),
    ("collective allreduce ring 64T", "not a size"),
    ("collective allreduce ring 4M extra", "usage: collective"),
    ("iperf gpu0 gpu1 abc", "usage: iperf"),
    ("iperf gpu0 gpu1 -5", "usage: iperf"),
    ("iperf gpu0 gpu1 0", "usage: iperf"),
    ("iperf gpu0 gpu1 ²", "usage: iperf"),
    ("iperf gpu0 gpu1 99999", "usage: iperf"),
    ("iperf gpu0 gpu9", "usage: iperf"),
])
def test_a_bad_console_command_is_one_line_and_the_console_goes_on(capsys, line, words):
    from types import SimpleNamespace

    from emulator.cli.console import NetwallCLI

    cli = NetwallCLI.__new__(NetwallCLI)  # the command loop alone, without a network
    cli.emu = SimpleNamespace(topology=SimpleNamespace(gpus=("gpu0", "gpu1")))
    cli.stdout = sys.stdout
    assert cli.onecmd(line) is False  # False: the console does not stop
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("error: ") and words in out[0], out


# --- traces and layouts --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# a comment only\n"])
def test_an_empty_trace_is_refused_before_anything_is_built(tmp_path, text):
    from traffic.trace import load_trace

    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    assert "no calls" in one_line(load_trace, path)


def test_binary_junk_as_a_trace_or_nccl_log(tmp_path):
    from traffic.nccl_log import convert
    from traffic.trace import load_trace

    path = tmp_path / "junk"
    path.write_bytes(JUNK)
    assert "not UTF-8 text" in one_line(load_trace, path)
    assert "NUL bytes" in one_line(convert, path)  # a log tolerates stray bytes, not binary


@pytest.mark.parametrize("line, words", [
    ('{"collective": "allreduce", "bytes": 2199023255552, "group": "all"}', "bytes"),
    ('{"collective": "allreduce", "bytes": 4, "group": "all", "gap_us": 1e300}', "gap_us"),
    ('{"collective": "allreduce", "bytes": 4, "group": ' + json_range(2000) + "}", "2 to 1024"),
])
def test_trace_values_are_bounded(line, words):
    from traffic.trace import parse_trace

    assert words in one_line(parse_trace, [line], "t.jsonl")


@pytest.mark.parametrize("text", ["pitch=1,pitch=2", "gpus=8,gpus_per_rack=8", "row=2, row=2"])
def test_a_layout_key_given_twice_is_refused(text):
    from topologies.layout import parse_layout

    assert "given twice" in one_line(parse_layout, text)


@pytest.mark.parametrize("value,low,high,whole", [
    (3, 1, 9, True), (1, 1, 1, True), (0, 1, 9, False), (10, 1, 9, False),
    (True, 0, 9, False), (2.0, 1, 9, False), ("3", 1, 9, False), (10**12, 0, float("inf"), True),
])
def test_is_whole_takes_only_true_integers_in_range(value, low, high, whole):
    from foundation.inputs import is_whole
    assert is_whole(value, low, high) is whole
