"""Outputs that survive the batch: a per-student journal (for resuming), grades.csv, feedback.

Every file is written to a temporary name in the same folder and renamed into place, so a
grader killed at any moment leaves either the old or the new version, never half a file. The
journal is what makes a re-run resumable: a student whose submission bytes, section version
and limits are unchanged is not graded again, and rows are keyed by student, so nothing is ever
counted twice.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from build_tools import atomic

from .roster import disk_name

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Private to the instructor (0600) and on disk before it replaces the old version."""
    atomic.write_bytes(path, data.encode() if isinstance(data, str) else data, mode=0o600, durable=True)


class Journal:
    def __init__(self, out: Path, stem: str) -> None:
        self.dir = out / ".grader-state" / stem

    def path(self, student: str) -> Path:
        return self.dir / f"{disk_name(student)}.json"

    def get(self, student: str) -> dict | None:
        try:
            return json.loads(self.path(student).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def put(self, student: str, entry: dict) -> None:
        atomic_write(self.path(student), json.dumps(entry, indent=1, sort_keys=True))

    def all(self) -> list[dict]:
        if not self.dir.is_dir():
            return []
        entries = []
        for p in sorted(self.dir.glob("*.json")):
            try:
                entries.append(json.loads(p.read_text()))
            except ValueError:
                continue
        return entries


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text  # no spreadsheet formulas


def write_csv(path: Path, rows: list[dict], test_ids: list[str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "section", "score", "max_score", *test_ids, "status", "message"])
    for row in sorted(rows, key=lambda r: r["student"]):
        per_test = row.get("tests", {})
        w.writerow([_cell(row["student"]), row["section"], f"{row['score']:g}", f"{row['max_score']:g}",
                    *[f"{per_test[t]:g}" if t in per_test else "" for t in test_ids],
                    row["status"], _cell(row["message"])])
    atomic_write(path, buf.getvalue())


PLAIN_COLUMNS = ["student", "name", "email", "section", "status", "score", "max_score", "raw_score",
                 "penalty_percent", "days_late", "due", "submitted_at", "lms_late"]


def write_term_csv(path: Path, stem: str, rows: list[dict], test_ids: list[str], manual_ids: list[str]) -> None:
    """The plain export: every student of the class list (see ledger.rows), the score after any late
    penalty, per-test and per-manual-answer points, what still needs a human, what a regrade changed."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*PLAIN_COLUMNS, *test_ids, *manual_ids, "needs_manual_grading", "flags", "changed", "message"])
    for row in rows:
        manual = row["manual"]
        w.writerow([_cell(row["student"]), _cell(row["name"]), _cell(row["email"]), stem, row["status"],
                    f"{row['score']:g}", f"{row['max_score']:g}", f"{row['raw_score']:g}",
                    f"{row['penalty_percent']:g}", row["days_late"], row["due"], row["submitted_at"],
                    "yes" if row["lms_late"] else "",
                    *[f"{row['tests'][t]:g}" if t in row["tests"] else "" for t in test_ids],
                    *[f"{manual[m]:g}" if manual.get(m) is not None else "" for m in manual_ids],
                    " ".join(row["needs_manual"]), _cell("; ".join(row["flags"])), _cell(row["changed"]),
                    _cell(row["message"])])
    atomic_write(path, buf.getvalue())
