"""What this host's software can carry faithfully, measured and cached.

netwall's agents are programs on a shared machine: they move a limited number of bytes per
wall-clock second, and each dependent step of a collective waits for an agent to wake up.
Time dilation hides both, if it is large enough (emulator.models.dilation.choose). How large
depends on the machine (cores, kernel, CPU), so it is measured here rather than assumed, on
a star of 8 GPUs, with a bandwidth-bound (16 MiB) and a latency-bound (1 MiB) ring
all-reduce, whose alpha-beta model is exact.

Since each call keeps its own timeline (traffic.machine: a late turn no longer delays the
next step, the links' buckets let a late sender catch up), the host costs a call almost
nothing until it cannot keep up at all: a call's error against its model is flat at what no
dilation removes (a frame's granularity, ~0.15%) down to a dilation where it rises steeply
(BENCHMARKS.md: +0.13% at D 500, +1.7% at 300, +36% at 200 for the 16 MiB call). A fit of
e(D) = e0 + a/D, which the previous calibration made, misreads such a cliff. So each
reference call's threshold is found instead: the smallest dilation at which it is within
half the tolerance of its model, by climbing a ladder and halving the interval below the
first rung that passes (to within about 10%), in several rounds. Then

    capacity  = the bandwidth-bound call's injection (wall clock) at its threshold
    step cost = the wall time per dependent step that puts the latency-bound call's host
                share at half the tolerance at its threshold

These are the figures `dilation.choose` uses, which gives those thresholds back for the two
calls; each round's own threshold is kept too, and their spread, so `netwall check` says how
much this host varies. The result is cached
per machine (CPU model, cores, memory, kernel, calibration version) and measured again when
any of them changes.
"""

from __future__ import annotations

import contextlib
import json
import math
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
#: 2: agents under SCHED_FIFO; 3: figures fitted, not read off a ladder; 4: steps and frames
#: in the call's timeline, and thresholds found, not fitted.
VERSION = 4
#: A result the host distorted by more than this share is flagged (emulator.models.verdict).
DEFAULT_TOLERANCE = 0.02
CACHE_DIR = Path(os.environ.get("NETWALL_CACHE_DIR", "/var/cache/netwall"))
TOPOLOGY, LINK, RANKS = "star:8", DEFAULT_LINK, 8
BANDWIDTH_SIZE, LATENCY_SIZE = 16 << 20, 1 << 20
#: Where each call's search for its faithful dilation starts and how far it may go.
BANDWIDTH_LADDER = (100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
LATENCY_LADDER = (200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0)
#: Each round halves the interval below the first faithful rung this often: three halvings
#: of a factor of 2 or 2.5 find the dilation to within 9-12%.
HALVINGS = 3
ROUNDS, ITERS = 3, 3
#: The least a dependent step is taken to cost the host: a wake-up and a system call or two.
MIN_STEP_S = 1e-6


@dataclass(frozen=True)
class Calibration:
    """The two host limits dilation.choose needs, and where they were measured."""

    capacity_gbps: float  # all ranks' injection (wall clock) that keeps a call faithful
    step_s: float  # wall time a dependent step costs the host at `ranks` ranks
    ranks: int
    machine: str  # fingerprint(): a different machine measures again
    measured: str  # when (UTC), for `netwall check`
    samples: tuple[tuple[int, float, float], ...] = ()  # (size, dilation, error) as measured
    #: How much the rounds differed: (largest - smallest) / median of each figure.
    capacity_spread: float = 0.0
    step_spread: float = 0.0

    def summary(self) -> str:
        return (f"agents carry {self.capacity_gbps:.2f} Gb/s faithfully; a step costs "
                f"{self.step_s * 1e6:.0f} us of host time at {self.ranks} ranks "
                f"(measured {self.measured})")

    def variation(self) -> str:
        return (f"over {ROUNDS} rounds the capacity varied by {self.capacity_spread:.0%} and "
                f"the step cost by {self.step_spread:.0%}")


#: Used when nothing is calibrated yet and measuring is not possible (the Python API without
#: a cache): the 2-core development machine's values (20-22 Gb/s, 17-18 us a step in three
#: calibrations), halved for capacity and doubled for a step: the safe side.
FALLBACK = Calibration(capacity_gbps=10.0, step_s=40e-6, ranks=RANKS, machine="fallback",
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
MAX_SAMPLES = 200


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
                       number(error, "error", -1e6, 1e6)) for size, d, error in samples),
        capacity_spread=number(data["capacity_spread"], "capacity_spread", 0, 1e6),
        step_spread=number(data["step_spread"], "step_spread", 0, 1e6))


def save(calibration: Calibration, path: Path | None = None) -> Path:
    """Write it the safe way (foundation.outputs: atomic, 0644, no following of links)."""
    path = path or cache_path()
    outputs.make_dir(path.parent)
    return outputs.write_file(path, json.dumps(asdict(calibration), indent=1))


def threshold(within: Callable[[float], bool], ladder: tuple[float, ...],
              rounds: int = ROUNDS, halvings: int = HALVINGS) -> tuple[float, list[float]]:
    """The smallest dilation at which `within(d)` (a call timed at d is within half the
    tolerance of its model): the ladder climbed to its first such rung, then in each round the
    interval below it halved `halvings` times (geometrically). Returns the median of the
    rounds' answers and each of them. The first rung passing narrows down from half of it;
    none passing gives the last rung."""
    above = next((d for d in ladder if within(d)), None)
    if above is None:
        return ladder[-1], [ladder[-1]] * rounds
    i = ladder.index(above)
    below = ladder[i - 1] if i else above / 2
    found = []
    for _ in range(rounds):
        low, high = below, above
        for _ in range(halvings):
            middle = math.sqrt(low * high)
            low, high = (low, middle) if within(middle) else (middle, high)
        found.append(high)
    return statistics.median(found), found


def figures(bandwidth_d: float, latency_d: float, injection_gbps: float,
            latency_model_s: float, latency_steps: int, tolerance: float) -> tuple[float, float]:
    """(capacity_gbps, step_s) from the dilations at which the two reference calls became
    faithful with half the tolerance to spare: dilation.choose gives those dilations back
    for them (on its series). The capacity is the bandwidth-bound call's injection at its
    dilation; the step cost the wall time the latency-bound call's steps may take at its
    dilation for the host's share to stay half the tolerance."""
    capacity = injection_gbps / max(1.0, bandwidth_d)
    step_s = max(1.0, latency_d) * tolerance / 2 * latency_model_s / latency_steps
    return capacity, max(MIN_STEP_S, step_s)


def spread(values: list[float]) -> float:
    """(largest - smallest) / median: how far apart the rounds landed."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle > 0 else 0.0


def measure(run: Callable[[int, float], tuple[float, float]], injection_gbps: float,
            latency_model_s: float, latency_steps: int,
            tolerance: float = DEFAULT_TOLERANCE,
            progress: Callable[[str], None] | None = None) -> Calibration:
    """Measure both figures with `run(size, dilation) -> (time_s, model_s)` (one timed batch on
    the calibration star, real units): for each reference call, the smallest dilation at which
    it is within half the tolerance of its model (threshold), in ROUNDS rounds, each
    dilation decided by the best two of three timed batches."""
    samples: list[tuple[int, float, float]] = []

    def within(size: int) -> Callable[[float], bool]:
        def timed(d: float) -> bool:
            """Best two of three timed batches: one disturbed batch decides nothing."""
            votes: list[bool] = []
            while votes.count(True) < 2 and votes.count(False) < 2:
                time_s, model_s = run(size, d)
                samples.append((size, d, time_s / model_s - 1))
                if progress:
                    progress(f"{format_size(size, spaced=True)} at dilation {d:.4g}: "
                             f"{samples[-1][2]:+.1%}")
                votes.append(abs(samples[-1][2]) <= tolerance / 2)
            return votes.count(True) >= 2
        return timed

    bandwidth, bandwidth_rounds = threshold(within(BANDWIDTH_SIZE), BANDWIDTH_LADDER)
    # The latency-bound call injects as much (the same ranks at line rate): its search starts
    # where that injection is within the capacity, so it finds the steps' cost, not crowding.
    latency, latency_rounds = threshold(within(LATENCY_SIZE), tuple(
        d for d in LATENCY_LADDER if d >= bandwidth) or LATENCY_LADDER[-1:])
    capacity, step_s = figures(bandwidth, latency, injection_gbps, latency_model_s,
                               latency_steps, tolerance)
    per_round = [figures(bw, lat, injection_gbps, latency_model_s, latency_steps, tolerance)
                 for bw, lat in zip(bandwidth_rounds, latency_rounds, strict=True)]
    return Calibration(capacity, step_s, RANKS, fingerprint(),
                       time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), tuple(samples),
                       spread([c for c, _ in per_round]), spread([s for _, s in per_round]))
