import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# A sandbox or browser test skipped for a missing system package fails the run (see system_deps).
from system_deps import pytest_runtest_makereport, pytest_terminal_summary  # noqa: F401  (pytest hooks)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
COURSE = [sys.executable, "-m", "build_tools.cli"]
# Debian's chromium, as the guide asks; a `chromium` elsewhere on PATH only when it is missing.
CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else (shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]


def require_chromium():
    """Skip (which system_deps turns into a failure unless opted out) when Chromium is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian chromium is not installed ({CHROMIUM} missing): apt-get install chromium")


def make_project(dest: Path, sections=("01_fixture.py",)) -> Path:
    """A small course project: the real config, site pages and helpers, plus fixture sections."""
    (dest / "source_exercises").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", dest)
    shutil.copy(REPO / "requirements.lock", dest)
    (dest / "book" / "_static").mkdir(parents=True)
    for md in (REPO / "book").glob("*.md"):
        shutil.copy(md, dest / "book")
    shutil.copy(REPO / "book" / "_static" / "course.css", dest / "book" / "_static")
    shutil.copytree(REPO / "course_helpers", dest / "course_helpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in sections:
        shutil.copy(FIXTURES / "source_exercises" / name, dest / "source_exercises" / name)
    return dest


def run_course(*args, cwd: Path, check=True, timeout=900) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([*COURSE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"course {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def built_fixture(tmp_path_factory):
    """The fixture project built once with `course build --fast` (shared by e2e and browser tests)."""
    root = make_project(tmp_path_factory.mktemp("course") / "proj")
    first = run_course("build", "--fast", cwd=root)
    return root, first
