"""A cell of the section being written: its kind, percent-format options and text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cell:
    kind: str  # "markdown" | "code"
    body: str
    options: dict = field(default_factory=dict)
    index: int | None = None  # position in the imported notebook; None for cells the importer adds

    @property
    def is_plain_markdown(self) -> bool:
        """Text an exercise header can be made from (no grading role)."""
        return self.kind == "markdown" and not (set(self.options) - {"id"})

    @property
    def is_test(self) -> bool:
        return "test" in self.options

    @property
    def is_manual(self) -> bool:
        return self.options.get("manual") is True or self.options.get("task") is True

    @property
    def is_answer(self) -> bool:
        """Where the student works: a solution cell or a manually graded answer / task."""
        return self.is_manual or (self.kind == "code" and "### BEGIN SOLUTION" in self.body)
