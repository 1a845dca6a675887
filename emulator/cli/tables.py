"""The text tables of `netwall run` and `replay`, nccl-tests style: a header, one row per
size or call, and what the run cost."""

from __future__ import annotations

import itertools
import math

from emulator.experiments import findings
from emulator.models.alphabeta import nvls_span
from emulator.models.verdict import percent
from emulator.result import ReplayResult, RunResult
from traffic.schedule import default_algorithm


def print_header(args, emu) -> None:
    algorithm = args.algorithm or default_algorithm(args.collective)
    everyone = tuple(range(len(emu.topology.gpus)))
    if not args.algorithm and args.collective == "allreduce" and emu.topology.nvls and \
            emu.topology.nvls_switch(everyone) is not None and emu.gpu.nvls:
        # NCCL's choice per size (its tuning model): proto says NVLS where it was picked
        algorithm += (f" or nvls, NCCL's choice per size (nvls "
                      f"{nvls_span(emu.gpu, len(everyone))} on {len(everyone)} GPUs)")
    how = (f"dilation {emu.fixed_dilation:.10g} for every size" if emu.fixed_dilation else
           "dilation D chosen per size for this host")
    print(f"# netwall {args.collective}/{algorithm} on {emu.topology.name} "
          f"({len(emu.topology.gpus)} ranks), link {emu.link}, {how} (rates /D, delays xD; "
          "times below are real)")
    protocols = ", ".join(emu.gpu.protocols)
    endpoint = ("ideal (links only, no endpoint costs)" if emu.gpu.name == "ideal" else
                f"{emu.gpu.name} (NCCL's launch and step latency, protocol {protocols} "
                "picked per size by NCCL's cost model; --gpu ideal for links only)")
    print(f"# GPU endpoint: {endpoint}")
    print(f"# link delay: {emu.delay_mechanism}")
    if args.prove:
        print(f"# each result is proven at a larger dilation: 'host' is the share of its time "
              f"the host added (flagged above {percent(emu.tolerance)})")
    print(RUN_COLUMNS)


#: The column line of `netwall run`'s table (docs quote it: tests/unit/test_doc_samples.py).
RUN_COLUMNS = (f"# {'size':>12} {'count':>10} {'type':>6} {'proto':>6} {'time(us)':>10} "
               f"{'algbw(GB/s)':>12} {'busbw(GB/s)':>12} {'model(us)':>10} {'error':>7} "
               f"{'retrans(B)':>10} {'J/GB':>7} {'check':>6} {'D':>7} {'host':>6}")


def print_row(r: RunResult) -> None:
    check = {True: "ok", False: "WRONG", None: "-"}[r.check]
    fidelity = r.fidelity
    host = "-" if fidelity["host_error"] is None else f"{fidelity['host_error']:+.1%}"
    proto = "NVLS" if r.algorithm == "nvls" else r.protocol  # as NCCL logs it (Simple's wire)
    print(f"  {r.bytes:>12} {r.count:>10} {r.type:>6} {proto:>6} {r.time_s * 1e6:>10.2f} "
          f"{r.algbw_gbps:>12.2f} {r.busbw_gbps:>12.2f} "
          f"{r.model_emulated_time_s * 1e6:>10.2f} "
          f"{r.model_error:>+7.1%} {r.retransmitted_bytes:>10} "
          f"{r.joules_per_gb:>7.3f} {check:>6} {r.dilation:>7.10g} {host:>6}", flush=True)
    for earlier in r.dilation_attempts[:-1]:
        print(f"#   at dilation {earlier.dilation:.10g} the host added "
              f"{share(earlier.host_error)}: measured again at a larger one")
    for flag in fidelity["flags"]:
        print(f"#   NOT FAITHFUL: {flag}")
    if disagrees(r):
        print(f"#   {r.model_error:+.1%} from the model though the host's share is {host}: "
              "the model's lock-step estimate misses this schedule, or something costs the "
              f"same at D {r.dilation:.10g} and {fidelity['probe_dilation']:.10g} (the host's "
              "share falls as 1/D)")
    for event in r.faults:
        when = f"at {event.t_s * 1e6:.1f} us" if event.t_s is not None else "then"
        print(f"#   {when}: {event.link} {event.event} -> {event.state}")


def disagrees(r: RunResult) -> bool:
    """Faithful, yet further from the model than the tolerance. The proof clears the host
    of what differs between two dilations only: the model (each step as long as its slowest
    route, all ranks in step) is exact for ring and halving-doubling on one switch, an
    estimate where ranks run ahead or share links unevenly (tree, racks), and a cost equal
    at both dilations would read the same; the row says so rather than pass in silence."""
    tolerance = r.fidelity.get("tolerance")  # none when not proven
    return bool(r.fidelity.get("faithful")) and tolerance is not None and \
        abs(r.model_error) > tolerance


def share(error: float | None) -> str:
    return "most of the time" if error is None or not math.isfinite(error) else f"{error:.1%}"


def print_cost(rows: list[RunResult], emu) -> None:
    """What the run cost: wall time over emulated time, and this host's floor for it."""
    wall = sum(r.wall_s for r in rows)
    emulated = sum(r.emulated_s for r in rows)
    floor = max(r.slowdown_floor for r in rows)
    print(f"# cost: {wall:.1f} s of wall time for {emulated * 1e3:.3f} ms of cluster time: "
          f"slowdown {wall / emulated:,.0f}x (this host's floor {floor:,.0f}x: the calls' "
          f"injection over the {emu.host.capacity_gbps:.2f} Gb/s it carries faithfully)")


def print_replay(r: ReplayResult) -> None:
    fidelity = r.fidelity
    print(f"# netwall replay {r.trace} on {r.topology}, link {r.link}, GPU endpoint {r.gpu}, "
          f"dilation {r.dilation:.10g} (times are real)")
    print(f"# {'id':>5} {'step':>4} {'stream':>8} {'comm':>8} {'collective/algorithm':>28} "
          f"{'ranks':>5} {'bytes':>10} {'proto':>6} {'start(us)':>10} {'time(us)':>10} "
          f"{'busbw(GB/s)':>11} {'model(us)':>10} {'host':>6}")
    for c in r.calls:
        name = f"{c.collective}/{c.algorithm}"
        host = "-" if c.host_error is None else f"{c.host_error:+.1%}"
        print(f"  {c.id:>5} {c.step:>4} {c.stream:>8} {c.comm:>8} {name:>28} "
              f"{c.ranks:>5} {c.bytes:>10} {c.protocol:>6} {c.start_s * 1e6:>10.2f} "
              f"{c.time_s * 1e6:>10.2f} {c.busbw_gbps:>11.2f} "
              f"{c.model_time_s * 1e6:>10.2f} {host:>6}")
    for step in r.steps:
        print(f"# step {step.step}: {step.time_s * 1e6:.2f} us, exposed communication "
              f"{step.exposed_s * 1e6:.2f} us ({step.exposed_share:.1%} of the step)")
        print(f"#   critical path: calls {_path(step.critical_path)}")
        print("#   busy per stream: " + ", ".join(
            f"{name} {busy * 1e6:.2f} us" for name, busy in step.streams.items()))
    print(f"# whole trace: {r.total_s * 1e6:.2f} us, {len(r.calls)} calls, "
          f"{r.retransmitted_bytes} bytes retransmitted")
    for earlier, then in itertools.pairwise(r.dilation_attempts):
        if then.dilation == earlier.dilation:
            print(f"#   at dilation {earlier.dilation:.10g} the host distorted calls on their "
                  "own (the total kept time): measured again at the same one")
        else:
            print(f"#   at dilation {earlier.dilation:.10g} the host added "
                  f"{share(earlier.host_error)}: measured again at a larger one")
    if fidelity["faithful"]:
        print(f"# proven at dilation {fidelity['probe_dilation']:.10g}: the host added "
              f"{share(fidelity['worst_error'])} at most (tolerance "
              f"{percent(fidelity['tolerance'])})")
    for flag in fidelity["flags"]:
        print(f"#   NOT FAITHFUL: {flag}")
    print(f"# cost: {r.wall_s:.1f} s of wall time for {r.emulated_s * 1e3:.3f} ms of "
          f"cluster time: slowdown {r.slowdown:,.0f}x (this host's floor "
          f"{r.slowdown_floor:,.0f}x)")
    if r.skip:
        print(f"# compute gaps skipped: {r.skipped_s:.1f} s of wall time saved")
    else:
        print("# compute gaps not skipped (--no-skip, or agents over several hosts)")


def replay_verdict(results: list[ReplayResult]) -> list[str]:
    """The answer a replay over several links ends with (emulator.experiments.findings)."""
    said = findings.replays([
        findings.Replayed(r.link, [s.time_s for s in r.steps], _verdict(r.fidelity),
                          sum(s.exposed_share for s in r.steps) / max(1, len(r.steps)))
        for r in results])
    return ["# verdict across links:"] + [f"#   {line}" for line in said]


def _verdict(fidelity: dict) -> bool | None:
    """True: proven; False: the host distorted it; None: not proven (the probe was off)."""
    if fidelity["faithful"]:
        return True
    flags = fidelity.get("flags") or []
    return None if flags and all(f.startswith("not proven") for f in flags) else False


def _path(ids: list[int], most: int = 12) -> str:
    """Call ids joined by ' > ', the middle elided past `most` of them."""
    shown = [str(i) for i in ids]
    if len(shown) > most:
        shown = shown[:most // 2] + [f"... ({len(ids) - most} more)"] + shown[-most // 2:]
    return " > ".join(shown)
