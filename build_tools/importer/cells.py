"""One notebook cell → one section cell: nbgrader's metadata becomes the format's options.

| nbgrader cell | section cell |
|---|---|
| autograded answer (code, ``solution``) | code cell with ``### BEGIN/END SOLUTION`` (the whole cell when it has no region) |
| autograder tests (code, ``grade``) | ``test="grade_id" points=N``, hidden-test regions kept |
| manually graded answer (``grade`` + ``solution``) | ``manual=true points=N id="grade_id"`` |
| manually graded task | ``[markdown] task=true points=N id="grade_id"`` |
| read-only (``locked``) | a plain cell with ``id="grade_id"`` (every non-answer cell is restored at grading) |

Anything the format cannot hold is kept in another form and reported, never dropped.
"""

from __future__ import annotations

import ast
import re

from build_tools import markers
from build_tools.importer.model import Cell
from build_tools.importer.report import Report
from build_tools.source import CELL_MARKER

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Editor state: meaningless in a source file, dropped without a note.
UI_METADATA = {"collapsed", "scrolled", "execution", "jupyter", "editable", "deletable", "trusted",
               "ExecuteTime", "id", "slideshow", "vscode", "colab", "outputId", "pycharm", "papermill"}
LOOSE_MARKER = re.compile(r"^(?P<indent>\s*)#+\s*(?P<verb>BEGIN|END)\s+(?P<what>SOLUTION|HIDDEN\s+TESTS)\b.*$", re.I)


def safe_id(name: str, report: Report, index: int) -> str:
    """A grade id the format accepts (letters, digits, '-', '_'; at most 64)."""
    if ID_PATTERN.match(name):
        return name
    fixed = (re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or f"cell_{index}")[:64]
    report.note(index, f"grade id {name!r} renamed {fixed!r} (ids are letters, digits, '-' and '_')")
    return fixed


def _points(meta: dict) -> float | int:
    points = meta.get("points", 0) or 0
    return int(points) if float(points).is_integer() else float(points)


def _normalise_markers(source: str, report: Report, index: int) -> str:
    """nbgrader finds its markers anywhere in a line; this format wants them alone on theirs."""
    lines = []
    for line in source.split("\n"):
        match = LOOSE_MARKER.match(line)
        if match and not markers.MARKER.match(line):
            what = re.sub(r"\s+", " ", match.group("what").upper())
            fixed = f"{match.group('indent')}### {match.group('verb').upper()} {what}"
            report.note(index, f"marker {line.strip()!r} rewritten as {fixed.strip()!r}")
            line = fixed
        lines.append(line)
    return "\n".join(lines)


def _comment_ipython(source: str, report: Report, index: int) -> str:
    """IPython magics and shell escapes are not Python: the section file must run as plain Python."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            indent = line[: len(line) - len(stripped)]
            lines.append(f"{indent}# IPython, not run: {stripped}")
            report.note(index, f"IPython line {stripped!r} commented out (the file must be plain Python; "
                               "put packages in colab_requires / the course requirements)")
        else:
            lines.append(line)
    return "\n".join(lines)


def _escape_cell_markers(body: str, kind: str, report: Report, index: int) -> str:
    """A body line that reads as a cell marker would split the cell when the file is parsed."""
    out = []
    for line in body.split("\n"):
        written = f"# {line}" if kind == "markdown" else line
        if CELL_MARKER.match(written):
            line = " " + line if kind == "markdown" else line.replace("# %%", "#  %%", 1)
            report.note(index, f"a line that would start a new cell ({written!r}) was indented by one space")
        out.append(line)
    return "\n".join(out)


def _as_text_block(cell, why: str, report: Report, index: int) -> Cell:
    """Unmappable content, kept verbatim in a markdown cell that says where it came from."""
    source = re.sub(r"###(\s*)(BEGIN|END)\b", r"### [imported]\1\2", cell.source)  # inert in markdown
    visible = "; its solution or hidden-test code is now VISIBLE to students" if source != cell.source else ""
    report.unmappable(index, f"{why}; kept as a markdown cell with the text in a fenced block{visible}")
    fence = "````" if "```" in source else "```"
    language = "python" if cell.cell_type == "code" else ""
    body = (f"**Imported {cell.cell_type} cell {index} ({why}); edit or remove.**\n\n"
            f"{fence}{language}\n{source}\n{fence}")
    return Cell("markdown", body, {}, index)


def _extra_metadata(cell, report: Report, index: int) -> dict:
    options = {}
    tags = cell.metadata.get("tags")
    if isinstance(tags, list) and tags:
        options["tags"] = [str(t) for t in tags]
    dropped = sorted(set(cell.metadata) - UI_METADATA - {"nbgrader", "tags"})
    if dropped:
        report.note(index, f"cell metadata not kept (the format has no place for it): {', '.join(dropped)}")
    return options


def _markdown_regions(body: str, options: dict, answer: bool, nbg: dict, grade_id, report: Report,
                      index: int) -> list[Cell]:
    """A markdown answer with a ``### BEGIN SOLUTION`` region: nbgrader keeps the text around the
    region for the student. Here the region becomes the manually graded answer cell and the text
    around it plain cells, in order."""
    lines = body.split("\n")
    begins = [i for i, line in enumerate(lines) if re.search(r"BEGIN\s+SOLUTION", line)]
    ends = [i for i, line in enumerate(lines) if re.search(r"END\s+SOLUTION", line)]
    if not answer or len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0] or "HIDDEN" in body:
        inert = re.sub(r"###(\s*)(BEGIN|END)\b", r"### [imported]\1\2", body)
        report.unmappable(index, "nbgrader markers in a markdown cell that is not one manually graded answer "
                                 "with one solution region; kept as text with the markers made inert")
        return [Cell("markdown", inert, {k: v for k, v in options.items() if k in ("tags", "id")}, index)]
    before, region, after = (("\n".join(part).strip("\n")) for part in
                             (lines[:begins[0]], lines[begins[0] + 1:ends[0]], lines[ends[0] + 1:]))
    report.note(index, "the text around the answer's solution region became cells of its own "
                       "(the student sees it, and writes the answer in the cell between)")
    out = [Cell("markdown", before, {}, index)] if before.strip() else []
    out.append(Cell("markdown", region, {**options, "manual": True, "points": _points(nbg), "id": grade_id}, index))
    return out + ([Cell("markdown", after, {}, index)] if after.strip() else [])


def convert_cell(cell, index: int, report: Report) -> list[Cell]:
    """The section cells one notebook cell becomes (one, except a markdown answer with a region)."""
    converted = _convert(cell, index, report)
    return converted if isinstance(converted, list) else [converted]


def _convert(cell, index: int, report: Report):
    nbg = cell.metadata.get("nbgrader") or {}
    grade, solution, task, locked = (bool(nbg.get(k)) for k in ("grade", "solution", "task", "locked"))
    grade_id = safe_id(str(nbg["grade_id"]), report, index) if nbg.get("grade_id") else None
    if cell.cell_type == "raw":
        return _as_text_block(cell, "a raw cell (the format has markdown and code cells only)", report, index)
    options = _extra_metadata(cell, report, index)

    if cell.cell_type == "markdown":
        body = _escape_cell_markers(cell.source, "markdown", report, index)
        if LOOSE_MARKER.search(body) or re.search(r"BEGIN\s+(SOLUTION|HIDDEN)", body):
            return _markdown_regions(body, options, grade and solution, nbg, grade_id, report, index)
        if task:
            options.update(task=True, points=_points(nbg), id=grade_id)
        elif grade and solution:
            options.update(manual=True, points=_points(nbg), id=grade_id)
        elif grade:
            report.unmappable(index, "a graded markdown cell that is not an answer (nbgrader cannot run it); "
                                     "imported as plain text, its points are not kept")
            options["id"] = grade_id
        elif grade_id:
            options["id"] = grade_id
        if options.get("points") == 0:
            report.unmappable(index, f"{'task' if task else 'manually graded answer'} {grade_id!r} has 0 points; "
                                     "imported as plain text (the format needs points > 0)")
            options = {k: v for k, v in options.items() if k in ("tags", "id")}
        return Cell("markdown", body, options, index)

    source = _comment_ipython(_normalise_markers(cell.source, report, index), report, index)
    try:
        ast.parse(source)
    except SyntaxError as err:
        return _as_text_block(cell, f"not valid Python 3 (line {err.lineno}: {err.msg})", report, index)
    blocks, found = markers.scan(source)
    if found:
        return _as_text_block(cell, f"nbgrader markers out of order ({found[0][1]})", report, index)
    kinds = {b.kind for b in blocks}
    if solution and "solution" not in kinds:
        # nbgrader replaces a whole answer cell without a region by its stub: say so explicitly.
        source = f"### BEGIN SOLUTION\n{source}\n### END SOLUTION"
    if task:
        return _as_text_block(cell, "a task on a code cell (nbgrader tasks are markdown)", report, index)
    if grade and solution:
        if "hidden" in kinds:
            return _as_text_block(cell, "hidden tests inside a manually graded answer", report, index)
        options.update(manual=True, points=_points(nbg), id=grade_id)
    elif grade:
        if _points(nbg) <= 0:
            if "hidden" in kinds:
                return _as_text_block(cell, "a 0-point test cell with hidden tests", report, index)
            report.unmappable(index, f"test {grade_id!r} has 0 points; imported as an ungraded code cell")
            options["id"] = grade_id
        else:
            options.update(test=grade_id, points=_points(nbg))
    else:
        if "hidden" in kinds:
            return _as_text_block(cell, "hidden tests outside an autograder test cell", report, index)
        if grade_id:
            options["id"] = grade_id
    return Cell("code", _escape_cell_markers(source, "code", report, index), options, index)
