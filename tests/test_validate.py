"""Malformed section files: every problem reported as path:line: message, exit 2, nothing written."""

import textwrap
from pathlib import Path

import pytest

from build_tools.source import load_section
from build_tools.validate import validate
from conftest import FIXTURES, make_project, run_course

GOOD = (FIXTURES / "source_exercises" / "01_fixture.py").read_text()


def problems_for(tmp_path: Path, text: str, name: str = "01_bad.py") -> list[str]:
    # Inside a project so that helper includes resolve.
    root = make_project(tmp_path / "p", sections=())
    path = root / "source_exercises" / name
    path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
    return [p.replace(str(path), "F") for p in validate(load_section(path))]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth - 1]


def test_fixture_is_valid(tmp_path):
    assert problems_for(tmp_path, GOOD) == []


def test_unclosed_solution_marker(tmp_path):
    bad = GOOD.replace("    ### END SOLUTION\n    ### BEGIN STUB", "    ### BEGIN STUB", 1)
    found = problems_for(tmp_path, bad)
    begin = line_of(bad, "### BEGIN SOLUTION")
    assert f"F:{begin}: '### BEGIN STUB' inside an open solution block (opened on the cell's line 2)" in found[0] or \
        any(p.startswith(f"F:{begin}: '### BEGIN SOLUTION' is never closed") for p in found), found


def test_unclosed_marker_at_end_of_cell(tmp_path):
    bad = GOOD.replace("    return sum(abs(x - y) for x, y in zip(xs, ys)) / max(len(xs), 1)\n    ### END SOLUTION\n",
                       "    return sum(abs(x - y) for x, y in zip(xs, ys)) / max(len(xs), 1)\n")
    line = line_of(bad, "### BEGIN SOLUTION", 2)
    assert f"F:{line}: '### BEGIN SOLUTION' is never closed (add '### END SOLUTION')" in problems_for(tmp_path, bad)


def test_stray_end_marker(tmp_path):
    bad = GOOD.replace("N_POINTS = 20 if FAST else 200", "N_POINTS = 20 if FAST else 200\n### END SOLUTION")
    line = line_of(bad, "N_POINTS = 20") + 1
    assert f"F:{line}: '### END SOLUTION' without a matching '### BEGIN SOLUTION'" in problems_for(tmp_path, bad)


def test_hidden_tests_outside_graded_cell(tmp_path):
    bad = GOOD.replace("N_POINTS = 20 if FAST else 200",
                       "N_POINTS = 20 if FAST else 200\n### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS")
    line = line_of(bad, "### BEGIN HIDDEN TESTS")
    assert f"F:{line}: hidden tests outside a graded test cell (add test=NAME points=N to the cell)" in problems_for(tmp_path, bad)


def test_test_cell_without_points(tmp_path):
    bad = GOOD.replace('# %% test="test_mae" points=1', '# %% test="test_mae"')
    line = line_of(bad, '# %% test="test_mae"')
    assert problems_for(tmp_path, bad) == [f"F:{line}: graded test cell 'test_mae' has no points (add points=N)"]


def test_duplicate_cell_id(tmp_path):
    bad = GOOD.replace('# %% test="test_mae" points=1', '# %% test="test_mse" points=1')
    first, second = line_of(bad, '# %% test="test_mse"'), line_of(bad, '# %% test="test_mse"', 2)
    assert f"F:{second}: duplicate cell id 'test_mse' (first used at F:{first})" in problems_for(tmp_path, bad)


def test_syntax_error(tmp_path):
    bad = GOOD.replace("    return sum(abs(x - y)", "    return sum(abs(x - y)) )")
    line = line_of(bad, "return sum(abs(x - y)) )")
    found = problems_for(tmp_path, bad)
    assert any(p.startswith(f"F:{line}: syntax error") for p in found), found


def test_exercise_without_test_and_bad_options(tmp_path):
    bad = GOOD.replace('# %% test="test_mae" points=1', "# %%").replace(
        'difficulty=2 importance=1 minutes="5"', 'difficulty=7 importance=1 minutes="5" colour="red"')
    head = line_of(bad, 'exercise="Absolute error"')
    found = problems_for(tmp_path, bad)
    assert f"F:{head}: exercise 'Absolute error' has no graded test cell (add '# %% test=NAME points=N' after it)" in found
    assert f"F:{head}: an exercise needs difficulty=1..5 (got 7)" in found
    assert any(p.startswith(f"F:{head}: unknown cell option 'colour'") for p in found)


def test_parameters_cell_must_define_fast_and_seed(tmp_path):
    bad = GOOD.replace("FAST = False\nSEED = 0", "FAST = 1")
    line = line_of(bad, "FAST = 1")
    found = problems_for(tmp_path, bad)
    assert f"F:{line}: the parameters cell must assign FAST = True or FAST = False" in found
    assert f"F:{line}: the parameters cell must assign SEED = <int>" in found


def test_bad_file_name(tmp_path):
    assert "F:1: section files must be named NN_short_name.py (got Bad-Name.py)" in problems_for(tmp_path, GOOD, "Bad-Name.py")


def test_cli_reports_all_problems_exit_2_and_writes_nothing(tmp_path):
    root = make_project(tmp_path / "proj")
    bad = GOOD.replace('# %% test="test_mae" points=1', '# %% test="test_mae"').replace(
        "N_POINTS = 20 if FAST else 200", "N_POINTS = (")
    (root / "source_exercises" / "02_broken.py").write_text(bad)
    result = run_course("build", "--fast", cwd=root, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout
    path = root / "source_exercises" / "02_broken.py"
    assert f"{path}:{line_of(bad, 'N_POINTS = (')}: syntax error" in out
    test_line = line_of(bad, '# %% test="test_mae"')
    assert f"{path}:{test_line}: graded test cell 'test_mae' has no points" in out
    assert "nothing was written" in out
    assert not (root / "dist").exists(), "a failed validation must not write any output"


def test_include_splices_helper_cells_without_an_empty_leading_cell(tmp_path):
    root = make_project(tmp_path / "p", sections=())
    (root / "course_helpers" / "demo_inc.py").write_text(
        "# %% [markdown]\n# ## Included\n\n# %%\ndef twice(x):\n    return 2 * x\n")
    path = root / "source_exercises" / "01_inc.py"
    path.write_text(GOOD + "\n# %% include=\"course_helpers/demo_inc.py\"\n")
    section = load_section(path)
    assert validate(section) == []
    spliced = [c for c in section.nb.cells if c.metadata["course"].get("included_from")]
    assert [(c.cell_type, c.source) for c in spliced] == [
        ("markdown", "## Included"), ("code", "def twice(x):\n    return 2 * x")]
    assert all(c.source.strip() for c in section.nb.cells if c.cell_type == "code")
