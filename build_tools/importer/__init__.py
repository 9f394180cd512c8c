"""`course import`: an nbgrader source notebook (or any notebook) → a section source file.

Steps, each in its own module: read the notebook (nbformat / jupytext), convert every cell
(``cells``), copy the images it shows (``images``), add what a section needs (``structure``:
exercise headers, parameters cell), write the percent-format file (``write``), then parse and
validate it like any section. Every cell that could not be mapped one to one is kept in another
form and listed in the report (file, cell index, why).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext

from build_tools.atomic import write_text
from build_tools.importer.cells import convert_cell
from build_tools.importer.images import collect_images
from build_tools.importer.report import Issue, Report
from build_tools.importer.structure import add_exercise_headers, add_parameters_cell
from build_tools.importer.write import render_section
from build_tools.source import STEM_PATTERN, load_section

__all__ = ["import_notebook", "next_path", "Issue", "Report", "ImportError_"]


class ImportError_(Exception):
    """The import cannot start (bad arguments, unreadable notebook, file exists)."""


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "imported"


def next_path(sources: Path, name: str, taken: list[Path]) -> Path:
    numbers = [int(p.stem[:2]) for p in [*sources.glob("*.py"), *taken] if p.stem[:2].isdigit()]
    number = max(numbers, default=0) + 1
    if number > 99:
        raise ImportError_("no free section number left (01-99)")
    return sources / f"{number:02d}_{slug(name)}.py"


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+?)\s*$", cell.source, re.M)
            if match:
                return match.group(1)
    return fallback


def import_notebook(notebook: Path, out: Path, force: bool = False) -> Report:
    """Write the section file ``out`` (and its images) from ``notebook``; return the report."""
    notebook, out = Path(notebook), Path(out)
    if not STEM_PATTERN.match(out.stem) or out.suffix != ".py":
        raise ImportError_(f"{out}: section files are named NN_short_name.py")
    if out.exists() and not force:
        raise ImportError_(f"{out} already exists (--force replaces it)")
    try:
        nb = jupytext.read(notebook)
    except Exception as err:  # nbformat and jupytext raise many kinds for unreadable files
        raise ImportError_(f"{notebook}: cannot read the notebook: {err}") from None
    language = ((nb.metadata.get("kernelspec") or {}).get("language")
                or (nb.metadata.get("language_info") or {}).get("name") or "python")
    if language.lower() != "python":
        raise ImportError_(f"{notebook}: a {language} notebook; sections are Python (nothing was written)")
    report = Report(notebook)
    cells = [converted for i, cell in enumerate(nb.cells) for converted in convert_cell(cell, i, report)]
    if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
        report.note(None, "outputs were not imported: the build executes the section and makes them again")

    files_dir = out.parent / f"{out.stem}_files"
    attachments = {i: dict(c.get("attachments") or {}) for i, c in enumerate(nb.cells)}
    images = collect_images(cells, attachments, notebook.resolve().parent, files_dir, report)
    for i, bundle in attachments.items():
        unused = [n for n in bundle if f"attachment:{n}" not in nb.cells[i].source]
        if unused:
            report.unmappable(i, f"attachments not shown by the cell's text were not copied: {', '.join(unused)}")

    cells = add_parameters_cell(add_exercise_headers(cells, report), report)
    title = _title(nb, notebook.stem)
    meta = {"title": title, "short_title": title, "essential": False, "prerequisites": [], "colab_requires": []}
    text = render_section(meta, cells, notebook.name)

    for name, data in images.items():
        files_dir.mkdir(parents=True, exist_ok=True)
        (files_dir / name).write_bytes(data)
        report.images.append(files_dir / name)
    write_text(out, text)
    report.written = out
    from build_tools.validate import validate

    report.problems = validate(load_section(out))
    return report
