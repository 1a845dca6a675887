"""The suite collects as one: pytest imports test files by their base name (no packages
under tests/), so a name used both in tests/unit and tests/root stops the whole run at
collection, as it did twice (stop 21, and the merge of issues 26-28)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_file_name_is_used_twice():
    seen: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        seen.setdefault(path.name, []).append(str(path.relative_to(TESTS)))
    assert {name: where for name, where in seen.items() if len(where) > 1} == {}
