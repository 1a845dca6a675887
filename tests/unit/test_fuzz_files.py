"""The files users hand netwall, fuzzed where their numbers are read (issue 26): link and GPU
profiles, topology files (both forms), design files, campaign files' numbers, and the
calibration cache. Each gives a result or one NetwallError line, never another exception,
and bounded work: numbers far past any real value (10^400 as a YAML int, NaN, infinities,
a string or a list where a number belongs) are refused where they are read, before any
float() overflows or any loop starts. Work is bounded by construction and counted here
(the calls a design file may build), never timed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emulator.experiments import designs
from emulator.experiments.campaign import loads
from emulator.models import calibration
from emulator.models.endpoints import BUILTIN_DIR as GPU_DIR
from emulator.models.endpoints import load_gpu
from emulator.models.profiles import BUILTIN_DIR, load_profile
from foundation.errors import NetwallError
from tests.unit.test_fuzz import CAMPAIGN, FUZZ, near_miss, result_or_one_line
from topologies import parse as parse_topology
from traffic import shapes

#: Numbers as a hostile file writes them: far past every bound, not numbers at all, or
#: numbers Python's float cannot hold (10^400 is a valid YAML int).
HOSTILE = st.sampled_from([10**400, -10**400, 2**64, 10**30, 1e308, -1e308, float("nan"),
                           float("inf"), float("-inf"), 0, -1, 0.5, 1e-300, True, None,
                           "12", "1e5", [], [1], {}, {"a": 1}, {1: 2}])
NUMBERS = st.one_of(HOSTILE, st.integers(), st.floats())
FILES = settings(FUZZ, max_examples=50)


def dumped(value) -> str:
    """YAML text of `value`; an int too long for Python's str() limit stays a YAML int."""
    return yaml.safe_dump(value, allow_unicode=True, width=10**6)


def in_file(text: str, fn, name: str = "f.yaml"):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        return result_or_one_line(fn, path)


# --- link and GPU profiles ---------------------------------------------------------------


def _profile() -> dict:
    return yaml.safe_load((BUILTIN_DIR / "copper-800g.yaml").read_text())


def _gpu() -> dict:
    return yaml.safe_load((GPU_DIR / "h100.yaml").read_text())


@FILES
@given(st.sampled_from(sorted(k for k, v in _profile().items() if isinstance(v, dict))),
       NUMBERS)
@example("queue_bytes", 10**400)
@example("rate_gbps", 10**400)
@example("lanes", 10**400)
@example("reach_m", float("nan"))
def test_any_number_in_a_profile(key, value):
    profile = _profile()
    profile[key] = {**profile[key], "value": value}
    found = in_file(dumped(profile), load_profile)
    if found is not None:
        assert found.rate_gbps <= 1e6 and found.lanes <= 100_000 and found.reach_m <= 1e7


@FILES
@given(st.sampled_from(["launch_us", "reduce_gbytes_per_s", "protocols.LL.base_us",
                        "protocols.Simple.step_us", "protocols.LL128.efficiency"]), NUMBERS)
@example("launch_us", 10**400)
@example("protocols.LL.base_us", float("inf"))
def test_any_number_in_a_gpu_profile(key, value):
    gpu = _gpu()
    *parents, leaf = key.split(".")
    entry = gpu
    for parent in parents:
        entry = entry[parent]
    entry[leaf] = {**entry[leaf], "value": value}
    in_file(dumped(gpu), load_gpu)


# --- topology files ----------------------------------------------------------------------


TOPOLOGY = {"gpus": 2, "switches": ["sw0"], "default_link": {"profile": "copper-800g",
            "length_m": 1}, "links": [{"a": "gpu0", "b": "sw0"},
                                      {"a": "gpu1", "b": "sw0", "length_m": 1}]}
CLUSTER = {"domains": 2, "domain_gpus": 4, "scale_up": "nvlink5", "scale_out": "optical-800g",
           "layout": "gpus=4"}


@FILES
@given(st.one_of(
    NUMBERS.map(lambda v: {**TOPOLOGY, "default_link": {"length_m": v}}),
    NUMBERS.map(lambda v: {**TOPOLOGY, "links": [{"a": "gpu0", "b": "sw0", "length_m": v},
                                                 {"a": "gpu1", "b": "sw0"}]}),
    NUMBERS.map(lambda v: {**TOPOLOGY, "gpus": v}),
    st.tuples(st.sampled_from(["domains", "domain_gpus"]), NUMBERS).map(
        lambda kv: {"cluster": {**CLUSTER, kv[0]: kv[1]}}),
    NUMBERS.map(lambda v: {"cluster": {**CLUSTER, "scale_up": {"profile": "optical-800g",
                                                               "cables": v}}}),
    NUMBERS.map(lambda v: {"cluster": {**CLUSTER, "layout": f"pitch={v}"}})))
@example({**TOPOLOGY, "default_link": {"length_m": 10**400}})
def test_any_number_in_a_topology_file(doc):
    def read(path):
        return parse_topology(str(path), "copper-800g")

    topo = in_file(dumped(doc), read)
    if topo is not None:
        assert len(topo.gpus) <= 1024
        assert all(0 < link.length_m <= 1e7 for link in topo.links)


# --- design files ------------------------------------------------------------------------


DESIGN = {"designs": [{"name": "a", "scale_up": "nvlink5", "domains": 2, "domain_gpus": 4}]}
PARAMS = sorted(shapes.LIMITS) + ["mode", "nope"]


@FILES
@given(workload=st.one_of(
    st.tuples(st.sampled_from(["tp-layer", "dp-step", "moe-a2a", "dp-tp", "pp-1f1b", "3d"]),
              st.dictionaries(st.sampled_from(PARAMS), NUMBERS, max_size=3)).map(
        lambda kw: {"name": "w", "workload": kw[0], "params": kw[1]}),
    st.tuples(st.sampled_from(["scale", "steps"]), NUMBERS).map(
        lambda kv: {"name": "w", "workload": "tp-layer", kv[0]: kv[1]}),
    NUMBERS.map(lambda v: {"name": "w", "workload": v}),
    NUMBERS.map(lambda v: {"name": "w", "collective": v, "sizes": ["1M"]}),
    NUMBERS.map(lambda v: {"name": "w", "collective": "allreduce", "sizes": [v]}),
    NUMBERS.map(lambda v: {"name": "w", "workload": "tp-layer", "params": v})),
    top=st.sampled_from([{}, {"gpu": {}}, {"gpu": ["h100"]}, {"iters": 10**400},
                     {"fleet_gpus": float("nan")}, {"warmup": -1}]))
@example(workload={"name": "w", "workload": "tp-layer", "params": {"layers": 10**8}}, top={})
@example(workload={"name": "w", "workload": "tp-layer", "params": {"hidden": 10**160}}, top={})
@example(workload={"name": "w", "workload": "tp-layer", "params": {1: 2}}, top={})
@example(workload={"name": "w", "workload": ["tp-layer"]}, top={})
@example(workload={"name": "w", "collective": {"a": 1}, "sizes": ["1M"]}, top={})
@example(workload={"name": "w", "collective": "allreduce", "sizes": ["1M"]}, top={"gpu": {}})
def test_any_number_or_type_in_a_design_file(monkeypatch_calls, workload, top):
    text = dumped({**DESIGN, **top, "workloads": [workload]})
    before = monkeypatch_calls[0]
    result_or_one_line(designs.parse, text, "fuzz.yaml")
    assert monkeypatch_calls[0] - before <= shapes.MAX_CALLS


@pytest.fixture(scope="module")
def monkeypatch_calls():
    """Counts every call a workload builds (traffic.shapes.Builder): the bound on the work a
    design file's check may do, by construction."""
    made = [0]
    add = shapes.Builder.add

    def counted(self, *args, **kwargs):
        made[0] += 1
        return add(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shapes.Builder, "add", counted)
        yield made


def test_a_file_of_many_workloads_is_refused_within_its_call_budget(monkeypatch):
    """10,000 workloads of 100,000 calls each would take hours to check; the check stops at
    its budget (MAX_CHECKED_CALLS, plus the one workload that crossed it). Here a budget of
    5,000 calls against 1,000 workloads of 192."""
    monkeypatch.setattr(designs, "MAX_CHECKED_CALLS", 5_000)
    made = [0]
    add = shapes.Builder.add

    def counted(self, *args, **kwargs):
        made[0] += 1
        return add(self, *args, **kwargs)

    monkeypatch.setattr(shapes.Builder, "add", counted)
    many = [{"name": f"w{i}", "workload": "tp-layer"} for i in range(1000)]
    with pytest.raises(NetwallError, match="more than 5000 calls together"):
        designs.parse(dumped({**DESIGN, "workloads": many}), "x")
    assert 5_000 < made[0] <= 5_000 + 192


@pytest.mark.parametrize("params", [{"layers": 10**8}, {"micro_batches": 10**9},
                                    {"hidden": 10**160}, {"bucket_mib": 1e-12}])
def test_a_huge_workload_parameter_is_refused_before_any_call_is_built(monkeypatch, params):
    built = []
    monkeypatch.setattr(shapes.Builder, "add", lambda *a, **k: built.append(a))
    for workload in ("tp-layer", "pp-1f1b", "dp-step"):
        text = dumped({**DESIGN, "workloads": [{"name": "w", "workload": workload,
                                                "params": params}]})
        result_or_one_line(designs.parse, text, "x")
    assert built == []


# --- campaign files' numbers -------------------------------------------------------------


@FILES
@given(st.sampled_from(["repetitions", "seeds", "iters", "warmup", "dilation", "sizes",
                        "tolerance"]),
       st.one_of(NUMBERS, NUMBERS.map(lambda v: [v])))
@example("iters", 10**400)
@example("dilation", [float("nan")])
def test_any_number_in_a_campaign_file(key, value):
    campaign = result_or_one_line(loads, dumped({**CAMPAIGN, key: value}), "fuzz.yaml")
    if campaign is not None:
        assert len(campaign.points) <= 100_000


# --- the calibration cache ---------------------------------------------------------------


GOOD = {"capacity_gbps": 6.4, "step_s": 60e-6, "ranks": 8, "measured": "now",
        "samples": [[1 << 20, 1000.0, 0.01]]}


@FILES
@given(st.one_of(near_miss(GOOD, NUMBERS),
                 st.tuples(st.integers(0, 2), NUMBERS).map(
                     lambda iv: {**GOOD, "samples": [[*([1, 2.0, 0.1][:iv[0]]), iv[1],
                                                      *([1, 2.0, 0.1][iv[0] + 1:])]]})))
@example({**GOOD, "step_s": float("nan")})
@example({**GOOD, "capacity_gbps": "6.4"})
@example({**GOOD, "samples": "x"})
def test_any_calibration_cache(data):
    """A cache is read back, never trusted: anything but this machine's sound calibration is
    None (measured again), never used, never a traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calibration.json"
        path.write_text(json.dumps({**data, "machine": calibration.fingerprint()}))
        found = calibration.load(path)
    if found is not None:
        assert 0 < found.capacity_gbps <= calibration.MAX_CAPACITY_GBPS
        assert 0 < found.step_s <= calibration.MAX_STEP_S
        assert all(0 < d <= 1e9 for _, d, _ in found.samples)
