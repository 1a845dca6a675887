"""Topologies described in a YAML file, for shapes the built-in families do not cover.

The file is checked key by key so a typo names the file and the key instead of surfacing
later as a KeyError; graph-level checks (reach, loops, connectivity) are validate()'s job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foundation.errors import NetwallError
from foundation.inputs import load_yaml, number, read_text

from . import cluster
from .graph import MAX_GPUS, Link, Topology, tier_of

_TOP_KEYS = ("name", "gpus", "switches", "nvls", "default_link", "links")
#: The longest cable a file may give (10,000 km): far past any profile's reach, which
#: validate() checks; a YAML int of 10^400 is refused here, before any float() overflows.
MAX_LENGTH_M = 1e7
_DEFAULT_KEYS = ("profile", "length_m")
_LINK_KEYS = ("a", "b", "profile", "length_m")


class _Bad(Exception):
    """A problem inside the document; load_file prefixes the file name."""


def load_file(path: str | Path, link: str) -> Topology:
    """Load a topology file; `link` is the profile of links that name none."""
    path = Path(path)
    doc = _read(path)
    try:
        return _topology(doc, path.stem, link)
    except _Bad as e:
        raise NetwallError(f"topology file {path}: {e}") from None


def _read(path: Path) -> Any:
    where = f"topology file {path}"
    return load_yaml(read_text(path, "topology file"), where)


def _topology(doc: Any, stem: str, link: str) -> Topology:
    if not isinstance(doc, dict):
        raise _Bad(f"expected a mapping with keys gpus and links, got {_kind(doc)}")
    if "cluster" in doc:
        return _cluster(doc, stem, link)
    _check_keys(doc, _TOP_KEYS, "")
    for key in ("gpus", "links"):
        if key not in doc:
            raise _Bad(f"missing key {key!r}")
    name = _string(doc.get("name", stem), "name")
    gpus = _gpus(doc["gpus"])
    switches = tuple(_strings(doc.get("switches", []), "switches"))
    default = doc.get("default_link", {})
    if not isinstance(default, dict):
        raise _Bad(f"default_link must be a mapping, got {_kind(default)}")
    _check_keys(default, _DEFAULT_KEYS, "default_link: ")
    profile = _string(default.get("profile", link), "default_link.profile")
    length = _number(default.get("length_m", 1.0), "default_link.length_m")
    entries = doc["links"]
    if not isinstance(entries, list):
        raise _Bad(f"links must be a list, got {_kind(entries)}")
    links = tuple(
        _link(entry, f"links[{i}]", set(gpus), set(switches), profile, length)
        for i, entry in enumerate(entries)
    )
    nvls = tuple(_strings(doc.get("nvls", []), "nvls"))
    stray = [name for name in nvls if name not in switches]
    if stray:
        raise _Bad(f"nvls: {stray[0]!r} is not one of the switches")
    return Topology(name, gpus, switches, links, nvls=nvls)


def _cluster(doc: dict, stem: str, link: str) -> Topology:
    """The two-fabric form: `cluster:` holds topologies.cluster's keys; `link` is the
    scale-up profile when it names none."""
    _check_keys(doc, ("name", "cluster"), "")
    if not isinstance(doc["cluster"], dict):
        raise _Bad(f"cluster must be a mapping of {', '.join(cluster.KEYS)}, got "
                   f"{_kind(doc['cluster'])}")
    try:
        found = cluster.from_mapping(doc["cluster"], link=link)
    except NetwallError as e:
        raise _Bad(f"cluster: {e}") from None
    return cluster.topology(found, _string(doc.get("name", stem), "name"))


def _gpus(value: Any) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 2 <= value <= MAX_GPUS:
            raise _Bad(f"gpus must be 2 to {MAX_GPUS}, got {value}")
        return tuple(f"gpu{i}" for i in range(value))
    if not isinstance(value, list):
        raise _Bad(f"gpus must be a count or a list of names in rank order, got {_kind(value)}")
    return tuple(_strings(value, "gpus"))


def _link(
    entry: Any, where: str, gpus: set[str], switches: set[str], profile: str, length: float
) -> Link:
    if not isinstance(entry, dict):
        raise _Bad(f"{where} must be a mapping like {{a: gpu0, b: sw0}}, got {_kind(entry)}")
    _check_keys(entry, _LINK_KEYS, f"{where}: ")
    ends = []
    for key in ("a", "b"):
        if key not in entry:
            raise _Bad(f"{where}: missing key {key!r}")
        end = _string(entry[key], f"{where}.{key}")
        if end not in gpus and end not in switches:
            raise _Bad(f"{where}: unknown node {end!r} (not in gpus or switches)")
        ends.append(end)
    a, b = ends
    return Link(
        a,
        b,
        _string(entry.get("profile", profile), f"{where}.profile"),
        _number(entry.get("length_m", length), f"{where}.length_m"),
        tier_of(a in gpus, b in gpus),
    )


def _check_keys(mapping: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise _Bad(f"{where}unknown key {key!r} (known: {', '.join(allowed)})")


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        raise _Bad(f"{where} must be a list of names, got {_kind(value)}")
    return [_string(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad(f"{where} must be a non-empty string, got {_kind(value)}")
    return value


def _number(value: Any, where: str) -> float:
    """A cable length in metres: a finite number > 0 and <= MAX_LENGTH_M."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"{where} must be a number, got {_kind(value)}")
    try:
        return number(value, where, 0, MAX_LENGTH_M, above=True)
    except NetwallError as e:
        raise _Bad(str(e)) from None


def _kind(value: Any) -> str:
    """How a YAML value reads to its author: what it is, plus the value when it is short."""
    words = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    if value is None:
        return "nothing"
    shown = repr(value)
    word = words.get(type(value), "a value")
    return f"{word} {shown}" if len(shown) <= 30 else word
