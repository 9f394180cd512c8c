"""Cells → the text of a section file (jupytext percent format with this project's options)."""

from __future__ import annotations

import json

import yaml

from build_tools.importer.model import Cell

OPTION_ORDER = ["exercise", "difficulty", "importance", "minutes", "test", "manual", "task", "points", "id", "tags"]


def _options(options: dict) -> str:
    keys = [k for k in OPTION_ORDER if k in options] + sorted(set(options) - set(OPTION_ORDER))
    return "".join(f" {k}={json.dumps(options[k], ensure_ascii=False)}" for k in keys)


def render_cell(cell: Cell) -> str:
    marker = "# %%" + (" [markdown]" if cell.kind == "markdown" else "") + _options(cell.options)
    if cell.kind == "markdown":
        body = "\n".join(f"# {line}".rstrip() for line in cell.body.strip("\n").split("\n")) if cell.body.strip() else ""
    else:
        body = cell.body.strip("\n")
    return f"{marker}\n{body}".rstrip("\n")


def render_section(meta: dict, cells: list[Cell], origin: str) -> str:
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000).strip().split("\n")
    lines = ["# ---", *(f"# {line}" for line in header), f"# # imported by `course import` from {origin}", "# ---"]
    return "\n".join(lines) + "\n\n" + "\n\n".join(render_cell(c) for c in cells) + "\n"
