"""One frame of the live view: what every cable carries now, in real units, and what runs.

Pure: the shell (emulator/view/live.py) reads each directed link's qdisc counters a few
times a second (the same counters a result's link report comes from) and hands two samples
here. The kernel counts bytes at the dilated rate, so a load in real (undilated) units is
the bytes over the wall time between the samples, times the dilation D; its share is of the
rate the cable has now (its profile's, or what a fault left: emulator.models.faults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.models.faults import LinkState
from foundation.units import format_size
from topologies import Topology
from topologies.routing import path

#: Counters of one directed link, by (link index, sending node), as Network.counters reads.
Counters = Mapping[tuple[int, str], Mapping[str, int]]


@dataclass(frozen=True)
class Sample:
    """Every directed link's counters at one wall-clock instant (time.monotonic), and what
    the agents' progress board (traffic.board) said then: the data bytes each rank has
    resent to each other rank so far, and the step each rank is at in each call of the
    program watched (call id -> rank -> step, 0-based)."""

    t: float
    counters: Counters
    resent: Mapping[tuple[int, int], int] = field(default_factory=dict)
    steps: Mapping[int, Mapping[int, int]] = field(default_factory=dict)


def state_name(state: LinkState, rate_gbps: float) -> str:
    """'down'; 'degraded' (below its profile's `rate_gbps`: channels lost past the spares);
    'faulted' (full rate, but a fault acts on it: spares in use, a raised bit-error rate);
    or 'up'. The state's note says what, in words."""
    if state.rate_gbps <= 0:
        return "down"
    if state.rate_gbps < rate_gbps:
        return "degraded"
    return "faulted" if state.note != "up" else "up"


def links(topo: Topology, rates: Mapping[int, float], states: Mapping[int, LinkState],
          before: Sample | None, after: Sample | None, start: Sample | None,
          dilation: float) -> list[dict[str, Any]]:
    """Per cable: its state, and per direction its load (real Gb/s, between `before` and
    `after`), share of the cable's rate now, queue (frames held at `after`), and the bytes
    and drops since `start` (the program's first sample); and since `start`, the frames it
    lost (`lost`: its loss filter's, both ways) and the data bytes resent to repair losses
    on it (`resent`, resent_by_link). Without two samples (nothing runs) loads are 0: an
    idle cable carries nothing."""
    lost = _lost(topo, start, after)
    resent = resent_by_link(topo, _resent(start, after), lost, states,
                            _carried(topo, start, after))[0] if after else {}
    out = []
    for index, cable in enumerate(topo.links):
        state = states[index]
        directions = []
        for sender in dict.fromkeys((cable.a, cable.b)):
            key = (index, sender)
            load = _load(before, after, key, dilation)
            now = after.counters.get(key, {}) if after else {}
            first = start.counters.get(key, {}) if start else now
            directions.append({
                "from": sender, "to": topo.other(index, sender),
                "load_gbps": load,
                "share": load / state.rate_gbps if state.rate_gbps > 0 else None,
                "queue": now.get("backlog", 0),
                "bytes": now.get("bytes", 0) - first.get("bytes", 0),
                "drops": now.get("drops", 0) - first.get("drops", 0),
            })
        busiest = max(directions, key=lambda d: d["load_gbps"])
        out.append({"index": index, "name": f"{cable.a}--{cable.b}",
                    "state": state_name(state, rates[index]), "note": state.note,
                    "rate_gbps": state.rate_gbps, "load_gbps": busiest["load_gbps"],
                    "share": busiest["share"],
                    "queue": max(d["queue"] for d in directions),
                    "drops": sum(d["drops"] for d in directions),
                    "lost": lost.get(index, 0), "resent": round(resent.get(index, 0.0)),
                    "directions": directions})
    return out


def resent_by_link(topo: Topology, resent: Mapping[tuple[int, int], int],
                   lost: Mapping[int, int], states: Mapping[int, LinkState],
                   carried: Mapping[int, int]) -> tuple[dict[int, float], int]:
    """The data bytes resent between each pair of ranks (`resent`, by sender and receiver
    rank), put on the cables whose losses they repaired: each pair's bytes go to the cables
    of its route in proportion to the frames each lost (`lost`, both ways: a lost
    acknowledgement is repaired by a resend too); on a route where none was seen lost, to
    the cables whose state explains a loss (down: all; else its bit-error rate, where the
    bytes it carried (`carried`, both ways) make at least one bit error likely), in
    proportion to it. What no cable of the route explains (a resend after a slow
    acknowledgement: a healthy cable's own error rate, 1e-12 or less, loses a frame about
    once in a million) is left out and returned apart: (bytes per cable, bytes not put on
    any)."""
    out: dict[int, float] = {}
    unexplained = 0
    for (sender, receiver), nbytes in resent.items():
        if nbytes <= 0:
            continue
        cables = [hop.link for hop in path(topo, topo.node(sender), topo.node(receiver))]
        weights = [lost.get(c, 0) for c in cables]
        if not any(weights):
            weights = [_loss_weight(states[c], carried.get(c, 0)) for c in cables]
        total = sum(weights)
        if total <= 0:
            unexplained += nbytes
            continue
        for cable, weight in zip(cables, weights, strict=True):
            if weight:
                out[cable] = out.get(cable, 0.0) + nbytes * weight / total
    return out, unexplained


def _loss_weight(state: LinkState, carried: int) -> float:
    """How much a cable's state explains a loss no frame count shows: all of it if the cable
    is down, else its bit-error rate where the `carried` bytes make an error likely, else
    none."""
    if state.rate_gbps <= 0:
        return 1.0
    return state.ber if state.ber * 8 * carried >= 1 else 0.0


def _carried(topo: Topology, start: Sample | None, after: Sample | None) -> dict[int, int]:
    """Bytes each cable carried between two samples, both ways."""
    return _gained(topo, start, after, "bytes")


def _lost(topo: Topology, start: Sample | None, after: Sample | None) -> dict[int, int]:
    """Frames each cable's loss filters dropped between two samples, both ways (each end
    counts what it lost on arrival, `lost_in`)."""
    return _gained(topo, start, after, "lost_in")


def _gained(topo: Topology, start: Sample | None, after: Sample | None,
            counter: str) -> dict[int, int]:
    """What a counter of each cable gained between two samples, its two ends summed (cables
    that gained nothing left out)."""
    if start is None or after is None:
        return {}
    out: dict[int, int] = {}
    for (index, node), now in after.counters.items():
        if index < len(topo.links):
            gain = now.get(counter, 0) - start.counters.get((index, node), {}).get(counter, 0)
            if gain > 0:
                out[index] = out.get(index, 0) + gain
    return out


def _resent(start: Sample | None, after: Sample | None) -> dict[tuple[int, int], int]:
    """Data bytes resent per (sender, receiver) between two samples."""
    if after is None:
        return {}
    before = start.resent if start is not None else {}
    return {pair: nbytes - before.get(pair, 0) for pair, nbytes in after.resent.items()
            if nbytes > before.get(pair, 0)}


def in_progress(steps: Mapping[int, Mapping[int, int]],
                program: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """The calls of `program` (each call's id, what it is, and its steps, in the program's
    order) that some rank is in, from the agents' own board (`steps`: call id -> rank ->
    step): each call's number in the program, the steps its ranks are at (lowest and
    highest, 1-based) and how many ranks are in it. In the program's order."""
    out = []
    for number, (call, label, count) in enumerate(program, 1):
        ranks = steps.get(call)
        if ranks:
            out.append({"number": number, "call": label, "steps": count, "ranks": len(ranks),
                        "step": min(ranks.values()) + 1, "step_max": max(ranks.values()) + 1})
    return out


def _load(before: Sample | None, after: Sample | None, key, dilation: float) -> float:
    """Real Gb/s one direction carried between two samples."""
    if before is None or after is None or after.t <= before.t:
        return 0.0
    moved = after.counters.get(key, {}).get("bytes", 0) - before.counters.get(key, {}).get(
        "bytes", 0)
    return max(0, moved) * 8 / (after.t - before.t) * dilation / 1e9


def position(elapsed_real_s: float, call_s: float, count: int, steps: int) -> dict[str, int]:
    """Which of `count` back-to-back calls, and which of its `steps` steps, a program is in
    after `elapsed_real_s`, by the model's clock (`call_s` a call): where the view says
    the program is until the agents' board shows a call begun (in_progress). 1-based."""
    if call_s <= 0 or count <= 0:
        return {"call_number": 1, "calls": max(count, 1), "step": 1, "steps": max(steps, 1)}
    done = max(0.0, elapsed_real_s) / call_s
    call = min(count - 1, int(done))
    step = min(steps - 1, int((done - call) * steps)) if call == int(done) else steps - 1
    return {"call_number": call + 1, "calls": count, "step": step + 1, "steps": max(steps, 1)}


def run_row(result: Mapping[str, Any]) -> dict[str, str]:
    """A `run` result (RunResult.to_dict) as the page's results table shows it."""
    fidelity = result.get("fidelity") or {}
    host = fidelity.get("host_error")
    return {"link": result["link"], "size": format_size(result["bytes"], spaced=True),
            "time (us)": f"{result['time_s'] * 1e6:.2f}",
            "busbw (GB/s)": f"{result['busbw_gbps']:.2f}",
            "model (us)": f"{result['model_time_s'] * 1e6:.2f}",
            "retrans (B)": f"{result['retransmitted_bytes']}",
            "check": {True: "ok", False: "WRONG", None: "-"}[result["check"]],
            "D": f"{result['dilation']:.10g}",
            "host": "-" if host is None else f"{host:+.1%}",
            "faithful": "yes" if fidelity.get("faithful") else "NO"}


def replay_row(result: Mapping[str, Any]) -> dict[str, str]:
    """A `replay` result (ReplayResult.to_dict), one row for the trace."""
    steps = result["steps"]
    fidelity = result.get("fidelity") or {}
    return {"link": result["link"], "trace": result["trace"], "calls": f"{len(result['calls'])}",
            "steps": f"{len(steps)}", "total (us)": f"{result['total_s'] * 1e6:.2f}",
            "exposed": (f"{sum(s['exposed_s'] for s in steps) / result['total_s']:.0%}"
                        if steps and result["total_s"] > 0 else "-"),
            "retrans (B)": f"{result['retransmitted_bytes']}",
            "D": f"{result['dilation']:.10g}",
            "faithful": "yes" if fidelity.get("faithful") else "NO"}


def compare_row(row: Mapping[str, Any]) -> dict[str, str]:
    """A `compare` row (compare.Row.to_dict): the design, and what its table prints."""
    def number(key: str, scale: float = 1.0, form: str = ".1f") -> str:
        value = row.get(key)
        return "-" if value is None else format(value * scale, form)
    return {"design": row["design"], "workload": row["workload"],
            "size": "-" if row.get("size") is None else format_size(row["size"], spaced=True),
            "fits": "yes" if row["feasible"] else "no",
            "time (us)": number("time_s", 1e6), "busbw (GB/s)": number("busbw_gbps"),
            "J/step": number("energy_j", form=".3g"), "W/GPU": number("watts_per_gpu", form=".0f"),
            "stalls/day": number("stalls_per_day", form=".2f"),
            "faithful": {True: "yes", False: "NO", None: "-"}[row.get("faithful")]}
