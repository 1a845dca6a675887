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

#: The signals that interrupt a command.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Threads that libraries start while netwall's modules load (OpenBLAS starts one per core as
# numpy loads) inherit this mask, so the kernel hands every interrupt to the main thread: one
# delivered to such a thread could be lost to Python (SIGTERM and SIGINT at once left
# netwall computing in 8 of 15 tries). The main thread takes the mask off below.
signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
from emulator.cli.commands import COMMANDS  # noqa: E402
from emulator.cli.parsing import build_parser  # noqa: E402
from emulator.kernel import records as state  # noqa: E402
from foundation.errors import NetwallError  # noqa: E402

#: Interrupts that came while the modules loaded (seconds on a busy host): main() answers
#: them in one line, exit 130; taken off here, not raised into the import as a traceback.
_EARLY = signal.sigpending() & set(INTERRUPTS)
_kept = {signum: signal.signal(signum, signal.SIG_IGN) for signum in _EARLY}
signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)
for _signum, _handler in _kept.items():
    signal.signal(_signum, _handler)


class _Flag:
    """threading.Event without its lock: a handler interrupted by the next signal (two
    Ctrl-C at once) would wait for ever on the lock the first one holds in Event.set."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def clear(self) -> None:
        self.value = False

    def is_set(self) -> bool:
        return self.value


#: Set once SIGINT, SIGTERM or SIGHUP arrived: from then on the command only unwinds.
_interrupted = _Flag()


def _interrupt(signum, _frame):
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        # Already unwinding from one (SIGTERM and SIGINT at once, a second Ctrl-C): a
        # second raise would escape main's handler as a traceback, or skip teardown.
        return
    _interrupted.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)


class _QuietAfterInterrupt(logging.Filter):
    """An interrupt inside pyroute2's asyncio loop abandons a generator that asyncio logs,
    with a traceback, when the teardown's next netlink call or the exit closes it: noise
    around the one line the user should read."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _interrupted.is_set()


_QUIET_AFTER_INTERRUPT = _QuietAfterInterrupt()  # one object: adding it again is a no-op


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
    for signum in INTERRUPTS:
        signal.signal(signum, _interrupt)
    _interrupted.clear()
    logging.getLogger("asyncio").addFilter(_QUIET_AFTER_INTERRUPT)
    try:
        if _EARLY:
            raise KeyboardInterrupt
        return COMMANDS[args.command](args)
    except NetwallError as e:
        print(f"netwall: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, always
        return 2
    except KeyboardInterrupt:
        # An interrupt inside pyroute2's asyncio loop leaves a coroutine that Python warns
        # about when it is collected: noise under the one line the user should read.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        removed = "; the emulated network was removed" if state.built() else ""
        print(f"netwall: interrupted{removed}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
