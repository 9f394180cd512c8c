"""`course grade`: autograde a class's notebooks for one section, safely.

Registered by the lead's CLI as `app.command("grade")(grade)`; also runnable on its own:
`python -m grader.cli SECTION SUBMISSIONS --out DIR`.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=False)

EXIT_OK, EXIT_SOME_ERRORS, EXIT_USAGE = 0, 1, 2


def _plain(value):
    """Typer's Option/Argument defaults, when `grade` is called as a plain Python function."""
    from typer.models import ParameterInfo

    if isinstance(value, ParameterInfo):
        return None if value.default is ... else value.default
    return value


def _course_dir(section: str, course_dir: Optional[Path]) -> Path:
    """The nbgrader course folder; refresh the section's notebooks from source when we can."""
    if course_dir is not None:
        return Path(course_dir)
    root = None
    try:
        from build_tools.build import find_root

        root = find_root()
    except BaseException:  # noqa: BLE001 - not inside a course project: use ./dist as it is
        root = None
    dist = (root / "dist") if root else Path("dist")
    if root is not None:
        try:
            from build_tools.api import split_section

            split_section(section, dist, root=root)
        except BaseException as exc:  # noqa: BLE001 - fall back to what is already built
            console.print(f"[yellow]could not refresh section {section} from source ({exc}); "
                          f"using the notebooks already in {dist}[/]")
    return dist / "nbgrader"


def grade(
    section: str = typer.Argument(..., help="Section number or stem (1, 01, 01_toy_models)."),
    submissions: Path = typer.Argument(..., help="Folder of <student>.ipynb or <student>/<any>.ipynb, or a .zip of either."),
    out: Path = typer.Option(..., "--out", help="Output folder: grades.csv, feedback/<student>.html."),
    workers: int = typer.Option(1, "--workers", min=1, help="Submissions graded in parallel on this machine."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786) to grade on a cluster."),
    cell_timeout: int = typer.Option(60, "--cell-timeout", min=1, help="Seconds one cell may run."),
    timeout: int = typer.Option(600, "--timeout", min=5, help="Seconds one whole submission may run."),
    memory_mb: int = typer.Option(2048, "--memory-mb", min=128, help="Memory limit of a submission's kernel (MB)."),
    db: Optional[str] = typer.Option(None, "--db", help="Gradebook SQLAlchemy URL (default: SQLite in the course folder)."),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox", help="Run without bubblewrap (resource limits only). Never for untrusted code."),
    course_dir: Optional[Path] = typer.Option(None, "--course-dir", help="nbgrader course folder holding source/<section>/ (default: dist/nbgrader)."),
    cold_sandboxes: bool = typer.Option(False, "--cold-sandboxes", help="A new sandbox and kernel process per submission, "
                                        "instead of a warm sandbox per worker that forks each submission's kernel from "
                                        "pre-imported libraries (slower: every kernel imports torch again)."),
    roster: Optional[Path] = typer.Option(None, "--roster", help="Class roster CSV (id,name,email, or Canvas's gradebook "
                                          "export): every rostered student gets a row; unknown ids are flagged."),
    extensions: Optional[Path] = typer.Option(None, "--extensions", help="Per-student deadlines: CSV 'student,due' "
                                              "or 'student,days' (extra days on the section's due date)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Course config with the course.grading block "
                                          "(due dates, late penalty, gradebook; default: the project's _config.yml)."),
) -> int:
    """Autograde every submission of SECTION in a sandbox: grades.csv, HTML feedback, nbgrader gradebook.

    Each notebook runs in a bubblewrap sandbox (no network, read-only system, nothing of the
    course visible; a worker's warm sandbox is emptied between submissions) with FAST=True, test cells restored from the source, and hidden tests kept out
    of every output. Re-running skips submissions already graded. Exit code: 0 all graded, 1 some
    submissions could not be graded (see grades.csv), 2 nothing was graded (setup problem).
    """
    code = _grade(*(_plain(v) for v in (section, submissions, out, workers, scheduler, cell_timeout, timeout,
                                        memory_mb, db, unsafe_no_sandbox, course_dir, cold_sandboxes, roster,
                                        extensions, config)))
    return _exit(code)


def _grade(section, submissions, out, workers, scheduler, cell_timeout, timeout, memory_mb, db,
           unsafe_no_sandbox, course_dir, cold_sandboxes=False, roster=None, extensions=None, config=None,
           again: Optional[dict] = None) -> int:
    """again: a regrade ({students, tests, reason}) instead of SUBMISSIONS."""
    from . import autograde, export, intake, ledger, regrade, runner, sandbox, term
    from .section import SectionError, find_section_files, read_section_spec, resolve_data

    if again is not None:
        submissions = "(kept from the last grading)"
    if out is None or submissions is None or section is None:
        console.print("[red]SECTION, SUBMISSIONS and --out are required[/]")
        return EXIT_USAGE
    out = Path(out)
    workers = int(workers or 1)
    if unsafe_no_sandbox:
        console.print("[bold red]UNSAFE: --unsafe-no-sandbox: student code runs with resource limits only, "
                      "with this account's access to files and network. Every output says so.[/]")
    else:
        problem = sandbox.sandbox_problem() if not scheduler else None
        if problem:
            console.print(f"[red]Refusing to grade without a sandbox: {problem}.[/]\n"
                          "Install bubblewrap (apt-get install bubblewrap), or pass --unsafe-no-sandbox to run "
                          "student code with resource limits only (never for untrusted submissions).")
            return EXIT_USAGE
    try:
        cdir = _course_dir(str(section), course_dir)
        stem, release, source = find_section_files(str(section), cdir)
        spec = read_section_spec(release, source)
        spec.data = resolve_data(spec, cdir)
    except (SectionError, OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        return EXIT_USAGE
    try:
        setup = term.setup(spec, roster, extensions, config)
    except (OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        return EXIT_USAGE
    db_url = term.gradebook_url(db, cdir, course_dir, setup)
    plan = None
    try:
        if again is not None:
            journal = export.Journal(out, spec.stem)
            plan = regrade.plan(spec, db_url, [e["student"] for e in journal.all() if e.get("student")],
                                again["students"], again["tests"], again["reason"])
            console.print(f"Regrading {', '.join(plan.tests)} for {len(plan.students)} student(s)")
            subs = regrade.submissions(out, spec.stem, journal, plan.students)
        else:
            subs = intake.discover(Path(submissions), spec.stem, setup.zone)
            term.roster_ids(subs, setup.roster)
    except regrade.RegradeError as exc:
        console.print(f"[red]{exc}[/]")
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read submissions: {exc}[/]")
        return EXIT_USAGE
    if not subs:
        console.print(f"[yellow]no notebooks found in {submissions}[/]")
        return EXIT_USAGE

    settings = runner.Settings(
        limits=sandbox.Limits(memory_mb=int(memory_mb), cell_timeout=float(cell_timeout), timeout=float(timeout),
                              warm=not cold_sandboxes),
        out=out, course_dir=term.grading_dir(db_url, cdir), db_url=db_url, workers=workers,
        scheduler=scheduler, unsafe=bool(unsafe_no_sandbox))
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers} local worker(s)"
    mode = "UNSAFE, no sandbox" if unsafe_no_sandbox else "bubblewrap sandbox"
    by_hand = sum(ledger.manual_points(spec).values())
    manual_note = f" + {by_hand:g} graded by hand" if by_hand else ""
    console.print(f"Grading [bold]{spec.stem}[/] ({spec.max_score:g} points{manual_note}, {len(spec.tests)} graded tests): "
                  f"{len(subs)} submission(s) on {where}, {mode}")

    # SIGTERM behaves like Ctrl-C: sandboxes are killed, finished students stay recorded.
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False)
    try:
        with progress:
            task = progress.add_task("students", total=len(subs))

            def tick(student, row):
                progress.update(task, advance=1, description=f"{student}: {row['status'] if row else ''}")

            if plan is None:
                term.keep_submissions(out, spec.stem, subs)
            term.backup_before_bulk(settings.db_url, len(subs))
            result = runner.grade_batch(spec, subs, settings, on_progress=tick)
        if plan is not None:
            regrade.settle(spec, settings.db_url, export.Journal(out, spec.stem), plan)
        term.register_people(settings.db_url, setup.roster)
        class_rows = ledger.export_all(spec, settings.db_url, out, setup)
    except autograde.SubmissionError as exc:
        console.print(f"[red]{exc}[/]")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sandbox.kill_all_live()
        console.print("[yellow]interrupted: students graded so far are recorded; run again to continue[/]")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)

    _summary(spec, result, settings)
    term.print_class_summary(console, class_rows)
    return EXIT_SOME_ERRORS if any(r["status"] == "error" for r in result.rows) else EXIT_OK


def _names(values) -> list[str] | None:
    """--students a,b --students c -> [a, b, c] (names are kept exactly, spaces included)."""
    names = [n.strip() for v in values or [] for n in str(v).split(",") if n.strip()]
    return names or None


def regrade(
    section: str = typer.Argument(..., help="Section number or stem."),
    out: Path = typer.Option(..., "--out", help="The output folder of the earlier `course grade`."),
    students: Optional[list[str]] = typer.Option(None, "--students", help="Only these students (repeat, or comma-separated); "
                                                 "default: everyone graded so far."),
    tests: Optional[list[str]] = typer.Option(None, "--tests", help="Only these tests' scores are replaced (repeat, or "
                                              "comma-separated); default: the tests whose code or points changed."),
    reason: str = typer.Option("test fixed after release", "--reason", help="Recorded with every changed score."),
    workers: int = typer.Option(1, "--workers", min=1),
    cell_timeout: int = typer.Option(60, "--cell-timeout", min=1),
    timeout: int = typer.Option(600, "--timeout", min=5),
    memory_mb: int = typer.Option(2048, "--memory-mb", min=128),
    db: Optional[str] = typer.Option(None, "--db", help="Gradebook SQLAlchemy URL (as for course grade)."),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox"),
    course_dir: Optional[Path] = typer.Option(None, "--course-dir"),
    roster: Optional[Path] = typer.Option(None, "--roster"),
    extensions: Optional[Path] = typer.Option(None, "--extensions"),
    config: Optional[Path] = typer.Option(None, "--config"),
) -> int:
    """Grade again what changed: a test fixed after release (found by comparing the section with the
    gradebook), or one student's appeal (--students). Other scores, manual ones included, stay; every
    change is kept in the gradebook's history and shown in grades.csv's `changed` column."""
    values = [_plain(v) for v in (section, out, students, tests, reason, workers, cell_timeout, timeout, memory_mb, db,
                                  unsafe_no_sandbox, course_dir, roster, extensions, config)]
    (section, out, students, tests, reason, workers, cell_timeout, timeout, memory_mb, db, unsafe_no_sandbox,
     course_dir, roster, extensions, config) = values
    return _exit(_grade(section, None, out, workers, None, cell_timeout, timeout, memory_mb, db, unsafe_no_sandbox,
                        course_dir, False, roster, extensions, config,
                        again={"students": _names(students), "tests": _names(tests), "reason": reason}))


def report(
    section: str = typer.Argument(..., help="Section number or stem."),
    out: Path = typer.Option(..., "--out", help="The output folder of `course grade`; the page is written there."),
    db: Optional[str] = typer.Option(None, "--db", help="Gradebook SQLAlchemy URL (as for course grade)."),
    course_dir: Optional[Path] = typer.Option(None, "--course-dir"),
    roster: Optional[Path] = typer.Option(None, "--roster"),
    extensions: Optional[Path] = typer.Option(None, "--extensions"),
    config: Optional[Path] = typer.Option(None, "--config"),
) -> int:
    """Write OUT/report.html: score distribution, pass rate per test, hidden-test gap, grading time,
    missing/late/error/unknown/manual lists. One offline page (plotly inlined)."""
    from . import ledger, term
    from . import report as class_report
    from .export import atomic_write
    from .section import SectionError, find_section_files, read_section_spec

    section, out, db, course_dir, roster, extensions, config = (
        _plain(v) for v in (section, out, db, course_dir, roster, extensions, config))
    try:
        cdir = Path(course_dir) if course_dir is not None else _course_dir(str(section), None)
        spec = read_section_spec(*find_section_files(str(section), cdir)[1:])
        setup = term.setup(spec, roster, extensions, config)
    except (SectionError, OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        return _exit(EXIT_USAGE)
    rows = ledger.rows(spec, term.gradebook_url(db, cdir, course_dir, setup), Path(out), setup)
    page = Path(out) / "report.html"
    atomic_write(page, class_report.render(spec.title, spec.stem, rows, spec.test_ids))
    console.print(f"wrote {page}")
    return EXIT_OK


def _exit(code: int) -> int:
    """Invoked as a command: make the exit code the process's; called from Python: return it."""
    try:  # typer >= 0.29 runs commands under its own copy of click, whose context is the one set
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context

    if get_current_context(silent=True) is not None and code:
        raise typer.Exit(code)
    return code


def _summary(spec, result, settings) -> None:
    table = Table(title=f"{spec.stem}: summary")
    table.add_column("status")
    table.add_column("students", justify="right")
    for status, n in sorted(result.by_status().items()):
        table.add_row(status, str(n))
    console.print(table)
    problems = [r for r in result.rows if r["status"] != "ok"]
    if problems:
        ptable = Table(title="not graded normally")
        ptable.add_column("student")
        ptable.add_column("status")
        ptable.add_column("why")
        for r in problems:
            ptable.add_row(r["student"], r["status"], r["message"][:160])
        console.print(ptable)
    mean = result.mean_score
    times = result.run_times
    per = f", {sum(times) / len(times):.1f} s per submission" if times else ""
    console.print(
        f"graded {result.graded}, skipped {result.skipped} (already graded), "
        f"mean score {mean:.2f} / {spec.max_score:g}" if mean is not None else "no scores",
        f"in {result.elapsed:.1f} s{per}. Wrote {settings.out / 'grades.csv'} and {settings.out / 'feedback'}/.")
    if settings.unsafe:
        console.print("[bold red]UNSAFE: graded without a sandbox.[/]")


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(grade)  # one command: `python -m grader.cli SECTION SUBMISSIONS --out DIR`
    app()  # regrade and report are `course regrade` / `course report`


if __name__ == "__main__":
    sys.exit(main())
