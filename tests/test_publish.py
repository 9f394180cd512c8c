"""`course publish` to a local bare repository: every badge and download link resolves in the pushed tree."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, run_course

pytestmark = pytest.mark.slow


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def pushed_files(bare: Path, branch: str) -> set[str]:
    return set(git("ls-tree", "-r", "--name-only", branch, cwd=bare).split())


def test_publish_to_bare_repo_links_resolve_and_versions_persist(built_fixture, tmp_path):
    root, _ = built_fixture
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    if not (root / ".git").exists():
        git("init", "-q", cwd=root)
    git("remote", "add", "pages", str(bare), cwd=root)
    run_course("publish", "--fast", "--to-branch", "gh-pages", "--remote", "pages", "--version", "1.0", cwd=root)
    files = pushed_files(bare, "gh-pages")
    assert "index.html" in files and ".nojekyll" in files and "v1.0/index.html" in files
    page = git("show", "gh-pages:generated/01_fixture.html", cwd=bare)
    colab = re.findall(r'href="https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/gh-pages/([^"]+)"', page)
    downloads = re.findall(r'class="course-badge download" href="([^"]+)"', page)
    assert len(colab) == 2 and len(downloads) == 2
    for path in colab:
        assert path in files, f"Colab badge points at {path}, not in the published branch"
    for href in downloads:
        resolved = str(Path("generated", href)).replace("generated/../", "")
        assert resolved in files, f"download link {href} does not resolve"
    # The frozen copy links to its own notebooks.
    frozen = git("show", "gh-pages:v1.0/generated/01_fixture.html", cwd=bare)
    for path in re.findall(r'/blob/gh-pages/([^"]+\.ipynb)"', frozen):
        assert path.startswith("v1.0/") and path in files
    # A second publish with another version keeps the first.
    run_course("publish", "--fast", "--to-branch", "gh-pages", "--remote", "pages", "--version", "1.1", cwd=root)
    files = pushed_files(bare, "gh-pages")
    assert "v1.0/index.html" in files and "v1.1/index.html" in files


def test_publish_to_folder(built_fixture, tmp_path):
    root, _ = built_fixture
    out = tmp_path / "site"
    run_course("publish", "--fast", "--to", str(out), cwd=root)
    assert (out / "index.html").exists() and (out / "notebooks/exercises/01_fixture.ipynb").exists()
    assert (out / "_static/plotly.min.js").exists() and (out / "_static/mathjax/tex-chtml.js").exists()


def test_workflow_calls_the_same_commands_as_ci():
    workflow = (REPO / ".github/workflows/publish.yml").read_text()
    assert "bash .ci/run" in workflow and "make book" in workflow and "course publish --to-branch gh-pages" in workflow
    assert "make test" in (REPO / ".ci/run").read_text()
