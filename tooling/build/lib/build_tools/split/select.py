"""Keep the cells meant for one audience (``only=`` option)."""

import copy

# Which `only=` values each notebook keeps (None = cells without the option).
AUDIENCES = {
    "exercise": {None, "exercise"},
    "grader": {None, "exercise"},  # the student's notebook structure, with solutions + hidden tests
    "run": {None, "solution", "page"},  # what the build executes; the page and solution derive from it
    "solution": {None, "solution"},
    "page": {None, "solution", "page"},
}


def select_cells(nb, audience: str):
    keep = AUDIENCES[audience]
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if c.metadata.get("course", {}).get("only") in keep]
    return out
