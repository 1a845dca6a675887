"""The campaign commands: `campaign run|status`, `report`, `export`.

`add_commands(sub)` adds them to netwall's subparsers and COMMANDS maps each command to its
handler, for emulator.cli.main to merge. `python -m emulator.cli.campaign` runs them on their own.
emulator.cli.main is imported only inside functions, so cli.py can import this module at its top.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from emulator.errors import NetwallError
from emulator.outputs import write_file

RESULTS = Path("results")


def add_commands(sub) -> None:
    """Add campaign, report and export to netwall's subparsers object."""
    from emulator.cli.main import _Parser

    campaign = sub.add_parser("campaign", help="run a sweep declared in a YAML file, resumably")
    actions = campaign.add_subparsers(dest="campaign_command", required=True,
                                      parser_class=_Parser)
    run = actions.add_parser("run", help="measure every point not yet stored")
    status = actions.add_parser("status", help="how many points are stored, per group")
    for parser in (run, status):
        parser.add_argument("file", help="campaign file (docs/campaigns.md)")
        parser.add_argument("--db", metavar="PATH",
                            help="results store: a path or sqlite:///path "
                                 "(default results/<campaign name>.sqlite)")

    report = sub.add_parser("report", help="plots and an HTML page from campaign results")
    export = sub.add_parser("export", help="campaign results as CSV or JSON")
    for parser in (report, export):
        parser.add_argument("--db", action="append", metavar="PATH",
                            help="results store (repeatable; default every results/*.sqlite)")
    report.add_argument("--out", required=True, metavar="DIR",
                        help="directory for index.html and the PNG and SVG plots")
    export.add_argument("--format", choices=("csv", "json"), default="csv",
                        help="csv: one row per point; json: every record whole (default csv)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default stdout)")


def _campaign_db(args, name: str) -> str:
    return args.db or str(RESULTS / f"{name}.sqlite")


def cmd_campaign(args) -> int:
    from emulator.experiments.campaign import load
    from emulator.experiments.runner import run_campaign
    from emulator.experiments.store import open_store

    campaign = load(args.file)
    if args.campaign_command == "status":
        with open_store(_campaign_db(args, campaign.name), create=False) as store:
            print(status(campaign, store))
        return 0
    db = _campaign_db(args, campaign.name)
    with open_store(db) as store:
        counts = run_campaign(campaign, store)
        done = sum(store.has(i) for i in campaign.ids())
    print(f"campaign {campaign.name}: {counts['measured']} measured, {counts['skipped']} "
          f"skipped in this run; {done}/{len(campaign.ids())} points stored in {db}")
    if counts["wrong"]:
        print(f"netwall: {counts['wrong']} point(s) failed their data check", file=sys.stderr)
    return 1 if counts["wrong"] else 0


def status(campaign, store) -> str:
    """done/total for the campaign and for each group (one built network)."""
    ids = campaign.ids()
    lines = [f"campaign {campaign.name}: {sum(store.has(i) for i in ids)}/{len(ids)} points "
             "done"]
    for (experiment, topology, link, spine, layout, dilation), points in \
            campaign.groups.items():
        done = sum(store.has(p.id) for p in points)
        extra = (f" spine {spine}" if topology.startswith("racks:") else "") + \
            (f" layout {layout}" if layout else "")
        lines.append(f"  {done:>4}/{len(points):<4} {experiment}: {topology} {link}{extra} "
                     f"dilation {'auto' if dilation is None else f'{dilation:g}'}")
    if campaign.failures:
        lines.append(f"  {int(store.has(campaign.failures.id)):>4}/1    failures (Monte Carlo)")
    return "\n".join(lines)


def _records(args) -> list[dict]:
    from emulator.experiments.store import open_store

    urls = args.db or sorted(str(p) for p in RESULTS.glob("*.sqlite"))
    if not urls:
        raise NetwallError(f"no results in {RESULTS}/*.sqlite; name a store with --db")
    records = []
    for url in urls:
        with open_store(url, create=False) as store:
            records += store.records()
    return records


def cmd_report(args) -> int:
    from emulator.experiments.report import report

    page = report(_records(args), Path(args.out))
    print(page)
    return 0


def cmd_export(args) -> int:
    from emulator.experiments.report import export

    records = _records(args)
    if args.output is None:
        export(records, args.format, sys.stdout)
        return 0
    text = io.StringIO(newline="")
    export(records, args.format, text)
    write_file(args.output, text.getvalue())
    return 0


COMMANDS = {"campaign": cmd_campaign, "report": cmd_report, "export": cmd_export}
