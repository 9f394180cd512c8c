"""Manually graded answers and tasks in the source format (nbgrader's "manually graded answer" and
"task" cells): parsed, validated with file:line, split into nbgrader-valid notebooks, never autograded."""

from pathlib import Path

import nbformat
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.utils import compute_checksum

from build_tools import pipeline
from build_tools.source import load_section
from build_tools.split.nbgrader_meta import is_autograded_test, needs_manual_grading
from build_tools.validate import validate
from conftest import FIXTURES, make_project

GOOD = (FIXTURES / "source_exercises" / "01_fixture.py").read_text()

MANUAL = '''
# %% [markdown] exercise="Explain the error" difficulty=1 importance=1 minutes="5"
# Why does squaring make large errors count more? Answer in the cell below.

# %% [markdown] manual=true points=2 id="explain_mse"
# Squaring grows faster than linearly: an error twice as large costs four times as much.

# %% manual=true points=3 id="describe_errors"
def describe_errors(xs, ys):
    ### BEGIN SOLUTION
    return f"mse={mse(xs, ys):.3f}"
    ### END SOLUTION

# %% [markdown] task=true points=1 id="compare_task"
# Compare `mse` and `mae` on data with one outlier, in cells of your own, and say which you would use.
'''


def write_section(tmp_path: Path, text: str) -> Path:
    root = make_project(tmp_path / "p", sections=())
    path = root / "source_exercises" / "01_manual.py"
    path.write_text(text)
    return path


def problems_for(tmp_path: Path, text: str) -> list[str]:
    path = write_section(tmp_path, text)
    return [p.replace(str(path), "F") for p in validate(load_section(path))]


def line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, line in enumerate(text.splitlines()) if needle in line)


def by_id(nb):
    return {c.id: c for c in nb.cells}


def test_manual_cells_are_valid_and_parsed(tmp_path):
    assert problems_for(tmp_path, GOOD + MANUAL) == []
    section = load_section(write_section(tmp_path / "b", GOOD + MANUAL))
    opts = {c.metadata["course"].get("id"): c.metadata["course"] for c in section.nb.cells}
    assert opts["explain_mse"]["manual"] is True and opts["explain_mse"]["points"] == 2
    assert opts["compare_task"]["task"] is True and opts["compare_task"]["points"] == 1


def test_exercise_and_grader_source_carry_nbgrader_manual_metadata(tmp_path):
    section = load_section(write_section(tmp_path, GOOD + MANUAL))
    exercise, source = pipeline.exercise_notebook(section), pipeline.grader_source_notebook(section)
    ex, src = by_id(exercise), by_id(source)
    # nbgrader's own schema validator accepts both notebooks as they are
    MetadataValidator().validate_nb(exercise)
    MetadataValidator().validate_nb(source)

    assert ex["explain_mse"].metadata["nbgrader"] == {
        "grade": True, "grade_id": "explain_mse", "locked": False, "points": 2, "schema_version": 3,
        "solution": True, "task": False, "checksum": ex["explain_mse"].metadata["nbgrader"]["checksum"],
        "cell_type": "markdown"}  # nbgrader records it to notice a changed cell type
    assert ex["explain_mse"].source == "YOUR ANSWER HERE"  # nbgrader's answer prompt
    assert "twice as large" in src["explain_mse"].source  # the model answer, for the human grader
    assert ex["describe_errors"].metadata["nbgrader"]["solution"] is True
    assert ex["describe_errors"].metadata["nbgrader"]["points"] == 3
    assert ex["describe_errors"].source == "def describe_errors(xs, ys):\n    raise NotImplementedError()"
    assert "### BEGIN SOLUTION" in src["describe_errors"].source
    task = ex["compare_task"].metadata["nbgrader"]
    assert (task["task"], task["grade"], task["solution"], task["locked"], task["points"]) == (True, False, False, True, 1)
    assert ex["compare_task"].source.startswith("Compare `mse` and `mae`")
    assert task["checksum"] == compute_checksum(ex["compare_task"])
    # the solution run (what the build executes and the page shows) has the model answers
    run = by_id(pipeline.run_notebook(section))
    assert "twice as large" in run["explain_mse"].source and "mse={mse" in run["describe_errors"].source


def test_manual_cells_are_never_autograded_tests(tmp_path):
    section = load_section(write_section(tmp_path, GOOD + MANUAL))
    cells = pipeline.exercise_notebook(section).cells
    autograded = [c.id for c in cells if is_autograded_test(c.metadata.get("nbgrader", {}))]
    manual = [c.id for c in cells if needs_manual_grading(c.metadata.get("nbgrader", {}))]
    assert autograded == ["test_mse", "test_mae"]
    assert manual == ["explain_mse", "describe_errors", "compare_task"]


def test_manual_cell_problems_are_reported_with_file_and_line(tmp_path):
    bad = GOOD + '''
# %% [markdown] exercise="Explain" difficulty=1 importance=1 minutes="5"
# Explain.

# %% [markdown] manual=true id="no_points"
# answer

# %% [markdown] manual=true points=2
# answer without id

# %% manual=true points=1 id="test_mse"
x = 1

# %% task=true points=1 id="code_task"
x = 2

# %% [markdown] manual=1 points=1 id="not_bool"
# answer

# %% [markdown] manual=true task=true points=1 id="both"
# both

# %% manual=true points=-1 id="neg" test="t2"
x = 3
'''
    problems = problems_for(tmp_path, bad)
    no_points, no_id, dup, code_task, not_bool, both, neg = (line_of(bad, needle) for needle in (
        '"no_points"', "manual=true points=2", 'id="test_mse"', '"code_task"', '"not_bool"', '"both"', '"neg"'))
    assert f"F:{no_points}: a manual=true cell needs points=N (what a human grader can give)" in problems
    assert any(p.startswith(f"F:{no_id}: a manual=true cell needs id=NAME") for p in problems)
    assert any(p.startswith(f"F:{dup}: duplicate cell id 'test_mse'") for p in problems)
    assert f"F:{code_task}: task=true belongs on a markdown cell (the task's description)" in problems
    assert f"F:{not_bool}: manual= must be true (manual=true), or leave it out (got 1)" in problems
    assert any(p.startswith(f"F:{both}: a cell is either") for p in problems)
    assert f"F:{neg}: test= cannot go with manual=true" in problems
    assert f"F:{neg}: points must be a positive number (got -1)" in problems


def test_an_exercise_graded_only_by_hand_is_complete(tmp_path):
    # no "has no graded test cell" problem: the manual answer is what gets graded
    assert problems_for(tmp_path, GOOD + MANUAL) == []
    without = MANUAL.replace('manual=true points=2 id="explain_mse"', "").split("# %% manual=true")[0]
    assert any("has no graded test cell" in p for p in problems_for(tmp_path / "b", GOOD + without))


def test_course_check_runs_no_manual_cell_as_a_test(tmp_path):
    from build_tools.check import check_section

    section = load_section(write_section(tmp_path, GOOD + MANUAL))
    result = check_section(section, fast=True)
    assert [t.name for t in result.tests] == ["test_mse", "test_mae"]
    assert all(t.solution_ok and t.stub_fails for t in result.tests), [(t.name, t.solution_message, t.stub_message) for t in result.tests]
    assert result.manual == [("explain_mse", 2), ("describe_errors", 3), ("compare_task", 1)]
    assert result.ok and result.problems == []
