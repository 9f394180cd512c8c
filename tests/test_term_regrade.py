"""Regrade: a hidden test fixed after grading is found by comparing the section with the gradebook,
only its scores move, manual scores stay, history is kept; an appeal regrades one student. Also:
identities kept exactly (unicode, spaces) with safe, distinct file names."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import regrade as R  # noqa: E402
from grader import sandbox  # noqa: E402
from grader.cli import grade, regrade  # noqa: E402
from grader.roster import disk_name  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STEM = "92_term"
HONEST = S.HONEST_TERM
GOOD_HIDDEN, BAD_HIDDEN = "assert square(-4) == 16", "assert square(-4) == -16"


def set_hidden(course: Path, text: str) -> None:
    path = course / "source" / STEM / f"{STEM}.ipynb"
    nb = nbformat.read(str(path), 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square")
    cell.source = cell.source.replace(GOOD_HIDDEN, text).replace(BAD_HIDDEN, text)
    nbformat.write(nb, str(path))


def rows(out: Path) -> dict:
    with open(out / "grades.csv", encoding="utf-8") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    tmp = tmp_path_factory.mktemp("regrade")
    course = S.copy_dist(tmp / "dist") / "nbgrader"
    set_hidden(course, BAD_HIDDEN)  # released with a wrong hidden assertion: everyone fails it
    subs = tmp / "subs"
    for student, answers in (("alice", HONEST), ("bob", {**HONEST, "solution-square": "def square(x):\n    return x + x\n"}),
                             ("Zoë Ñúñez", HONEST), ("Zoe Nunez", HONEST)):
        (subs / student).mkdir(parents=True)
        nbformat.write(S.fill(STEM, answers), str(subs / student / "my work.ipynb"))
    out = tmp / "out"
    args = dict(out=out, cell_timeout=30, timeout=120, course_dir=course)
    assert grade("92", subs, **args) == 0
    return {"out": out, "course": course, "args": args, "db": f"sqlite:///{course / 'gradebook.db'}",
            "first": rows(out)}


def test_identities_are_kept_exactly_and_files_are_safe_and_distinct(graded):
    first = graded["first"]
    assert set(first) == {"alice", "bob", "Zoë Ñúñez", "Zoe Nunez"}
    names = {s: disk_name(s) for s in first}
    assert names["alice"] == "alice" and len(set(names.values())) == 4
    assert names["Zoë Ñúñez"].startswith("Zoe_Nunez-") and names["Zoe Nunez"].startswith("Zoe_Nunez-")
    assert disk_name("Zoë Ñúñez") == names["Zoë Ñúñez"]  # stable
    for name in names.values():
        assert (graded["out"] / "feedback" / f"{name}.html").is_file()
    from nbgrader.api import Gradebook

    with Gradebook(graded["db"]) as gb:
        assert sorted(s.id for s in gb.students) == sorted(first)


def test_a_fixed_test_cell_is_regraded_and_only_its_scores_move(graded):
    out, db = graded["out"], graded["db"]
    before = graded["first"]
    assert {s: (r["test_double"], r["test_square"]) for s, r in before.items()} == {
        "alice": ("1", "0"), "bob": ("1", "0"), "Zoë Ñúñez": ("1", "0"), "Zoe Nunez": ("1", "0")}
    from nbgrader.api import Gradebook

    with Gradebook(db) as gb:  # a grader already scored alice's code answer by hand
        gb.find_grade("describe", STEM, STEM, "alice").manual_score = 2.5
        gb.db.commit()
    set_hidden(graded["course"], GOOD_HIDDEN)  # the fix
    from grader.section import find_section_files, read_section_spec

    spec = read_section_spec(*find_section_files("92", graded["course"])[1:])
    assert R.changed_tests(spec, db) == ["test_square"]

    assert regrade("92", out=out, course_dir=graded["course"], cell_timeout=30, timeout=120,
                   reason="hidden test fixed") == 0
    after = rows(out)
    assert {s: (r["test_double"], r["test_square"], r["score"]) for s, r in after.items()} == {
        "alice": ("1", "2", "5.5"), "bob": ("1", "0", "1"), "Zoë Ñúñez": ("1", "2", "3"), "Zoe Nunez": ("1", "2", "3")}
    assert after["alice"]["changed"].startswith("test_square 0→2 (regraded ")
    assert after["alice"]["changed"].endswith(": hidden test fixed)")
    assert after["bob"]["changed"].startswith("regraded ") and "no score changed" in after["bob"]["changed"]
    assert after["alice"]["describe"] == "2.5"  # the manual score survived the regrade
    history = [(h["student"], h["grade_id"], h["old_score"], h["new_score"], h["reason"]) for h in R.history(db, STEM)]
    assert sorted(history) == sorted([(s, "test_square", 0.0, 2.0, "hidden test fixed")
                                      for s in ("alice", "Zoë Ñúñez", "Zoe Nunez")])
    assert R.changed_tests(spec, db) == []  # the gradebook now records the fixed test
    assert list((graded["course"] / "backups").glob("gradebook-*.db"))  # backed up before the bulk change


def test_an_appeal_regrades_one_student_and_nothing_else(graded):
    out = graded["out"]
    journal = out / ".grader-state" / STEM
    stamps = {p.name: p.stat().st_mtime_ns for p in journal.glob("*.json")}
    assert regrade("92", out=out, students=["bob"], tests=["test_double"], course_dir=graded["course"],
                   cell_timeout=30, timeout=120, reason="appeal") == 0
    after = {p.name: p.stat().st_mtime_ns for p in journal.glob("*.json")}
    assert [n for n in after if after[n] != stamps[n]] == ["bob.json"]
    assert rows(out)["bob"]["changed"] == f"regraded {rows(out)['bob']['changed'][9:19]}: no score changed (appeal)"
    assert regrade("92", out=out, students=["nobody"], course_dir=graded["course"]) == 2  # never graded
