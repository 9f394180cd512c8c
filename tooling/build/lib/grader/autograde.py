"""nbgrader's side of grading: the gradebook, sanitising a submission, recording its grades.

Host-side only (it touches the gradebook); the execution itself happens in `sandbox.run_job`.

1. `prepare_gradebook` records the section in nbgrader's gradebook exactly as
   `nbgrader generate_assignment` would: the release with the *source* test cells (hidden tests
   included), checksums from nbgrader's `ComputeChecksums`, saved by nbgrader's `SaveCells`.
2. `sanitize` runs nbgrader's own sanitising preprocessors on a submission — `ClearOutput`,
   `DeduplicateIds`, `OverwriteKernelspec`, `OverwriteCells` (test cells restored from the
   gradebook, checksum changes reported) and `CheckCellMetadata`.
3. `prepare_job` goes one step further than nbgrader: the graded notebook is rebuilt on the
   release's skeleton, so a deleted, edited or moved test cell is simply the instructor's cell
   in the instructor's place; only the student's answer cells (matched by nbgrader grade_id) and
   cells the student added come from the submission. Cells marked `skip_grading` are dropped and
   `FAST = True` is injected after the parameters cell.
4. `record` turns the verdicts into a notebook whose test cells carry an error output exactly
   when the test failed (never a stderr stream: warnings cost nothing) and lets nbgrader's
   `SaveAutoGrades` (`utils.determine_grade`) score it, in one transaction.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import logging
import os
import re
import sys
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode

from .section import SectionSpec, _grade_id, is_solution_cell, is_test_cell, normalize_ws

LOG = logging.getLogger("grader.nbgrader")
LOG.setLevel(logging.ERROR)

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


class SubmissionError(Exception):
    """This submission cannot be graded (wrong section, no metadata, corrupted metadata)."""


def resources(spec: SectionSpec, db_url: str, student: str = "") -> dict:
    return {"nbgrader": {"db_url": db_url, "assignment": spec.stem, "notebook": spec.stem, "student": student}}


def _alembic_on_path() -> None:
    """nbgrader runs `alembic` by name when it creates a gradebook: make the venv's copy findable."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@functools.lru_cache(maxsize=None)
def _alembic_head() -> str:
    """The gradebook schema's alembic revision, read in this process.

    nbgrader asks the `alembic` command for it whenever it creates a gradebook; that command
    imports all of nbgrader and jupyter_server first: 8 s on 2 cores (measured), serial, in every
    batch that starts a course. The answer is the head of nbgrader's own migration scripts, which
    alembic's ScriptDirectory reads directly.
    """
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


def _fast_gradebook_creation() -> None:
    import nbgrader.api

    nbgrader.api.get_alembic_version = _alembic_head


def prepare_gradebook(spec: SectionSpec, db_url: str) -> None:
    from nbgrader.api import Gradebook

    _alembic_on_path()
    _fast_gradebook_creation()
    from nbgrader.preprocessors import SaveCells

    with Gradebook(db_url) as gb:
        gb.update_or_create_assignment(spec.stem)
    try:
        SaveCells(log=LOG).preprocess(spec.master_notebook(), resources(spec, db_url))
    except RuntimeError as exc:  # nbgrader refuses to change cells once submissions exist
        raise SubmissionError(
            f"the gradebook already holds submissions for a different version of {spec.stem} ({exc}); "
            "use a new gradebook (--db / --course-dir) for the changed section") from exc


# ---------------------------------------------------------------------------------------------
def check_section(nb: NotebookNode, spec: SectionSpec) -> None:
    stem = (nb.metadata.get("course") or {}).get("stem")
    if stem and stem != spec.stem:
        raise SubmissionError(f"this notebook is for section {stem}, not {spec.stem}")
    ids = {_grade_id(c) for c in nb.cells if (c.get("metadata", {}).get("nbgrader"))}
    ids.discard(None)
    if not ids:
        raise SubmissionError("the notebook has no nbgrader metadata: submit the exercise notebook you "
                              "downloaded, edited in place (its cells carry the grading metadata)")
    known = set(spec.tests) | set(spec.solution_ids)
    if not ids & known:
        raise SubmissionError(f"none of the notebook's graded cells belong to {spec.stem} (wrong notebook?)")


class _RecordingOverwriteCells:
    """nbgrader's OverwriteCells, remembering what it had to put back."""

    def __new__(cls, changes: list):
        from nbgrader.preprocessors import OverwriteCells

        class Recording(OverwriteCells):
            def report_change(self, name, attr, old, new):
                changes.append((name, attr))

        return Recording(log=LOG)


def sanitize(nb: NotebookNode, spec: SectionSpec, db_url: str, student: str) -> tuple[NotebookNode, list]:
    """nbgrader's sanitising pass. Returns the notebook and the (grade_id, attribute) changes undone."""
    from nbgrader.nbgraderformat import ValidationError
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteKernelspec

    check_section(nb, spec)
    changes: list = []
    res = resources(spec, db_url, student)
    try:
        for pp in (ClearOutput(log=LOG), DeduplicateIds(log=LOG), OverwriteKernelspec(log=LOG),
                   _RecordingOverwriteCells(changes), CheckCellMetadata(log=LOG)):
            nb, res = pp.preprocess(nb, res)
    except ValidationError as exc:
        raise SubmissionError(f"the notebook's nbgrader metadata is corrupted ({exc})") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SubmissionError(f"the notebook's nbgrader metadata is unusable ({type(exc).__name__}: {exc})") from exc
    return nb, changes


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


# ---------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    job: dict
    test_cells: dict  # test id -> index in job["cells"]
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


def section_preimports(spec: SectionSpec) -> list[str]:
    """Modules the instructor's cells and tests import: the harness imports them before any student
    code runs, and a warm sandbox imports them once for all the section's submissions."""
    names: set[str] = set()
    for sk in spec.skeleton:
        if not sk.skip and sk.kind in ("param", "instructor", "test"):
            names.update(_imports(sk.source))
    return sorted(names)


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

    cells: list[dict] = []
    test_cells: dict[str, int] = {}
    notes: list[str] = []
    instructor: list[tuple[str, int]] = []
    required: dict[str, list] = {}
    answered = 0

    def push(kind, ref, code):
        cells.append({"kind": kind, "ref": ref, "code": code})
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
            required[sk.ref] = [list(x) for x in instructor]
            test_cells[sk.ref] = len(cells)
            push("test", sk.ref, "")
    for leftover in added.values():  # anchored to an answer cell the section does not have
        for code in leftover:
            push("added", "added", code)

    student_code = "\n".join(c["code"] for c in cells if c["kind"] in ("solution", "added"))
    flags = suspicious_constructs(student_code)
    n_added = sum(1 for c in cells if c["kind"] == "added")
    if n_added:
        notes.append(f"{n_added} cell(s) the student added were run after their answer cells")
    job = {
        "cells": cells,
        "tests": {tid: {"code": t.code, "hidden": t.hidden_ranges} for tid, t in spec.tests.items()},
        "instructor_hashes": sorted({h for h, _ in instructor}),
        "required": required,
        "preimport": section_preimports(spec),
        "library_classes": [list(x) for x in LIBRARY_CLASSES],
    }
    return Prepared(job=job, test_cells=test_cells, notes=notes, flags=flags, answered=answered,
                    solutions={k: v for k, v in answers.items()})


# ---------------------------------------------------------------------------------------------
def test_results(prep: Prepared, outcome) -> dict:
    """Per test: {status, points, where, message} from verdicts and cell events."""
    out = {}
    for tid, idx in prep.test_cells.items():
        v = outcome.verdicts.get(tid)
        ev = outcome.cells.get(idx, {})
        cell_status = ev.get("status")
        if v is not None and v["status"] == "pass":
            out[tid] = {"status": "passed", "where": "", "message": ""}
        elif v is not None:
            if v["ename"] == "KeyboardInterrupt" and cell_status == "timeout":
                out[tid] = {"status": "timed out", "where": "", "message": ""}
            elif v["where"] == "hidden":
                out[tid] = {"status": "failed", "where": "hidden", "message": ""}
            else:
                msg = f"{v['ename']}: {v['message']}" if v["message"] else v["ename"]
                out[tid] = {"status": "failed", "where": "public", "message": msg}
        else:
            status = {"died": "crashed (the kernel died)", "killed": "timed out (the kernel was stopped)",
                      "timeout": "timed out", "killed-sandbox": "crashed (killed the grading process)"}.get(
                cell_status, "not run")
            out[tid] = {"status": status, "where": "", "message": ""}
    return out


def graded_notebook(spec: SectionSpec, prep: Prepared, results: dict, outcome=None) -> NotebookNode:
    """The master notebook with the student's answers and one synthetic result per test cell."""
    nb = spec.master_notebook()
    by_ref = {}
    if outcome is not None:
        for i, c in enumerate(prep.job["cells"]):
            if c["kind"] == "solution" and i in outcome.cells:
                by_ref[c["ref"]] = outcome.cells[i].get("outputs", [])
    for cell in nb.cells:
        gid = _grade_id(cell)
        if is_solution_cell(cell) and gid in prep.solutions:
            cell.source = prep.solutions[gid]
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=o.get("text", ""))
                            for o in by_ref.get(gid, []) if o.get("text")]
        elif is_test_cell(cell) and gid in results:
            r = results[gid]
            if r["status"] == "passed":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[grader] passed\n")]
            else:
                cell.outputs = [nbformat.v4.new_output(
                    "error", ename="TestFailed", evalue=f"{r['status']} {r['where']}".strip(),
                    traceback=[r["message"]] if r["message"] else [])]
    return nb


def record(spec: SectionSpec, db_url: str, student: str, nb: NotebookNode, gradebook=None) -> dict:
    """Save grades with nbgrader's SaveAutoGrades in one transaction; return the gradebook's view.

    `gradebook`: an open nbgrader Gradebook to use (a batch keeps one: SQLAlchemy caches compiled
    queries per engine, and a new engine per submission compiled every query again).
    """
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    if gradebook is None:
        with Gradebook(db_url) as gb:
            return record(spec, db_url, student, nb, gb)
    gb = gradebook
    gb.update_or_create_student(student)
    gb.update_or_create_submission(spec.stem, student)

    class AtomicSaveAutoGrades(SaveAutoGrades):
        def preprocess(self, nb, res):
            self.notebook_id = res["nbgrader"]["notebook"]
            self.assignment_id = res["nbgrader"]["assignment"]
            self.student_id = res["nbgrader"]["student"]
            self.gradebook = gb
            commit = gb.db.commit
            gb.db.commit = gb.db.flush  # one commit at the end, not one per cell
            try:
                for index, cell in enumerate(nb.cells):
                    self.preprocess_cell(cell, res, index)
            except BaseException:
                gb.db.rollback()
                raise
            finally:
                gb.db.commit = commit
            gb.db.commit()
            return nb, res

    AtomicSaveAutoGrades(log=LOG).preprocess(copy.deepcopy(nb), resources(spec, db_url, student))
    gb.db.expire_all()  # scores are SQL expressions: read them fresh
    sub = gb.find_submission_notebook(spec.stem, spec.stem, student)
    grades = {g.name: float(g.score) for g in sub.grades}
    return {"score": float(sub.score), "max_score": float(sub.max_score), "grades": grades}


def db_url_for(db: str | None, course_dir) -> str:
    if db:
        return db
    return f"sqlite:///{(course_dir / 'gradebook.db').resolve()}"


def safe_student_id(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._") or "student"
    return cleaned[:100]
