"""nbgrader cell metadata and checksums, so the notebooks are nbgrader's own release/source notebooks."""

import copy

from nbgrader.preprocessors import ComputeChecksums


def add_nbgrader_metadata(nb):
    out = copy.deepcopy(nb)
    for cell in out.cells:
        opts = cell.metadata.get("course", {})
        if "test" in opts:
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
