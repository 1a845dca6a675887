"""GPU endpoint profiles: what a real GPU adds to a collective beyond its links.

A link profile says how fast bytes cross a cable; on real GPUs a collective call also pays
NCCL's costs at the endpoints: a kernel launch per call, a fixed latency per algorithm step
(a GPU thread block waiting on a flag in peer memory, not a wire), a protocol whose format
puts extra bytes on the wire (LL sends 8 bytes of flags with every 8 bytes of data), and
the reduction arithmetic. Those terms decide a 1 MiB all-reduce on NVLink; without them an
emulated GPU reaches line rate where a real one reaches a fraction of it.

Like link profiles, GPU profiles are data (emulator/models/gpus/*.yaml), one per file, each
number beside its source. `ideal` has no endpoint costs: the pure-network view. This module
is pure: it loads profiles and says what one call pays for a chosen protocol
(`CallCosts`); emulator.models.alphabeta picks the protocol as NCCL does, by the lowest
modelled time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from emulator.models.nccltuning import ARCHS, Tuning
from emulator.models.profiles import fail, read_yaml, sourced_number
from foundation.errors import NetwallError
from foundation.inputs import shown

BUILTIN_DIR = Path(__file__).resolve().parent / "gpus"
PATH_ENV = "NETWALL_GPU_PATH"
#: The endpoint `run`, `replay` and the API use unless told: a real GPU, not an ideal one.
DEFAULT = "h100"
#: NCCL's protocols, in the order NCCL lists them (src/include/device.h).
PROTOCOLS = ("LL", "LL128", "Simple")

_STRING_FIELDS = ("name", "description")
#: Upper bounds far past any real GPU (docs/profiles.md): a second of latency, a PB/s.
MAX_US = 1e6
MAX_GBYTES_PER_S = 1e6
_GPU_FIELDS: dict[str, tuple[type, Any, str]] = {
    "launch_us": (float, lambda v: 0 <= v <= MAX_US, f">= 0 and <= {MAX_US:g}"),
    # 0 means the reduction is free (the ideal endpoint); else GB/s of reduced data.
    "reduce_gbytes_per_s": (float, lambda v: 0 <= v <= MAX_GBYTES_PER_S,
                            f">= 0 (0: free) and <= {MAX_GBYTES_PER_S:g}"),
}
_PROTOCOL_FIELDS: dict[str, tuple[type, Any, str]] = {
    "base_us": (float, lambda v: 0 <= v <= MAX_US, f">= 0 and <= {MAX_US:g}"),
    "step_us": (float, lambda v: 0 <= v <= MAX_US, f">= 0 and <= {MAX_US:g}"),
    "efficiency": (float, lambda v: 0 < v <= 1, "in (0, 1]"),
}
#: NVLS's own terms (NCCL tunes NVLS apart from the protocols, src/graph/tuning.cc), and the
#: switch's reduction rate, GB/s of reduced data (0: free).
_NVLS_FIELDS: dict[str, tuple[type, Any, str]] = {
    **_PROTOCOL_FIELDS,
    "switch_reduce_gbytes_per_s": (float, lambda v: v >= 0, ">= 0 (0: free)"),
}
#: What NCCL's own tuning model knows of the GPU (emulator.models.nccltuning): only to pick
#: ring or NVLS as NCCL does; `arch` names NCCL's per-architecture constants.
_NCCL_FIELDS: dict[str, tuple[type, Any, str]] = {
    "nvlink_gbytes_per_s": (float, lambda v: 0 < v <= MAX_GBYTES_PER_S,
                            f"> 0 and <= {MAX_GBYTES_PER_S:g}"),
    "ring_channels": (int, lambda v: 1 <= v <= 64, "1 to 64"),
    "ring_channel_gbytes_per_s": (float, lambda v: 0 < v <= MAX_GBYTES_PER_S,
                                  f"> 0 and <= {MAX_GBYTES_PER_S:g}"),
}
#: The protocol NCCL runs NVLS with: Simple only (tuning.cc skips LL and LL128 for NVLS).
NVLS_PROTOCOL = "Simple"
#: What an NVLS `efficiency` holds constant as the rank count changes (`scales_as`): `link`,
#: the share of each GPU link's rate that carries data (the bus bandwidth then grows with
#: the rank count as 2(n-1)/(n+1)); `bus`, the bus bandwidth's share of the link's rate,
#: the same on every rank count (the link's data share falls as the ranks grow).
NVLS_SCALES = ("link", "bus")
#: A bus efficiency may pass 1: NVLS's bus bandwidth passes the link's rate (its ceiling is
#: 2(n-1)/(n+1) of it); 2 is past any rank count.
MAX_BUS_EFFICIENCY = 2.0


@dataclass(frozen=True)
class Protocol:
    """One NCCL protocol on this GPU, in real units."""

    name: str
    base_us: float  # fixed cost per call with this protocol (NCCL's baseLat)
    step_us: float  # latency each dependent step adds (NCCL's hwLat on this fabric)
    efficiency: float  # data bytes per byte on the wire: the bandwidth it achieves


@dataclass(frozen=True)
class Nvls:
    """NVLink SHARP on this GPU's scale-up switch, in real units: what a call through it
    costs (NCCL's NVLS latency and bandwidth terms) and how fast the switch reduces."""

    base_us: float  # once per call (NCCL's NVLS latency)
    step_us: float  # before each step's sends
    efficiency: float  # share of the link NVLS reaches, held as `scales_as` says
    switch_reduce_gbytes_per_s: float  # the switch's reduction rate (0: free)
    scales_as: str = "link"  # NVLS_SCALES

    def link_efficiency(self, ranks: int) -> float:
        """The share of each GPU link's rate that carries data on `ranks` GPUs: NVLS moves
        (n+1)/n of the buffer each way per link, so a bus share e needs e (n+1) / 2(n-1)
        of it (at most all of it)."""
        if self.scales_as == "link":
            return self.efficiency
        return min(1.0, self.efficiency * (ranks + 1) / (2 * (ranks - 1)))


@dataclass(frozen=True)
class GpuProfile:
    """One GPU as a collective's endpoint."""

    name: str
    description: str
    launch_us: float  # kernel launch, once per call
    reduce_gbytes_per_s: float  # reduction throughput, GB/s of data reduced (0: free)
    protocols: Mapping[str, Protocol]
    sources: Mapping[str, str] = field(hash=False, compare=False)
    path: str = field(default="", compare=False)
    nvls: Nvls | None = None  # None: no NVLS (a GPU or switch without NVLink SHARP)
    #: NCCL's own model of this GPU, to pick ring or NVLS as NCCL does (None: the ring)
    nccl: Tuning | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy with sources, recorded beside every result."""
        return {"name": self.name, "description": self.description,
                "launch_us": self.launch_us, "reduce_gbytes_per_s": self.reduce_gbytes_per_s,
                "protocols": {p.name: {"base_us": p.base_us, "step_us": p.step_us,
                                       "efficiency": p.efficiency}
                              for p in self.protocols.values()},
                "nvls": dataclasses.asdict(self.nvls) if self.nvls else None,
                "nccl": dataclasses.asdict(self.nccl) if self.nccl else None,
                "sources": dict(self.sources), "path": self.path}


@dataclass(frozen=True)
class CallCosts:
    """What one call pays at its endpoints with one protocol, real seconds: the agents pay
    it in dilated time, and the model adds the same terms."""

    protocol: str
    start_s: float  # kernel launch plus the protocol's base latency, once per call
    step_s: float  # before each step's sends
    efficiency: float  # data bytes per wire byte: the rest is the protocol's padding
    reduce_s_per_byte: float  # a step's reduction takes at least this per byte reduced

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "start_us": self.start_s * 1e6,
                "step_us": self.step_s * 1e6, "efficiency": self.efficiency}


#: No endpoint cost: the links alone (what netwall emulated before GPU profiles).
FREE = CallCosts("none", 0.0, 0.0, 1.0, 0.0)


def costs(gpu: GpuProfile, protocol: str) -> CallCosts:
    """What a call on `gpu` pays with `protocol`."""
    p = gpu.protocols[protocol]
    per_byte = 1e-9 / gpu.reduce_gbytes_per_s if gpu.reduce_gbytes_per_s else 0.0
    return CallCosts(p.name, (gpu.launch_us + p.base_us) * 1e-6, p.step_us * 1e-6,
                     p.efficiency, per_byte)


def nvls_costs(gpu: GpuProfile, ranks: int) -> CallCosts:
    """What an NVLS call of `ranks` GPUs on `gpu`'s domain pays: NVLS's latency and
    efficiency, with Simple's wire format; its reduction is the switch's (the GPUs reduce
    nothing in it)."""
    if gpu.nvls is None:
        raise NetwallError(f"GPU profile {gpu.name} has no NVLS terms (its switch does not "
                           "reduce); use another algorithm or a GPU with NVLink SHARP")
    n = gpu.nvls
    rate = n.switch_reduce_gbytes_per_s
    return CallCosts(NVLS_PROTOCOL, (gpu.launch_us + n.base_us) * 1e-6, n.step_us * 1e-6,
                     n.link_efficiency(ranks), 1e-9 / rate if rate else 0.0)


def load_gpu(path: str | Path) -> GpuProfile:
    """Load and validate one GPU profile; any problem is a one-line NetwallError."""
    path = Path(path)
    data = read_yaml(path, "GPU profile")
    if not isinstance(data, dict):
        raise fail(path, None, "GPU profile must be a YAML mapping of field: value")
    known = {*_STRING_FIELDS, *_GPU_FIELDS, "protocols"}
    unknown = sorted(str(k) for k in data if k not in known | {"nvls", "nccl"})
    if unknown:
        raise fail(path, unknown[0], "unknown field")
    for key in sorted(known):
        if key not in data:
            raise fail(path, key, "missing field")
    text = {}
    for key in _STRING_FIELDS:
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(path, key, "must be a non-empty string")
        text[key] = data[key].strip()
    sources: dict[str, str] = {}
    numbers = {}
    for key, spec in _GPU_FIELDS.items():
        numbers[key], sources[key] = sourced_number(path, key, data[key], spec)
    raw = data["protocols"]
    if not isinstance(raw, dict) or not raw:
        raise fail(path, "protocols", f"must map protocol names ({', '.join(PROTOCOLS)}) "
                   "to {base_us, step_us, efficiency}")
    protocols = {}
    for name in sorted(raw, key=lambda n: PROTOCOLS.index(n) if n in PROTOCOLS else 99):
        if name not in PROTOCOLS:
            raise fail(path, f"protocols.{name}",
                       f"unknown protocol (known: {', '.join(PROTOCOLS)})")
        entry = raw[name]
        if not isinstance(entry, dict) or set(entry) != set(_PROTOCOL_FIELDS):
            raise fail(path, f"protocols.{name}",
                       f"must have exactly {', '.join(_PROTOCOL_FIELDS)}")
        values = {}
        for key, spec in _PROTOCOL_FIELDS.items():
            values[key], sources[f"protocols.{name}.{key}"] = sourced_number(
                path, f"protocols.{name}.{key}", entry[key], spec)
        protocols[name] = Protocol(name, **values)
    nvls = None
    if "nvls" in data:
        nvls = _nvls(path, data["nvls"], sources)
    return GpuProfile(**text, **numbers, protocols=MappingProxyType(protocols),
                      sources=MappingProxyType(sources), path=str(path), nvls=nvls,
                      nccl=_tuning(path, data.get("nccl"), sources))


def _nvls(path: Path, entry: Any, sources: dict[str, str]) -> Nvls:
    """A profile's `nvls` section: the four sourced numbers, and `scales_as` (optional,
    `link` when absent) with its source; a bus efficiency may pass 1."""
    fields = set(_NVLS_FIELDS)
    if not isinstance(entry, dict) or not fields <= set(entry) <= fields | {"scales_as"}:
        raise fail(path, "nvls", f"must have exactly {', '.join(_NVLS_FIELDS)} (and "
                   "optionally scales_as)")
    scales = "link"
    if "scales_as" in entry:
        raw = entry["scales_as"]
        if (not isinstance(raw, dict) or set(raw) != {"value", "source"}
                or raw["value"] not in NVLS_SCALES or not isinstance(raw["source"], str)
                or not raw["source"].strip()):
            raise fail(path, "nvls.scales_as", f"must be {{value: link or bus, source: "
                       f'"<citation>"}}, got {shown(raw)}')
        scales, sources["nvls.scales_as"] = raw["value"], raw["source"].strip()
    specs = dict(_NVLS_FIELDS)
    if scales == "bus":
        specs["efficiency"] = (float, lambda v: 0 < v <= MAX_BUS_EFFICIENCY,
                               f"in (0, {MAX_BUS_EFFICIENCY:g}] (a bus share)")
    values = {}
    for key, spec in specs.items():
        values[key], sources[f"nvls.{key}"] = sourced_number(path, f"nvls.{key}", entry[key],
                                                             spec)
    return Nvls(**values, scales_as=scales)


def _tuning(path: Path, entry: Any, sources: dict[str, str]) -> Tuning | None:
    """A profile's `nccl` section: NCCL's architecture by name, then sourced numbers."""
    if entry is None:
        return None
    if not isinstance(entry, dict) or set(entry) != {"arch", *_NCCL_FIELDS}:
        raise fail(path, "nccl", f"must have exactly arch, {', '.join(_NCCL_FIELDS)}")
    if not isinstance(entry["arch"], str) or entry["arch"] not in ARCHS:
        raise fail(path, "nccl.arch", f"must be one of {', '.join(ARCHS)} (NCCL's "
                   f"architectures with NVLS), got {shown(entry['arch'])}")
    values = {}
    for key, spec in _NCCL_FIELDS.items():
        values[key], sources[f"nccl.{key}"] = sourced_number(path, f"nccl.{key}", entry[key],
                                                             spec)
    return Tuning(entry["arch"], **values)


def gpus() -> dict[str, GpuProfile]:
    """Every GPU profile by name: the built-ins, then the files of NETWALL_GPU_PATH."""
    files = sorted(BUILTIN_DIR.glob("*.yaml"))
    for entry in os.environ.get(PATH_ENV, "").split(os.pathsep):
        if entry.strip():
            where = Path(entry).expanduser()
            if not where.exists():
                raise NetwallError(f"GPU profile path does not exist: {where} (from ${PATH_ENV})")
            files += sorted(where.glob("*.yaml")) if where.is_dir() else [where]
    found: dict[str, GpuProfile] = {}
    for file in files:
        gpu = load_gpu(file)
        if gpu.name in found and Path(found[gpu.name].path).resolve() != file.resolve():
            raise NetwallError(f"GPU profile '{gpu.name}' is defined twice: "
                               f"{found[gpu.name].path} and {gpu.path}")
        found[gpu.name] = gpu
    return found


def get_gpu(name: str, known: Mapping[str, GpuProfile] | None = None) -> GpuProfile:
    """A GPU profile by name, listing the known names when it is not there."""
    known = gpus() if known is None else known
    try:
        return known[name]
    except KeyError:
        names = ", ".join(sorted(known)) or "none"
        raise NetwallError(f"unknown GPU profile {shown(name)} (known: {names})") from None
