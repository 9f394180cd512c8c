"""The notebooks of one section, each as a short chain of transforms (see build_tools/split)."""

from __future__ import annotations

from build_tools.source import Section
from build_tools.split import (
    add_nbgrader_metadata, add_setup_cell, assign_ids, clear_manual_answers, embed_images, finalize, inline_helpers, make_page,
    render_code, render_exercise_headers, render_folds, select_cells,
)


def _common(section: Section, audience: str):
    nb = select_cells(section.nb, audience)
    nb = inline_helpers(nb, section.path)
    nb = add_setup_cell(nb, section.meta.get("colab_requires", []))
    nb = assign_ids(nb)
    return render_exercise_headers(nb, section.number)


def _section_meta(section: Section) -> dict:
    meta = {"section": section.number, "stem": section.stem, "title": section.title}
    if section.data:  # the grader binds these course data folders into its sandbox
        meta["data"] = section.data
    return meta


def exercise_notebook(section: Section):
    """The student's notebook = nbgrader's release notebook: stubs, public tests, checksums."""
    nb = _common(section, "exercise")
    nb = render_folds(nb, "details")
    nb = render_code(nb, solutions="stub", hidden="drop")
    nb = embed_images(nb, section.path, "attachment")
    nb = clear_manual_answers(nb)
    nb = add_nbgrader_metadata(nb)
    return finalize(nb, _section_meta(section))


def grader_source_notebook(section: Section):
    """nbgrader's source notebook: solutions and hidden tests with their markers. Never published."""
    nb = _common(section, "grader")
    nb = render_folds(nb, "details")
    nb = render_code(nb, solutions="markers", hidden="markers")
    nb = embed_images(nb, section.path, "attachment")
    nb = add_nbgrader_metadata(nb)
    return finalize(nb, _section_meta(section))


def run_notebook(section: Section):
    """What the build executes: solutions, public tests, page-only cells. Keeps cell origins."""
    nb = _common(section, "run")
    nb = render_code(nb, solutions="keep", hidden="drop")
    return finalize(nb, _section_meta(section), keep_origin=True)


def solution_notebook(executed, section: Section):
    nb = select_cells(executed, "solution")
    nb = render_folds(nb, "details")
    nb = embed_images(nb, section.path, "attachment")
    return finalize(nb, _section_meta(section))


def page_notebook(executed, section: Section, links: dict, titles: dict):
    nb = select_cells(executed, "page")
    nb = render_folds(nb, "dropdown")
    nb = embed_images(nb, section.path, "data-uri")
    nb = make_page(nb, section.stem, section.meta, links, titles)
    return finalize(nb, _section_meta(section))
