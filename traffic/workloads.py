"""Built-in replay workloads: the collective calls of typical training steps, as traces.

Each workload turns a few model parameters into a list of `traffic.trace.Call`s. The defaults
are published model shapes (cited beside each number); compute gaps come from FLOP counts and
an assumed per-GPU throughput (an illustrative choice, stated below). `scale` multiplies every
byte count (bucket sizes included) and every compute gap: the same calls, each smaller and
shorter, so a step keeps its shape and its compute-to-communication ratio but runs faster in
the emulator. Byte counts are rounded down to multiples of
4 x group size (whole float32 elements per rank), never below that.

    workload("dp-tp", ranks=8, groups=[[0, 1, 2, 3], [4, 5, 6, 7]], scale=0.01, layers=4)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from foundation.errors import NetwallError
from foundation.inputs import is_whole, shown
from traffic.pipeline import parallel_3d, pp_1f1b
from traffic.shapes import (
    ACT_BYTES,
    DDP_BUCKET_MIB,
    DDP_FIRST_BUCKET_MIB,
    GPT3_XL_HIDDEN,
    GPT3_XL_LAYERS,
    GPT3_XL_PARAMS,
    GPT3_XL_SEQ,
    GRAD_BYTES,
    LIMITS,
    MIB,
    MIXTRAL_FFN,
    MIXTRAL_HIDDEN,
    MIXTRAL_LAYERS,
    MIXTRAL_TOP_K,
    Builder,
    align,
    blocks,
    layer_flops,
    us,
)
from traffic.trace import MAX_CALLS, Call

MAX_SCALE = 1000.0  # bytes and gaps x this; past it, one call outgrows any host's memory

def workload(name: str, ranks: int, groups: Sequence[Sequence[int]] | None = None,
             scale: float = 1.0, **params) -> list[Call]:
    """The calls of built-in workload `name` on `ranks` ranks.

    `groups` are the racks of a racks:RxG topology (tensor-parallel / expert-parallel groups);
    without them, consecutive blocks of the `tp` (or `ep`) parameter. `steps` (default 1)
    repeats the step, numbering calls on and setting `step`.
    """
    if name not in WORKLOADS:
        raise NetwallError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
    fn = WORKLOADS[name]
    accepted = [p for p in inspect.signature(fn).parameters if p not in ("ranks", "groups",
                                                                         "scale")]
    for key in params:
        if key not in accepted + ["steps"]:
            raise NetwallError(f"workload {name}: unknown parameter {key!r} "
                               f"(known: {', '.join(accepted + ['steps'])})")
    steps = params.pop("steps", 1)
    if not is_whole(ranks) or ranks < 2:
        raise NetwallError(f"workload {name}: needs at least 2 ranks, got {ranks}")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or \
            not 0 < scale <= MAX_SCALE:
        raise NetwallError(f"workload {name}: scale must be a number > 0 and <= "
                           f"{MAX_SCALE:g}, got {shown(scale)}")
    if not is_whole(steps) or not 1 <= steps <= MAX_CALLS:
        raise NetwallError(f"workload {name}: steps must be an integer from 1 to {MAX_CALLS}, "
                           f"got {shown(steps)}")
    for key, value in params.items():
        default = inspect.signature(fn).parameters[key].default
        high = LIMITS.get(key, math.inf)
        if isinstance(default, str):
            ok = isinstance(value, str)
        elif is_whole(default):
            ok = is_whole(value) and 0 < value <= high
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value) and 0 < value <= high
        if not ok:
            raise NetwallError(f"workload {name}: parameter {key} must be "
                               f"{_kind(default)}{f' and <= {high:g}' if high < math.inf else ''}"
                               f", got {shown(value)}")
    one = fn(ranks, _groups(name, ranks, groups), float(scale), **params)
    if len(one) * steps > MAX_CALLS:
        raise NetwallError(f"workload {name}: {steps} steps of {len(one)} calls is more than "
                           f"{MAX_CALLS} calls")
    out = list(one)
    for s in range(1, steps):
        shift = s * len(one)
        out += [replace(c, id=c.id + shift, after=tuple(a + shift for a in c.after), step=s)
                for c in one]
    return out


def _kind(default: object) -> str:
    if isinstance(default, str):
        return "a string"
    return "an integer > 0" if is_whole(default) else "a number > 0"



def _groups(name: str, ranks: int, groups: Sequence[Sequence[int]] | None
            ) -> tuple[tuple[int, ...], ...] | None:
    if groups is None:
        return None
    out = tuple(tuple(g) for g in groups)
    flat = [r for g in out for r in g]
    if any(not is_whole(r) or r < 0 or r >= ranks for r in flat):
        raise NetwallError(f"workload {name}: groups must hold ranks 0..{ranks - 1}")
    if len(set(flat)) != len(flat):
        raise NetwallError(f"workload {name}: a rank is in two groups")
    return out


# ------------------------------------------------------------------------------------------
def dp_step(ranks: int, groups, scale: float, params: float = GPT3_XL_PARAMS,
            bucket_mib: float = DDP_BUCKET_MIB, first_bucket_mib: float = DDP_FIRST_BUCKET_MIB,
            tokens: int = GPT3_XL_SEQ) -> list[Call]:
    """Data parallelism: the gradient all-reduces of one backward pass, as PyTorch DDP does.

    The gradients (params x 4 bytes, fp32) are cut into DDP buckets, a first bucket of
    `first_bucket_mib` and then `bucket_mib` each (the last takes the rest; all x scale),
    all-reduced over
    all ranks on one stream. Before each bucket the stream spends that bucket's backward
    compute: 4 FLOPs per parameter per token (backward = 2x forward's 2, Kaplan et al. 2020),
    `tokens` tokens per GPU (default one GPT-3 sequence), at FLOP_RATE. One stream means
    compute and communication do not overlap here: the step time is their sum.
    """
    n = ranks
    total = align(params * scale * GRAD_BYTES, n)
    sizes = []
    left = total
    cap = align(first_bucket_mib * MIB * scale, n)
    rest = align(bucket_mib * MIB * scale, n)
    if 1 + max(0, left - cap) / rest > MAX_CALLS:  # counted before the loop that makes them
        raise NetwallError(f"workload dp-step: {total} bytes of gradients in buckets of {rest} "
                           f"bytes is more than {MAX_CALLS} calls")
    while left > 0:
        sizes.append(min(left, cap))
        left -= sizes[-1]
        cap = align(bucket_mib * MIB * scale, n)
    b = Builder()
    for size in sizes:
        b.add("allreduce", size, (), "world", "0",
              gap_us=us(4 * (size / GRAD_BYTES) * tokens))
    return b.calls


def _tp_calls(b: Builder, groups, scale: float, layers: int, hidden: int, seq: int,
              micro_batch: int, mode: str, stream_of: Callable[[int], str],
              layer_done: Callable[[int, list[int]], None] | None = None) -> None:
    """Megatron-LM tensor parallelism (Shoeybi et al. 2019, sec. 3): per layer, one all-reduce
    of the activations after attention and one after the MLP in the forward pass, and the
    same two in the backward pass, within every group at once. mode "rs-ag": each all-reduce
    becomes a reduce-scatter then an all-gather of the same activations (sequence
    parallelism, Korthikanti et al. 2022). Compute (split over the group's ranks; backward
    2x forward) precedes each exchange."""
    if mode not in ("allreduce", "rs-ag"):
        raise NetwallError(f"workload: mode must be 'allreduce' or 'rs-ag', got {mode!r}")
    attn, mlp = layer_flops(hidden, seq, micro_batch)
    act = micro_batch * seq * hidden * ACT_BYTES * scale  # one layer's activations, bytes
    phases = []  # (layer, compute FLOPs before the exchange, backward?)
    for layer in range(layers):
        phases += [(layer, attn, False), (layer, mlp, False)]
    for layer in reversed(range(layers)):
        phases += [(layer, 2 * mlp, True), (layer, 2 * attn, True)]
    for i, (layer, flops, backward) in enumerate(phases):
        ids = []
        for k, g in enumerate(groups):
            gap = us(flops * scale / len(g))
            nbytes = align(act, len(g))
            if mode == "allreduce":
                ids.append(b.add("allreduce", nbytes, g, f"tp{k}", stream_of(k), gap))
            else:
                b.add("reducescatter", nbytes, g, f"tp{k}", stream_of(k), gap)
                ids.append(b.add("allgather", nbytes, g, f"tp{k}", stream_of(k)))
        last_of_layer = backward and (i + 1 == len(phases) or phases[i + 1][0] != layer)
        if layer_done is not None and last_of_layer:
            layer_done(layer, ids)


def tp_layer(ranks: int, groups, scale: float, tp: int = 0, layers: int = GPT3_XL_LAYERS,
             hidden: int = GPT3_XL_HIDDEN, seq: int = GPT3_XL_SEQ, micro_batch: int = 1,
             mode: str = "allreduce") -> list[Call]:
    """Tensor parallelism inside each group (rack, or block of `tp` ranks; default
    min(4, ranks)): every layer's activation exchanges, forward and backward, of a
    GPT-3 XL-shaped model; every group is its own communicator and stream, all concurrent."""
    groups = blocks("tp-layer", ranks, groups, tp or min(4, ranks), "tp")
    b = Builder()
    _tp_calls(b, groups, scale, int(layers), int(hidden), int(seq), int(micro_batch), mode,
              lambda k: f"tp{k}")
    return b.calls


def moe_a2a(ranks: int, groups, scale: float, ep: int = 0, layers: int = MIXTRAL_LAYERS,
            hidden: int = MIXTRAL_HIDDEN, ffn: int = MIXTRAL_FFN, top_k: int = MIXTRAL_TOP_K,
            tokens: int = 4096, capacity_factor: float = 1.0) -> list[Call]:
    """Mixture of experts with expert parallelism (GShard, Lepikhin et al. 2020): per MoE
    layer an all-to-all dispatches each token to its top-k experts and another combines the
    results, and the backward pass repeats both, within each expert-parallel group (rack, or
    block of `ep` ranks; default all ranks).

    Bytes per all-to-all (nccl-tests: a rank's whole send buffer): tokens x top_k x hidden x
    2 (bf16) x capacity_factor, i.e. balanced routing (Switch Transformer, Fedus et al. 2021,
    trains with capacity factors 1.0-1.25; Mixtral is dropless). `tokens` per GPU is an
    illustrative one 4096-token sequence. Compute before dispatch: attention (Narayanan et
    al. 2021); before combine: the experts' SwiGLU FFN, 3 matrices of hidden x ffn per
    chosen expert; backward 2x forward."""
    groups = blocks("moe-a2a", ranks, groups, ep or ranks, "ep")
    attn, _ = layer_flops(int(hidden), int(tokens), 1)
    expert = 2 * 3 * hidden * ffn * tokens * top_k
    a2a = tokens * top_k * hidden * ACT_BYTES * capacity_factor * scale
    phases = []
    for _ in range(int(layers)):
        phases += [attn, expert]
    for _ in range(int(layers)):
        phases += [2 * expert, 2 * attn]
    b = Builder()
    for flops in phases:
        for k, g in enumerate(groups):
            b.add("alltoall", align(a2a, len(g)), g, f"ep{k}", f"ep{k}", us(flops * scale))
    return b.calls


def dp_tp(ranks: int, groups, scale: float, tp: int = 0, layers: int = GPT3_XL_LAYERS,
          hidden: int = GPT3_XL_HIDDEN, seq: int = GPT3_XL_SEQ, micro_batch: int = 1,
          mode: str = "allreduce", bucket_mib: float = DDP_BUCKET_MIB) -> list[Call]:
    """Tensor parallelism inside racks and data parallelism across them, concurrently.

    Stream "tp": tp-layer's exchanges inside each rack (comm tp<k>). Stream "dp": the
    gradient all-reduces of each rank's model shard across racks, among the ranks with the
    same position in every rack (comm dp<j>). A layer's shard holds 12 h^2 / tp parameters
    (Narayanan et al. 2021: 12 l h^2 for l layers, embeddings left out), fp32 gradients,
    gathered in backward order into DDP buckets of `bucket_mib` (x scale); a bucket's
    all-reduce waits (`after`) for the backward exchanges of the layer that filled it, then
    overlaps with the remaining backward layers on the other stream."""
    racks = blocks("dp-tp", ranks, groups, tp or min(4, ranks), "tp")
    if len(racks) < 2:
        raise NetwallError("workload dp-tp: needs at least 2 racks (groups) for data "
                           "parallelism")
    size = len(racks[0])
    if any(len(r) != size for r in racks):
        raise NetwallError("workload dp-tp: all racks (groups) must have the same size")
    dp_groups = [tuple(rack[j] for rack in racks) for j in range(size)]
    shard = 12 * hidden * hidden / size * GRAD_BYTES * scale  # one layer's gradient bytes
    bucket_bytes = bucket_mib * MIB * scale
    b = Builder()
    pending = {"bytes": 0.0}

    def flush(after: list[int]) -> None:
        for j, g in enumerate(dp_groups):
            b.add("allreduce", align(pending["bytes"], len(g)), g, f"dp{j}", "dp", 0.0, after)
        pending["bytes"] = 0.0

    def layer_done(layer: int, ids: list[int]) -> None:
        pending["bytes"] += shard
        if pending["bytes"] >= bucket_bytes or layer == 0:
            flush(ids)

    _tp_calls(b, racks, scale, int(layers), int(hidden), int(seq), int(micro_batch), mode,
              lambda k: "tp", layer_done)
    return b.calls


WORKLOADS: dict[str, Callable[..., list[Call]]] = {
    "dp-step": dp_step,
    "tp-layer": tp_layer,
    "moe-a2a": moe_a2a,
    "dp-tp": dp_tp,
    "pp-1f1b": pp_1f1b,
    "3d": parallel_3d,
}
