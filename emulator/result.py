"""What `Emulation.run` and `Emulation.replay` return: one typed result each.

Every consumer (the CLI's tables and JSON, the console, campaigns, benches, tests) reads the
same fields, so a result is built once, complete, where it is measured: the link profile,
the topology and, for a replay, the trace's name are fields like any other, not keys each
caller patches on afterwards.

`to_dict()` is the JSON form: the keys and values `netwall run --json` and `replay --json`
print, and what a campaign stores in each point's record (README "JSON", docs/replay.md,
docs/campaigns.md). It is the same dict netwall wrote before results were typed, so stored
campaigns stay readable (the report reads those dicts, never these classes), and any change
to a field here is a change to that documented format. `from_dict()` reads back a result
this version wrote (a bench reads `netwall run --json` with it).

Records inside a result are typed too (a replayed call, a step, a fault event, a dilation
attempt, a link's byte counts: emulator.models.accounting.LinkReport). One nested part stays
the plain JSON dict its maker gives, documented here by key: the fidelity verdict
(emulator.models.verdict: `Verdict.to_dict()` for a run, `TraceVerdict.to_dict()` for a
replay, which differ in their keys).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from emulator.models.accounting import LinkReport
from emulator.models.faults import FaultEvent
from foundation.errors import NetwallError


def _read(kind: type, data: Any) -> Any:
    """A record of dataclass `kind` from its JSON form; exactly its keys (a key with a default
    may be missing: a result stored before netwall added it), or a NetwallError."""
    if not isinstance(data, dict):
        raise NetwallError(f"not a netwall {kind.__name__}: {type(data).__name__}, not an object")
    fields = dataclasses.fields(kind)
    names = [f.name for f in fields]
    missing = [f.name for f in fields if f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    extra = [k for k in data if k not in names]
    if missing or extra:
        raise NetwallError(f"not a netwall {kind.__name__}: missing {missing or 'nothing'}, "
                           f"unexpected {extra or 'nothing'}")
    nested = {name: [_read(inner, item) for item in data[name]]
              for name, inner in getattr(kind, "NESTED", {}).items()}
    return kind(**{**data, **nested})


@dataclass(frozen=True)
class _Result:
    """Shared by every result type: the JSON form and reading it back."""

    #: Fields that hold a list of records of another dataclass, which from_dict rebuilds.
    NESTED: ClassVar[dict[str, type]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, fields in declaration order (nested records as dicts too)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """A result from its JSON form; exactly this type's keys, or a NetwallError."""
        return _read(cls, data)


@dataclass(frozen=True)
class Attempt(_Result):
    """One dilation a run's timed calls were measured at, and the verdict there: a result the
    host distorted is measured again at a larger one (Emulation.run)."""

    dilation: float
    time_s: float  # one call's real time
    host_error: float | None  # the host's share of it (inf: most; None: not proven)
    faithful: bool


@dataclass(frozen=True)
class TraceAttempt(_Result):
    """One dilation a whole trace ran at, and the verdict on its total (Emulation.replay)."""

    dilation: float
    total_s: float  # the trace's real time
    host_error: float | None  # the host's share of it (None: most, or not proven)
    faithful: bool


@dataclass(frozen=True)
class RunResult(_Result):
    """One size of `netwall run`: nccl-tests' columns, the model, the verdict and the cost.

    Times are real (undilated) seconds of one call, the mean of the timed batch.
    """

    collective: str
    algorithm: str
    ranks: int
    bytes: int  # the call's size as nccl-tests counts it for this collective (README)
    count: int  # elements of `type` in `bytes` (bytes // the element's size)
    type: str  # the datatype, as nccl-tests names it (float, double, int8, half, ...)
    redop: str  # the reduction op (sum, prod, min, max, avg); "none" if the collective has none
    iters: int
    time_s: float
    algbw_gbps: float  # GB/s, as nccl-tests
    busbw_gbps: float
    model_time_s: float  # the alpha-beta model with the GPU endpoint's terms
    model_emulated_time_s: float  # the model of what was emulated (the same, on every kernel)
    model_error: float  # time_s against model_emulated_time_s
    gpu: str  # the GPU endpoint profile the ranks stood in for
    protocol: str  # the NCCL protocol that endpoint ran the call with
    check: bool | None  # every rank's data verified; None: not checked
    retransmitted_bytes: int
    retransmitted_frames: int
    faults: list[FaultEvent]  # what the faults did, in order
    faults_not_struck: list[str]  # the specs of faults the timed calls ended before
    dilation: float  # the one the result was measured at (the last attempt's)
    dilation_attempts: list[Attempt]  # the last is the result's
    #: The verdict (emulator.models.verdict.Verdict.to_dict()): faithful, flags, host_error,
    #: probe_dilation, fix_dilation, cpu_busy, tolerance, ...
    fidelity: dict
    wall_s: float  # what measuring this size took
    emulated_s: float  # cluster time its timed calls and their probes ran for
    slowdown: float  # wall_s over emulated_s
    slowdown_floor: float  # the least slowdown this host allows for the call
    energy_j: float
    energy_by_profile_j: dict[str, float]
    joules_per_gb: float
    #: Per directed link that carried traffic, bytes over the whole timed batch.
    links: list[LinkReport]
    link: str  # the link profile the run was given
    topology: str
    #: why `algorithm` ran: "named", or NCCL's choice and where it holds ("NCCL's choice
    #: from 2 MiB on 8 GPUs", emulator.models.alphabeta.nccl_choice); "" in results stored
    #: before netwall said
    why: str = ""

    NESTED: ClassVar[dict[str, type]] = {"faults": FaultEvent, "dilation_attempts": Attempt,
                                         "links": LinkReport}


@dataclass(frozen=True)
class CallRow(_Result):
    """One replayed call: where it started and how long it took, in real seconds from the
    start of the trace."""

    id: int
    step: int
    stream: str
    comm: str
    collective: str
    algorithm: str
    ranks: int
    bytes: int
    start_s: float
    time_s: float
    algbw_gbps: float
    busbw_gbps: float
    model_time_s: float
    protocol: str  # the NCCL protocol the endpoint ran it with
    host_error: float | None  # this call's share of host distortion (None: not proven)
    check: bool | None


@dataclass(frozen=True)
class StepTime(_Result):
    """A training step of a trace: from its first call's start to its last call's end, and
    where that time went (emulator.models.critical)."""

    step: int
    time_s: float
    critical_path: list[int]  # call ids, first to last
    exposed_s: float  # communication on the critical path: what no compute hid
    exposed_share: float  # exposed_s over time_s
    streams: dict[str, float]  # stream -> seconds it was busy with calls


@dataclass(frozen=True)
class ReplayResult(_Result):
    """A whole trace replayed as one program: every call, every step, the verdict, the cost."""

    calls: list[CallRow]
    steps: list[StepTime]
    total_s: float  # from the first call's start to the last one's end
    retransmitted_bytes: int
    links: list[LinkReport]  # as RunResult.links, expected_bytes None (no one schedule)
    dilation: float
    dilation_attempts: list[TraceAttempt]  # the last is the result's
    #: The verdict (emulator.models.verdict.TraceVerdict.to_dict()): faithful, flags, host_error,
    #: call_errors, worst_error, probe_dilation, fix_dilation, tolerance, dilation.
    fidelity: dict
    wall_s: float
    emulated_s: float
    slowdown: float
    slowdown_floor: float
    link: str
    topology: str
    trace: str  # the trace file or workload replayed
    gpu: str  # the GPU endpoint profile the ranks stood in for
    #: Compute gaps no traffic overlaps were skipped (traffic.gaps): off with --no-skip and
    #: over several hosts, where the agents share no clock.
    skip: bool
    skipped_s: float  # wall seconds that saved, over every run of the trace (with the probe)

    NESTED: ClassVar[dict[str, type]] = {
        "calls": CallRow, "steps": StepTime, "dilation_attempts": TraceAttempt,
        "links": LinkReport}
