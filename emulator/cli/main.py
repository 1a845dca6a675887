"""The `netwall` command: parse the arguments, run the command, turn errors into one line.

Exit codes: 0 success, 1 a data check failed, 2 bad input or an environment netwall cannot
use (always one line on stderr, never a traceback), 3 a collective stalled, 130
interrupted, 141 the reader of the output went away (`netwall profiles | head -1`), as
a shell reports a tool SIGPIPE ended.

This is also the one place that handles the standard streams for every command: a closed
stdin, stdout or stderr (`>&-`), a full one (`> /dev/full`) and a closed pipe.
"""

from __future__ import annotations

import errno
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


#: Exit status after the output's reader went away: 128 + SIGPIPE, as a shell reports it.
EXIT_PIPE = 128 + signal.SIGPIPE
#: Errors writing a standard stream (a file netwall writes raises NetwallError instead).
_STREAM_ERRORS = {errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF}

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
    Ctrl-C: signal it again a moment later, when the collection is over. Once interrupted,
    what the interrupt abandoned fails as it is collected (pyroute2's coroutine, its event
    loop closed, at exit): noise after the one line, as the asyncio filter drops."""
    if hook.exc_type is not None and issubclass(hook.exc_type, KeyboardInterrupt):
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
    elif not _interrupted.is_set():
        sys.__unraisablehook__(hook)


def _reopen_closed_streams() -> None:
    """A standard stream closed by the caller (`>&-`) is reopened on /dev/null before
    netwall opens anything: otherwise the next file opened (a results database) would take
    its number, and print() or a child process would write into it. Standard output is
    reopened read-only, so writing to it fails (EBADF) and the command says so, as Unix tools
    do; standard error is reopened writable, and what goes there is lost."""
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_RDONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, flags)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own stream
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115


def _to_devnull(fd: int) -> None:
    """Point a broken stream at /dev/null, so what is still buffered for it (and the
    interpreter's flush at exit) goes nowhere instead of failing again."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def _say(line: str) -> None:
    """One line to stderr, if stderr can still take it."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        _to_devnull(2)


def _output_failed(error: OSError) -> int:
    """stdout or stderr cannot be written: quiet for a closed pipe (exit 141), else one
    line (exit 2). Whatever is still buffered for a broken stream is dropped."""
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        try:
            stream.flush()
        except OSError:
            _to_devnull(fd)
    if error.errno == errno.EPIPE:
        return EXIT_PIPE
    reason = "standard output is closed" if error.errno == errno.EBADF else \
        f"cannot write the output: {os.strerror(error.errno)}"
    _say(f"netwall: error: {reason}")
    return 2


def main(argv: list[str] | None = None) -> int:
    _reopen_closed_streams()
    try:
        try:
            code = _main(argv)
        except SystemExit:  # argparse's --help, --version or usage line
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # output still buffered fails here, where it is handled
        sys.stderr.flush()
        return code
    except OSError as e:
        if e.filename is not None or e.errno not in _STREAM_ERRORS:
            raise
        return _output_failed(e)


def _main(argv: list[str] | None) -> int:
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
        _say(f"netwall: error: {' '.join(str(e).split())}")  # one line, always
        return e.status
    except KeyboardInterrupt:
        # An interrupt inside pyroute2's asyncio loop leaves a coroutine that Python warns
        # about when it is collected: noise under the one line the user should read.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        removed = "; the emulated network was removed" if state.built() else ""
        _say(f"netwall: interrupted{removed}")
        return 130


if __name__ == "__main__":
    sys.exit(main())
