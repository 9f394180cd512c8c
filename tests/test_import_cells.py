"""`course import` cell by cell: what maps, what cannot (kept and reported with file and cell index),
and that the written section always validates."""

from __future__ import annotations

import base64

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from build_tools.importer import ImportError_, import_notebook
from conftest import run_course

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def nbg(**meta):
    return {"nbgrader": {"schema_version": 3, "grade": False, "solution": False, "locked": False, **meta}}


def run_import(tmp_path, cells, name="01_imported.py", **nb_meta):
    nb = new_notebook(cells=cells, metadata=nb_meta)
    (tmp_path / "in").mkdir(exist_ok=True)
    src = tmp_path / "in" / "assignment.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "course" / "source_exercises" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    report = import_notebook(src, out)
    assert report.problems == []  # whatever came in, the section validates
    return report, out.read_text()


def why(report, index):
    return [i.why for i in report.unmapped if i.cell == index]


def test_unmappable_cells_are_kept_and_reported(tmp_path):
    cells = [
        new_markdown_cell("# Loops"),
        new_raw_cell("raw \\LaTeX{} text"),
        new_code_cell('print "python 2"'),
        new_code_cell("x = 1\n### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS"),
        new_code_cell("assert True", metadata=nbg(grade=True, grade_id="zero", points=0)),
        new_markdown_cell("![plot](missing.png)"),
    ]
    report, text = run_import(tmp_path, cells)
    assert why(report, 1) == ["a raw cell (the format has markdown and code cells only); kept as a markdown "
                              "cell with the text in a fenced block"]
    assert why(report, 2) == ["not valid Python 3 (line 1: Missing parentheses in call to 'print'. Did you mean "
                              "print(...)?); kept as a markdown cell with the text in a fenced block"]
    assert why(report, 3) == ["hidden tests outside an autograder test cell; kept as a markdown cell with the "
                              "text in a fenced block; its solution or hidden-test code is now VISIBLE to students"]
    assert why(report, 4) == ["test 'zero' has 0 points; imported as an ungraded code cell"]
    assert why(report, 5) == ["image 'missing.png' not found next to the notebook; link kept as written"]
    assert all(str(i.file).endswith("assignment.ipynb") for i in report.unmapped)
    for kept in ("raw \\LaTeX{} text", 'print "python 2"', "# ### [imported] BEGIN HIDDEN TESTS\n# assert x == 1", "# %% id=\"zero\"\nassert True",
                 "![plot](missing.png)"):
        assert kept in text


def test_nbgrader_cells_map_to_options(tmp_path):
    cells = [
        new_markdown_cell("Intro text.", metadata=nbg(locked=True, grade_id="intro")),
        new_markdown_cell("---\n## Part A\nWrite `double`."),
        new_code_cell("def double(x):\n    ### BEGIN SOLUTION # the answer\n    return 2 * x\n    ### END SOLUTION",
                      metadata={**nbg(solution=True, grade_id="double answer"), "tags": ["keep-me"], "custom": 1}),
        new_code_cell("assert double(1) == 2\n### BEGIN HIDDEN TESTS\nassert double(3) == 6\n### END HIDDEN TESTS",
                      metadata=nbg(grade=True, grade_id="test_double", points=2)),
        new_code_cell("%matplotlib inline\n!pip install nothing\nimport math"),
        new_markdown_cell("%% not a cell marker"),
        new_code_cell("# %% inside code\ny = 2"),
    ]
    report, text = run_import(tmp_path, cells)
    assert report.unmapped == []
    assert '# %% [markdown] id="intro"\n# Intro text.' in text
    assert 'SEED = 0\n\n# %% [markdown]\n# ---\n\n# %% [markdown] exercise=' in text  # the rule stays above its exercise
    assert '# %% [markdown] exercise="Part A" difficulty=2 importance=3 minutes="10"\n# Write `double`.' in text
    assert '# %% id="double_answer" tags=["keep-me"]\ndef double(x):\n    ### BEGIN SOLUTION\n' in text
    assert ('# %% test="test_double" points=2\nassert double(1) == 2\n### BEGIN HIDDEN TESTS\n'
            'assert double(3) == 6\n### END HIDDEN TESTS') in text
    assert "# IPython, not run: %matplotlib inline\n# IPython, not run: !pip install nothing\nimport math" in text
    assert "#  %% not a cell marker" in text and "#  %% inside code\ny = 2" in text
    notes = {(i.cell, i.why) for i in report.notes}
    assert (2, "grade id 'double answer' renamed 'double_answer' (ids are letters, digits, '-' and '_')") in notes
    assert (2, "marker '### BEGIN SOLUTION # the answer' rewritten as '### BEGIN SOLUTION'") in notes
    assert (2, "cell metadata not kept (the format has no place for it): custom") in notes


def test_attachments_and_local_images_are_copied(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "figs").mkdir()
    (tmp_path / "in" / "figs" / "plot.png").write_bytes(PNG + b"file")
    attached = new_markdown_cell('![a](attachment:plot.png) and <img src="figs/plot.png" width="50">')
    attached.attachments = {"plot.png": {"image/png": base64.b64encode(PNG).decode()}}
    report, text = run_import(tmp_path, [attached], name="03_pictures.py")
    files = tmp_path / "course" / "source_exercises" / "03_pictures_files"
    assert (files / "plot.png").read_bytes() == PNG  # the attachment
    assert (files / "plot-2.png").read_bytes() == PNG + b"file"  # a different file of the same name
    assert '![a](03_pictures_files/plot.png) and <img src="03_pictures_files/plot-2.png" width="50">' in text


def test_parameters_cell_completed_and_jupytext_input(tmp_path):
    percent = "# %% [markdown]\n# # Title here\n\n# %% tags=[\"parameters\"]\nSEED = 3\n\n# %%\nprint(SEED)\n"
    src = tmp_path / "plain.py"
    src.write_text(percent)
    out = tmp_path / "course" / "source_exercises" / "02_plain.py"
    out.parent.mkdir(parents=True)
    report = import_notebook(src, out)
    assert report.problems == [] and report.unmapped == []
    text = out.read_text()
    assert "# title: Title here\n" in text
    assert '# %% tags=["parameters"]\nSEED = 3\nFAST = False\n\n# %%\nprint(SEED)' in text
    assert jupytext.read(out).cells[-1].source == "print(SEED)"


def test_refuses_to_overwrite_and_bad_names(tmp_path):
    src = tmp_path / "a.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("hi")]), src)
    (tmp_path / "01_a.py").write_text("keep me")
    with pytest.raises(ImportError_, match="already exists"):
        import_notebook(src, tmp_path / "01_a.py")
    assert (tmp_path / "01_a.py").read_text() == "keep me"
    with pytest.raises(ImportError_, match="NN_short_name.py"):
        import_notebook(src, tmp_path / "a.py")
    r_nb = new_notebook(cells=[new_code_cell("x <- 1")], metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}})
    nbformat.write(r_nb, tmp_path / "r.ipynb")
    with pytest.raises(ImportError_, match="a R notebook; sections are Python"):
        import_notebook(tmp_path / "r.ipynb", tmp_path / "03_r.py")
    assert not (tmp_path / "03_r.py").exists()
    (tmp_path / "broken.ipynb").write_text("{not json")
    with pytest.raises(ImportError_, match="cannot read the notebook"):
        import_notebook(tmp_path / "broken.ipynb", tmp_path / "02_b.py")


def test_cli_numbers_sections_and_reports(tmp_path):
    root = tmp_path / "c"
    (root / "source_exercises").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    (root / "source_exercises" / "04_existing.py").write_text("")
    for name in ("First One", "second"):
        nbformat.write(new_notebook(cells=[new_markdown_cell("hi"), new_raw_cell("raw")]), tmp_path / f"{name}.ipynb")
    result = run_course("import", str(tmp_path / "First One.ipynb"), str(tmp_path / "second.ipynb"), cwd=root)
    assert (root / "source_exercises" / "05_first_one.py").exists()
    assert (root / "source_exercises" / "06_second.py").exists()
    assert f"not mapped: {tmp_path / 'second.ipynb'} cell 1: a raw cell" in result.stdout
    again = run_course("import", str(tmp_path / "second.ipynb"), "--out", str(root / "source_exercises" / "06_second.py"),
                       cwd=root, check=False)
    assert again.returncode == 2 and "already exists" in again.stdout
    both = run_course("import", str(tmp_path / "second.ipynb"), str(tmp_path / "second.ipynb"), "--out", "x.py",
                      cwd=root, check=False)
    assert both.returncode == 2


def test_markdown_answer_with_a_solution_region(tmp_path):
    cells = [
        new_markdown_cell("## Question\nWhy?"),
        new_markdown_cell("Your answer:\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n\n(one line)",
                          metadata=nbg(grade=True, solution=True, grade_id="why", points=1)),
        new_markdown_cell("Not an answer\n### BEGIN SOLUTION\nleak\n### END SOLUTION"),
    ]
    report, text = run_import(tmp_path, cells)
    assert ('# %% [markdown] exercise="Question" difficulty=2 importance=3 minutes="10"\n# Why?\n\n'
            '# %% [markdown]\n# Your answer:\n\n# %% [markdown] manual=true points=1 id="why"\n# Because.\n\n'
            '# %% [markdown]\n# (one line)') in text
    assert why(report, 2) == ["nbgrader markers in a markdown cell that is not one manually graded answer with one "
                              "solution region; kept as text with the markers made inert"]
    assert "# ### [imported] BEGIN SOLUTION\n# leak" in text
