"""Ctrl-C or SIGTERM while grading: every sandbox is killed, graded students stay recorded, exit 130."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import sandbox  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def job_processes() -> list[int]:
    """Processes whose command line is one of a sandbox's (bubblewrap, zygote, driver, kernel)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"grader.zygote" in cmd or b"grader.driver" in cmd or b"grader.kernel_launch" in cmd:
                found.append(int(proc.name))
    return found


def test_sigterm_kills_every_sandbox_and_keeps_what_was_graded(tmp_path):
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    before = set(job_processes())
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs, out = tmp_path / "subs", tmp_path / "out"
    S.write(subs, "a_honest", S.honest("90_light"))
    S.write(subs, "b_slow", S.fill("90_light", {**S.HONEST_LIGHT, "solution-add":
                                                "import time\ntime.sleep(60)\n" + S.HONEST_LIGHT["solution-add"]}))
    journal = out / ".grader-state" / "90_light"
    cmd = [sys.executable, "-m", "grader.cli", "90", str(subs), "--out", str(out), "--course-dir", str(course),
           "--cell-timeout", "120", "--timeout", "200"]
    proc = subprocess.Popen(cmd, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and proc.poll() is None and not (journal / "a_honest.json").exists():
        time.sleep(0.2)
    time.sleep(2)  # b_slow is asleep in its sandbox now
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "interrupted: students graded so far are recorded" in output
    assert sorted(p.stem for p in journal.glob("*.json")) == ["a_honest"]
    time.sleep(0.5)
    assert set(job_processes()) - before == set()
