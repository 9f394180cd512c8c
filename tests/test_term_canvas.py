"""A term's grading round trip on a Canvas-style zip: roster (a missing student, an unknown one),
a resubmission, late work with and without an extension, a unicode name, a manually graded answer
scored through nbgrader's API (what formgrader does) and the Canvas import file, row by row."""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import sandbox  # noqa: E402
from grader.cli import grade  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STEM = "92_term"
HONEST = {
    **S.HONEST_TERM,
    "describe": "def describe(x):\n    return f'{x}: {double(x)}, {square(x)}'\n",
}
CONFIG = """\
title: Term fixture
course:
  grading:
    timezone: Europe/Paris
    due:
      92: "2026-10-05 23:59"
    late_penalty:
      percent_per_day: 10
      max_percent: 50
      zero_after_days: 7
"""
ROSTER = """\
Student,ID,SIS User ID,SIS Login ID,Section,Term fixture 92_term (4711)
    Points Possible,,,,,9
"Lovelace, Ada",101,S101,ada,Group A,
"Ñúñez, Zoë",102,S102,zoe,Group A,
"Hopper, Grace",103,S103,grace,Group B,
"Turing, Alan",104,S104,alan,Group B,
"Noether, Emmy",105,S105,emmy,Group B,
"Missing, Person",106,S106,nobody,Group A,
"""
EXTENSIONS = "student,days\n104,3\n"


def answered(answers: dict, written: str | None = None):
    nb = S.fill(STEM, answers)
    if written is not None:
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "explain_square")
        cell.source = written
    return nbformat.writes(nb).encode()


def canvas_zip(path: Path) -> Path:
    wrong = {**HONEST, "solution-square": "def square(x):\n    return x + x\n"}
    members = [  # (name, Paris local time, notebook)
        ("lovelaceada_101_5001_92_term.ipynb", (2026, 10, 5, 20, 0, 0), answered(HONEST, "Same signs multiply to +.")),
        ("ñúñezzoë_102_5002_92_term.ipynb", (2026, 10, 5, 23, 0, 0), answered(HONEST)),
        ("hoppergrace_103_5003_92_term.ipynb", (2026, 10, 3, 10, 0, 0), answered(wrong)),
        ("hoppergrace_103_5004_92_term-1.ipynb", (2026, 10, 4, 10, 0, 0), answered(HONEST)),
        ("turingalan_LATE_104_5005_92_term.ipynb", (2026, 10, 7, 12, 0, 0), answered(HONEST)),
        ("noetheremmy_LATE_105_5006_92_term.ipynb", (2026, 10, 7, 12, 0, 0), answered(HONEST)),
        ("strangerbob_999_5999_92_term.ipynb", (2026, 10, 5, 12, 0, 0), answered(wrong)),
    ]
    with zipfile.ZipFile(path, "w") as zf:
        for name, when, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    tmp = tmp_path_factory.mktemp("term")
    course = S.copy_dist(tmp / "dist") / "nbgrader"
    (tmp / "_config.yml").write_text(CONFIG)
    (tmp / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (tmp / "extensions.csv").write_text(EXTENSIONS)
    zpath = canvas_zip(tmp / "submissions.zip")
    out = tmp / "out"
    args = dict(out=out, cell_timeout=30, timeout=120, course_dir=course, roster=tmp / "roster.csv",
                extensions=tmp / "extensions.csv", config=tmp / "_config.yml")
    code = grade("92", zpath, **args)
    return {"tmp": tmp, "out": out, "course": course, "zip": zpath, "args": args, "code": code}


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def plain_rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", encoding="utf-8") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def test_every_rostered_student_has_a_row_and_unknown_ones_are_flagged(graded):
    assert graded["code"] == 0
    rows = plain_rows(graded["out"])
    assert list(rows) == ["101", "102", "103", "104", "105", "106", "999"]  # roster order, then unknown ids
    got = {s: (r["name"], r["status"], r["score"], r["raw_score"], r["penalty_percent"], r["days_late"], r["flags"])
           for s, r in rows.items()}
    assert got == {
        "101": ("Ada Lovelace", "ok", "3", "3", "0", "0", ""),
        "102": ("Zoë Ñúñez", "ok", "3", "3", "0", "0", ""),
        "103": ("Grace Hopper", "ok", "3", "3", "0", "0", ""),
        "104": ("Alan Turing", "ok", "3", "3", "0", "0", ""),  # LATE on Canvas, within the extension
        "105": ("Emmy Noether", "ok", "2.4", "3", "20", "2", ""),  # 36 h late: 2 started days, 10 % each
        "106": ("Person Missing", "missing", "0", "0", "0", "0", ""),
        "999": ("strangerbob", "ok", "1", "1", "0", "0", "not on the roster"),
    }
    assert rows["104"]["lms_late"] == "yes" and rows["105"]["lms_late"] == "yes" and rows["101"]["lms_late"] == ""
    assert rows["104"]["due"] == "2026-10-08T23:59+02:00" and rows["105"]["due"] == "2026-10-05T23:59+02:00"
    assert rows["105"]["submitted_at"] == "2026-10-07T12:00+02:00"
    assert {s: r["max_score"] for s, r in rows.items()} == {s: "9" for s in rows}  # 3 autograded + 6 by hand
    # written answers wait for a person; the untouched one got nbgrader's automatic 0
    assert rows["101"]["needs_manual_grading"] == "explain_square describe plot_task"
    assert rows["102"]["needs_manual_grading"] == "describe plot_task" and rows["102"]["explain_square"] == "0"


def test_the_gradebook_knows_every_rostered_student_by_name(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}") as gb:
        people = {s.id: (s.first_name, s.last_name) for s in gb.students}
        with_submission = sorted(s.student.id for s in gb.find_assignment(STEM).submissions)
    assert people["102"] == ("Zoë", "Ñúñez") and people["106"] == ("Person", "Missing")
    assert people["999"] == (None, None)  # not on the roster: graded under its Canvas id
    assert with_submission == ["101", "102", "103", "104", "105", "999"]


def test_canvas_export_every_row(graded):
    assert read_csv(graded["out"] / "canvas.csv") == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Term fixture 92_term (4711)"],
        ["    Points Possible", "", "", "", "", "9"],
        ["Lovelace, Ada", "101", "S101", "ada", "Group A", "3"],
        ["Ñúñez, Zoë", "102", "S102", "zoe", "Group A", "3"],
        ["Hopper, Grace", "103", "S103", "grace", "Group B", "3"],
        ["Turing, Alan", "104", "S104", "alan", "Group B", "3"],
        ["Noether, Emmy", "105", "S105", "emmy", "Group B", "2.4"],
        ["Missing, Person", "106", "S106", "nobody", "Group A", "0"],
        ["strangerbob", "999", "", "", "", "1"],
    ]


def test_resubmission_latest_wins_earlier_kept_in_journal(graded):
    import json

    entry = json.loads((graded["out"] / ".grader-state" / STEM / "103.json").read_text())
    assert entry["intake"]["source"] == "submissions.zip:hoppergrace_103_5004_92_term-1.ipynb"
    earlier = entry["intake"]["earlier"]
    assert [e["source"] for e in earlier] == ["submissions.zip:hoppergrace_103_5003_92_term.ipynb"]
    assert earlier[0]["attempt"] == 0 and len(earlier[0]["sha256"]) == 64


def test_feedback_shows_the_penalty_and_pending_manual_grading(graded):
    page = (graded["out"] / "feedback" / "105.html").read_text()
    assert "Score: 2.4 / 9 (before the late penalty: 3)" in page
    assert "Late by 2 day(s) (submitted 2026-10-07 12:00 CEST, due 2026-10-05 23:59 CEST): penalty 20% of the score" in page
    assert "describe (3 points): needs manual grading (not graded yet)" in page
    extended = (graded["out"] / "feedback" / "104.html").read_text()
    assert "On time (submitted 2026-10-07 12:00 CEST, extended due 2026-10-08 23:59 CEST)" in extended


def test_formgrader_finds_the_answers_waiting_for_a_person(graded):
    """What formgrader's Manual Grading pages read: nbgrader's API on our course folder and gradebook,
    and the autograded notebook it renders for each submission."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    course = graded["course"]
    coursedir = CourseDirectory(root=str(course), db_url=f"sqlite:///{course / 'gradebook.db'}")
    api = NbGraderAPI(coursedir=coursedir)
    waiting = {s["student"]: s["needs_manual_grade"] for s in api.get_notebook_submissions(STEM, STEM)}
    assert set(waiting) == {"101", "102", "103", "104", "105", "999"} and all(waiting.values())
    ada = next(s for s in api.get_student_submissions("101") if s["name"] == STEM)
    assert (ada["first_name"], ada["last_name"], ada["max_score"]) == ("Ada", "Lovelace", 9.0)
    for student in waiting:
        folder = coursedir.format_path(coursedir.autograded_directory, student, STEM)
        assert (Path(folder) / f"{STEM}.ipynb").is_file()


def test_a_manual_score_entered_through_nbgraders_api_reaches_the_export(graded):
    """What formgrader does when a grader types a score: set Grade.manual_score in the gradebook."""
    from nbgrader.api import Gradebook

    db = f"sqlite:///{graded['course'] / 'gradebook.db'}"
    with Gradebook(db) as gb:
        grade_ = gb.find_grade("explain_square", STEM, STEM, "101")
        assert grade_.needs_manual_grade and grade_.auto_score is None
        for gid, score in (("explain_square", 1.5), ("plot_task", 1)):  # formgrader's GradeHandler.put
            g = gb.find_grade(gid, STEM, STEM, "101")
            g.manual_score = score
            g.needs_manual_grade = False
        gb.db.commit()
    # the same zip again: nothing is graded a second time, the export reads the gradebook
    assert grade("92", graded["zip"], **graded["args"]) == 0
    rows = plain_rows(graded["out"])
    assert (rows["101"]["explain_square"], rows["101"]["plot_task"], rows["101"]["score"]) == ("1.5", "1", "5.5")
    assert rows["101"]["needs_manual_grading"] == "describe"
    canvas = {r[1]: r[5] for r in read_csv(graded["out"] / "canvas.csv")[2:]}
    assert canvas["101"] == "5.5" and canvas["105"] == "2.4"
    page = (graded["out"] / "feedback" / "101.html").read_text()
    assert "explain_square: 1.5 / 2 (graded by hand)" in page
    # formgrader shows the student's written answer from the autograded notebook
    autograded = nbformat.read(str(graded["course"] / "autograded" / "101" / STEM / f"{STEM}.ipynb"), 4)
    answer = next(c for c in autograded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "explain_square")
    assert answer.source == "Same signs multiply to +."


def test_class_report_renders_offline_in_chromium(graded):
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from grader.cli import report

    out = graded["out"]
    assert report("92", out=out, course_dir=graded["course"], roster=graded["tmp"] / "roster.csv",
                  extensions=graded["tmp"] / "extensions.csv", config=graded["tmp"] / "_config.yml") == 0
    page_html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script src=" not in page_html and page_html.count("<script") >= 5  # plotly.js inlined, once per page
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            outside, errors = [], []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:", "blob:", "about:")) else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((out / "report.html").as_uri(), wait_until="networkidle")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4", timeout=30000)
            assert page.locator(".js-plotly-plot").count() == 4
            # the pass-rate chart lists the hardest test first, with its count
            texts = page.locator(".js-plotly-plot").nth(1).locator(".bartext").all_text_contents()
            assert texts == ["5/6", "6/6"]
            body = page.inner_text("body")
        finally:
            browser.close()
    assert outside == [] and errors == []
    assert "7 students, 6 graded, 1 missing" in body
    assert "Missing (1)" in body and "Person Missing" in body
    assert "Late (2)" in body and "Not on the roster (1)" in body and "strangerbob" in body
    assert "Not graded normally (error, timeout, aborted)\n\nnone" in body


def test_report_statistics(graded):
    from grader import ledger, report, term
    from grader.section import find_section_files, read_section_spec

    spec = read_section_spec(*find_section_files("92", graded["course"])[1:])
    setup = term.setup(spec, graded["tmp"] / "roster.csv", None, graded["tmp"] / "_config.yml")
    rows = ledger.rows(spec, f"sqlite:///{graded['course'] / 'gradebook.db'}", graded["out"], setup)
    stats = {s["test"]: (s["students"], s["passed"], s["public_passed"]) for s in report.test_stats(rows, spec.test_ids)}
    assert stats == {"test_double": (6, 6, 6), "test_square": (6, 5, 5)}
