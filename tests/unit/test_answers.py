"""Commands end with the answer: `campaign status` and `run --dry-run` before a run show
points and time (not an error), `campaign run` ends with its verdict, and a stalled
collective exits with a status of its own. The runner's emulation is the stand-in of
test_campaign, so nothing is built."""

from __future__ import annotations

import pytest

from emulator.experiments import runner
from foundation.errors import NetwallError, Stalled
from tests.unit.test_campaign import FAKE, FakeEmulation


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_emulation", lambda p, caps, **_spread: FakeEmulation(p, caps))
    spec = tmp_path / "fake.yaml"
    spec.write_text(FAKE)
    return spec, tmp_path / "fake.sqlite"


@pytest.mark.parametrize("words", [("campaign", "status"), ("campaign", "run", "--dry-run")])
def test_before_a_run_points_and_time_not_an_error(fake, capsys, words):
    from emulator.cli.main import main

    spec, db = fake
    assert main([*words, str(spec), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("campaign fake: 0/21 points done")
    # 2 links x 3 sizes x 2 fault sets on pair at a second per MB and call (the stand-in's
    # estimate), and optical's reach point; copper's reach point and the 6 points whose
    # fault names a missing link are refused, as the run refuses them: 13 to measure.
    seconds = 2 * 2 * (4096 + 8192 + 16384) * 1e-6 + 4096e-6
    assert f"13 points to measure, about {int(seconds)} s of measuring" in out
    assert "7 will be skipped" in out
    assert not db.exists()  # nothing written before a run


def test_campaign_run_ends_with_its_verdict(fake, capsys):
    from emulator.cli.main import main

    spec, db = fake
    main(["campaign", "run", str(spec), "--db", str(db)])
    out = capsys.readouterr().out
    verdict = out.split("# verdict:\n")[1].splitlines()
    assert verdict[0].startswith("#   On pair, allreduce/ring at 4 KiB: ")
    assert any("skipped (reach) on copper-800g" in line for line in verdict)
    assert main(["campaign", "status", str(spec), "--db", str(db)]) == 0
    assert "0 points to measure" in capsys.readouterr().out


@pytest.mark.parametrize("error,status", [(Stalled("collective stalled: rank 0: no progress"), 3),
                                          (NetwallError("bad input"), 2)])
def test_a_stalled_collective_has_an_exit_status_of_its_own(monkeypatch, capsys, error, status):
    from emulator.cli import main as cli

    def stall(_args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "profiles", stall)
    assert cli.main(["profiles"]) == status
    assert capsys.readouterr().err == f"netwall: error: {error}\n"
