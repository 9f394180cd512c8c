"""The grader needs no torch: a course whose sections import only the standard library grades in a
virtual environment where torch is not installed (the tooling's own dependencies, no course's)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import sandbox  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
TORCH_DISTRIBUTIONS = ("torch", "functorch", "torchgen")


def venv_without_torch(dest: Path) -> Path:
    """This venv, hard-linked (seconds, no copy), less torch. Returns its interpreter."""
    subprocess.run(["cp", "-al", sys.prefix, str(dest)], check=True)
    for site in dest.glob("lib/python3*/site-packages"):
        for entry in site.iterdir():
            if entry.name.split("-")[0].split(".")[0] in TORCH_DISTRIBUTIONS:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return dest / "bin" / "python"


def test_a_torch_free_section_grades_in_a_venv_without_torch(tmp_path):
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    python = venv_without_torch(tmp_path / "venv")
    probe = subprocess.run([str(python), "-c", "import sys, torch; print(sys.prefix)"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs, out = tmp_path / "subs", tmp_path / "out"
    S.write(subs, "honest", S.honest("90_light"))
    S.write(subs, "partial", S.fill("90_light", {**S.HONEST_LIGHT, "solution-add": "def add(a, b):\n    return 0\n"}))
    script = ("import sys\nfrom grader.cli import grade\n"
              f"code = grade('90', {str(subs)!r}, {str(out)!r}, workers=1, cell_timeout=20, timeout=120, "
              f"memory_mb=512, course_dir={str(course)!r})\n"
              "print('torch' in sys.modules)\nsys.exit(code)\n")
    run = subprocess.run([str(python), "-c", script], cwd=HERE.parent, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "False"  # the host never imported it either
    with open(out / "grades.csv") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert {s: (float(r["score"]), r["status"]) for s, r in rows.items()} == {"honest": (4.0, "ok"),
                                                                             "partial": (3.0, "ok")}
