"""Link-profile catalogue: what a copper, optical or wide-and-slow link is, as sourced data.

Every experiment compares link technologies, so the numbers that describe them live in data
files (emulator/models/profiles/*.yaml), one profile per file, each number beside its citation.
Keeping them out of code lets a user add or override a technology without touching netwall,
and keeping the source next to the value lets a reader check every figure a report rests on.
This module is pure (no root, no network): it loads and validates profiles
(emulator/cli/listings.py tabulates them).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from foundation.errors import NetwallError
from foundation.inputs import MAX_CABLES, is_whole, load_yaml, read_text, shown

FAMILIES = ("copper", "optical", "wide-and-slow")
# Narrow-and-fast families lose the whole link with one lane; only wide-and-slow has spares.
NARROW_AND_FAST = ("copper", "optical")
#: The link a run uses when none is named, and the one calibration measures on.
DEFAULT_LINK = "copper-800g"
#: One 800G profile of each family: what `netwall run` compares when no link is named.
FAMILY_DEFAULTS = (DEFAULT_LINK, "optical-800g", "wide-and-slow-800g")
HOURS_PER_YEAR = 8766.0  # 365.25 days: the convention behind FIT <-> AFR conversions
LANE_RATE_TOLERANCE = 0.02  # lanes * lane rate may differ from the rate by line-coding slack

BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"
USER_DIR = Path("~/.config/netwall/profiles")
PATH_ENV = "NETWALL_PROFILE_PATH"

_STRING_FIELDS = ("name", "family", "description")
#: Upper bounds far past any real link (docs/profiles.md): a number from a file is checked
#: for type, finiteness and range where it is read, so 10^400 is one line, not an overflow.
MAX_RATE_GBPS = 1e6  # 1 Pb/s on one link
MAX_LANES = 100_000
MAX_REACH_M = 1e7  # 10,000 km
MAX_NS = 1e9  # one second, of FEC delay or of delay per metre
MAX_POWER = 1e6  # watts per end, pJ per bit, failures per link-year
MAX_QUEUE_BYTES = 1 << 32
# numeric field -> (python type, check, what the check means for the error message)
_NUMERIC_FIELDS: dict[str, tuple[type, Any, str]] = {
    "rate_gbps": (float, lambda v: 0 < v <= MAX_RATE_GBPS, f"> 0 and <= {MAX_RATE_GBPS:g}"),
    "lanes": (int, lambda v: 0 < v <= MAX_LANES, f"in 1..{MAX_LANES}"),
    "lane_rate_gbps": (float, lambda v: 0 < v <= MAX_RATE_GBPS,
                       f"> 0 and <= {MAX_RATE_GBPS:g}"),
    "spare_lanes": (int, lambda v: 0 <= v <= MAX_LANES, f"in 0..{MAX_LANES}"),
    "reach_m": (float, lambda v: 0 < v <= MAX_REACH_M, f"> 0 and <= {MAX_REACH_M:g}"),
    "delay_ns_per_m": (float, lambda v: 0 < v <= MAX_NS, f"> 0 and <= {MAX_NS:g}"),
    "fec_delay_ns": (float, lambda v: 0 <= v <= MAX_NS, f">= 0 and <= {MAX_NS:g}"),
    "pre_fec_ber": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "post_fec_ber": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "watts_per_end": (float, lambda v: 0 <= v <= MAX_POWER, f">= 0 and <= {MAX_POWER:g}"),
    "pj_per_bit": (float, lambda v: 0 <= v <= MAX_POWER, f">= 0 and <= {MAX_POWER:g}"),
    "afr": (float, lambda v: 0 <= v <= MAX_POWER, f">= 0 and <= {MAX_POWER:g}"),
    "queue_bytes": (int, lambda v: 0 < v <= MAX_QUEUE_BYTES, f"in 1..{MAX_QUEUE_BYTES}"),
    "mtu_bytes": (int, lambda v: 68 <= v <= 65535, "in 68..65535"),
}


@dataclass(frozen=True)
class LinkProfile:
    """One link technology, in real (undilated) units; time dilation is applied elsewhere."""

    name: str
    family: str
    description: str
    rate_gbps: float  # aggregate data rate, one direction
    lanes: int  # lanes (narrow-and-fast) or channels (wide-and-slow) carrying data
    lane_rate_gbps: float
    spare_lanes: int  # extra channels that absorb failures (0 for copper/optical)
    reach_m: float
    delay_ns_per_m: float  # propagation
    fec_delay_ns: float  # fixed FEC/DSP/SerDes latency per traversal, one direction
    pre_fec_ber: float
    post_fec_ber: float
    watts_per_end: float  # power per link end (module/port)
    pj_per_bit: float  # energy per bit carried over the link, both ends counted
    afr: float  # annualised failure rate per link, fraction per year
    queue_bytes: int  # per-port queue to emulate at the switch/NIC egress
    mtu_bytes: int  # the real link's MTU; informational
    sources: Mapping[str, str] = field(hash=False, compare=False)
    path: str = field(default="", compare=False)

    def delay_ns(self, length_m: float) -> float:
        """One-way latency of a link of this length: fixed FEC/DSP cost plus propagation."""
        if length_m < 0:
            raise NetwallError(f"link length must be >= 0 m, got {length_m} ({self.name})")
        return self.fec_delay_ns + self.delay_ns_per_m * length_m

    def frame_loss(self, frame_bytes: int) -> float:
        """Probability a frame has at least one residual error after FEC (so it is dropped).

        Computed as -expm1(n * log1p(-p)) because with p ~ 1e-13 the naive
        1 - (1 - p) ** n rounds to 0 or to garbage in double precision.
        """
        if frame_bytes < 0:
            raise NetwallError(f"frame size must be >= 0 bytes, got {frame_bytes}")
        bits = 8 * frame_bytes
        return -math.expm1(bits * math.log1p(-self.post_fec_ber))

    @property
    def fit(self) -> float:
        """Failures per 1e9 device-hours, the unit vendors quote, from the annual rate."""
        return self.afr * 1e9 / HOURS_PER_YEAR

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy, sources included, so results can record exactly what was emulated."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if f.name == "sources" else value
        return out


def fail(path: Path | str, key: str | None, message: str) -> NetwallError:
    """Build the one-line error every validation failure uses: file, key, what is wrong."""
    where = f"{path}: '{key}'" if key else f"{path}"
    return NetwallError(" ".join(f"{where}: {message}".split()))


def read_yaml(path: Path, what: str = "profile") -> Any:
    return load_yaml(read_text(path, what), str(path))


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def sourced_number(path: Path, key: str, raw: Any,
                   spec: tuple[type, Any, str]) -> tuple[float | int, str]:
    """Check one `{value: N, source: "..."}` entry against spec (type, check, what the check
    means) and return (value, source). GPU profiles (emulator.models.endpoints) share it."""
    kind, check, meaning = spec
    if not isinstance(raw, dict):
        raise fail(path, key, 'must be a mapping {value: <number>, source: "<citation>"}')
    extra = sorted(set(raw) - {"value", "source"})
    if extra:
        raise fail(path, key, f"unexpected sub-key(s) {', '.join(map(str, extra))}")
    if "value" not in raw:
        raise fail(path, key, "missing 'value'")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise fail(path, key, 'number without a source (add source: "<citation>")')
    value = raw["value"]
    # bool is an int subclass in Python; `lanes: {value: yes}` is a typo, not 1 lane.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str) and _looks_numeric(value):
            hint = " (YAML 1.1 reads exponents without a dot as text: write 1.0e-5, not 1e-5)"
        raise fail(path, key, f"value must be a number, got {type(value).__name__}{hint}")
    if kind is int and isinstance(value, float):
        raise fail(path, key, f"value must be an integer, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(path, key, f"value must be finite, got {value!r}")
    # Checked before any float(): a YAML int of 10^400 compares exactly, but would overflow.
    if not check(value):
        raise fail(path, key, f"value must be {meaning}, got {shown(value)}")
    return (value if kind is int else float(value)), source.strip()


def load_profile(path: str | Path) -> LinkProfile:
    """Load and validate one profile file; any problem is a one-line NetwallError."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise fail(path, None, "profile must be a YAML mapping of field: value")
    known = set(_STRING_FIELDS) | set(_NUMERIC_FIELDS)
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise fail(path, unknown[0], "unknown field")
    for key in (*_STRING_FIELDS, *_NUMERIC_FIELDS):
        if key not in data:
            raise fail(path, key, "missing field")

    values: dict[str, Any] = {}
    for key in _STRING_FIELDS:
        raw = data[key]
        if not isinstance(raw, str) or not raw.strip():
            raise fail(path, key, "must be a non-empty string")
        values[key] = raw.strip()
    if values["family"] not in FAMILIES:
        raise fail(
            path, "family", f"unknown family {values['family']!r} (known: {', '.join(FAMILIES)})"
        )

    sources: dict[str, str] = {}
    for key in _NUMERIC_FIELDS:
        values[key], sources[key] = sourced_number(path, key, data[key], _NUMERIC_FIELDS[key])

    carried = values["lanes"] * values["lane_rate_gbps"]
    if abs(carried - values["rate_gbps"]) > LANE_RATE_TOLERANCE * values["rate_gbps"]:
        raise fail(
            path,
            "lanes",
            f"lanes x lane_rate_gbps = {carried:g} Gb/s is inconsistent "
            f"with rate_gbps = {values['rate_gbps']:g} (more than 2% apart)",
        )
    if values["family"] in NARROW_AND_FAST and values["spare_lanes"] != 0:
        raise fail(
            path,
            "spare_lanes",
            f"must be 0 for family {values['family']!r} "
            "(narrow-and-fast links have no spare lanes)",
        )

    return LinkProfile(**values, sources=MappingProxyType(sources), path=str(path))


def _yaml_files(entry: Path, origin: str) -> list[Path]:
    """Expand a directory into its *.yaml files (sorted, so load order is stable)."""
    if entry.is_dir():
        return sorted(p for p in entry.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if entry.is_file():
        return [entry]
    raise NetwallError(f"profile path does not exist: {entry} (from {origin})")


def catalogue(extra: Iterable[str | Path] = ()) -> dict[str, LinkProfile]:
    """All known profiles by name: built-ins, NETWALL_PROFILE_PATH, ~/.config, then `extra`.

    A name defined twice is an error rather than a silent override, because a result that
    quietly used a different 'optical-800g' than the reader expects is worse than no result.
    """
    files: list[Path] = list(_yaml_files(BUILTIN_DIR, "built-in profiles"))
    for entry in os.environ.get(PATH_ENV, "").split(os.pathsep):
        if entry.strip():
            files += _yaml_files(Path(entry).expanduser(), f"${PATH_ENV}")
    user_dir = USER_DIR.expanduser()
    if user_dir.is_dir():
        files += _yaml_files(user_dir, str(USER_DIR))
    for entry in extra:
        files += _yaml_files(Path(entry).expanduser(), "extra profile paths")

    cat: dict[str, LinkProfile] = {}
    seen: set[Path] = set()
    for file in files:
        resolved = file.resolve()
        if resolved in seen:  # the same file reached twice is not a conflict
            continue
        seen.add(resolved)
        profile = load_profile(file)
        if profile.name in cat:
            raise NetwallError(
                f"link profile '{profile.name}' is defined twice: "
                f"{cat[profile.name].path} and {profile.path}"
            )
        cat[profile.name] = profile
    return cat


def get_profile(name: str, cat: Mapping[str, LinkProfile]) -> LinkProfile:
    """Look a profile up by name, listing the known names when it is not there."""
    try:
        return cat[name]
    except KeyError:
        known = ", ".join(sorted(cat)) or "none"
        raise NetwallError(f"unknown link profile {shown(name)} (known: {known})") from None


#: A bundle's name: N cables of a catalogue profile side by side, e.g. "9xoptical-800g".
_BUNDLE = re.compile(r"([1-9][0-9]{0,2})x(.+)")
#: Fields a bundle of N cables has N times of (the rest are each cable's own).
_SUMMED = ("rate_gbps", "lanes", "spare_lanes", "watts_per_end", "afr", "queue_bytes")


def bundle(base: LinkProfile, cables: int) -> LinkProfile:
    """`cables` cables of `base` side by side as one link: what a GPU needs to match an
    NVLink bundle's bandwidth with 800G cables (7200 Gb/s = 9 x 800G). Rate, lanes, spares,
    power per end, failure rate and queue add up; reach, delay, BER and energy per bit are
    each cable's. Every number keeps its source, prefixed by how it was derived."""
    if not is_whole(cables, 1, MAX_CABLES):
        raise NetwallError(f"a bundle takes 1 to {MAX_CABLES} cables, got {cables!r}")
    values = {f.name: getattr(base, f.name) for f in fields(base)
              if f.name not in ("name", "description", "sources", "path")}
    sources = {}
    for key, source in base.sources.items():
        if key in _SUMMED:
            values[key] = values[key] * cables
            sources[key] = f"derived: {cables} x {base.name}'s {values[key] / cables:g} ({source})"
        else:
            sources[key] = f"as one {base.name} cable ({source})"
    return LinkProfile(name=f"{cables}x{base.name}",
                       description=f"{cables} {base.name} cables in parallel as one link",
                       sources=MappingProxyType(sources), path=base.path, **values)


def with_bundles(cat: Mapping[str, LinkProfile], names: Iterable[str]) -> dict[str, LinkProfile]:
    """The catalogue plus every bundle named in `names` ("9xoptical-800g") whose base it
    holds; other names are left for get_profile or validate to refuse."""
    out = dict(cat)
    for name in names:
        found = _BUNDLE.fullmatch(name)
        if name not in out and found and found.group(2) in cat:
            out[name] = bundle(cat[found.group(2)], int(found.group(1)))
    return out
