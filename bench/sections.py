"""BENCHMARKS.md as sections: each bench's section found by its title and replaced where it
stands, the others kept (bench/run.py, and bench/vm_report.py for the Vagrant box's)."""

from __future__ import annotations

import re

HEADING = re.compile(r"^## (?P<title>.*?)(?: \((?P<tail>[^()]*)\))?$", re.MULTILINE)


def split(text: str) -> tuple[str, list[str]]:
    """The text before the first section, and each section (its heading to the next)."""
    starts = [m.start() for m in HEADING.finditer(text)]
    if not starts:
        return text, []
    return text[:starts[0]], [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)],
                                                          strict=True)]


def title(section: str) -> str:
    """A section's title: its heading without the parenthesis that says where it is from."""
    return HEADING.match(section).group("title")


def stamped(section: str, source: str, day: str, seconds: float) -> str:
    """The section with its heading saying where it comes from, when, and how long it took."""
    heading, _, rest = section.strip("\n").partition("\n")
    took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
    return f"## {title(heading)} ({source}, measured {day} in {took})\n{rest}\n\n"


def splice(text: str, fresh: list[str], preface: str | None = None) -> str:
    """`text` (an old BENCHMARKS.md) with each `fresh` section in place of the one of the same
    title, new ones at the end, and `preface` before them all (None: the text's own)."""
    own, old = split(text)
    preface = own.rstrip("\n") + "\n" if preface is None else preface
    by_title = {title(s): s for s in fresh}
    kept = [by_title.pop(title(s), s) for s in old]
    body = "".join(s.rstrip("\n") + "\n\n" for s in [*kept, *by_title.values()])
    return preface + "\n" + body.rstrip("\n") + "\n"
