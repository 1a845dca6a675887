"""nccl-tests' measures: algorithm bandwidth and bus bandwidth (doc/PERFORMANCE.md there).

algbw = bytes / time. busbw = algbw times a per-collective factor that makes the figure
comparable with the hardware's link bandwidth whatever the rank count: for all-reduce each
rank must send and receive 2(n-1)/n of the buffer, so busbw = algbw * 2(n-1)/n.
Both are reported in GB/s (1e9 bytes per second), as nccl-tests does.
"""

from __future__ import annotations

from collections.abc import Callable

BUSBW_FACTOR: dict[str, Callable[[int], float]] = {
    "allreduce": lambda n: 2 * (n - 1) / n,
    "reducescatter": lambda n: (n - 1) / n,
    "allgather": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "sendrecv": lambda n: 1.0,
    "send": lambda n: 1.0,
}


def algbw_gbps(size: int, time_s: float) -> float:
    return size / time_s / 1e9


def busbw_gbps(collective: str, ranks: int, size: int, time_s: float) -> float:
    return algbw_gbps(size, time_s) * BUSBW_FACTOR[collective](ranks)
