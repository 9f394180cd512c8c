"""What an import tells the author: cells it could not map one to one, and changes it made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Issue:
    file: Path
    cell: int | None  # index of the cell in the imported notebook (None: the notebook as a whole)
    why: str

    def __str__(self) -> str:
        where = f"{self.file}" if self.cell is None else f"{self.file} cell {self.cell}"
        return f"{where}: {self.why}"


@dataclass
class Report:
    source: Path
    unmapped: list[Issue] = field(default_factory=list)  # content kept in another form
    notes: list[Issue] = field(default_factory=list)  # what the importer added or changed
    written: Path | None = None
    images: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # validation of the written file (should be none)

    def unmappable(self, cell: int | None, why: str) -> None:
        self.unmapped.append(Issue(self.source, cell, why))

    def note(self, cell: int | None, why: str) -> None:
        self.notes.append(Issue(self.source, cell, why))
