"""Pipeline-parallel workloads: 1F1B over stages, alone or inside 3D parallelism.

A pipeline cuts the model's layers into `pp` stages; micro-batches flow forward (each stage
sends its activations to the next) and their gradients flow back (each stage sends the
gradient of its input to the previous one). PipeDream-Flush's 1F1B schedule (Narayanan et
al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters", sec. 2.2) runs on
stage s: min(pp - s - 1, m) warm-up forwards, then alternately one forward and one backward,
then the remaining backwards. 3D parallelism (ibid., sec. 3) adds tensor parallelism inside
each stage (Megatron's all-reduces, traffic.workloads) and data parallelism across pipeline
replicas (a gradient all-reduce per stage at the end of the step).

Each (replica, stage) is a cell: its tensor-parallel ranks. A cell's operations (a forward or
a backward of one micro-batch) run one after another: an operation waits (`after`) for the
previous one and for the send that brings its input, computes (the `gap_us` of its first
call; a send's gap is its sender's), and ends with the sends of its output, one per
tensor-parallel rank to the same position in the neighbouring stage (Megatron's
scatter-gather: each sends 1/tp of the activations). Activations of stage s go out on stream
a<s>, gradients on stream g<s>: every rank's incoming and outgoing traffic run on their own
streams, as NCCL's point-to-point calls run on their own channels. Pure data, no root.
"""

from __future__ import annotations

from collections.abc import Sequence

from foundation.errors import NetwallError
from traffic.shapes import (
    ACT_BYTES,
    GPT3_XL_HIDDEN,
    GPT3_XL_LAYERS,
    GPT3_XL_SEQ,
    GRAD_BYTES,
    Builder,
    align,
    blocks,
    layer_flops,
    us,
)
from traffic.trace import Call

Cell = tuple[int, ...]  # the tensor-parallel ranks of one stage of one pipeline replica


def one_f_one_b(stages: int, stage: int, micro_batches: int) -> list[tuple[str, int]]:
    """Stage `stage`'s operations in 1F1B order: ("F", i) and ("B", i) for micro-batch i."""
    warm = min(stages - stage - 1, micro_batches)
    ops = [("F", i) for i in range(warm)]
    for i in range(micro_batches - warm):
        ops += [("F", warm + i), ("B", i)]
    return ops + [("B", i) for i in range(micro_batches - warm, micro_batches)]


def pp_1f1b(ranks: int, groups, scale: float, pp: int = 0, micro_batches: int = 8,
            layers: int = GPT3_XL_LAYERS, hidden: int = GPT3_XL_HIDDEN, seq: int = GPT3_XL_SEQ,
            micro_batch: int = 1) -> list[Call]:
    """Pipeline parallelism with 1F1B: `pp` stages (default: one per rack, else all ranks),
    each a block of ranks/pp ranks (or a rack); pipeline replica j is the j-th rank of every
    stage, and replicas all-reduce each stage's gradients at the end (data parallelism).
    GPT-3 XL-shaped layers, `micro_batches` micro-batches of `micro_batch` sequences."""
    if groups is not None and not pp:
        stages = _equal("pp-1f1b", groups)
    else:
        pp = int(pp or ranks)
        if ranks % pp:
            raise NetwallError(f"workload pp-1f1b: {ranks} ranks are not a multiple of pp={pp}")
        width = ranks // pp
        stages = tuple(tuple(range(s * width, (s + 1) * width)) for s in range(pp))
    if len(stages) < 2:
        raise NetwallError("workload pp-1f1b: needs at least 2 stages (pp or racks)")
    cells = [[(stage[d],) for stage in stages] for d in range(len(stages[0]))]
    return _pipeline(cells, scale, int(micro_batches), int(layers), int(hidden), int(seq),
                     int(micro_batch))


def parallel_3d(ranks: int, groups, scale: float, tp: int = 0, pp: int = 2,
                micro_batches: int = 4, layers: int = GPT3_XL_LAYERS,
                hidden: int = GPT3_XL_HIDDEN, seq: int = GPT3_XL_SEQ,
                micro_batch: int = 1) -> list[Call]:
    """Data x tensor x pipeline parallelism: tensor-parallel groups are the racks (or
    domains, or blocks of `tp` ranks; default min(4, ranks)); `pp` consecutive groups form one
    pipeline replica, stage s in group s, so activations and gradients cross between
    neighbouring racks; the replicas (groups / pp of them) are the data-parallel dimension."""
    tp_groups = _equal("3d", blocks("3d", ranks, groups, tp or min(4, ranks), "tp"))
    pp = int(pp)
    if pp < 2 or len(tp_groups) % pp:
        raise NetwallError(f"workload 3d: {len(tp_groups)} tensor-parallel groups (racks or "
                           f"blocks of tp) do not split into pipelines of pp={pp} >= 2 stages")
    cells = [list(tp_groups[d * pp:(d + 1) * pp]) for d in range(len(tp_groups) // pp)]
    return _pipeline(cells, scale, int(micro_batches), int(layers), int(hidden), int(seq),
                     int(micro_batch))


def _equal(name: str, groups: Sequence[Sequence[int]]) -> tuple[Cell, ...]:
    out = tuple(tuple(g) for g in groups)
    if len({len(g) for g in out}) != 1:
        raise NetwallError(f"workload {name}: all racks (groups) must have the same size")
    return out


def _pipeline(cells: list[list[Cell]], scale: float, micro_batches: int, layers: int,
              hidden: int, seq: int, micro_batch: int) -> list[Call]:
    """The calls of one 1F1B step over `cells[replica][stage]`, then the data-parallel
    gradient all-reduces; operations are emitted in an order that respects every dependency
    (an operation after the one that sends its input), so `after` names earlier calls."""
    stages, width = len(cells[0]), len(cells[0][0])
    per_stage = layers / stages
    attn, mlp = layer_flops(hidden, seq, micro_batch)
    act = micro_batch * seq * hidden * ACT_BYTES * scale  # one micro-batch's activations
    send_bytes = align(act / width, 2)  # whole float32 elements
    forward = [(attn / width, True), (mlp / width, True)] * round(per_stage) if width > 1 \
        else [(per_stage * (attn + mlp), False)]
    backward = [(2 * f, ex) for f, ex in reversed(forward)]
    b = Builder()
    ops = [one_f_one_b(stages, s, micro_batches) for s in range(stages)]
    done = [0] * stages
    sends: dict[tuple[str, int, int, int], list[int]] = {}  # (kind, i, stage, replica) -> ids
    last: dict[tuple[int, int], list[int]] = {}  # (replica, stage) -> calls ending its last op
    pending: dict[tuple[int, int], float] = {}  # compute (us) not yet placed before a call
    while any(done[s] < len(ops[s]) for s in range(stages)):
        for s in range(stages):
            if done[s] == len(ops[s]):
                continue
            kind, i = ops[s][done[s]]
            source = s - 1 if kind == "F" else s + 1
            if 0 <= source < stages and (kind, i, source, 0) not in sends:
                continue  # its input is not sent yet
            done[s] += 1
            to = s + 1 if kind == "F" else s - 1
            for d, replica in enumerate(cells):
                cell = replica[s]
                after = last.get((d, s), []) + sends.get((kind, i, source, d), [])
                for flops, exchange in forward if kind == "F" else backward:
                    pending[d, s] = pending.get((d, s), 0.0) + us(flops * scale)
                    if exchange:
                        after = [b.add("allreduce", align(act, width), cell,
                                       f"tp{d * stages + s}", "tp", pending.pop((d, s)),
                                       after)]
                if 0 <= to < stages:
                    gap = pending.pop((d, s), 0.0)
                    after = [_send(b, replica, d, t, s, to, send_bytes, gap, after, kind)
                             for t in range(width)]
                    sends[kind, i, s, d] = after
                last[d, s] = after
    if len(cells) > 1:  # data parallelism: each stage's gradient shard across the replicas
        grads = 12 * hidden * hidden * per_stage / width * GRAD_BYTES * scale
        for s in range(stages):
            for t in range(width):
                group = tuple(replica[s][t] for replica in cells)
                after = sorted({a for d in range(len(cells)) for a in last[d, s]})
                b.add("allreduce", align(grads, len(group)), group, f"dp{s * width + t}",
                      "dp", pending.get((0, s), 0.0), after)
    else:  # one replica: the step ends with the gradient norm's all-reduce over the model
        # (Megatron's clip_grad_norm), after every stage's last backward; stage 0's last
        # backwards (no send follows them) are its gap
        group = tuple(r for cell in cells[0] for r in cell)
        after = sorted({a for s in range(stages) for a in last[0, s]})
        b.add("allreduce", align(4, len(group)), group, "mp0", "dp",
              max(pending.values(), default=0.0), after)
    return b.calls


def _send(b: Builder, replica: list[Cell], d: int, t: int, stage: int, to: int, nbytes: int,
          gap: float, after: list[int], kind: str) -> int:
    """One send of tensor-parallel position t from `stage` to `to`, on the pipeline
    communicator of that position (its ranks in stage order)."""
    group = tuple(cell[t] for cell in replica)
    call = Call(id=len(b.calls), collective="send", algorithm=None, bytes=nbytes, group=group,
                comm=f"pp{d * len(replica[0]) + t}", stream=f"{'a' if kind == 'F' else 'g'}"
                f"{stage}", gap_us=gap, after=tuple(after), root=stage, peer=to)
    b.calls.append(call)
    return call.id
