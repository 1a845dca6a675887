"""The campaign commands: `campaign run|status`, `report`, `export`.

Their arguments are declared in emulator.cli.parsing; COMMANDS maps each to its handler. The
runner and the report (the emulation, matplotlib) are imported when a command needs them.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from emulator.experiments import findings
from emulator.experiments.campaign import load
from emulator.experiments.store import NoStore, Store, open_store, same_store, summary
from emulator.models import calibration
from emulator.models.faults import parse
from foundation.errors import NetwallError
from foundation.hostlist import resolve_hosts
from foundation.outputs import write_file
from foundation.text.progress import clock

RESULTS = Path("results")


def _campaign_db(args, name: str) -> str:
    """--db as given (an empty one is refused by open_store), else results/NAME.sqlite."""
    return args.db if args.db is not None else str(RESULTS / f"{name}.sqlite")


def _warn(store: Store | _NothingStored) -> None:
    """Name, in one line, the bad records a reader skipped."""
    problem = store.problem()
    if problem:
        print(f"netwall: warning: {problem}", file=sys.stderr)


def _folder(args, name: str) -> Path:
    return Path(args.folder or RESULTS / f"{name}.slurm").resolve()


class _NothingStored:
    """The store of a campaign not run yet: status and --dry-run read it as empty (and
    create no file)."""

    def has(self, _id: str) -> bool:
        return False

    def problem(self) -> None:
        return None

    def __enter__(self) -> _NothingStored:
        return self

    def __exit__(self, *_exc) -> None:
        return None


def _stored(db: str):
    """The campaign's store for reading, or an empty one if it has none yet."""
    try:
        return open_store(db, create=False)
    except NoStore:
        return _NothingStored()


def cmd_campaign(args) -> int:
    campaign = load(args.file)
    if args.campaign_command == "status" or getattr(args, "dry_run", False):
        with _stored(_campaign_db(args, campaign.name)) as store:
            folder = _folder(args, campaign.name) if args.campaign_command == "status" \
                else None
            print(status(campaign, store, folder))
            print(_time_left(campaign, store))
            _warn(store)
        return 0
    if args.campaign_command in ("submit", "merge"):
        return _slurm(args, campaign)
    from emulator.experiments.runner import run_campaign  # the emulation: imported when used

    db = _campaign_db(args, campaign.name)
    with open_store(db) as store:
        counts = run_campaign(campaign, store, hosts=resolve_hosts(args.hosts),
                              nic_gbps=args.nic_gbps, vxlan_port=args.vxlan_port)
        done = sum(store.has(i) for i in campaign.ids())
        records = [r for r in store.records() if r["campaign"] == campaign.name]
    print(f"campaign {campaign.name}: {counts['measured']} measured, {counts['skipped']} "
          f"skipped in this run; {done}/{len(campaign.ids())} points stored in {db}")
    print("\n".join(["# verdict:"] + [f"#   {line}" for line in findings.campaign(records)]))
    if counts["wrong"]:
        print(f"netwall: {counts['wrong']} point(s) failed their data check", file=sys.stderr)
    return 1 if counts["wrong"] else 0


def _slurm(args, campaign) -> int:
    """campaign submit (and with --wait, merge) and campaign merge."""
    from emulator.experiments import slurm  # submitit and the runner: imported when used

    folder = _folder(args, campaign.name)
    db = _campaign_db(args, campaign.name)
    if args.campaign_command == "merge":
        slurm.existing(folder)  # before a store is made
    with open_store(db) as store:
        if args.campaign_command == "submit":
            jobs = slurm.submit(args.file, store, folder, args.executor, args.tasks,
                                args.time, args.partition)
            if not jobs:
                print(f"campaign {campaign.name}: nothing to submit (every point is stored "
                      f"or waits in {folder} to be merged)")
                return 0
            print(f"campaign {campaign.name}: {len(jobs)} task(s) submitted "
                  f"({args.executor} job {jobs[0].job_id.split('_')[0]}); results in {folder}")
            if not args.wait:
                return 0
            for job in jobs:
                try:
                    job.result()
                except Exception as e:  # noqa: BLE001 - submitit re-raises the task's error
                    last = str(e).strip().splitlines()
                    raise NetwallError(f"task {job.job_id} failed: "
                                       f"{last[-1] if last else type(e).__name__}") from None
        merged = slurm.merge(folder, store)
        done = sum(store.has(i) for i in campaign.ids())
    print(f"campaign {campaign.name}: merged {merged.new} new record(s) ({merged.same} stored "
          f"already) from {merged.files} task file(s); {done}/{len(campaign.ids())} points "
          f"stored in {db}")
    unreadable = summary("skipped", "line(s) that are not records (a task killed mid-write?)",
                         merged.unreadable)
    if unreadable:
        print(f"netwall: warning: {unreadable}", file=sys.stderr)
    if merged.problem():
        raise NetwallError(merged.problem())
    return 0


def status(campaign, store, folder: Path | None = None) -> str:
    """done/total for the campaign and for each group (one built network), and what
    submitted tasks measured that is not merged yet."""
    ids = campaign.ids()
    lines = [f"campaign {campaign.name}: {sum(store.has(i) for i in ids)}/{len(ids)} points "
             "done"]
    if folder is not None and folder.is_dir():
        from emulator.experiments.slurm import waiting  # submitit: imported when used

        unmerged = len((waiting(folder) & ids) - {i for i in ids if store.has(i)})
        if unmerged:
            lines[0] += f"; {unmerged} more measured by submitted tasks (campaign merge)"
    for (experiment, topology, link, gpu, spine, layout, dilation), points in \
            campaign.groups.items():
        done = sum(store.has(p.id) for p in points)
        extra = (f" spine {spine}" if topology.startswith("racks:") else "") + \
            (f" layout {layout}" if layout else "")
        lines.append(f"  {done:>4}/{len(points):<4} {experiment}: {topology} {link} "
                     f"gpu {gpu}{extra} "
                     f"dilation {'auto' if dilation is None else f'{dilation:g}'}")
    if campaign.failures:
        lines.append(f"  {int(store.has(campaign.failures.id)):>4}/1    failures (Monte Carlo)")
    return "\n".join(lines)


def _time_left(campaign, store) -> str:
    """About how long the points not stored will measure on this host: each group's
    emulation validated (nothing built) and its estimate at this host's calibration."""
    from emulator.experiments import runner  # the emulation: imported when used

    host, capabilities = calibration.load(), None
    seconds, todo, skipped = 0.0, 0, 0
    for points in campaign.groups.values():
        left = [p for p in points if not store.has(p.id)]
        if not left:
            continue
        try:
            emu = runner._emulation(left[0], capabilities)
        except NetwallError:
            skipped += len(left)  # the run stores these as skipped, with the reason
            continue
        capabilities = emu.capabilities
        if emu.fixed_dilation is None:
            if host is None:
                pending = sum(not store.has(p.id) for p in campaign.points)
                return (f"{pending} points to measure; the time is known once this host is "
                        "calibrated (netwall check, about a minute, once)")
            emu.calibrated(host)
        for p in left:
            try:
                seconds += emu.pricing.run_s(emu.spec.run_request(
                    p.collective, p.algorithm, p.size, iters=p.iters, warmup=p.warmup,
                    faults=[parse(s) for s in p.faults]))
            except NetwallError:
                skipped += 1
                continue
            todo += 1
    said = f"{todo} points to measure, about {clock(seconds)} of measuring on this host"
    if skipped:
        said += f"; {skipped} will be skipped (run them to store why)"
    return said + " (rebuilding each network adds to it)"


def _records(args) -> list[dict]:
    """Every usable record of the stores named (each store once, however often named),
    read-only; the bad ones are named on stderr and skipped."""
    urls = args.db if args.db is not None else sorted(str(p) for p in RESULTS.glob("*.sqlite"))
    if not urls:
        raise NetwallError(f"no results in {RESULTS}/*.sqlite; name a store with --db")
    unique: list[str] = []
    for url in urls:
        if not any(same_store(url, seen) for seen in unique):
            unique.append(url)
    records = []
    for url in unique:
        with open_store(url, create=False) as store:
            records += store.records()
            _warn(store)
    return records


def cmd_report(args) -> int:
    from emulator.experiments.report import report  # matplotlib: imported when used

    page = report(_records(args), Path(args.out))
    print(page)
    return 0


def cmd_export(args) -> int:
    from emulator.experiments.export import export  # matplotlib: imported when used

    records = _records(args)
    if args.output is None:
        export(records, args.format, sys.stdout)
        return 0
    text = io.StringIO(newline="")
    export(records, args.format, text)
    write_file(args.output, text.getvalue())
    return 0


COMMANDS = {"campaign": cmd_campaign, "report": cmd_report, "export": cmd_export}
