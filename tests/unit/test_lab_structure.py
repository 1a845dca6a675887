"""The teaching labs (labs/*.md) keep their shape: each lab's sections, its answer key, the
index, and that every command it gives parses (tests/root/test_lab_commands.py runs them)."""

from __future__ import annotations

import re
import shlex

import pytest

from emulator.cli.parsing import build_parser
from tests.labtext import (
    CONSOLE_COMMANDS,
    LAB_FILES,
    LABS,
    LINE,
    NODE,
    ROOT,
    SECTIONS,
    commands,
)


def test_lab_structure():
    assert len(LAB_FILES) >= 5, [p.name for p in LAB_FILES]
    index = (LABS / "README.md").read_text()
    for lab in LAB_FILES:
        text = lab.read_text()
        headings = re.findall(r"^## (.+?)\s*$", text, re.M)
        for section in SECTIONS:
            assert section in headings, f"{lab.name}: no '## {section}' section"
        assert [h for h in headings if h in SECTIONS] == list(SECTIONS), \
            f"{lab.name}: sections out of order: {headings}"
        answer = LABS / "answers" / lab.name
        assert answer.is_file(), f"{lab.name}: no answer key {answer.relative_to(ROOT)}"
        assert f"answers/{lab.name}" in text, f"{lab.name} does not point to its answer key"
        assert f"({lab.name})" in index, f"labs/README.md does not list {lab.name}"
        # Each question has an answer.
        asked = len(re.findall(r"^\d+\. ", text.split("## Questions", 1)[1], re.M))
        answered = len(re.findall(r"^\d+\. ", answer.read_text(), re.M))
        assert asked and answered >= asked, f"{lab.name}: {asked} questions, {answered} answers"
        lines = commands(lab)
        assert lines, f"{lab.name} has no sh blocks"
        for line, _status in lines:
            match = LINE.match(line)
            assert match, f"{lab.name}: not a lab command: {line}"
            try:
                build_parser().parse_args(shlex.split(match["args"]))
            except SystemExit as e:
                pytest.fail(f"{lab.name}: netwall rejects the arguments ({e}): {line}")
            if match["input"]:
                for step in shlex.split(match["input"])[0].split("\\n"):
                    word = step.split()[0] if step.split() else ""
                    assert not word or word in CONSOLE_COMMANDS or NODE.match(word), \
                        f"{lab.name}: unknown console command {word!r}: {line}"
