"""Progress of long work on stderr: a live bar on a terminal, plain lines everywhere else.

rich draws the bar (and keeps the table printed on stdout above it); when stderr is not a
terminal (CI logs, pipes, `2> file`) nothing is redrawn: each finished item is one clean
line with the time elapsed and an estimate of what is left, so logs read like a transcript.
Work is weighted (a size's expected wall time, a campaign point), so the estimate holds when
items differ a thousandfold.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar


def clock(seconds: float) -> str:
    """'7 s', '3m05s', '2h01m', '30 days'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds / 86400:,.0f} days"


class Progress:
    """`total` weight of work named `what`, `done` of it finished before this session."""

    def __init__(self, what: str, total: float, done: float = 0.0, items: int = 0,
                 unit: str = "", out: TextIO | None = None) -> None:
        """Count in `unit`s of weight (campaign points), or in `items` (sizes of unequal
        weight)."""
        self.what, self.total, self.done = what, total, done
        self.items, self.unit, self.finished = items, unit, 0
        self.start, self.paced = time.monotonic(), 0.0  # weight finished in this session
        self.console = Console(file=out or sys.stderr, highlight=False, soft_wrap=True)
        self.bar: Bar | None = None
        if self.console.is_terminal:
            self.bar = Bar(TextColumn("{task.description}"), BarColumn(),
                           TimeElapsedColumn(), TextColumn("{task.fields[left]}"),
                           console=self.console, transient=True)
            self.task = self.bar.add_task(what, total=total, completed=done, left="")
            self.bar.start()

    def working_on(self, label: str) -> None:
        """What is running now (shown on the bar; a log gets a line only when it ends)."""
        if self.bar is not None:
            self.bar.update(self.task, description=f"{self.what}: {label}")

    def advance(self, label: str, weight: float = 1.0, paced: bool = True) -> None:
        """An item finished. `paced`: it took its usual time (skipped items did not, and do
        not count toward the estimate)."""
        self.done += weight
        self.finished += 1
        self.paced += weight if paced else 0.0
        if self.bar is not None:
            left = self.left()
            self.bar.update(self.task, advance=weight, description=f"{self.what}: {label}",
                            left=f"about {clock(left)} left" if left is not None else "")
            return
        count = (f"{self.done:g}/{self.total:g} {self.unit}" if self.unit
                 else f"{self.finished}/{self.items}")
        self.note(f"netwall: {self.what} {count}: {label} ({self.eta()})")

    def left(self) -> float | None:
        """Seconds left at this session's pace, once there is one."""
        if not self.paced or self.done >= self.total:
            return None
        return (time.monotonic() - self.start) / self.paced * (self.total - self.done)

    def eta(self) -> str:
        text = f"{clock(time.monotonic() - self.start)} elapsed"
        left = self.left()
        return text if left is None else f"{text}, about {clock(left)} left"

    def note(self, text: str) -> None:
        """A line of its own (above the bar, on a terminal)."""
        self.console.print(text, markup=False, highlight=False)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
