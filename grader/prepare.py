"""From a sanitised submission to the `Job` the sandbox runs (`prepare_job`).

The graded notebook is rebuilt on the release's skeleton, so a deleted, edited or moved test
cell is simply the instructor's cell in the instructor's place; only the student's answer cells
(matched by nbgrader grade_id) and cells the student added come from the submission. Cells
marked `skip_grading` are dropped and `FAST = True` is injected after the parameters cell. The
submission's code is also scanned for constructs that only attacks on an in-process test runner
need: they do not change a grade, they ask a human to look.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from dataclasses import dataclass, field

from nbformat import NotebookNode

from .protocol import Cell, Job, TestCode
from .section import SectionSpec, _grade_id, is_solution_cell, is_test_cell, normalize_ws

LIBRARY_CLASSES = [
    ("torch", "Tensor"), ("torch._C", "TensorBase"), ("torch.nn", "Module"), ("torch.nn", "Parameter"),
    ("numpy", "ndarray"),
]

# Constructs that an honest answer to this course never needs, and that attacks on an
# in-process test runner do. Their presence does not change a grade; it asks a human to look.
SUSPICIOUS = {
    "_course_grader": "the grader's internals",
    "__code__": "__code__",
    "__closure__": "__closure__",
    "__globals__": "__globals__",
    "__builtins__": "__builtins__",
    "builtins": "builtins",
    "sys.modules": "sys.modules",
    "_getframe": "sys._getframe",
    "f_back": "frame objects",
    "f_globals": "frame objects",
    "f_locals": "frame objects",
    "tb_frame": "frame objects",
    "import gc": "gc",
    "gc.": "gc",
    "ctypes": "ctypes",
    "settrace": "sys.settrace",
    "setprofile": "sys.setprofile",
    "inspect": "inspect",
    "/proc": "/proc",
    "get_ipython": "get_ipython",
    "__import__": "__import__",
    "importlib": "importlib",
    "threading": "threading",
    "_thread": "_thread",
    "fork": "fork",
    "subprocess": "subprocess",
    "os.system": "os.system",
    "os.kill": "os.kill",
    "os._exit": "os._exit",
    "signal": "signal",
    "socket": "socket",
    "urllib": "urllib",
    "__subclasses__": "__subclasses__",
    "setattr(": "setattr",
}


def test_cell_changes(nb: NotebookNode, spec: SectionSpec) -> list[str]:
    """Notes on graded test cells the student edited, deleted or moved (all restored anyway)."""
    release = {_grade_id(c): c.source for c in spec.release.cells if is_test_cell(c)}
    seen, order, edited = set(), [], []
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid in release and gid not in seen:
            seen.add(gid)
            order.append(gid)
            if normalize_ws(cell.get("source", "")) != normalize_ws(release[gid]):
                edited.append(gid)
    notes = []
    if edited:
        notes.append("edited test cells were restored: " + ", ".join(edited))
    missing = [t for t in release if t not in seen]
    if missing:
        notes.append("deleted test cells were restored: " + ", ".join(missing))
    if order != [t for t in release if t in seen]:
        notes.append("reordered test cells were put back in place")
    return notes


@dataclass
class Prepared:
    job: Job | None  # None for a submission that could not be graded
    test_cells: dict  # test id -> index in job.cells
    notes: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    answered: int = 0
    solutions: dict = field(default_factory=dict)  # grade_id -> code graded


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def _imports(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def suspicious_constructs(code: str) -> list[str]:
    # ignore comments and the contents of ordinary prose strings would be nicer; a plain scan is
    # enough for a review flag
    return sorted({label for token, label in SUSPICIOUS.items() if token in code})


def _importable(name: str) -> bool:
    """Whether `name` can be imported here (the sandbox runs this same interpreter and venv),
    without importing it."""
    try:  # the top-level package only: finding `torch.nn` would import torch here
        return importlib.util.find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def section_preimports(spec: SectionSpec) -> list[str]:
    """Modules the instructor's cells and tests import: the harness imports them before any student
    code runs, and a warm sandbox imports them once for all the section's submissions. What is not
    installed is left out (a course without torch grades without it; the cell that imports it
    fails the way it would for the student)."""
    names: set[str] = set()
    for sk in spec.skeleton:
        if not sk.skip and sk.kind in ("param", "instructor", "test"):
            names.update(_imports(sk.source))
    return sorted(n for n in names if _importable(n))


def prepare_job(nb: NotebookNode, spec: SectionSpec) -> Prepared:
    release_code = {c.get("id"): c.source for c in spec.release.cells if c.cell_type == "code"}
    release_sources = {normalize_ws(s) for s in release_code.values()}
    stubs = {c.ref: c.source for c in spec.skeleton if c.kind == "solution"}

    answers: dict[str, str] = {}
    added: dict[str | None, list[str]] = {}
    anchor = None
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if is_solution_cell(cell):
            gid = _grade_id(cell)
            if gid in stubs:
                answers[gid] = cell.source
                anchor = gid
            continue
        if is_test_cell(cell) or cell.get("metadata", {}).get("nbgrader"):
            continue  # the instructor's; restored from the source in the skeleton
        if cell.get("id") in release_code or normalize_ws(cell.source) in release_sources:
            continue  # an instructor cell (possibly edited): the instructor's version is used
        if not cell.source.strip():
            continue
        added.setdefault(anchor, []).append(cell.source)

    cells: list[Cell] = []
    test_cells: dict[str, int] = {}
    notes: list[str] = []
    instructor: list[tuple[str, int]] = []
    required: dict[str, list] = {}
    answered = 0

    def push(kind, ref, code):
        cells.append(Cell(kind, ref, code))
        if kind in ("instructor", "param"):
            instructor.append((_hash(code), len(cells) - 1))

    first_solution = True
    for sk in spec.skeleton:
        if sk.skip:
            continue
        if sk.kind == "param":
            push("param", sk.ref, sk.source)
            push("param", "injected-parameters", "# Injected by the grader\nFAST = True\n")
        elif sk.kind == "instructor":
            if sk.source.strip():  # IPython does not even announce a blank cell
                push("instructor", sk.ref, sk.source)
        elif sk.kind == "solution":
            if first_solution:
                for code in added.pop(None, []):
                    push("added", "added", code)
                first_solution = False
            code = answers.get(sk.ref)
            if code is None:
                notes.append(f"answer cell {sk.ref} is missing: graded as unanswered")
                code = sk.source
            elif normalize_ws(code) != normalize_ws(sk.source):
                answered += 1
            push("solution", sk.ref, code)
            for extra in added.pop(sk.ref, []):
                push("added", "added", extra)
        elif sk.kind == "test":
            required[sk.ref] = list(instructor)
            test_cells[sk.ref] = len(cells)
            push("test", sk.ref, "")
    for leftover in added.values():  # anchored to an answer cell the section does not have
        for code in leftover:
            push("added", "added", code)

    student_code = "\n".join(c.code for c in cells if c.kind in ("solution", "added"))
    flags = suspicious_constructs(student_code)
    n_added = sum(1 for c in cells if c.kind == "added")
    if n_added:
        notes.append(f"{n_added} cell(s) the student added were run after their answer cells")
    job = Job(
        cells=cells,
        tests={tid: TestCode(t.code, list(t.hidden_ranges)) for tid, t in spec.tests.items()},
        instructor_hashes=sorted({h for h, _ in instructor}),
        required=required,
        preimport=section_preimports(spec),
        library_classes=list(LIBRARY_CLASSES),
        data=list(spec.data),
    )
    return Prepared(job=job, test_cells=test_cells, notes=notes, flags=flags, answered=answered,
                    solutions={k: v for k, v in answers.items()})
