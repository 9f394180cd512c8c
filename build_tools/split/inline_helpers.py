"""Replace ``from course_helpers.NAME import ...`` lines with the helper's code.

Notebooks must run on Colab without the repository, so every helper a notebook uses is pasted in
(once, helpers it depends on first). Helpers that a section already splices in with
``include=`` count as present and are not pasted again (that would overwrite a student's code).
"""

import copy
import re
from pathlib import Path

from build_tools import markers
from build_tools.source import SourceError, parse_cells, project_root

IMPORT_LINE = re.compile(r"^from course_helpers\.(?P<name>[A-Za-z_][A-Za-z0-9_]*) import .+$")


def helper_code(path: Path) -> str:
    """A helper module as plain code: markdown dropped, solutions kept, markers removed."""
    problems: list[str] = []
    cells = parse_cells(path, path.read_text(encoding="utf-8"), problems, implicit_first_cell=True)
    if problems:
        raise SourceError(problems)
    parts = [markers.render(c.source, solutions="keep", hidden="drop") for c in cells if c.cell_type == "code"]
    return "\n\n".join(p for p in parts if p.strip())


def _expand(root: Path, name: str, done: set, origin: str, stack: tuple = ()) -> list[str]:
    if name in done:
        return []
    path = root / "course_helpers" / f"{name}.py"
    if not path.is_file():
        raise SourceError([f"{origin}: no helper module course_helpers/{name}.py"])
    if name in stack:
        raise SourceError([f"{origin}: helper import cycle: {' -> '.join(stack + (name,))}"])
    done.add(name)
    out: list[str] = []
    body: list[str] = []
    for line in helper_code(path).split("\n"):
        match = IMPORT_LINE.match(line.strip()) if not line.startswith((" ", "\t")) else None
        if match:
            out.extend(_expand(root, match.group("name"), done, f"{path}", stack + (name,)))
        else:
            body.append(line)
    out.append(f"# ---- course_helpers/{name}.py (shared course code, inlined by the build) ----")
    out.extend(body)
    out.append(f"# ---- end of course_helpers/{name}.py ----")
    return out


def inline_helpers(nb, source_path: Path):
    out = copy.deepcopy(nb)
    root = project_root(Path(source_path).resolve().parent)
    done = {
        Path(c.metadata["course"]["included_from"]).stem
        for c in out.cells
        if c.metadata.get("course", {}).get("included_from")
    }
    for cell in out.cells:
        if cell.cell_type != "code" or "course_helpers" not in cell.source:
            continue
        lines = []
        source_lines = iter(cell.source.split("\n"))
        for line in source_lines:
            match = IMPORT_LINE.match(line)
            if match:
                if "(" in line and ")" not in line:  # a parenthesised, multi-line import list
                    for rest in source_lines:
                        if ")" in rest:
                            break
                origin = f"{cell.metadata['course'].get('origin')}:{cell.metadata['course'].get('line')}"
                lines.extend(_expand(root, match.group("name"), done, origin))
            else:
                lines.append(line)
        new_source = "\n".join(lines)
        if new_source != cell.source:
            # The page shows the import a reader would write, not the pasted helper code.
            cell.metadata["course"]["original_source"] = cell.source
            cell.source = new_source
    return out
