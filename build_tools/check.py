"""`course check`: the matrix that proves a section's tests are worth something.

(a) the solution, with hidden tests, passes every graded test;
(b) the exercise notebook, run as a student would with the stubs, reaches its last graded test and
    every graded test fails with a readable message (none passes on a stub, nothing kills the
    kernel). Cells after the last graded test cannot change a verdict, so they are not run: in most
    sections they are the experiments, the most expensive part of the notebook;
(c) every exercise has at least one graded test (validated when the file is parsed).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from papermill.parameterize import parameterize_notebook

from build_tools import pipeline
from build_tools.source import Section, data_env, environment
from build_tools.split.nbgrader_meta import is_autograded_test, needs_manual_grading


@dataclass
class TestOutcome:
    name: str
    points: float
    solution_ok: bool = False
    solution_message: str = ""
    stub_fails: bool = False
    stub_message: str = ""


@dataclass
class SectionCheck:
    stem: str
    tests: list[TestOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    exercises: int = 0
    results: dict = field(default_factory=dict)  # what the solution run saved with save_results
    manual: list[tuple[str, float]] = field(default_factory=list)  # (grade id, points): a human grades these

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.solution_ok and t.stub_fails for t in self.tests)


def _error_of(cell) -> tuple[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", ""), output.get("evalue", "")
    return None


def run_notebook(nb, parameters: dict, timeout: int = 900, results: dict | None = None, env: dict | None = None):
    """Execute with errors allowed. Returns (notebook, None) or (notebook, why the kernel died).

    Whatever the notebook saves with save_results is merged into ``results``.
    """
    # papermill reads these with attribute access; the split notebooks don't always carry them.
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb = parameterize_notebook(nb, parameters)
    scratch = Path(tempfile.mkdtemp(prefix="course-check-"))
    env = {**(env or {}), "COURSE_RESULTS_DIR": str(scratch / "results")}  # never clobber dist/results
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(scratch)}})
        with environment(env):
            client.execute()
        if results is not None:
            for path in sorted((scratch / "results").glob("*.json")):
                results.update(json.loads(path.read_text()))
        return nb, None
    except DeadKernelError as err:
        return nb, f"the kernel died: {err}"
    except Exception as err:  # a timeout, for example
        return nb, f"{type(err).__name__}: {err}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:160]


def check_section(section: Section, fast: bool = True) -> SectionCheck:
    result = SectionCheck(section.stem)
    result.exercises = sum(1 for c in section.nb.cells if "exercise" in c.metadata["course"])
    params = {"FAST": fast}
    env = data_env(section)

    solved, died = run_notebook(pipeline.grader_source_notebook(section), params, results=result.results, env=env)
    if died:
        result.problems.append(f"solution notebook: {died}")
    for cell in solved.cells:
        grade = cell.metadata.get("nbgrader", {})
        error = _error_of(cell)
        if needs_manual_grading(grade):
            result.manual.append((grade["grade_id"], grade["points"]))
        if error and needs_manual_grading(grade):
            result.problems.append(f"solution notebook: the model answer {grade['grade_id']} raised "
                                   f"{error[0]}: {_first_line(error[1])}")
        elif is_autograded_test(grade):
            outcome = TestOutcome(grade["grade_id"], grade["points"])
            outcome.solution_ok = error is None and bool(cell.get("outputs") is not None) and not died
            if error:
                outcome.solution_message = f"{error[0]}: {_first_line(error[1])}"
            result.tests.append(outcome)
        elif error:
            course = cell.metadata.get("course", {})
            result.problems.append(f"solution notebook: cell {cell.id} raised {error[0]}: {_first_line(error[1])}")

    exercise = pipeline.exercise_notebook(section)
    graded = [i for i, c in enumerate(exercise.cells) if is_autograded_test(c.metadata.get("nbgrader", {}))]
    if graded:
        exercise.cells = exercise.cells[: graded[-1] + 1]
    stubbed, died = run_notebook(exercise, params, env=env)
    if died:
        result.problems.append(f"exercise notebook (stubs) did not run to the end: {died}")
    by_name = {t.name: t for t in result.tests}
    for cell in stubbed.cells:
        grade = cell.metadata.get("nbgrader", {})
        if not is_autograded_test(grade):
            continue
        outcome = by_name.get(grade["grade_id"])
        if outcome is None:
            continue
        error = _error_of(cell)
        if cell.get("execution_count") is None and died:
            outcome.stub_message = "never ran (the notebook stopped before it)"
        elif error is None:
            outcome.stub_message = "PASSES on the stub: this test checks nothing the student writes"
        elif error[0] in ("NotImplementedError", "AssertionError") or error[1].strip():
            outcome.stub_fails = True
            outcome.stub_message = f"{error[0]}: {_first_line(error[1]) or '(stub not implemented)'}"
        else:
            outcome.stub_message = f"fails without a message ({error[0]})"
    return result
