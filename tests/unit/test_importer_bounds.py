"""The importers (NCCL logs, Chakra .et) against hostile input, as a red team sent it (issue 26):
each case is refused in one line or imported into a trace replay accepts, within the trace's
limits, in memory bounded by what the input really holds (tracemalloc) and in work linear in
the input (Python lines executed, counted at n and 4n: never a timing).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from foundation.errors import NetwallError
from tests.chakra_files import PB, allreduce, bomb, chain, et_bytes, node, varint
from tests.nccl_lines import A, B, comms_log, excerpt_log, init, line, pair
from topologies.graph import MAX_GPUS
from traffic import chakra, nccl_calls, nccl_log
from traffic.chakra import COLL, COMP, RECV, SEND, import_chakra
from traffic.collectives.base import validate_size
from traffic.nccl_log import convert, import_nccl_log
from traffic.trace import Call, dump_trace, parse_trace, resolve, takers

ROOT = Path(__file__).resolve().parents[2]


# --- what every importer's output must be -------------------------------------------------


def replayable(calls: list[Call]) -> None:
    """What `netwall replay` checks before it builds anything: the trace reads back as the
    same calls, binds to a topology of the ranks it names, and every call has a schedule."""
    assert parse_trace(dump_trace(calls).splitlines(), "again") == calls
    ranks = max(2, max((r for c in calls for r in c.group), default=0) + 1)
    assert ranks <= MAX_GPUS
    for call in resolve(calls, ranks):
        validate_size(call.collective, len(takers(call)), call.bytes)


def peak_mib(fn, *args) -> tuple[object, float]:
    """fn's result (or its NetwallError) and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        result = fn(*args)
    except NetwallError as e:
        result = e
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result, peak


def one_line(error: object) -> str:
    assert isinstance(error, NetwallError), error
    message = str(error)
    assert message and "\n" not in message and len(message) < 500, message
    return message


# --- NCCL logs ----------------------------------------------------------------------------




@pytest.mark.parametrize("lines, reason", [
    (pair(count=10**30), "calls of more than 1 TiB"),
    (pair(count=2**38, op="AllGather"), "calls of more than 1 TiB"),  # x 2 ranks x 4 B
    (pair(nranks=10**12), "more than 1024 ranks"),
    (pair(count=-5), "unknown format"),
    ([x.replace("opCount 0", "opCount " + "f" * 17) for x in pair()], "unknown format"),
    (pair(count="9" * 5000), "calls of more than 1 TiB"),  # no 5000-digit int is made
    (pair(count="١٢"), "unknown format"),  # Python's int() reads Arabic-Indic digits
    (pair(op="Broadcast", root=-1), "unknown format"),
    (pair(op="Broadcast", root=2), "root or peer outside their communicator"),
    (pair(op="Send", root=5), "root or peer outside their communicator"),
])
def test_numbers_over_the_traces_limits_are_skipped_and_named(lines, reason):
    message = one_line(peak_mib(import_nccl_log, lines, "x.log")[0])
    assert message.startswith("x.log: no replayable collective calls") and reason in message


@pytest.mark.parametrize("nranks", [10**7, 10**12])
def test_an_init_line_claiming_millions_of_ranks_allocates_nothing_for_them(nranks):
    lines = [init("0xa", 0, nranks, A, "0x1"), line("AllReduce", 0, 8, "0xa", nranks, A),
             *pair(opcount=1)]
    notes: list[str] = []
    calls, peak = peak_mib(import_nccl_log, lines, "x.log", notes)
    replayable(calls)
    assert peak < 2
    assert "skipped 1 INIT lines whose rank is not below nranks, or nranks over 1024" in notes
    assert "skipped 1 calls on communicators of more than 1024 ranks (netwall's limit)" in notes


def test_a_log_of_more_gpus_than_netwall_replays_is_refused():
    lines = [line("AllReduce", 0, 8, f"0x{r}", 2, f"h{r}:{r}:{r} [0]") for r in range(1100)]
    assert "names 1100 GPUs; netwall replays at most 1024" in one_line(
        peak_mib(import_nccl_log, lines, "x.log")[0])


def test_more_calls_than_a_trace_holds_are_refused(monkeypatch):
    monkeypatch.setattr(nccl_log, "MAX_CALLS", 10)
    lines = [x for k in range(11) for x in pair(opcount=k)]
    assert "more than 10 calls on one communicator" in one_line(
        peak_mib(import_nccl_log, lines, "x.log")[0])


def test_sizes_are_rounded_to_what_replay_runs_and_counted():
    notes: list[str] = []
    calls = import_nccl_log(pair(count=3, dtype=0) + pair("AllGather", 1, dtype=0, opcount=1),
                            "x.log", notes)
    replayable(calls)
    assert [c.bytes for c in calls] == [4, 8]  # 3 int8 -> one float32; 2 x 1 int8 -> 2 x 4
    assert "skipped 4 byte counts rounded up to whole float32 elements per rank (kept)" in notes


def test_a_comm_pointer_reused_after_destroy_is_a_new_communicator():
    # a 2-rank communicator, destroyed; the same addresses then hold a 4-rank one (new INIT
    # lines, new commId): its call must not be merged into the first as a fabricated call
    lines = [init("0xa", 0, 2, A, "0x1"), init("0xb", 1, 2, B, "0x1"), *pair(),
             init("0xa", 0, 4, A, "0x2"), init("0xb", 1, 4, B, "0x2"),
             line("AllReduce", 0, 64, "0xa", 4, A), line("AllReduce", 0, 64, "0xb", 4, B)]
    notes: list[str] = []
    calls = import_nccl_log(lines, "x.log", notes)
    replayable(calls)
    assert [(c.bytes, len(c.group)) for c in calls] == [(32, 2), (256, 4)]
    assert "2 comm pointers initialised again after use" in notes[1]
    assert any("lines of only 2 of its 4 ranks: local ranks [2, 3] missing" in n for n in notes)
    # without INIT lines, the pointer's new nranks tells the same
    lines = [*pair(), line("AllReduce", 0, 64, "0xa", 4, A), line("AllReduce", 0, 64, "0xb", 4, B)]
    calls = import_nccl_log(lines, "x.log")
    assert [(c.bytes, len(c.group)) for c in calls] == [(32, 2), (256, 4)]


def test_an_excerpt_of_3_of_128_ranks_never_replays_on_2_gpus():
    lines = [line("AllReduce", 0, 1024, f"0x{r}", 128, f"h:{r}:{r} [{r}]") for r in range(3)]
    notes: list[str] = []
    calls = import_nccl_log(lines, "x.log", notes)
    replayable(calls)
    assert calls[0].group == tuple(range(128))
    assert ("world: lines of only 3 of its 128 ranks; their streams are taken from the ranks "
            "present, and every call is replayed over all 128") in notes
    with pytest.raises(NetwallError, match="outside the topology's 2 ranks"):
        resolve(calls, 2)


@pytest.mark.parametrize("text", ["a" * (1 << 20),  # no colon: the old prefix pattern's worst
                                  "h:1:1 [0] NCCL INFO " + " " * (1 << 20) + "x",
                                  "h:1:1 [0] NCCL INFO " + "comm a rank 1 nranks 2 " * 40000
                                  + "- Init COMPLETE",
                                  "x" * (3 << 20)])
def test_long_lines_cost_one_pass(tmp_path, text):
    log = tmp_path / "x.log"
    log.write_text(text + "\n" + "\n".join(pair()) + "\n")
    result, peak = peak_mib(convert, log)
    assert parse_trace(result.splitlines(), "x")[0].bytes == 32
    assert peak < 12  # a line is held at most once, and one longer than 1 MiB not even that


def test_a_nul_byte_or_a_fifo_is_one_line(tmp_path):
    log = tmp_path / "x.log"
    log.write_bytes(("\n".join(pair()) + "\n\0\n").encode())
    assert "contains NUL bytes" in one_line(peak_mib(convert, log)[0])
    fifo = tmp_path / "fifo.log"
    import os

    os.mkfifo(fifo)
    assert "is not a regular file" in one_line(peak_mib(convert, fifo)[0])


# --- Chakra execution traces --------------------------------------------------------------


def files(tmp_path: Path, graphs: dict[str, list]) -> list[Path]:
    out = []
    for name, nodes in graphs.items():
        (tmp_path / name).write_bytes(et_bytes(nodes))
        out.append(tmp_path / name)
    return out


@pytest.mark.parametrize("graph, reason", [
    ([allreduce(1, size=2**62)], "comm_size 4611686018427387904 is over a trace's limit"),
    ([node(1, COMP, micros=2**63), allreduce(2, [1])], "over a trace's limit of 3.6e+09"),
    ([node(1, SEND, comm_size=64, comm_dst=True)], "comm_dst must be an integer or a string"),
    ([node(1, SEND, comm_size=64, comm_dst=2)], "needs comm_dst, a rank from 0 to 1"),
    ([node(1, COLL, comm_size=64, comm_type=True)], "comm_type must be an integer"),
    ([allreduce(1, pg="x" * 300)], "pg_name is longer than 256 characters"),
    ([PB["Node"]()], "node 0 has no type (INVALID_NODE)"),
])
def test_chakra_values_over_the_traces_limits_are_refused(tmp_path, graph, reason):
    paths = files(tmp_path, {"t.0.et": graph, "t.1.et": graph})
    assert reason in one_line(peak_mib(import_chakra, paths)[0])


def test_an_empty_stream_and_process_group_name_still_make_a_valid_trace(tmp_path):
    graph = [allreduce(1, pg="", stream="")]
    calls = import_chakra(files(tmp_path, {"t.0.et": graph, "t.1.et": graph}))
    replayable(calls)
    assert (calls[0].stream, calls[0].group) == ("0", (0, 1))


def test_64_mib_of_zero_bytes_stops_at_the_first_node(tmp_path):
    path = tmp_path / "zeros.et"
    path.write_bytes(bytes(64 << 20))
    result, peak = peak_mib(import_chakra, [path])
    assert "node 0 has no type (INVALID_NODE)" in one_line(result) and peak < 2


@pytest.mark.parametrize("data, reason", [
    (varint(1 << 62) + b"x" * 100, "claims 4611686018427387904 bytes, over 16 MiB"),
    (b"\xff" * 20, "a message length is cut short or malformed"),
    (et_bytes([allreduce(1)])[:-3], "a truncated file?"),
    (b"\x1f\x8b\x08\x00garbage", "not a readable gzip file"),
])
def test_framing_is_checked_before_protobuf_sees_a_byte(tmp_path, data, reason):
    path = tmp_path / "x.et"
    path.write_bytes(data)
    assert reason in one_line(peak_mib(import_chakra, [path])[0])


def test_a_gzip_bomb_is_inflated_in_bounded_reads_and_stopped_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(chakra, "MAX_LOG_BYTES", 4 << 20)
    path = bomb(tmp_path / "bomb.et.gz", 16)  # valid messages all the way to the limit
    assert path.stat().st_size < 100_000
    result, peak = peak_mib(import_chakra, [path])
    assert "larger than 4 MiB (uncompressed)" in one_line(result)
    assert peak < 8  # a message or two at a time, never the whole file


def test_waits_are_not_copied_transitively_through_compute(tmp_path):
    # each compute node waits for the one before and a new collective: its set of waits
    # grows by one, and copying it per node took 3.8 GB at 40,000 nodes
    graph = [*chain(3000), allreduce(6001, [6000], size=64, pg="p")]
    calls, peak = peak_mib(import_chakra, files(tmp_path, {"grow.et": graph}))
    replayable(calls)
    assert len(calls[-1].after) == 3000 and calls[-1].gap_us == 3000
    assert peak < 16  # copied per node: 3000 sets of 1500 on average, over 100 MiB


def test_waits_fanning_out_too_widely_are_refused_before_they_are_tracked(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(chakra, "MAX_LINKS", 1000)
    graph = [allreduce(i + 1, size=64, pg="p") for i in range(40)]
    graph += [node(100 + j, COMP, range(1, 41), micros=1) for j in range(40)]
    graph += [allreduce(200 + j, [100 + j], size=64, pg="p") for j in range(40)]
    result = peak_mib(import_chakra, files(tmp_path, {"fan.et": graph}))[0]
    assert "take more than 1000 steps to track" in one_line(result)


def test_rank_files_are_bounded_before_any_is_read():
    paths = [Path(f"/nonexistent/t.{r}.et") for r in range(MAX_GPUS + 1)]
    assert "1025 Chakra trace files: netwall replays at most 1024 ranks" in one_line(
        peak_mib(import_chakra, paths)[0])


def test_ranks_come_from_the_file_names_not_the_shells_order(tmp_path):
    # rank r sends to r + 1: given in the shell's order of `*.et` (0, 1, 10, 11, 2, ...),
    # files taken in argument order would pair the wrong ranks
    graphs = {}
    for r in sorted(range(12), key=str):
        graph = [allreduce(1)]
        if r < 11:
            graph.append(node(2, SEND, [1], comm_size=64, comm_dst=r + 1))
        if r > 0:
            graph.append(node(3, RECV, [1], comm_size=64, comm_src=r - 1))
        graphs[f"llama.{r}.et"] = graph
    notes: list[str] = []
    calls = import_chakra(files(tmp_path, graphs), notes)
    replayable(calls)
    sends = [takers(c) for c in calls if c.collective == "send"]
    assert sorted(sends) == [(r, r + 1) for r in range(11)]
    assert not any("one side" in n for n in notes)


@pytest.mark.parametrize("names, reason", [
    (["a.0.et", "b.0.et"], "a.0.et and"),
    (["t.0.et", "t.2.et"], "no file for rank 1: 2 files must name ranks 0 to 1"),
    (["t.0.et", "other.et"], "other.et: no rank in its name"),
])
def test_duplicate_missing_or_mixed_ranks_in_names_are_refused(tmp_path, names, reason):
    paths = files(tmp_path, {n: [allreduce(1)] for n in names})
    assert reason in one_line(peak_mib(import_chakra, paths)[0])


def test_names_without_ranks_keep_the_argument_order_and_say_so(tmp_path):
    notes: list[str] = []
    import_chakra(files(tmp_path, {"b.et": [allreduce(1)], "a.et": [allreduce(1)]}), notes)
    assert "no rank in the file names (NAME.RANK.et): ranks in the order given, b.et is " \
           "rank 0" in notes


# --- work counted: linear in the input ----------------------------------------------------


def work(fn, *args) -> int:
    """Lines of the importers' own code Python executes for fn(*args) (sys.settrace): their
    work, counted, whatever the machine's speed."""
    watched = {nccl_log.__file__, nccl_calls.__file__, chakra.__file__}
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame, event, arg):
        return local if frame.f_code.co_filename in watched else None

    sys.settrace(calls)
    try:
        fn(*args)
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("make", [lambda n: comms_log(n, same=False),
                                  lambda n: comms_log(n, same=True), excerpt_log],
                         ids=["distinct-comms", "identical-comms", "excerpt"])
def test_nccl_import_work_is_linear(make):
    small, large = (work(import_nccl_log, make(n), "x.log") for n in (300, 1200))
    assert 3.6 < large / small < 4.4, (small, large)


def ranks_graphs(n: int) -> dict[str, list]:
    return {f"t.{r}.et": [allreduce(1, size=64), node(2, COMP, [1], micros=3),
                          allreduce(3, [2], size=64, pg="tp")] for r in range(n)}


@pytest.mark.parametrize("make", [lambda n: {"chain.et": chain(n)}, ranks_graphs],
                         ids=["growing-waits", "many-ranks"])
def test_chakra_import_work_is_linear(tmp_path, make):
    counts = []
    for n in (64, 256):
        folder = tmp_path / str(n)
        folder.mkdir()
        counts.append(work(import_chakra, files(folder, make(n))))
    assert 3.6 < counts[1] / counts[0] < 4.4, counts


# --- the real command, as the red team ran it ---------------------------------------------


def crash_case(case: str, folder: Path) -> list[Path]:
    """The files of one case the red team found crashing, hanging or exhausting memory."""
    path = folder / case
    if case == "zeros.et":  # a segfault (rc 139) in protobuf's C parser
        path.write_bytes(bytes(64 << 20))
    elif case == "bomb.et.gz":  # MemoryError at 3.7 GB
        bomb(path, 260)
    elif case == "count.log":  # exit 0, a trace replay refused
        path.write_text("\n".join(pair(count=10**30)) + "\n")
    elif case == "init.log":  # 1-2 GB, or MemoryError
        path.write_text(init("0xa", 0, 10**12, A, "0x1") + "\n"
                        + line("AllReduce", 0, 8, "0xa", 10**12, A) + "\n")
    elif case == "comm_size.et":  # exit 0, a trace replay refused
        paths = [folder / f"c.{r}.et" for r in range(2)]
        for one in paths:
            one.write_bytes(et_bytes([allreduce(1, size=2**62)]))
        return paths
    else:  # 2,000 rank files: exit 0 (none need exist: they are counted first)
        return [folder / f"t.{r}.et" for r in range(2000)]
    return [path]


@pytest.mark.parametrize("case", ["zeros.et", "bomb.et.gz", "count.log", "init.log",
                                  "comm_size.et", "2000 files"])
def test_the_command_refuses_the_red_teams_crashes_in_one_line(tmp_path, case):
    # the real `netwall trace import`, in an address space of 3 GiB as the red team's
    # `ulimit -v` (no root: it builds no network)
    paths = crash_case(case, tmp_path)
    limited = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, "
               "(3 << 30, 3 << 30)); sys.argv = ['netwall'] + sys.argv[1:]; "
               "runpy.run_module('emulator.cli.main', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", limited, "trace", "import",
                           *map(str, paths)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr[-500:]
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr[-500:]
    assert done.stderr.startswith("netwall: error: ")
    if case == "bomb.et.gz":
        assert path_size(paths[0]) < 1 << 20 and "larger than 256 MiB (uncompressed)" in \
            done.stderr


def path_size(path: Path) -> int:
    return path.stat().st_size
