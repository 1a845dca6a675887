"""NCCL's own tuning model, ported for one choice: ring or NVLS for an all-reduce on one
NVLink domain, as NCCL makes it.

NCCL picks a call's algorithm and protocol by the least time in its own model (NCCL v2.30
src/graph/tuning.cc, ncclTopoTuneModel and ncclTopoGetAlgoTime): time = latency + bytes /
(1000 x bandwidth), with per-algorithm latencies and bandwidths from constant tables and the
channels its topology search found. netwall's GPU profiles are fitted to published runs and
are not NCCL's model; picking by them moved NVLS's start to 16-32 MiB on 8 x H100, where
NCCL picks it from 2 MiB (nccl-tests issue 309, printed by NCCL_DEBUG). So the choice is
made here, by NCCL's model with NCCL's constants, and the emulation then runs the chosen
algorithm with the profile's fitted costs.

What is ported: the ring (LL, LL128, Simple) and NVLS (Simple only) terms of a single-node
all-reduce (nNodes = 1: one NVLS domain, an NVL72 under MNNVL included), the LL128
enabling rule for Hopper and Blackwell, and the NVLS graph's channels and speed from
src/graph/search.cc. Not ported: the tree (on one node NCCL's model ranks it below the
ring), CollNet and PAT (not on one node), environment overrides. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

#: NCCL v2.30 src/graph/tuning.cc ncclTunerConstantsDefaults.baseLatencies[Ring], us.
RING_BASE_US = {"LL": 6.6, "LL128": 14.0, "Simple": 8.4}
#: Same file, hwLatencies[NCCL_HW_NVLINK][Ring], us per step.
RING_STEP_US = {"LL": 0.6, "LL128": 1.9, "Simple": 3.4}
#: Same file, hwLatencies[NCCL_HW_NVLINK][NVLS][Simple]; NVLS's baseLatency is 0 and its
#: latency is this one term on one node ("latencies = intraLat").
NVLS_US = 25.0
#: src/include/device.h NCCL_MAX_NVLS_ARITY: a single-node NVLS graph has min(this, GPUs)
#: channels (search.cc: maxChannels, and minChannels forced to it "to pull evenly from all
#: GPUs").
NVLS_MAX_ARITY = 32


@dataclass(frozen=True)
class Arch:
    """NCCL's constants for one GPU architecture (tuning.cc, search.cc)."""

    ll_max_gbps: float  # llMaxBws[arch][N1]: the ring LL bus bandwidth cap on one node
    ll128_channel_gbps: float  # perChMaxRingLL128Bws[arch][N1], per channel
    nvls_efficiency: float  # nvlsEfficiency[arch]
    speeds: tuple[float, ...]  # the intra-node speed array the graph search walks, GB/s


ARCHS = {
    "hopper": Arch(141.0, 36.7, 0.85,
                   (60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 15.0, 12.0, 11.0, 6.0, 3.0)),
    "blackwell": Arch(282.0, 40.0, 0.74,
                      (90.0, 80.0, 70.0, 60.0, 50.0, 45.0, 40.0, 30.0, 24.0, 20.0, 19.0,
                       18.0)),
}


@dataclass(frozen=True)
class Tuning:
    """What NCCL's model knows of one GPU (a GPU profile's `nccl` section)."""

    arch: str  # a key of ARCHS
    nvlink_gbytes_per_s: float  # the GPU's NVLink bandwidth as NCCL's topology sees it
    ring_channels: int  # the ring graph's channels (nChannels after duplication)
    ring_channel_gbytes_per_s: float  # and its bwIntra per channel


def ring_us(t: Tuning, ranks: int, size: int) -> dict[str, float]:
    """NCCL's modelled time of a ring all-reduce of `size` bytes per protocol, us."""
    arch, steps = ARCHS[t.arch], 2 * (ranks - 1)
    bus = t.ring_channels * t.ring_channel_gbytes_per_s
    bus_by = {"LL": min(arch.ll_max_gbps, bus * 0.5),
              "LL128": min(bus * 0.92, t.ring_channels * arch.ll128_channel_gbps),
              "Simple": bus}
    return {p: RING_BASE_US[p] + steps * RING_STEP_US[p] + size / (1000 * b * ranks / steps)
            for p, b in bus_by.items()}


def nvls_gbps(t: Tuning, ranks: int) -> float:
    """NCCL's modelled NVLS bus bandwidth on `ranks` GPUs of one domain: min(32, ranks)
    channels at the fastest speed of the search's array whose channels fit the GPU's NVLink
    bandwidth (search.cc; the search's later passes, which can move the speed, are not
    ported), each at nvlsEfficiency x (channels - 1)/channels, doubled ("AllReduce
    pipelines two operations")."""
    arch = ARCHS[t.arch]
    channels = min(NVLS_MAX_ARITY, ranks)
    speed = next((s for s in arch.speeds if s * channels <= t.nvlink_gbytes_per_s),
                 arch.speeds[-1])
    return channels * speed * arch.nvls_efficiency * (channels - 1) / channels * 2


def nvls_us(t: Tuning, ranks: int, size: int) -> float:
    """NCCL's modelled time of an NVLS all-reduce, us (its busBw over the ring's step ratio,
    as tuning.cc converts it)."""
    return NVLS_US + size / (1000 * nvls_gbps(t, ranks) * ranks / (2 * (ranks - 1)))


def picks_nvls(t: Tuning, ranks: int, size: int) -> bool:
    """Whether NCCL's model runs this all-reduce with NVLS rather than the ring (NVLS needs
    at least 2 channels, so 2 GPUs)."""
    return ranks >= 2 and nvls_us(t, ranks, size) < min(ring_us(t, ranks, size).values())


#: The sizes the choice is described over: powers of two, 4 B to 16 GiB.
DESCRIBED = tuple(1 << k for k in range(2, 35))


def nvls_sizes(t: Tuning, ranks: int) -> tuple[int, int] | None:
    """The powers of two NCCL's model runs with NVLS on `ranks` GPUs, as (first, last), or
    None when it never does."""
    picked = [s for s in DESCRIBED if picks_nvls(t, ranks, s)]
    return (picked[0], picked[-1]) if picked else None
