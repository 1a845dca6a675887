"""The built-in topology families, named by a short spec such as "star:8" or "racks:4x8".

A spec that names a file is handed to the YAML loader, so the CLI takes one --topology
argument for both. A built-in spec always means the built-in family, whatever files the
working directory holds: a file named `ring:4` is read as `./ring:4` (or any path with a
slash, or a name ending in .yaml), never in place of ring:4.
"""

from __future__ import annotations

import os
import re

from foundation.errors import NetwallError

from . import cluster
from .graph import DIRECT, MAX_GPUS, SCALE_OUT, SCALE_UP, Link, Topology
from .yamlfile import load_file

MAX_MESH = 64  # a full mesh needs N-1 interfaces per GPU and N(N-1)/2 veth pairs
USAGE = "use pair, ring:N, mesh:N, star:N, racks:RxG, cluster:DxG or a .yaml file"
_SIZED = {"ring": 3, "mesh": 2, "star": 2}  # kind -> fewest GPUs
_BUILTIN = re.compile(r"pair|(ring|mesh|star|racks|cluster):.*")


def is_builtin(spec: str) -> bool:
    """Whether `spec` is in a built-in family's form (right or wrong: `ring:x` is refused as
    a ring, not looked up as a file); a file of that name needs a path, ./ring:4."""
    return "/" not in spec and bool(_BUILTIN.fullmatch(spec))


def parse(
    spec: str,
    link: str,
    spine_link: str = "optical-800g",
    length_m: float | None = None,
    spine_length_m: float | None = None,
    layout: str | None = None,
) -> Topology:
    """Build a topology from a spec; `link` is the profile of GPU-facing links.

    length_m overrides the 1 m default of direct and scale-up links, spine_length_m the
    20 m default of switch-to-switch links. cluster:DxG (topologies.cluster) puts `link` on
    the scale-up fabric and `spine_link` on the NICs, and takes its lengths from `layout`.
    """
    spec = spec.strip()
    if spec.endswith((".yaml", ".yml")) or (os.path.isfile(spec) and not is_builtin(spec)):
        if length_m is not None or spine_length_m is not None:
            raise NetwallError(f"topology file {spec} sets its own lengths; drop length options")
        return load_file(spec, link)
    if spec.startswith("cluster:"):
        if length_m is not None or spine_length_m is not None:
            raise NetwallError(f"topology {spec}: a cluster's cable lengths come from its "
                               "rack layout (--layout); drop length options")
        return cluster.topology(cluster.parse_spec(spec, link, spine_link, layout), spec)
    near = 1.0 if length_m is None else length_m
    far = 20.0 if spine_length_m is None else spine_length_m
    kind, colon, size = spec.partition(":")
    if spec == "pair":
        return _direct(spec, [(0, 1)], 2, link, near)
    if kind == "racks" and colon:
        racks, per_rack = _racks_size(spec, size)
        return _racks(spec, racks, per_rack, link, spine_link, near, far)
    if kind not in _SIZED or not colon:
        raise NetwallError(f"unknown topology {spec!r} ({USAGE})")
    n = _count(spec, size, f"{kind}:N")
    low, high = _SIZED[kind], MAX_MESH if kind == "mesh" else MAX_GPUS
    if not low <= n <= high:
        raise NetwallError(f"topology {spec!r}: {kind} takes {low} to {high} GPUs")
    if kind == "ring":
        return _direct(spec, [(i, (i + 1) % n) for i in range(n)], n, link, near)
    if kind == "mesh":
        return _direct(spec, [(i, j) for i in range(n) for j in range(i + 1, n)], n, link, near)
    gpus = _names(n)
    links = tuple(Link(gpu, "nvs0", link, near, SCALE_UP) for gpu in gpus)
    return Topology(spec, gpus, ("nvs0",), links, nvls=("nvs0",))  # an NVSwitch domain


def _count(spec: str, text: str, form: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise NetwallError(f"topology {spec!r}: {text!r} is not a whole number (use {form})")
    return int(text)


def _racks_size(spec: str, size: str) -> tuple[int, int]:
    racks_text, x, per_rack_text = size.partition("x")
    if not x:
        raise NetwallError(f"topology {spec!r}: use racks:RxG, e.g. racks:4x8")
    racks = _count(spec, racks_text, "racks:RxG")
    per_rack = _count(spec, per_rack_text, "racks:RxG")
    if racks < 2 or per_rack < 1 or racks * per_rack > MAX_GPUS:
        raise NetwallError(
            f"topology {spec!r}: racks takes R >= 2 racks of G >= 1 GPUs, "
            f"at most {MAX_GPUS} GPUs in total"
        )
    return racks, per_rack


def _names(n: int) -> tuple[str, ...]:
    return tuple(f"gpu{i}" for i in range(n))


def _direct(name: str, pairs: list[tuple[int, int]], n: int, link: str, length: float) -> Topology:
    links = tuple(Link(f"gpu{i}", f"gpu{j}", link, length, DIRECT) for i, j in pairs)
    return Topology(name, _names(n), (), links)


def _racks(
    name: str, racks: int, per_rack: int, link: str, spine_link: str, near: float, far: float
) -> Topology:
    """GPUs rack-major; all GPU links come first so every GPU's one interface is eth0."""
    rack_names = tuple(f"rack{r}" for r in range(racks))
    gpus = _names(racks * per_rack)
    links = [
        Link(gpu, rack_names[i // per_rack], link, near, SCALE_UP) for i, gpu in enumerate(gpus)
    ]
    links += [Link(rack, "spine0", spine_link, far, SCALE_OUT) for rack in rack_names]
    return Topology(name, gpus, rack_names + ("spine0",), tuple(links))
