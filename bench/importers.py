"""The importers are linear in their input: `netwall trace import` timed at n and 4n.

Each shape is one a red team found quadratic (issue 26) or the plain case: an NCCL log of an
8-rank job (n calls, one rank's lines cut out, Send/Recv pairs), n two-rank communicators
without INIT lines (the old grouping compared each with all before it), lines without a
colon (the old prefix pattern backtracked over each: hours for one of 1 MiB), n of 8 KiB
and one of n KiB (up to 1 MiB, the longest a log line may be), a Chakra graph whose compute
waits on a growing set of calls (the old import copied the set at every node), and n rank
files. Each file is imported whole (`convert` / `convert_chakra`: read, import, write and
read back the trace) in this process, timed in CPU seconds of this process (the machine may
be shared), median of several runs; a ratio near 4 at 4n is linear, 16 quadratic (Python's
garbage collector, whose passes grow with the objects alive, adds a little to large inputs).
tests/unit/test_importer_bounds.py proves the same by counting the Python lines executed,
which needs no clock.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from foundation.text.table import markdown as md
from tests.chakra_files import allreduce, chain, et_bytes, node
from tests.nccl_lines import comms_log, excerpt_log, pair
from traffic.chakra import COMP, convert_chakra
from traffic.nccl_log import convert


def _log(folder: Path, lines: list[str]) -> list[Path]:
    path = folder / "x.log"
    path.write_text("\n".join(lines) + "\n")
    return [path]


def _ets(folder: Path, graphs: dict[str, list]) -> list[Path]:
    paths = []
    for name, graph in graphs.items():
        paths.append(folder / name)
        paths[-1].write_bytes(et_bytes(graph))
    return paths


def _ranks(n: int) -> dict[str, list]:
    return {f"t.{r}.et": [allreduce(1, size=64), node(2, COMP, [1], micros=3),
                          allreduce(3, [2], size=64, pg="tp")] for r in range(n)}


# name, n, files of size n, importer
SHAPES: list[tuple[str, int, Callable[[Path, int], list[Path]], Callable]] = [
    ("NCCL: 8-rank job, n calls (an excerpt)", 2000,
     lambda d, n: _log(d, excerpt_log(n)), lambda p: convert(p[0])),
    ("NCCL: n two-rank communicators", 5000,
     lambda d, n: _log(d, comms_log(n, same=False)), lambda p: convert(p[0])),
    ("NCCL: n lines of 8 KiB without a colon", 500,
     lambda d, n: _log(d, ["a" * (8 << 10)] * n + pair()), lambda p: convert(p[0])),
    ("NCCL: one line of n KiB without a colon", 256,
     lambda d, n: _log(d, ["a" * (n << 10)] + pair()), lambda p: convert(p[0])),
    ("Chakra: n calls, compute waiting on all before", 10000,
     lambda d, n: _ets(d, {"grow.et": chain(n)}), convert_chakra),
    ("Chakra: n rank files", 256, lambda d, n: _ets(d, _ranks(n)), convert_chakra),
]


def measure(repeats: int = 5) -> list[dict]:
    """Median CPU seconds of each shape at n and 4n, and their ratio."""
    rows = []
    for name, n, make, run in SHAPES:
        seconds = []
        for size in (n, 4 * n):
            with tempfile.TemporaryDirectory() as tmp:
                paths = make(Path(tmp), size)
                times = []
                for _ in range(repeats):
                    start = time.process_time()
                    run(paths)
                    times.append(time.process_time() - start)
            seconds.append(statistics.median(times))
        rows.append({"shape": name, "n": n, "seconds": seconds,
                     "ratio": seconds[1] / seconds[0], "repeats": repeats})
    return rows


def markdown(rows: list[dict]) -> str:
    return md(("input", "n", "CPU at n (ms)", "CPU at 4n (ms)", "ratio (4 = linear)"),
              [(r["shape"], str(r["n"]), f"{r['seconds'][0] * 1e3:.0f}",
                f"{r['seconds'][1] * 1e3:.0f}", f"{r['ratio']:.1f}") for r in rows])


if __name__ == "__main__":
    print(markdown(measure(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
