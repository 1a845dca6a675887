"""Import of Chakra execution traces (.et): files written here with Chakra's schema, as
Chakra's protolib writes them (a varint length before each message, GlobalMetadata first),
and malformed ones."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.errors import NetwallError
from tests.chakra_files import et_bytes, node, varint
from traffic.chakra import (
    COLL,
    COMP,
    MEM_LOAD,
    RECV,
    SEND,
    convert_chakra,
    import_chakra,
)
from traffic.trace import parse_trace, resolve, takers

ROOT = Path(__file__).resolve().parents[2]
ALL_REDUCE, ALL_GATHER, BARRIER, REDUCE_SCATTER = 0, 2, 9, 7


def et(path: Path, nodes: list, version: str = "0.0.4") -> Path:
    path.write_bytes(et_bytes(nodes, version))
    return path


def rank_graph(rank: int, peer: int) -> list:
    """One rank of a 2-rank step: compute, a TP all-gather and reduce-scatter on 'tp', a
    pipeline send (rank 0) or receive (rank 1), then a data-parallel all-reduce on 'dp' that
    waits for the compute after the reduce-scatter."""
    p2p = (node(5, SEND, deps=[4], comm_size=4096, comm_dst=peer) if rank == 0 else
           node(5, RECV, deps=[4], comm_size=4096, comm_src=peer))
    return [
        node(1, COMP, micros=100),
        node(2, COLL, deps=[1], comm_type=ALL_GATHER, comm_size=8192, pg_name="tp"),
        node(3, COLL, deps=[2], comm_type=REDUCE_SCATTER, comm_size=8192, pg_name="tp"),
        node(4, COMP, deps=[3], micros=30 + 20 * rank),
        p2p,
        node(6, MEM_LOAD, deps=[4]),
        node(7, COMP, deps=[6], micros=5),
        node(8, COLL, deps=[7], comm_type=ALL_REDUCE, comm_size=1 << 20, pg_name="dp",
             micros=77),
        node(9, COLL, deps=[8], comm_type=BARRIER, comm_size=4, pg_name="dp"),
    ]


@pytest.fixture
def two_ranks(tmp_path) -> list[Path]:
    return [et(tmp_path / "trace.0.et", rank_graph(0, 1)),
            et(tmp_path / "trace.1.et", rank_graph(1, 0))]


def test_two_ranks_become_collectives_sends_gaps_and_dependencies(two_ranks):
    notes: list[str] = []
    calls = import_chakra(two_ranks, notes)
    assert [(c.collective, c.bytes, c.comm, c.group) for c in calls] == [
        ("allgather", 8192, "tp", (0, 1)), ("reducescatter", 8192, "tp", (0, 1)),
        ("send", 4096, "g0-1", (0, 1)), ("allreduce", 1 << 20, "dp", (0, 1))]
    ag, rs, send, ar = calls
    assert ag.gap_us == 100 and rs.gap_us == 0 and rs.after == (0,)
    assert (takers(send), send.after, send.gap_us) == ((0, 1), (1,), 30)  # the sender's compute
    # the all-reduce waited for rank 1's longer compute (50 + 5 us) after the reduce-scatter
    assert (ar.gap_us, ar.after) == (55, (1,))
    assert notes[0] == "2 rank files, 4 calls"
    assert "dropped 2 barrier nodes (no netwall collective)" in notes
    assert "dropped 2 memory nodes (no network traffic; kept as links)" in notes
    assert "dropped 2 measured communication times (the network replays them)" in notes


def test_convert_writes_a_trace_netwall_reads(two_ranks):
    text = convert_chakra(two_ranks)
    assert text.startswith("# netwall trace imported from Chakra execution traces trace.0.et, "
                           "trace.1.et\n")
    assert parse_trace(text.splitlines(), "t") == import_chakra(two_ranks)


def test_gzip_files_and_a_single_file_for_every_rank(tmp_path):
    path = et(tmp_path / "one.et", rank_graph(0, 1))
    packed = tmp_path / "one.et.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    notes: list[str] = []
    calls = import_chakra([packed], notes)
    assert [c.group for c in calls if c.collective != "send"] == [(), (), ()]
    assert "every rank is assumed to run its graph" in notes[1]
    assert [takers(c) for c in resolve(calls, 4) if c.collective == "send"] == [(0, 1)]


def test_a_rank_missing_a_collective_is_refused(tmp_path):
    short = [n for n in rank_graph(1, 0) if n.id != 8]
    for n in short:
        if n.id == 9:
            n.ctrl_deps[:] = [7]
    paths = [et(tmp_path / "a.et", rank_graph(0, 1)), et(tmp_path / "b.et", short)]
    with pytest.raises(NetwallError, match=r"process group dp: call 0 is missing on ranks \[1\]"):
        import_chakra(paths)


def malformed(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    good = (tmp_path / "g.et")
    et(good, rank_graph(0, 1))
    data = good.read_bytes()
    cycle = [node(1, COMP, deps=[2], micros=1), node(2, COMP, deps=[1], micros=1)]
    return {
        "empty": (b"", "empty; a Chakra .et file starts with a GlobalMetadata"),
        "truncated": (data[:-5], "a truncated file?"),
        "bad varint": (b"\xff" * 12, "a message length is cut short or malformed"),
        "garbage": (varint(4) + b"\x0a\xff\xff\xff", "not a valid GlobalMetadata"),
        "cycle": (_bytes(cycle), "the dependencies form a cycle (through node 1)"),
        "unknown dep": (_bytes([node(1, COMP, deps=[42])]), "depends on node 42"),
        "no size": (_bytes([node(1, COLL, comm_type=0)]), "needs an integer comm_size"),
        "no type": (_bytes([node(1, COLL, comm_size=64)]), "a collective node needs comm_type"),
        "no peer": (_bytes([node(1, SEND, comm_size=64)]), "needs comm_dst"),
        "twice": (_bytes([node(1, COMP), node(1, COMP)]), "node id 1 is used twice"),
        "nothing": (_bytes([node(1, COMP, micros=5)]), "no communication nodes netwall can"),
    }


def _bytes(nodes: list) -> bytes:
    return et_bytes(nodes, "x")


@pytest.mark.parametrize("case", ["empty", "truncated", "bad varint", "garbage", "cycle",
                                  "unknown dep", "no size", "no type", "no peer", "twice",
                                  "nothing"])
def test_malformed_files_are_refused_in_one_line(tmp_path, case):
    data, message = malformed(tmp_path)[case]
    path = tmp_path / "bad.et"
    path.write_bytes(data)
    with pytest.raises(NetwallError) as e:
        import_chakra([path])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_command_prints_one_line_and_exits_2_on_a_malformed_file(tmp_path, two_ranks):
    bad = tmp_path / "bad.et"
    bad.write_bytes(two_ranks[0].read_bytes()[:-3])
    netwall = [sys.executable, "-m", "emulator.cli.main", "trace", "import"]
    done = subprocess.run(netwall + [str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "truncated" in done.stderr
    good = subprocess.run(netwall + [str(p) for p in two_ranks], capture_output=True, text=True,
                          cwd=ROOT)
    assert good.returncode == 0 and '"collective": "send"' in good.stdout
    mixed = subprocess.run(netwall + [str(two_ranks[0]), "nccl.log"], capture_output=True,
                           text=True, cwd=ROOT)
    assert mixed.returncode == 2 and "not both" in mixed.stderr
