"""What `course grade` and `course regrade` do around a batch: read the roster, the course's
grading settings and the extensions; choose the gradebook (outside build outputs) and back it up
before a bulk change; keep each graded submission for later regrades; summarise the class."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import nbformat

from build_tools.config import ConfigError, GradingConfig, load_config

from . import late
from .export import atomic_write
from .ledger import Term
from .roster import disk_name, read_roster

KEEP_BACKUPS = 10


def _course_root(config: Path | None) -> Path | None:
    if config is not None:
        config = Path(config)
        return config.parent if config.is_file() else config
    try:
        from build_tools.build import find_root

        return find_root()
    except BaseException:  # noqa: BLE001 - not inside a course project
        return None


def setup(spec, roster: Path | None, extensions: Path | None, config: Path | None) -> Term:
    root = _course_root(config)
    try:
        grading = load_config(root).grading if root is not None else GradingConfig()
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    term = Term(roster=read_roster(roster) if roster else None, root=root, grading=grading)
    if extensions:
        due = grading.due_for(spec.stem, spec.number)
        term.extensions = late.read_extensions(extensions, term.zone, due)
    return term


def gradebook_url(db: str | None, course_dir: Path, course_dir_given, term: Term) -> str:
    """--db, else the config's course.grading.gradebook, else the nbgrader course folder the
    instructor named with --course-dir, else <course root>/grading/gradebook.db: never under dist/,
    which `make clean` and `course build` replace."""
    if db:
        return db
    if term.grading.gradebook is not None:
        path = term.grading.gradebook
    elif course_dir_given is not None or term.root is None:
        path = Path(course_dir) / "gradebook.db"
    else:
        path = Path(term.root) / "grading" / "gradebook.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def grading_dir(db_url: str, course_dir: Path) -> Path:
    """Where graded notebooks go (``autograded/<student>/<section>/``): beside a SQLite gradebook, so
    that nbgrader's formgrader, started on that folder, shows them with the grades; they survive
    `make clean` with the gradebook. Other databases: the nbgrader course folder."""
    path = sqlite_path(db_url)
    return path.parent if path is not None else Path(course_dir)


def sqlite_path(db_url: str) -> Path | None:
    return Path(db_url[len("sqlite:///"):]) if db_url.startswith("sqlite:///") else None


def backup_before_bulk(db_url: str, changes: int) -> Path | None:
    """Copy an existing SQLite gradebook (SQLite's online backup: consistent even mid-write) to
    ``backups/gradebook-<time>.db`` beside it before a batch, a regrade or a schema upgrade by
    nbgrader; the newest KEEP_BACKUPS are kept. Other databases are their administrator's to back up."""
    path = sqlite_path(db_url)
    if not changes or path is None or not path.is_file():
        return None
    folder = path.parent / "backups"
    folder.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = folder / f"{path.stem}-{stamp}.db"
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    for old in sorted(folder.glob(f"{path.stem}-*.db"))[:-KEEP_BACKUPS]:
        old.unlink()
    return target


def submissions_dir(out: Path, stem: str) -> Path:
    return Path(out) / ".grader-state" / stem / "submissions"


def keep_submissions(out: Path, stem: str, subs) -> None:
    """The notebook graded for each student, so that `course regrade` can run it again."""
    folder = submissions_dir(out, stem)
    for sub in subs:
        if sub.nb is not None and not sub.error:
            atomic_write(folder / f"{disk_name(sub.student)}.ipynb", nbformat.writes(sub.nb))


def roster_ids(subs, roster) -> None:
    """Grade each submission under its roster id: a folder named after a student's e-mail, login or
    exact name becomes that student's id (the folder name stays in the submission's source).
    Two submissions for one student keep their own ids, and are reported."""
    if roster is None:
        return
    taken = {sub.student for sub in subs}
    for sub in subs:
        person = roster.match(sub.student)
        if person is None or person.id == sub.student:
            continue
        if person.id in taken:
            sub.notes.append(f"{sub.student!r} names the same student as another submission ({person.id}): "
                             "graded under its own name")
            continue
        taken.discard(sub.student)
        sub.student = person.id
        taken.add(person.id)


def register_people(db_url: str, roster) -> None:
    """Every rostered student in the gradebook with their names and e-mail, exactly as the roster
    spells them (what `nbgrader db student import` does), so formgrader lists the whole class."""
    import warnings

    from nbgrader.api import Gradebook

    if roster is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db_url) as gb:
            for person in roster.people.values():
                last, _, first = person.sortable_name.partition(",")
                if not first:  # a plain roster: "First Last"
                    first, _, last = person.name.rpartition(" ")
                gb.update_or_create_student(person.id, first_name=first.strip() or None,
                                            last_name=last.strip() or None, email=person.email or None)


def print_class_summary(console, rows: list[dict]) -> None:
    def names(predicate):
        return ", ".join(r["student"] for r in rows if predicate(r)) or "none"

    console.print(f"class: {len(rows)} students; missing: {names(lambda r: r['status'] == 'missing')}; "
                  f"not on the roster: {names(lambda r: 'not on the roster' in r['flags'])}; "
                  f"late: {names(lambda r: r['days_late'])}; "
                  f"needs manual grading: {names(lambda r: r['needs_manual'])}", highlight=False)
