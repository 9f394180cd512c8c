"""Fast grader tests: no kernel, no sandbox."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import autograde, export, feedback, intake, sandbox  # noqa: E402
from grader.section import find_section_files, read_section_spec  # noqa: E402

COURSE = S.DIST / "nbgrader"


@pytest.fixture(scope="module")
def spec():
    stem, release, source = find_section_files("90", COURSE)
    return read_section_spec(release, source)


def test_section_spec_reads_tests_points_and_hidden_blocks(spec):
    assert spec.stem == "90_light" and spec.number == 90
    assert {t: s.points for t, s in spec.tests.items()} == {"test_add": 1.0, "test_mean": 2.0, "test_series": 1.0}
    assert spec.max_score == 4.0
    assert spec.tests["test_add"].hidden_ranges == [(2, 5)]
    assert spec.tests["test_series"].hidden_ranges == []
    assert spec.solution_ids == ["solution-add", "solution-mean_of", "solution-partial_sum"]
    kinds = [(c.kind, c.skip) for c in spec.skeleton]
    assert ("param", False) in kinds
    skipped = [c.source for c in spec.skeleton if c.skip]
    assert any("time.sleep(120)" in s for s in skipped)  # skip_grading
    assert any(s.startswith("# Setup") for s in skipped)  # the Colab install cell
    # hidden lines and literals are secrets, public ones are not
    assert 'check_equal(add(-5, 5), 0, "add(-5, 5)")' in spec.secrets
    assert "HIDDEN-SENTINEL-MEAN empty list" in spec.secrets
    assert not any("add(1, 2)" == s for s in spec.secrets)


def test_section_selectors(spec):
    for sel in ("90", "90_light", "90_l"):
        assert find_section_files(sel, COURSE)[0] == "90_light"
    with pytest.raises(Exception, match="matches nothing"):
        find_section_files("5", COURSE)


def test_scrubber_finds_hidden_lines_however_they_are_reformatted(spec):
    scrub = feedback.Scrubber(spec.secrets)
    line = 'check_equal(add(10**6, 7), 1000007, "HIDDEN-SENTINEL-ADD large numbers")'
    for leak in (line, line.replace(" ", ""), line.replace('"', '\\"'), f"got ['{line}']",
                 "HIDDEN - SENTINEL - ADD  large\nnumbers"):
        out = scrub(f"AssertionError: {leak} (end)")
        assert "SENTINEL" not in out and "[hidden]" in out, out
        assert out.endswith("(end)")
    public = "add(1, 2): expected 3, got -1"
    assert scrub(public) == public


def test_feedback_shows_public_messages_and_hides_hidden_ones(spec):
    results = {"test_add": {"status": "failed", "where": "public", "message": "AssertionError: add(1, 2): expected 3, got -1"},
               "test_mean": {"status": "failed", "where": "hidden", "message": "should never be shown"},
               "test_series": {"status": "passed", "where": "", "message": ""}}
    row = {"score": 1.0, "max_score": 4.0, "status": "ok", "message": ""}
    page = feedback.render("alice", "Fixture", row, results, {"test_series": 1.0},
                           {"test_add": 1, "test_mean": 2, "test_series": 1}, ["a note"],
                           feedback.Scrubber(spec.secrets), unsafe=True)
    assert "expected 3, got -1" in page and "should never be shown" not in page
    assert "hidden test" in page and "UNSAFE" in page and "a note" in page


def test_feedback_page_that_would_leak_is_scrubbed_anyway(spec):
    scrub = feedback.Scrubber(spec.secrets)
    row = {"score": 0.0, "max_score": 4.0, "status": "ok", "message": ""}
    page = feedback.render("HIDDEN-SENTINEL-ADD large numbers", "t", row, {}, {}, {}, [], scrub, False)
    assert "SENTINEL" not in page


def test_verdict_lines_need_the_key():
    key = b"k" * 32
    body = "CGV1 test_add n0nce pass - - - 0.010"
    good = f"{body} {hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}"
    assert sandbox.parse_verdict(good, key)["status"] == "pass"
    assert sandbox.parse_verdict(good.replace("pass", "fail", 1), key) is None
    assert sandbox.parse_verdict(good, b"x" * 32) is None
    assert sandbox.parse_verdict("garbage", key) is None
    msg = "boom".encode().hex()
    body = f"CGV1 test_add n pass public {'AssertionError'.encode().hex()} {msg} 1.5"
    v = sandbox.parse_verdict(f"{body} {hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}", key)
    assert (v["ename"], v["message"], v["where"]) == ("AssertionError", "boom", "public")


def _bytes(nb) -> bytes:
    return nbformat.writes(nb).encode()


def test_intake_folder_layouts(tmp_path):
    d = tmp_path / "subs"
    S.write(d, "alice", S.honest("90_light"))
    (d / "bob" / "work").mkdir(parents=True)
    (d / "bob" / "work" / "mine.ipynb").write_bytes(_bytes(S.honest("90_light")))
    (d / "bob" / ".ipynb_checkpoints").mkdir()
    (d / "bob" / ".ipynb_checkpoints" / "mine-checkpoint.ipynb").write_text("{}")
    (d / "carol").mkdir()
    (d / "carol" / "other.ipynb").write_bytes(_bytes(S.honest("91_torch")))
    (d / "carol" / "90_light.ipynb").write_bytes(_bytes(S.honest("90_light")))
    (d / "dave.ipynb").write_bytes(b"\xff\xfe not json")
    subs = {s.student: s for s in intake.discover(d, "90_light")}
    assert sorted(subs) == ["alice", "bob", "carol", "dave"]
    assert subs["alice"].nb is not None and subs["alice"].error is None
    assert subs["bob"].source.endswith("mine.ipynb") and not subs["bob"].notes
    assert subs["carol"].source.endswith("90_light.ipynb")
    assert "2 notebooks found" in subs["carol"].notes[0]
    assert subs["dave"].error.startswith("not a notebook")


def test_intake_zip_with_a_wrapping_folder(tmp_path):
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("course-export/alice.ipynb", _bytes(S.honest("90_light")))
        zf.writestr("course-export/bob/submission.ipynb", _bytes(S.release("90_light")))
        zf.writestr("course-export/../../evil/eve.ipynb", b"")
        zf.writestr("__MACOSX/course-export/._alice.ipynb", b"junk")
    subs = {s.student: s for s in intake.discover(z, "90_light")}
    assert sorted(subs) == ["alice", "bob", "evil"]
    assert subs["alice"].nb is not None and subs["bob"].nb is not None
    assert subs["evil"].error.startswith("empty file")
    assert not (tmp_path.parent / "evil").exists()  # nothing is extracted


def test_intake_v3_upgrade_and_limits(tmp_path, monkeypatch):
    nb, err, notes = intake.parse_notebook(S.as_v3(S.honest("90_light")).encode())
    assert err is None and notes == ["upgraded from nbformat 3"]
    assert nb.nbformat == 4 and all(c.get("id") for c in nb.cells)
    assert any(c.metadata.get("nbgrader", {}).get("grade_id") == "solution-add" for c in nb.cells)
    assert intake.parse_notebook(b"[1, 2]")[1] == "not a notebook: valid JSON, but no 'nbformat' field"
    assert "nbformat 7" in intake.parse_notebook(b'{"nbformat": 7}')[1]
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 1000)
    S.write(tmp_path, "big", S.honest("90_light"))
    (sub,) = intake.discover(tmp_path, "90_light")
    assert sub.error.startswith("file too large")


def test_prepare_job_rebuilds_the_notebook_on_the_release_skeleton(spec):
    nb = S.fill("90_light", {"solution-add": "def add(a, b):\n    return a + b\n"},
                added=[("solution-add", "helper = 1")])
    nb.cells.insert(0, nbformat.v4.new_code_cell("scratch = 0"))
    instructor = next(c for c in nb.cells if "def check_equal" in c.source)
    instructor.source = "def check_equal(*a, **k):\n    pass\n"  # edited in place: ignored
    test_add = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add")
    test_add.source = "pass"
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "solution-partial_sum"]
    prep = autograde.prepare_job(nb, spec)
    cells = prep.job["cells"]
    kinds = [(c["kind"], c["ref"]) for c in cells]
    assert kinds == [("param", "cell-2"), ("param", "injected-parameters"), ("instructor", "cell-3"),
                     ("added", "added"), ("solution", "solution-add"), ("added", "added"), ("test", "test_add"),
                     ("solution", "solution-mean_of"), ("test", "test_mean"),
                     ("solution", "solution-partial_sum"), ("test", "test_series")]
    assert cells[1]["code"].endswith("FAST = True\n")
    assert "def check_equal(actual, expected, name)" in cells[2]["code"]  # the instructor's version
    assert cells[9]["code"] == spec.skeleton[[c.ref for c in spec.skeleton].index("solution-partial_sum")].source
    assert "answer cell solution-partial_sum is missing" in prep.notes[0]
    assert prep.answered == 1
    assert prep.job["tests"]["test_add"]["code"].count("HIDDEN-SENTINEL-ADD") == 1
    assert all(c["code"] == "" for c in cells if c["kind"] == "test")  # tests travel separately
    notes = autograde.test_cell_changes(nb, spec)
    assert notes == ["edited test cells were restored: test_add"]


def test_suspicious_constructs_are_flagged():
    assert autograde.suspicious_constructs("import ctypes\nsys._getframe(1).f_globals") == [
        "ctypes", "frame objects", "sys._getframe"]
    assert autograde.suspicious_constructs("def add(a, b):\n    return a + b") == []


def test_csv_is_atomic_and_formula_safe(tmp_path):
    rows = [{"student": "=cmd|calc", "section": "s", "score": 1.0, "max_score": 2.0,
             "tests": {"t1": 1.0}, "status": "ok", "message": "-1 point"}]
    path = tmp_path / "grades.csv"
    export.write_csv(path, rows, ["t1", "t2"])
    got = list(csv.reader(io.StringIO(path.read_text())))
    assert got[0] == ["student", "section", "score", "max_score", "t1", "t2", "status", "message"]
    assert got[1] == ["'=cmd|calc", "s", "1", "2", "1", "", "ok", "'-1 point"]
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_check_section_errors(spec):
    nb = S.honest("91_torch")
    with pytest.raises(autograde.SubmissionError, match="for section 91_torch, not 90_light"):
        autograde.check_submission_matches(nb, spec)
    nb = S.honest("90_light")
    nb.metadata.pop("course")
    for c in nb.cells:
        c.metadata.pop("nbgrader", None)
    with pytest.raises(autograde.SubmissionError, match="no nbgrader metadata"):
        autograde.check_submission_matches(nb, spec)


def test_refuses_without_bubblewrap(tmp_path, monkeypatch, capsys):
    from grader.cli import grade

    monkeypatch.setenv("COURSE_GRADER_BWRAP", str(tmp_path / "no-such-bwrap"))
    sandbox.sandbox_problem.cache_clear()
    try:
        S.write(tmp_path / "subs", "alice", S.honest("90_light"))
        code = grade("90", tmp_path / "subs", tmp_path / "out", course_dir=S.copy_dist(tmp_path / "d") / "nbgrader")
    finally:
        sandbox.sandbox_problem.cache_clear()
    assert code == 2
    out = capsys.readouterr().out
    assert "Refusing to grade without a sandbox" in out and "--unsafe-no-sandbox" in out
    assert not (tmp_path / "out").exists()


def test_course_cli_registers_grade():
    from typer.testing import CliRunner

    try:
        from build_tools.cli import app
    except ImportError:
        pytest.skip("the course CLI is not there")
    result = CliRunner().invoke(app, ["grade", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--out", "--workers", "--scheduler", "--cell-timeout", "--timeout", "--memory-mb", "--db",
                   "--unsafe-no-sandbox", "--course-dir"):
        assert option in result.output


def test_declared_course_data_is_visible_read_only_in_the_sandbox(tmp_path):
    """A section that declares `data: [lm]` gets that folder of the course root (as `_config.yml`
    defines it) read-only in the sandbox, its variable pointing at the bound path: section 7 loads
    its model from COURSE_LM_ASSETS, graded offline."""
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    import copy
    import subprocess

    from grader.protocol import DataBind
    from grader.section import SectionError, resolve_data

    root = tmp_path / "course"
    (root / "source_exercises").mkdir(parents=True)
    (root / "_config.yml").write_text("course:\n  data:\n    lm:\n      path: assets/lm\n"
                                      "      env: COURSE_LM_ASSETS\n")
    assets = root / "assets" / "lm"
    assets.mkdir(parents=True)
    (assets / "manifest.json").write_text('{"files": {}}')
    stem, release, source = find_section_files("90", COURSE)
    spec = read_section_spec(release, source)
    assert spec.data_names == [] and resolve_data(spec, root / "dist" / "nbgrader") == []
    spec.data_names = ["lm"]
    binds = resolve_data(spec, root / "dist" / "nbgrader")
    assert binds == [DataBind(str(assets), "/opt/course-data/lm", "COURSE_LM_ASSETS")]
    code = ("import os, pathlib\np = pathlib.Path(os.environ['COURSE_LM_ASSETS'])\n"
            "print(p, (p / 'manifest.json').read_text())\n"
            "try:\n    (p / 'x').write_text('x')\n    print('WRITABLE')\nexcept OSError:\n    print('read-only')\n")
    argv = sandbox.bwrap_argv(sandbox.Limits(), privileged=False, data=binds) + [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ['/opt/course-data/lm {"files": {}}', "read-only"], (out.stdout, out.stderr)
    assert not (assets / "x").exists()
    # an unsafe run points the variable at the host folder; a section without data gets no variable
    assert sandbox.sandbox_env("/scratch/home", "/scratch", binds)["COURSE_LM_ASSETS"] == str(assets)
    assert "COURSE_LM_ASSETS" not in sandbox.sandbox_env(sandbox.WORKDIR, "/tmp")
    # a folder the course does not declare: a clear refusal, not a section failing in the sandbox
    other = copy.copy(spec)
    other.data_names = ["corpus"]
    with pytest.raises(SectionError, match=r"reads the data folders \['corpus'\]"):
        resolve_data(other, root / "dist" / "nbgrader")


def test_section_metadata_declares_its_data_folders():
    """The build writes a section's `data:` header into its notebooks, where the grader reads it."""
    from build_tools import pipeline
    from build_tools.source import load_section as load_source

    section = load_source(next((HERE.parent / "source_exercises").glob("07_*.py")))
    assert pipeline.exercise_notebook(section).metadata["course"]["data"] == ["lm"]


def test_warm_sandbox_clean_up_keeps_the_baseline_and_removes_the_rest(tmp_path, monkeypatch):
    """What bubblewrap put in a writable folder before the first job (folders leading to read-only
    binds, when the venv lives under /tmp) stays, with its modes; everything a job added goes."""
    from grader import zygote

    folder = tmp_path / "tmp"
    (folder / "clone" / "venv").mkdir(parents=True)
    (folder / "clone" / "venv" / "python").write_text("interpreter")
    (folder / "clone").chmod(0o755)
    baseline = zygote.tree(str(folder))
    monkeypatch.setattr(zygote, "BASELINE", baseline)
    # what a job leaves: files, a locked folder, a folder inside the baseline, a changed mode
    (folder / "junk.txt").write_text("x")
    (folder / "locked" / "inner").mkdir(parents=True)
    (folder / "locked" / "inner" / "f").write_text("x")
    (folder / "locked" / "inner").chmod(0)
    (folder / "locked").chmod(0o500)
    (folder / "clone" / "planted.py").write_text("x")
    (folder / "clone").chmod(0o700)
    assert zygote.tree(str(folder)) != baseline
    zygote._empty(str(folder))
    assert zygote.tree(str(folder)) == baseline
    assert (folder / "clone" / "venv" / "python").read_text() == "interpreter"
