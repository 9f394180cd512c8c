"""What the grader knows about one section, read from the two notebooks the build wrote.

* the *release* notebook (`dist/exercises/NN_name.ipynb`) is what students got: its cell order is
  the skeleton every submission is graded in, and its stubs stand in for missing answers;
* the nbgrader *source* notebook (`dist/nbgrader/source/NN_name/NN_name.ipynb`) is the only place
  that holds hidden tests: graded test cells are always taken from it.

Nothing here executes code.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from build_tools import markers

from .protocol import DataBind

# Only lines and literals at least this long are treated as secrets when scrubbing outputs:
# shorter fragments (`)`, `x = 1`) carry no information and would mangle honest messages.
MIN_SECRET_CHARS = 8


class SectionError(Exception):
    """The section's notebooks are missing or not what the build produces."""


@dataclass
class TestSpec:
    grade_id: str
    points: float
    code: str  # full source of the test cell, hidden block included
    hidden_ranges: list[tuple[int, int]]  # 1-based inclusive line ranges inside `code`

    @property
    def has_hidden(self) -> bool:
        return bool(self.hidden_ranges)


@dataclass
class SkeletonCell:
    """One code cell of the release notebook, in order."""

    kind: str  # "instructor" | "param" | "solution" | "test"
    ref: str  # cell id, or the nbgrader grade_id for solution/test cells
    source: str  # instructor code, the release stub for a solution, the full test for a test
    skip: bool = False  # marked not needed for grading (or the Colab setup cell)


@dataclass
class SectionSpec:
    stem: str
    number: int | None
    title: str
    release: NotebookNode
    source: NotebookNode
    skeleton: list[SkeletonCell]
    tests: dict[str, TestSpec]
    solution_ids: list[str]
    secrets: list[str] = field(default_factory=list)  # hidden lines / literals to scrub from outputs
    public_text: str = ""
    data_names: list[str] = field(default_factory=list)  # course data folders it reads (`data: [lm]`)
    data: list[DataBind] = field(default_factory=list)  # those folders, resolved (`resolve_data`)

    @property
    def hand_graded_ids(self) -> list[str]:
        """Manually graded answers (code or markdown) and tasks: scored in formgrader, never here."""
        return [_grade_id(c) for c in self.release.cells
                if _nbg(c).get("task") or (_nbg(c).get("grade") and _nbg(c).get("solution"))]

    @property
    def max_score(self) -> float:
        return float(sum(t.points for t in self.tests.values()))

    @property
    def test_ids(self) -> list[str]:
        return list(self.tests)

    @property
    def digest(self) -> str:
        """Changes whenever anything that affects a grade changes."""
        payload = json.dumps(
            [[c.kind, c.ref, c.source, c.skip] for c in self.skeleton]
            + [[t.grade_id, t.points, t.code] for t in self.tests.values()],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def master_notebook(self) -> NotebookNode:
        """The notebook nbgrader's gradebook records: the release with test cells from the source.

        This is what `nbgrader generate_assignment` hands to `SaveCells` (hidden tests included,
        checksums computed by nbgrader's own `ComputeChecksums`).
        """
        from nbgrader.preprocessors import ComputeChecksums

        nb = copy.deepcopy(self.release)
        for cell in nb.cells:
            gid = _grade_id(cell)
            if gid and gid in self.tests:
                cell.source = self.tests[gid].code
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nb, _ = ComputeChecksums().preprocess(nb, {})
        return nb


def _grade_id(cell) -> str | None:
    return (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


def is_test_cell(cell) -> bool:
    m = _nbg(cell)
    return bool(m.get("grade")) and not m.get("solution") and cell.get("cell_type") == "code"


def is_solution_cell(cell) -> bool:
    m = _nbg(cell)
    return bool(m.get("solution")) and cell.get("cell_type") == "code"


def normalize_ws(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _string_literals(code: str) -> list[str]:
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.STRING:
                body = re.sub(r"^[a-zA-Z]*('''|\"\"\"|'|\")", "", tok.string)
                body = re.sub(r"('''|\"\"\"|'|\")$", "", body)
                # f-string placeholders are not secret text: keep the literal pieces around them
                out.extend(p for p in re.split(r"\{[^{}]*\}", body) if p)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def hidden_secrets(tests: dict[str, TestSpec], public_text: str) -> list[str]:
    """The hidden tests' lines and string literals that feedback must never show: the hidden blocks
    as the splitter sees them (`build_tools.markers.scan`, the one marker parser), less what the
    release shows anyway and fragments too short to mean anything."""
    public_norm = normalize_ws(public_text)
    found: set[str] = set()
    for t in tests.values():
        for block in markers.scan(t.code)[0]:
            if block.kind != "hidden":
                continue
            for line in block.lines:
                text = line.strip()
                if len(text.replace(" ", "")) >= MIN_SECRET_CHARS and normalize_ws(text) not in public_norm:
                    found.add(text)
            for lit in _string_literals("\n".join(block.lines)):
                lit = lit.strip()
                if len(lit) >= MIN_SECRET_CHARS and normalize_ws(lit) not in public_norm:
                    found.add(lit)
    # longest first, so that a line is redacted as a whole before a literal inside it
    return sorted(found, key=lambda s: (-len(s), s))


def find_section_files(section: str, course_dir: Path) -> tuple[str, Path, Path]:
    """Find (stem, release notebook, source notebook) for a selector like "1", "01" or "01_name"."""
    source_root = course_dir / "source"
    if not source_root.is_dir():
        raise SectionError(f"no nbgrader source folder at {source_root} (build the section first)")
    stems = sorted(p.name for p in source_root.iterdir() if (p / f"{p.name}.ipynb").is_file())
    sel = str(section).strip()
    matches = [s for s in stems if s == sel]
    if not matches and sel.isdigit():
        matches = [s for s in stems if s.split("_", 1)[0].isdigit() and int(s.split("_", 1)[0]) == int(sel)]
    if not matches:
        matches = [s for s in stems if s.startswith(sel)]
    if len(matches) != 1:
        raise SectionError(f"section {section!r} matches {matches or 'nothing'} in {source_root} (have: {stems})")
    stem = matches[0]
    source = source_root / stem / f"{stem}.ipynb"
    candidates = [course_dir.parent / "exercises" / f"{stem}.ipynb", course_dir / "release" / stem / f"{stem}.ipynb"]
    release = next((c for c in candidates if c.is_file()), None)
    if release is None:
        raise SectionError(f"no release notebook for {stem} (looked at {', '.join(map(str, candidates))})")
    return stem, release, source


def read_section_spec(release_path: Path, source_path: Path) -> SectionSpec:
    release = nbformat.read(str(release_path), as_version=4)
    source = nbformat.read(str(source_path), as_version=4)
    course = release.metadata.get("course", {})
    stem = course.get("stem") or release_path.stem

    src_tests = {_grade_id(c): c for c in source.cells if is_test_cell(c)}
    src_by_id = {c.get("id"): c for c in source.cells if c.get("id")}
    tests: dict[str, TestSpec] = {}
    skeleton: list[SkeletonCell] = []
    solution_ids: list[str] = []
    public_parts: list[str] = []
    for cell in release.cells:
        public_parts.append(cell.source)
        if cell.cell_type != "code":
            continue
        meta_course = dict(cell.metadata.get("course", {}))
        src_twin = src_by_id.get(cell.get("id"))
        if src_twin is not None:
            meta_course = {**src_twin.metadata.get("course", {}), **meta_course}
        skip = bool(meta_course.get("skip_grading") or meta_course.get("setup"))
        if is_test_cell(cell):
            gid = _grade_id(cell)
            if gid not in src_tests:
                raise SectionError(f"test cell {gid!r} of the release is missing from the grader source")
            code = src_tests[gid].source
            points = float(_nbg(src_tests[gid]).get("points", _nbg(cell).get("points", 0)))
            tests[gid] = TestSpec(gid, points, code, markers.hidden_ranges(code))
            skeleton.append(SkeletonCell("test", gid, code))
        elif is_solution_cell(cell):
            gid = _grade_id(cell)
            solution_ids.append(gid)
            skeleton.append(SkeletonCell("solution", gid, cell.source))
        elif "parameters" in cell.metadata.get("tags", []):
            skeleton.append(SkeletonCell("param", cell.get("id") or f"cell-{len(skeleton)}", cell.source))
        else:
            skeleton.append(SkeletonCell("instructor", cell.get("id") or f"cell-{len(skeleton)}", cell.source, skip))
    graded_by_hand = [c for c in release.cells if _nbg(c).get("task") or (_nbg(c).get("grade") and _nbg(c).get("solution"))]
    if not tests and not graded_by_hand:
        raise SectionError(f"{release_path} has no graded cells (nbgrader metadata missing?)")
    # A test cell that lives only in the source would be lost: refuse rather than under-grade.
    missing = set(src_tests) - set(tests)
    if missing:
        raise SectionError(f"graded cells {sorted(missing)} exist in the grader source but not in the release")
    public_text = "\n".join(public_parts)
    spec = SectionSpec(
        stem=stem,
        number=course.get("section"),
        title=course.get("title", stem),
        release=release,
        source=source,
        skeleton=skeleton,
        tests=tests,
        solution_ids=solution_ids,
        public_text=public_text,
        data_names=[str(n) for n in course.get("data", [])],
    )
    spec.secrets = hidden_secrets(tests, public_text)
    return spec


def resolve_data(spec: SectionSpec, course_dir: Path) -> list[DataBind]:
    """Read-only binds for the data folders the section declares (`data: [lm]`), as the course's
    `_config.yml` (`course: data:`) in the course root above `course_dir` defines them."""
    if not spec.data_names:
        return []
    from build_tools.build import find_root
    from build_tools.config import ConfigError, load_config

    from .bwrap import data_binds

    try:
        config = load_config(find_root(Path(course_dir)))
    except (SystemExit, ConfigError) as exc:
        raise SectionError(f"{spec.stem} reads the data folders {spec.data_names}, but the course "
                           f"configuration is not usable: {exc}") from None
    missing = [n for n in spec.data_names if n not in config.data or not config.data[n].path.is_dir()]
    if missing:
        raise SectionError(f"{spec.stem} reads the data folders {missing}, which "
                           f"{config.root / '_config.yml'} does not declare (course: data:) or which do not exist")
    return data_binds(config.data_for(spec.data_names))
