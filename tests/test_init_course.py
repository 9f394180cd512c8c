"""Any course, not only this one: a course made by `course init`, and a course that simply has less.

Every command a new author or instructor runs is run here on a course that shares nothing with
the superposition course (no torch, no course_helpers imports, its own config and pages).
"""

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, COURSE, run_course

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def new_course(tmp_path_factory):
    """`course init`, then a FAST build and check, as an author's first minutes."""
    root = tmp_path_factory.mktemp("init") / "signals-101"
    made = run_course("init", str(root), "--title", "Signals 101", cwd=root.parent)
    assert "created a course" in made.stdout
    built = run_course("build", "--fast", cwd=root)
    checked = run_course("check", "--fast", cwd=root)
    return root, built, checked


def test_init_writes_a_complete_course(new_course):
    root, _, _ = new_course
    for name in ("_config.yml", "README.md", "Makefile", ".ci/run", ".gitignore", "requirements.txt",
                 "constraints.txt", "pyproject.toml", "book/intro.md", "book/guide-students.md",
                 "book/guide-instructors.md", "book/guide-authors.md", "course_helpers/__init__.py",
                 "source_exercises/01_example.py", "tests/test_results.py"):
        assert (root / name).is_file(), name
    assert os.access(root / ".ci/run", os.X_OK)
    assert 'title: "Signals 101"' in (root / "_config.yml").read_text()
    assert f"COURSEPRESS ?= {REPO / 'tooling'}" in (root / "Makefile").read_text()
    assert "{{" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file() and ".venv" not in p.parts
                               and "_build" not in p.parts and p.suffix in (".md", ".yml", ".py", ".txt", ""))
    # A second init into a folder that is not empty is refused, and changes nothing.
    again = run_course("init", str(root), cwd=root.parent, check=False)
    assert again.returncode == 2 and "not empty" in again.stdout
    assert (root / "source_exercises/01_example.py").is_file()


def test_new_course_builds_checks_and_records_results(new_course):
    root, built, checked = new_course
    assert "01_example: executed in" in built.stdout and "site built" in built.stdout
    assert "course check passed for 1 section(s)" in checked.stdout
    assert (root / "dist/results/section1.json").is_file()
    toc = (root / "book/_toc.yml").read_text()
    assert "generated/01_example" in toc and "guide-authors" in toc
    html = (root / "book/_build/html/generated/01_example.html").read_text()
    assert "course-figure" in html and "Plotly.newPlot" in html  # offline figure with its caption


def test_new_course_grades_a_submission(new_course, tmp_path):
    if not shutil.which("bwrap"):
        pytest.fail("bubblewrap is required for grading (apt-get install bubblewrap)")
    root, _, _ = new_course
    nb = nbformat.read(root / "dist/exercises/01_example.ipynb", 4)
    answers = {"solution-mse": "def mse(xs, ys):\n    return sum((x - y) ** 2 for x, y in zip(xs, ys)) / len(xs) if xs else 0.0\n",
               "solution-mae": "def mae(xs, ys):\n    return 1.5\n"}  # right on the public test only
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "ada" / "01_example.ipynb")
    run_course("grade", "1", str(tmp_path / "subs"), "--out", str(tmp_path / "grades"), cwd=root)
    rows = list(csv.DictReader(open(tmp_path / "grades" / "grades.csv")))
    assert [(r["student"], r["score"], r["max_score"], r["test_mse"], r["test_mae"]) for r in rows] == [
        ("ada", "2", "3", "2", "0")]  # mae's hidden test (empty lists) catches the shortcut


def test_new_course_publishes_and_serves_in_chromium(new_course, tmp_path):
    root, _, _ = new_course
    run_course("publish", "--to", str(tmp_path / "public"), "--fast", cwd=root)
    public = tmp_path / "public"
    assert (public / "index.html").is_file() and (public / "notebooks/exercises/01_example.ipynb").is_file()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*COURSE, "serve", "--port", str(port)], cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        from playwright.sync_api import sync_playwright

        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            outside = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:")) else None)
            page.goto(f"{base}/intro.html", wait_until="networkidle")
            assert "Signals 101" in page.title()
            page.click("text=Example")  # the section map links to the section's page
            page.wait_for_selector(".course-figure .main-svg", timeout=20000)  # plotly drew it
            assert page.locator(".course-figure figcaption").first.inner_text().startswith("Figure: Noisy copy of x")
            page.screenshot(path=str(tmp_path / "new-course-section.png"), full_page=False)
            browser.close()
        assert outside == []
    finally:
        server.terminate()
        server.wait(10)


def test_a_course_with_less_builds(tmp_path):
    """One helper-free section, no guide pages, no intro, no `course:` settings, no requirements."""
    root = tmp_path / "bare"
    (root / "source_exercises").mkdir(parents=True)
    (root / "_config.yml").write_text('title: "Bare"\n')
    (root / "source_exercises" / "01_sums.py").write_text('''# ---
# title: "Sums"
# ---

# %% [markdown]
# # Sums
# Adding numbers, $a + b$.

# %% tags=["parameters"]
FAST = False
SEED = 0

# %% [markdown] exercise="Add" difficulty=1 importance=1 minutes="2"
# Write `add(a, b)`.

# %%
def add(a, b):
    ### BEGIN SOLUTION
    return a + b
    ### END SOLUTION

# %% test="test_add" points=1
assert add(2, 3) == 5
''')
    built = run_course("build", "--fast", cwd=root)
    assert "site built" in built.stdout, built.stdout
    toc = (root / "book/_toc.yml").read_text()
    assert "root: generated/intro" in toc and "Using the course" not in toc
    index = (root / "book/_build/html/generated/intro.html").read_text()
    assert "Bare" in index and "01_sums.html" in index
    assert "course check passed" in run_course("check", "--fast", cwd=root).stdout


@pytest.mark.skipif(os.environ.get("COURSE_SKIP_FRESH_VENV") == "1", reason="COURSE_SKIP_FRESH_VENV=1")
def test_make_test_in_a_new_course_with_a_fresh_venv_without_torch(tmp_path):
    """The new course's own two commands, in its own venv holding only the tooling (from this checkout)."""
    root = tmp_path / "fresh"
    run_course("init", str(root), cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(["make", "test"], cwd=root, capture_output=True, text=True, timeout=1500, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "course check passed" in result.stdout and "1 passed" in result.stdout
    no_torch = subprocess.run([str(root / ".venv/bin/python"), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    tooling = subprocess.run([str(root / ".venv/bin/python"), "-c", "import build_tools; print(build_tools.__file__)"],
                             capture_output=True, text=True, check=True, cwd=root).stdout
    assert ".venv" in tooling  # installed into the course's venv, not borrowed from this checkout's
