"""SIGTERM ends any netwall command promptly, with one line, as Ctrl-C does (issue 26): a
long computation (a workload being built to check a design file) stops where it is.
And two signals at once (a second Ctrl-C while the first unwinds) end it too, never hang."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: `netwall compare FILE` whose one workload computes for ever (a stand-in for any long
#: pure-Python loop), saying on stdout when it has begun.
SCRIPT = textwrap.dedent("""
    import sys
    from emulator.cli.main import main
    from traffic import workloads
    def forever(ranks, groups, scale, layers=1):
        print("computing", flush=True)
        while True:
            layers += 1
    workloads.WORKLOADS["tp-layer"] = forever
    sys.exit(main(["compare", sys.argv[1]]))
""")


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT,),
                                     (signal.SIGINT, signal.SIGINT),
                                     (signal.SIGTERM, signal.SIGINT)])
def test_a_signal_ends_a_long_computation_in_one_line(tmp_path, signals):
    design = tmp_path / "d.yaml"
    design.write_text("designs: [{name: a, scale_up: nvlink5, domains: 2, domain_gpus: 4}]\n"
                      "workloads: [{name: w, workload: tp-layer}]\n")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(design)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "computing\n"
    for signum in signals:  # back to back: the second lands while the first unwinds
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "netwall: interrupted\n"
