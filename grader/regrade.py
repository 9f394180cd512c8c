"""`course regrade`: grade again what changed, keep what was there before.

* Which tests: ``--tests``, or every autograded test whose code (hidden part included) or points
  differ from what the gradebook recorded when it last graded (nbgrader keeps each cell's source).
* Which students: ``--students`` (an appeal, a late fix), or everyone graded so far. Each is run
  again from the notebook kept at grading time (`term.keep_submissions`).
* Only the chosen tests' scores are replaced; every other score, manual scores included, stays as
  it was. Every score that moves is written to the gradebook's history table (in the same
  transaction) and to the student's journal entry, so the CSV shows the current grade and what
  changed. The gradebook is backed up first.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass, field

import nbformat
import sqlalchemy as sa

from .intake import Submission
from .term import submissions_dir

HISTORY = sa.Table(
    "course_grade_history", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.String(32), nullable=False),
    sa.Column("assignment", sa.String(128), nullable=False),
    sa.Column("student", sa.String(128), nullable=False),
    sa.Column("grade_id", sa.String(128), nullable=False),
    sa.Column("old_score", sa.Float),
    sa.Column("new_score", sa.Float),
    sa.Column("reason", sa.Text),
)


class RegradeError(ValueError):
    """Nothing can be regraded as asked; the message says why."""


@dataclass
class Plan:
    tests: list[str]
    students: list[str]
    reason: str
    old: dict = field(default_factory=dict)  # student -> {grade_id: {auto, manual, score}}


def changed_tests(spec, db_url: str) -> list[str]:
    """Autograded tests whose source or points differ from the gradebook's record of them."""
    from nbgrader.api import Gradebook, MissingEntry

    changed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db_url) as gb:
            for tid, test in spec.tests.items():
                try:
                    source = gb.find_source_cell(tid, spec.stem, spec.stem).source
                    points = gb.find_grade_cell(tid, spec.stem, spec.stem).max_score
                except MissingEntry:
                    changed.append(tid)
                    continue
                if source != test.code or float(points) != float(test.points):
                    changed.append(tid)
    return changed


def plan(spec, db_url: str, journal_students: list[str], students: list[str] | None,
         tests: list[str] | None, reason: str) -> Plan:
    from .ledger import gradebook_view

    unknown = [t for t in tests or [] if t not in spec.tests]
    if unknown:
        raise RegradeError(f"no autograded test {', '.join(unknown)} in {spec.stem} (have: {', '.join(spec.tests)})")
    chosen_tests = list(tests) if tests else changed_tests(spec, db_url)
    if students:
        missing = [s for s in students if s not in journal_students]
        if missing:
            raise RegradeError(f"never graded for {spec.stem}: {', '.join(missing)}")
        chosen_tests = chosen_tests if tests else list(spec.tests)  # an appeal: every test again
    elif not chosen_tests:
        raise RegradeError(f"no test of {spec.stem} changed since it was graded; name --tests or --students "
                           "to grade again anyway")
    view = gradebook_view(db_url, spec.stem)
    chosen = list(students) if students else sorted(journal_students)
    return Plan(chosen_tests, chosen, reason, {s: view.get(s, {}).get("grades", {}) for s in chosen})


def submissions(out, stem: str, journal, students: list[str]) -> list[Submission]:
    """The notebooks graded last time, as submissions again (forced: the journal says retry)."""
    subs = []
    for student in students:
        entry = journal.get(student) or {}
        intake = entry.get("intake") or {}
        path = submissions_dir(out, stem) / f"{journal.path(student).stem}.ipynb"
        sub = Submission(student=student, source=intake.get("source") or entry.get("source", ""),
                         sha256=entry.get("sha256", ""), submitted_at=intake.get("submitted_at"),
                         lms_late=bool(intake.get("lms_late")), display_name=intake.get("display_name", ""),
                         earlier=intake.get("earlier") or [])
        if path.is_file():
            sub.nb = nbformat.read(str(path), as_version=4)
        else:
            sub.error = entry.get("row", {}).get("message") or "no graded notebook kept for this student"
        journal.put(student, {**entry, "retry": True})
        subs.append(sub)
    return subs


def settle(spec, db_url: str, journal, p: Plan) -> dict[str, str]:
    """Put back the scores of tests not being regraded, record every change; student -> change text."""
    from nbgrader.api import Gradebook, MissingEntry

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    changes: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db_url) as gb:
            HISTORY.metadata.create_all(gb.engine)
            try:
                for student in p.students:
                    parts = []
                    for gid, old in p.old[student].items():
                        try:
                            grade = gb.find_grade(gid, spec.stem, spec.stem, student)
                        except MissingEntry:
                            continue
                        if gid in spec.tests and gid not in p.tests:
                            grade.auto_score = old["auto"]
                        gb.db.flush()
                        new = float(grade.score)
                        if new != old["score"]:
                            gb.db.execute(HISTORY.insert().values(
                                time=now, assignment=spec.stem, student=student, grade_id=gid,
                                old_score=old["score"], new_score=new, reason=p.reason))
                            parts.append(f"{gid} {old['score']:g}→{new:g}")
                    if parts:
                        changes[student] = f"{', '.join(parts)} (regraded {now[:10]}: {p.reason})"
                gb.db.commit()
            except BaseException:
                gb.db.rollback()
                raise
    for student in p.students:
        entry = journal.get(student)
        if entry is not None:
            entry["changed"] = changes.get(student, f"regraded {now[:10]}: no score changed ({p.reason})")
            journal.put(student, entry)
    return changes


def history(db_url: str, stem: str) -> list[dict]:
    engine = sa.create_engine(db_url)
    try:
        if not sa.inspect(engine).has_table(HISTORY.name):
            return []
        with engine.connect() as conn:
            rows = conn.execute(sa.select(HISTORY).where(HISTORY.c.assignment == stem).order_by(HISTORY.c.id))
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def describe(p: Plan) -> str:
    return json.dumps({"tests": p.tests, "students": p.students})
