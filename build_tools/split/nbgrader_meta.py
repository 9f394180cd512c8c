"""nbgrader cell metadata and checksums, so the notebooks are nbgrader's own release/source notebooks."""

import copy

from nbgrader.preprocessors import ComputeChecksums


def is_autograded_test(nbgrader: dict) -> bool:
    """A graded cell the grader runs; manually graded answers (grade+solution) and tasks are not."""
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution") and not nbgrader.get("task")


def needs_manual_grading(nbgrader: dict) -> bool:
    """A manually graded answer or a task: points that only a human can give."""
    return bool(nbgrader.get("task")) or (bool(nbgrader.get("grade")) and bool(nbgrader.get("solution")))


def add_nbgrader_metadata(nb):
    out = copy.deepcopy(nb)
    for cell in out.cells:
        opts = cell.metadata.get("course", {})
        if opts.get("manual") is True:  # nbgrader's "manually graded answer"
            cell.metadata["nbgrader"] = {
                "grade": True, "grade_id": cell.id, "locked": False, "points": opts["points"],
                "schema_version": 3, "solution": True, "task": False,
            }
        elif opts.get("task") is True:  # nbgrader's "manually graded task"
            cell.metadata["nbgrader"] = {
                "grade": False, "grade_id": cell.id, "locked": True, "points": opts["points"],
                "schema_version": 3, "solution": False, "task": True,
            }
        elif "test" in opts:
            cell.metadata["nbgrader"] = {
                "grade": True, "grade_id": cell.id, "locked": True, "points": opts["points"],
                "schema_version": 3, "solution": False, "task": False,
            }
        elif opts.get("solution_cell"):
            cell.metadata["nbgrader"] = {
                "grade": False, "grade_id": cell.id, "locked": False,
                "schema_version": 3, "solution": True, "task": False,
            }
    out, _ = ComputeChecksums().preprocess(out, {})
    return out
