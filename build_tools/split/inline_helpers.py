"""Replace ``from PACKAGE.NAME import ...`` lines with the helper module's code.

Notebooks must run on Colab without the repository, so every helper a notebook uses is pasted in
(once, helpers it depends on first). Two packages are inlined: the course's own helpers (the
package named by ``course.helpers`` in _config.yml, found in the course folder) and the tooling's
``coursepress`` (found where it is installed). Helpers that a section already splices in with
``include=`` count as present and are not pasted again (that would overwrite a student's code).
"""

import copy
import re
from pathlib import Path

import coursepress
from build_tools import markers
from build_tools.config import load_config
from build_tools.source import SourceError, parse_cells, project_root

TOOLING_PACKAGE = "coursepress"


def helper_packages(root: Path) -> dict[str, Path]:
    """Inlined packages → their folders: the course's helpers, then the tooling's coursepress."""
    return {load_config(root).helpers: root / load_config(root).helpers,
            TOOLING_PACKAGE: Path(coursepress.__file__).resolve().parent}


def import_line(packages) -> re.Pattern:
    names = "|".join(re.escape(p) for p in packages)
    return re.compile(rf"^from (?P<package>{names})\.(?P<name>[A-Za-z_][A-Za-z0-9_]*) import .+$")


def helper_code(path: Path) -> str:
    """A helper module as plain code: markdown dropped, solutions kept, markers removed."""
    problems: list[str] = []
    cells = parse_cells(path, path.read_text(encoding="utf-8"), problems, implicit_first_cell=True)
    if problems:
        raise SourceError(problems)
    parts = [markers.render(c.source, solutions="keep", hidden="drop") for c in cells if c.cell_type == "code"]
    return "\n\n".join(p for p in parts if p.strip())


def _expand(packages: dict, package: str, name: str, done: set, origin: str, stack: tuple = ()) -> list[str]:
    label = f"{package}/{name}.py"
    if label in done:
        return []
    path = packages[package] / f"{name}.py"
    if not path.is_file():
        raise SourceError([f"{origin}: no helper module {label}"])
    if label in stack:
        raise SourceError([f"{origin}: helper import cycle: {' -> '.join(stack + (label,))}"])
    done.add(label)
    pattern = import_line(packages)
    out: list[str] = []
    body: list[str] = []
    for line in helper_code(path).split("\n"):
        match = pattern.match(line.strip()) if not line.startswith((" ", "\t")) else None
        if match:
            out.extend(_expand(packages, match.group("package"), match.group("name"), done, f"{path}", stack + (label,)))
        else:
            body.append(line)
    kind = "shared course code" if package != TOOLING_PACKAGE else "from the course tooling"
    out.append(f"# ---- {label} ({kind}, inlined by the build) ----")
    out.extend(body)
    out.append(f"# ---- end of {label} ----")
    return out


def inline_helpers(nb, source_path: Path):
    out = copy.deepcopy(nb)
    root = project_root(Path(source_path).resolve().parent)
    packages = helper_packages(root)
    pattern = import_line(packages)
    done = {
        f"{Path(c.metadata['course']['included_from']).parent.name}/{Path(c.metadata['course']['included_from']).name}"
        for c in out.cells
        if c.metadata.get("course", {}).get("included_from")
    }
    for cell in out.cells:
        if cell.cell_type != "code" or not any(f"from {p}." in cell.source for p in packages):
            continue
        lines = []
        source_lines = iter(cell.source.split("\n"))
        for line in source_lines:
            match = pattern.match(line)
            if match:
                if "(" in line and ")" not in line:  # a parenthesised, multi-line import list
                    for rest in source_lines:
                        if ")" in rest:
                            break
                origin = f"{cell.metadata['course'].get('origin')}:{cell.metadata['course'].get('line')}"
                lines.extend(_expand(packages, match.group("package"), match.group("name"), done, origin))
            else:
                lines.append(line)
        new_source = "\n".join(lines)
        if new_source != cell.source:
            # The page shows the import a reader would write, not the pasted helper code.
            cell.metadata["course"]["original_source"] = cell.source
            cell.source = new_source
    return out
