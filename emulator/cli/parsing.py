"""netwall's command line, declared: every command, its arguments, and the argparse types
that read them (each a one-line error on bad input, never a traceback)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from emulator.kernel import vxlan
from emulator.models import calibration
from emulator.models.endpoints import DEFAULT as DEFAULT_GPU
from emulator.models.profiles import FAMILY_DEFAULTS
from foundation import inputs, units
from foundation.errors import NetwallError
from foundation.hostlist import DEFAULT_NIC_GBPS
from foundation.version import netwall_version
from topologies.graph import MAX_GPUS
from traffic.schedule import ELEMENT, datatype, reduction
from traffic.trace import MAX_CALLS
from traffic.workloads import MAX_SCALE, WORKLOADS

#: The longest --view-hold: a day.
MAX_VIEW_HOLD_S = 86400.0


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser of foundation.units as an argparse type: its NetwallError line becomes
    argparse's usage error, with the same words."""
    def read(text: str) -> Any:
        try:
            return parse(text)
        except NetwallError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    read.__name__ = read.__qualname__ = parse.__name__
    read.__doc__ = f"foundation.units.{parse.__name__}, as an argparse type."
    return read


def check_iterations(text: str) -> int:
    """nccl-tests' -c: how many calls to verify (0: none)."""
    try:
        count = int(text)
    except ValueError:
        raise NetwallError(f"-c takes a whole number of check iterations, got "
                           f"{inputs.shown(text)}") from None
    if not 0 <= count <= inputs.MAX_ITERS:
        raise NetwallError(f"-c must be between 0 (no check) and {inputs.MAX_ITERS}, got {count}")
    return count


def ranged(kind: type, low: float, high: float, above: bool = False) -> Callable[[str], Any]:
    """An argparse type for a number option: an int or a finite float from `low` (exclusive
    with `above`) to `high`, or argparse's one-line error naming the range."""
    def read(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not {'a whole number' if kind is int else 'a number'}: "
                f"{inputs.shown(text)}") from None
        try:
            return inputs.number(value, "it", low, high, whole=kind is int, above=above)
        except NetwallError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("it ")) from None
    read.__name__ = read.__qualname__ = kind.__name__  # argparse names it in "invalid int"
    return read


#: Ports, counts and lengths: each option's range, checked as it is read (docs/user-guide.md).
PORT = ranged(int, 1, 65535)
ITERS = ranged(int, 1, inputs.MAX_ITERS)
WARMUP = ranged(int, 0, inputs.MAX_ITERS)
METRES = ranged(float, 0, 1e7, above=True)
parse_size = _argument_type(units.parse_size)
parse_percent = _argument_type(units.parse_percent)
parse_datatype = _argument_type(datatype)
parse_op = _argument_type(reduction)
parse_check_iters = _argument_type(check_iterations)


def sweep(min_bytes: int, max_bytes: int, factor: float, element: int = ELEMENT) -> list[int]:
    """nccl-tests' -b/-e/-f: from min to max, multiplying by factor, in whole buffers of
    `element`-byte elements."""
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
        size = max(int(size * factor) // element * element, size + element)
    return sizes


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (the usage is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="netwall",
        description="Emulate GPU clusters on copper, optical and wide-and-slow links.",
    )
    parser.add_argument("--version", action="version", version=f"netwall {netwall_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    check = sub.add_parser("check", help="what this kernel can emulate, and what this host "
                                         "carries faithfully (calibrated once, cached)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--calibrate", action="store_true",
                       help="measure this host again, even if a calibration is cached")

    profiles = sub.add_parser("profiles", help="list the link profiles")
    profiles.add_argument("--json", action="store_true", help="print profiles as JSON")
    profiles.add_argument("--profile-file", action="append", default=[], metavar="PATH",
                          help="extra profile file or directory (repeatable)")

    gpus = sub.add_parser("gpus", help="list the GPU endpoint profiles and when each "
                                       "NCCL protocol is picked")
    gpus.add_argument("--topology", default="star:8", help="cluster the protocol choice is "
                                                           "shown for (default star:8)")
    gpus.add_argument("--link", default="nvlink4", metavar="PROFILE",
                      help="its link profile (default nvlink4)")
    gpus.add_argument("--collective", default="allreduce")
    gpus.add_argument("--algorithm", help="default: the collective's first, e.g. ring")
    gpus.add_argument("--json", action="store_true", help="print the profiles as JSON")

    run = sub.add_parser("run", help="measure a collective on an emulated cluster")
    _cluster_options(run)
    run.add_argument("--collective", default="allreduce", help="collective (default allreduce)")
    run.add_argument("--algorithm", help="algorithm (default: NCCL's choice: the collective's "
                     "first, e.g. ring, or nvls for an all-reduce on an NVLS switch where NCCL's "
                     "tuning model picks it: from 2 MiB on 8 x H100)")
    run.add_argument("--root", type=ranged(int, 0, MAX_GPUS - 1), default=0,
                     help="root rank of broadcast and reduce")
    run.add_argument("--chunk", type=parse_size, help="pipeline chunk size of chunked algorithms")
    run.add_argument("--size", type=parse_size, action="append", metavar="BYTES",
                     help="one message size, e.g. 16M (repeatable; overrides -b/-e/-f)")
    run.add_argument("-b", "--min-bytes", type=parse_size, default=parse_size("1M"))
    run.add_argument("-e", "--max-bytes", type=parse_size, default=parse_size("16M"))
    run.add_argument("-f", "--step-factor", type=ranged(float, 1, 1e6, above=True), default=4.0)
    run.add_argument("-n", "--iters", type=ITERS, default=5, help="timed iterations (default 5)")
    run.add_argument("-w", "--warmup", type=WARMUP, default=1, help="warm-up iterations")
    run.add_argument("-c", "--check", dest="check_iters", type=parse_check_iters, default=1,
                     metavar="N", help="verify N calls on every rank, as nccl-tests' -c: the "
                                       "warm-up's first (after the timed ones with -w 0; "
                                       "default 1; 0: no check)")
    run.add_argument("--no-check", dest="check", action="store_false",
                     help="skip verifying every rank's result (as -c 0)")
    run.add_argument("-d", "--datatype", type=parse_datatype, default="float", metavar="TYPE",
                     help="datatype the agents reduce, nccl-tests' names: int8 (char), uint8, "
                          "int32 (int), uint32, int64, uint64, half (float16), float "
                          "(float32), double (float64); default float")
    run.add_argument("-o", "--op", type=parse_op, default="sum", metavar="OP",
                     help="reduction: sum, prod, min, max, avg (default sum)")
    run.add_argument("--format", choices=("table", "nccl-tests"), default="table",
                     help="table: netwall's (default); nccl-tests: what nccl-tests prints, "
                          "for scripts that read it")
    run.add_argument("--fault", action="append", default=[], metavar="SPEC",
                     help="a fault during the timed calls, e.g. down:gpu0--nvs0@50us+200us, "
                          "channels=40:gpu0--nvs0@0, ber=1e-7:gpu0--nvs0@0+1ms, "
                          "flap=3:gpu0--nvs0@0+20us (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    view_options(run)

    compare = sub.add_parser("compare", help="cluster designs side by side: time, energy, "
                                             "power, failures (a design file, docs/compare.md)")
    compare.add_argument("file", nargs="?",
                         help="design file (default: the one `netwall run` runs alone, or "
                              "the designs given by --design)")
    compare.add_argument("--design", action="append", metavar="NAME=LINK:DxG",
                         help="instead of a file (repeatable): a design of D scale-up domains "
                              "of G GPUs on LINK, e.g. copper=nvlink5:2x4")
    compare.add_argument("--layout", help="with --design: rack layout, e.g. gpus=4 "
                                          "(default one rack per domain)")
    compare.add_argument("--scale-out", metavar="PROFILE",
                         help="with --design: the NICs' profile (default optical-800g)")
    compare.add_argument("--collective", default="allreduce",
                         help="with --design: the collective over all GPUs (default allreduce)")
    compare.add_argument("--size", action="append", metavar="BYTES",
                         help="with --design: a size (repeatable; default 8M)")
    compare.add_argument("-n", "--iters", type=ITERS, default=3,
                         help="with --design: timed calls per size (default 3)")
    compare.add_argument("--no-probe", dest="prove", action="store_false",
                         help="skip the dilation probe that proves each result (faster)")
    compare.add_argument("--profile-file", action="append", default=[], metavar="PATH",
                         help="extra profile file or directory (repeatable)")
    compare.add_argument("--db", metavar="PATH",
                         help="also store every row here (a campaign store: path or "
                              "sqlite:///path; designs already stored are not run again; "
                              "netwall report plots them)")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    view_options(compare)

    console = sub.add_parser("cli", help="Mininet's CLI on the emulated cluster, with netwall "
                                         "commands (links, collective, iperf, fail, ...)")
    _cluster_options(console)
    view_options(console, hold=False)

    replay = sub.add_parser("replay", help="replay a trace of collective calls, or a workload")
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("trace", nargs="?", help="a JSONL trace file (docs/replay.md)")
    source.add_argument("--workload", help="a built-in workload: " + ", ".join(list(WORKLOADS)))
    replay.add_argument("--scale", type=ranged(float, 0, MAX_SCALE, above=True), default=0.01,
                        help="workload bytes and compute gaps times this (default 0.01)")
    replay.add_argument("--steps", type=ranged(int, 1, MAX_CALLS), default=1,
                        help="workload training steps")
    _cluster_options(replay)
    replay.add_argument("--check", action="store_true", help="verify every call's result")
    replay.add_argument("--no-skip", dest="skip", action="store_false",
                        help="dilate every compute gap instead of skipping those no traffic "
                             "overlaps (docs/replay.md)")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    view_options(replay)

    trace = sub.add_parser("trace", help="make traces")
    trace_sub = trace.add_subparsers(dest="trace_command", required=True, parser_class=Parser)
    imp = trace_sub.add_parser("import", help="convert an NCCL_DEBUG=INFO log or Chakra "
                                              "execution traces to a trace")
    imp.add_argument("log", nargs="+", metavar="FILE",
                     help="an NCCL log (NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,COLL), or "
                          "Chakra .et files, one per rank in rank order")

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

    clean = sub.add_parser("clean", help="remove what killed netwall runs left behind")
    host_options(clean, clean=True)
    _campaign_commands(sub)
    return parser


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the emulated cluster, shared by run and replay."""
    parser.add_argument("--topology", default="star:8",
                        help="pair, ring:N, mesh:N, star:N, racks:RxG, cluster:DxG or a .yaml "
                             "file (default star:8)")
    parser.add_argument("--link", action="append", metavar="PROFILE",
                        help="link profile (repeatable; default: one run per family: "
                             + ", ".join(FAMILY_DEFAULTS) + ")")
    parser.add_argument("--spine-link", default="optical-800g", metavar="PROFILE",
                        help="profile of rack-to-spine links in racks:RxG, and of the NICs "
                             "of cluster:DxG (default optical-800g)")
    parser.add_argument("--length-m", type=METRES, help="cable length of GPU links, metres")
    parser.add_argument("--spine-length-m", type=METRES,
                        help="cable length of spine links, metres")
    parser.add_argument("--layout", metavar="SPEC",
                        help="racks:RxG and cluster:DxG: cable lengths from a rack layout, e.g. "
                             "pitch=0.6,height=2,slack=0.5,row=16 (docs/layout.md)")
    parser.add_argument("--dilation", type=ranged(float, 0, 1e9, above=True),
                        help="time-dilation factor D for every call (default: chosen per call "
                             "for this host, and raised where the proof fails)")
    parser.add_argument("--tolerance", type=parse_percent, default=calibration.DEFAULT_TOLERANCE,
                        metavar="PCT", help="how much of a result the host may distort before "
                                            "it is flagged (default 2%%)")
    parser.add_argument("--no-probe", dest="prove", action="store_false",
                        help="skip the dilation probe that proves each result (faster; "
                             "results are then marked not proven)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse to run if the kernel cannot emulate every profile field")
    parser.add_argument("--gpu", default=DEFAULT_GPU, metavar="NAME",
                        help="GPU endpoint every rank stands in for: NCCL's launch, step and "
                             f"protocol costs (default {DEFAULT_GPU}; `ideal`: links only; "
                             "`netwall gpus` lists them)")
    parser.add_argument("--profile-file", action="append", default=[], metavar="PATH",
                        help="extra profile file or directory (repeatable)")
    host_options(parser)


def view_port(text: str) -> int:
    """--view-port: a TCP port, 0 for any free one."""
    port = int(text) if text.isdigit() else None
    if not inputs.is_whole(port, 0, 65535):
        raise argparse.ArgumentTypeError(f"--view-port takes a port 0..65535, got "
                                         f"{inputs.shown(text)}")
    return port


def view_hold(text: str) -> float:
    """--view-hold: seconds, 0 or more."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_VIEW_HOLD_S:  # NaN fails it too
        raise argparse.ArgumentTypeError(f"--view-hold takes seconds 0..{MAX_VIEW_HOLD_S:g}, "
                                         f"got {inputs.shown(text)}")
    return seconds


def view_options(parser: argparse.ArgumentParser, hold: bool = True) -> None:
    """--view and how to serve it (docs/view.md)."""
    parser.add_argument("--view", action="store_true",
                        help="serve a live view of the cluster in the browser while it runs "
                             "(the address is printed; docs/view.md)")
    parser.add_argument("--view-port", type=view_port, metavar="PORT",
                        help="its port (default: any free one)")
    parser.add_argument("--view-address", metavar="ADDRESS",
                        help="listen on this address instead of 127.0.0.1 (the page shows "
                             "your cluster to whoever reaches it)")
    if hold:
        parser.add_argument("--view-hold", type=view_hold, metavar="SECONDS",
                            help="keep the view open this long after the work ends (default: "
                                 "until Enter, Ctrl-C or the end of standard input)")


def host_options(parser: argparse.ArgumentParser, clean: bool = False) -> None:
    """--hosts (and, to build over them, the NIC and the VXLAN port): docs/multihost.md."""
    parser.add_argument("--hosts", metavar="LIST",
                        help="spread the cluster over these hosts: [user@]host[:port],... or "
                             "@FILE (default $NETWALL_HOSTS; none: this machine)")
    if clean:
        return
    parser.add_argument("--nic-gbps", type=ranged(float, 0, 1e6, above=True),
                        default=DEFAULT_NIC_GBPS, metavar="GBPS",
                        help=f"rate of each host's NIC to the others (default "
                             f"{DEFAULT_NIC_GBPS:g}): the run refuses a dilation whose "
                             "cross-host traffic would exceed it")
    parser.add_argument("--vxlan-port", type=PORT, default=vxlan.DEFAULT_PORT, metavar="PORT",
                        help="UDP port of the VXLAN tunnels between hosts (default "
                             f"{vxlan.DEFAULT_PORT})")


def _campaign_commands(sub) -> None:
    """campaign run|status, report and export."""
    campaign = sub.add_parser("campaign", help="run a sweep declared in a YAML file, resumably")
    actions = campaign.add_subparsers(dest="campaign_command", required=True,
                                      parser_class=Parser)
    run = actions.add_parser("run", help="measure every point not yet stored")
    status = actions.add_parser("status", help="how many points are stored, per group")
    submit = actions.add_parser("submit", help="run the points not yet stored as a Slurm job "
                                "array (submitit); each task writes a file of its own")
    merge = actions.add_parser("merge", help="copy what submitted tasks measured into the "
                               "results store")
    for parser in (run, status, submit, merge):
        parser.add_argument("file", help="campaign file (docs/campaigns.md)")
        parser.add_argument("--db", metavar="PATH",
                            help="results store: a path or sqlite:///path "
                                 "(default results/<campaign name>.sqlite)")
    for parser in (status, submit, merge):
        parser.add_argument("--folder", metavar="DIR",
                            help="where submitted tasks write (on a file system every node "
                                 "shares; default results/<campaign name>.slurm)")
    submit.add_argument("--executor", choices=("slurm", "local"), default="slurm",
                        help="slurm (sbatch), or local: the same job array on this machine")
    submit.add_argument("--tasks", type=int, default=100,
                        help="array tasks at most; each takes whole groups (default 100)")
    submit.add_argument("--time", type=int, default=24 * 60, metavar="MIN",
                        help="each task's time limit, minutes (default 1440)")
    submit.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    submit.add_argument("--wait", action="store_true",
                        help="wait for every task, then merge")
    run.add_argument("--dry-run", action="store_true",
                     help="show the points and about how long they take; measure nothing")
    host_options(run)

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
