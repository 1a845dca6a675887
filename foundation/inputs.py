"""Reading what users hand netwall: bounded, decoded and parsed before anything trusts it.

Every file netwall reads (profiles, topologies, campaigns, traces, NCCL logs) goes through
`read_text`, so binary junk, a huge file or a FIFO is one line rather than a traceback, a
hang or an exhausted machine. YAML goes through `compose_yaml` or `load_yaml`, which refuse
a key given twice (last-one-wins hides typos) and documents nested deeper, or expanding
(through aliases) larger, than any netwall file needs. docs/user-guide.md lists the bounds.
Sizes, durations and percentages are read by foundation.units.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from foundation.errors import NetwallError

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it
MAX_FILE_BYTES = 4 << 20  # a profile, topology or campaign file
MAX_LOG_BYTES = 256 << 20  # a JSONL trace or an NCCL log
MAX_DEPTH = 32  # nesting of YAML collections
MAX_NODES = 200_000  # YAML values, counted with every alias expanded
MAX_ITEMS = 10_000  # entries of one list (sizes of a sweep, seeds of a campaign, ...)
MAX_ITERS = 100_000  # timed (or warm-up) calls of one measurement
MAX_CABLES = 999  # cables side by side in one bundle (three digits in its name, 9xoptical-800g)


def read_text(path: str | Path, what: str, limit: int = MAX_FILE_BYTES,
              errors: str = "strict") -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, or one NetwallError line.
    `errors="replace"` reads a log that may hold a stray non-UTF-8 byte."""
    data = read_bytes(path, what, limit)
    try:
        text = data.decode("utf-8", errors)
    except UnicodeDecodeError as e:
        raise NetwallError(f"{what} {path} is not UTF-8 text (byte {e.start} is "
                           f"{data[e.start]:#04x}); is it a binary file?") from None
    if "\0" in text:
        raise NetwallError(f"{what} {path} contains NUL bytes; is it a binary file?")
    return text


def read_bytes(path: str | Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or one NetwallError line."""
    with open_regular(path, what, limit) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise NetwallError(f"cannot read {what} {path}: {_reason(e)}") from None
    if len(data) > limit:
        raise NetwallError(f"{what} {path} is larger than {limit >> 20} MiB")
    return data


def open_regular(path: str | Path, what: str, limit: int = MAX_FILE_BYTES) -> BinaryIO:
    """A regular file of at most `limit` bytes (by its size now) opened for reading in
    binary, for readers that stream it; anything else is one NetwallError line."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetwallError(f"{what} {path} not found") from None
    except (OSError, ValueError) as e:
        raise NetwallError(f"cannot read {what} {path}: {_reason(e)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NetwallError(f"{what} {path} is not a regular file")
        if info.st_size > limit:
            raise NetwallError(f"{what} {path} is larger than {limit >> 20} MiB")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or " ".join(str(error).split())


def compose_yaml(text: str, where: str) -> yaml.Node | None:
    """The YAML node tree of `text` (None if empty), checked for duplicate keys, depth and
    size, and constructible; every problem names `where` and its line."""
    return _parse(text, where)[0]


def load_yaml(text: str, where: str) -> Any:
    """The Python value of a YAML document, under the same checks as compose_yaml."""
    return _parse(text, where)[1]


def _parse(text: str, where: str) -> tuple[yaml.Node | None, Any]:
    try:
        _check_events(text, where)  # before composing: libyaml's composer recurses in C
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or e
        raise NetwallError(f"{where}{line}: YAML syntax error: {_one_line(problem)}") from None
    if node is None:
        return None, None
    _Shape(where).measure(node, 1)
    try:
        value = yaml.SafeLoader("").construct_document(node)
    # PyYAML's constructors raise whatever the value's own parser raises (a timestamp's
    # month out of range is a ValueError, a malformed one an AttributeError).
    except Exception as e:  # noqa: BLE001
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or e
        raise NetwallError(f"{where}{line}: bad YAML value: {_one_line(problem)}") from None
    return node, value


def _check_events(text: str, where: str) -> None:
    """Refuse collections nested deeper than MAX_DEPTH, and more than MAX_NODES values, from
    the parser's flat event stream: before any node is made (a node costs ~350 bytes, so a
    4 MiB file of one-letter values would take most of a GiB to compose)."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=_LOADER)):
        if count > MAX_NODES:
            raise NetwallError(f"{where} line {event.start_mark.line + 1}: more than "
                               f"{MAX_NODES} values")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise NetwallError(f"{where} line {event.start_mark.line + 1}: nested deeper "
                                   f"than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Shape:
    """Walks a node graph once (aliases share nodes), bounding depth and expanded size and
    refusing duplicate keys and aliases that contain themselves."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.sizes: dict[int, int] = {}  # id(node) -> values below it, aliases expanded
        self.open: set[int] = set()

    def fail(self, node: yaml.Node, message: str) -> NetwallError:
        return NetwallError(f"{self.where} line {node.start_mark.line + 1}: {message}")

    def measure(self, node: yaml.Node, depth: int) -> int:
        if id(node) in self.sizes:
            return self.sizes[id(node)]
        if id(node) in self.open:
            raise self.fail(node, "an alias refers to the value that contains it")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        self.open.add(id(node))
        size = 1
        if isinstance(node, yaml.MappingNode):
            self._unique_keys(node)
            children = [n for pair in node.value for n in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        for child in children:
            size += self.measure(child, depth + 1)
            if size > MAX_NODES:
                raise self.fail(node, f"more than {MAX_NODES} values (aliases expanded)")
        self.open.discard(id(node))
        self.sizes[id(node)] = size
        return size

    def _unique_keys(self, node: yaml.MappingNode) -> None:
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            if (key.tag, key.value) in seen:
                raise self.fail(key, f"key '{_one_line(key.value)[:40]}': given twice")
            seen.add((key.tag, key.value))


def is_whole(value: object, low: float = float("-inf"), high: float = float("inf")) -> bool:
    """Is `value` a whole number from `low` to `high` (without bounds: any whole number)?
    bool is an int to Python, never a count to a user (YAML reads `yes` as True)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def shown(value: object, width: int = 60) -> str:
    """A value as a one-line error shows it: its repr (escapes keep it one line), cut short."""
    return cut(repr(value), width)


def cut(text: str, width: int = 60) -> str:
    """One-line text cut to `width` characters, marked with '...' when cut."""
    return text if len(text) <= width else text[:width - 3] + "..."



def number(value: object, what: str, low: float, high: float, *, whole: bool = False,
           above: bool = False) -> float:
    """A number read from a file, checked where it is read: a number (not text, not a
    boolean), finite, from `low` (exclusive with `above`) to `high`; a whole one with
    `whole`. Returns it as a float (an int with `whole`), or raises one NetwallError line
    naming `what`. A YAML int may be 10^400: compared as an int, never made a float first
    (float() would overflow)."""
    if whole and not is_whole(value):
        raise NetwallError(f"{what} must be a whole number, got {_kind_of(value)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NetwallError(f"{what} must be a number, got {_kind_of(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise NetwallError(f"{what} must be a finite number, got {value!r}")
    if (value <= low if above else value < low) or value > high:
        bound = f"> {low:g} and <= {high:g}" if above else f"from {low:g} to {high:g}"
        raise NetwallError(f"{what} must be {bound}, got {shown(value)}")
    return value if whole else float(value)


def _kind_of(value: object) -> str:
    kind = {str: "text", list: "a list", dict: "a mapping", bool: "a boolean",
            type(None): "nothing"}.get(type(value), type(value).__name__)
    return f"{kind} {shown(value, 40)}" if isinstance(value, str | bool) else kind
