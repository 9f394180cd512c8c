"""Each split transform alone, and the notebooks they compose, on the fixture section."""

from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum

from build_tools import markers, pipeline
from build_tools.source import load_section
from build_tools.split import inline_helpers, render_code, render_folds, select_cells
from conftest import FIXTURES, REPO

FIXTURE = FIXTURES / "source_exercises" / "01_fixture.py"


def fixture():
    return load_section(FIXTURE)


def sources(nb):
    return "\n".join(c.source for c in nb.cells)


def test_parse_cells_options_and_lines():
    section = fixture()
    assert section.meta["title"] == "A tiny fixture section" and section.number == 1
    test_cell = next(c for c in section.nb.cells if c.metadata["course"].get("test") == "test_mse")
    assert test_cell.metadata["course"]["points"] == 2
    text = FIXTURE.read_text().splitlines()
    # The recorded line is the first body line of the cell in the source file.
    assert text[test_cell.metadata["course"]["line"] - 1].startswith("assert mse([1.0, 2.0]")
    params = next(c for c in section.nb.cells if "parameters" in c.metadata.get("tags", []))
    assert params.source == "FAST = False\nSEED = 0"


def test_render_stub_solution_and_markers():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n    ### BEGIN STUB\n    # return ...\n    ### END STUB"
    assert markers.render(src, "keep", "drop") == "def f(x):\n    return x + 1"
    assert markers.render(src, "stub", "drop") == "def f(x):\n    return ..."
    assert markers.render(src, "markers", "drop") == "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION"
    bare = "def g():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION"
    assert markers.render(bare, "stub", "drop") == "def g():\n    raise NotImplementedError()"


def test_select_cells_by_audience():
    nb = fixture().nb
    assert "only on the site" not in sources(select_cells(nb, "exercise"))
    assert "Run every cell" in sources(select_cells(nb, "exercise"))
    assert "only on the site" in sources(select_cells(nb, "page"))
    assert "The solution's own commentary" not in sources(select_cells(nb, "grader"))


def test_inline_helpers_replaces_imports_once():
    nb = inline_helpers(fixture().nb, FIXTURE)
    text = sources(nb)
    assert "from course_helpers" not in text
    assert text.count("# ---- coursepress/results.py") == 1
    assert "def save_results" in text
    cell = next(c for c in nb.cells if "original_source" in c.metadata["course"])
    assert "from coursepress.results import save_results" in cell.metadata["course"]["original_source"]


def test_folds_details_and_dropdown():
    nb = fixture().nb
    details = sources(render_folds(nb, "details"))
    assert "<details>\n<summary>Hint</summary>" in details
    assert "::::{dropdown} Hint" in sources(render_folds(nb, "dropdown"))


def test_exercise_notebook_is_an_nbgrader_release_notebook():
    section = fixture()
    nb = pipeline.exercise_notebook(section)
    nbformat.validate(nb)
    graded = {c.id: c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert set(graded) == {"test_mse", "test_mae"} and graded["test_mse"]["points"] == 2
    for cell in nb.cells:
        if "nbgrader" in cell.metadata:
            assert cell.metadata["nbgrader"]["checksum"] == compute_checksum(cell)
    solution_ids = [c.id for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solution_ids == ["solution-mse", "solution-mae"]
    mse_cell = nb.cells[[c.id for c in nb.cells].index("solution-mse")]
    assert mse_cell.source == "def mse(xs: list[float], ys: list[float]) -> float:\n    total = ...  # sum of squared differences\n    return ..."
    assert nb.cells[1].id == "setup" and "google.colab" not in nb.cells[1].source  # fixture needs nothing
    assert "### Exercise 1.1: Mean squared error" in sources(nb) and "●○○○○ 1/5" in sources(nb)


def test_no_solution_or_hidden_line_leaks_into_the_exercise():
    section = fixture()
    text = sources(pipeline.exercise_notebook(section))
    secret = [line.strip() for c in section.nb.cells if c.cell_type == "code" for line in markers.marker_lines(c.source)]
    assert secret, "the fixture has solution and hidden lines"
    assert [line for line in secret if line and line in text] == []
    assert "BEGIN" not in text


def test_grader_source_keeps_hidden_tests_with_same_ids_as_release():
    section = fixture()
    release, source = pipeline.exercise_notebook(section), pipeline.grader_source_notebook(section)
    assert [c.id for c in release.cells] == [c.id for c in source.cells]
    text = sources(source)
    assert "### BEGIN HIDDEN TESTS" in text and 'assert mse([], []) == 0.0, "empty lists have mse 0"' in text
    assert "### BEGIN STUB" not in text


def test_run_notebook_has_solutions_but_no_hidden_tests():
    section = fixture()
    text = sources(pipeline.run_notebook(section))
    assert "return sum((x - y) ** 2 for x, y in zip(xs, ys)) / len(xs)" in text
    for line in (l for c in section.nb.cells if c.cell_type == "code" for l in markers.hidden_lines(c.source)):
        assert line.strip() not in text


def helper_lines(included: set):
    """Lines of helpers a section imports: inlined with their solutions, so they are public code.
    Helpers the section teaches (spliced with include=) keep their solution lines secret."""
    for path in (REPO / "course_helpers").glob("*.py"):
        for block in markers.scan(path.read_text())[0]:
            if block.kind == "plain" or path.name not in included:
                yield from (l.strip() for l in block.lines)


def test_real_sections_never_leak(tmp_path):
    """Every real section: no solution/hidden line in the exercise, no hidden line in the run notebook."""
    sections = sorted((REPO / "source_exercises").glob("[0-9][0-9]_*.py"))
    for path in sections:
        section = load_section(path)
        # Compare whole lines: a hidden line may legitimately be part of a longer public line.
        exercise = {l.strip() for l in sources(pipeline.exercise_notebook(section)).split("\n")}
        run = {l.strip() for l in sources(pipeline.run_notebook(section)).split("\n")}
        # Lines that also occur outside secret blocks (e.g. `with torch.no_grad():`) are not leaks.
        public = set()
        for cell in section.nb.cells:
            if cell.cell_type != "code":
                public.update(l.strip() for l in cell.source.split("\n"))
                continue
            for block in markers.scan(cell.source)[0]:
                if block.kind in ("plain", "stub"):
                    public.update(l.strip().lstrip("# ").strip() if block.kind == "stub" else l.strip()
                                  for l in block.lines)
        included = {Path(c.metadata["course"]["included_from"]).name for c in section.nb.cells
                    if c.metadata["course"].get("included_from")}
        public |= set(helper_lines(included))
        for cell in section.nb.cells:
            if cell.cell_type != "code":
                continue
            blocks, _ = markers.scan(cell.source)
            for block in blocks:
                for line in block.lines:
                    text = line.strip()
                    if len(text) < 12 or text.startswith("#") or text in public:
                        continue  # too short/generic to be a leak (e.g. `return out`)
                    if block.kind in ("solution", "hidden"):
                        assert text not in exercise, f"{path.name}: exercise leaks {text!r}"
                    if block.kind == "hidden":
                        assert text not in run, f"{path.name}: published notebooks leak hidden {text!r}"


def test_inline_helpers_multiline_import():
    section = fixture()
    cell = next(c for c in section.nb.cells if "from coursepress.results import save_results" in c.source)
    cell.source = cell.source.replace("from coursepress.results import save_results",
                                      "from coursepress.results import (\n    save_results,\n)")
    nb = inline_helpers(section.nb, FIXTURE)
    text = next(c.source for c in nb.cells if "def save_results" in c.source)
    compile(text, "cell", "exec")  # no orphan `save_results,` / `)` lines left behind


def test_progress_bar_chunks_are_merged():
    from build_tools.execute import _merge_outputs

    fresh = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()")])
    ran = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()")])
    ran.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{i}0%|\r") for i in range(10)]
    ran.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stdout", text="100%| done\n"))
    merged = _merge_outputs(fresh, ran)
    assert [o["text"] for o in merged.cells[0].outputs] == ["100%| done\n"]
