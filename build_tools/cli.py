"""The `course` command. It wires the pipeline together and has no logic of its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from build_tools.source import SourceError

app = typer.Typer(help="Build, check, serve, publish and grade the course.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
console = Console()
ONLY_HELP = "Sections to include: numbers (1, 01) or file stems. Repeat the option or list several."


def _only(values: Optional[List[str]]) -> Optional[List[str]]:
    if not values:
        return None
    return [v for value in values for v in re.split(r"[,\s]+", value) if v]


def _fail_on_source_errors(err: SourceError) -> None:
    for problem in err.problems:
        print(problem)  # plain print: a path:line must never be wrapped
    console.print(f"[red]{len(err.problems)} problem(s) in the course sources; nothing was written.[/]")
    raise typer.Exit(2)


@app.command()
def build(
    fast: bool = typer.Option(False, "--fast", help="Quick preview: pass FAST=True to every notebook."),
    only: Optional[List[str]] = typer.Option(None, "--only", help=ONLY_HELP),
    extra: Optional[List[str]] = typer.Argument(None, hidden=True),
    no_site: bool = typer.Option(False, "--no-site", help="Only the notebooks, not the site."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1,
                             help="Notebooks executed side by side (default: one per core, each kernel given its share of the cores)."),
    scheduler: str = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                  help="Execute the notebooks on this Dask scheduler (tcp://HOST:8786), one task per notebook."),
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """Split every section into notebooks, execute the solutions (cached) and build the site."""
    from build_tools.build import Paths, build as run_build, find_root
    from build_tools.execute import ExecutionFailed

    paths = Paths(root or find_root())
    try:
        report = run_build(paths, fast=fast, only=_only((only or []) + (extra or [])), site=not no_site, console=console, jobs=jobs,
                           scheduler=scheduler)
    except SourceError as err:
        _fail_on_source_errors(err)
    except ExecutionFailed as err:
        print(str(err), flush=True)
        console.print("[red]build failed: a notebook cell raised an error (above)[/]")
        raise typer.Exit(1)
    executed = report.executed
    if executed:
        console.print(f"[green]built[/] in {report.seconds:.1f} s; executed {len(executed)} notebook(s): {', '.join(executed)}")
    else:
        console.print(f"[green]built[/] in {report.seconds:.1f} s; executed no notebook (all cached)")


@app.command()
def check(
    fast: bool = typer.Option(False, "--fast", help="Run the notebooks with FAST=True."),
    only: Optional[List[str]] = typer.Option(None, "--only", help=ONLY_HELP),
    extra: Optional[List[str]] = typer.Argument(None, hidden=True),
    links: bool = typer.Option(False, "--links", help="Instead: check every internal link and anchor of the built site; list external links."),
    online: bool = typer.Option(False, "--online", help="With --links: also fetch every external link."),
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """Prove the tests: solutions pass every public and hidden test; stubs fail every graded test cleanly."""
    from build_tools.build import Paths, find_root, load_all, section_files, select
    from build_tools.check import check_section

    paths = Paths(root or find_root())
    if links:
        return _check_links(paths.book / "_build" / "html", online)
    try:
        wanted = {p.stem for p in select(section_files(paths), _only((only or []) + (extra or [])))}
        sections = [s for s in load_all(section_files(paths)) if s.stem in wanted]
    except SourceError as err:
        _fail_on_source_errors(err)
    all_ok = True
    for section in sections:
        with console.status(f"checking {section.stem}…"):
            result = check_section(section, fast=fast)
        table = Table(title=f"{section.stem}: {result.exercises} exercises, {len(result.tests)} graded tests")
        for column in ("graded test", "points", "solution", "stub"):
            table.add_column(column)
        for t in result.tests:
            table.add_row(t.name, f"{t.points:g}",
                          "[green]passes[/]" if t.solution_ok else f"[red]FAILS[/] {t.solution_message}",
                          f"[green]fails:[/] {t.stub_message}" if t.stub_fails else f"[red]{t.stub_message}[/]")
        console.print(table)
        for name, points in result.manual:
            console.print(f"  {name} ({points:g} points): needs manual grading (never autograded)", highlight=False)
        for problem in result.problems:
            console.print(f"  [red]problem:[/] {problem}", highlight=False)
        all_ok &= result.ok
    if not all_ok:
        console.print("[red]course check failed[/]")
        raise typer.Exit(1)
    console.print(f"[green]course check passed[/] for {len(sections)} section(s)")


def _check_links(html: Path, online: bool) -> None:
    from build_tools.links import check_external, check_site

    try:
        report = check_site(html)
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1)
    for problem in report.broken:
        print(problem)  # plain print: a path:line must never be wrapped
    print(f"{len(report.external)} external link(s){'' if online else ' (not fetched: --online fetches them)'}:")
    for url, pages in sorted(report.external.items()):
        print(f"  {url}  ({len(pages)} use(s), first on {pages[0]})")
    failed = check_external(sorted(report.external)) if online else []
    for failure in failed:
        print(f"external link broken: {failure}")
    if report.broken or failed:
        console.print(f"[red]{len(report.broken)} broken internal link(s), {len(failed)} broken external link(s)[/]")
        raise typer.Exit(1)
    console.print(f"[green]links OK[/]: {report.internal} internal links on {report.pages} pages resolve")


@app.command()
def serve(
    port: int = typer.Option(8000, help="Port on 127.0.0.1 (0: any free port)."),
    watch: bool = typer.Option(False, "--watch", help="Rebuild when a source, helper or book page is saved "
                               "(cached, as `course build`) and reload the open pages."),
    fast: bool = typer.Option(False, "--fast", help="With --watch: rebuild in FAST mode (as `course build --fast`)."),
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """Serve the built site on http://127.0.0.1:PORT (run `course build` first, or use --watch)."""
    from build_tools.build import Paths, find_root
    from build_tools.config import load_config
    from build_tools.watch import serve as run_server

    paths = Paths(root or find_root())
    try:
        run_server(paths, port, console, watch=watch, fast=fast, helpers=load_config(paths.root).helpers)
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1)


@app.command()
def publish(
    to: Path = typer.Option(None, "--to", help="Write the deployable tree into this folder (any static host)."),
    to_branch: str = typer.Option(None, "--to-branch", help="Commit the tree to this git branch (e.g. gh-pages)."),
    remote: str = typer.Option("origin", "--remote", help="Git remote to push the branch to."),
    version: str = typer.Option(None, "--version", help="Also keep a frozen copy under vX.Y/."),
    fast: bool = typer.Option(False, "--fast", help="Publish a FAST build (previews and tests)."),
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """Build if stale, then publish the site, notebooks and assets at stable URLs."""
    from build_tools.build import Paths, build as run_build, find_root
    from build_tools.execute import ExecutionFailed
    from build_tools.publish import VERSION, publish_to_branch, publish_to_dir

    if (to is None) == (to_branch is None):
        console.print("[red]give exactly one of --to DIR or --to-branch BRANCH[/]")
        raise typer.Exit(2)
    if version and not VERSION.match(version):
        console.print(f"[red]--version must look like 1.2 (got {version!r})[/]")
        raise typer.Exit(2)
    paths = Paths(root or find_root())
    try:
        report = run_build(paths, fast=fast, console=console)  # cached: a no-op when nothing changed
    except SourceError as err:
        _fail_on_source_errors(err)
    except ExecutionFailed as err:
        print(str(err), flush=True)
        raise typer.Exit(1)
    html = paths.book / "_build" / "html"
    if to is not None:
        dest = publish_to_dir(paths.root, html, Path(to).resolve(), version)
        console.print(f"[green]published[/] to {dest}")
    else:
        commit = publish_to_branch(paths.root, html, to_branch, remote, version)
        console.print(f"[green]published[/] {commit[:10]} to {remote}/{to_branch}")


@app.command()
def init(
    directory: Path = typer.Argument(..., help="New folder for the course (must not exist, or be empty)."),
    title: str = typer.Option(None, "--title", help="The course's title (default: from the folder name)."),
    author: str = typer.Option("The course authors", "--author"),
):
    """Start a new course: config, book pages, one example section, README, Makefile, CI script."""
    from build_tools.init import init_course

    try:
        files = init_course(directory, title, author)
    except ValueError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2)
    console.print(f"created a course in {directory} ({len(files)} files). Next:\n"
                  f"  cd {directory} && make book      # or: course build --fast\n"
                  f"  course serve --watch             # http://127.0.0.1:8000", highlight=False)


@app.command()
def new(
    name: str = typer.Argument(..., help="Short name, e.g. 'fourier_series'."),
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """Scaffold a new section source file from the template (next free number)."""
    from build_tools.build import Paths, find_root, section_files
    from build_tools.scaffold import scaffold

    paths = Paths(root or find_root())
    try:
        path = scaffold(paths.sources, name, section_files(paths))
    except ValueError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2)
    console.print(f"created {path}; try `course check --fast --only {path.stem[:2]}`")


@app.command("import")
def import_notebooks(
    notebooks: List[Path] = typer.Argument(..., help="nbgrader source notebooks, plain or jupytext notebooks."),
    out: Path = typer.Option(None, "--out", help="Section file to write (one notebook only; default: "
                             "source_exercises/NN_<notebook name>.py with the next free number)."),
    force: bool = typer.Option(False, "--force", help="Replace a section file that exists."),
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """Turn notebooks into section source files; report every cell that could not be mapped one to one."""
    from build_tools.build import Paths, find_root
    from build_tools.importer import ImportError_, import_notebook, next_path

    if out is not None and len(notebooks) > 1:
        console.print("[red]--out names one section file: import one notebook at a time with it[/]")
        raise typer.Exit(2)
    sources = Paths(root or find_root()).sources if out is None else None
    reports, written = [], []
    try:
        for notebook in notebooks:
            target = out or next_path(sources, notebook.stem, written)
            reports.append(import_notebook(notebook, target, force=force))
            written.append(target)
    except ImportError_ as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2)
    for report in reports:
        print(f"wrote {report.written} from {report.source}"
                      + (f" and {len(report.images)} image(s)" if report.images else ""))
        for issue in report.unmapped:
            print(f"  not mapped: {issue}")  # plain print: a path must never be wrapped
        for issue in report.notes:
            print(f"  note: {issue}")
        for problem in report.problems:
            print(f"  problem: {problem}")
    if any(r.problems for r in reports):
        raise typer.Exit(1)


from grader.cli import grade as _grade  # noqa: E402  (the grader's commands live beside it)
from grader.cli import regrade as _regrade  # noqa: E402
from grader.cli import report as _report  # noqa: E402

app.command("grade")(_grade)
app.command("regrade")(_regrade)
app.command("report")(_report)

@app.command()
def data(
    root: Path = typer.Option(None, "--root", help="Course folder (default: found from the current folder)."),
):
    """List the data folders the course declares (course.data in _config.yml) and verify each
    against its manifest.json checksums."""
    from build_tools.build import find_root
    from build_tools.config import ConfigError, load_config

    try:
        course = load_config(root or find_root())
    except ConfigError as err:
        print(err)
        raise typer.Exit(2)
    if not course.data:
        console.print("no data folders declared (course.data in _config.yml)")
        return
    problems = []
    for folder in course.data.values():
        found = folder.verify()
        problems += found
        state = "[red]problems[/]" if found else "[green]OK[/]"
        console.print(f"{folder.name}: {folder.relative} (${folder.env}) {state}", highlight=False)
    for problem in problems:
        print(problem)
    if problems:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
