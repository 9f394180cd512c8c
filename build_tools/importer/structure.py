"""Make the imported cells a valid section: exercise headers above graded cells, a parameters cell.

nbgrader has no notion of an exercise; an assignment reads "Part A" text, answer cells, tests,
"Part B" text, and so on. An exercise opens at an answer (or a test) that follows the previous
exercise's graded cells; the text just above it becomes its header, and its first heading the
exercise's title.
"""

from __future__ import annotations

import re

from build_tools.importer.model import Cell
from build_tools.importer.report import Report

HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
RULE = re.compile(r"^\s*(-{3,}|\*{3,}|_{3,})\s*$")
# The format requires badges; an import has no such information, so the author sets them.
DEFAULT_BADGES = {"difficulty": 2, "importance": 3, "minutes": "10"}


def _graded(cell: Cell) -> bool:
    return cell.is_test or cell.is_answer


def _groups(cells: list[Cell]) -> list[list[int]]:
    """Positions of graded cells, grouped per exercise."""
    groups: list[list[int]] = []
    previous = None  # the last graded cell
    text_since = False  # plain text between it and this one
    for pos, cell in enumerate(cells):
        if cell.is_plain_markdown:
            text_since = True
            continue
        if not _graded(cell):
            continue
        new = (not groups or (not cell.is_test and (previous.is_test or previous.is_manual or text_since)))
        if new:
            groups.append([pos])
        else:
            groups[-1].append(pos)
        previous, text_since = cell, False
    # An exercise needs something graded: a run of answers without a test joins the next one.
    merged: list[list[int]] = []
    carry: list[int] = []
    for group in groups:
        if any(cells[p].is_test or cells[p].is_manual for p in group):
            merged.append(carry + group)
            carry = []
        else:
            carry += group
    if carry:
        (merged[-1].extend(carry) if merged else merged.append(carry))
    return merged


def _split_title(body: str) -> tuple[list[str], str | None, str]:
    """(leading rules, the first heading's text or None, the rest of the text)."""
    lines = body.split("\n")
    rules = []
    while lines and (RULE.match(lines[0]) or not lines[0].strip()):
        if lines[0].strip():
            rules.append(lines[0])
        lines.pop(0)
    match = HEADING.match(lines[0]) if lines else None
    if not match:
        return rules, None, "\n".join(lines)
    return rules, match.group("title"), "\n".join(lines[1:]).strip("\n")


def _header_cells(text: Cell | None, title_from: Cell, number: int, report: Report) -> list[Cell]:
    """The exercise header: made from ``text`` (a plain markdown cell), or split off the heading that
    opens ``title_from`` (a task or answer that carries its own title), or a new one."""
    fallback = str(title_from.options.get("id") or title_from.options.get("test") or f"Exercise {number}")
    if text is None:
        if title_from.kind == "markdown":
            rules, title, rest = _split_title(title_from.body)
            if title and rest.strip():
                title_from.body = rest
                report.note(title_from.index, f"its heading {title!r} became the header of exercise {number}")
                return ([Cell("markdown", "\n".join(rules), {}, title_from.index)] if rules else []) + [
                    Cell("markdown", "", {"exercise": title, **DEFAULT_BADGES}, title_from.index)]
        report.note(title_from.index, f"no text above this graded cell: added an exercise header {fallback!r}")
        return [Cell("markdown", "", {"exercise": fallback, **DEFAULT_BADGES}, None)]
    rules, title, rest = _split_title(text.body)
    if title is None:
        title, rest = fallback, text.body
    # A horizontal rule above the heading stays a rule above the exercise (its own cell).
    out = [Cell("markdown", "\n".join(rules), {}, text.index)] if rules else []
    ident = {"id": text.options["id"]} if "id" in text.options else {}
    text.body, text.options = rest, {"exercise": title, **DEFAULT_BADGES, **ident}
    return out + [text]


def add_exercise_headers(cells: list[Cell], report: Report) -> list[Cell]:
    groups = _groups(cells)
    replace: dict[int, list[Cell]] = {}  # position → cells that take its place
    insert: dict[int, list[Cell]] = {}  # position → header cells that go before it
    boundary = -1  # last graded position of the previous exercise
    for number, group in enumerate(groups, 1):
        first = group[0]
        # The text above: preferably the nearest one that opens with a heading (the exercise's title).
        texts = [p for p in range(first - 1, boundary, -1) if cells[p].is_plain_markdown]
        titled = [p for p in texts if _split_title(cells[p].body)[1]]
        text_pos = (titled or texts or [None])[0]
        if text_pos is not None and text_pos not in replace:
            text = cells[text_pos]
            replace[text_pos] = _header_cells(text, cells[first], number, report)
        else:
            insert[first] = _header_cells(None, cells[first], number, report)
        boundary = group[-1]
    if groups:
        report.note(None, f"{len(groups)} exercise header(s) got default badges {DEFAULT_BADGES}: set "
                          "difficulty, importance and minutes for each")
    out: list[Cell] = []
    for pos, cell in enumerate(cells):
        out.extend(insert.get(pos, []))
        out.extend(replace.get(pos, [cell]))
    return out


def add_parameters_cell(cells: list[Cell], report: Report) -> list[Cell]:
    """Exactly one papermill parameters cell assigning FAST and SEED."""
    tagged = [c for c in cells if c.kind == "code" and "parameters" in c.options.get("tags", [])]
    for extra in tagged[1:]:
        extra.options["tags"] = [t for t in extra.options["tags"] if t != "parameters"]
        report.note(extra.index, "a second 'parameters' cell: its tag was removed (one is allowed)")
    if tagged:
        cell = tagged[0]
        for name, value in (("FAST", "False"), ("SEED", "0")):
            if not re.search(rf"^{name}\s*=", cell.body, re.M):
                cell.body = f"{cell.body}\n{name} = {value}".strip("\n")
                report.note(cell.index, f"added {name} = {value} to the parameters cell (the build passes FAST)")
        return cells
    new = Cell("code", "FAST = False  # the build passes FAST=True for quick previews\nSEED = 0",
               {"tags": ["parameters"]}, None)
    first = next((i for i, c in enumerate(cells) if c.kind == "code" or "exercise" in c.options), len(cells))
    while first > 0 and cells[first - 1].is_plain_markdown and RULE.match(cells[first - 1].body):
        first -= 1  # keep a horizontal rule with the exercise it opens
    report.note(None, "added a parameters cell (FAST, SEED) before the first code cell or exercise")
    return cells[:first] + [new] + cells[first:]
