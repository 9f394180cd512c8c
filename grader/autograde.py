"""nbgrader's side of grading: the gradebook, sanitising a submission, recording its grades.

Host-side only (it touches the gradebook); the execution itself happens in `sandbox.grade_in_sandbox`.

1. `prepare_gradebook` records the section in nbgrader's gradebook exactly as
   `nbgrader generate_assignment` would: the release with the *source* test cells (hidden tests
   included), checksums from nbgrader's `ComputeChecksums`, saved by nbgrader's `SaveCells`.
2. `sanitize` runs nbgrader's own sanitising preprocessors on a submission — `ClearOutput`,
   `DeduplicateIds`, `OverwriteKernelspec`, `OverwriteCells` (test cells restored from the
   gradebook, checksum changes reported) and `CheckCellMetadata`.
3. (`prepare.py` builds the job the sandbox runs; `sandbox.py` runs it.)
4. `test_results` and `graded_notebook` turn the outcome into per-test results, and `record` turns the verdicts into a notebook whose test cells carry an error output exactly
   when the test failed (never a stderr stream: warnings cost nothing) and lets nbgrader's
   `SaveAutoGrades` (`utils.determine_grade`) score it, in one transaction.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
from unittest import mock

import nbformat
from nbformat import NotebookNode

from .prepare import Prepared, prepare_job, section_preimports, suspicious_constructs, test_cell_changes  # noqa: F401
from .section import SectionSpec, _grade_id, is_solution_cell, is_test_cell

LOG = logging.getLogger("grader.nbgrader")
LOG.setLevel(logging.ERROR)

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


def prepare_gradebook(spec: SectionSpec, db_url: str) -> None:
    from nbgrader.api import Gradebook

    _alembic_on_path()
    from nbgrader.preprocessors import SaveCells

    # Only a new gradebook asks for the revision, and only here (before any worker starts).
    with mock.patch("nbgrader.api.get_alembic_version", _alembic_head), Gradebook(db_url) as gb:
        gb.update_or_create_assignment(spec.stem)
    try:
        SaveCells(log=LOG).preprocess(spec.master_notebook(), resources(spec, db_url))
    except RuntimeError as exc:  # nbgrader refuses to change cells once submissions exist
        raise SubmissionError(
            f"the gradebook already holds submissions for a different version of {spec.stem} ({exc}); "
            "use a new gradebook (--db / --course-dir) for the changed section") from exc


# ---------------------------------------------------------------------------------------------
def check_submission_matches(nb: NotebookNode, spec: SectionSpec) -> None:
    stem = (nb.metadata.get("course") or {}).get("stem")
    if stem and stem != spec.stem:
        raise SubmissionError(f"this notebook is for section {stem}, not {spec.stem}")
    ids = {_grade_id(c) for c in nb.cells if (c.get("metadata", {}).get("nbgrader"))}
    ids.discard(None)
    if not ids:
        raise SubmissionError("the notebook has no nbgrader metadata: submit the exercise notebook you "
                              "downloaded, edited in place (its cells carry the grading metadata)")
    known = set(spec.tests) | set(spec.solution_ids) | set(spec.hand_graded_ids)
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

    check_submission_matches(nb, spec)
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


# ---------------------------------------------------------------------------------------------
def test_results(prep: Prepared, outcome) -> dict:
    """Per test: {status, points, where, message} from verdicts and cell events."""
    out = {}
    for tid, idx in prep.test_cells.items():
        v = outcome.verdicts.get(tid)
        ev = outcome.cells.get(idx, {})
        cell_status = ev.get("status")
        if v is not None and v.status == "pass":
            out[tid] = {"status": "passed", "where": "", "message": ""}
        elif v is not None:
            if v.ename == "KeyboardInterrupt" and cell_status == "timeout":
                out[tid] = {"status": "timed out", "where": "", "message": ""}
            elif v.where == "hidden":
                out[tid] = {"status": "failed", "where": "hidden", "message": ""}
            else:
                msg = f"{v.ename}: {v.message}" if v.message else v.ename
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
        for i, c in enumerate(prep.job.cells):
            if c.kind == "solution" and i in outcome.cells:
                by_ref[c.ref] = outcome.cells[i].get("outputs", [])
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
