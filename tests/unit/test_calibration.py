"""The host calibration: finding each reference call's faithful dilation, and the per-machine
cache."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from emulator.models import calibration
from emulator.models.calibration import (
    Calibration,
    figures,
    load,
    measure,
    save,
    spread,
    threshold,
)
from emulator.models.dilation import CallCost, choose

LAT_MODEL_S, LAT_STEPS = 14 * (1 << 17) * 8 / 800e9, 14  # 1 MiB ring all-reduce on 8 x 800G
INJECTION = 6400.0  # Gb/s: 8 ranks at 800 Gb/s


def cliff(at: float, calls: list | None = None):
    """`within` for a host that keeps a call faithful from dilation `at` on."""
    def within(d: float) -> bool:
        if calls is not None:
            calls.append(d)
        return d >= at
    return within


@pytest.mark.parametrize("at", [130.0, 730.0, 4100.0])
def test_the_threshold_is_found_to_within_about_a_tenth(at):
    found, rounds = threshold(cliff(at), calibration.BANDWIDTH_LADDER)
    assert at <= found <= at * 1.12 and rounds == [found] * calibration.ROUNDS


def test_the_search_climbs_then_halves_below_the_first_rung_that_passes():
    calls: list[float] = []
    threshold(cliff(730.0, calls), (100.0, 200.0, 500.0, 1000.0, 2000.0), rounds=1)
    assert calls[:4] == [100.0, 200.0, 500.0, 1000.0]  # no rung above the first that passes
    assert len(calls) == 4 + calibration.HALVINGS
    assert all(500.0 < d < 1000.0 for d in calls[4:])


def test_a_first_rung_that_passes_is_narrowed_from_half_of_it_and_none_gives_the_last():
    assert 50.0 <= threshold(cliff(0.0), (100.0, 200.0))[0] <= 56.0
    assert threshold(cliff(1e9), (100.0, 200.0)) == (200.0, [200.0] * calibration.ROUNDS)


def test_figures_give_back_the_dilations_where_the_calls_became_faithful():
    capacity, step_s = figures(bandwidth_d=2000.0, latency_d=3000.0, injection_gbps=INJECTION,
                               latency_model_s=LAT_MODEL_S, latency_steps=LAT_STEPS,
                               tolerance=0.02)
    assert capacity == pytest.approx(INJECTION / 2000.0)
    bandwidth_call = CallCost(1.0, 1, int(INJECTION * 1e9 / 8), 8)  # 6.4 Tb/s for 1 s
    assert choose(bandwidth_call, capacity, 1e-12, 8, 0.02) == 2000.0
    latency_call = CallCost(LAT_MODEL_S, LAT_STEPS, 1, 8)
    assert choose(latency_call, 1e9, step_s, 8, 0.02) == 5000.0  # D = 3000 on the series


def test_figures_never_claim_more_than_the_injection_or_a_free_step():
    capacity, step_s = figures(0.0, 0.0, INJECTION, 1e-12, LAT_STEPS, 0.02)
    assert capacity == INJECTION and step_s == calibration.MIN_STEP_S


def test_spread_is_the_range_over_the_median():
    assert spread([10.0, 12.0, 11.0]) == pytest.approx(2 / 11)
    assert spread([5.0]) == 0.0


def synthetic_host(bandwidth_at: float, latency_at: float, offset: float = 0.0,
                   jitter: tuple[float, ...] = (1.0,)):
    """A host that keeps each reference call at `offset` off its model (what no dilation
    removes) from its threshold dilation on and far off below it, as the agents do: the
    measuring logic tested without a network. `jitter` moves the thresholds call by call."""
    calls = []

    def run(size: int, dilation: float) -> tuple[float, float]:
        calls.append((size, dilation))
        model = LAT_MODEL_S * size / (1 << 20)
        at = (bandwidth_at if size == calibration.BANDWIDTH_SIZE else latency_at) \
            * jitter[len(calls) % len(jitter)]
        return model * (1 + offset + (0.0 if dilation >= at else 0.3)), model

    return run, calls


def test_measure_finds_both_thresholds():
    run, calls = synthetic_host(bandwidth_at=420.0, latency_at=1300.0, offset=0.002)
    found = measure(run, INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    assert INJECTION / 420.0 / 1.12 <= found.capacity_gbps <= INJECTION / 420.0
    latency_call = CallCost(LAT_MODEL_S, LAT_STEPS, 1, 8)
    assert choose(latency_call, 1e9, found.step_s, 8, 0.02) == 2000.0  # 1300 on the series
    assert found.capacity_spread == 0.0 and found.step_spread == 0.0
    sizes = [size for size, _ in calls]
    assert sizes == sorted(sizes, reverse=True)  # the bandwidth-bound call first
    assert found.machine == calibration.fingerprint() and len(found.samples) == len(calls)
    assert len(found.samples) <= calibration.MAX_SAMPLES  # the cache takes them back


def test_one_disturbed_batch_decides_nothing():
    """Each dilation is decided by the best two of three batches: a host that slows one
    batch in three (a passing disturbance) calibrates as a steady one."""
    steady, _ = synthetic_host(bandwidth_at=420.0, latency_at=1300.0)
    disturbed_run, calls = synthetic_host(bandwidth_at=420.0, latency_at=1300.0)

    def run(size: int, dilation: float) -> tuple[float, float]:
        time_s, model_s = disturbed_run(size, dilation)
        return time_s * (1.3 if len(calls) % 3 == 1 else 1.0), model_s

    calm = measure(steady, INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    found = measure(run, INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    assert (found.capacity_gbps, found.step_s) == (calm.capacity_gbps, calm.step_s)
    assert len(found.samples) > len(calm.samples)  # the third batches


def test_an_offset_beyond_half_the_tolerance_is_never_faithful():
    run, _ = synthetic_host(bandwidth_at=420.0, latency_at=1300.0, offset=0.015)
    found = measure(run, INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    assert found.capacity_gbps == INJECTION / calibration.BANDWIDTH_LADDER[-1]


def test_a_jittery_host_reports_how_much_it_varied():
    run, _ = synthetic_host(bandwidth_at=420.0, latency_at=1300.0, jitter=(0.8, 1.0, 1.3, 0.9))
    found = measure(run, INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    assert found.step_spread > 0.05 or found.capacity_spread > 0.05
    assert "varied by" in found.variation()


def test_cache_round_trip(tmp_path):
    path = tmp_path / "calibration.json"
    found = Calibration(6.4, 60e-6, 8, calibration.fingerprint(), "now", ((1, 2.0, 0.1),),
                        capacity_spread=0.3, step_spread=0.26)
    save(found, path)
    assert load(path) == found  # the spreads too: `netwall check` read 0% from the cache
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("spoil", [
    lambda c: json.dumps(dict(c, machine="another machine")),
    lambda c: json.dumps(dict(c, capacity_gbps=0)),
    lambda c: json.dumps(dict(c, step_s=-1)),
    lambda c: json.dumps({"capacity_gbps": 6.4}),
    lambda c: "{not json",
    lambda c: "",
    # issue 26: read back, never trusted (a NaN step time fooled the verdict)
    lambda c: json.dumps(dict(c, step_s=float("nan"))),
    lambda c: json.dumps(dict(c, capacity_gbps=float("inf"))),
    lambda c: json.dumps(dict(c, capacity_gbps="6.4")),
    lambda c: json.dumps(dict(c, step_s=[60e-6])),
    lambda c: json.dumps(dict(c, ranks=True)),
    lambda c: json.dumps(dict(c, ranks=10**400)),
    lambda c: json.dumps(dict(c, samples="abc")),
    lambda c: json.dumps(dict(c, samples=[[1, 2]])),
    lambda c: json.dumps(dict(c, samples=[["1M", 2.0, 0.1]])),
    lambda c: json.dumps(dict(c, measured=["now"])),
    lambda c: json.dumps(dict(c, capacity_spread=-1)),
    lambda c: json.dumps(dict(c, step_spread="0.1")),
    lambda c: json.dumps(dict(c, extra=1)),
    lambda c: json.dumps([c]),
    lambda c: "[" * 100_000,
])
def test_another_machine_or_a_broken_cache_is_measured_again(tmp_path, spoil):
    path = tmp_path / "calibration.json"
    good = Calibration(6.4, 60e-6, 8, calibration.fingerprint(), "now")
    save(good, path)
    path.write_text(spoil(json.loads(path.read_text())))
    assert load(path) is None


def test_a_missing_cache_is_none(tmp_path):
    assert load(tmp_path / "none.json") is None


def test_fingerprint_names_what_the_calibration_depends_on():
    text = calibration.fingerprint()
    assert "cores" in text and "GiB" in text and f"v{calibration.VERSION}" in text


def test_summary_reads_in_units():
    text = replace(calibration.FALLBACK, measured="today").summary()
    assert "10.00 Gb/s" in text and "40 us" in text and "today" in text


# --- what a calibration decides for an Emulation (no network needed) ---------------------------


def _emulation(**kwargs):
    from emulator.emulation import Emulation
    from emulator.kernel.capabilities import Capabilities

    caps = Capabilities(veth=True, bridge=True, htb=True, tbf=True, netem=False,
                        bpf_loss=True, ovs=False)
    host = Calibration(6.4, 60e-6, 8, calibration.fingerprint(), "now")
    kwargs.setdefault("gpu", "ideal")
    return Emulation("star:8", "copper-800g", capabilities=caps, host=host, **kwargs)


def test_an_emulation_chooses_each_calls_dilation_from_its_host():
    emu = _emulation()
    big = emu.spec.run_request("allreduce", "ring", 16 << 20).cost
    small = emu.spec.run_request("allreduce", "ring", 1 << 20).cost
    d_big = emu.pricing.choose(big)
    d_small = emu.pricing.choose(small)
    assert d_big == 1000.0  # 6.4 Tb/s of injection over 6.4 Gb/s
    assert d_small > d_big  # latency-bound: 14 steps of 60 us against 18 us of call
    # the links' delay (held by the agents: no netem here) adds 1% to the call
    assert emu.pricing.slowdown_floor(big) == pytest.approx(1000, rel=0.015)


def test_the_wall_time_estimate_counts_timed_probe_and_untimed_calls():
    from emulator.models.dilation import probe_dilation
    from emulator.models.pricing import PROGRAM_OVERHEAD_S, UNTIMED_SPEEDUP

    emu = _emulation()
    request = emu.spec.run_request("allreduce", None, 16 << 20, iters=5, warmup=1)
    want = request.model_s * (1000 * 5 + 2 * 1000 / UNTIMED_SPEEDUP + 5 * probe_dilation(1000))
    got = emu.pricing.run_s(request)
    assert got == pytest.approx(want + 4 * PROGRAM_OVERHEAD_S)
    unproven = emu.spec.run_request("allreduce", None, 16 << 20, iters=5, warmup=1,
                                    prove=False)
    assert emu.pricing.run_s(unproven) < got / 2
    fixed = _emulation(dilation=5000)
    assert fixed.pricing.run_s(request) > got


def test_a_call_measured_once_starts_two_series_steps_up():
    """With faults or lossy links a distorted result is not measured again, so the first
    dilation is where a retry would have gone; the user's dilation stays the user's."""
    from emulator.models.faults import parse

    emu = _emulation()
    cost = emu.spec.run_request("allreduce", "ring", 16 << 20).cost
    assert emu.pricing.dilation(cost) == 1000.0
    assert emu.pricing.dilation(cost, once=True) == 5000.0  # 1000 -> 2000 -> 5000
    assert _emulation(dilation=700).pricing.dilation(cost, once=True) == 700
    faulted = emu.spec.run_request("allreduce", "ring", 16 << 20, iters=5, warmup=1,
                                   faults=(parse("channels=16:gpu0--nvs0@0"),))
    plain = emu.spec.run_request("allreduce", "ring", 16 << 20, iters=5, warmup=1)
    assert emu.pricing.run_s(faulted) > 4 * emu.pricing.run_s(plain)


def test_a_run_past_the_limit_is_refused_in_one_line():
    from emulator.preflight import bound_duration
    from foundation.errors import NetwallError

    emu = _emulation(dilation=1e6)
    estimate = emu.pricing.run_s(emu.spec.run_request("allreduce", None, 256 << 20,
                                                      iters=100_000, warmup=1))
    with pytest.raises(NetwallError, match=r"this run would take about [\d,]+ h on this host "
                                           r"\(limit 24 h\)"):
        bound_duration(estimate, "this run")
    bound_duration(3600.0, "this run")  # an hour is fine


def test_fault_outages_count_in_the_estimate_and_the_bound():
    """A link held down for an hour holds the timed calls and the probe up an hour each,
    times their dilations: `--fault down:...@0+3600s` is refused before anything is built."""
    from emulator.models.dilation import probe_dilation
    from emulator.models.faults import parse
    from emulator.preflight import MAX_RUN_S, bound_duration
    from foundation.errors import NetwallError

    emu = _emulation(dilation=1000)

    def estimate(*faults, prove=True):
        return emu.pricing.run_s(emu.spec.run_request("allreduce", None, 4 << 20, iters=5,
                                                      warmup=1, faults=faults, prove=prove))

    plain = estimate()
    held = estimate(parse("down:gpu0--nvs0@0+3600s"))
    assert held - plain == pytest.approx(3600 * (1000 + probe_dilation(1000)))
    assert plain < MAX_RUN_S < held
    with pytest.raises(NetwallError, match="this run would take about .* shorter faults"):
        bound_duration(held, "this run")
    flaps = parse("flap=3:gpu0--nvs0@0+1ms")
    assert estimate(flaps, prove=False) - estimate(prove=False) == pytest.approx(3e-3 * 1000)
