"""Find submissions and turn each into a notebook or a clear reason why it cannot be graded.

Accepted layouts (a folder, or a .zip of either, as learning platforms export them):

    SUBMISSIONS/alice.ipynb                one notebook per student, named after the student
    SUBMISSIONS/bob/<anything>.ipynb       one folder per student (nested folders are fine)
    lastfirst_[LATE_]userid_submissionid_<name>[-N].ipynb    Canvas's submissions zip (see lms.py):
                                           the student is the Canvas user id; the highest -N wins

Student ids are kept exactly (unicode NFC-normalised, so that a macOS zip and a roster agree);
`roster.disk_name` makes them safe where they become file names. When a student has several
notebooks, the one graded is the latest resubmission (Canvas ``-N``), else the notebook for this
section, else the newest file; the others are listed in `Submission.earlier` (kept in the journal).

A zip is read in memory with limits on members and sizes (no extraction, so no path tricks).
Nothing here raises for a bad file: every problem becomes a `Submission.error`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat

from .lms import parse_canvas_name
from .roster import disk_name, normalize_id

MAX_FILE_BYTES = 200 << 20
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_TOTAL = 4 << 30
LARGE_OUTPUTS = 5 << 20
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}


@dataclass
class Submission:
    student: str
    source: str  # where it came from, for messages
    sha256: str = ""
    nb: nbformat.NotebookNode | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    submitted_at: float | None = None  # the file's time (zip entry or file system), seconds since the epoch
    lms_late: bool = False  # the platform marked it late (Canvas's LATE_)
    display_name: str = ""  # what the platform's file name says about who this is (Canvas's lastfirst)
    earlier: list[dict] = field(default_factory=list)  # the other notebooks found for this student

    @property
    def disk(self) -> str:
        """The student's safe file name (feedback page, journal, stored submission)."""
        return disk_name(self.student)

    def intake_record(self) -> dict:
        """What the journal keeps about where this submission came from."""
        return {"source": self.source, "submitted_at": self.submitted_at, "lms_late": self.lms_late,
                "display_name": self.display_name, "earlier": self.earlier}


@dataclass
class _Candidate:
    student: str
    name: str
    read: object  # () -> bytes
    size: int
    mtime: float
    attempt: int = 0  # Canvas resubmission number (-N)
    late: bool = False  # Canvas LATE_ marker
    display_name: str = ""


def _candidate(student: str, name: str, read, size: int, mtime: float, filename: str) -> _Candidate:
    """A notebook found under `student` (its folder or file stem), or named by Canvas's scheme."""
    canvas = parse_canvas_name(filename)
    if canvas is None:
        return _Candidate(normalize_id(student), name, read, size, mtime)
    return _Candidate(canvas.user_id, name, read, size, mtime, canvas.attempt, canvas.late, canvas.lastfirst)


def _candidates_from_dir(root: Path) -> list[_Candidate]:
    out = []
    for path in sorted(root.rglob("*.ipynb")):
        rel = path.relative_to(root)
        if any(part in IGNORED_PARTS or part.startswith(".") for part in rel.parts):
            continue
        student = rel.stem if len(rel.parts) == 1 else rel.parts[0]
        st = path.stat()
        out.append(_candidate(student, str(rel), path.read_bytes, st.st_size, st.st_mtime, rel.name))
    return out


def _candidates_from_zip(path: Path, zone=None) -> tuple[list[_Candidate], list[str]]:
    """zone: the time zone of the zip's (naive) file times; None: this machine's."""
    problems = []
    zf = zipfile.ZipFile(path)
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ValueError(f"{path.name} has {len(infos)} files (limit {MAX_ZIP_MEMBERS})")
    if sum(i.file_size for i in infos) > MAX_ZIP_TOTAL:
        raise ValueError(f"{path.name} unpacks to more than {MAX_ZIP_TOTAL >> 30} GB")
    entries = []
    for info in infos:
        parts = [p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
        if not parts or not parts[-1].endswith(".ipynb"):
            continue
        if any(p in IGNORED_PARTS or p.startswith(".") for p in parts):
            continue
        entries.append((parts, info))
    # An export often wraps everything in one folder: drop it when it holds several students.
    while entries and len({p[0] for p, _ in entries}) == 1 and all(len(p) > 1 for p, _ in entries):
        if len({(p[1] if len(p) > 2 else PurePosixPath(p[1]).stem) for p, _ in entries}) < 2:
            break
        entries = [(p[1:], i) for p, i in entries]
    out = []
    for parts, info in entries:
        student = PurePosixPath(parts[0]).stem if len(parts) == 1 else parts[0]

        def read(info=info):
            if info.file_size > MAX_FILE_BYTES:
                return info.file_size
            with zf.open(info) as fh:
                return fh.read(MAX_FILE_BYTES + 1)

        mtime = 0.0
        try:
            import datetime

            mtime = datetime.datetime(*info.date_time, tzinfo=zone).timestamp()
        except (ValueError, OverflowError):
            pass
        out.append(_candidate(student, f"{path.name}:{info.filename}", read, info.file_size, mtime, parts[-1]))
    return out, problems


def _peek_stem(data: bytes) -> str | None:
    try:
        meta = json.loads(data).get("metadata", {})
        return (meta.get("course") or {}).get("stem")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def parse_notebook(data: bytes) -> tuple[nbformat.NotebookNode | None, str | None, list[str]]:
    """bytes -> (notebook as nbformat 4, error, notes)."""
    notes: list[str] = []
    if not data.strip():
        return None, "empty file (0 bytes of notebook JSON)", notes
    try:
        raw = json.loads(data)
    except UnicodeDecodeError as exc:
        return None, f"not a notebook: the file is not UTF-8 text ({exc.reason} at byte {exc.start})", notes
    except ValueError as exc:
        return None, f"not a notebook: invalid JSON ({exc})"[:300], notes
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, "not a notebook: valid JSON, but no 'nbformat' field", notes
    major = raw.get("nbformat")
    if major not in (3, 4):
        return None, f"not a notebook this grader reads: nbformat {major!r} (expected 3 or 4)", notes
    if major == 3:
        notes.append("upgraded from nbformat 3")
    out_bytes = 0
    try:
        for ws in raw.get("worksheets", [{"cells": raw.get("cells", [])}]):
            for cell in ws.get("cells", []):
                out_bytes += len(json.dumps(cell.get("outputs", [])))
    except (AttributeError, TypeError):
        pass
    if out_bytes > LARGE_OUTPUTS:
        notes.append(f"{out_bytes / 1e6:.0f} MB of saved outputs were discarded before grading")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        if nb.nbformat_minor < 5:
            nb.nbformat_minor = 5
            for i, cell in enumerate(nb.cells):
                cell.setdefault("id", f"upgraded-{i}")
        nb.cells = [c for c in nb.cells if c.get("cell_type") in ("code", "markdown", "raw")]
        for cell in nb.cells:
            if not isinstance(cell.get("source", ""), str):
                cell.source = "".join(cell.source) if isinstance(cell.source, list) else str(cell.source)
            if cell.cell_type == "code":
                cell.outputs = []  # saved outputs never matter, and may be huge
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        return None, f"not a valid notebook ({type(exc).__name__}: {exc})"[:300], notes
    return nb, None, notes


def discover(submissions: Path, stem: str, zone=None) -> list[Submission]:
    submissions = Path(submissions)
    if not submissions.exists():
        raise FileNotFoundError(f"{submissions} does not exist")
    if submissions.is_file() and zipfile.is_zipfile(submissions):
        candidates, _ = _candidates_from_zip(submissions, zone)
    elif submissions.is_dir():
        candidates = _candidates_from_dir(submissions)
        for z in sorted(submissions.glob("*.zip")):  # a folder that holds a platform export
            candidates += _candidates_from_zip(z, zone)[0]
    elif submissions.suffix == ".ipynb":
        st = submissions.stat()
        candidates = [_candidate(submissions.stem, submissions.name, submissions.read_bytes, st.st_size, st.st_mtime,
                                 submissions.name)]
    else:
        raise ValueError(f"{submissions} is neither a folder, a .zip nor a notebook")

    by_student: dict[str, list[_Candidate]] = {}
    for cand in candidates:
        by_student.setdefault(cand.student, []).append(cand)

    result = []
    for student, cands in sorted(by_student.items()):
        sub = Submission(student=student, source=cands[0].name)
        chosen, data = cands[0], None
        if len(cands) > 1:
            loaded = []
            for c in cands:
                d = c.read() if c.size <= MAX_FILE_BYTES else c.size
                loaded.append((c, d))
            ranked = sorted(loaded, key=lambda cd: (
                cd[0].attempt,  # Canvas: a resubmission replaces what came before
                isinstance(cd[1], bytes) and _peek_stem(cd[1]) == stem,
                PurePosixPath(cd[0].name.split(":")[-1]).stem == stem,
                cd[0].mtime), reverse=True)
            chosen, data = ranked[0]
            sub.notes.append(f"{len(cands)} notebooks found; graded {chosen.name}")
            sub.earlier = [{"source": c.name, "submitted_at": c.mtime or None, "attempt": c.attempt,
                            "lms_late": c.late,
                            "sha256": hashlib.sha256(d).hexdigest() if isinstance(d, bytes) else None}
                           for c, d in ranked[1:]]
        sub.source = chosen.name
        sub.submitted_at = chosen.mtime or None
        sub.lms_late = chosen.late
        sub.display_name = chosen.display_name
        if chosen.size > MAX_FILE_BYTES:
            sub.error = f"file too large ({chosen.size / 1e6:.0f} MB; limit {MAX_FILE_BYTES >> 20} MB)"
            result.append(sub)
            continue
        if data is None:
            try:
                data = chosen.read()
            except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
                sub.error = f"could not read {chosen.name}: {exc}"
                result.append(sub)
                continue
        if not isinstance(data, bytes) or len(data) > MAX_FILE_BYTES:
            sub.error = f"file too large (limit {MAX_FILE_BYTES >> 20} MB)"
            result.append(sub)
            continue
        sub.sha256 = hashlib.sha256(data).hexdigest()
        nb, error, notes = parse_notebook(data)
        sub.nb, sub.error = nb, error
        sub.notes += notes
        result.append(sub)
    return result
