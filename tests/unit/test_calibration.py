"""The host calibration: fitting the ladders, climbing them, and the per-machine cache."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from emulator.models import calibration
from emulator.models.calibration import Calibration, first_faithful, fit, load, measure, save
from emulator.models.dilation import CallCost, choose

LAT_MODEL_S, LAT_STEPS = 14 * (1 << 17) * 8 / 800e9, 14  # 1 MiB ring all-reduce on 8 x 800G
INJECTION = 6400.0  # Gb/s: 8 ranks at 800 Gb/s


def test_first_faithful_is_the_smallest_dilation_within_half_the_tolerance():
    errors = {200.0: 0.9, 500.0: 0.03, 1000.0: 0.008, 2000.0: 0.001}
    assert first_faithful(errors, 0.02) == 1000.0
    assert first_faithful({1000.0: -0.009}, 0.02) == 1000.0  # fast counts as far as slow
    assert first_faithful({1000.0: 0.5}, 0.02) is None


def test_fit_gives_back_the_reference_calls_dilations():
    capacity, step_s = fit({500.0: 0.05, 1000.0: 0.004}, {1000.0: 0.03, 2000.0: 0.009},
                           INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    assert capacity == INJECTION / 1000.0
    latency_call = CallCost(LAT_MODEL_S, LAT_STEPS, 1, 8)
    bandwidth_call = CallCost(1.0, 1, int(INJECTION * 1e9 / 8), 8)  # 6.4 Tb/s for 1 s
    assert choose(latency_call, 1e9, step_s, 8, 0.02) == 2000.0
    assert choose(bandwidth_call, capacity, 1e-12, 8, 0.02) == 1000.0


def test_fit_of_a_ladder_that_never_got_there_takes_its_last_rung():
    capacity, _ = fit({500.0: 0.5, 1000.0: 0.2}, {1000.0: 0.001}, INJECTION, LAT_MODEL_S,
                      LAT_STEPS, 0.02)
    assert capacity == INJECTION / 1000.0


def synthetic_host(host_wall_s: float, capacity_gbps: float):
    """A host that adds a fixed wall time per step and saturates above a capacity: what the
    real agents do, as a function, so the climbing logic is tested without a network."""
    calls = []

    def run(size: int, dilation: float) -> tuple[float, float]:
        calls.append((size, dilation))
        model = LAT_MODEL_S * size / (1 << 20)
        injection = INJECTION / dilation
        crowd = max(1.0, injection / capacity_gbps) ** 2
        return model * crowd + LAT_STEPS * host_wall_s / dilation, model

    return run, calls


def test_measure_climbs_each_ladder_until_the_call_is_faithful():
    run, calls = synthetic_host(host_wall_s=20e-6, capacity_gbps=12.0)
    found = measure(run, INJECTION, LAT_MODEL_S, LAT_STEPS, tolerance=0.02)
    # Bandwidth: 6.4 Tb/s fits 12 Gb/s from D=1000 (6.4 Gb/s); latency: 14 x 20 us must be at
    # most 1% of 18.35 us x D, so D >= 1526: the ladder's 2000.
    assert found.capacity_gbps == INJECTION / 1000.0
    assert choose(CallCost(LAT_MODEL_S, LAT_STEPS, 1, 8), 1e9, found.step_s, 8, 0.02) == 2000.0
    sizes = [size for size, _ in calls]
    assert sizes == sorted(sizes, reverse=True)  # bandwidth ladder first
    assert all(d >= 1000.0 for size, d in calls if size == calibration.LATENCY_SIZE)
    assert found.machine == calibration.fingerprint() and len(found.samples) >= 3


def test_cache_round_trip(tmp_path):
    path = tmp_path / "calibration.json"
    found = Calibration(6.4, 60e-6, 8, calibration.fingerprint(), "now", ((1, 2.0, 0.1),))
    save(found, path)
    assert load(path) == found
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
    assert "2.00 Gb/s" in text and "100 us" in text and "today" in text


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
    big = emu.schedule("allreduce", "ring", 16 << 20)
    small = emu.schedule("allreduce", "ring", 1 << 20)
    d_big = emu.choose(emu.cost(big, emu.emulated_model(big)))
    d_small = emu.choose(emu.cost(small, emu.emulated_model(small)))
    assert d_big == 1000.0  # 6.4 Tb/s of injection over 6.4 Gb/s
    assert d_small > d_big  # latency-bound: 14 steps of 60 us against 18 us of call
    # the links' delay (held by the agents: no netem here) adds 1% to the call
    assert emu.slowdown_floor(emu.cost(big, emu.emulated_model(big))) == \
        pytest.approx(1000, rel=0.015)


def test_the_wall_time_estimate_counts_timed_probe_and_untimed_calls():
    from emulator.emulation import PROGRAM_OVERHEAD_S, UNTIMED_SPEEDUP
    from emulator.models.dilation import probe_dilation

    emu = _emulation()
    schedule = emu.schedule("allreduce", "ring", 16 << 20)
    model = emu.emulated_model(schedule)
    want = model * (1000 * 5 + 2 * 1000 / UNTIMED_SPEEDUP + 5 * probe_dilation(1000))
    got = emu.estimate_s("allreduce", None, 16 << 20, iters=5, warmup=1)
    assert got == pytest.approx(want + 4 * PROGRAM_OVERHEAD_S)
    assert emu.estimate_s("allreduce", None, 16 << 20, 5, 1, prove=False) < got / 2
    fixed = _emulation(dilation=5000)
    assert fixed.estimate_s("allreduce", None, 16 << 20, 5, 1) > got


def test_a_run_past_the_limit_is_refused_in_one_line():
    from emulator.emulation import bound_duration
    from foundation.errors import NetwallError

    emu = _emulation(dilation=1e6)
    estimate = emu.estimate_s("allreduce", None, 256 << 20, iters=100_000, warmup=1)
    with pytest.raises(NetwallError, match=r"this run would take about [\d,]+ h on this host "
                                           r"\(limit 24 h\)"):
        bound_duration(estimate, "this run")
    bound_duration(3600.0, "this run")  # an hour is fine


def test_fault_outages_count_in_the_estimate_and_the_bound():
    """A link held down for an hour holds the timed calls and the probe up an hour each,
    times their dilations: `--fault down:...@0+3600s` is refused before anything is built."""
    from emulator.emulation import MAX_RUN_S, bound_duration
    from emulator.models.dilation import probe_dilation
    from emulator.models.faults import parse
    from foundation.errors import NetwallError

    emu = _emulation(dilation=1000)
    plain = emu.estimate_s("allreduce", None, 4 << 20, iters=5, warmup=1)
    fault = parse("down:gpu0--nvs0@0+3600s")
    held = emu.estimate_s("allreduce", None, 4 << 20, iters=5, warmup=1, faults=[fault])
    assert held - plain == pytest.approx(3600 * (1000 + probe_dilation(1000)))
    assert plain < MAX_RUN_S < held
    with pytest.raises(NetwallError, match="this run would take about"):
        bound_duration(held, "this run")
    flaps = parse("flap=3:gpu0--nvs0@0+1ms")
    assert emu.estimate_s("allreduce", None, 4 << 20, 5, 1, prove=False, faults=[flaps]) \
        - emu.estimate_s("allreduce", None, 4 << 20, 5, 1, prove=False) \
        == pytest.approx(3e-3 * 1000)
