"""Manually graded answers in the exercise: a markdown answer becomes nbgrader's answer prompt.

The source holds the model answer (the solution notebook and the page show it; the grader's
source notebook keeps it for the human grader), the student gets ``YOUR ANSWER HERE`` exactly as
nbgrader's ``ClearSolutions`` writes it. Code answers need nothing here: their
``### BEGIN SOLUTION`` regions are stubbed like any solution, code outside them stays as the
starting point.
"""

import copy

ANSWER_PROMPT = "YOUR ANSWER HERE"  # nbgrader's ClearSolutions.text_stub


def clear_manual_answers(nb):
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("course", {}).get("manual") is True:
            cell.source = ANSWER_PROMPT
    return out
