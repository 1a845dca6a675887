"""The live view in a real browser during a real run: headless Chromium (tests/chromium.py)
opens the page `netwall run --view` serves and reads what the page has drawn (the
Cytoscape elements' data), while the run goes on and after it ends; and the console's
`view`, whose frames follow its `fail` and `restore`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import chromium

pytestmark = pytest.mark.root
needs_chromium = pytest.mark.skipif(chromium.binary() is None,
                                    reason="needs chromium (./netwall.sh test installs it)")

ROOT = Path(__file__).resolve().parents[2]
#: star:4 on copper-800g: 4 cables, 800 Gb/s each. At D = 2000 a 4 MiB ring all-reduce is
#: about 0.15 s of wall time per call, so the timed calls last a few seconds: many frames.
RUN = ("run", "--topology", "star:4", "--link", "copper-800g", "--size", "4M", "-w", "0",
       "--no-check", "--dilation", "2000", "--no-probe", "--view")
LINKS = ["gpu0--nvs0", "gpu1--nvs0", "gpu2--nvs0", "gpu3--nvs0"]
#: What the page shows, read from the drawing library's own elements.
SEEN = """(() => {
  const cy = window.netwall.cy, f = window.netwall.frame;
  if (!cy || !f) return null;
  return {status: document.body.dataset.status, phase: f.activity.phase || null,
          running: !!f.activity.running, by: f.activity.by || null,
          now: document.getElementById('now').textContent,
          edges: cy.edges('.link').map(e => [e.data('name'), e.data('load_gbps'),
                                              e.data('state'), e.data('resent') || 0,
                                              e.data('label')])};
})()"""


def watch(tmp_path: Path, *args: str) -> tuple[list[dict], list[str], subprocess.Popen]:
    """Run netwall with the view, watch its page until the run finishes; what the page
    showed every ~0.2 s, its console errors, and the command (still holding the view)."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", *RUN, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stderr.readline()
        found = re.search(r"live view at (http://127\.0\.0\.1:[0-9]+/)", line)
        assert found, line + proc.stderr.read()
        seen = []
        with chromium.Browser(tmp_path / "chromium", width=1400) as page:
            page.load(found.group(1), settle=0)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                now = page.evaluate(SEEN)
                if now:
                    seen.append(now)
                    if now["status"] == "finished":
                        break
                time.sleep(0.2)
            return seen, page.problems, proc
    except BaseException:
        proc.send_signal(signal.SIGTERM)  # unwinds: the network is torn down
        proc.communicate(timeout=60)
        raise


def close(proc: subprocess.Popen) -> str:
    """Press Enter: the view closes and the command exits; its stderr."""
    _out, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err
    return err


@needs_chromium
def test_the_page_draws_every_link_its_load_moves_a_fault_shows_and_all_stops(tmp_path):
    """One run of 20 timed calls (each at least the model's ~75 us, so 1.5 ms of cluster
    time, 3 s of wall time at D = 2000); gpu1--nvs0 goes down 1 ms into them for 400 us.
    Before it, every cable carries load; while it is down the page shows it down and only
    it; at the end every cable is up and idle. The call and step in progress are the
    agents' own; the frames lost while the cable was down are resent, and the page puts
    the resends on that cable alone."""
    seen, errors, proc = watch(tmp_path, "-n", "20", "--fault", "down:gpu1--nvs0@1ms+400us")
    err = close(proc)
    assert errors == []
    assert "the live view stays open at http://127.0.0.1:" in err
    assert [edge[0] for edge in seen[0]["edges"]] == LINKS  # every cable, once
    timed = [s for s in seen if s["running"] and s["phase"] == "timed"]
    assert timed, [(s["phase"], s["running"]) for s in seen]
    peak = {name: max(e[1] for s in timed for e in s["edges"] if e[0] == name)
            for name in LINKS}
    # Real units: a ring over a star sends on every cable, and no cable carries more than
    # its 800 Gb/s (a load read at the dilated rate, or dilated twice, would fail one side).
    assert all(10 < load <= 800 * 1.1 for load in peak.values()), peak
    assert any(s["by"] == "agents" and re.search(r"call \d+ of 20 \(allreduce/ring 4 MiB\): "
                                                 r"step [0-9-]+ of 6", s["now"]) for s in timed)
    states = [{edge[0]: edge[2] for edge in s["edges"]} for s in seen]
    down = [s for s in states if s["gpu1--nvs0"] == "down"]
    assert down, states
    assert all(s["gpu0--nvs0"] == "up" for s in down)  # only the faulted cable
    final = seen[-1]
    assert final["status"] == "finished" and not final["running"]
    assert all(load == 0 and state == "up" for _, load, state, _, _ in final["edges"])
    resent = {name: (nbytes, label) for name, _, _, nbytes, label in final["edges"]}
    assert resent["gpu1--nvs0"][0] > 0 and "resent" in resent["gpu1--nvs0"][1], resent
    assert all(nbytes == 0 for name, (nbytes, _) in resent.items() if name != "gpu1--nvs0")


def fetch(url: str) -> dict:
    """The frame the page draws now (frame.json)."""
    with urllib.request.urlopen(url + "frame.json", timeout=10) as answer:
        return json.load(answer)


def test_the_consoles_view_shows_a_cable_it_failed_and_what_an_iperf_carried():
    """`view` in a running console serves the view; `fail` turns the cable down in the
    frame the page draws at once, `restore` back up; after an iperf, its cables show the
    load it carried."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", "cli", "--topology",
                             "star:4", "--link", "copper-800g", "--dilation", "1000"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, bufsize=1)
    try:
        proc.stdin.write("view\n")
        while not (found := re.search(r"live view at (http://127\.0\.0\.1:[0-9]+/)",
                                      proc.stderr.readline())):
            assert proc.poll() is None, proc.stderr.read()
        url = found.group(1)

        def state_of(name: str) -> str:
            return next(link["state"] for link in fetch(url)["links"] if link["name"] == name)

        assert state_of("gpu0--nvs0") == "up"
        for command, want in (("fail gpu0--nvs0", "down"), ("restore gpu0--nvs0", "up")):
            proc.stdin.write(command + "\n")
            deadline = time.monotonic() + 30
            while state_of("gpu0--nvs0") != want:
                assert time.monotonic() < deadline, f"{command}: never {want}"
                time.sleep(0.1)
        assert state_of("gpu1--nvs0") == "up"
        # An iperf runs no calls: the page shows what it carried, on average, afterwards.
        proc.stdin.write("iperf gpu0 gpu1 1\n")
        deadline = time.monotonic() + 60
        while (frame := fetch(url))["activity"].get("call") != "iperf gpu0 gpu1 1":
            assert time.monotonic() < deadline, frame["activity"]
            time.sleep(0.2)
        load = {link["name"]: link["load_gbps"] for link in frame["links"]}
        assert load["gpu0--nvs0"] > 1 and load["gpu1--nvs0"] > 1, load  # real Gb/s
        assert load["gpu2--nvs0"] < 1 and load["gpu0--nvs0"] <= 800 * 1.1
        proc.stdin.write("exit\n")
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)


def test_a_replay_shows_its_trace_and_its_row_in_the_last_frame():
    """replay --view: the trace's programs reach the page (the observer in the replay path)
    with each call and step the agents are in while it runs, and its result row lands;
    the view holds (--view-hold) with the final frame."""
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli.main", "replay", "--workload",
                             "dp-step", "--topology", "star:4", "--link", "optical-800g",
                             "--scale", "0.001", "--dilation", "2000", "--no-probe", "--view",
                             "--view-hold", "30"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        while not (found := re.search(r"http://127\.0\.0\.1:[0-9]+/",
                                      line := proc.stderr.readline())):
            assert line, proc.stderr.read()
        url = found[0]
        running = []
        while (frame := fetch(url))["status"] != "finished":
            assert proc.poll() is None, proc.stderr.read()
            if frame["activity"].get("by") == "agents":
                running += frame["activity"]["running_calls"]
            time.sleep(0.05)
        # The trace's calls, each at a step of its own 6 (a ring over 4 GPUs), as the
        # agents' board says (not the model's clock, which a trace does not have).
        assert running and all(c["call"].startswith("allreduce/ring") and
                               1 <= c["step"] <= c["step_max"] <= c["steps"] == 6 and
                               c["number"] >= 1 for c in running), running
        assert frame["status"] == "finished" and frame["command"] == "replay"
        assert frame["activity"]["phase"] == "trace" and "a trace of" in frame["activity"]["call"]
        assert [row["trace"] for row in frame["rows"]] == ["dp-step"]
        assert sum(d["bytes"] for link in frame["links"] for d in link["directions"]) > 0
    finally:
        proc.send_signal(signal.SIGTERM)  # ends the hold; the network is long gone
        proc.communicate(timeout=60)
