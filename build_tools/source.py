"""Parse a section source file (jupytext percent format) into a *master* notebook.

The master notebook holds every cell of the section exactly as written (markers included); each
cell carries ``metadata["course"]`` with its options and where it came from (file and line), so
that every later step can report ``path:line: message``. Splitting into exercise / solution /
grader notebooks happens in ``build_tools.split``.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from jupytext.cell_metadata import text_to_metadata

CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")
STEM_PATTERN = re.compile(r"^(?P<number>\d\d)_[a-z0-9_]+$")
KNOWN_OPTIONS = {
    "tags", "exercise", "difficulty", "importance", "minutes", "test", "points", "only",
    "skip_grading", "fold", "include", "id", "manual", "task",
}


class SourceError(Exception):
    """One or more problems in source files, each already formatted as ``path:line: message``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Section:
    path: Path
    stem: str
    number: int
    meta: dict
    nb: nbformat.NotebookNode
    problems: list[str] = field(default_factory=list)  # parse problems (validate adds more)

    @property
    def title(self) -> str:
        return str(self.meta.get("title", self.stem))

    @property
    def data(self) -> list[str]:
        """Names of the course's data folders this section reads (header ``data: [...]``)."""
        data = self.meta.get("data", [])
        return [str(d) for d in data] if isinstance(data, list) else []


def project_root(start: Path) -> Path:
    """The course folder: the nearest folder above `start` holding ``_config.yml`` (where
    ``include=`` paths and the course's helpers are resolved); the current folder if none."""
    for folder in [start, *start.parents]:
        if (folder / "_config.yml").is_file():
            return folder
    return Path.cwd()


def data_env(section: "Section") -> dict:
    """Environment of a kernel running this section: each data folder its header declares
    (``data: [name]``) as the variable the course config names for it."""
    from build_tools.config import load_config

    return load_config(project_root(section.path.resolve().parent)).kernel_env(section.data)


@contextlib.contextmanager
def environment(env: dict):
    """Set these variables for the kernels started inside the block (papermill and nbclient hand
    the kernel a copy of os.environ), and put back what was there before, unset or not."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _parse_yaml_header(path: Path, lines: list[str], problems: list[str]) -> tuple[dict, int]:
    """Return (metadata, index of the first line after the header)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].strip() != "# ---":
        return {}, 0
    for end in range(first + 1, len(lines)):
        if lines[end].strip() == "# ---":
            break
    else:
        problems.append(f"{path}:{first + 1}: YAML header opened with '# ---' is never closed")
        return {}, len(lines)
    body = "\n".join(re.sub(r"^# ?", "", line) for line in lines[first + 1 : end])
    try:
        meta = yaml.safe_load(body) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = first + 2 + (mark.line if mark else 0)
        problems.append(f"{path}:{line}: invalid YAML in header: {getattr(err, 'problem', err)}")
        return {}, end + 1
    if not isinstance(meta, dict):
        problems.append(f"{path}:{first + 1}: the YAML header must be a mapping (key: value)")
        return {}, end + 1
    return meta, end + 1


def _parse_options(path: Path, lineno: int, text: str, problems: list[str]) -> tuple[str, dict]:
    text = text.strip()
    cell_type = "code"
    match = re.match(r"^\[(markdown|md)\]\s*", text)
    if match:
        cell_type = "markdown"
        text = text[match.end():]
    elif text.startswith("["):
        problems.append(f"{path}:{lineno}: unknown cell type {text.split(']')[0]}]; use '# %% [markdown]'")
    if not text:
        return cell_type, {}
    try:
        _, options = text_to_metadata(text, allow_title=False)
    except Exception as err:  # jupytext raises several error types for malformed metadata
        problems.append(f"{path}:{lineno}: cannot read cell options {text!r}: {err}")
        return cell_type, {}
    for key, value in list(options.items()):
        if value is None:
            problems.append(f"{path}:{lineno}: cell option {key!r} needs a value (key=value)")
            del options[key]
        elif key not in KNOWN_OPTIONS:
            problems.append(
                f"{path}:{lineno}: unknown cell option {key!r} (known: {', '.join(sorted(KNOWN_OPTIONS))})"
            )
            del options[key]
    return cell_type, options


def parse_cells(path: Path, text: str, problems: list[str], start: int = 0,
                implicit_first_cell: bool = False) -> list[nbformat.NotebookNode]:
    """Split percent-format text into nbformat cells with ``metadata.course`` = options + origin.

    implicit_first_cell: code before the first marker forms a cell (plain helper modules);
    in a section file such text is an error.
    """
    lines = text.splitlines()
    cells = []
    current = None  # (cell_type, options, header_line, body_lines, first_body_line)
    implicit_options: dict = {}  # identity marks the implicit cell: dropped when it holds nothing
    if implicit_first_cell:
        current = ("code", implicit_options, start + 1, [], start + 1)

    def flush():
        if current is None:
            return
        cell_type, options, header_line, body, body_start = current
        # Drop blank lines around the cell body but remember where the body starts.
        while body and not body[0].strip():
            body.pop(0)
            body_start += 1
        while body and not body[-1].strip():
            body.pop()
        if not body and options is implicit_options:
            return  # a helper module that opens with a cell marker
        if cell_type == "markdown":
            text_lines = []
            for offset, line in enumerate(body):
                if line.strip() == "#" or line.startswith("# ") or not line.strip():
                    text_lines.append(line[2:] if line.startswith("# ") else "")
                else:
                    problems.append(f"{path}:{body_start + offset}: markdown lines must start with '# '")
            cell = nbformat.v4.new_markdown_cell("\n".join(text_lines))
        else:
            cell = nbformat.v4.new_code_cell("\n".join(body))
        cell.metadata["course"] = {**options, "origin": str(path), "line": body_start, "header_line": header_line}
        if isinstance(options.get("tags"), list):
            cell.metadata["tags"] = list(options["tags"])  # papermill finds `parameters` here
        cells.append(cell)

    for index in range(start, len(lines)):
        line = lines[index]
        match = CELL_MARKER.match(line)
        if match:
            flush()
            cell_type, options = _parse_options(path, index + 1, match.group("rest"), problems)
            current = (cell_type, options, index + 1, [], index + 2)
        elif current is None:
            if line.strip():
                problems.append(f"{path}:{index + 1}: text before the first '# %%' cell marker")
        else:
            current[3].append(line)
    flush()
    return cells


def _splice_includes(root: Path, cells: list, problems: list[str], seen: tuple = ()) -> list:
    out = []
    for cell in cells:
        include = cell.metadata["course"].get("include")
        if include is None:
            out.append(cell)
            continue
        where = f"{cell.metadata['course']['origin']}:{cell.metadata['course']['header_line']}"
        target = (root / include).resolve()
        if cell.source.strip():
            problems.append(f"{where}: a cell with include= must be empty (its content comes from {include})")
        if not target.is_file():
            problems.append(f"{where}: include={include!r}: no such file under {root}")
            continue
        if target in seen:
            problems.append(f"{where}: include={include!r} includes itself")
            continue
        sub = parse_cells(target, target.read_text(), problems, implicit_first_cell=True)
        for sub_cell in sub:
            sub_cell.metadata["course"]["included_from"] = include
        out.extend(_splice_includes(root, sub, problems, seen + (target,)))
    return out


def load_section(path: Path) -> Section:
    """Read and parse one section file. Problems are collected, not raised (see validate)."""
    path = Path(path)
    problems: list[str] = []
    match = STEM_PATTERN.match(path.stem)
    if not match:
        problems.append(f"{path}:1: section files must be named NN_short_name.py (got {path.name})")
    number = int(match.group("number")) if match else 0
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SourceError([f"{path}:1: not UTF-8 text: {err}"]) from None
    meta, body_start = _parse_yaml_header(path, text.splitlines(), problems)
    cells = parse_cells(path, text, problems, start=body_start)
    cells = _splice_includes(project_root(path.resolve().parent), cells, problems)
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["course"] = {"section": number, "stem": path.stem, "title": meta.get("title", path.stem)}
    return Section(path=path, stem=path.stem, number=number, meta=meta, nb=nb, problems=problems)


def where(cell, offset: int = 0) -> str:
    """``path:line`` of a cell's body line ``offset`` (0 = first line of the body)."""
    course = cell.metadata["course"]
    return f"{course['origin']}:{course['line'] + offset}"
