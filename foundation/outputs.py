"""Writing files safely: explicit modes, no following of planted links, atomic replace.

netwall runs as root, often from a shared directory, so what it writes must not depend on
the umask (a umask of 000 would make records and reports world-writable) nor on what
someone else left in the output directory: a regular file is written to a new temporary
name (O_EXCL | O_NOFOLLOW, so nothing planted there is opened) and renamed over its
target. A reader sees the old file or the new one, never half of one.

Only a regular file (or nothing) is ever replaced. A character device or a FIFO the user
names (`-o /dev/null`, a named pipe) is written in place, since renaming over it would
delete it (`-o /dev/full` as root would remove the system's /dev/full); a symbolic link is
followed only to one of those (`-o /dev/stdout`); anything else (a link to a regular file,
a block device, a socket, a directory) is refused in one line. Names built from data (a
collective's or a campaign's name in a file name) go through `safe_name` and `inside`, so
no stored string can place a file outside the directory the user gave.
docs/user-guide.md lists what netwall writes where.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

from foundation.errors import NetwallError

DIR_MODE = 0o755
FILE_MODE = 0o644
#: Characters a file-name component built from data may keep; everything else becomes '_'.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME = 120  # characters of a component built from data (file systems allow 255 bytes)


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


def safe_name(text: str) -> str:
    """A file-name component made from any string (a name read from a store or a file):
    only letters, digits, '.', '_' and '-', never empty, never starting with '.' (so never
    '..' or a hidden file), at most MAX_NAME characters. A name that had to change gets a
    short hash of the original, so two different names never share a file."""
    name = _UNSAFE.sub("_", text)
    if name.startswith("."):
        name = "_" + name[1:]
    if name == text and name and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}-{digest}" if name else digest


def inside(root: str | Path, *names: str) -> Path:
    """`root`/`names`, each name made safe (safe_name); refuses, in one line, a result that
    resolves outside `root` (which the sanitising already prevents; this is the check)."""
    root = Path(root)
    path = root.joinpath(*(safe_name(n) for n in names))
    base, folder = root.resolve(), path.parent.resolve()
    # The folders are resolved, not the file: a link planted where the file goes is the safe
    # writer's to refuse, by name (write_file).
    if folder != base and base not in folder.parents:
        raise NetwallError(f"refusing to write {path}: it is outside {root}")
    return path


def write_file(path: str | Path, data: str | bytes, mode: int = FILE_MODE) -> Path:
    """Write `data` to `path`: atomically with `mode` where `path` is a regular file or
    missing, in place where it is a character device or a FIFO (or a link to one), never
    through a link to anything else."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    try:
        kind = os.lstat(path).st_mode
    except FileNotFoundError:
        kind = None
    except OSError as e:
        raise NetwallError(f"cannot write {path}: {e.strerror or e}") from None
    if kind is None or stat.S_ISREG(kind):
        return _replace(path, raw, mode)
    if stat.S_ISDIR(kind):
        raise NetwallError(f"cannot write {path}: it is a directory")
    if stat.S_ISLNK(kind):
        try:
            target = os.stat(path).st_mode
        except OSError:
            target = 0
        if not _streams(target):
            raise NetwallError(f"cannot write {path}: it is a symbolic link; name the file it "
                               "points to instead")
    elif not _streams(kind):
        raise NetwallError(f"cannot write {path}: it is not a regular file, a character "
                           "device or a FIFO")
    return _in_place(path, raw)


def _streams(mode: int) -> bool:
    """A file written as a stream, never replaced: a character device or a FIFO."""
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]


def _replace(path: Path, raw: bytes, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode)
        try:
            os.fchmod(fd, mode)  # O_CREAT's mode is cut by the umask too
            _write_all(fd, raw)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise NetwallError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _in_place(path: Path, raw: bytes) -> Path:
    """Write to a character device or FIFO as it is. Opened without blocking (a FIFO
    nobody reads is one line, not a hang) and checked again once open, so a file swapped
    in since the check is not written through."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        reason = "no process reads it" if e.errno == errno.ENXIO else e.strerror or e
        raise NetwallError(f"cannot write {path}: {reason}") from None
    try:
        if not _streams(os.fstat(fd).st_mode):
            raise NetwallError(f"cannot write {path}: it changed while being opened")
        os.set_blocking(fd, True)
        _write_all(fd, raw)
    except OSError as e:
        raise NetwallError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    return path
