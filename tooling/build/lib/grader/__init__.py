"""Sandboxed autograding around nbgrader (`course grade`); see README.md."""

import sys

# jsonschema (under nbformat, which nbgrader and plotly's renderers import) loads rfc3987_syntax
# when it is installed, and that compiles a Lark grammar: 2.3 s of the grading process's start-up,
# and 4 s of every kernel's first `fig.show()` (kernels start as `python -m grader.kernel_launch`,
# so this runs there too). Only jsonschema's "iri" format check needs it; nothing here uses it.
sys.modules.setdefault("rfc3987_syntax", None)
