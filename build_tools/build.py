"""`course build`: validate → split → execute → site, for all sections or a selection."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from build_tools import pipeline
from build_tools.atomic import write_notebook
from build_tools.execute import execute
from build_tools.site import build_site, load_course_config, page_links
from build_tools.source import Section, SourceError
from build_tools.validate import validate
from build_tools.source import load_section


@dataclass
class Paths:
    root: Path
    dist: Path = None
    book: Path = None

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        self.dist = Path(self.dist or self.root / "dist").resolve()
        self.book = self.root / "book"

    @property
    def sources(self) -> Path:
        return self.root / "source_exercises"

    @property
    def lock_text(self) -> str:
        lock = self.root / "requirements.lock"
        return lock.read_text() if lock.exists() else ""


def find_root(start: Path | None = None) -> Path:
    start = Path(start or Path.cwd()).resolve()
    for folder in [start, *start.parents]:
        if (folder / "source_exercises").is_dir() and (folder / "_config.yml").exists():
            return folder
    raise SystemExit(f"not inside a course project (no source_exercises/ and _config.yml above {start})")


def section_files(paths: Paths) -> list[Path]:
    return sorted(p for p in paths.sources.glob("*.py") if p.name[:2].isdigit())


def select(files: list[Path], only: list[str] | None) -> list[Path]:
    """SECTION = number (1, 01) or file stem (01_toy_models...)."""
    if not only:
        return files
    chosen = []
    for wanted in only:
        matches = [f for f in files if f.stem == wanted or (wanted.isdigit() and int(f.stem[:2]) == int(wanted))]
        if not matches:
            raise SystemExit(f"no section {wanted!r}; sections: {', '.join(f.stem for f in files)}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def load_all(files: list[Path]) -> list[Section]:
    """Parse and validate every file; raise one SourceError listing all problems of all files."""
    sections, problems = [], []
    for path in files:
        try:
            section = load_section(path)
        except SourceError as err:
            problems.extend(err.problems)
            continue
        found = validate(section)
        problems.extend(found)
        sections.append(section)
    if problems:
        raise SourceError(problems)
    return sections


def split_section(section: Section, paths: Paths) -> dict:
    """Write the exercise and grader-source notebooks (no execution). Returns their paths."""
    exercise = paths.dist / "exercises" / f"{section.stem}.ipynb"
    grader_source = paths.dist / "nbgrader" / "source" / section.stem / f"{section.stem}.ipynb"
    write_notebook(exercise, pipeline.exercise_notebook(section))
    write_notebook(grader_source, pipeline.grader_source_notebook(section))
    return {"stem": section.stem, "exercise": exercise, "grader_source": grader_source}


@dataclass
class SectionReport:
    stem: str
    cached: bool
    seconds: float
    results: Path | None = None


@dataclass
class BuildReport:
    sections: list[SectionReport] = field(default_factory=list)
    site_built: bool = False
    site_message: str = ""
    seconds: float = 0.0

    @property
    def executed(self) -> list[str]:
        return [s.stem for s in self.sections if not s.cached]


def build(paths: Paths, fast: bool, only: list[str] | None = None, seed: int | None = None,
          site: bool = True, console: Console | None = None, force_site: bool = False) -> BuildReport:
    console = console or Console()
    start = time.perf_counter()
    all_sections = load_all(section_files(paths))  # validate everything first: nothing half-written
    wanted = {p.stem for p in select(section_files(paths), only)}
    config = load_course_config(paths.root)
    stems_by_number = {s.number: s.stem for s in all_sections}
    titles = {s.number: f"{s.number}. {s.meta.get('short_title', s.title)}" for s in all_sections}
    report = BuildReport()
    for section in all_sections:
        if section.stem not in wanted:
            continue
        split_section(section, paths)
        run_nb = pipeline.run_notebook(section)
        params = {"FAST": fast}
        if seed is not None:
            params["SEED"] = seed
        with console.status(f"[bold]executing {section.stem}[/] ({'FAST' if fast else 'full'} mode)…"):
            executed = execute(
                run_nb, stem=section.stem, section_number=section.number, parameters=params,
                lock_text=paths.lock_text, cache_dir=paths.dist / ".cache" / "execute",
                results_dir=paths.dist / "results", work_dir=paths.dist / ".work",
            )
        note = "cached, not executed" if executed.cached else f"executed in {executed.seconds:.1f} s"
        console.print(f"  {section.stem}: {note}")
        write_notebook(paths.dist / "solutions" / f"{section.stem}.ipynb",
                       pipeline.solution_notebook(executed.nb, section))
        links = page_links(section.stem, config, stems_by_number)
        write_notebook(paths.book / "generated" / f"{section.stem}.ipynb",
                       pipeline.page_notebook(executed.nb, section, links, titles))
        results = paths.dist / "results" / f"section{section.number}.json"
        report.sections.append(SectionReport(section.stem, executed.cached, executed.seconds,
                                             results if results.exists() else None))
    if site:
        # The site shows every section that has a page, not only the ones rebuilt now.
        built = [s for s in all_sections if (paths.book / "generated" / f"{s.stem}.ipynb").exists()]
        with console.status("[bold]building the site with jupyter-book[/]…"):
            report.site_built, report.site_message = build_site(paths.root, built, paths.dist, force=force_site)
        console.print(f"  {report.site_message}")
    report.seconds = time.perf_counter() - start
    return report
