"""Check a parsed section and report every problem as ``path:line: message``."""

from __future__ import annotations

import ast
import re

from build_tools import markers
from build_tools.config import load_config
from build_tools.source import Section, SourceError, project_root, where

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ONLY_VALUES = {"solution", "exercise", "page"}


def _check_header(section: Section, problems: list[str]) -> None:
    meta, path = section.meta, section.path
    if not meta:
        problems.append(f"{path}:1: missing YAML header (# ---, title: ..., # ---)")
        return
    if not isinstance(meta.get("title"), str) or not meta["title"].strip():
        problems.append(f"{path}:1: header needs a 'title' (text)")
    prereq = meta.get("prerequisites", [])
    if not isinstance(prereq, list) or not all(isinstance(p, int) for p in prereq):
        problems.append(f"{path}:1: header 'prerequisites' must be a list of section numbers")
    if not isinstance(meta.get("essential", False), bool):
        problems.append(f"{path}:1: header 'essential' must be true or false")
    if "minutes" in meta and not isinstance(meta["minutes"], int):
        problems.append(f"{path}:1: header 'minutes' must be a whole number")
    req = meta.get("colab_requires", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        problems.append(f"{path}:1: header 'colab_requires' must be a list of pip requirement strings")
    data = meta.get("data", [])
    if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
        problems.append(f"{path}:1: header 'data' must be a list of data folder names (course.data in _config.yml)")
    else:
        declared = load_config(project_root(path.resolve().parent)).data
        for name in data:
            if name not in declared:
                problems.append(f"{path}:1: header 'data' names {name!r}, which _config.yml does not declare "
                                f"(course.data: {', '.join(declared) or 'none declared'})")


def _check_parameters(cell, problems: list[str]) -> None:
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return  # reported by the syntax check
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    fast, seed = found.get("FAST"), found.get("SEED")
    if not (isinstance(fast, ast.Constant) and isinstance(fast.value, bool)):
        problems.append(f"{where(cell)}: the parameters cell must assign FAST = True or FAST = False")
    if not (isinstance(seed, ast.Constant) and type(seed.value) is int):
        problems.append(f"{where(cell)}: the parameters cell must assign SEED = <int>")


def _check_points(head: str, opts: dict, when_missing: str, problems: list[str]) -> None:
    points = opts.get("points")
    if points is None:
        problems.append(f"{head}: {when_missing}")
    elif isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        problems.append(f"{head}: points must be a positive number (got {points!r})")


def _check_options(cell, problems: list[str]) -> None:
    opts = cell.metadata["course"]
    head = f"{opts['origin']}:{opts['header_line']}"
    is_md = cell.cell_type == "markdown"
    if "exercise" in opts:
        if not is_md:
            problems.append(f"{head}: exercise= belongs on a markdown cell (the exercise's spec)")
        if not isinstance(opts["exercise"], str) or not opts["exercise"].strip():
            problems.append(f"{head}: exercise= needs a title")
        for key in ("difficulty", "importance"):
            value = opts.get(key)
            if not (type(value) is int and 1 <= value <= 5):
                problems.append(f"{head}: an exercise needs {key}=1..5 (got {value!r})")
        if not isinstance(opts.get("minutes"), (str, int)):
            problems.append(f'{head}: an exercise needs a time estimate, e.g. minutes="10-20"')
    else:
        for key in ("difficulty", "importance", "minutes"):
            if key in opts:
                problems.append(f"{head}: {key}= is only valid on an exercise header (exercise=...)")
    if "test" in opts:
        if is_md:
            problems.append(f"{head}: test= belongs on a code cell")
        if not isinstance(opts["test"], str) or not ID_PATTERN.match(opts["test"]):
            problems.append(f"{head}: test name {opts['test']!r} must be letters, digits, '-' or '_'")
        _check_points(head, opts, f"graded test cell {opts['test']!r} has no points (add points=N)", problems)
        if "only" in opts:
            problems.append(f"{head}: a graded test cell cannot be only={opts['only']!r}")
    elif "points" in opts and not is_manual_cell(opts):
        problems.append(f"{head}: points= without test=NAME: name the graded test")
    if "only" in opts and opts["only"] not in ONLY_VALUES:
        problems.append(f"{head}: only= must be one of {sorted(ONLY_VALUES)} (got {opts['only']!r})")
    if "id" in opts and (not isinstance(opts["id"], str) or not ID_PATTERN.match(opts["id"])):
        problems.append(f"{head}: id {opts['id']!r} must be 1-64 letters, digits, '-' or '_'")
    if "tags" in opts and not (isinstance(opts["tags"], list) and all(isinstance(t, str) for t in opts["tags"])):
        problems.append(f"{head}: tags= must be a list of strings")
    if "fold" in opts and not isinstance(opts["fold"], str):
        problems.append(f'{head}: fold= needs a summary text, e.g. fold="Hint"')
    if "skip_grading" in opts and not isinstance(opts["skip_grading"], bool):
        problems.append(f"{head}: skip_grading= must be true or false")


def is_manual_cell(opts: dict) -> bool:
    """A manually graded answer (``manual=true``) or a task (``task=true``): points, never autograded."""
    return opts.get("manual") is True or opts.get("task") is True


def _check_manual(cell, problems: list[str]) -> None:
    """``manual=true points=N id=NAME`` (markdown or code answer) and ``task=true points=N id=NAME``
    (markdown): nbgrader's manually graded answer and task cells."""
    opts = cell.metadata["course"]
    head = f"{opts['origin']}:{opts['header_line']}"
    for key in ("manual", "task"):
        if key in opts and opts[key] is not True:
            problems.append(f"{head}: {key}= must be true ({key}=true), or leave it out (got {opts[key]!r})")
    if not is_manual_cell(opts):
        return
    kind = "manual" if opts.get("manual") is True else "task"
    if opts.get("manual") is True and opts.get("task") is True:
        problems.append(f"{head}: a cell is either a manually graded answer (manual=true) or a task (task=true), not both")
    if kind == "task" and cell.cell_type != "markdown":
        problems.append(f"{head}: task=true belongs on a markdown cell (the task's description)")
    for key in ("test", "exercise", "only", "skip_grading", "include"):
        if key in opts:
            problems.append(f"{head}: {key}= cannot go with {kind}=true")
    _check_points(head, opts, f"a {kind}=true cell needs points=N (what a human grader can give)", problems)
    if "id" not in opts:
        problems.append(f"{head}: a {kind}=true cell needs id=NAME (its grade id in the gradebook; keep it "
                        "stable across edits so that grades already given stay attached)")


def _check_markers(cell, problems: list[str]) -> None:
    opts = cell.metadata["course"]
    if cell.cell_type != "code":
        if markers.MARKER.search(cell.source) or "### BEGIN" in cell.source:
            problems.append(f"{where(cell)}: nbgrader markers only work in code cells")
        return
    blocks, found = markers.scan(cell.source)
    for offset, message in found:
        problems.append(f"{where(cell, offset)}: {message}")
    for block in blocks:
        if block.kind == "hidden" and "test" not in opts and opts.get("manual") is True:
            problems.append(f"{where(cell, block.start)}: hidden tests in a manually graded answer (manual=true): "
                            "nothing runs them")
        elif block.kind == "hidden" and "test" not in opts:
            problems.append(f"{where(cell, block.start)}: hidden tests outside a graded test cell "
                            "(add test=NAME points=N to the cell)")
        if block.kind == "solution" and "test" in opts:
            problems.append(f"{where(cell, block.start)}: a solution block inside a graded test cell")
        if block.kind in ("solution", "stub") and opts.get("only") in ("solution", "page"):
            problems.append(f"{where(cell, block.start)}: a solution block in an only={opts['only']} cell "
                            "would never reach the exercise")


def _check_syntax(cell, problems: list[str]) -> None:
    if cell.cell_type != "code":
        return
    for label, mode in (("", "keep"), (" (exercise version, with stubs)", "stub")):
        code = markers.render(cell.source, solutions=mode, hidden="drop") if mode == "stub" else cell.source
        try:
            ast.parse(code)
        except SyntaxError as err:
            line = (err.lineno or 1) - 1
            if mode == "stub":  # the stub shifts lines; point at the cell instead
                problems.append(f"{where(cell)}: syntax error{label}: {err.msg}")
            else:
                problems.append(f"{where(cell, line)}: syntax error: {err.msg}")
            return


def _check_structure(section: Section, problems: list[str]) -> None:
    cells = section.nb.cells
    params = [c for c in cells if "parameters" in c.metadata["course"].get("tags", [])]
    if not params:
        problems.append(f"{section.path}:1: no parameters cell (add '# %% tags=[\"parameters\"]' "
                        "with FAST = False and SEED = 0)")
    for extra in params[1:]:
        problems.append(f"{where(extra)}: a second parameters cell (only one is allowed)")
    if params:
        _check_parameters(params[0], problems)

    seen: dict[str, str] = {}
    for cell in cells:
        opts = cell.metadata["course"]
        for key in ("id", "test"):
            name = opts.get(key)
            if isinstance(name, str):
                if name in seen:
                    problems.append(f"{opts['origin']}:{opts['header_line']}: duplicate cell id {name!r} "
                                    f"(first used at {seen[name]})")
                else:
                    seen[name] = f"{opts['origin']}:{opts['header_line']}"

    current = None  # (exercise cell, number of tests seen)
    def close(exercise):
        if exercise is not None and exercise[1] == 0:
            o = exercise[0].metadata["course"]
            problems.append(f"{o['origin']}:{o['header_line']}: exercise {o['exercise']!r} has no graded "
                            "test cell (add '# %% test=NAME points=N' after it)")
    for cell in cells:
        opts = cell.metadata["course"]
        if "exercise" in opts:
            close(current)
            current = [cell, 0]
        elif is_manual_cell(opts):
            if current is not None:
                current[1] += 1  # a human grades it: the exercise has something graded
        elif "test" in opts:
            if current is None:
                problems.append(f"{opts['origin']}:{opts['header_line']}: graded test {opts['test']!r} has "
                                "no exercise header above it")
            else:
                current[1] += 1
    close(current)


def validate(section: Section) -> list[str]:
    problems = list(section.problems)
    _check_header(section, problems)
    for cell in section.nb.cells:
        _check_options(cell, problems)
        _check_manual(cell, problems)
        _check_markers(cell, problems)
        _check_syntax(cell, problems)
    _check_structure(section, problems)

    def sort_key(problem: str):
        match = re.match(r"^(.*?):(\d+):", problem)
        return (match.group(1), int(match.group(2))) if match else (problem, 0)

    return sorted(dict.fromkeys(problems), key=sort_key)


def load_valid(path) -> Section:
    """Parse and validate; raise SourceError listing every problem."""
    from build_tools.source import load_section

    section = load_section(path)
    problems = validate(section)
    if problems:
        raise SourceError(problems)
    return section
