"""The live view of one command: it watches emulations run and serves what it sees.

A command made with --view makes one View, opens it (the server starts and the address is
printed), and lets each Emulation it builds call it as its observer: the emulation tells
it when a program (a batch of calls) starts and ends, and while one runs the launcher's
wait loop ticks it about every millisecond, in the controller's thread. A few times a
second the tick reads every directed link's qdisc counters (Network.counters, the reading
a result's link report comes from: netlink sockets belong to that thread; over several
hosts, Cluster.counters asks every host at once) and the agents' progress board
(traffic.board: the call and step each is in, what each resent to whom), and builds a
frame (emulator/view/frame.py) that the server pushes to the page. A run without --view
makes no View: no thread, no import of the server, no counter read.

The command also hands it each result row as it lands and its Progress, for the ETA.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from emulator.view import frame as frames
from emulator.view.drawing import drawing, racks_of
from emulator.view.server import Server
from foundation.units import format_size

#: Seconds between two counter readings while a program runs: a few frames a second.
PERIOD_S = 0.25
#: A load is the average over about this many seconds of readings: over a quarter second
#: alone, the frame the shaper lets through at once after an idle moment (its burst) is,
#: at a large dilation, a visible share of what a cable may carry.
WINDOW_S = 1.0


class View:
    """The live view of one `command`; see the module's docstring."""

    def __init__(self, command: str, address: str = "127.0.0.1", port: int = 0) -> None:
        self.command = command
        self.server = Server(address, port)
        self.url = ""
        self.racks: dict[int, int | None] = {}  # id(emulation) -> GPUs per rack, if known
        self.emu = None  # the emulation drawn now
        self.picture: dict[str, Any] = {}
        self.progress = None
        self.rows: list[dict[str, Any]] = []
        self.activity: dict[str, Any] = {"phase": "starting"}
        self.status = "running"
        self.injector = None
        self.calls: list[tuple[int, str, int]] = []  # the program's: id, what, steps
        self.ids: frozenset[int] = frozenset()
        self.first: frames.Sample | None = None  # the program's first reading (its totals)
        self.window: list[frames.Sample] = []  # the readings of about the last second
        self.began = 0.0
        self.last_timed: float | None = None  # dilation of the last timed program (probe)
        self.seq = 0
        self.programs = 0  # programs watched so far
        self.started = time.monotonic()

    def open(self) -> str:
        """Start serving; the page's address."""
        self.url = self.server.start()
        self.publish()
        return self.url

    def watch(self, emu, gpus_per_rack: int | None = None) -> None:
        """Be told of this emulation's programs; `gpus_per_rack` groups its GPUs in racks
        as its layout does (None: by rack switch, if any)."""
        emu.observer = self
        self.racks[id(emu)] = gpus_per_rack
        if self.emu is None:
            self._draw(emu)
            self.publish()

    def follow(self, progress) -> None:
        """Show this Progress's share done and its estimate of what is left."""
        self.progress = progress

    # -- the observer: called by Emulation in the controller's thread ------------------------
    def program(self, emu, calls: list, kind: str, injector=None):
        """A program of `calls` is about to run on `emu`: its tick, for the launcher."""
        if emu is not self.emu:
            self._draw(emu)
        # The proof runs the timed program again at a larger dilation: that one is the probe.
        probe = kind in ("timed", "trace") and self.last_timed is not None \
            and emu.dilation > self.last_timed
        self.last_timed = emu.dilation if kind in ("timed", "trace") and not probe else None
        kind = "probe" if probe else kind
        self.injector = injector
        self.programs += 1
        self.began = time.monotonic()
        self.activity = _activity(emu, calls, kind)
        self.calls = [(c.id, _what(c.schedule), len(c.schedule.steps)) for c in calls]
        self.ids = frozenset(c.id for c in calls)
        self.first = self._sample()
        self.window = [self.first]
        self.publish()
        inner = injector.tick if injector is not None else None

        def tick() -> None:
            if inner is not None:
                inner()
            if time.monotonic() - self.window[-1].t >= PERIOD_S:
                now = self._sample()
                kept = [s for s in self.window if now.t - s.t <= WINDOW_S]
                self.window = (kept or self.window[-1:]) + [now]
                self.publish()
        return tick

    def ended(self, emu, outcome) -> None:
        """The program ended: its totals stay, its loads go to zero (nothing runs)."""
        self.window = [self._sample()]
        self.injector = None
        self.activity = dict(self.activity, running=False,
                             retransmitted_bytes=outcome.stats.retransmitted_bytes)
        self.publish()

    # -- what the command tells it -----------------------------------------------------------
    def landed(self, result) -> None:
        """A result row (a RunResult, ReplayResult or compare Row) as it lands."""
        data = result.to_dict()
        row = (frames.compare_row(data) if "design" in data else
               frames.replay_row(data) if "calls" in data else frames.run_row(data))
        self.rows.append(row)
        self.publish()

    def mark(self) -> tuple[frames.Sample, int] | None:
        """A reading now, and how many programs have run (the console, before a command)."""
        if self.emu is None or self.emu.network is None:
            return None
        return self._sample(), self.programs

    def refresh(self, line: str = "", mark: tuple[frames.Sample, int] | None = None) -> None:
        """Read the counters and publish (the console, after each command). A command that
        ran no program of calls (iperf, ping) was not watched while it ran: its loads are
        its average since `mark`, shown until the next command."""
        if self.emu is not None and self.emu.network is not None:
            now = self._sample()
            if mark is not None and mark[1] == self.programs and now.t > mark[0].t:
                self.first, self.window = mark[0], [mark[0], now]
                self.activity = {"phase": "console", "call": line, "running": False,
                                 "averaged_s": now.t - mark[0].t}
            else:
                self.first, self.window = now, [now]
        self.publish()

    def finish(self, status: str = "finished") -> None:
        """The command's work is over: a final frame, the server still up."""
        self.status = status
        self.activity = dict(self.activity, running=False)
        self.publish()

    def close(self) -> None:
        self.server.stop()

    # -- frames ----------------------------------------------------------------------------
    def publish(self) -> None:
        """Build the frame from what is known now and hand it to the server."""
        self.seq += 1
        emu = self.emu
        running = self.activity.get("running", False)
        links = []
        if emu is not None:
            last = self.window[-1] if self.window else None
            averaged = running or "averaged_s" in self.activity  # a console command's
            before = self.window[0] if averaged and len(self.window) > 1 else None
            links = frames.links(emu.topology, self._rates(emu), self._states(emu), before,
                                 last, self.first, emu.dilation)
        activity = dict(self.activity)
        if running and emu is not None:
            activity.update(self._position(emu))
        self.server.publish({"seq": self.seq, "drawing": self.picture.get("id"),
                             "command": self.command, "status": self.status,
                             "activity": activity, "progress": self._progress(),
                             "links": links, "rows": self.rows,
                             "elapsed_s": time.monotonic() - self.started},
                            self.picture)

    def _draw(self, emu) -> None:
        self.emu = emu
        racks = racks_of(emu.topology, self.racks.get(id(emu)), emu.plan.racks())
        self.picture = dict(drawing(emu.topology, emu.catalogue, racks),
                            link=emu.link, gpu=emu.gpu.name, delay=emu.delay_mechanism)
        self.first, self.window = None, []

    def _sample(self) -> frames.Sample:
        """Every directed link's counters now, and the agents' progress board. Over several
        hosts (--hosts) each host's worker reads its own, a round trip each, all at once."""
        # One dump per namespace takes a while on a busy host: the reading is of its middle.
        before = time.monotonic()
        counters = self.emu.network.counters(settle=0)
        board = self.emu.built.progress()
        return frames.Sample((before + time.monotonic()) / 2, counters, board.resent(),
                             board.steps(self.ids))

    def _rates(self, emu) -> dict[int, float]:
        return {i: emu.catalogue[c.profile].rate_gbps for i, c in enumerate(emu.topology.links)}

    def _states(self, emu) -> dict:
        """Each cable's state: the faults left on it (console, Mininet) and the program's."""
        active = self.injector.active if self.injector is not None else {}
        return {i: emu.links.state(i, active.get(i, ())) for i in range(len(emu.topology.links))}

    def _position(self, emu) -> dict[str, Any]:
        """Where the program is: each call the agents are in and its steps, from their
        board; before any has begun, where the model's clock says."""
        elapsed = (time.monotonic() - self.began) / emu.dilation
        out: dict[str, Any] = {"elapsed_us": elapsed * 1e6}
        running = frames.in_progress(self.window[-1].steps, self.calls) if self.window else []
        if running:
            first = running[0]
            out.update(call_number=first["number"], step=first["step"],
                       steps=first["steps"], running_calls=running, by="agents")
            return out
        model, steps = self.activity.get("model_s"), self.activity.get("steps")
        if model and steps:
            out.update(frames.position(elapsed, model, self.activity["calls"], steps),
                       by="model")
        return out

    def _progress(self) -> dict[str, Any]:
        p = self.progress
        if p is None:
            return {}
        elapsed = time.monotonic() - p.start
        # Before an item has finished there is no pace yet: a command's weights are its
        # estimated wall seconds, so what is left is the estimate less the time spent.
        return {"done": p.done, "total": p.total, "finished": p.finished, "items": p.items,
                "elapsed_s": elapsed, "left_s": p.left(), "estimate_s": p.total - elapsed}


def _activity(emu, calls: list, kind: str) -> dict[str, Any]:
    """What a program is: its kind, its call (or trace), the dilation and the model."""
    out: dict[str, Any] = {"running": True, "phase": kind, "link": emu.link,
                           "dilation": emu.dilation, "calls": len(calls)}
    schedules = {id(c.schedule): c.schedule for c in calls}
    if len(schedules) == 1:
        s = calls[0].schedule
        out.update(call=f"{_what(s)} over {s.ranks} GPUs", steps=len(s.steps),
                   model_s=emu.emulated_model(s))
    else:
        out.update(call=f"a trace of {len(calls)} calls on "
                        f"{len({c.stream for c in calls})} streams")
    return out


def _what(schedule) -> str:
    """A call in a few words: 'allreduce/ring 16 MiB'."""
    return f"{schedule.collective}/{schedule.algorithm} {format_size(schedule.size, spaced=True)}"


def say(text: str) -> None:
    print(f"netwall: {text}", file=sys.stderr, flush=True)
