"""Progress of long work on stderr: a live bar on a terminal, plain lines everywhere else.

rich draws the bar (and keeps the table printed on stdout above it); when stderr is not a
terminal (CI logs, pipes, `2> file`) nothing is redrawn: each finished item is one clean
line with the time elapsed and an estimate of what is left, so logs read like a transcript.
Work is weighted (a size's expected wall time, a campaign point), so the estimate holds when
items differ a thousandfold. The estimate counts down between items, and an item that runs
past it says so ("2m10s over the estimate") instead of showing a stale "about 5 s left".
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar
from rich.text import Text


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
        self.due: float | None = None  # when the work should end, at the pace so far
        self.console = Console(file=out or sys.stderr, highlight=False, soft_wrap=True)
        self.bar: Bar | None = None
        if self.console.is_terminal:
            self.bar = Bar(TextColumn("{task.description}"), BarColumn(),
                           TimeElapsedColumn(), _Left(self), console=self.console,
                           transient=True)
            self.task = self.bar.add_task(what, total=total, completed=done)
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
        left = self.left()
        self.due = None if left is None else time.monotonic() + left
        if self.bar is not None:
            self.bar.update(self.task, advance=weight, description=f"{self.what}: {label}")
            return
        count = (f"{self.done:g}/{self.total:g} {self.unit}" if self.unit
                 else f"{self.finished}/{self.items}")
        self.note(f"netwall: {self.what} {count}: {label} ({self.eta()})")

    def left(self) -> float | None:
        """Seconds left at this session's pace, once there is one."""
        if not self.paced or self.done >= self.total:
            return None
        return (time.monotonic() - self.start) / self.paced * (self.total - self.done)

    def remaining(self, now: float | None = None) -> str:
        """'about 3m05s left', counting down from the last finished item; past it, 'X over
        the estimate' (an item slower than the pace so far); '' before there is a pace."""
        if self.due is None or self.done >= self.total:
            return ""
        now = time.monotonic() if now is None else now
        if now < self.due + 1:  # within the second it was due: not yet late
            return f"about {clock(self.due - now)} left"
        return f"{clock(now - self.due)} over the estimate"

    def eta(self) -> str:
        text = f"{clock(time.monotonic() - self.start)} elapsed"
        left = self.remaining()
        return f"{text}, {left}" if left else text

    def note(self, text: str) -> None:
        """A line of its own (above the bar, on a terminal)."""
        self.console.print(text, markup=False, highlight=False)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class _Left(ProgressColumn):
    """The bar's estimate, redrawn a few times a second (so it counts down, and says when
    it is passed) rather than only when an item ends."""

    max_refresh = 0.5

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task) -> Text:
        return Text(self.progress.remaining())
