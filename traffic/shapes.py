"""What the built-in workloads are made of: published model shapes, FLOP and byte counts,
and a builder of calls. Shared by traffic.workloads and traffic.pipeline; pure data."""

from __future__ import annotations

from collections.abc import Sequence

from foundation.errors import NetwallError
from traffic.trace import MAX_CALLS, Call

MIB = 1 << 20

# --- Model shape defaults: GPT-3 XL (Brown et al. 2020, "Language Models are Few-Shot
# Learners", Table 2.1): 1.3B parameters, 24 layers, d_model 2048, context 2048 tokens.
GPT3_XL_PARAMS = 1.3e9
GPT3_XL_LAYERS = 24
GPT3_XL_HIDDEN = 2048
GPT3_XL_SEQ = 2048

# --- Mixture of experts defaults: Mixtral 8x7B (Jiang et al. 2024, "Mixtral of Experts",
# Table 1): d_model 4096, 32 layers, FFN hidden 14336 (SwiGLU), 8 experts, top-2 routing.
MIXTRAL_HIDDEN = 4096
MIXTRAL_LAYERS = 32
MIXTRAL_FFN = 14336
MIXTRAL_TOP_K = 2

# --- PyTorch DistributedDataParallel defaults (torch.nn.parallel.DistributedDataParallel):
# bucket_cap_mb=25, and the first bucket is 1 MiB (torch.distributed._DEFAULT_FIRST_BUCKET_BYTES).
DDP_BUCKET_MIB = 25
DDP_FIRST_BUCKET_MIB = 1

GRAD_BYTES = 4  # fp32 gradients (DDP all-reduces the parameters' dtype; fp32 master weights)
ACT_BYTES = 2  # bf16/fp16 activations under mixed precision (Micikevicius et al. 2018)

# Illustrative per-GPU throughput: about half the 312 TFLOP/s dense bf16 peak of an NVIDIA
# A100 (datasheet), i.e. a model-FLOPs utilisation near the ~50% large runs report (PaLM,
# Chowdhery et al. 2022: 46%). Only the compute gaps depend on it.
FLOP_RATE = 150e12


#: The most each built-in workload parameter may be (docs/replay.md): past any published
#: model (GPT-3 175B: 96 layers, hidden 12288), and checked before a workload is built, so
#: no loop over layers or micro-batches runs long before the Builder's MAX_CALLS stops it.
LIMITS: dict[str, float] = {
    "layers": 1000, "hidden": 1 << 20, "ffn": 1 << 22, "seq": 1 << 22, "tokens": 1 << 22,
    "micro_batch": 1 << 16, "micro_batches": 1000, "top_k": 256, "tp": 1024, "ep": 1024,
    "pp": 1024, "params": 1e13, "bucket_mib": 1 << 20, "first_bucket_mib": 1 << 20,
    "capacity_factor": 100.0,
}


def blocks(name: str, ranks: int, groups, size: int, param: str) -> tuple[tuple[int, ...], ...]:
    """The given groups, or consecutive blocks of `size` ranks; every group >= 2 ranks."""
    if groups is None:
        size = int(size)
        if ranks % size:
            raise NetwallError(f"workload {name}: {ranks} ranks are not a multiple of "
                               f"{param}={size}")
        groups = tuple(tuple(range(b, b + size)) for b in range(0, ranks, size))
    if any(len(g) < 2 for g in groups):
        raise NetwallError(f"workload {name}: every group needs at least 2 ranks "
                           f"({param} or the racks' size)")
    return groups


def align(nbytes: float, n: int) -> int:
    """Round down to whole float32 elements per rank: a multiple of 4 x n, at least 4 x n."""
    unit = 4 * n
    return max(unit, int(nbytes) // unit * unit)


def us(flops: float) -> float:
    """Compute time in microseconds at FLOP_RATE, rounded to nanoseconds."""
    return round(flops / FLOP_RATE * 1e6, 3)


class Builder:
    """The calls of one step, in order; it stops a workload that makes more than MAX_CALLS
    (a trace's bound) as it makes them, not after."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def add(self, collective: str, nbytes: int, group: tuple[int, ...], comm: str, stream: str,
            gap_us: float = 0.0, after: Sequence[int] = ()) -> int:
        if len(self.calls) >= MAX_CALLS:
            raise NetwallError(f"workload: one step would make more than {MAX_CALLS} calls "
                               "(fewer layers, micro-batches or ranks)")
        call = Call(id=len(self.calls), collective=collective, algorithm=None, bytes=nbytes,
                    group=group, comm=comm, stream=stream, gap_us=gap_us, after=tuple(after))
        self.calls.append(call)
        return call.id


def layer_flops(hidden: int, seq: int, micro_batch: int) -> tuple[float, float]:
    """Forward FLOPs of a transformer layer's attention block and MLP block (Narayanan et al.
    2021, "Efficient Large-Scale Language Model Training on GPU Clusters", sec. 5.1:
    24Bsh^2 + 4Bs^2h per layer = attention 8Bsh^2 + 4Bs^2h, MLP (h -> 4h -> h) 16Bsh^2)."""
    b, s, h = micro_batch, seq, hidden
    return 8 * b * s * h * h + 4 * b * s * s * h, 16 * b * s * h * h
