"""`course import` on nbgrader's own example assignment (`nbgrader quickstart`: ps1 = problem1.ipynb,
problem2.ipynb, jupyter.png): imported into a course made by `course init`, built, checked, and a class of submissions
graded by `course grade` and by plain `nbgrader autograde` (from the ORIGINAL ps1 source) with the
same autograded points, test by test."""

from __future__ import annotations

import base64
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import run_course
from grader import sandbox
from grader.cli import grade

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BIN = str(Path(sys.executable).parent)
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}  # nbgrader runs `alembic` from PATH

# What each student writes into the answer cells (by nbgrader grade id); missing ids stay as released.
SQUARES = 'def squares(n):\n    if n < 1:\n        raise ValueError("n < 1")\n    return [i ** 2 for i in range(1, n + 1)]\n'
STUDENTS = {
    "honest": {
        "squares": SQUARES,
        "sum_of_squares": "def sum_of_squares(n):\n    return sum(squares(n))\n",
        "sum_of_squares_equation": "$\\sum_{i=1}^n i^2$",
        "sum_of_squares_application": "def pyramidal_number(n):\n    return sum_of_squares(n)\n",
    },
    # no ValueError for n < 1; sum_of_squares re-implements squares
    "partial": {
        "squares": "def squares(n):\n    return [i ** 2 for i in range(1, n + 1)]\n",
        "sum_of_squares": "def sum_of_squares(n):\n    return sum(i * i for i in range(1, n + 1))\n",
    },
    # right squares, off-by-one sum that still calls squares
    "wrongsum": {
        "squares": SQUARES,
        "sum_of_squares": "def sum_of_squares(n):\n    return sum(squares(n)) + 1\n",
    },
    "blank": {},
}
EXPECTED = {  # autograded points per test, the same for both graders
    "honest": {"correct_squares": 1, "squares_invalid_input": 1, "correct_sum_of_squares": 0.5, "sum_of_squares_uses_squares": 0.5},
    "partial": {"correct_squares": 1, "squares_invalid_input": 0, "correct_sum_of_squares": 0.5, "sum_of_squares_uses_squares": 0},
    "wrongsum": {"correct_squares": 1, "squares_invalid_input": 1, "correct_sum_of_squares": 0, "sum_of_squares_uses_squares": 0.5},
    "blank": {"correct_squares": 0, "squares_invalid_input": 0, "correct_sum_of_squares": 0, "sum_of_squares_uses_squares": 0},
}


def nbgrader(*args, cwd: Path) -> None:
    result = subprocess.run([f"{BIN}/nbgrader", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def fill(notebook: Path, answers: dict, dest: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        grade_id = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


@pytest.fixture(scope="module")
def ps1(tmp_path_factory) -> Path:
    """nbgrader's quickstart course: source/ps1/{problem1,problem2}.ipynb, jupyter.png."""
    where = tmp_path_factory.mktemp("nbgrader")
    nbgrader("quickstart", "ps1_course", cwd=where)
    return where / "ps1_course"


@pytest.fixture(scope="module")
def course(ps1, tmp_path_factory):
    root = tmp_path_factory.mktemp("course") / "ps1"
    run_course("init", str(root), "--title", "Problem sets", cwd=root.parent)  # its example section is 01
    source = ps1 / "source" / "ps1"
    imported = run_course("import", str(source / "problem1.ipynb"), str(source / "problem2.ipynb"), cwd=root)
    run_course("build", "--fast", "--no-site", cwd=root)
    checked = run_course("check", "--fast", cwd=root)
    return root, imported.stdout, checked.stdout


def test_import_maps_every_cell(course, ps1):
    root, out, _ = course
    assert "not mapped" not in out and "problem:" not in out, out
    text = (root / "source_exercises" / "02_problem1.py").read_text()
    options = re.findall(r"^# %%(.*)$", text, re.M)
    # nbgrader's graded cells, with their grade ids and points, in order
    assert [o.strip() for o in options if "test=" in o or "manual=" in o or "task=" in o or "id=" in o] == [
        '[markdown] id="jupyter"',  # the read-only cell
        'id="squares"', 'test="correct_squares" points=1', 'test="squares_invalid_input" points=1',
        'id="sum_of_squares"', 'test="correct_sum_of_squares" points=0.5', 'test="sum_of_squares_uses_squares" points=0.5',
        '[markdown] manual=true points=1 id="sum_of_squares_equation"',
        'manual=true points=2 id="sum_of_squares_application"',
        '[markdown] task=true points=4 id="cell-938593c4a215c6cc"',
    ]
    assert [re.search(r'exercise="([^"]+)"', o).group(1) for o in options if "exercise=" in o] == [
        "Part A (2 points)", "Part B (1 point)", "Part C (1 point)", "Part D (2 points)", "Part E (4 points)"]
    # the answer cell without a region is a solution as a whole, as nbgrader treats it
    assert '### BEGIN SOLUTION\ndef pyramidal_number(n):' in text
    # every line of the original notebook's text is in the section file
    original = nbformat.read(ps1 / "source" / "ps1" / "problem1.ipynb", as_version=4)
    for cell in original.cells:
        for line in cell.source.replace("jupyter.png", "02_problem1_files/jupyter.png").split("\n"):
            line = re.sub(r"^#+\s+", "", line)  # headings became exercise titles
            assert line.strip() in text, f"lost: {line!r}"
    # the image: copied next to the section, embedded in the notebooks, shown by the page
    image = (ps1 / "source" / "ps1" / "jupyter.png").read_bytes()
    assert (root / "source_exercises" / "02_problem1_files" / "jupyter.png").read_bytes() == image
    exercise = nbformat.read(root / "dist" / "exercises" / "02_problem1.ipynb", as_version=4)
    first = exercise.cells[0]
    assert "![](attachment:jupyter.png)" in first.source and list(first.attachments) == ["jupyter.png"]
    page = (root / "book" / "generated" / "02_problem1.ipynb").read_text()
    assert "data:image/png;base64," in page
    text2 = (root / "source_exercises" / "03_problem2.py").read_text()
    assert 'manual=true points=1 id="part-a"' in text2 and 'manual=true points=2 id="part-b"' in text2


def test_check_passes_and_lists_manual_grading(course):
    _, _, checked = course
    assert "course check passed for 3 section(s)" in checked
    for name in ("sum_of_squares_equation (1 points)", "sum_of_squares_application (2 points)",
                 "cell-938593c4a215c6cc (4 points)", "part-a (1 points)", "part-b (2 points)"):
        assert f"{name}: needs manual grading" in checked


def test_grades_match_nbgrader_autograde(course, ps1, tmp_path):
    root, _, _ = course
    # course grade: the course's exercise notebook, filled in
    subs = tmp_path / "subs"
    for student, answers in STUDENTS.items():
        fill(root / "dist" / "exercises" / "02_problem1.ipynb", answers, subs / f"{student}.ipynb")
    unsafe = sandbox.sandbox_problem() is not None
    code = grade("2", subs, tmp_path / "out", cell_timeout=30, timeout=120, course_dir=root / "dist" / "nbgrader",
                 unsafe_no_sandbox=unsafe)
    assert code == 0
    with open(tmp_path / "out" / "grades.csv") as fh:
        ours = {r["student"]: r for r in csv.DictReader(fh)}

    # nbgrader: its own release of the original source, filled in the same way, autograded
    nbg = tmp_path / "nbgrader"
    shutil.copytree(ps1, nbg)
    nbgrader("generate_assignment", "ps1", cwd=nbg)
    for student, answers in STUDENTS.items():
        for name in ("problem1", "problem2"):
            fill(nbg / "release" / "ps1" / f"{name}.ipynb", answers, nbg / "submitted" / student / "ps1" / f"{name}.ipynb")
    nbgrader("autograde", "ps1", cwd=nbg)
    from nbgrader.api import Gradebook

    theirs = {}
    with Gradebook(f"sqlite:///{nbg / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            notebook = gb.find_submission_notebook("problem1", "ps1", student)
            theirs[student] = {g.name: g.auto_score for g in notebook.grades}

    tests = list(EXPECTED["honest"])
    assert set(ours["honest"]) >= set(tests)
    for student, expected in EXPECTED.items():
        # manually graded cells: never autograded by either (nbgrader gives a blank answer 0)
        assert set(theirs[student]) - set(tests) == {"sum_of_squares_equation", "sum_of_squares_application",
                                                     "cell-938593c4a215c6cc"}
        assert theirs[student]["cell-938593c4a215c6cc"] is None
        theirs[student] = {t: theirs[student][t] for t in tests}

    for student, expected in EXPECTED.items():
        got = {test: float(ours[student][test]) for test in expected}
        assert got == theirs[student] == expected, (student, got, theirs[student])
        assert float(ours[student]["score"]) == sum(expected.values())
        assert ours[student]["status"] == "ok"


def test_an_edited_image_reaches_notebooks_and_page(course):
    root, _, _ = course
    image = root / "source_exercises" / "02_problem1_files" / "jupyter.png"
    image.write_bytes(image.read_bytes() + b"edited")  # still a PNG to any browser; new bytes
    run_course("build", "--fast", "--no-site", "--only", "2", cwd=root)
    encoded = base64.b64encode(image.read_bytes()).decode()
    exercise = nbformat.read(root / "dist" / "exercises" / "02_problem1.ipynb", as_version=4)
    assert exercise.cells[0].attachments["jupyter.png"]["image/png"] == encoded
    solution = nbformat.read(root / "dist" / "solutions" / "02_problem1.ipynb", as_version=4)
    assert solution.cells[0].attachments["jupyter.png"]["image/png"] == encoded
    assert f"data:image/png;base64,{encoded}" in (root / "book" / "generated" / "02_problem1.ipynb").read_text()


def test_a_section_graded_only_by_hand_is_graded(course, tmp_path):
    """problem2 has manually graded answers and a task but no autograded test: grading takes it,
    scores nothing automatically, and leaves the answers for formgrader."""
    root, _, _ = course
    subs = tmp_path / "subs"
    fill(root / "dist" / "exercises" / "03_problem2.ipynb", {}, subs / "ada.ipynb")
    unsafe = sandbox.sandbox_problem() is not None
    code = grade("3", subs, tmp_path / "out", cell_timeout=30, timeout=120, course_dir=root / "dist" / "nbgrader",
                 unsafe_no_sandbox=unsafe)
    assert code == 0
    with open(tmp_path / "out" / "grades.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["student"], r["status"], float(r["score"]), float(r["max_score"])) for r in rows] == [("ada", "ok", 0, 3)]
