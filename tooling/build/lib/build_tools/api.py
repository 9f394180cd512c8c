"""A small stable API for other parts of the project (the grader, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from build_tools.build import Paths, find_root, load_all, section_files, select
from build_tools.build import split_section as _split


def resolve_section(selector: str, root: Path | None = None) -> Path:
    """Section number ("1", "01") or file stem → its source file."""
    paths = Paths(root or find_root())
    return select(section_files(paths), [str(selector)])[0]


def split_section(selector: str, dist: Path | None = None, root: Path | None = None) -> dict:
    """Validate one section and write its exercise (nbgrader release) and grader-source notebooks.

    Returns {"stem", "exercise", "grader_source"}; raises build_tools.source.SourceError on bad input.
    """
    paths = Paths(root or find_root(), dist)
    section = load_all([resolve_section(selector, paths.root)])[0]
    return _split(section, paths)
