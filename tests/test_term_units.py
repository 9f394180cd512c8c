"""Roster files, Canvas file names, safe disk names, deadlines and penalties, without grading."""

from __future__ import annotations

import datetime as dt
import zipfile
from zoneinfo import ZoneInfo

import pytest

from build_tools.config import LatePenalty
from grader import intake, late, lms
from grader.roster import RosterError, disk_name, read_roster

PARIS = ZoneInfo("Europe/Paris")
DUE = dt.datetime(2026, 10, 5, 23, 59, tzinfo=PARIS)


def test_plain_roster_with_aliases_bom_and_exact_names(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("\ufeffStudent_ID,Full_Name,E-Mail\nzoe.n,Zoë Ñúñez,zoe@example.org\n,,\n A1 ,  Ada  ,\n",
                    encoding="utf-8")
    roster = read_roster(path)
    assert roster.kind == "plain" and list(roster.people) == ["zoe.n", "A1"]
    assert roster.people["zoe.n"].name == "Zoë Ñúñez" and roster.people["A1"].name == "Ada"
    assert roster.match("zoe@example.org").id == "zoe.n"  # a folder named after the e-mail
    assert roster.match("Zoë Ñúñez").id == "zoe.n"  # a folder named after the student
    assert roster.match("Zoe\u0308 N\u0303u\u0301n\u0303ez").id == "zoe.n"  # the same, spelled NFD by macOS
    assert roster.match("Zoe Nunez") is None


def test_canvas_roster_skips_points_and_test_student(tmp_path):
    path = tmp_path / "canvas.csv"
    path.write_text('Student,ID,SIS User ID,SIS Login ID,Section,Week 1 (11)\n    Points Possible,,,,,9\n'
                    '"Ñúñez, Zoë",102,S102,zoe,Group A,\n"Student, Test",1,,,,\n', encoding="utf-8")
    roster = read_roster(path)
    assert roster.kind == "canvas" and list(roster.people) == ["102"] and roster.columns == ["Week 1 (11)"]
    zoe = roster.people["102"]
    assert (zoe.name, zoe.sortable_name, zoe.sis_login_id, zoe.section) == ("Zoë Ñúñez", "Ñúñez, Zoë", "zoe", "Group A")
    assert lms.canvas_column(roster, "Week 1", "01_w") == "Week 1 (11)"
    assert lms.canvas_column(None, "Week 2", "02_w") == "Week 2 (02_w)"


@pytest.mark.parametrize("text, message", [
    ("name,email\nAda,a@x\n", ":1: no student id column"),
    ("id,name\n7,Ada\n7,Bob\n", ":3: student id '7' appears twice"),
    ("id,name\n,Ada\n", ":2: empty student id"),
])
def test_roster_problems_name_the_line(tmp_path, text, message):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(RosterError, match=message):
        read_roster(path)


def test_canvas_file_names():
    name = lms.parse_canvas_name("ñúñezzoë_LATE_102_5002_92_term-2.ipynb")
    assert (name.lastfirst, name.user_id, name.submission_id, name.name, name.attempt, name.late) == (
        "ñúñezzoë", "102", "5002", "92_term", 2, True)
    plain = lms.parse_canvas_name("smithjo_7_8_my-work_v2.ipynb")
    assert (plain.user_id, plain.name, plain.attempt, plain.late) == ("7", "my-work_v2", 0, False)
    assert lms.parse_canvas_name("alice.ipynb") is None and lms.parse_canvas_name("a_b_c.ipynb") is None


def test_disk_names_are_safe_stable_and_distinct():
    ids = ["alice", "Zoë Ñúñez", "Zoe Nunez", "zoe nunez", "../etc/passwd", ".hidden", "Zoe_Nunez-0123456789", ""]
    names = [disk_name(i) for i in ids]
    assert names[0] == "alice" and len(set(names)) == len(ids)
    assert all(n and "/" not in n and not n.startswith(".") and n.isascii() for n in names)
    assert names[6] != ids[6]  # looks like a generated name: hashed too, so it cannot collide
    assert [disk_name(i) for i in ids] == names


def test_intake_keeps_exact_ids_and_picks_the_latest_resubmission(tmp_path):
    nb = b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'
    path = tmp_path / "subs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("Zoe\u0308 Nun\u0303ez/work.ipynb", (2026, 10, 1, 9, 0, 0)), nb)  # macOS NFD
        zf.writestr(zipfile.ZipInfo("hop_103_1_w.ipynb", (2026, 10, 5, 9, 0, 0)), nb)
        zf.writestr(zipfile.ZipInfo("hop_LATE_103_2_w-1.ipynb", (2026, 10, 4, 9, 0, 0)), nb + b" ")
    subs = {s.student: s for s in intake.discover(path, "w", PARIS)}
    assert set(subs) == {"Zoë Nuñez", "103"}
    hop = subs["103"]
    assert hop.source.endswith("hop_LATE_103_2_w-1.ipynb") and hop.lms_late  # -1 beats a newer file time
    assert hop.submitted_at == dt.datetime(2026, 10, 4, 9, tzinfo=PARIS).timestamp()
    assert [e["source"].split(":")[1] for e in hop.earlier] == ["hop_103_1_w.ipynb"]


def test_penalty_rule():
    rule = LatePenalty(percent_per_day=10, max_percent=50, zero_after_days=7, grace_minutes=5)
    at = lambda **delta: (DUE + dt.timedelta(**delta)).timestamp()  # noqa: E731
    assess = lambda when, ext=None: late.assess(when, DUE, ext, rule, PARIS)  # noqa: E731
    assert (assess(at(minutes=4)).days_late, assess(at(minutes=4)).percent) == (0, 0)  # grace
    assert (assess(at(minutes=6)).days_late, assess(at(minutes=6)).percent) == (1, 10)
    assert assess(at(days=3, hours=1)).percent == 40
    assert assess(at(days=6)).percent == 50  # capped
    assert assess(at(days=7, hours=1)).percent == 100  # after the cutoff: nothing
    assert assess(at(days=2), ext=DUE + dt.timedelta(days=3)).percent == 0
    assert late.Lateness(DUE, False, None, 2, 25.0).apply(3.0) == 2.25
    assert assess(None).percent == 0 and late.assess(at(days=9), None, None, rule, PARIS).percent == 0


def test_extensions_file(tmp_path):
    path = tmp_path / "ext.csv"
    path.write_text("student,due,days\n104,,2\nZoë Ñúñez,2026-10-09 12:00,\n")
    ext = late.read_extensions(path, PARIS, DUE)
    assert ext == {"104": DUE + dt.timedelta(days=2), "Zoë Ñúñez": dt.datetime(2026, 10, 9, 12, tzinfo=PARIS)}
    with pytest.raises(late.ExtensionsError, match=":2: extra days for '104', but the section has no due date"):
        late.read_extensions(path, PARIS, None)
    path.write_text("student,due\n104,next week\n")
    with pytest.raises(late.ExtensionsError, match=":2: cannot read"):
        late.read_extensions(path, PARIS, DUE)


def test_submissions_take_their_roster_ids(tmp_path):
    from grader.intake import Submission
    from grader.term import roster_ids

    path = tmp_path / "r.csv"
    path.write_text("id,name,email\nzoe.n,Zoë Ñúñez,zoe@example.org\nada,Ada Lovelace,ada@example.org\n")
    subs = [Submission("zoe@example.org", "a"), Submission("Zoë Ñúñez", "b"), Submission("ada", "c"),
            Submission("stranger", "d")]
    roster_ids(subs, read_roster(path))
    assert [s.student for s in subs] == ["zoe.n", "Zoë Ñúñez", "ada", "stranger"]
    assert "names the same student as another submission (zoe.n)" in subs[1].notes[0]
