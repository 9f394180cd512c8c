"""Split a parsed section into its notebooks. Each step is one small notebook → notebook transform."""

from build_tools.split.cell_ids import assign_ids
from build_tools.split.code import render_code
from build_tools.split.finalize import finalize
from build_tools.split.folds import render_folds
from build_tools.split.headers import render_exercise_headers
from build_tools.split.images import embed_images
from build_tools.split.inline_helpers import inline_helpers
from build_tools.split.manual import clear_manual_answers
from build_tools.split.nbgrader_meta import add_nbgrader_metadata
from build_tools.split.page import make_page
from build_tools.split.select import select_cells
from build_tools.split.setup_cell import add_setup_cell

__all__ = [
    "assign_ids", "render_code", "finalize", "render_folds", "render_exercise_headers", "inline_helpers",
    "add_nbgrader_metadata", "clear_manual_answers", "make_page", "select_cells", "add_setup_cell",
    "embed_images",
]
