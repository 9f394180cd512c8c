"""The gradebook outlives build outputs: its default place, `make clean`, backups, config checks."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from build_tools.config import ConfigError, load_config
from grader import term
from grader.ledger import Term

REPO = Path(__file__).resolve().parents[1]


def make_gradebook(url: str) -> None:
    from nbgrader.api import Gradebook

    from grader import autograde

    autograde._alembic_on_path()  # as `course grade` does before nbgrader creates a gradebook
    with Gradebook(url) as gb:
        gb.update_or_create_student("Zoë Ñúñez", first_name="Zoë", last_name="Ñúñez")


def students(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("select id from student")]


def test_default_gradebook_is_outside_dist_and_survives_make_clean(tmp_path):
    root = tmp_path / "course"
    (root / "dist" / "nbgrader" / "source").mkdir(parents=True)
    (root / "book" / "_build").mkdir(parents=True)
    shutil.copy(REPO / "Makefile", root / "Makefile")
    url = term.gradebook_url(None, root / "dist" / "nbgrader", None, Term(root=root))
    assert url == f"sqlite:///{(root / 'grading' / 'gradebook.db').resolve()}"
    assert term.grading_dir(url, root / "dist" / "nbgrader") == (root / "grading").resolve()
    make_gradebook(url)
    backup = term.backup_before_bulk(url, changes=1)
    subprocess.run(["make", "clean"], cwd=root, check=True, capture_output=True)
    assert not (root / "dist").exists() and not (root / "book" / "_build").exists()  # make clean did run
    assert students(root / "grading" / "gradebook.db") == ["Zoë Ñúñez"]
    assert students(backup) == ["Zoë Ñúñez"]


def test_an_explicit_course_folder_or_db_wins(tmp_path):
    assert term.gradebook_url("postgresql://h/db", tmp_path, None, Term(root=tmp_path)) == "postgresql://h/db"
    assert term.gradebook_url(None, tmp_path / "nbg", tmp_path / "nbg", Term(root=tmp_path)).endswith("/nbg/gradebook.db")
    assert term.grading_dir("postgresql://h/db", tmp_path / "nbg") == tmp_path / "nbg"


def test_backups_are_consistent_copies_and_rotate(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert term.backup_before_bulk(url, changes=1) is None  # nothing to back up yet
    make_gradebook(url)
    assert term.backup_before_bulk(url, changes=0) is None  # nothing will change
    made = [term.backup_before_bulk(url, changes=3) for _ in range(term.KEEP_BACKUPS + 2)]
    kept = sorted((tmp_path / "backups").glob("gradebook-*.db"))
    assert len(kept) == term.KEEP_BACKUPS and kept == made[2:]
    assert students(kept[-1]) == ["Zoë Ñúñez"]


def test_grading_config_is_typed_and_checked(tmp_path):
    (tmp_path / "_config.yml").write_text(
        "course:\n  grading:\n    timezone: America/New_York\n    due:\n      1: 2026-10-05\n"
        "      02_two: '2026-10-12 09:00'\n    late_penalty: {percent_per_day: 5, max_percent: 25}\n")
    grading = load_config(tmp_path).grading
    assert grading.due_for("01_one", 1).isoformat() == "2026-10-05T23:59:59-04:00"
    assert grading.due_for("02_two", 2).isoformat() == "2026-10-12T09:00:00-04:00"
    assert grading.due_for("03_three", 3) is None
    assert (grading.late_penalty.percent_per_day, grading.late_penalty.max_percent) == (5.0, 25.0)
    for bad, message in (("gradebook: dist/gb.db", "must not lie under dist/"),
                         ("timezone: Mars/Olympus", "is not a time zone name"),
                         ("late_penalty: {percent_per_day: -1}", "must be a number >= 0"),
                         ("due: {1: soon}", "is not a date"),
                         ("deadline: 2026-10-05", "unknown setting")):
        (tmp_path / "_config.yml").write_text(f"course:\n  grading:\n    {bad}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path)
