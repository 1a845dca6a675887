"""Every parser against inputs nobody meant (hypothesis): each gives a result or netwall's
own one-line error, never another exception, a hang or a traceback.

Strategies mix free text with near-misses of valid input (a valid file with one thing
changed), since near-misses reach the deep checks that free text never gets past.
"""

from __future__ import annotations

import gzip
import json
import string
import tempfile
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tests.chakra_files as cf
from emulator.experiments.campaign import loads
from emulator.models.faults import parse as parse_fault
from emulator.models.profiles import BUILTIN_DIR, load_profile
from foundation.errors import NetwallError
from foundation.inputs import load_yaml
from foundation.units import parse_size
from topologies import parse as parse_topology
from topologies.layout import parse_layout
from traffic.chakra import COLL, COMP, RECV, SEND, import_chakra
from traffic.collectives.base import PER_RANK, validate_size
from traffic.nccl_log import import_nccl_log
from traffic.trace import KEYS, dump_trace, parse_trace, resolve, takers

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Scalars YAML and JSON documents are made of, biased to the edges that break parsers.
EDGE_NUMBERS = st.sampled_from([0, -1, 1, 2, 3, 2**31, 2**63, 10**30, 0.5, -0.0, 1e-300,
                                1e308, float("inf"), float("-inf"), float("nan")])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), EDGE_NUMBERS,
                    st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=20)


def result_or_one_line(fn, *args, **kwargs):
    """Call a parser; anything but a result or a one-line NetwallError fails the test."""
    try:
        return fn(*args, **kwargs)
    except NetwallError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        assert len(message) < 2000, message[:200]
        return None


def near_miss(valid: dict, key_values: st.SearchStrategy) -> st.SearchStrategy:
    """A valid mapping with one key replaced by a fuzzed value, or removed, or one added."""
    keys = st.sampled_from(sorted(valid))
    replaced = st.tuples(keys, key_values).map(lambda kv: {**valid, kv[0]: kv[1]})
    removed = keys.map(lambda k: {x: v for x, v in valid.items() if x != k})
    added = st.tuples(st.text(max_size=8), key_values).map(lambda kv: {**valid, kv[0]: kv[1]})
    return st.one_of(replaced, removed, added)


def yaml_text(value) -> str:
    return yaml.safe_dump(value, allow_unicode=True)


# --- YAML documents ----------------------------------------------------------------------


@FUZZ
@given(st.text(alphabet=string.printable + "éλ\x00\ufeff", max_size=200))
@example("a: 1\na: 2\n")
@example("&a [*a]")
@example("a: !!python/object:os.system x")
@example("a: 2001-13-45")
@example("a: !!timestamp 2001-02-30")
@example("? [a]\n: 1")
@example("[" * 100)
def test_any_yaml_text(text):
    result_or_one_line(load_yaml, text, "fuzz.yaml")


CAMPAIGN = {"name": "fuzz", "topologies": ["pair"], "links": ["copper-800g"], "sizes": ["64K"],
            "faults": [[], ["down:gpu0--gpu1@0+1us"]], "repetitions": 2, "seeds": [1],
            "iters": 1, "warmup": 0, "dilation": [None, 1000]}


@FUZZ
@given(st.one_of(near_miss(CAMPAIGN, VALUES).map(yaml_text),
                 near_miss(CAMPAIGN, VALUES).map(lambda c: yaml_text(
                     {"name": "x", "experiments": [{**c, "name": "e"}]})),
                 st.text(max_size=200)))
def test_any_campaign(text):
    campaign = result_or_one_line(loads, text, "fuzz.yaml")
    if campaign is not None:
        assert len(campaign.points) <= 100_000


FAILURES = {"gpus": 1000, "days": 7, "links": {"copper-800g": 3}, "trials": 10, "seed": 1,
            "job_gpus": 10}


@FUZZ
@given(near_miss(FAILURES, VALUES))
def test_any_campaign_failures_section(failures):
    text = yaml_text({**CAMPAIGN, "failures": failures})
    result_or_one_line(loads, text, "fuzz.yaml")


def _profile() -> dict:
    return yaml.safe_load((BUILTIN_DIR / "copper-800g.yaml").read_text())


@FUZZ
@given(st.one_of(near_miss(_profile(), VALUES), st.builds(
    lambda p, k, v: {**p, k: {**p[k], "value": v}} if isinstance(p.get(k), dict) else p,
    st.just(_profile()), st.sampled_from(sorted(_profile())), VALUES)))
def test_any_profile(profile):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(yaml_text(profile))
        result_or_one_line(load_profile, path)


TOPOLOGY = {"name": "t", "gpus": 2, "switches": ["sw0"], "default_link": {"profile":
            "copper-800g", "length_m": 1}, "links": [{"a": "gpu0", "b": "sw0"},
                                                     {"a": "gpu1", "b": "sw0", "length_m": 1}]}


@FUZZ
@given(st.one_of(near_miss(TOPOLOGY, VALUES).map(yaml_text), st.text(max_size=100)))
def test_any_topology_file(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.yaml"
        path.write_text(text)
        result_or_one_line(parse_topology, str(path), "copper-800g")


@FUZZ
@given(st.one_of(
    st.from_regex(r"(pair|ring|mesh|star|racks|blob):[0-9x -]{0,10}", fullmatch=True),
    st.text(max_size=30)),
    st.one_of(st.none(), st.floats(), EDGE_NUMBERS))
@example("racks:1024x1024", None)
@example("star:99999999999999999999", None)
def test_any_topology_spec(spec, length):
    result_or_one_line(parse_topology, spec, "copper-800g", length_m=length)


# --- one-line specs and strings ----------------------------------------------------------


@FUZZ
@given(st.one_of(
    st.from_regex(r"(down|flap|channels|ber|melt)(=[-0-9.e+a-z]{1,8})?:[a-z0-9]{1,5}--[a-z0-9]"
                  r"{1,5}@[0-9.e+]{1,25}(s|ms|us|ns|h)?(\+[0-9.e+]{1,25}(s|ms|us|ns)?)?",
                  fullmatch=True),
    st.text(max_size=60)))
@example("flap=1000000:gpu0--gpu1@0+1us")
@example("down:gpu0--gpu1@0+99999999999999999999s")
def test_any_fault_spec(spec):
    fault = result_or_one_line(parse_fault, spec)
    if fault is not None:
        assert fault.end_s <= 3600


@FUZZ
@given(st.one_of(
    st.lists(st.from_regex(r"(gpus|pitch|height|slack|row|row_pitch|tray|nope)=[-0-9.e+na]"
                           r"{0,8}", fullmatch=True), max_size=6).map(",".join),
    st.text(max_size=60)),
    st.one_of(st.none(), st.integers(min_value=-2, max_value=5000)))
@example("pitch=1,pitch=2", None)
@example("gpus=9" * 3000, None)
def test_any_layout_spec(text, gpus):
    result_or_one_line(parse_layout, text, gpus)


@FUZZ
@given(st.one_of(st.from_regex(r"\s*[0-9]{0,22}\s*[KMGTkmgt]?[Bb]?\s*", fullmatch=True),
                 st.text(max_size=30)))
def test_any_size_string(text):
    size = result_or_one_line(parse_size, text)
    if size is not None:
        assert 0 <= size <= 1 << 40


# --- traces and NCCL logs ----------------------------------------------------------------


CALL = {"id": 0, "collective": "allreduce", "bytes": 4096, "group": [0, 1], "comm": "dp",
        "stream": "0", "gap_us": 1.0, "after": [], "root": 0, "step": 0}


@FUZZ
@given(st.lists(st.one_of(near_miss(CALL, VALUES).map(json.dumps),
                          st.dictionaries(st.sampled_from(KEYS), VALUES).map(json.dumps),
                          st.text(max_size=40)), max_size=5))
@example([])
@example(["# only a comment", ""])
@example(['{"collective": "allreduce", "bytes": 4, "group": ' + "[" * 5000 + "]" * 5000 + "}"])
@example(['{"collective": "allreduce", "bytes": ' + "9" * 5000 + ', "group": "all"}'])
def test_any_trace(lines):
    result_or_one_line(parse_trace, lines, "fuzz.jsonl")


NCCL_LINE = ("host:{pid}:{pid} [{dev}] NCCL INFO {op}: opCount {opc} sendbuff 0x1 recvbuff 0x2 "
             "count {count} datatype {dt} op 0 root {root} comm 0x{comm} [nranks={nranks}] "
             "stream 0x5")
INIT_LINE = "host:{pid}:{pid} [{dev}] NCCL INFO comm 0x{comm} rank {rank} nranks {nranks} " \
            "cudaDev {dev} busId 1000 commId 0x77 - Init COMPLETE"
NUMBER_TEXT = st.one_of(st.integers(min_value=-3, max_value=2**70).map(str),
                        st.text(alphabet="0123456789abcdefx-", max_size=6))


# mostly valid: a few processes on 2- and 4-rank communicators, every number valid but
# for the odd hostile one, so that grouping, pairing and merging are reached
SMALL = st.one_of(st.integers(min_value=0, max_value=4).map(str), NUMBER_TEXT)
VALID_LINE = st.builds(
    NCCL_LINE.format, pid=st.sampled_from(["1", "2", "3", "4"]), dev=st.just("0"),
    op=st.sampled_from(["AllReduce", "Broadcast", "Send", "Recv", "AllGather", "AlltoAll"]),
    opc=st.integers(min_value=0, max_value=6).map(str), count=st.one_of(
        st.sampled_from(["1", "3", "64", "4096"]), NUMBER_TEXT),
    dt=st.sampled_from(["0", "7", "9"]), root=SMALL, comm=st.sampled_from(["a", "b"]),
    nranks=st.one_of(st.sampled_from(["2", "4"]), NUMBER_TEXT))
VALID_INIT = st.builds(INIT_LINE.format, pid=st.sampled_from(["1", "2", "3", "4"]),
                       dev=st.just("0"), comm=st.sampled_from(["a", "b"]), rank=SMALL,
                       nranks=st.one_of(st.sampled_from(["2", "4"]), NUMBER_TEXT))


@FUZZ
@given(st.lists(st.one_of(
    VALID_LINE, VALID_LINE, VALID_INIT,
    st.builds(NCCL_LINE.format, pid=NUMBER_TEXT, dev=NUMBER_TEXT,
              op=st.sampled_from(["AllReduce", "Broadcast", "Send", "Recv", "AllGather",
                                  "ReduceScatter", "Reduce", "Bogus"]),
              opc=st.text(alphabet="0123456789abcdefg", min_size=1, max_size=5),
              count=NUMBER_TEXT, dt=NUMBER_TEXT, root=NUMBER_TEXT,
              comm=st.sampled_from(["a", "b"]), nranks=NUMBER_TEXT),
    st.builds(INIT_LINE.format, pid=NUMBER_TEXT, dev=NUMBER_TEXT,
              comm=st.sampled_from(["a", "b"]), rank=NUMBER_TEXT, nranks=NUMBER_TEXT),
    st.text(max_size=80)), max_size=16))
@example(["h:1:1 [0] NCCL INFO comm 0xa rank 0 nranks 99999999999 cudaDev 0 commId 0x1 - "
          "Init COMPLETE"] + [NCCL_LINE.format(pid=p, dev=p, op="AllReduce", opc=1, count=10**30,
                                                dt=7, root=-1, comm=p, nranks=2)
                              for p in "12"])
def test_any_nccl_log(lines):
    calls, peak = traced(import_nccl_log, lines, "fuzz.log")
    if calls is not None:
        replayable(calls)
    assert peak < 4  # twelve lines: nothing is sized by a number the lines claim


def traced(fn, *args):
    """fn's result (None after a one-line NetwallError) and Python's peak memory in MiB."""
    tracemalloc.start()
    try:
        result = result_or_one_line(fn, *args)
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def replayable(calls) -> None:
    """What replay checks before it builds anything, for a trace an importer wrote, on the
    ranks the trace names. A call over "all" (one Chakra file: every rank runs it) has its
    size checked at replay against the topology chosen then, in one line, as a trace
    written by hand does; here, against 2 ranks when its size splits over them."""
    assert parse_trace(dump_trace(calls).splitlines(), "again") == calls
    ranks = max(2, max((r for c in calls for r in c.group), default=0) + 1)
    for call, bound in zip(calls, resolve(calls, ranks), strict=True):
        if call.group or call.bytes % (4 * ranks) == 0 or call.collective not in PER_RANK:
            validate_size(bound.collective, len(takers(bound)), bound.bytes)


HOSTILE = st.one_of(st.integers(min_value=-2**63, max_value=2**64 - 1), st.booleans(),
                   st.text(max_size=8), st.sampled_from([0, 2**62, 2**64 - 1, "x" * 300]))


@st.composite
def chakra_graph(draw) -> list:
    """A rank's graph: nodes with distinct ids depending on earlier ones, communication
    nodes with valid attributes, then now and then one field made hostile."""
    nodes = []
    for nid in range(1, draw(st.integers(min_value=1, max_value=8)) + 1):
        kind = draw(st.sampled_from([COMP, COLL, COLL, SEND, RECV, 2, 0, 99]))
        deps = draw(st.lists(st.integers(min_value=0, max_value=nid - 1), max_size=2))
        attrs: dict = {}
        if kind == COLL:
            attrs = {"comm_type": draw(st.sampled_from([0, 1, 2, 5, 6, 7, 8, 9])),
                     "comm_size": draw(st.sampled_from([0, 3, 64, 4096])),
                     "pg_name": draw(st.sampled_from(["dp", "tp", ""]))}
        elif kind in (SEND, RECV):
            attrs = {"comm_size": draw(st.sampled_from([3, 64])),
                     "comm_dst" if kind == SEND else "comm_src": draw(st.integers(0, 2))}
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            attrs[draw(st.sampled_from(["comm_type", "comm_size", "pg_name", "comm_src",
                                        "comm_dst", "stream"]))] = draw(HOSTILE)
        micros = draw(st.sampled_from([0, 0, 5, 100, 2**63]))
        nodes.append(cf.node(nid, kind, [d for d in deps if d], micros, **attrs))
    return nodes


CHAKRA_RANKS = st.one_of(
    st.tuples(chakra_graph(), st.integers(min_value=1, max_value=3)).map(lambda g: [g[0]] * g[1]),
    st.lists(chakra_graph(), min_size=1, max_size=3))


@FUZZ
@given(CHAKRA_RANKS, st.sampled_from(["plain", "plain", "gzip", "cut", "flip", "junk"]),
       st.integers(0, 2**16),
       st.binary(max_size=40))
@example([[cf.allreduce(1)]] * 2, "plain", 0, b"")
@example([[]], "junk", 0, bytes(4096))
@example([[]], "junk", 0, b"\xff" * 11)
def test_any_chakra_files(graphs, mangle, where, junk):
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for rank, graph in enumerate(graphs):
            data = cf.et_bytes(graph)
            if mangle == "gzip":
                data = gzip.compress(data)
            elif mangle == "cut":
                data = data[:where % (len(data) + 1)]
            elif mangle == "flip" and data:
                data = data[:where % len(data)] + junk[:1] + data[where % len(data) + 1:]
            elif mangle == "junk":
                data = junk
            paths.append(Path(tmp) / f"t.{rank}.et")
            paths[-1].write_bytes(data)
        calls, peak = traced(import_chakra, paths)
    if calls is not None:
        replayable(calls)
    assert peak < 4


# --- the command line --------------------------------------------------------------------


@settings(FUZZ, max_examples=50)
@given(st.one_of(st.from_regex(r"[a-z0-9-]{1,20}=[-0-9.e+naif]{0,8}", fullmatch=True),
                 st.text(max_size=30)))
@example("copper-800g=nan")
@example("copper-800g=1e308")
def test_any_failures_links_option(links):
    import contextlib
    import io

    from emulator.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["failures", f"--links={links}", "--gpus", "8", "--trials", "2"])
        except SystemExit as e:  # argparse's own one-line refusal
            code = e.code
    assert code in (0, 2)
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()


@pytest.mark.parametrize("value", ["\x00", "a" * 100_000])
def test_huge_or_odd_option_values_are_one_line(value):
    assert result_or_one_line(parse_fault, value) is None
    assert result_or_one_line(parse_layout, value) is None
    assert result_or_one_line(parse_size, value) is None
