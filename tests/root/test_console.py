"""The interactive console, driven through its standard input (root only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
PROJECT = Path(__file__).resolve().parents[2]


def console(commands: list[str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "emulator.cli.main", "cli", *args],
                          input="\n".join(commands) + "\n", capture_output=True, text=True,
                          timeout=300, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr  # Mininet prints node output through its logger


def test_console_commands_measure_break_and_repair():
    out = console(["links", "collective allreduce ring 1M", "iperf gpu0 gpu1 1",
                   "fail gpu0--gpu1 channels=56", "links", "restore gpu0--gpu1",
                   "ber gpu0--gpu1 1e-7", "counters", "fail nope--x", "help collective",
                   "gpu0 ip -br addr"],
                  "--topology", "pair", "--link", "wide-and-slow-800g", "--dilation", "1000")
    assert "gpu0--gpu1" in out and "wide-and-slow-800g" in out
    assert "allreduce/ring" in out and " ok" in out  # one verified collective
    assert "iperf3 gpu0 -> gpu1:" in out
    assert "360/400 channels carry data" in out and " 720 " in out  # 56 = 16 spares + 40
    assert "post-FEC bit-error rate 1e-07" in out
    assert "gpu0->gpu1" in out and "error: fault on nope--x: no such link" in out
    assert "run one (default allreduce" in out  # help text
    assert "10.77.0.1/32" in out  # Mininet's own commands still work


def test_vagrantfile_provisions_with_the_shared_install_step():
    vagrantfile = (PROJECT / "Vagrantfile").read_text()
    assert "./netwall.sh install" in vagrantfile and "sch_netem" in vagrantfile
    ruby = subprocess.run(["ruby", "-c", str(PROJECT / "Vagrantfile")], capture_output=True,
                          text=True)
    assert ruby.returncode == 0 and "Syntax OK" in ruby.stdout, ruby.stderr
    assert subprocess.run(["bash", "-n", str(PROJECT / "netwall.sh")]).returncode == 0


def test_bad_console_commands_are_refused_and_the_console_stays_open():
    out = console(["collective allreduce ring abc", "iperf gpu0 gpu1 abc", "iperf gpu0 gpu1 -5",
                   "links"], "--topology", "pair", "--link", "copper-800g")
    assert "error: not a size: 'abc'" in out
    assert out.count("error: usage: iperf [GPU GPU [SECONDS]]") == 2
    assert "is the link down" not in out
    assert "dilation D =" in out  # `links`, after the bad commands: the console went on


def test_every_piped_line_after_a_node_command_runs():
    """Lines that arrive on a pipe while a node command runs are the console's next
    commands: none goes to the node's shell (issue 26: 13 of 19 vanished there)."""
    import re
    import threading
    import time

    lines = []
    for i in range(10):
        lines += [f"gpu{i % 2} sleep 0.3; expr 1000 + {i}", f"py 2000 + {i}"]
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", "cli", "--topology",
                             "pair", "--link", "copper-800g", "--dilation", "1000"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=PROJECT)

    def feed() -> None:  # one line every 0.1 s, so most arrive while a node command runs
        for line in lines:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            time.sleep(0.1)
        proc.stdin.close()

    try:
        banner = proc.stdout.readline()  # the console is up: lines now arrive as it runs
        assert banner.startswith("netwall console:"), banner
        feeder = threading.Thread(target=feed)
        feeder.start()
        out = proc.stdout.read()
        feeder.join()
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
        proc.wait()
    answers = re.findall(r"(?:^|> )(\d{4})\s*$", out, re.M)
    assert answers == [str(n) for i in range(10) for n in (1000 + i, 2000 + i)], out
    assert "command not found" not in out
