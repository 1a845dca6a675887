"""The `netwall` command: check, profiles, run, clean.

Exit codes: 0 success, 1 a data check failed, 2 bad input or an environment netwall cannot
use (always one line on stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
from importlib.metadata import PackageNotFoundError, version

from emulator import inputs
from emulator.cli import campaign as campaign_cli
from emulator.errors import NetwallError
from emulator.models import calibration
from emulator.models.verdict import percent
from emulator.text.progress import Progress
from traffic.schedule import ELEMENT

FAMILIES_DEFAULT = ("copper-800g", "optical-800g", "wide-and-slow-800g")


def netwall_version() -> str:
    try:
        return version("netwall")
    except PackageNotFoundError:
        return "unknown"


def parse_size(text: str) -> int:
    """emulator.inputs.parse_size, as an argparse type."""
    try:
        return inputs.parse_size(text)
    except NetwallError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def sweep(min_bytes: int, max_bytes: int, factor: float) -> list[int]:
    """nccl-tests' -b/-e/-f: from min to max, multiplying by factor, in whole float32 buffers."""
    if min_bytes <= 0 or max_bytes < min_bytes:
        raise NetwallError(f"need 0 < --min-bytes <= --max-bytes, got {min_bytes} and {max_bytes}")
    if not math.isfinite(factor) or (factor <= 1 and max_bytes > min_bytes):
        raise NetwallError(f"--step-factor must be a finite number > 1, got {factor:g}")
    sizes, size = [], min_bytes
    while size <= max_bytes:
        sizes.append(size)
        if len(sizes) > inputs.MAX_ITEMS:
            raise NetwallError(f"-b/-e/-f make more than {inputs.MAX_ITEMS} sizes; use a larger "
                               "--step-factor")
        # Round down to whole elements, but always grow, so a factor near 1 still ends.
        size = max(int(size * factor) // ELEMENT * ELEMENT, size + ELEMENT)
    return sizes


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (the usage is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netwall",
        description="Emulate GPU clusters on copper, optical and wide-and-slow links.",
    )
    parser.add_argument("--version", action="version", version=f"netwall {netwall_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="what this kernel can emulate, and what this host "
                                         "carries faithfully (calibrated once, cached)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--calibrate", action="store_true",
                       help="measure this host again, even if a calibration is cached")

    profiles = sub.add_parser("profiles", help="list the link profiles")
    profiles.add_argument("--json", action="store_true", help="print profiles as JSON")
    profiles.add_argument("--profile-file", action="append", default=[], metavar="PATH",
                          help="extra profile file or directory (repeatable)")

    run = sub.add_parser("run", help="measure a collective on an emulated cluster")
    _cluster_options(run)
    run.add_argument("--collective", default="allreduce", help="collective (default allreduce)")
    run.add_argument("--algorithm", help="algorithm (default: the collective's first, e.g. ring)")
    run.add_argument("--root", type=int, default=0, help="root rank of broadcast and reduce")
    run.add_argument("--chunk", type=parse_size, help="pipeline chunk size of chunked algorithms")
    run.add_argument("--size", type=parse_size, action="append", metavar="BYTES",
                     help="one message size, e.g. 16M (repeatable; overrides -b/-e/-f)")
    run.add_argument("-b", "--min-bytes", type=parse_size, default=parse_size("1M"))
    run.add_argument("-e", "--max-bytes", type=parse_size, default=parse_size("16M"))
    run.add_argument("-f", "--step-factor", type=float, default=4.0)
    run.add_argument("-n", "--iters", type=int, default=5, help="timed iterations (default 5)")
    run.add_argument("-w", "--warmup", type=int, default=1, help="warm-up iterations")
    run.add_argument("--no-check", dest="check", action="store_false",
                     help="skip verifying every rank's result")
    run.add_argument("--fault", action="append", default=[], metavar="SPEC",
                     help="a fault during the timed calls, e.g. down:gpu0--nvs0@50us+200us, "
                          "channels=40:gpu0--nvs0@0, ber=1e-7:gpu0--nvs0@0+1ms, "
                          "flap=3:gpu0--nvs0@0+20us (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON object")

    console = sub.add_parser("cli", help="Mininet's CLI on the emulated cluster, with netwall "
                                         "commands (links, collective, iperf, fail, ...)")
    _cluster_options(console)

    replay = sub.add_parser("replay", help="replay a trace of collective calls, or a workload")
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("trace", nargs="?", help="a JSONL trace file (docs/replay.md)")
    source.add_argument("--workload", help="a built-in workload: " + ", ".join(_workloads()))
    replay.add_argument("--scale", type=float, default=0.01,
                        help="workload bytes and compute gaps times this (default 0.01)")
    replay.add_argument("--steps", type=int, default=1, help="workload training steps")
    _cluster_options(replay)
    replay.add_argument("--check", action="store_true", help="verify every call's result")
    replay.add_argument("--json", action="store_true", help="print one JSON object")

    trace = sub.add_parser("trace", help="make traces")
    trace_sub = trace.add_subparsers(dest="trace_command", required=True, parser_class=_Parser)
    imp = trace_sub.add_parser("import", help="convert an NCCL_DEBUG=INFO log to a trace")
    imp.add_argument("log", help="log file (NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,COLL)")

    fails = sub.add_parser("failures", help="Monte Carlo of link failures over cluster time")
    fails.add_argument("--gpus", type=int, default=100_000, help="GPUs in the cluster")
    fails.add_argument("--days", type=float, default=7.0, help="span of cluster time")
    fails.add_argument("--links", default="optical-800g=3,wide-and-slow-800g=3,copper-800g=3",
                       help="profile=links per GPU, comma-separated: one fleet per profile")
    fails.add_argument("--job-gpus", type=int, help="GPUs of the job (default: all)")
    fails.add_argument("--trials", type=int, default=1000)
    fails.add_argument("--seed", type=int, default=1)
    fails.add_argument("--profile-file", action="append", default=[], metavar="PATH")
    fails.add_argument("--json", action="store_true")

    reach = sub.add_parser("reach", help="how far each link technology lets a scale-up "
                                         "domain span racks")
    reach.add_argument("--gpus", type=int, default=1024, help="GPUs to place")
    reach.add_argument("--layout", default="gpus=8",
                       help="rack layout, e.g. gpus=72,pitch=0.6,height=2,slack=0.5,row=16")
    reach.add_argument("--profile-file", action="append", default=[], metavar="PATH")
    reach.add_argument("--json", action="store_true")

    sub.add_parser("clean", help="remove what killed netwall runs left behind")
    campaign_cli.add_commands(sub)
    return parser


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the emulated cluster, shared by run and replay."""
    parser.add_argument("--topology", default="star:8",
                        help="pair, ring:N, mesh:N, star:N, racks:RxG or a .yaml file "
                             "(default star:8)")
    parser.add_argument("--link", action="append", metavar="PROFILE",
                        help="link profile (repeatable; default: one run per family: "
                             + ", ".join(FAMILIES_DEFAULT) + ")")
    parser.add_argument("--spine-link", default="optical-800g", metavar="PROFILE",
                        help="profile of rack-to-spine links in racks:RxG (default optical-800g)")
    parser.add_argument("--length-m", type=float, help="cable length of GPU links, metres")
    parser.add_argument("--spine-length-m", type=float,
                        help="cable length of spine links, metres")
    parser.add_argument("--layout", metavar="SPEC",
                        help="racks:RxG only: compute cable lengths from a rack layout, e.g. "
                             "pitch=0.6,height=2,slack=0.5,row=16 (docs/layout.md)")
    parser.add_argument("--dilation", type=float,
                        help="time-dilation factor D for every call (default: chosen per call "
                             "for this host, and raised where the proof fails)")
    parser.add_argument("--tolerance", type=_percent, default=calibration.DEFAULT_TOLERANCE,
                        metavar="PCT", help="how much of a result the host may distort before "
                                            "it is flagged (default 2%%)")
    parser.add_argument("--no-probe", dest="prove", action="store_false",
                        help="skip the dilation probe that proves each result (faster; "
                             "results are then marked not proven)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse to run if the kernel cannot emulate every profile field")
    parser.add_argument("--profile-file", action="append", default=[], metavar="PATH",
                        help="extra profile file or directory (repeatable)")


def _percent(text: str) -> float:
    """'2%', '2' or '0.5%' as a fraction."""
    try:
        value = float(text.strip().rstrip("%")) / 100
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (e.g. 2%)") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100%, got {text!r}")
    return value


def _workloads() -> list[str]:
    from traffic.workloads import WORKLOADS

    return list(WORKLOADS)


def _emulations(args) -> list:
    """One validated (not yet built) Emulation per --link: bad input fails before building."""
    from emulator.emulation import Emulation

    emulations: list[Emulation] = []
    for link in args.link or list(FAMILIES_DEFAULT):
        emulations.append(Emulation(
            args.topology, link, spine_link=args.spine_link, length_m=args.length_m,
            spine_length_m=args.spine_length_m, dilation=args.dilation,
            profiles=args.profile_file, strict=args.strict, layout=args.layout,
            capabilities=emulations[0].capabilities if emulations else None,
            tolerance=args.tolerance))
    return emulations


def _calibrated(emulations: list) -> None:
    """Give validated emulations this host's calibration, measuring it first if none is
    cached (once per machine): what dilation each call needs depends on it."""
    from emulator.emulation import calibrated_host

    if all(emu.fixed_dilation for emu in emulations):
        return  # every dilation is the user's
    host = calibrated_host(emulations[0].capabilities, _stderr)
    for emu in emulations:
        emu.host = host


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def _note_missing(emulation) -> None:
    """Say once, after all input is validated, what this kernel cannot emulate."""
    missing = emulation.not_emulated
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        print(f"netwall: note: this kernel has no netem, so {' and '.join(missing)} {verb} "
              "not emulated (rates are); --strict refuses instead", file=sys.stderr)


def cmd_check(args) -> int:
    from emulator.kernel.capabilities import probe

    caps = probe()
    host = None
    if caps.veth and caps.htb:
        from emulator.emulation import calibrated_host

        host = calibrated_host(caps, _stderr, again=args.calibrate)
    if args.json:
        print(json.dumps(dict(dataclasses.asdict(caps),
                              calibration=host and dataclasses.asdict(host))))
        return 0
    print("What this kernel can emulate:")
    print(caps.report())
    if host:
        print(f"\nWhat this host carries faithfully ({host.machine}):")
        print(f"  {host.summary()}")
        print("  `netwall run` chooses each call's dilation from these and proves it; "
              "`netwall check --calibrate` measures again.")
    return 0


def cmd_profiles(args) -> int:
    from emulator.models.profiles import catalogue, profiles_table

    cat = catalogue(args.profile_file)
    if args.json:
        print(json.dumps([p.to_dict() for p in cat.values()], indent=2))
    else:
        print(profiles_table(cat))
    return 0


def cmd_clean(_args) -> int:
    from emulator.kernel import records as state

    removed = state.clean()
    print("\n".join(removed) if removed else "nothing to clean")
    return 0


def cmd_run(args) -> int:
    from emulator.emulation import check_duration
    from emulator.models.faults import parse

    sizes = args.size or sweep(args.min_bytes, args.max_bytes, args.step_factor)
    faults = [parse(spec) for spec in args.fault]
    if not (1 <= args.iters <= inputs.MAX_ITERS and 0 <= args.warmup <= inputs.MAX_ITERS):
        raise NetwallError(f"--iters must be >= 1 and --warmup >= 0 (both <= "
                           f"{inputs.MAX_ITERS}), got {args.iters}, {args.warmup}")
    emulations = _emulations(args)
    for size in sizes:
        emulations[0].schedule(args.collective, args.algorithm, size, args.root, args.chunk)
    for fault in faults:
        emulations[0].link_index(fault.name)
    _note_missing(emulations[0])
    _calibrated(emulations)
    weights = {(emu.link, size): emu.estimate_s(args.collective, args.algorithm, size,
                                                args.iters, args.warmup, args.root,
                                                args.chunk, args.prove)
               for emu in emulations for size in sizes}
    check_duration(sum(weights.values()), "this run")
    progress = Progress("run", sum(weights.values()), items=len(weights))
    results, runs = [], []
    try:
        for emu in emulations:
            runs.append(dict(emu.settings(), link=emu.link))
            if not args.json:
                _print_header(args, emu)
            with emu:
                for size in sizes:
                    progress.working_on(f"{emu.link}, {size} B")
                    entry = emu.run(args.collective, args.algorithm, size, iters=args.iters,
                                    warmup=args.warmup, check=args.check, root=args.root,
                                    chunk=args.chunk, faults=faults, prove=args.prove)
                    entry.update(link=emu.link, topology=emu.topology.name)
                    results.append(entry)
                    progress.advance(f"{emu.link}, {size} B at dilation {entry['dilation']:.10g}",
                                     weights[(emu.link, size)])
                    if not args.json:
                        _print_row(entry)
            if not args.json:
                _print_cost([r for r in results if r["link"] == emu.link], emu)
    finally:
        progress.finish()
    if args.json:
        settings = {"netwall": netwall_version(), "collective": args.collective,
                    "algorithm": args.algorithm, "sizes": sizes, "iters": args.iters,
                    "warmup": args.warmup, "check": args.check, "emulations": runs}
        print(json.dumps({"settings": settings, "results": results}, indent=1))
    return 1 if any(r["check"] is False for r in results) else 0


def _print_header(args, emu) -> None:
    from traffic.schedule import default_algorithm

    algorithm = args.algorithm or default_algorithm(args.collective)
    how = (f"dilation {emu.fixed_dilation:.10g} for every size" if emu.fixed_dilation else
           "dilation D chosen per size for this host")
    print(f"# netwall {args.collective}/{algorithm} on {emu.topology.name} "
          f"({len(emu.topology.gpus)} ranks), link {emu.link}, {how} (rates /D, delays xD; "
          "times below are real)")
    if args.prove:
        print(f"# each result is proven at a larger dilation: 'host' is the share of its time "
              f"the host added (flagged above {percent(emu.tolerance)})")
    if "link delay" in emu.not_emulated:
        print("# model: alpha-beta without its latency term, as link delay is not emulated here")
    print(f"# {'size':>12} {'count':>10} {'type':>6} {'time(us)':>10} {'algbw(GB/s)':>12} "
          f"{'busbw(GB/s)':>12} {'model(us)':>10} {'error':>7} {'retrans(B)':>10} "
          f"{'J/GB':>7} {'check':>6} {'D':>7} {'host':>6}")


def _print_row(r: dict) -> None:
    check = {True: "ok", False: "WRONG", None: "-"}[r["check"]]
    fidelity = r["fidelity"]
    host = "-" if fidelity["host_error"] is None else f"{fidelity['host_error']:+.1%}"
    print(f"  {r['bytes']:>12} {r['count']:>10} {r['type']:>6} {r['time_s'] * 1e6:>10.2f} "
          f"{r['algbw_gbps']:>12.2f} {r['busbw_gbps']:>12.2f} "
          f"{r['model_emulated_time_s'] * 1e6:>10.2f} "
          f"{r['model_error']:>+7.1%} {r['retransmitted_bytes']:>10} "
          f"{r['joules_per_gb']:>7.3f} {check:>6} {r['dilation']:>7.10g} {host:>6}", flush=True)
    for earlier in r["dilation_attempts"][:-1]:
        print(f"#   at dilation {earlier['dilation']:.10g} the host added "
              f"{_share(earlier['host_error'])}: measured again at a larger one")
    for flag in fidelity["flags"]:
        print(f"#   NOT FAITHFUL: {flag}")
    for event in r["faults"]:
        when = f"at {event['t_s'] * 1e6:.1f} us" if event["t_s"] is not None else "then"
        print(f"#   {when}: {event['link']} {event['event']} -> {event['state']}")


def _share(error: float | None) -> str:
    return "most of the time" if error is None or not math.isfinite(error) else f"{error:.1%}"


def _print_cost(rows: list[dict], emu) -> None:
    """What the run cost: wall time over emulated time, and this host's floor for it."""
    wall = sum(r["wall_s"] for r in rows)
    emulated = sum(r["emulated_s"] for r in rows)
    floor = max(r["slowdown_floor"] for r in rows)
    print(f"# cost: {wall:.1f} s of wall time for {emulated * 1e3:.3f} ms of cluster time: "
          f"slowdown {wall / emulated:,.0f}x (this host's floor {floor:,.0f}x: the calls' "
          f"injection over the {emu.host.capacity_gbps:.2f} Gb/s it carries faithfully)")


def cmd_replay(args) -> int:
    from emulator.emulation import check_duration
    from traffic.trace import load_trace, resolve
    from traffic.workloads import workload

    emulations = _emulations(args)
    traces = []
    for emu in emulations:
        if args.trace:
            traces.append(resolve(load_trace(args.trace), len(emu.topology.gpus)))
        else:
            traces.append(resolve(workload(args.workload, len(emu.topology.gpus),
                                           groups=emu.plan.racks(), scale=args.scale,
                                           steps=args.steps), len(emu.topology.gpus)))
        for call in traces[-1]:  # every call must have a schedule before anything is built
            emu.schedule(call.collective, call.algorithm, call.bytes, call.root,
                         ranks=len(call.group), group=call.group)
    _note_missing(emulations[0])
    _calibrated(emulations)
    weights = [emu.estimate_replay_s(calls, args.prove)
               for emu, calls in zip(emulations, traces, strict=True)]
    check_duration(sum(weights), "this replay")
    results = []
    progress = Progress("replay", sum(weights), items=len(emulations))
    try:
        for emu, calls in zip(emulations, traces, strict=True):
            name = args.trace or args.workload
            progress.working_on(f"{name} on {emu.link}")
            with emu:
                result = emu.replay(calls, check=args.check, prove=args.prove)
            result.update(link=emu.link, topology=emu.topology.name, trace=name)
            progress.advance(f"{name} on {emu.link} at dilation {result['dilation']:.10g}",
                             weights[len(results)])
            results.append(result)
            if not args.json:
                _print_replay(result)
    finally:
        progress.finish()
    if args.json:
        print(json.dumps({"settings": {"netwall": netwall_version(), "check": args.check,
                                       "emulations": [e.settings() for e in emulations]},
                          "results": results}, indent=1))
    wrong = any(c["check"] is False for r in results for c in r["calls"])
    return 1 if wrong else 0


def _print_replay(r: dict) -> None:
    fidelity = r["fidelity"]
    print(f"# netwall replay {r['trace']} on {r['topology']}, link {r['link']}, "
          f"dilation {r['dilation']:.10g} (times are real)")
    print(f"# {'id':>5} {'step':>4} {'stream':>8} {'comm':>8} {'collective/algorithm':>28} "
          f"{'ranks':>5} {'bytes':>10} {'start(us)':>10} {'time(us)':>10} {'busbw(GB/s)':>11} "
          f"{'model(us)':>10} {'host':>6}")
    for c in r["calls"]:
        name = f"{c['collective']}/{c['algorithm']}"
        host = "-" if c["host_error"] is None else f"{c['host_error']:+.1%}"
        print(f"  {c['id']:>5} {c['step']:>4} {c['stream']:>8} {c['comm']:>8} {name:>28} "
              f"{c['ranks']:>5} {c['bytes']:>10} {c['start_s'] * 1e6:>10.2f} "
              f"{c['time_s'] * 1e6:>10.2f} {c['busbw_gbps']:>11.2f} "
              f"{c['model_time_s'] * 1e6:>10.2f} {host:>6}")
    for step in r["steps"]:
        print(f"# step {step['step']}: {step['time_s'] * 1e6:.2f} us")
    print(f"# whole trace: {r['total_s'] * 1e6:.2f} us, {len(r['calls'])} calls, "
          f"{r['retransmitted_bytes']} bytes retransmitted")
    for earlier in r["dilation_attempts"][:-1]:
        print(f"#   at dilation {earlier['dilation']:.10g} the host added "
              f"{_share(earlier['host_error'])}: measured again at a larger one")
    if fidelity["faithful"]:
        print(f"# proven at dilation {fidelity['probe_dilation']:.10g}: the host added "
              f"{_share(fidelity['worst_error'])} at most (tolerance "
              f"{percent(fidelity['tolerance'])})")
    for flag in fidelity["flags"]:
        print(f"#   NOT FAITHFUL: {flag}")
    print(f"# cost: {r['wall_s']:.1f} s of wall time for {r['emulated_s'] * 1e3:.3f} ms of "
          f"cluster time: slowdown {r['slowdown']:,.0f}x (this host's floor "
          f"{r['slowdown_floor']:,.0f}x)")


def cmd_failures(args) -> int:
    from emulator.models.profiles import catalogue, get_profile
    from emulator.models.reliability import failures_table, fleet, simulate

    cat = catalogue(args.profile_file)
    results = {}
    for item in args.links.split(","):
        name, _, per_gpu = item.partition("=")
        get_profile(name.strip(), cat)
        try:
            links = float(per_gpu or "1")
        except ValueError:
            raise NetwallError(f"--links: {inputs.shown(item)} is not profile=links-per-GPU") \
                from None
        fl = fleet(args.gpus, {name.strip(): links})
        results[name.strip()] = simulate(fl, cat, args.days, args.trials, args.seed,
                                         job_gpus=args.job_gpus)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for name, result in results.items():
            print(f"# {name}: {args.gpus} GPUs, {args.days:g} days, {args.trials} trials")
            print(failures_table(result))
    return 0


def cmd_reach(args) -> int:
    from emulator.models.profiles import catalogue
    from topologies.layout import parse_layout, reach_report, reach_table

    rows = reach_report(args.gpus, parse_layout(args.layout), catalogue(args.profile_file))
    print(json.dumps(rows, indent=1) if args.json else reach_table(rows))
    return 0


def cmd_cli(args) -> int:
    from emulator.cli.console import console

    args.link = args.link[:1] if args.link else ["copper-800g"]
    emu = _emulations(args)[0]
    _note_missing(emu)
    with emu:
        console(emu)
    return 0


def cmd_trace(args) -> int:
    from traffic.nccl_log import convert

    sys.stdout.write(convert(args.log))
    return 0


COMMANDS = {"check": cmd_check, "profiles": cmd_profiles, "run": cmd_run, "clean": cmd_clean,
            "replay": cmd_replay, "trace": cmd_trace, "failures": cmd_failures,
            "reach": cmd_reach, "cli": cmd_cli, **campaign_cli.COMMANDS}


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so `with Emulation` tears the network down.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        return COMMANDS[args.command](args)
    except NetwallError as e:
        print(f"netwall: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, always
        return 2
    except KeyboardInterrupt:
        from emulator.kernel import records as state

        removed = "; the emulated network was removed" if state.built() else ""
        print(f"netwall: interrupted{removed}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
