"""What each `netwall` command does, given its parsed arguments; an int exit code back.

The emulation and the console (Mininet, pyroute2, scapy: about half a second to import) are
imported by the commands that build a network, so `netwall profiles`, `reach` and `--help`
answer at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys

from emulator.cli import campaign, comparison, nccltests, tables, viewing
from emulator.cli.listings import failures_table, gpus_table, profiles_table, reach_table
from emulator.cli.parsing import sweep
from emulator.experiments import designs
from emulator.experiments.store import open_store
from emulator.kernel import records as state
from emulator.kernel.capabilities import probe
from emulator.models.alphabeta import nvls_span, protocol_ranges
from emulator.models.endpoints import gpus
from emulator.models.faults import parse
from emulator.models.profiles import (
    DEFAULT_LINK,
    FAMILY_DEFAULTS,
    catalogue,
    get_profile,
    with_bundles,
)
from emulator.models.reliability import fleet, simulate
from foundation import inputs
from foundation.errors import NetwallError
from foundation.hostlist import resolve_hosts
from foundation.text.progress import Progress
from foundation.version import netwall_version
from topologies import parse as parse_topology
from topologies import validate
from topologies.layout import parse_layout, reach_report
from traffic.chakra import convert_chakra
from traffic.nccl_log import convert
from traffic.schedule import build, default_algorithm, element_size
from traffic.trace import load_trace
from traffic.workloads import workload


def _emulations(args) -> list:
    """One validated (not yet built) Emulation per --link: bad input fails before building."""
    from emulator.emulation import Emulation

    emulations: list[Emulation] = []
    for link in args.link or list(FAMILY_DEFAULTS):
        emulations.append(Emulation(
            args.topology, link, spine_link=args.spine_link, length_m=args.length_m,
            spine_length_m=args.spine_length_m, dilation=args.dilation,
            profiles=args.profile_file, strict=args.strict, layout=args.layout, gpu=args.gpu,
            capabilities=emulations[0].capabilities if emulations else None,
            tolerance=args.tolerance, hosts=resolve_hosts(args.hosts),
            nic_gbps=args.nic_gbps, vxlan_port=args.vxlan_port))
    return emulations


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


#: What the kernel's note ends with on the command line.
STRICT_ADVICE = "; --strict refuses instead"


def _prepared(emulations: list) -> None:
    """The pre-flight every command that builds shares (emulator.preflight): the kernel's
    note once, after all input is validated, then this host's calibration."""
    from emulator.preflight import prepare

    prepare(emulations, _stderr, advice=STRICT_ADVICE)


def cmd_check(args) -> int:
    caps = probe()
    host = None
    if caps.veth and caps.htb:
        from emulator.preflight import calibrated_host

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
        if host.samples:
            print(f"  {host.variation()}")
        print("  `netwall run` chooses each call's dilation from these and proves it; "
              "`netwall check --calibrate` measures again.")
    return 0


def cmd_gpus(args) -> int:
    """The GPU endpoints, and the sizes NCCL's cost model picks each protocol for on the
    given cluster (the choice depends on its links and ranks)."""
    known = gpus()
    if args.json:
        print(json.dumps([g.to_dict() for g in known.values()], indent=2))
        return 0
    cat = with_bundles(catalogue(), [args.link])
    get_profile(args.link, cat)
    topo = parse_topology(args.topology, args.link)
    cat = with_bundles(cat, [cable.profile for cable in topo.links])
    validate(topo, cat)
    algorithm = args.algorithm or default_algorithm(args.collective)
    sizes = [1 << k for k in range(10, 34)]  # 1 KiB .. 8 GiB
    ranks = len(topo.gpus)
    ranges = {name: protocol_ranges(
        sizes, lambda size: build(args.collective, algorithm, ranks, size), topo, cat, gpu)
        for name, gpu in known.items() if algorithm != "nvls" or gpu.nvls}
    print(f"# protocol picked for {args.collective}/{algorithm} on {topo.name}, link "
          f"{args.link}, 1 KiB - 8 GiB (--topology, --link)")
    chosen = {}
    if args.collective == "allreduce" and not args.algorithm and \
            topo.nvls_switch(tuple(range(ranks))) is not None:  # NCCL's choice, issue 28
        chosen = {name: f"NCCL's choice {nvls_span(gpu, ranks)}" for name, gpu in known.items()}
    print(gpus_table(known, ranges, chosen, ranks))
    return 0


def cmd_profiles(args) -> int:
    cat = catalogue(args.profile_file)
    if args.json:
        print(json.dumps([p.to_dict() for p in cat.values()], indent=2))
    else:
        print(profiles_table(cat))
        print("# W/end, pJ/bit: the power boundary of every profile: one end's SerDes plus "
              "what the cable carries there (DSP, lasers or LEDs, EEPROM); docs/profiles.md")
    return 0


def cmd_clean(args) -> int:
    """This machine's leftovers, or with a host list every host's (over SSH)."""
    hosts = resolve_hosts(args.hosts)
    if hosts:
        from emulator.remote.ssh import clean_hosts

        for host, removed in clean_hosts(hosts):
            print(f"{host}: {removed}")
        return 0
    removed = state.clean()
    print("\n".join(removed) if removed else "nothing to clean")
    return 0


def cmd_run(args) -> int:
    from emulator.preflight import bound_duration

    if viewing.without_view(args.words) == ("run",):  # no options: show the wall first
        return _compare((designs.parse(designs.DEFAULT, "default"),), args.json, (), True,
                        None, args)
    nccl = args.format == "nccl-tests"
    if nccl and args.json:
        raise NetwallError("--json and --format nccl-tests exclude each other: pick one")
    check_iters = args.check_iters if args.check else 0  # --no-check is -c 0
    sizes = args.size or sweep(args.min_bytes, args.max_bytes, args.step_factor,
                               element_size(args.datatype))
    faults = [parse(spec) for spec in args.fault]
    if not (1 <= args.iters <= inputs.MAX_ITERS and 0 <= args.warmup <= inputs.MAX_ITERS):
        raise NetwallError(f"--iters must be >= 1 and --warmup >= 0 (both <= "
                           f"{inputs.MAX_ITERS}), got {args.iters}, {args.warmup}")
    emulations = _emulations(args)
    requests = {(emu.link, size): emu.spec.run_request(
        args.collective, args.algorithm, size, iters=args.iters, warmup=args.warmup,
        check_iters=check_iters, root=args.root, chunk=args.chunk, faults=faults,
        prove=args.prove, dtype=args.datatype, op=args.op)
        for emu in emulations for size in sizes}
    _prepared(emulations)
    weights = {(emu.link, size): emu.pricing.run_s(requests[(emu.link, size)])
               for emu in emulations for size in sizes}
    bound_duration(sum(weights.values()), "this run")
    progress = Progress("run", sum(weights.values()), items=len(weights))
    view = viewing.open_view(args, "run", [(e, viewing.rack_size(args, e.link))
                                           for e in emulations], progress)
    results, runs = [], []
    try:
        for emu in emulations:
            runs.append(dict(emu.settings(), link=emu.link))
            layout = _nccl_settings(args, emu, sizes, check_iters) if nccl else None
            if nccl:
                print("\n".join(nccltests.header(layout)), flush=True)
            elif not args.json:
                tables.print_header(args, emu)
            with emu:
                for size in sizes:
                    progress.working_on(f"{emu.link}, {size} B")
                    result = emu.measure(requests[(emu.link, size)])
                    results.append(result)
                    viewing.landed(view, result)
                    progress.advance(f"{emu.link}, {size} B at dilation {result.dilation:.10g}",
                                     weights[(emu.link, size)])
                    if nccl:
                        print("\n".join([nccltests.row(result, layout),
                                         *nccltests.notes(result)]), flush=True)
                    elif not args.json:
                        tables.print_row(result)
            mine = [r for r in results if r.link == emu.link]
            if nccl:
                print("\n".join(nccltests.footer(mine)), flush=True)
            elif not args.json:
                tables.print_cost(mine, emu)
    finally:
        progress.finish()
    if args.json:
        settings = {"netwall": netwall_version(), "collective": args.collective,
                    "algorithm": args.algorithm, "sizes": sizes, "iters": args.iters,
                    "warmup": args.warmup, "check": check_iters > 0,
                    "check_iters": check_iters, "datatype": args.datatype, "op": args.op,
                    "emulations": runs}
        print(json.dumps({"settings": settings, "results": [r.to_dict() for r in results]},
                         indent=1))
    viewing.hold(view, args)
    return 1 if any(r.check is False for r in results) else 0


def _nccl_settings(args, emu, sizes: list[int], check_iters: int) -> nccltests.Settings:
    """What the nccl-tests header says of one link's run."""
    return nccltests.Settings(
        collective=args.collective,
        algorithm=args.algorithm or default_algorithm(args.collective),
        topology=emu.topology.name, link=emu.link, hosts=tuple(emu.topology.gpus),
        min_bytes=min(sizes), max_bytes=max(sizes), step_factor=args.step_factor,
        warmup=args.warmup, iters=args.iters, check_iters=check_iters, root=args.root,
        pid=os.getpid(), gpu=emu.gpu.name, link_delay=emu.delay_mechanism)


def cmd_compare(args) -> int:
    """Cluster designs side by side (a design file, or the default `netwall run` shows)."""
    if args.file and args.design:
        raise NetwallError("give a design file or --design flags, not both")
    if args.design:
        found = (designs.from_flags(args.design, args.collective, args.size or ["8M"],
                                    args.layout, args.scale_out, args.iters),)
    elif args.file:
        found = designs.load(args.file)
    else:
        found = (designs.parse(designs.DEFAULT, "default"),)
    return _compare(found, args.json, args.profile_file, args.prove, args.db, view_args=args)


def _compare(files: tuple[designs.DesignFile, ...], as_json: bool, profile_files, prove: bool,
             db: str | None = None, view_args=None) -> int:
    """Run a design file's comparisons (one, or one per section) and print each with its
    verdict; every one is checked before the first is built. With `db`, every row is
    stored as it is measured and designs stored before are not run again (the campaign
    store: netwall report). `view_args`: the command's arguments, whose --view options say
    whether to show it live."""
    from emulator.experiments import compare
    from emulator.preflight import bound_duration

    if not prove:
        files = tuple(dataclasses.replace(f, probe=False) for f in files)
    capabilities = None
    prepared = []
    for file in files:
        prepared.append(compare.prepare(file, profile_files, capabilities))
        capabilities = next((p.emulation.capabilities for p in prepared[-1]
                             if p.emulation is not None), capabilities)
    emulations = [p.emulation for mine in prepared for p in mine if p.emulation is not None]
    _prepared(emulations)
    out = []
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_store(db)) if db is not None else None
        kept = [compare.stored(f, store) if store else {} for f in files]
        weights = [[0.0 if p.design.name in k else w
                    for p, w in zip(mine, compare.estimate_s(f, mine), strict=True)]
                   for f, mine, k in zip(files, prepared, kept, strict=True)]
        bound_duration(sum(map(sum, weights)), "this comparison")
        items = sum(len(mine) * _rows_per_design(f) for f, mine in zip(files, prepared,
                                                                       strict=True))
        progress = Progress("compare", sum(map(sum, weights)), items=items)
        view = viewing.open_view(view_args, "compare", [
            (p.emulation, p.design.cluster.layout.gpus_per_rack) for mine in prepared
            for p in mine if p.emulation is not None], progress)
        try:
            for file, mine, k, w in zip(files, prepared, kept, weights, strict=True):
                weight = {p.design.name: x / _rows_per_design(file)
                          for p, x in zip(mine, w, strict=True)}

                def done(row, file=file, k=k, weight=weight) -> None:
                    viewing.landed(view, row)
                    if store and row.design not in k:
                        compare.keep(file, row, store)
                    progress.advance(f"{row.design}, {row.workload}", weight[row.design])

                out.append((file, compare.run(file, mine, done, k)))
        finally:
            progress.finish()
    if as_json:
        each = [{"settings": {"netwall": netwall_version(), "file": dataclasses.asdict(file)},
                 "rows": [r.to_dict() for r in rows]} for file, rows in out]
        print(json.dumps(each[0] if len(each) == 1 else {"comparisons": each}, indent=1,
                         default=str))
    else:
        delay = emulations[0].delay_mechanism if emulations else None
        for i, (file, rows) in enumerate(out):
            print(("\n" if i else "") + "\n".join(comparison.header(file, delay)))
            print(comparison.render(rows))
            print("\n".join(comparison.verdict(rows)))
    viewing.hold(view, view_args)
    return 0


def _rows_per_design(file: designs.DesignFile) -> int:
    return sum(len(w.sizes) or 1 for w in file.workloads)


def cmd_replay(args) -> int:
    from emulator.preflight import bound_duration

    emulations = _emulations(args)
    name = args.trace or args.workload
    requests = []
    for emu in emulations:  # every call must have a schedule before anything is built
        ranks = len(emu.topology.gpus)
        calls = load_trace(args.trace) if args.trace else \
            workload(args.workload, ranks, groups=emu.plan.groups(), scale=args.scale,
                     steps=args.steps)
        requests.append(emu.spec.replay_request(calls, check=args.check, prove=args.prove,
                                                name=name, skip=args.skip))
    _prepared(emulations)
    weights = [emu.pricing.replay_s(request)
               for emu, request in zip(emulations, requests, strict=True)]
    bound_duration(sum(weights), "this replay")
    results = []
    progress = Progress("replay", sum(weights), items=len(emulations))
    view = viewing.open_view(args, "replay", [(e, viewing.rack_size(args, e.link))
                                              for e in emulations], progress)
    try:
        for emu, request in zip(emulations, requests, strict=True):
            progress.working_on(f"{name} on {emu.link}")
            with emu:
                result = emu.measure_trace(request)
            progress.advance(f"{name} on {emu.link} at dilation {result.dilation:.10g}",
                             weights[len(results)])
            results.append(result)
            viewing.landed(view, result)
            if not args.json:
                tables.print_replay(result)
    finally:
        progress.finish()
    if len(results) > 1 and not args.json:
        print("\n".join(tables.replay_verdict(results)))
    if args.json:
        print(json.dumps({"settings": {"netwall": netwall_version(), "check": args.check,
                                       "emulations": [e.settings() for e in emulations]},
                          "results": [r.to_dict() for r in results]}, indent=1))
    viewing.hold(view, args)
    wrong = any(c.check is False for r in results for c in r.calls)
    return 1 if wrong else 0


def cmd_failures(args) -> int:
    items = args.links.split(",")
    cat = with_bundles(catalogue(args.profile_file),  # "9xoptical-800g=1" too
                       [item.partition("=")[0].strip() for item in items])
    results = {}
    for item in items:
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
    rows = reach_report(args.gpus, parse_layout(args.layout), catalogue(args.profile_file))
    print(json.dumps(rows, indent=1) if args.json else reach_table(rows))
    return 0


def cmd_cli(args) -> int:
    from emulator.cli.console import console

    if resolve_hosts(args.hosts):
        raise NetwallError("netwall cli builds on this machine only (Mininet's CLI needs every "
                           "node here); run, replay and campaign take --hosts")
    args.link = args.link[:1] if args.link else [DEFAULT_LINK]
    from emulator.preflight import kernel_note

    emu = _emulations(args)[0]
    note = kernel_note(emu, STRICT_ADVICE)
    if note:
        _stderr(note)
    size = viewing.rack_size(args, emu.link)
    view = viewing.open_view(args, "cli", [(emu, size)])
    with emu:
        console(emu, view, size)
    return 0


def cmd_trace(args) -> int:
    chakra = [f for f in args.log if f.endswith((".et", ".et.gz"))]
    if chakra and len(chakra) != len(args.log):
        raise NetwallError("trace import: give Chakra .et files (one per rank) or one NCCL "
                           "log, not both")
    if not chakra and len(args.log) > 1:
        raise NetwallError("trace import: one NCCL log at a time (concatenate the ranks' "
                           "logs into one file)")
    sys.stdout.write(convert_chakra(chakra) if chakra else convert(args.log[0]))
    return 0


COMMANDS = {"check": cmd_check, "profiles": cmd_profiles, "gpus": cmd_gpus, "run": cmd_run,
            "clean": cmd_clean,
            "replay": cmd_replay, "compare": cmd_compare, "trace": cmd_trace,
            "failures": cmd_failures,
            "reach": cmd_reach, "cli": cmd_cli, **campaign.COMMANDS}
