"""Writing files safely: explicit modes, no following of planted links, atomic replace.

netwall runs as root, often from a shared directory, so what it writes must not depend on
the umask (a umask of 000 would make records and reports world-writable) nor on what
someone else left in the output directory: a file is written to a new temporary name
(O_EXCL | O_NOFOLLOW, so nothing planted there is opened) and renamed over its target, which
replaces a planted symlink instead of writing through it. A reader sees the old file or the
new one, never half of one. docs/user-guide.md lists what netwall writes where.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from foundation.errors import NetwallError

DIR_MODE = 0o755
FILE_MODE = 0o644


def make_dir(path: str | Path, mode: int = DIR_MODE) -> Path:
    """`path` as a directory, creating it and its missing parents with `mode` (whatever the
    umask); an existing non-directory, or a place netwall cannot write, is one line."""
    path = Path(path)
    missing = []
    for entry in (path, *path.parents):
        if entry.is_dir():
            break
        missing.append(entry)
    try:
        for entry in reversed(missing):
            os.mkdir(entry, mode)
            os.chmod(entry, mode)  # mkdir applies the umask; the mode is what was asked
    except FileExistsError:
        raise NetwallError(f"cannot make directory {path}: {entry} exists and is not a "
                           "directory") from None
    except OSError as e:
        raise NetwallError(f"cannot make directory {path}: {e.strerror or e}") from None
    return path


def write_file(path: str | Path, data: str | bytes, mode: int = FILE_MODE) -> Path:
    """Write `data` to `path` atomically with `mode`, never through a link planted there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise NetwallError(f"cannot write {path}: it is a directory")
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode)
        try:
            os.fchmod(fd, mode)  # O_CREAT's mode is cut by the umask too
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise NetwallError(f"cannot write {path}: {e.strerror or e}") from None
    return path
