"""Design files: several two-fabric cluster designs and the workloads to compare them on.

A design is a topologies.cluster.Cluster (scale-up technology, domain size, racks,
scale-out) with a name; a workload is a collective at some sizes, or a built-in training
workload (traffic.workloads). `netwall compare` runs every workload on every design and
puts the results side by side (emulator.experiments.compare). docs/compare.md describes
every key. Everything is checked here, from the file alone, before any network is built: a
mistake is one line naming the file, the entry and the key. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.models.endpoints import DEFAULT as DEFAULT_GPU
from emulator.models.endpoints import gpus
from emulator.models.reliability import MAX_FLEET_GPUS
from foundation.errors import NetwallError
from foundation.inputs import MAX_ITEMS, MAX_ITERS, is_whole, load_yaml, number, read_text, shown
from foundation.units import parse_size
from topologies import cluster as clusters
from topologies.cluster import Cluster
from traffic.schedule import ALGORITHMS
from traffic.workloads import MAX_SCALE, WORKLOADS
from traffic.workloads import workload as build_workload

TOP_KEYS = ("name", "description", "fleet_gpus", "gpu", "iters", "warmup", "probe",
            "workloads", "designs") + clusters.KEYS
#: A file of several comparisons (`sections`, each of its own cluster size): its top keys are
#: defaults for every section, which has the keys of a one-comparison file.
SECTIONED_KEYS = tuple(k for k in TOP_KEYS if k not in ("workloads", "designs")) + ("sections",)
MAX_SECTIONS = 10
WORKLOAD_KEYS = ("name", "collective", "algorithm", "sizes", "workload", "scale", "steps",
                 "params")
DESIGN_KEYS = ("name",) + clusters.KEYS
MAX_DESIGNS = 100
#: Calls of every built-in workload of a file together (each is built once to check it):
#: bounds the check to seconds before it starts, whatever the number of workloads.
MAX_CHECKED_CALLS = 1_000_000

#: What `netwall run` compares when given no options: one minute on a 2-core machine.
DEFAULT = """\
name: default
description: >-
  8 GPUs in racks of 4, a tensor-parallel all-reduce over all 8. Copper (NVLink 5) keeps a
  scale-up domain in one rack, so the group spills onto the 800G NICs; 9 optical or
  wide-and-slow 800G cables per GPU (NVLink 5's 7200 Gb/s) let one domain span both racks.
fleet_gpus: 100000
layout: gpus=4
scale_out: optical-800g
iters: 3
workloads:
  - {name: tp-allreduce, collective: allreduce, sizes: [8M]}
designs:
  - {name: copper-1-rack, scale_up: nvlink5, domains: 2, domain_gpus: 4}
  - {name: copper-2-racks, scale_up: nvlink5, domains: 1, domain_gpus: 8}
  - {name: optical-2-racks, scale_up: {profile: optical-800g, cables: 9}, domains: 1,
     domain_gpus: 8}
  - {name: w-and-s-2-racks, scale_up: {profile: wide-and-slow-800g, cables: 9}, domains: 1,
     domain_gpus: 8}
"""


@dataclass(frozen=True)
class Workload:
    """A collective at `sizes` over every GPU, or a built-in workload (`workload`, with its
    `scale`, `steps` and `params`)."""

    name: str
    collective: str | None = None
    algorithm: str | None = None
    sizes: tuple[int, ...] = ()
    workload: str | None = None
    scale: float = 0.01
    steps: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Design:
    """One cluster design of a comparison."""

    name: str
    cluster: Cluster


@dataclass(frozen=True)
class DesignFile:
    name: str
    description: str
    fleet_gpus: int
    gpu: str
    iters: int
    warmup: int
    probe: bool
    workloads: tuple[Workload, ...]
    designs: tuple[Design, ...]


def load(path: str | Path) -> tuple[DesignFile, ...]:
    """Read and check a design file: its comparisons (one, or one per section); one
    NetwallError line naming the file if it is bad."""
    return comparisons(read_text(path, "design file"), str(path))


def parse(text: str, where: str) -> DesignFile:
    """Check the text of a file of one comparison (`where` names it in errors)."""
    found = comparisons(text, where)
    if len(found) > 1:
        raise NetwallError(f"design file {where}: has {len(found)} sections; one expected")
    return found[0]


def comparisons(text: str, where: str) -> tuple[DesignFile, ...]:
    """Check a design file's text: one comparison, or one per entry of `sections`, each
    with its own designs (of one cluster size), workloads and settings, the top keys
    defaults for all. The comparisons run in order and each has its own verdict."""
    doc = load_yaml(text, f"design file {where}")
    try:
        if isinstance(doc, dict) and "sections" in doc:
            return _sections(doc, Path(where).stem)
        return (_file(doc, Path(where).stem),)
    except NetwallError as e:
        raise NetwallError(f"design file {where}: {e}") from None


def _sections(doc: dict, stem: str) -> tuple[DesignFile, ...]:
    """A sectioned file: each section a comparison named '<file>-<section>'."""
    _keys(doc, SECTIONED_KEYS, "")
    entries = doc["sections"]
    if not isinstance(entries, list) or not entries or len(entries) > MAX_SECTIONS:
        raise NetwallError(f"key 'sections': expected a list of 1 to {MAX_SECTIONS} "
                           "comparisons, each with name, workloads and designs")
    top = _name(doc.get("name", stem), "name")
    shared = {k: v for k, v in doc.items() if k not in ("name", "description", "sections")}
    found, names = [], []
    for i, entry in enumerate(entries):
        where = f"sections[{i}]"
        if not isinstance(entry, dict):
            raise NetwallError(f"{where}: expected a mapping with name, workloads and designs")
        _keys(entry, TOP_KEYS, f"{where}: ")
        name = _name(entry.get("name"), f"{where}.name")
        names.append(name)
        _unique(names, "sections")
        try:
            found.append(_file({**shared, **entry, "name": f"{top}-{name}"}, stem))
        except NetwallError as e:
            raise NetwallError(f"{where} ({name}): {e}") from None
    return tuple(found)


def from_flags(designs: list[str], collective: str, sizes: list[str], layout: str | None,
               scale_out: str | None, iters: int) -> DesignFile:
    """A design file made of command-line flags: each design NAME=SCALE_UP:DxG (e.g.
    copper=nvlink5:2x4, optical=9xoptical-800g:1x8), one collective at `sizes`; mistakes
    are named as the flags that made them."""
    doc: dict[str, Any] = {"name": "flags", "iters": iters, "designs": [],
                           "workloads": [{"name": collective, "collective": collective,
                                          "sizes": sizes}]}
    for key, value in (("layout", layout), ("scale_out", scale_out)):
        if value is not None:
            doc[key] = value
    for text in designs:
        name, eq, rest = text.partition("=")
        profile, colon, shape = rest.rpartition(":")
        domains, x, gpus = shape.partition("x")
        if not (eq and colon and x and domains.isdigit() and gpus.isdigit()):
            raise NetwallError(f"--design {shown(text)}: use NAME=SCALE_UP:DxG, e.g. "
                               "copper=nvlink5:2x4 (D domains of G GPUs)")
        doc["designs"].append({"name": name, "scale_up": profile, "domains": int(domains),
                               "domain_gpus": int(gpus)})
    try:
        return _file(doc, "flags")
    except NetwallError as e:
        raise NetwallError(f"--design and its options: {e}") from None


def _file(doc: Any, stem: str) -> DesignFile:
    if not isinstance(doc, dict):
        raise NetwallError("expected a mapping with keys workloads and designs")
    _keys(doc, TOP_KEYS, "")
    for key in ("workloads", "designs"):
        if not isinstance(doc.get(key), list) or not doc[key]:
            raise NetwallError(f"key {key!r}: expected a non-empty list")
    if len(doc["designs"]) > MAX_DESIGNS or len(doc["workloads"]) > MAX_ITEMS:
        raise NetwallError(f"at most {MAX_DESIGNS} designs and {MAX_ITEMS} workloads")
    gpu = doc.get("gpu", DEFAULT_GPU)
    if not isinstance(gpu, str) or gpu not in gpus():
        raise NetwallError(f"key 'gpu': unknown GPU {shown(gpu)} (known: {', '.join(gpus())})")
    defaults = {key: doc[key] for key in clusters.KEYS if key in doc}
    designs = tuple(_design(entry, f"designs[{i}]", defaults)
                    for i, entry in enumerate(doc["designs"]))
    _unique([d.name for d in designs], "designs")
    sizes = {d.cluster.domains * d.cluster.domain_gpus for d in designs}
    if len(sizes) > 1:
        raise NetwallError(f"designs have {' and '.join(map(str, sorted(sizes)))} GPUs: "
                           "compare designs of one cluster size (domains x domain_gpus), or "
                           "give each size its own section (sections:)")
    ranks = designs[0].cluster.domains * designs[0].cluster.domain_gpus
    budget = [MAX_CHECKED_CALLS]
    workloads = tuple(_workload(entry, f"workloads[{i}]", ranks, budget)
                      for i, entry in enumerate(doc["workloads"]))
    _unique([w.name for w in workloads], "workloads")
    probe = doc.get("probe", True)
    if not isinstance(probe, bool):
        raise NetwallError(f"key 'probe': expected true or false, got {shown(probe)}")
    return DesignFile(
        name=_name(doc.get("name", stem), "name"),
        description=_text(doc.get("description", ""), "description"),
        fleet_gpus=_whole(doc.get("fleet_gpus", 100_000), "fleet_gpus", 1, MAX_FLEET_GPUS),
        gpu=gpu, iters=_whole(doc.get("iters", 5), "iters", 1, MAX_ITERS),
        warmup=_whole(doc.get("warmup", 1), "warmup", 0, MAX_ITERS), probe=probe,
        workloads=workloads, designs=designs)


def _design(entry: Any, where: str, defaults: Mapping[str, Any]) -> Design:
    if not isinstance(entry, dict):
        raise NetwallError(f"{where}: expected a mapping of {', '.join(DESIGN_KEYS)}")
    _keys(entry, DESIGN_KEYS, f"{where}: ")
    name = _name(entry.get("name"), f"{where}.name")
    try:
        found = clusters.from_mapping({**defaults, **{k: v for k, v in entry.items()
                                                      if k != "name"}})
    except NetwallError as e:
        raise NetwallError(f"{where} ({name}): {e}") from None
    return Design(name, found)


def _workload(entry: Any, where: str, ranks: int, budget: list[int]) -> Workload:
    """A workload entry; a built-in one is tried on `ranks` ranks (its parameters checked),
    its calls taken from the file's `budget`."""
    if not isinstance(entry, dict):
        raise NetwallError(f"{where}: expected a mapping with collective and sizes, or "
                           "workload")
    _keys(entry, WORKLOAD_KEYS, f"{where}: ")
    name = _name(entry.get("name"), f"{where}.name")
    where = f"{where} ({name})"
    if ("collective" in entry) == ("workload" in entry):
        raise NetwallError(f"{where}: give either collective (with sizes) or workload")
    if "workload" in entry:
        extra = [k for k in ("collective", "algorithm", "sizes") if k in entry]
        if extra:
            raise NetwallError(f"{where}: key {extra[0]!r} belongs to a collective, not a "
                               "workload")
        kind = entry["workload"]
        if not isinstance(kind, str) or kind not in WORKLOADS:
            raise NetwallError(f"{where}: unknown workload {shown(kind)} (known: "
                               f"{', '.join(WORKLOADS)})")
        params = entry.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise NetwallError(f"{where}: key 'params': expected a mapping of parameter names "
                               f"to values, got {shown(params)}")
        try:
            scale = number(entry.get("scale", 0.01), "key 'scale'", 0, MAX_SCALE, above=True)
        except NetwallError as e:
            raise NetwallError(f"{where}: {e}") from None
        found = Workload(name, workload=kind, scale=scale,
                         steps=_whole(entry.get("steps", 1), "steps", 1, MAX_ITEMS,
                                      f"{where}: "), params=params)
        try:
            budget[0] -= len(build_workload(kind, ranks, scale=found.scale, steps=found.steps,
                                            **params))
        except NetwallError as e:
            raise NetwallError(f"{where}: {e}") from None
        if budget[0] < 0:
            raise NetwallError(f"{where}: the workloads make more than {MAX_CHECKED_CALLS} "
                               "calls together: split the file")
        return found
    extra = [k for k in ("scale", "steps", "params") if k in entry]
    if extra:
        raise NetwallError(f"{where}: key {extra[0]!r} belongs to a workload, not a collective")
    collective, algorithm = entry["collective"], entry.get("algorithm")
    if not isinstance(collective, str) or collective not in ALGORITHMS:
        raise NetwallError(f"{where}: unknown collective {shown(collective)} (known: "
                           f"{', '.join(ALGORITHMS)})")
    if algorithm is not None and (not isinstance(algorithm, str) or
                                  algorithm not in ALGORITHMS[collective]):
        raise NetwallError(f"{where}: {collective} has no algorithm {shown(algorithm)} "
                           f"(known: {', '.join(ALGORITHMS[collective])})")
    sizes = entry.get("sizes")
    if not isinstance(sizes, list) or not sizes or len(sizes) > MAX_ITEMS:
        raise NetwallError(f"{where}: key 'sizes': expected a list of sizes such as [4M, 16M]")
    try:
        parsed = tuple(parse_size(str(size)) for size in sizes)
    except NetwallError as e:
        raise NetwallError(f"{where}: key 'sizes': {e}") from None
    return Workload(name, collective=collective, algorithm=algorithm, sizes=parsed)


def _keys(mapping: dict, known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            raise NetwallError(f"{where}unknown key {shown(key)} (known: {', '.join(known)})")


def _unique(names: list[str], what: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise NetwallError(f"{what}: the name {shown(name)} is used twice")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 40 or not value.isprintable():
        raise NetwallError(f"key {where!r}: expected a name of 1 to 40 characters, got "
                           f"{shown(value)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise NetwallError(f"key {where!r}: expected text, got {shown(value)}")
    return value


def _whole(value: Any, key: str, low: int, high: int, where: str = "") -> int:
    if not is_whole(value, low, high):
        raise NetwallError(f"{where}key {key!r}: expected a whole number {low}..{high}, got "
                           f"{shown(value)}")
    return value
