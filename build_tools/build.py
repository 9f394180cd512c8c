"""`course build`: validate → split → execute → site, for all sections or a selection."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from build_tools import pipeline
from build_tools.atomic import write_notebook, write_text
from build_tools.execute import cached_run, execute, run_key
from build_tools.config import load_config
from build_tools.progress import STOP, BuildProgress, drain, summary_table
from build_tools.site import build_site, page_links
from build_tools.source import Section, SourceError
from build_tools.split.images import local_images
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


def default_jobs(n_to_run: int) -> int:
    """Notebooks to execute side by side. The course's small-tensor training gains little from a
    second thread, so on 2 cores two one-thread kernels finish the course far sooner than one
    two-thread kernel at a time (bench/RESULTS.md)."""
    return max(1, min(n_to_run, os.cpu_count() or 1))


def _run_one(kwargs: dict):
    """Worker-process entry: execute one notebook (a module-level function, so it pickles)."""
    return kwargs["stem"], execute(**kwargs, on_cell=_EVENTS.put if _EVENTS is not None else None)


def _durations_file(paths: Paths) -> Path:
    return paths.dist / ".cache" / "execute" / "durations.json"


def build(paths: Paths, fast: bool, only: list[str] | None = None, seed: int | None = None,
          site: bool = True, console: Console | None = None, force_site: bool = False,
          jobs: int | None = None, scheduler: str | None = None) -> BuildReport:
    console = console or Console()
    start = time.perf_counter()
    all_sections = load_all(section_files(paths))  # validate everything first: nothing half-written
    wanted = {p.stem for p in select(section_files(paths), only)}
    course = load_config(paths.root)
    config = course.as_links_config()
    stems_by_number = {s.number: s.stem for s in all_sections}
    titles = {s.number: f"{s.number}. {s.meta.get('short_title', s.title)}" for s in all_sections}
    report = BuildReport()
    chosen = [s for s in all_sections if s.stem in wanted]
    params = {"FAST": fast} if seed is None else {"FAST": fast, "SEED": seed}

    # 1. Split, and look every run up in the cache (cheap; no kernel). A section whose run, text,
    #    links and tooling are all as at its last build keeps its written notebooks untouched.
    runs, executed, up_to_date, links, new_stamps = {}, {}, set(), {}, {}
    stamps_path = paths.dist / ".cache" / "outputs.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    tooling = _tooling_digest()  # once per build: the same for every section
    runtime = _runtime_digest()  # what every kernel loads at start-up (coursepress.plots): part of each run's key
    for section in chosen:
        split_section(section, paths)
        data = course.data_for(section.data)  # new data files: run it again
        lock_text = paths.lock_text + runtime + "".join(f"\n{d.name}:{d.digest()}" for d in data)
        runs[section.stem] = dict(
            nb=pipeline.run_notebook(section), stem=section.stem, section_number=section.number,
            parameters=params, lock_text=lock_text, cache_dir=paths.dist / ".cache" / "execute",
            results_dir=paths.dist / "results", work_dir=paths.dist / ".work",
            kernel_env=course.kernel_env(section.data),
        )
        run = runs[section.stem]
        links[section.stem] = page_links(section.stem, config, stems_by_number)
        key = run_key(run["nb"], params, run["lock_text"], run["work_dir"])
        new_stamps[section.stem] = _outputs_stamp(
            section, key, [links[section.stem], titles, stems_by_number, config], tooling)
        if stamps.get(section.stem) == new_stamps[section.stem] and _outputs_exist(paths, section, run["cache_dir"], key):
            up_to_date.add(section.stem)
            console.print(f"  {section.stem}: cached, not executed (notebooks up to date)")
            continue
        hit = execute(**run, only_cached=True)
        if hit is not None:
            executed[section.stem] = hit
            console.print(f"  {section.stem}: cached, not executed")

    # 2. Execute the misses, longest first (by their last recorded time), `jobs` at a time.
    todo = [stem for stem in runs if stem not in executed and stem not in up_to_date]
    durations_path = _durations_file(paths)
    durations = json.loads(durations_path.read_text()) if durations_path.exists() else {}
    todo.sort(key=lambda stem: -durations.get(_duration_key(stem, fast), 0.0))
    jobs = max(1, min(jobs or default_jobs(len(todo)), len(todo) or 1))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    if todo:
        mode = "FAST" if fast else "full"
        where = f"on the Dask cluster at {scheduler}" if scheduler else f"{jobs} at a time"
        estimates = {stem: durations.get(_duration_key(stem, fast)) for stem in todo}
        with BuildProgress(console, estimates) as progress:
            progress.note(f"executing {len(todo)} notebook(s) ({mode} mode, {where})")
            finished = _execute_todo([runs[stem] for stem in todo], jobs, threads, scheduler, progress)
            _collect(finished, executed, durations, fast, progress)
        write_text(durations_path, json.dumps(durations, indent=1, sort_keys=True))

    # 3. Solution notebooks and pages, in section order.
    for section in chosen:
        results = paths.dist / "results" / f"section{section.number}.json"
        if section.stem in up_to_date:
            report.sections.append(SectionReport(section.stem, True, 0.0, results if results.exists() else None))
            continue
        done = executed[section.stem]
        write_notebook(paths.dist / "solutions" / f"{section.stem}.ipynb",
                       pipeline.solution_notebook(done.nb, section))
        write_notebook(paths.book / "generated" / f"{section.stem}.ipynb",
                       pipeline.page_notebook(done.nb, section, links[section.stem], titles))
        stamps[section.stem] = new_stamps[section.stem]
        write_text(stamps_path, json.dumps(stamps, indent=1, sort_keys=True))  # after its notebooks
        report.sections.append(SectionReport(section.stem, done.cached, done.seconds,
                                             results if results.exists() else None))
    if site:
        # The site shows every section that has a page, not only the ones rebuilt now.
        built = [s for s in all_sections if (paths.book / "generated" / f"{s.stem}.ipynb").exists()]
        with console.status("[bold]building the site with jupyter-book[/]…"):
            report.site_built, report.site_message = build_site(paths.root, built, paths.dist, force=force_site)
        console.print(f"  {report.site_message}")
    report.seconds = time.perf_counter() - start
    rows = [(s.stem, s.cached, s.seconds) for s in report.sections]
    console.print(summary_table(rows, plain=not console.is_terminal))
    return report


def _tooling_digest() -> str:
    """The build tooling's own files: a change to how pages are made re-makes them."""
    digest = hashlib.sha256()
    for tool in sorted(Path(__file__).resolve().parent.rglob("*")):
        if tool.is_file() and tool.suffix in (".py", ".md", ".txt", ".html", ".css", ".js", ".yml"):
            digest.update(tool.read_bytes())
    return digest.hexdigest()


def _runtime_digest() -> str:
    """The coursepress modules a kernel may load without the notebook's code showing it (the
    offline renderer comes in through an IPython startup script): a new renderer re-draws figures."""
    import coursepress

    digest = hashlib.sha256()
    for module in sorted(Path(coursepress.__file__).resolve().parent.glob("*.py")):
        digest.update(module.read_bytes())
    return f"\ncoursepress:{digest.hexdigest()[:16]}"


def _outputs_stamp(section: Section, key: str, context, tooling: str) -> str:
    """Everything a section's solution notebook and page are made from: the run (its cache key),
    the source text (markdown too) and the images it shows, the page links and titles, and the
    build tooling."""
    digest = hashlib.sha256()
    digest.update(key.encode())
    digest.update(Path(section.path).read_bytes())
    for image in local_images(section.nb, section.path):
        digest.update(str(image).encode())
        digest.update(image.read_bytes())
    # page_links holds a function of the config and stems (both in `context`): named, not addressed
    plain = lambda o: getattr(o, "__qualname__", None) if callable(o) else str(o)  # noqa: E731
    digest.update(json.dumps(context, sort_keys=True, default=plain).encode())
    digest.update(tooling.encode())
    return digest.hexdigest()[:24]


def _outputs_exist(paths: Paths, section: Section, cache_dir: Path, key: str) -> bool:
    """The written notebooks, the cached run, and its results file where the run wrote one."""
    cached_nb, cached_results = cached_run(cache_dir, section.stem, key)
    results = paths.dist / "results" / f"section{section.number}.json"
    return all(p.exists() for p in (paths.dist / "solutions" / f"{section.stem}.ipynb",
                                    paths.book / "generated" / f"{section.stem}.ipynb", cached_nb)) and (
        results.exists() or not cached_results.exists())


def _duration_key(stem: str, fast: bool) -> str:
    """Key of a section's last execution time in durations.json (FAST and full runs differ ~5x)."""
    return f"{stem}:{'fast' if fast else 'full'}"


def _collect(finished, executed: dict, durations: dict, fast: bool, progress: BuildProgress) -> None:
    for stem, result in finished:
        executed[stem] = result
        durations[_duration_key(stem, fast)] = round(result.seconds, 1)
        progress.finished(stem, result.seconds)


def _execute_todo(todo: list[dict], jobs: int, threads: int | None, scheduler: str | None,
                  progress: BuildProgress):
    """Yield (stem, Executed) as each notebook finishes: on a Dask cluster, in this process, or in
    `jobs` worker processes that send their cell events back through a queue."""
    if scheduler:
        from build_tools.distributed import execute_on_cluster

        # One BLAS thread per kernel: a worker may run several notebooks at once (bench/RESULTS.md).
        yield from execute_on_cluster(scheduler, todo, threads=1, on_cell=progress.cell)
        return
    if jobs == 1:
        for run in todo:
            yield run["stem"], execute(**run, on_cell=progress.cell)
        return
    # spawn: a clean interpreter per worker (forking a process that holds threads is unsafe).
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    listener = drain(events, progress.cell)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init, initargs=(events,))
    try:
        futures = [pool.submit(_run_one, {**run, "threads": threads}) for run in todo]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a failure: let the others stop cleanly
        events.put(STOP)
        listener.join()


_EVENTS = None  # in a worker process: the queue its cell events go back on


def _worker_init(events) -> None:
    global _EVENTS
    _EVENTS = events
