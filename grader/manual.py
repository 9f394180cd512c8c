"""Manually graded answers on the grader's side: never run as tests, graded by a person in
nbgrader's formgrader (or through nbgrader's API) on our gradebook.

Code answers are answer cells like any other (they run; later cells may use them). Written
(markdown) answers do not run: `copy_written_answers` puts the student's text into the graded
notebook, so that nbgrader's `SaveAutoGrades` sees a changed checksum and marks the answer as
needing manual grading (an untouched ``YOUR ANSWER HERE`` gets nbgrader's automatic 0), and
formgrader shows what the student wrote.
"""

from __future__ import annotations


def _written_answers(nb) -> dict[str, str]:
    out = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if cell.get("cell_type") == "markdown" and meta.get("solution") and meta.get("grade_id"):
            out.setdefault(meta["grade_id"], cell.get("source", ""))
    return out


def copy_written_answers(graded, submitted):
    """The graded notebook with the submission's markdown answers (matched by nbgrader grade_id)."""
    if submitted is None:
        return graded
    answers = _written_answers(submitted)
    for cell in graded.cells:
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if cell.get("cell_type") == "markdown" and meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
    return graded
