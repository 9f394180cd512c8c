"""Who is in the class: the roster, and the one place where a student's identity becomes a file name.

Identities are kept exactly as the roster or the learning platform gives them (unicode, spaces,
case): they are the key in the gradebook and in every CSV. Only names on disk (feedback pages,
the journal, stored submissions) are made safe, by `disk_name`: an id that is already a safe file
name is used as it is; any other id becomes an ASCII slug plus a hash of the exact id, so the
mapping is stable (same id, same name, on every run and machine) and two ids never share a name.

Accepted roster files (CSV, UTF-8 with or without BOM), recognised by their header:

* plain: ``id,name,email`` (also ``student_id``/``user_id``/``login``, ``full_name``, ``mail``);
* Canvas's gradebook export (People → Export, or Grades → Export): ``Student,ID,SIS User ID,SIS
  Login ID,Section,...`` with a ``Points Possible`` row; the student id is Canvas's numeric user
  ``ID``, the one in its submission-zip file names and the one its gradebook import matches.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID")
PLAIN_ALIASES = {
    "id": ("id", "student_id", "user_id", "login", "login_id", "username"),
    "name": ("name", "full_name", "student_name", "display_name"),
    "email": ("email", "mail", "e-mail", "email_address"),
}


class RosterError(ValueError):
    """The roster file cannot be read; the message says which line and why."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str = ""
    email: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""  # the LMS's course section (Canvas "Section"), not a course chapter
    sortable_name: str = ""  # Canvas "Student" column: "Last, First"


@dataclass
class Roster:
    people: dict[str, Person] = field(default_factory=dict)  # exact id -> person
    kind: str = "plain"  # "plain" | "canvas"
    columns: list[str] = field(default_factory=list)  # Canvas: assignment columns of the export

    def match(self, key: str) -> Person | None:
        """The person a submission's id stands for: id, then SIS login, then e-mail, then exact name."""
        key = normalize_id(key)
        if key in self.people:
            return self.people[key]
        for attr in ("sis_login_id", "email", "sis_user_id", "name"):
            hits = [p for p in self.people.values() if getattr(p, attr) and normalize_id(getattr(p, attr)) == key]
            if len(hits) == 1:
                return hits[0]
        return None


def normalize_id(text: str) -> str:
    """Unicode NFC and outer spaces trimmed: a macOS zip spells `ë` as two code points, a roster as one."""
    return unicodedata.normalize("NFC", str(text)).strip()


def disk_name(student: str) -> str:
    """A safe, stable, collision-free file name for a student id (see the module docstring)."""
    if SAFE_NAME.match(student) and not re.search(r"-[0-9a-f]{10}$", student):
        return student
    ascii_text = unicodedata.normalize("NFKD", student).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "_", ascii_text).strip("_")[:60] or "student"
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}"


def _rows(path: Path) -> list[list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); export the roster as UTF-8 CSV")
    return [row for row in csv.reader(io.StringIO(text))]


def read_roster(path: Path) -> Roster:
    rows = _rows(path)
    if not rows:
        raise RosterError(f"{path}: empty roster")
    header = [h.strip() for h in rows[0]]
    if tuple(header[:4]) == CANVAS_HEADER:
        return _read_canvas(path, header, rows[1:])
    return _read_plain(path, header, rows[1:])


def _read_canvas(path: Path, header: list[str], rows: list[list[str]]) -> Roster:
    roster = Roster(kind="canvas")
    fixed = 5 if len(header) > 4 and header[4] == "Section" else 4
    roster.columns = header[fixed:]
    for lineno, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        student = row[0].strip()
        if student in ("Points Possible", "Student, Test") or student.startswith("    "):
            continue  # the points row, Canvas's test student, muted/"read only" rows
        if len(row) < 2 or not row[1].strip():
            raise RosterError(f"{path}:{lineno}: a student without a Canvas ID")
        pid = normalize_id(row[1])
        last, _, first = student.partition(",")
        name = f"{first.strip()} {last.strip()}".strip() if first else student
        person = Person(id=pid, name=name, sortable_name=student,
                        sis_user_id=row[2].strip() if len(row) > 2 else "",
                        sis_login_id=row[3].strip() if len(row) > 3 else "",
                        section=row[4].strip() if fixed == 5 and len(row) > 4 else "")
        _add(roster, person, path, lineno)
    return roster


def _read_plain(path: Path, header: list[str], rows: list[list[str]]) -> Roster:
    lower = [h.lower() for h in header]
    where = {}
    for key, aliases in PLAIN_ALIASES.items():
        where[key] = next((lower.index(a) for a in aliases if a in lower), None)
    if where["id"] is None:
        raise RosterError(f"{path}:1: no student id column (expected one of {', '.join(PLAIN_ALIASES['id'])}, "
                          f"or a Canvas export starting with {', '.join(CANVAS_HEADER)})")
    roster = Roster(kind="plain")
    for lineno, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        get = lambda k: row[where[k]].strip() if where[k] is not None and where[k] < len(row) else ""  # noqa: E731
        if not get("id"):
            raise RosterError(f"{path}:{lineno}: empty student id")
        _add(roster, Person(id=normalize_id(get("id")), name=get("name"), email=get("email")), path, lineno)
    return roster


def _add(roster: Roster, person: Person, path: Path, lineno: int) -> None:
    if person.id in roster.people:
        raise RosterError(f"{path}:{lineno}: student id {person.id!r} appears twice")
    roster.people[person.id] = person
