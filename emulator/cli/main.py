"""The `netwall` command: parse the arguments, run the command, turn errors into one line.

Exit codes: 0 success, 1 a data check failed, 2 bad input or an environment netwall cannot
use (always one line on stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings

from emulator.cli.commands import COMMANDS
from emulator.cli.parsing import build_parser
from emulator.errors import NetwallError
from emulator.kernel import records as state


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _unraisable(hook: sys.UnraisableHookArgs) -> None:
    """An interrupt that lands in a finalizer or weakref callback (during garbage
    collection) is swallowed there, and the command would run on as if no one had pressed
    Ctrl-C: signal it again a moment later, when the collection is over."""
    if hook.exc_type is not None and issubclass(hook.exc_type, KeyboardInterrupt):
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
    else:
        sys.__unraisablehook__(hook)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.words = tuple(argv)  # as typed: `netwall run` alone differs from its defaults typed
    sys.unraisablehook = _unraisable
    # SIGTERM and SIGHUP unwind like Ctrl-C, so `with Emulation` tears the network down.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        return COMMANDS[args.command](args)
    except NetwallError as e:
        print(f"netwall: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, always
        return 2
    except KeyboardInterrupt:
        # An interrupt inside pyroute2's asyncio loop leaves a coroutine that Python warns
        # about when it is collected: noise under the one line the user should read.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        # ... and asyncio logs the generator it could not close at exit, after that line.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        removed = "; the emulated network was removed" if state.built() else ""
        print(f"netwall: interrupted{removed}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
