"""Grader end to end beyond the adversarial batch: torch, no-sandbox mode, a killed grader that
resumes, Dask, and the real section 1."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import sandbox  # noqa: E402
from grader.cli import grade  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def read_rows(out: Path) -> dict:
    with open(out / "grades.csv") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


@pytest.fixture
def bwrap():
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")


def sandbox_processes() -> list[int]:
    """Processes running as a grader job uid (>= 1_000_000): none may outlive a batch."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1])
            if uid >= 1_000_000:
                found.append(int(entry))
    return found


def test_torch_section(tmp_path, bwrap):
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs = tmp_path / "subs"
    H = S.HONEST_TORCH
    S.write(subs, "honest", S.honest("91_torch"))
    # right on the public 2-D input, wrong on the hidden batched one
    S.write(subs, "partial", S.fill("91_torch", {**H, "solution-normalize_rows":
                                                 "def normalize_rows(x):\n    return x / x.norm(dim=1, keepdim=True)\n"}))
    S.write(subs, "blank", S.release("91_torch"))
    S.write(subs, "bomb", S.fill("91_torch", {**H, "solution-normalize_rows":
                                              "def normalize_rows(x):\n    return torch.ones(200_000, 200_000)\n"}))
    # torch.tensor(tensor) warns on stderr: nbgrader would give 0 for a correct answer
    S.write(subs, "warns", S.fill("91_torch", {**H, "solution-relu":
                                               "def relu(x):\n    return torch.tensor(x).clamp(min=0.0)\n"}))
    code = grade("91", subs, tmp_path / "out", workers=2, cell_timeout=30, timeout=240, memory_mb=1536,
                 course_dir=course)
    assert code == 0
    rows = read_rows(tmp_path / "out")
    got = {s: (float(r["score"]), r["test_normalize"], r["test_relu"], r["status"]) for s, r in rows.items()}
    assert got == {"honest": (3.0, "2", "1", "ok"), "partial": (1.0, "0", "1", "ok"),
                   "blank": (0.0, "0", "0", "ok"), "bomb": (1.0, "0", "1", "ok"), "warns": (3.0, "2", "1", "ok")}
    assert rows["partial"]["message"] == "test_normalize: failed (hidden tests)"
    page = (tmp_path / "out" / "feedback" / "bomb.html").read_text()
    assert "RuntimeError" in page and "memory" in page  # torch's own "can't allocate memory"
    assert sandbox_processes() == []


def test_unsafe_no_sandbox_says_so_everywhere(tmp_path):
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs = tmp_path / "subs"
    S.write(subs, "honest", S.honest("90_light"))
    S.write(subs, "hog", S.fill("90_light", {**S.HONEST_LIGHT, "solution-mean_of":
                                             "def mean_of(xs):\n    return len(bytearray(8 << 30))\n"}))
    db = tmp_path / "elsewhere" / "gradebook.sqlite"
    db.parent.mkdir()
    code = grade("90", subs, tmp_path / "out", cell_timeout=10, timeout=60, memory_mb=512,
                 unsafe_no_sandbox=True, course_dir=course, db=f"sqlite:///{db}")
    assert code == 0
    assert db.exists() and not (course / "gradebook.db").exists()  # --db takes any SQLAlchemy URL
    rows = read_rows(tmp_path / "out")
    assert (float(rows["honest"]["score"]), rows["honest"]["status"]) == (4.0, "ok")
    assert float(rows["hog"]["score"]) == 2.0  # the memory limit still applies
    for student in ("honest", "hog"):
        assert "UNSAFE: graded without a sandbox" in rows[student]["message"]
        assert "UNSAFE" in (tmp_path / "out" / "feedback" / f"{student}.html").read_text()


def test_whole_submission_timeout(tmp_path, bwrap):
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    slow = "import time\ntime.sleep(4)\n"
    S.write(tmp_path / "subs", "slow", S.fill("90_light", {k: slow + v for k, v in S.HONEST_LIGHT.items()}))
    start = time.monotonic()
    code = grade("90", tmp_path / "subs", tmp_path / "out", cell_timeout=6, timeout=10, course_dir=course)
    assert code == 0 and time.monotonic() - start < 60
    r = read_rows(tmp_path / "out")["slow"]
    assert r["status"] == "timeout" and float(r["score"]) < 4
    assert "stopped at the whole-submission time limit of 10 s" in r["message"]
    assert sandbox_processes() == []


def test_killed_grader_resumes_without_counting_twice(tmp_path, bwrap):
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs, out = tmp_path / "subs", tmp_path / "out"
    S.write(subs, "a_honest", S.honest("90_light"))
    S.write(subs, "b_partial", S.fill("90_light", {"solution-add": S.HONEST_LIGHT["solution-add"]}))
    # slow enough that the grader is still busy when it is killed
    S.write(subs, "c_slow", S.fill("90_light", {**S.HONEST_LIGHT, "solution-add":
                                                "import time\ntime.sleep(4)\n" + S.HONEST_LIGHT["solution-add"]}))
    S.write(subs, "d_honest", S.honest("90_light"))
    journal = out / ".grader-state" / "90_light"
    cmd = [sys.executable, "-m", "grader.cli", "90", str(subs), "--out", str(out), "--course-dir", str(course),
           "--cell-timeout", "20", "--timeout", "60"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    def csv_rows() -> int:  # the CSV is rewritten from the journal just after each journal entry
        try:
            return len(read_rows(out))
        except (FileNotFoundError, KeyError, ValueError):
            return 0

    while time.monotonic() < deadline and not (journal.is_dir() and len(list(journal.glob("*.json"))) >= 2
                                               and csv_rows() >= 2):
        time.sleep(0.2)
    assert proc.poll() is None, "the grader finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.stem: p.stat().st_mtime_ns for p in journal.glob("*.json")}
    assert set(first) == {"a_honest", "b_partial"}
    time.sleep(1.5)  # bubblewrap's --die-with-parent takes the running sandbox down
    assert sandbox_processes() == []
    assert sorted(read_rows(out)) == ["a_honest", "b_partial"]  # the CSV is complete as far as it got

    code = grade("90", subs, out, cell_timeout=20, timeout=60, course_dir=course)
    assert code == 0
    after = {p.stem: p.stat().st_mtime_ns for p in journal.glob("*.json")}
    assert {s: after[s] for s in first} == first  # graded students were skipped, not graded again
    rows = read_rows(out)
    assert {s: float(r["score"]) for s, r in rows.items()} == {
        "a_honest": 4.0, "b_partial": 1.0, "c_slow": 4.0, "d_honest": 4.0}
    assert len((out / "grades.csv").read_text().splitlines()) == 5
    from grader.autograde import _alembic_on_path
    from nbgrader.api import Gradebook

    _alembic_on_path()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs_db = gb.find_assignment("90_light").submissions
        assert sorted(s.student.id for s in subs_db) == ["a_honest", "b_partial", "c_slow", "d_honest"]
        assert sum(s.score for s in subs_db) == 13.0


def test_dask_local_cluster_two_workers(tmp_path, bwrap):
    from distributed import LocalCluster

    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs = tmp_path / "subs"
    S.write(subs, "honest", S.honest("90_light"))
    S.write(subs, "partial", S.fill("90_light", {"solution-add": S.HONEST_LIGHT["solution-add"]}))
    S.write(subs, "crash", S.fill("90_light", {**S.HONEST_LIGHT, "solution-add":
                                               "import os\ndef add(a, b):\n    os._exit(1)\n"}))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        code = grade("90", subs, tmp_path / "out", scheduler=cluster.scheduler_address, cell_timeout=20,
                     timeout=90, course_dir=course)
        workers = len(cluster.workers)
    assert code == 0 and workers == 2
    rows = read_rows(tmp_path / "out")
    assert {s: float(r["score"]) for s, r in rows.items()} == {"honest": 4.0, "partial": 1.0, "crash": 3.0}
    assert rows["crash"]["message"].startswith("test_add: crashed (the kernel died)")


SECTION1 = sorted(REPO.glob("source_exercises/01_*.py"))


def section1_batch(dist: Path, subs: Path) -> dict:
    """solution / blank / partial / hostile submissions of the built section 1 -> expected score."""
    from grader.section import find_section_files, read_section_spec

    spec = read_section_spec(*find_section_files("1", dist / "nbgrader")[1:])
    source = nbformat.read(str(dist / "nbgrader" / "source" / spec.stem / f"{spec.stem}.ipynb"), 4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    last = spec.solution_ids[-1]
    order = [c.ref for c in spec.skeleton]
    lost = sum(t.points for t in spec.tests.values() if order.index(t.grade_id) > order.index(last))

    def make(answer_for) -> nbformat.NotebookNode:
        nb = nbformat.read(str(dist / "exercises" / f"{spec.stem}.ipynb"), 4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answer_for(gid, cell.source)
        return nb

    S.write(subs, "solution", make(lambda gid, stub: answers[gid]))
    S.write(subs, "blank", make(lambda gid, stub: stub))
    S.write(subs, "partial", make(lambda gid, stub: stub if gid == last else answers[gid]))
    # the last answer left wrong, every test helper patched to pass, tracebacks and stderr silenced
    hostile = ("\nassert_close = assert_shape = assert_true = lambda *a, **k: None\n"
               "get_ipython().showtraceback = lambda *a, **k: None\nimport sys, os\n"
               "sys.stderr = open(os.devnull, 'w')\n")
    S.write(subs, "hostile", make(lambda gid, stub: stub + hostile if gid == last else answers[gid]))
    return {"solution": spec.max_score, "blank": 0.0, "partial": spec.max_score - lost,
            "hostile": spec.max_score - lost}


@pytest.mark.skipif(not SECTION1, reason="section 1 is not written yet")
def test_real_section_1(tmp_path, bwrap):
    """The course's own section 1, split by the real build, graded in one batch."""
    from build_tools.api import split_section
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        info = split_section("1", tmp_path / "dist", root=REPO)
    except BaseException as exc:  # noqa: BLE001 - the section is being written by someone else
        pytest.skip(f"section 1 does not build right now: {exc}")
    for cell in nbformat.read(str(info["exercise"]), 4).cells:
        if cell.cell_type == "code" and not cell.metadata.get("course", {}).get("skip_grading"):
            try:
                compile(TransformerManager().transform_cell(cell.source), cell.get("id", "?"), "exec")
            except SyntaxError as exc:  # not the grader's to fix: report it, do not hide it
                pytest.skip(f"build bug: exercise cell {cell.get('id')} of section 1 does not compile ({exc})")
    expected = section1_batch(tmp_path / "dist", tmp_path / "subs")
    start = time.monotonic()
    code = grade("1", tmp_path / "subs", tmp_path / "out", workers=2, cell_timeout=120, timeout=480,
                 course_dir=tmp_path / "dist" / "nbgrader")
    took = time.monotonic() - start
    rows = read_rows(tmp_path / "out")
    assert code == 0
    assert {s: float(r["score"]) for s, r in rows.items()} == expected
    assert all(r["status"] == "ok" for r in rows.values())
    assert "flagged for review" in rows["hostile"]["message"]
    assert took < 420
