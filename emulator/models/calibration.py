"""What this host's software can carry faithfully, measured once and cached.

netwall's agents are programs on a shared machine: they move a limited number of bytes per
wall-clock second, and each dependent step of a collective waits for an agent to wake up.
Time dilation hides both, if it is large enough (emulator.models.dilation.choose). How large depends
on the machine (cores, kernel, CPU), so it is measured here rather than assumed: on a star of
8 GPUs, a bandwidth-bound (16 MiB) and a latency-bound (1 MiB) ring all-reduce are timed up a
ladder of dilations until each stays within half the tolerance of the alpha-beta model, which
is exact for that call (BENCHMARKS.md). The result is cached per machine (CPU model, cores,
memory, kernel, calibration version) and measured again when any of them changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from emulator.models.profiles import DEFAULT_LINK
from foundation import outputs
from foundation.errors import NetwallError
from foundation.inputs import number, read_text
from foundation.units import format_size
from topologies.graph import MAX_GPUS

#: Bump when the agents' hot path changes: an old calibration would then mislead.
VERSION = 1
#: A result the host distorted by more than this share is flagged (emulator.models.verdict).
DEFAULT_TOLERANCE = 0.02
CACHE_DIR = Path(os.environ.get("NETWALL_CACHE_DIR", "/var/cache/netwall"))
TOPOLOGY, LINK, RANKS = "star:8", DEFAULT_LINK, 8
BANDWIDTH_SIZE, LATENCY_SIZE = 16 << 20, 1 << 20
BANDWIDTH_LADDER = (200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
LATENCY_LADDER = (500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0)
REPEATS, ITERS = 2, 3


@dataclass(frozen=True)
class Calibration:
    """The two host limits dilation.choose needs, and where they were measured."""

    capacity_gbps: float  # all ranks' injection (wall clock) that keeps a call faithful
    step_s: float  # wall time a dependent step may cost the host at `ranks` ranks
    ranks: int
    machine: str  # fingerprint(): a different machine measures again
    measured: str  # when (UTC), for `netwall check`
    samples: tuple[tuple[int, float, float], ...] = ()  # (size, dilation, error) as measured

    def summary(self) -> str:
        return (f"agents carry {self.capacity_gbps:.2f} Gb/s faithfully; a step costs up to "
                f"{self.step_s * 1e6:.0f} us of host time at {self.ranks} ranks "
                f"(measured {self.measured})")


#: Used when nothing is calibrated yet and measuring is not possible (the Python API without
#: a cache): the 2-core development machine's values, rounded to the safe side.
FALLBACK = Calibration(capacity_gbps=2.0, step_s=100e-6, ranks=RANKS, machine="fallback",
                       measured="never (built-in fallback)")


def fingerprint() -> str:
    """What the calibration depends on: processor, cores, memory, kernel and this module."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f
                      if line.startswith("model name")), model)
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    return (f"{model} | {os.cpu_count()} cores | {memory_gib} GiB | {platform.release()} "
            f"| v{VERSION}")


def cache_path() -> Path:
    return CACHE_DIR / "calibration.json"


#: What a cached calibration may hold (docs/user-guide.md): anything else, a NaN step time
#: as much as a string, is not this host's measurement, and is measured again.
MAX_CAPACITY_GBPS = 1e6
MAX_STEP_S = 1.0
MAX_SAMPLES = 100


def load(path: Path | None = None) -> Calibration | None:
    """The cached calibration of this machine, or None (none yet, another machine's, or a
    file that does not hold one, every number checked for type, finiteness and range: it is
    measured again). A cache is read back, never trusted: a NaN step time would let
    dilation.choose pick any dilation, and the verdict judge against it."""
    path = path or cache_path()
    try:
        data = json.loads(read_text(path, "calibration cache"))
        return _checked(data) if isinstance(data, dict) else None
    except (NetwallError, ValueError, RecursionError):
        return None


def _checked(data: dict) -> Calibration | None:
    """The calibration in `data` if it is this machine's and every value is what it must be;
    NetwallError (one line) for a value out of its type or range."""
    if set(data) != {f.name for f in fields(Calibration)} or data["machine"] != fingerprint():
        return None
    samples = data["samples"]
    if not isinstance(samples, list) or len(samples) > MAX_SAMPLES or \
            not all(isinstance(s, list) and len(s) == 3 for s in samples):
        return None
    if not isinstance(data["measured"], str) or len(data["measured"]) > 100:
        return None
    return Calibration(
        capacity_gbps=number(data["capacity_gbps"], "capacity_gbps", 0, MAX_CAPACITY_GBPS,
                             above=True),
        step_s=number(data["step_s"], "step_s", 0, MAX_STEP_S, above=True),
        ranks=number(data["ranks"], "ranks", 2, MAX_GPUS, whole=True),
        machine=data["machine"], measured=data["measured"],
        samples=tuple((number(size, "size", 1, 1 << 40, whole=True),
                       number(d, "dilation", 0, 1e9, above=True),
                       number(error, "error", -1e6, 1e6)) for size, d, error in samples))


def save(calibration: Calibration, path: Path | None = None) -> Path:
    """Write it the safe way (foundation.outputs: atomic, 0644, no following of links)."""
    path = path or cache_path()
    outputs.make_dir(path.parent)
    return outputs.write_file(path, json.dumps(asdict(calibration), indent=1))


def first_faithful(errors: dict[float, float], tolerance: float) -> float | None:
    """The smallest dilation whose measured error is within half the tolerance."""
    return next((d for d in sorted(errors) if abs(errors[d]) <= tolerance / 2), None)


def fit(bandwidth_errors: dict[float, float], latency_errors: dict[float, float],
        bandwidth_injection_gbps: float, latency_model_s: float, latency_steps: int,
        tolerance: float) -> tuple[float, float]:
    """(capacity_gbps, step_s) from the two ladders' errors by dilation.

    The capacity is the injection at the first dilation the bandwidth-bound call kept within
    half the tolerance; the step cost is what fits half the tolerance of the latency-bound call
    at its first such dilation. So dilation.choose gives back exactly those dilations for the
    two reference calls, and scales from them for every other call. A ladder that never got
    there gives its last rung, which still errs on the safe side.
    """
    d_bw = first_faithful(bandwidth_errors, tolerance) or max(bandwidth_errors)
    d_lat = first_faithful(latency_errors, tolerance) or max(latency_errors)
    capacity = bandwidth_injection_gbps / d_bw
    step_s = tolerance / 2 * d_lat * latency_model_s / latency_steps
    return capacity, step_s


def measure(run: Callable[[int, float], tuple[float, float]], injection_gbps: float,
            latency_model_s: float, latency_steps: int,
            tolerance: float = DEFAULT_TOLERANCE,
            progress: Callable[[str], None] | None = None) -> Calibration:
    """Climb both ladders with `run(size, dilation) -> (time_s, model_s)` (one timed batch on
    the calibration star, real units) and fit the result.

    `injection_gbps` is the bandwidth-bound call's injection in real units (all ranks' bytes
    over its model time); the latency ladder starts where that call's bandwidth is no concern.
    """
    samples: list[tuple[int, float, float]] = []

    def climb(size: int, ladder: tuple[float, ...]) -> dict[float, float]:
        errors: dict[float, float] = {}
        for d in ladder:
            runs = [run(size, d) for _ in range(REPEATS)]
            errors[d] = statistics.median(t / m - 1 for t, m in runs)
            samples.append((size, d, errors[d]))
            if progress:
                progress(f"{format_size(size, spaced=True)} at dilation {d:.10g}: {errors[d]:+.1%}")
            if abs(errors[d]) <= tolerance / 2:
                break
        return errors

    bandwidth = climb(BANDWIDTH_SIZE, BANDWIDTH_LADDER)
    capacity_guess = injection_gbps / (first_faithful(bandwidth, tolerance) or max(bandwidth))
    latency_injection = injection_gbps  # the same ranks at line rate: the same injection
    start = latency_injection / capacity_guess
    latency = climb(LATENCY_SIZE, tuple(d for d in LATENCY_LADDER if d >= start)
                    or LATENCY_LADDER[-1:])
    capacity, step_s = fit(bandwidth, latency, injection_gbps, latency_model_s, latency_steps,
                           tolerance)
    return Calibration(capacity, step_s, RANKS, fingerprint(),
                       time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), tuple(samples))
