"""A request proven on the live cluster: the proof loop (emulator.models.proof) wired to the
cluster's batches, the pricing's dilations and the verdict.

A run's calls run at the dilation this host needs for them (or the fixed one), after their
warm-up at a tenth of it (whose first calls are the verified ones); the timed batch is run
again at a larger dilation (the probe), on as many calls as the batch's own spread requires
(emulator.models.sampling), and must take the same real time; with an automatic dilation a
distorted result is measured again.
A trace is one program (its calls overlap), proven on every call and on its total; one whose
calls alone were distorted is measured once more at the same dilation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emulator.batches import Batches, ProbeBatch, TimedBatch, TraceBatch
from emulator.models import sampling
from emulator.models.plan import Plan
from emulator.models.pricing import Pricing, untimed_dilation
from emulator.models.proof import Rule, Trial, prove
from emulator.models.spec import ReplayRequest, RunRequest
from emulator.models.verdict import Probe, TraceVerdict, Verdict, judge, judge_trace


@dataclass(frozen=True)
class Prover:
    """Proves requests on one running cluster. `dilate` puts the network at a dilation and
    returns its plan there; `chase`: whether a distorted result may be measured again (not
    when the user fixed the dilation)."""

    batches: Batches
    dilate: Callable[[float], Plan]
    pricing: Pricing
    tolerance: float
    chase: bool

    def run(self, request: RunRequest, lossy: bool
            ) -> tuple[list[Trial[TimedBatch, ProbeBatch, Verdict]], bool | None]:
        """Every attempt (the result's last) and whether the verified calls were right
        (None: none verified). `lossy`: the links lose frames, so repairs are expected."""
        batches, dilate = self.batches, self.dilate
        repairs = bool(request.faults) or lossy  # measured once: no second attempt
        first = self.pricing.dilation(request.cost, once=repairs)
        # The verified calls are the warm-up's first ones (a program saved; they warm up
        # as well), unless the user asked for no warm-up: then the timed calls run cold,
        # and the verified ones follow them, as nccl-tests runs its check.
        early = request.check_iters if request.warmup else 0
        warm = batches.calls(dilate(untimed_dilation(first)), request,
                             max(request.warmup, early), checked=early)

        def probed(probe_d: float, batch: TimedBatch) -> ProbeBatch:
            """As many calls as the batch's spread requires; all of them where faults or
            losses make each call's repairs differ."""
            count = request.iters if repairs else sampling.probe_calls(
                sampling.relative_spread(batch.call_times), request.iters, batch.dilation,
                probe_d, self.tolerance)
            return batches.probe(dilate(probe_d), request, count)

        def judged(batch: TimedBatch, probed: ProbeBatch | None, d: float, probe_d: float
                   ) -> Verdict:
            if probed is None:
                probe = Probe(probe_d, None, self.tolerance, "the probe was turned off")
            else:
                sample = sampling.sample(batch.call_times, probed.call_times, d, probe_d)
                probe = Probe(probe_d, probed.time_s, self.tolerance, calls=sample.probed,
                              margin=sample.margin)
            return judge(batch.cpu_before, batch.cpu_after, batch.links, batch.shapes,
                         batch.wall_s, batch.retransmitted_frames, loss_expected=repairs,
                         time_s=batch.time_s, dilation=d, probe=probe,
                         repaired=batch.retransmitted_frames > 0, floor=batch.floor)

        trials = prove(first, lambda d, _: batches.timed(dilate(d), request),
                       probed if request.prove else None, judged,
                       Rule(self.tolerance, chase=self.chase and not repairs))
        final = trials[-1].dilation
        late = request.check_iters - early
        checked = batches.calls(dilate(untimed_dilation(final)), request, late,
                                checked=late) if late else warm
        dilate(final)
        return trials, all(checked.checks.values()) if request.check_iters else None

    def trace(self, request: ReplayRequest
              ) -> list[Trial[TraceBatch, TraceBatch, TraceVerdict]]:
        """Every attempt at the trace, the result's last. One dilation serves the whole
        program, chosen for the trace as a whole (after an untimed warm-up at a tenth of
        it, as a run's calls have); every call and the total must keep their
        real times at the probe dilation (verdict.judge_trace). Only the total is worth a
        larger dilation. Calls distorted on their own (one late wake-up, which a rank
        carries into its later calls) are measured once more at the same dilation; if they
        are distorted again, their flag says so."""
        batches, dilate = self.batches, self.dilate
        first = self.pricing.dilation(request.cost)
        # A warm-up at a tenth of it, untimed: the agents' first run of a trace touches its
        # buffers for the first time (call 0 read 38-47% slow at D 2000, its probe warm).
        batches.trace(dilate(untimed_dilation(first)), request, False, warm_up=True)
        trials = prove(
            first,
            lambda d, attempt: batches.trace(dilate(d), request, request.check and not attempt),
            (lambda d, _: batches.trace(dilate(d), request, False)) if request.prove else None,
            lambda run, probe, d, probe_d: judge_trace(
                run.times, probe and probe.times, run.total_s, probe and probe.total_s, d,
                probe_d, self.tolerance),
            Rule(self.tolerance, chase=self.chase, repeat=True))
        dilate(trials[-1].dilation)
        return trials
