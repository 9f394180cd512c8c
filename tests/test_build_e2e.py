"""End to end on the fixture project: build twice (cache), notebooks, results, check, scaffold."""

import json
import re
import time

import nbformat
import pytest

from build_tools import markers
from build_tools.source import load_section
from conftest import make_project, run_course

pytestmark = pytest.mark.slow


def test_first_build_writes_every_artifact(built_fixture):
    root, first = built_fixture
    assert "01_fixture: executed in" in first.stdout
    exercise = nbformat.read(root / "dist/exercises/01_fixture.ipynb", 4)
    solution = nbformat.read(root / "dist/solutions/01_fixture.ipynb", 4)
    source = nbformat.read(root / "dist/nbgrader/source/01_fixture/01_fixture.ipynb", 4)
    page = nbformat.read(root / "book/generated/01_fixture.ipynb", 4)
    # The solution is executed with FAST injected and every output embedded.
    injected = [c for c in solution.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "FAST = True" in injected[0].source
    figure = [o for c in solution.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert figure and "Plotly.newPlot" in figure[0]["data"]["text/html"]
    assert "cdn.plot.ly" not in figure[0]["data"]["text/html"]
    # Exercise: stubs, no outputs; grader source: hidden tests; page: links and folded solutions.
    assert all(not c.get("outputs") for c in exercise.cells if c.cell_type == "code")
    assert "### BEGIN HIDDEN TESTS" in "\n".join(c.source for c in source.cells)
    links = next(c for c in page.cells if c.metadata.get("course", {}).get("links"))
    assert ("https://colab.research.google.com/github/superposition-course/superposition-course/blob/"
            "gh-pages/notebooks/exercises/01_fixture.ipynb") in links.source
    folded = next(c for c in page.cells if c.id == "solution-mse")
    assert "hide-input" in folded.metadata["tags"]
    # papermill's override cell is build plumbing: removed from the page
    page_injected = [c for c in page.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert page_injected and "remove-cell" in page_injected[0].metadata["tags"]
    results = json.loads((root / "dist/results/section1.json").read_text())
    assert results["n_points"] == 20 and 0.001 < results["mse"] < 0.05


def test_hidden_tests_exist_only_in_the_grader_source(built_fixture):
    root, _ = built_fixture
    section = load_section(root / "source_exercises/01_fixture.py")
    hidden = [l.strip() for c in section.nb.cells if c.cell_type == "code" for l in markers.hidden_lines(c.source)]
    published = [root / "dist/exercises/01_fixture.ipynb", root / "dist/solutions/01_fixture.ipynb",
                 root / "book/generated/01_fixture.ipynb", *sorted((root / "book/_build/html").rglob("*.html")),
                 *sorted((root / "book/_build/html").rglob("*.ipynb"))]
    assert len(published) > 5
    for path in published:
        text = path.read_text(errors="replace")
        for line in hidden:
            assert json.dumps(line)[1:-1] not in text and line not in text, f"{path} leaks {line!r}"


def test_second_build_executes_nothing_and_is_fast(built_fixture):
    root, first = built_fixture
    start = time.perf_counter()
    second = run_course("build", "--fast", cwd=root)
    elapsed = time.perf_counter() - start
    assert "executed no notebook (all cached)" in second.stdout
    # nothing a page is made of changed: its notebooks are not even re-written
    assert "01_fixture: cached, not executed (notebooks up to date)" in second.stdout
    assert "site unchanged: jupyter-book not run" in second.stdout
    first_s = float(re.search(r"built in ([\d.]+) s", first.stdout).group(1))
    second_s = float(re.search(r"built in ([\d.]+) s", second.stdout).group(1))
    assert second_s < first_s / 3, (first_s, second_s, elapsed)


def test_markdown_edit_reuses_outputs_code_edit_reexecutes(tmp_path):
    root = make_project(tmp_path / "p")
    run_course("build", "--fast", "--no-site", cwd=root)
    src = root / "source_exercises/01_fixture.py"
    src.write_text(src.read_text().replace("walks both lists together", "walks both lists in step"))
    again = run_course("build", "--fast", "--no-site", cwd=root)
    assert "01_fixture: cached, not executed\n" in again.stdout  # the run is reused, the notebooks re-made
    solution = nbformat.read(root / "dist/solutions/01_fixture.ipynb", 4)
    text = "\n".join(c.source for c in solution.cells)
    assert "walks both lists in step" in text
    assert any(c.get("outputs") for c in solution.cells if c.cell_type == "code"), "outputs kept from the cache"
    src.write_text(src.read_text().replace("N_POINTS = 20 if FAST", "N_POINTS = 21 if FAST"))
    third = run_course("build", "--fast", "--no-site", cwd=root)
    assert "01_fixture: executed in" in third.stdout
    assert json.loads((root / "dist/results/section1.json").read_text())["n_points"] == 21


def test_failing_cell_fails_the_build_with_section_cell_and_traceback(tmp_path):
    root = make_project(tmp_path / "p")
    src = root / "source_exercises/01_fixture.py"
    text = src.read_text().replace("fig.show()", "fig.show()\n1 / 0")
    src.write_text(text)
    result = run_course("build", "--fast", "--no-site", cwd=root, check=False)
    assert result.returncode == 1
    line = [i + 1 for i, l in enumerate(text.splitlines()) if l.startswith("xs = [random.random()")][0]
    assert f"section 01_fixture: cell" in result.stdout and f"01_fixture.py:{line})" in result.stdout
    assert "ZeroDivisionError" in result.stdout
    assert not (root / "dist/solutions/01_fixture.ipynb").exists()


def test_course_check_matrix(tmp_path):
    root = make_project(tmp_path / "p")
    ok = run_course("check", "--fast", cwd=root)
    assert "course check passed" in ok.stdout
    assert re.search(r"test_mse\s*│\s*2\s*│\s*passes\s*│\s*fails: AssertionError", ok.stdout), ok.stdout
    assert re.search(r"test_mae\s*│\s*1\s*│\s*passes\s*│\s*fails: NotImplementedError", ok.stdout), ok.stdout
    # A test that cannot fail is caught: it passes on the stub.
    src = root / "source_exercises/01_fixture.py"
    src.write_text(src.read_text().replace('assert mae([1.0, 3.0], [2.0, 1.0]) == 1.5, f"expected 1.5, got {mae([1.0, 3.0], [2.0, 1.0])}"',
                                           "assert True"))
    bad = run_course("check", "--fast", cwd=root, check=False)
    assert bad.returncode == 1 and "PASSES on the stub" in bad.stdout


def test_course_new_scaffolds_a_valid_section(tmp_path):
    root = make_project(tmp_path / "p")
    result = run_course("new", "Attention superposition", cwd=root)
    path = root / "source_exercises" / "02_attention_superposition.py"
    assert path.exists() and str(path) in result.stdout.replace("\n", "")
    from build_tools.validate import validate
    assert validate(load_section(path)) == []


def test_two_sections_run_side_by_side_and_a_failure_keeps_the_other_run(tmp_path):
    """`-j 2` executes two notebooks at once (one thread each); one failing section fails the
    build with its cell named, and the section that finished is cached for the next build."""
    root = make_project(tmp_path / "p")
    src = root / "source_exercises/01_fixture.py"
    second = root / "source_exercises/02_fixture_copy.py"
    second.write_text(src.read_text().replace("save_results(1", "save_results(2"))
    first = run_course("build", "--fast", "--no-site", "-j", "2", cwd=root)
    assert re.search(r"01_fixture: executed in [\d.]+ s", first.stdout)
    assert re.search(r"02_fixture_copy: executed in [\d.]+ s", first.stdout)
    for stem in ("01_fixture", "02_fixture_copy"):
        solution = nbformat.read(root / f"dist/solutions/{stem}.ipynb", 4)
        assert any(c.get("outputs") for c in solution.cells if c.cell_type == "code")
    durations = json.loads((root / "dist/.cache/execute/durations.json").read_text())
    assert set(durations) == {"01_fixture:fast", "02_fixture_copy:fast"}

    src.write_text(src.read_text().replace("N_POINTS = 20 if FAST", "N_POINTS = 22 if FAST"))
    second.write_text(second.read_text().replace("fig.show()", "fig.show()\n1 / 0"))
    failed = run_course("build", "--fast", "--no-site", "-j", "2", cwd=root, check=False)
    assert failed.returncode == 1
    assert "section 02_fixture_copy: cell" in failed.stdout and "ZeroDivisionError" in failed.stdout
    again = run_course("build", "--fast", "--no-site", "--only", "1", cwd=root)
    assert "01_fixture: cached, not executed" in again.stdout  # its run finished and was kept
