"""The layers stay visible: imports point one way, down, with no cycle, and a module imports
inside a function only for the reasons listed here (docs/architecture.md, "Layers").

Every module of foundation/, emulator/, topologies/ and traffic/ is read (not imported) and
its imports are held against LAYERS, lowest first. A module may import its own layer or any
below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("foundation", "emulator", "topologies", "traffic")

#: Lowest first; a module belongs to the longest prefix that names it.
LAYERS = (
    ("foundation", ("foundation",)),
    ("topologies", ("topologies",)),
    ("traffic, pure", ("traffic.schedule", "traffic.collectives", "traffic.header",
                       "traffic.protocol", "traffic.trace", "traffic.workloads",
                       "traffic.nccl_log", "traffic.shapes", "traffic.pipeline",
                       "traffic.protoschema", "traffic.chakra", "traffic.nccl_calls",
                       "traffic.machine", "traffic.callstate", "traffic.pacing")),
    ("models", ("emulator.models", "emulator.view.drawing", "emulator.view.frame")),
    ("kernel", ("emulator.kernel",)),
    ("traffic, runtime", ("traffic.agent", "traffic.forkserver", "traffic.launcher",
                          "traffic.scheduling", "traffic.gaps", "traffic.board")),
    ("remote", ("emulator.remote",)),
    ("facade", ("emulator.emulation", "emulator.result", "emulator.batches",
                "emulator.running", "emulator.assemble", "emulator.preflight",
                "emulator.proving")),
    ("view", ("emulator.view",)),
    ("experiments", ("emulator.experiments",)),
    ("cli", ("emulator.cli",)),
)

#: Imports inside a function, each with its reason: importing these costs about a second
#: (Mininet, pyroute2, scapy, matplotlib), and commands that do not build a network (profiles,
#: reach, --help, campaign status) must answer at once.
DEFERRED = {
    ("emulator.running", "emulator.kernel.network"),  # Mininet, only when building
    ("emulator.running", "emulator.remote.cluster"),  # asyncssh, only over several hosts
    ("emulator.cli.commands", "emulator.emulation"),
    ("emulator.cli.commands", "emulator.preflight"),  # builds an Emulation to calibrate
    ("emulator.cli.commands", "emulator.remote.ssh"),  # asyncssh, only to clean other hosts
    ("emulator.cli.commands", "emulator.cli.console"),
    ("emulator.cli.commands", "emulator.experiments.compare"),
    ("emulator.cli.viewing", "emulator.view.live"),  # aiohttp, only with --view
    ("emulator.cli.campaign", "emulator.experiments.runner"),
    ("emulator.cli.campaign", "emulator.experiments.report"),
    ("emulator.cli.campaign", "emulator.experiments.export"),  # report's rows: matplotlib
    ("emulator.cli.campaign", "emulator.experiments.slurm"),  # submitit and the runner
}


def layer(module: str) -> int:
    best = (-1, -1)
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (rank, len(prefix))
    return best[0]


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import of netwall's own modules."""
    tree = ast.parse(path.read_text())
    nested = {id(node) for fn in ast.walk(tree)
              if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known
                     else node.module for a in node.names]
        else:
            continue
        out += [(name, id(node) in nested) for name in names
                if name.split(".")[0] in PACKAGES]
    return out


KNOWN = modules()
# A package's __init__ re-exports what is below it (emulator.Emulation is loaded on use).
GRAPH = {name: imports(path, KNOWN) for name, path in KNOWN.items() if path.name != "__init__.py"}


def test_every_module_has_a_layer():
    assert [m for m in GRAPH if layer(m) < 0] == []


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    up = [f"{target} ({LAYERS[layer(target)][0]})" for target, _ in GRAPH[module]
          if layer(target) > layer(module)]
    assert not up, f"{module} ({LAYERS[layer(module)][0]}) imports upward: {up}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_inside_functions_only_for_a_listed_reason(module):
    deferred = {target for target, inside in GRAPH[module] if inside}
    assert deferred <= {t for m, t in DEFERRED if m == module}, \
        f"{module} imports inside a function: {sorted(deferred)}"


def test_no_import_cycle():
    """Tarjan's strongly connected components over every import, deferred ones included."""
    edges = {m: {t for t, _ in targets if t in GRAPH} for m, targets in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_checker_sees_an_upward_and_a_deferred_import(tmp_path):
    """The test above could fail: a module written with both faults is caught by both."""
    bad = tmp_path / "bad.py"
    bad.write_text("from emulator.cli.main import main\n\n\ndef f():\n"
                   "    import emulator.emulation\n")
    found = imports(bad, KNOWN)
    assert ("emulator.cli.main", False) in found and ("emulator.emulation", True) in found
    assert layer("emulator.cli.main") > layer("emulator.models.plan")
