"""--view on run, replay, compare and cli: open the live view, feed it, keep it open at the end.

Without --view nothing here makes anything or imports the view's server (aiohttp): a
command calls these with `view` None and they return at once (docs/view.md).
"""

from __future__ import annotations

import sys
import time

from foundation.errors import NetwallError
from topologies import cluster as clusters

#: The options that only say how to show a command, not what it runs.
OPTIONS = ("--view", "--view-port", "--view-address", "--view-hold")


def without_view(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words typed, less the view's options (`netwall run --view` is still the default
    comparison: the view shows it, it does not change it)."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in OPTIONS[1:]:
            skip = True
        elif word != "--view" and not word.startswith(tuple(f"{o}=" for o in OPTIONS[1:])):
            out.append(word)
    return tuple(out)


def open_view(args, command: str, emulations: list, progress=None):
    """The live view of this command, serving, if --view asked for it; else None.
    `emulations`: (Emulation, GPUs per rack or None) pairs, each told to report to it."""
    if args is None:
        return None
    given = [o for o, value in (("--view-port", args.view_port),
                                ("--view-address", args.view_address),
                                ("--view-hold", getattr(args, "view_hold", None)))
             if value is not None]
    if not args.view:
        if given:
            raise NetwallError(f"{given[0]} applies with --view only")
        return None
    return start(command, emulations, progress, args.view_address or "127.0.0.1",
                 args.view_port or 0)


def start(command: str, emulations: list, progress=None, address: str = "127.0.0.1",
          port: int = 0):
    """Open a live view (open_view, or the console's `view`) and say where it is."""
    from emulator.view.live import View, say  # aiohttp: only with --view

    view = View(command, address, port)
    for emu, per_rack in emulations:
        view.watch(emu, per_rack)
    if progress is not None:
        view.follow(progress)
    url = view.open()
    say(f"live view at {url} (from another machine: ssh -L {view.server.port}:127.0.0.1:"
        f"{view.server.port} HOST, then open http://127.0.0.1:{view.server.port}/)")
    return view


def rack_size(args, link: str) -> int | None:
    """GPUs per rack of the cluster a run, replay or console builds, where its layout says
    (cluster:DxG); racks:RxG's GPUs are grouped by their rack switch instead."""
    if args.topology.startswith("cluster:"):
        return clusters.parse_spec(args.topology, link, args.spine_link,
                                   args.layout).layout.gpus_per_rack
    return None


def landed(view, result) -> None:
    """A result row to the page, as it lands."""
    if view is not None:
        view.landed(result)


def hold(view, args) -> None:
    """The work is done: a final frame, then the page stays up until Enter, the end of
    standard input or Ctrl-C, or for --view-hold seconds; then the server stops."""
    if view is None:
        return
    from emulator.view.live import say

    view.finish()
    seconds = getattr(args, "view_hold", None)
    try:
        if seconds is not None:
            say(f"the live view stays open at {view.url} for {seconds:g} s (--view-hold)")
            time.sleep(seconds)
        else:
            say(f"the live view stays open at {view.url}: press Enter (or Ctrl-C) to close "
                "it")
            if sys.stdin is not None:
                sys.stdin.readline()  # at once where standard input is empty or closed
    except KeyboardInterrupt:
        pass
    finally:
        view.close()
