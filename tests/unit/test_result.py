"""The typed results of `run` and `replay`: their JSON form is exactly what netwall printed
before results were typed (tests/data holds one of each, from `netwall run --json` and
`netwall replay --json` of that version, trimmed), and the tables read them."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from emulator.cli import tables
from emulator.experiments.report import row
from emulator.result import (
    Attempt,
    CallRow,
    FaultEvent,
    ReplayResult,
    RunResult,
    StepTime,
    TraceAttempt,
)
from foundation.errors import NetwallError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_json() -> dict:
    return json.loads((ROOT / "tests/data/run-result.json").read_text())


@pytest.fixture
def replay_json() -> dict:
    return json.loads((ROOT / "tests/data/replay-result.json").read_text())


def test_a_run_result_round_trips_to_the_same_json(run_json):
    result = RunResult.from_dict(run_json)
    assert result.to_dict() == run_json
    assert list(result.to_dict()) == list(run_json)  # same keys, in the same order
    assert json.dumps(result.to_dict(), allow_nan=False) == json.dumps(run_json)


def test_a_run_result_has_typed_fields(run_json):
    result = RunResult.from_dict(run_json)
    assert (result.link, result.topology, result.bytes) == ("copper-800g", "star:4", 65536)
    assert all(isinstance(e, FaultEvent) for e in result.faults)
    assert result.faults[0] == FaultEvent(run_json["faults"][0]["t_s"], "gpu0--nvs0",
                                          "down starts", 0.0, "down")
    (attempt,) = result.dilation_attempts
    assert isinstance(attempt, Attempt) and attempt.dilation == result.dilation
    assert result.fidelity["faithful"] is False  # the verdict stays its maker's dict


def test_a_replay_result_round_trips_to_the_same_json(replay_json):
    result = ReplayResult.from_dict(replay_json)
    assert json.dumps(result.to_dict(), allow_nan=False) == json.dumps(replay_json)
    assert all(isinstance(c, CallRow) for c in result.calls)
    step = replay_json["steps"][0]
    assert result.steps == [StepTime(0, step["time_s"], [1, 239], step["exposed_s"],
                                     step["exposed_share"], step["streams"])]
    assert all(isinstance(a, TraceAttempt) for a in result.dilation_attempts)
    assert (result.trace, result.link, result.topology) == ("dp-tp", "copper-800g",
                                                            "racks:2x2")


def test_every_key_the_readme_lists_is_a_field():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("Each `--json` result carries"):]
    section = section[:section.index("\n\n")]
    listed = set(re.findall(r"`(\w+)`", section))
    fields = {f.name for f in dataclasses.fields(RunResult)}
    # the verdict's own keys are listed under `fidelity`
    assert listed - fields <= {"faithful", "flags", "host_error", "probe_dilation",
                               "fix_dilation", "cpu_busy"}
    assert {"link", "topology", "fidelity", "links", "slowdown_floor"} <= listed


def test_results_are_frozen(run_json):
    result = RunResult.from_dict(run_json)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.link = "optical-800g"


@pytest.mark.parametrize("change,words", [
    (lambda d: d.pop("topology"), "missing ['topology'], unexpected nothing"),
    (lambda d: d.update(colour="red"), "missing nothing, unexpected ['colour']"),
])
def test_from_dict_names_missing_and_unexpected_keys(run_json, change, words):
    change(run_json)
    with pytest.raises(NetwallError, match=re.escape(f"not a netwall RunResult: {words}")):
        RunResult.from_dict(run_json)


def test_a_campaign_record_of_a_result_reads_as_before(run_json):
    point = {"experiment": "e", "topology": "star:4", "link": "copper-800g",
             "spine_link": "optical-800g", "layout": None, "collective": "allreduce",
             "algorithm": "ring", "size": 65536, "faults": [], "dilation": None,
             "repetition": 0, "seed": 0, "iters": 2, "warmup": 1}
    record = {"id": "x", "campaign": "c", "kind": "point", "status": "ok", "point": point,
              "netwall": "0.1.0", "host": {"node": "h"}, "time": "t"}
    typed = row(dict(record, result=RunResult.from_dict(run_json).to_dict()))
    assert typed == row(dict(record, result=run_json))
    assert typed["busbw_gbps"] == run_json["busbw_gbps"] and typed["faithful"] is False


@pytest.mark.parametrize(("error", "noted"), [(0.033, True), (-0.111, True), (0.019, False)])
def test_a_faithful_row_far_from_the_model_says_the_proof_does_not_explain_it(
        run_json, capsys, error, noted):
    fidelity = dict(run_json["fidelity"], faithful=True, flags=[], host_error=0.006,
                    dilation=200.0, probe_dilation=500.0)
    row = RunResult.from_dict(dict(run_json, fidelity=fidelity, faults=[], model_error=error,
                                   dilation=200.0, dilation_attempts=[]))
    tables.print_row(row)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + noted
    if noted:
        assert out[1].startswith(f"#   {error:+.1%} from the model though the host's share "
                                 "is +0.6%: ")
        assert "same at D 200 and 500" in out[1]


def test_the_tables_read_typed_results(run_json, replay_json, capsys):
    tables.print_row(RunResult.from_dict(run_json))
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["65536", "16384", "float"]
    assert out[1].startswith("#   NOT FAITHFUL: host software added about 12.1%")
    assert out[2] == "#   at 0.1 us: gpu0--nvs0 down starts -> down"
    assert out[-1] == "#   then: gpu0--nvs0 restored after the timed calls -> up"
    tables.print_replay(ReplayResult.from_dict(replay_json))
    out = capsys.readouterr().out
    assert out.startswith("# netwall replay dp-tp on racks:2x2, link copper-800g, GPU endpoint "
                          "ideal, dilation 100000")
    assert "\n#   at dilation 20000 the host added most of the time: measured again" in out
    assert ("\n# step 0: 67.90 us, exposed communication 2.54 us (3.7% of the step)\n"
            "#   critical path: calls 1 > 239\n"
            "#   busy per stream: tp 0.01 us, dp 2.53 us\n"
            "# whole trace: 68.24 us, 3 calls,") in out
    assert out.endswith("\n# compute gaps skipped: 1.5 s of wall time saved\n")
    tables.print_replay(ReplayResult.from_dict(dict(replay_json, skip=False, skipped_s=0.0)))
    assert capsys.readouterr().out.endswith(
        "\n# compute gaps not skipped (--no-skip, or agents over several hosts)\n")


def test_a_replay_run_again_at_the_same_dilation_says_why(replay_json, capsys):
    """Calls distorted on their own, the total in time: the second attempt at the same
    dilation is announced as such, not as a larger one."""
    first = dict(replay_json["dilation_attempts"][-1], host_error=0.001, faithful=False)
    attempts = [first, dict(first, faithful=True)]
    tables.print_replay(ReplayResult.from_dict(dict(replay_json, dilation_attempts=attempts)))
    out = capsys.readouterr().out
    assert ("\n#   at dilation 100000 the host distorted calls on their own (the total kept "
            "time): measured again at the same one\n") in out
    assert "a larger one" not in out
