"""What `course build` shows while it executes notebooks, and the summary table at the end.

On a terminal: a live rich display, one row per running section (cells done of total, elapsed time,
the last recorded run's time as the estimate). Anywhere else (CI, a log file): one plain line per
event, never a control character, so logs stay greppable. Events come from the notebook client's
per-cell hook, in this process or, through a queue, from the build's worker processes.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# A cell event: (stem, cells done, cells in all); done == 0 means the notebook has just started.
CellEvent = tuple[str, int, int]
STOP = None  # put on a queue after the last event


class BuildProgress:
    """Receives start / cell / finish events for the notebooks being executed and shows them."""

    def __init__(self, console: Console, estimates: dict[str, float]):
        self.console = console
        self.estimates = estimates  # stem -> seconds of its last recorded run
        self.live = console.is_terminal
        self.started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._tasks: dict[str, int] = {}
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
            TimeElapsedColumn(), TextColumn("{task.fields[estimate]}"), console=console, transient=True,
        ) if self.live else None

    def __enter__(self) -> "BuildProgress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def _estimate(self, stem: str) -> str:
        last = self.estimates.get(stem)
        return f"last run {last:.0f} s" if last else "no earlier run"

    def _line(self, text: str) -> None:
        # Plain lines: no markup, no highlighting, never wrapped (a path must stay on one line).
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def cell(self, event: CellEvent) -> None:
        stem, done, total = event
        with self._lock:
            if stem not in self.started:
                self.started[stem] = time.monotonic()
                if self._bar:
                    self._tasks[stem] = self._bar.add_task(stem, total=total, estimate=self._estimate(stem))
                    self._bar.refresh()
                else:
                    self._line(f"  {stem}: started, {total} cells ({self._estimate(stem)})")
            if done == 0:
                return
            if self._bar:
                self._bar.update(self._tasks[stem], completed=min(done, total), total=total, refresh=True)
            else:
                elapsed = time.monotonic() - self.started[stem]
                self._line(f"  {stem}: cell {min(done, total)}/{total} done, {elapsed:.0f} s")

    def finished(self, stem: str, seconds: float) -> None:
        with self._lock:
            if self._bar and stem in self._tasks:
                self._bar.remove_task(self._tasks.pop(stem))
            # This exact wording is parsed by bench/__main__.py.
            self._line(f"  {stem}: executed in {seconds:.1f} s")

    def note(self, text: str) -> None:
        with self._lock:
            self._line(text)


def drain(queue, on_event: Callable[[CellEvent], None]) -> threading.Thread:
    """Feed the events put on `queue` (by worker processes) to `on_event` until STOP arrives."""
    def run():
        while (event := queue.get()) is not STOP:
            on_event(event)

    thread = threading.Thread(target=run, name="build-progress", daemon=True)
    thread.start()
    return thread


def summary_table(rows: list[tuple[str, bool, float]], plain: bool) -> Table:
    """Per section: executed or cached, and its execution seconds."""
    table = Table(title="build summary", box=box.ASCII if plain else box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("section")
    table.add_column("run")
    table.add_column("seconds", justify="right")
    for stem, cached, seconds in rows:
        table.add_row(stem, "cached" if cached else "executed", "-" if cached else f"{seconds:.1f}")
    return table
