"""Reach a Mininet host's network namespace from this process, without forking.

Mininet hosts live in anonymous namespaces held by their shell process. Entering one with
setns(2) on this thread, opening a netlink socket there, and coming back leaves a socket that
keeps talking to that namespace: one round trip of microseconds instead of the fork per
command that `tc`/`ip` (and Mininet's TCLink) cost.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
# pyroute2 sets its sockets up in a coroutine; Ctrl-C in the middle leaves it unawaited, and
# Python would say so at exit, below the controller's one line. Nothing is lost: the
# namespace, and the socket with it, is being removed.
warnings.filterwarnings("ignore", message="coroutine 'AsyncNetlinkSocket\\.",
                        category=RuntimeWarning)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def inside(pid: int | None) -> Iterator[None]:
    """Run the block in the network namespace of process `pid` (None: stay where we are)."""
    if pid is None:
        yield
        return
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def iproute(pid: int | None):
    """An IPRoute socket bound to the namespace of `pid` (None: this process's namespace)."""
    from pyroute2 import IPRoute

    with inside(pid):
        return IPRoute()


def enter(pid: int) -> None:
    """Move this process for good into the network namespace of process `pid` (a forked
    agent joining its host; single-threaded processes only, as setns(2) moves a thread)."""
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        _setns(target)
    finally:
        os.close(target)
