"""Late work: due date (the course config's, or a student's extension), lateness, penalty.

Applied when grades are exported, never inside the gradebook: the gradebook keeps what the work
earned, the CSVs and the feedback page show the penalty and why, so a changed rule or a late
extension only needs a new export.

Extensions file (CSV, UTF-8): ``student,due`` (a new due date, e.g. ``2026-10-08 23:59``) or
``student,days`` (extra days on the section's due date); `student` as in the roster / grades.csv.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path

from build_tools.config import LatePenalty, parse_when

from .roster import normalize_id

DAY = 86400.0


class ExtensionsError(ValueError):
    """The extensions file cannot be read; the message says which line and why."""


@dataclass(frozen=True)
class Lateness:
    due: dt.datetime | None  # the deadline that applies to this student (extension included)
    extended: bool
    submitted: dt.datetime | None
    days_late: int  # started days after the deadline (0: on time)
    percent: float  # penalty, % of the score

    def apply(self, score: float) -> float:
        return round(score * (1 - self.percent / 100.0), 6)

    def describe(self) -> str:
        if self.due is None or self.submitted is None:
            return ""
        when = self.submitted.strftime("%Y-%m-%d %H:%M %Z")
        deadline = f"{'extended ' if self.extended else ''}due {self.due.strftime('%Y-%m-%d %H:%M %Z')}"
        if not self.days_late:
            return f"on time (submitted {when}, {deadline})"
        return (f"late by {self.days_late} day(s) (submitted {when}, {deadline}): "
                f"penalty {self.percent:g}% of the score")


def read_extensions(path: Path, zone: dt.tzinfo, section_due: dt.datetime | None) -> dict[str, dt.datetime]:
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    header = [h.strip().lower() for h in rows[0]]
    if "student" not in header or not ({"due", "days"} & set(header)):
        raise ExtensionsError(f"{path}:1: expected a header 'student,due' or 'student,days'")
    out: dict[str, dt.datetime] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        values = dict(zip(header, (c.strip() for c in row)))
        student = normalize_id(values.get("student", ""))
        if not student:
            raise ExtensionsError(f"{path}:{lineno}: empty student")
        try:
            if values.get("due"):
                out[student] = parse_when(values["due"], zone)
            elif values.get("days"):
                if section_due is None:
                    raise ExtensionsError(f"{path}:{lineno}: extra days for {student!r}, but the section has no "
                                          "due date in the course config (course.grading.due)")
                out[student] = section_due + dt.timedelta(days=float(values["days"]))
            else:
                raise ExtensionsError(f"{path}:{lineno}: neither a due date nor a number of days")
        except ValueError as exc:
            if isinstance(exc, ExtensionsError):
                raise
            raise ExtensionsError(f"{path}:{lineno}: cannot read {row!r}: {exc}") from None
    return out


def assess(submitted_at: float | None, due: dt.datetime | None, extension: dt.datetime | None,
           rule: LatePenalty, zone: dt.tzinfo) -> Lateness:
    deadline = extension or due
    submitted = dt.datetime.fromtimestamp(submitted_at, zone) if submitted_at else None
    if deadline is None or submitted is None:
        return Lateness(deadline, extension is not None, submitted, 0, 0.0)
    late_s = (submitted - deadline).total_seconds() - rule.grace_minutes * 60
    if late_s <= 0:
        return Lateness(deadline, extension is not None, submitted, 0, 0.0)
    days = math.ceil(late_s / DAY)
    percent = min(rule.max_percent, rule.percent_per_day * days)
    if rule.zero_after_days is not None and late_s > rule.zero_after_days * DAY:
        percent = 100.0
    return Lateness(deadline, extension is not None, submitted, days, percent)
