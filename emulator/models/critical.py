"""Where a replayed step's time went: each stream's busy time, the critical path, and how much
of the step is exposed communication.

A step ends when its last call ends. Walking back from that call, each call waited for one
thing before it could end: the call before it on its stream on one of its ranks, or a call it
names in `after` (on a rank both take part in), whichever ended last. That chain is the
critical path. Time on it inside calls is communication nothing hid (exposed: the step would
be that much shorter with an infinitely fast network, all else equal); time between calls is
compute (the gaps) or waiting for a peer. Exposed communication is what overlap (streams,
buckets, pipelining) tries to shrink, so its share of the step is the figure to compare.

Pure: measured starts and times in, numbers out; replayed calls are the spans the agents
report (first rank's start to last rank's end; a send starts with its sender).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from traffic.trace import Call, takers


@dataclass(frozen=True)
class StepAnalysis:
    """One step's breakdown (seconds, real units)."""

    time_s: float  # first call's start to last call's end
    critical_path: list[int]  # call ids, first to last
    exposed_s: float  # time on the critical path inside calls
    streams: dict[str, float]  # stream -> time it was busy with calls (union of their spans)

    @property
    def exposed_share(self) -> float:
        return self.exposed_s / self.time_s if self.time_s > 0 else 0.0


def analyse_step(calls: Sequence[Call], starts: Sequence[float],
                 times: Sequence[float]) -> StepAnalysis:
    """The breakdown of one step's resolved `calls` (in trace order) given each one's
    measured start and time, seconds from any common origin."""
    ends = [s + t for s, t in zip(starts, times, strict=True)]
    index = {c.id: i for i, c in enumerate(calls)}
    before: list[set[int]] = [set() for _ in calls]  # what each call may have waited for
    last_on: dict[tuple[int, str], int] = {}  # (rank, stream) -> its latest call so far
    for i, c in enumerate(calls):
        ranks = set(takers(c))
        for rank in ranks:
            if (rank, c.stream) in last_on:
                before[i].add(last_on[rank, c.stream])
            last_on[rank, c.stream] = i
        before[i] |= {index[a] for a in c.after
                      if a in index and ranks & set(takers(calls[index[a]]))}
    begin = min(starts)
    path: list[int] = []
    exposed = 0.0
    i: int | None = max(range(len(calls)), key=lambda k: ends[k])
    while i is not None:
        path.append(i)
        waited = [k for k in before[i] if ends[k] <= ends[i]]
        j = max(waited, key=lambda k: ends[k]) if waited else None
        exposed += ends[i] - max(starts[i], ends[j] if j is not None else begin)
        i = j
    streams: dict[str, float] = {}
    for stream in dict.fromkeys(c.stream for c in calls):
        spans = sorted((starts[k], ends[k]) for k, c in enumerate(calls) if c.stream == stream)
        busy, reach = 0.0, -float("inf")
        for s, e in spans:
            busy += max(0.0, e - max(s, reach))
            reach = max(reach, e)
        streams[stream] = busy
    return StepAnalysis(time_s=max(ends) - begin, critical_path=[calls[k].id for k in path[::-1]],
                        exposed_s=exposed, streams=streams)
