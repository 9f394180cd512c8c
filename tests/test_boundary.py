"""The package boundary: the tooling (coursepress: build_tools/, grader/, coursepress/) knows no
course. It imports nothing of this course or its heavy dependencies, names none of its files or
variables, and its distribution depends on none of them; the course depends on the tooling."""

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLING_PACKAGES = ("build_tools", "grader", "coursepress")
COURSE_MODULES = {"course_helpers", "lm_recipe", "source_exercises"}
HEAVY = {"torch", "transformer_lens", "einops", "jaxtyping", "safetensors", "tokenizers"}
# Names that belong to this course: its data folder, its variable, its sections.
COURSE_NAMES = re.compile(r"COURSE_LM_ASSETS|assets/lm|superposition|Django|gelu-1l|0[1-7]_[a-z]+_[a-z_]+\.py")


def tooling_files():
    for package in TOOLING_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "templates" not in path.parts:
                yield path


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_tooling_imports_nothing_of_the_course_or_its_heavy_dependencies():
    files = list(tooling_files())
    assert len(files) > 30  # the scan really covers the tooling
    offenders = {str(p.relative_to(REPO)): sorted(imported_modules(p) & (COURSE_MODULES | HEAVY)) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_tooling_names_no_file_variable_or_topic_of_this_course():
    found = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
             for p in [*tooling_files(), *sorted((REPO / "build_tools" / "templates").rglob("*"))] if p.is_file()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if COURSE_NAMES.search(line)]
    assert found == []


def test_the_distributions_point_one_way():
    tooling = tomllib.loads((REPO / "tooling" / "pyproject.toml").read_text())["project"]
    course = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirement = lambda r: re.split(r"[<>=!~\[ ;@]", r)[0].lower().replace("_", "-")  # noqa: E731
    tooling_deps = {requirement(r) for r in tooling["dependencies"]}
    assert not tooling_deps & {h.replace("_", "-") for h in HEAVY}, tooling_deps
    assert "coursepress" in {requirement(r) for r in course["project"]["dependencies"]}
    packages = course["tool"]["setuptools"]["packages"]
    assert not set(packages) & set(TOOLING_PACKAGES), "the course must not ship the tooling's packages"
    assert set(tooling.get("scripts", {})) == {"course"}
