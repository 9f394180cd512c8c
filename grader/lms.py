"""Canvas, both ways: its submission-zip file names in, its gradebook-import CSV out.

Canvas's "Download Submissions" zip names every file
``lastfirst_[LATE_]userid_submissionid_<original name>[-N].ipynb``: ``userid`` is the student's
Canvas user ID (the ``ID`` column of its gradebook export), ``LATE_`` marks a submission Canvas
found late against its own due date, and ``-N`` numbers a file the student uploaded again under the
same name (the highest N is the latest). Its gradebook import reads a CSV whose first columns are
``Student,ID,SIS User ID,SIS Login ID,Section``, then one column per assignment named
``Title (assignment id)``; a ``Points Possible`` row may follow the header.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

CANVAS_FILE = re.compile(
    r"^(?P<lastfirst>[^_/]+?)_(?P<late>LATE_)?(?P<user>\d+)_(?P<submission>\d+)_(?P<name>.+?)(?:-(?P<n>\d+))?\.ipynb$")
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@dataclass(frozen=True)
class CanvasName:
    lastfirst: str
    user_id: str
    submission_id: str
    name: str  # the file name the student uploaded, without the -N
    attempt: int  # 0 for the first upload, N for "-N"
    late: bool


def parse_canvas_name(filename: str) -> CanvasName | None:
    match = CANVAS_FILE.match(filename)
    if not match:
        return None
    return CanvasName(match["lastfirst"], match["user"], match["submission"], match["name"],
                      int(match["n"] or 0), bool(match["late"]))


def canvas_column(roster, title: str, stem: str) -> str:
    """The assignment column to fill: the roster export's own column for this section when it has
    one (Canvas then updates that assignment), else a new ``Title (stem)`` column."""
    columns = list(getattr(roster, "columns", None) or [])
    for column in columns:
        if stem in column or (title and column.startswith(title)):
            return column
    return f"{title} ({stem})" if title else stem


def canvas_csv(rows: list[dict], column: str, max_score: float, cell) -> str:
    """Canvas gradebook-import CSV: one line per student row (final score after any late penalty).

    rows: the term rows (see `ledger`). A student the roster does not know keeps their own id in
    the ID column (a Canvas zip's user id), so Canvas can still match them."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CANVAS_FIXED, column])
    w.writerow(["    Points Possible", "", "", "", "", f"{max_score:g}"])
    for row in rows:
        person = row.get("person")
        if person is None:
            w.writerow([cell(row["name"] or row["student"]), cell(row["student"]), "", "", "", f"{row['score']:g}"])
            continue
        student = person.sortable_name or person.name or person.id
        w.writerow([cell(student), cell(person.id), cell(person.sis_user_id), cell(person.sis_login_id),
                    cell(person.section), f"{row['score']:g}"])
    return buf.getvalue()
