"""Campaign files: a sweep declared in YAML, validated whole, expanded into points.

A campaign names a matrix (topologies x links x collectives x algorithms x sizes x faults x
dilations x repetitions x seeds), or several named ones under `experiments:`, plus an
optional `failures:` section computed by Monte Carlo. docs/campaigns.md describes every key.

Everything a user can get wrong is caught here, before any network is built, with the file's
line and the key at fault, because a typo found three hours into a sweep costs three hours.
Points are identified by a hash of what defines them, so a rerun recognises what is already
done however the file was reordered, and measures again what changed: the canonical
parameters, and the content (never the path) of the user's files a point is built from (a
topology file; link and GPU profiles not shipped with netwall). A point given twice (sizes
64K and 65536, a topology listed twice) is one point, measured and stored once. Apart from
reading those files this module is pure.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.models import endpoints, profiles
from emulator.models import faults as flt
from emulator.models.endpoints import DEFAULT as DEFAULT_GPU
from emulator.models.endpoints import gpus
from emulator.models.profiles import catalogue, with_bundles
from emulator.models.reliability import (
    MAX_DAYS,
    MAX_FLEET_GPUS,
    MAX_LINKS_PER_GPU,
    MAX_SEED,
    MAX_TRIALS,
)
from foundation.errors import NetwallError
from foundation.inputs import MAX_ITEMS, MAX_ITERS, compose_yaml, is_whole, read_text, shown
from foundation.units import MAX_SIZE, parse_size
from topologies import parse as parse_topology
from topologies.layout import parse_layout
from traffic.schedule import ALGORITHMS, ELEMENT, default_algorithm

SAME = "same"  # spine_link: the same profile as each point's link
MATRIX_KEYS = ("topologies", "links", "gpus", "spine_link", "layout", "collectives", "algorithms",
               "sizes", "faults", "dilation", "repetitions", "seeds", "iters", "warmup")
REQUIRED = ("topologies", "links", "sizes")
TOP_KEYS = ("name", "description", "experiments", "failures") + MATRIX_KEYS
FAILURE_KEYS = ("gpus", "days", "links", "trials", "seed", "job_gpus")
MAX_POINTS = 100_000  # points of a whole campaign: counted before any is made
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # names results/<name>.sqlite


def point_id(params: dict) -> str:
    """A stable id: the hash of the canonical JSON of the parameters (key order, int/float
    spelling of whole numbers and file layout do not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def digest(data: bytes | dict) -> str:
    """The sha256 of a file's bytes, or of a definition's canonical JSON."""
    if isinstance(data, dict):
        data = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Point:
    """One measurement: one collective call size on one built cluster."""

    experiment: str
    topology: str
    link: str
    gpu: str  # the GPU endpoint profile (emulator.models.endpoints)
    spine_link: str
    layout: str | None
    dilation: float | None  # None: chosen by netwall for this host
    collective: str
    algorithm: str
    size: int
    faults: tuple[str, ...]
    repetition: int
    seed: int
    iters: int
    warmup: int
    #: The sha256 of the topology file's content; None for a built-in topology.
    topology_sha256: str | None = None
    #: The sha256 of the link and GPU profiles the point uses that netwall does not ship
    #: (NETWALL_PROFILE_PATH, ~/.config); None when all are built in.
    profiles_sha256: str | None = None

    def params(self) -> dict:
        """What is stored as the record's `point`: the parameters (a built-in point's as
        before the file hashes existed, so its id has not changed)."""
        params = dict(asdict(self), faults=list(self.faults), kind="point")
        for key in ("topology_sha256", "profiles_sha256"):
            if params[key] is None:
                del params[key]
        return params

    @property
    def id(self) -> str:
        """The hash of what defines the point: a topology file by its content, not its path
        (a point moved with its file is the same point; an edited file makes it new)."""
        identity = self.params()
        if self.topology_sha256:
            identity["topology"] = f"sha256:{identity.pop('topology_sha256')}"
        return point_id(identity)

    @property
    def group(self) -> tuple:
        """Points of one group share one built network."""
        return (self.experiment, self.topology, self.link, self.gpu, self.spine_link,
                self.layout, self.dilation)


@dataclass(frozen=True)
class Failures:
    """The Monte Carlo of link failures (emulator.models.reliability.simulate), one fleet
    per profile."""

    gpus: int
    days: float
    links: dict[str, float]  # profile -> links per GPU
    trials: int = 1000
    seed: int = 1
    job_gpus: int | None = None

    def params(self) -> dict:
        return dict(asdict(self), kind="failures")

    @property
    def id(self) -> str:
        return point_id(self.params())


@dataclass(frozen=True)
class Campaign:
    name: str
    description: str
    points: list[Point]
    failures: Failures | None = None
    groups: dict[tuple, list[Point]] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        groups: dict[tuple, list[Point]] = {}
        for p in self.points:
            groups.setdefault(p.group, []).append(p)
        object.__setattr__(self, "groups", groups)

    def ids(self) -> set[str]:
        """Every id the campaign stores when complete: its points and its failures run."""
        return {p.id for p in self.points} | ({self.failures.id} if self.failures else set())


def load(path: str | Path) -> Campaign:
    """Read and validate a campaign file; any mistake is one NetwallError line."""
    path = Path(path)
    return loads(read_text(path, "campaign"), path.name, default_name=path.stem)


def loads(text: str, filename: str = "campaign.yaml", default_name: str = "campaign") -> Campaign:
    return _Reader(filename).campaign(compose_yaml(text, filename), default_name)


class _Reader:
    """Walks the composed YAML nodes, so every error can name its line."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.loader = yaml.SafeLoader("")
        self.profiles = catalogue()
        self.gpu_profiles = gpus()

    # -- plumbing ------------------------------------------------------------------------
    def fail(self, node: yaml.Node | None, key: str | None, message: str) -> NetwallError:
        line = f" line {node.start_mark.line + 1}" if node is not None else ""
        at = f", key {shown(key, 40)}" if key else ""
        return NetwallError(f"{self.filename}{line}{at}: {message}")

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node | None, key: str | None, allowed: tuple[str, ...]
                ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, "must be a mapping of keys to values")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            name = self.value(k)
            if name not in allowed:
                raise self.fail(k, str(name), f"unknown key (use {', '.join(allowed)})")
            out[name] = v
        return out

    def items(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, "must be a list, e.g. [a, b]")
        if not node.value:
            raise self.fail(node, key, "is an empty list, so the matrix has no points")
        if len(node.value) > MAX_ITEMS:
            raise self.fail(node, key, f"has {len(node.value)} entries; at most {MAX_ITEMS}")
        return node.value

    def string(self, node: yaml.Node, key: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, key, f"must be a non-empty string, got {shown(value)}")
        return value.strip()

    def integer(self, node: yaml.Node, key: str, minimum: int, maximum: int) -> int:
        value = self.value(node)
        if not is_whole(value, minimum, maximum):
            raise self.fail(node, key, f"must be an integer from {minimum} to {maximum}, "
                                       f"got {shown(value)}")
        return value

    def number(self, node: yaml.Node, key: str, minimum: float, maximum: float = 1e15,
               strict: bool = False) -> float:
        value = self.value(node)
        # Compared before any float(): a 400-digit integer is valid YAML and overflows one.
        ok = not isinstance(value, bool) and isinstance(value, int | float) and \
            (value > minimum if strict else value >= minimum) and value <= maximum
        if not ok:
            raise self.fail(node, key, f"must be a number {'>' if strict else '>='} "
                                       f"{minimum:g} and <= {maximum:g}, got {shown(value)}")
        return float(value)

    def gpu(self, node: yaml.Node) -> str:
        name = self.string(node, "gpus")
        if name not in self.gpu_profiles:
            raise self.fail(node, "gpus", f"no GPU profile {name!r} (available: "
                                          f"{', '.join(self.gpu_profiles)})")
        return name

    def profile(self, node: yaml.Node, key: str) -> str:
        name = self.string(node, key)
        self.profiles = with_bundles(self.profiles, [name])  # "9xoptical-800g" too
        if name not in self.profiles:
            raise self.fail(node, key, f"no link profile {name!r} (available: "
                                       f"{', '.join(self.profiles)})")
        return name

    # -- the file ------------------------------------------------------------------------
    def campaign(self, root: yaml.Node | None, default_name: str) -> Campaign:
        if root is None:
            raise NetwallError(f"{self.filename}: the file is empty")
        top = self.mapping(root, None, TOP_KEYS)
        name = self.name(top["name"]) if "name" in top else default_name
        description = self.string(top["description"], "description") \
            if "description" in top else ""
        defaults = {k: v for k, v in top.items() if k in MATRIX_KEYS}
        if "experiments" in top:
            experiments = []
            seen: set[str] = set()
            for node in self.items(top["experiments"], "experiments"):
                keys = self.mapping(node, "experiments", ("name",) + MATRIX_KEYS)
                if "name" not in keys:
                    raise self.fail(node, "experiments", "every experiment needs a 'name'")
                label = self.string(keys.pop("name"), "name")
                if label in seen:
                    raise self.fail(node, "name", f"experiment {label!r} given twice")
                seen.add(label)
                experiments.append((label, node, {**defaults, **keys}))
        else:
            experiments = [("main", root, defaults)]
        self.count(experiments)
        unique: dict[str, Point] = {}  # one point however often the file spells it
        for label, node, keys in experiments:
            for p in self.matrix(label, node, keys):
                unique.setdefault(p.id, p)
        points = list(unique.values())
        failures = self.failures(top["failures"]) if "failures" in top else None
        return Campaign(name, description, points, failures)

    def name(self, node: yaml.Node) -> str:
        """The campaign's name, which names its database under results/: never a path."""
        name = self.string(node, "name")
        if not NAME.fullmatch(name):
            raise self.fail(node, "name", f"{shown(name)} is not a name: use letters, digits, "
                                          "'.', '_' and '-' (at most 100), starting with a "
                                          "letter or digit")
        return name

    def count(self, experiments: list[tuple[str, yaml.Node, dict[str, yaml.Node]]]) -> None:
        """Refuse a campaign of more than MAX_POINTS points before validating or making any:
        the product of the matrix's list lengths is known from the file's shape alone."""
        total = 0
        for _, node, keys in experiments:
            points = 1
            for key in ("topologies", "links", "gpus", "collectives", "algorithms", "sizes",
                        "faults", "dilation", "seeds"):
                if isinstance(keys.get(key), yaml.SequenceNode):
                    points *= max(1, len(keys[key].value))
            if "repetitions" in keys:
                points *= self.integer(keys["repetitions"], "repetitions", 1, MAX_POINTS)
            total += points
            if total > MAX_POINTS:
                raise self.fail(node, None, f"the campaign has {total} or more points; at "
                                            f"most {MAX_POINTS} (split it into campaigns)")

    def matrix(self, label: str, node: yaml.Node, keys: dict[str, yaml.Node]) -> list[Point]:
        for key in REQUIRED:
            if key not in keys:
                where = f"experiment {label!r} " if label != "main" else ""
                raise self.fail(node, None, f"{where}needs key '{key}'")
        links = [self.profile(n, "links") for n in self.items(keys["links"], "links")]
        gpu_names = [self.gpu(n) for n in self.items(keys["gpus"], "gpus")] \
            if "gpus" in keys else [DEFAULT_GPU]
        spine = "optical-800g"
        if "spine_link" in keys:
            spine = self.string(keys["spine_link"], "spine_link")
            if spine != SAME:
                spine = self.profile(keys["spine_link"], "spine_link")
        layout = self.layout(keys.get("layout"))
        topologies = [self.topology(n, links[0], spine, layout)
                      for n in self.items(keys["topologies"], "topologies")]
        collectives = [self.collective(n) for n in self.items(keys["collectives"], "collectives")] \
            if "collectives" in keys else ["allreduce"]
        pairs = self.algorithms(keys.get("algorithms"), collectives)
        sizes = [self.size(n) for n in self.items(keys["sizes"], "sizes")]
        fault_sets = [self.fault_set(n) for n in self.items(keys["faults"], "faults")] \
            if "faults" in keys else [()]
        dilations = self.dilations(keys.get("dilation"))
        repetitions = self.integer(keys["repetitions"], "repetitions", 1, MAX_POINTS) \
            if "repetitions" in keys else 1
        seeds = [self.integer(n, "seeds", 0, MAX_SEED)
                 for n in self.items(keys["seeds"], "seeds")] if "seeds" in keys else [0]
        iters = self.integer(keys["iters"], "iters", 1, MAX_ITERS) if "iters" in keys else 5
        warmup = self.integer(keys["warmup"], "warmup", 0, MAX_ITERS) if "warmup" in keys else 1
        points = []
        for topology, link, gpu, dilation in itertools.product(topologies, links, gpu_names,
                                                               dilations):
            spine_link = link if spine == SAME else spine
            files = {"topology_sha256": self.topology_file(topology),
                     "profiles_sha256": self.user_profiles(link, spine_link, gpu)}
            for rep, seed, (coll, algo), size, fs in itertools.product(
                    range(repetitions), seeds, pairs, sizes, fault_sets):
                points.append(Point(label, topology, link, gpu, spine_link, layout, dilation,
                                    coll, algo, size, fs, rep, seed, iters, warmup, **files))
        return points

    def topology_file(self, spec: str) -> str | None:
        """The sha256 of a topology file's content (a spec that parsed and names a file is
        one, as topologies.parse decides); None for a built-in spec."""
        if not os.path.isfile(spec):
            return None
        try:
            with open(spec, "rb") as f:
                return digest(f.read())
        except OSError as e:
            raise NetwallError(f"{self.filename}: cannot read topology file {spec}: "
                               f"{e.strerror or e}") from None

    def user_profiles(self, link: str, spine_link: str, gpu: str) -> str | None:
        """The sha256 of the profiles a point uses that are not netwall's own; None if all
        are. A bundle ('9xoptical-800g') is defined by its cable's profile."""
        user = {}
        for name, profile, builtin in (
                (link, self.profiles.get(link), profiles.BUILTIN_DIR),
                (spine_link, self.profiles.get(spine_link), profiles.BUILTIN_DIR),
                (gpu, self.gpu_profiles.get(gpu), endpoints.BUILTIN_DIR)):
            path = getattr(profile, "path", "")
            if path and not Path(path).resolve().is_relative_to(builtin):
                user[name] = dict(profile.to_dict(), path="")
        return digest(user) if user else None

    def layout(self, node: yaml.Node | None) -> str | None:
        if node is None or self.value(node) is None:
            return None
        text = self.string(node, "layout")
        try:
            parse_layout(text)
        except NetwallError as e:
            raise self.fail(node, "layout", str(e)) from None
        return text

    def topology(self, node: yaml.Node, link: str, spine: str, layout: str | None) -> str:
        spec = self.string(node, "topologies")
        try:
            parse_topology(spec, link, spine_link=link if spine == SAME else spine,
                           layout=layout if spec.startswith("cluster:") else None)
        except NetwallError as e:
            raise self.fail(node, "topologies", str(e)) from None
        if layout is not None and not spec.startswith(("racks:", "cluster:")):
            raise self.fail(node, "topologies", f"{spec!r}: a layout applies to racks:RxG "
                                                "and cluster:DxG only")
        return spec

    def collective(self, node: yaml.Node) -> str:
        name = self.string(node, "collectives")
        if name not in ALGORITHMS:
            raise self.fail(node, "collectives", f"no collective {name!r} (available: "
                                                 f"{', '.join(ALGORITHMS)})")
        return name

    def algorithms(self, node: yaml.Node | None, collectives: list[str]) -> list[tuple[str, str]]:
        """(collective, algorithm) pairs; without the key, each collective's default."""
        if node is None:
            return [(c, default_algorithm(c)) for c in collectives]
        pairs = []
        for item in self.items(node, "algorithms"):
            algorithm = self.string(item, "algorithms")
            for c in collectives:
                if algorithm not in ALGORITHMS[c]:
                    raise self.fail(item, "algorithms", f"{c} has no algorithm {algorithm!r} "
                                                        f"({c} has: {', '.join(ALGORITHMS[c])}); "
                                                        "split it into experiments")
                pairs.append((c, algorithm))
        return sorted(set(pairs), key=pairs.index)

    def size(self, node: yaml.Node) -> int:
        value = self.value(node)
        try:
            size = parse_size(value) if isinstance(value, str) else value
        except NetwallError as e:
            raise self.fail(node, "sizes", str(e)) from None
        if not is_whole(size, 1, MAX_SIZE) or size % ELEMENT:
            raise self.fail(node, "sizes", f"{shown(value)} is not a size: use a positive "
                                           f"multiple of {ELEMENT} bytes up to 1T, e.g. 4096, "
                                           "64K, 16M")
        return size

    def fault_set(self, node: yaml.Node) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "faults", "each entry is a list of fault specs ([] for none)")
        specs = []
        for item in node.value:
            spec = self.string(item, "faults")
            try:
                flt.parse(spec)
            except NetwallError as e:
                raise self.fail(item, "faults", str(e)) from None
            specs.append(spec)
        return tuple(specs)

    def dilations(self, node: yaml.Node | None) -> list[float | None]:
        if node is None:
            return [None]
        nodes = self.items(node, "dilation") if isinstance(node, yaml.SequenceNode) else [node]
        out = []
        for n in nodes:
            if self.value(n) is None:
                out.append(None)
                continue
            out.append(self.number(n, "dilation", 1))
        return out

    def failures(self, node: yaml.Node) -> Failures:
        keys = self.mapping(node, "failures", FAILURE_KEYS)
        for key in ("gpus", "days", "links"):
            if key not in keys:
                raise self.fail(node, "failures", f"needs key '{key}'")
        gpus = self.integer(keys["gpus"], "gpus", 1, MAX_FLEET_GPUS)
        links = {}
        for k, v in self.mapping(keys["links"], "links", tuple(self.profiles)).items():
            links[k] = self.number(v, k, 0, MAX_LINKS_PER_GPU)
        if not links:
            raise self.fail(keys["links"], "links", "name at least one profile")
        job = self.integer(keys["job_gpus"], "job_gpus", 1, gpus) if "job_gpus" in keys else None
        return Failures(
            gpus=gpus, days=self.number(keys["days"], "days", 0, MAX_DAYS, strict=True),
            links=links,
            trials=self.integer(keys["trials"], "trials", 1, MAX_TRIALS) if "trials" in keys
            else 1000,
            seed=self.integer(keys["seed"], "seed", 0, MAX_SEED) if "seed" in keys else 1,
            job_gpus=job)

