"""The class list of one section, as the gradebook has it now: one row per student.

Rows are built after every `course grade` / `course regrade` (and on their own by `course export`
... which is `course grade` with nothing new to grade): every rostered student (``missing`` and 0
points when nothing came in), every student who submitted (``not on the roster`` when the roster
does not know them), scores read from nbgrader's gradebook (the system of record: manual scores
given in formgrader count from the next export), the late penalty applied on top, and what the
last regrade changed. Status, messages and submission times come from the grading journal.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from build_tools.config import GradingConfig

from . import late
from .export import Journal
from .roster import Person, Roster


@dataclass
class Term:
    """Everything an export needs besides the gradebook."""

    roster: Roster | None = None
    root: object = None  # the course project's folder, when grading inside one
    grading: GradingConfig = field(default_factory=GradingConfig)
    extensions: dict[str, dt.datetime] = field(default_factory=dict)

    @property
    def zone(self):
        return ZoneInfo(self.grading.timezone)


def gradebook_view(db_url: str, stem: str) -> dict[str, dict]:
    """student -> {score, max_score, grades: {grade_id: {...}}} for every submission of `stem`."""
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[str, dict] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db_url) as gb:
            try:
                assignment = gb.find_assignment(stem)
            except MissingEntry:
                return out
            for submission in assignment.submissions:
                for nb in submission.notebooks:
                    grades = {}
                    for g in nb.grades:
                        grades[g.name] = {
                            "auto": g.auto_score, "manual": g.manual_score, "score": float(g.score),
                            "max": float(g.max_score), "needs_manual": bool(g.needs_manual_grade),
                        }
                    out[submission.student.id] = {"score": float(nb.score), "max_score": float(nb.max_score),
                                                  "grades": grades}
    return out


def manual_ids(spec) -> list[str]:
    """Grade ids of the section's manually graded answers and tasks, in notebook order."""
    from build_tools.split.nbgrader_meta import needs_manual_grading

    return [c.metadata["nbgrader"]["grade_id"] for c in spec.release.cells
            if needs_manual_grading(c.metadata.get("nbgrader") or {})]


def manual_points(spec) -> dict[str, float]:
    from build_tools.split.nbgrader_meta import needs_manual_grading

    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in spec.release.cells
            if needs_manual_grading(c.metadata.get("nbgrader") or {})}


def rows(spec, db_url: str, out, term: Term) -> list[dict]:
    journal = {e["student"]: e for e in Journal(out, spec.stem).all() if e.get("student")}
    book = gradebook_view(db_url, spec.stem)
    roster = term.roster
    due = term.grading.due_for(spec.stem, spec.number)
    manual = manual_ids(spec)
    max_score = spec.max_score + sum(manual_points(spec).values())
    students = list(roster.people) if roster else []
    students += sorted(s for s in set(journal) | set(book) if s not in set(students))
    result = []
    for student in students:
        entry = journal.get(student)
        person: Person | None = roster.match(student) if roster else None
        if person is not None and person.id != student and person.id in journal:
            continue  # the same person under two spellings: the roster's id row holds the grade
        intake = (entry or {}).get("intake") or {}
        flags = []
        if roster is not None and person is None:
            flags.append("not on the roster")
        if entry is None:
            status, message, tests = "missing", "no submission", {}
            raw, grades = 0.0, {}
        else:
            status, message = entry["row"]["status"], entry["row"]["message"]
            view = book.get(student, {})
            grades = view.get("grades", {})
            tests = {t: grades[t]["score"] for t in spec.test_ids if t in grades}
            raw = view.get("score", entry["row"]["score"])
        lateness = late.assess(intake.get("submitted_at"), due, term.extensions.get(student),
                               term.grading.late_penalty, term.zone)
        score = lateness.apply(raw) if entry is not None else 0.0
        # nbgrader marks a written answer for review; a task has no automatic score at all
        pending = [m for m in manual if m in grades and grades[m]["manual"] is None
                   and (grades[m]["needs_manual"] or grades[m]["auto"] is None)]
        result.append({
            "student": student, "person": person,
            "name": (person.name if person else "") or intake.get("display_name", ""),
            "email": person.email if person else "",
            "status": status, "flags": flags, "message": message,
            "tests": tests,
            "manual": {m: None if m in pending else grades[m]["score"] for m in manual if m in grades},
            "by_hand": [m for m in manual if m in grades and grades[m]["manual"] is not None],
            "needs_manual": pending,
            "raw_score": raw, "score": score, "max_score": max_score,
            "submitted_at": lateness.submitted.isoformat(timespec="minutes") if lateness.submitted else "",
            "due": lateness.due.isoformat(timespec="minutes") if lateness.due else "",
            "extended": lateness.extended, "lms_late": bool(intake.get("lms_late")),
            "days_late": lateness.days_late, "penalty_percent": lateness.percent,
            "late_note": lateness.describe() if entry is not None else "",
            "earlier": intake.get("earlier") or [], "elapsed": (entry or {}).get("elapsed"),
            "changed": (entry or {}).get("changed", ""),
            "results": (entry or {}).get("results", {}),
        })
    return result


def feedback_lines(row: dict, points: dict[str, float]) -> list[str]:
    lines = [f"Score: {row['score']:g} / {row['max_score']:g}"]
    if row["penalty_percent"]:
        lines[0] += f" (before the late penalty: {row['raw_score']:g})"
    if row["late_note"]:
        lines.append(row["late_note"][0].upper() + row["late_note"][1:])
    for gid, given in row["manual"].items():
        if gid in row["by_hand"]:
            lines.append(f"{gid}: {given:g} / {points.get(gid, 0):g} (graded by hand)")
        elif given is not None:
            lines.append(f"{gid}: {given:g} / {points.get(gid, 0):g} (no answer)")
        elif gid in row["needs_manual"]:
            lines.append(f"{gid} ({points.get(gid, 0):g} points): needs manual grading (not graded yet)")
    if row["changed"]:
        lines.append(f"Regraded: {row['changed']}")
    return lines


def export_all(spec, db_url: str, out, term: Term) -> list[dict]:
    """grades.csv, canvas.csv and the grade block of every feedback page, from the gradebook now."""
    from . import lms
    from .export import _cell, atomic_write, write_term_csv
    from .feedback import with_term_block
    from .roster import disk_name

    class_rows = rows(spec, db_url, out, term)
    write_term_csv(out / "grades.csv", spec.stem, class_rows, spec.test_ids, manual_ids(spec))
    column = lms.canvas_column(term.roster, spec.title, spec.stem)
    max_score = class_rows[0]["max_score"] if class_rows else spec.max_score
    atomic_write(out / "canvas.csv", lms.canvas_csv(class_rows, column, max_score, _cell))
    points = manual_points(spec)
    for row in class_rows:
        page = out / "feedback" / f"{disk_name(row['student'])}.html"
        if row["status"] != "missing" and page.is_file():
            text = page.read_text(encoding="utf-8")
            new = with_term_block(text, feedback_lines(row, points))
            if new != text:
                atomic_write(page, new)
    return class_rows
