"""Rewrite code cells for an audience: solutions kept, stubbed or kept with markers; hidden tests
dropped or kept (only in the grader's source notebook)."""

import copy

from build_tools import markers


def render_code(nb, solutions: str, hidden: str):
    """solutions: keep | stub | markers; hidden: drop | markers (see markers.render)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        course = cell.metadata.setdefault("course", {})
        if markers.has_solution(cell.source):
            course["solution_cell"] = True
        cell.source = markers.render(cell.source, solutions=solutions, hidden=hidden)
    return out
