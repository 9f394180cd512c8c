"""Grade one prepared submission in a sandbox: `grade_in_sandbox(job, limits)` → `RunOutcome`.

The job runs in a warm sandbox of this process (`pool.py`) when there is one for it, else in a
cold one: a bubblewrap sandbox (`bwrap.py`) whose only process is `python -m grader.driver`,
the job on its stdin, its events on stdout. The host watches the deadline and the tree's memory
(`watchdog.py`) and kills the whole tree at the end, whatever happened. When the submission kills
its own driver, the rest of it is graded in a fresh sandbox, skipping the cell that did it.

Verdicts are checked against a key generated here, so a job that runs on a remote Dask worker
never sends its key over the network.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
import tempfile
import time

from . import pool
from .bwrap import GRADER_DIR, WORKDIR, bwrap_argv, sandbox_env, sandbox_problem  # noqa: F401 - API
from .limits import Limits
from .pool import WarmSandbox, kill_all_live  # noqa: F401 - API
from .protocol import Job, encode_job, parse_verdict
from .streams import EventReader, SandboxRun, keep_tail
from .watchdog import Watchdog


@dataclasses.dataclass
class RunOutcome:
    status: str  # ok | timeout | aborted | error
    verdicts: dict  # test id -> Verdict
    cells: dict  # cell index -> the last "cell" event's fields (a dict)
    notes: list
    elapsed: float
    restarts: int = 0
    output_truncated: bool = False
    sandbox: str = "bwrap"
    invalid_verdicts: int = 0
    kernel_secs: list = dataclasses.field(default_factory=list)  # start-up time of each kernel


def run_cold(job: Job, limits: Limits, unsafe: bool, deadline: float) -> SandboxRun:
    """One driver process in a sandbox of its own (or, unsafe, in a scratch folder), start to end."""
    uid = None
    scratch = None
    if unsafe:
        scratch = tempfile.mkdtemp(prefix="course-grader-")
        work = os.path.join(scratch, "home")
        os.mkdir(work)
        job = job.replace(uid=None, isolated=False, scratch=scratch, workdir=work,
                          env=sandbox_env(work, scratch, job.data))
        argv = [sys.executable, "-m", "grader.driver"]
        env, cwd = {**job.env, "PYTHONPATH": str(GRADER_DIR.parent)}, work
    else:
        privileged = os.geteuid() == 0
        uid = pool.allocate_uid() if privileged else None
        job = job.replace(uid=uid, isolated=True, scratch="/tmp", workdir=WORKDIR,
                          env=sandbox_env(WORKDIR, "/tmp", job.data))
        argv = bwrap_argv(limits, privileged, job.data) + [sys.executable, "-m", "grader.driver"]
        env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "/"
    try:
        proc = pool.start_sandbox(argv, env, cwd)
        reader = EventReader(proc.stdout)
        reader.start()
        err_tail = keep_tail(proc.stderr)
        try:
            proc.stdin.write(encode_job(job))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        how = None
        watch = Watchdog(proc.pid, limits)
        while proc.poll() is None:
            how = watch.check(deadline)
            if how:
                break
            time.sleep(0.2)
        pool.end_sandbox(proc)
        reader.join(timeout=5)
        return SandboxRun(events=reader.events, how=how, returncode=proc.returncode,
                          stderr=err_tail[0].decode("utf-8", "replace"))
    finally:
        pool.release_uid(uid)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


class Tally:
    """Folds the events of one or more runs of a job into what the grade is built from."""

    def __init__(self, job: Job, key: bytes) -> None:
        self.job, self.key = job, key
        self.verdicts: dict = {}
        self.cells: dict = {}
        self.invalid = self.restarts = 0
        self.truncated = False
        self.kernel_secs: list = []
        self.done_tests: set = set(job.done_tests)
        self.killers: set = set(job.killers)

    def add(self, run: SandboxRun) -> tuple[int | None, bool, str | None]:
        """Returns (the cell running when the run ended, whether the driver finished, its fatal error)."""
        started, finished, fatal = None, False, None
        for ev in run.events:
            if ev.ev == "verdict":
                v = parse_verdict(ev.line, self.key)
                if v is None or v.test not in self.job.tests:
                    self.invalid += 1
                elif v.test not in self.verdicts or v.status == "fail":  # two for one test: a failure wins
                    self.verdicts[v.test] = v
            elif ev.ev == "start":
                started = ev.i
            elif ev.ev == "cell" and ev.i is not None:
                self.cells[ev.i] = {k: v for k, v in ev.as_dict().items()
                                    if k in ("ev", "i", "status", "ename", "evalue", "secs", "outputs")}
                started = None
                if self._is_test(ev.i):
                    self.done_tests.add(self.job.cells[ev.i].ref)
            elif ev.ev == "restart":
                self.restarts += 1
            elif ev.ev == "kernel":
                self.kernel_secs.append(ev.secs)
            elif ev.ev == "done":
                finished = True
                self.truncated = self.truncated or ev.output_truncated
            elif ev.ev == "fatal":
                fatal = ev.message[:300]
        return started, finished, fatal

    def _is_test(self, i: int) -> bool:
        return 0 <= i < len(self.job.cells) and self.job.cells[i].kind == "test"

    def killed_by(self, i: int) -> None:
        """Cell i killed the driver: never run again; its test (if it is one) is over."""
        self.killers.add(i)
        if self._is_test(i):
            self.done_tests.add(self.job.cells[i].ref)
        self.cells.setdefault(i, {"ev": "cell", "i": i, "status": "killed-sandbox", "outputs": []})


def with_grading_settings(job: Job, limits: Limits, key: bytes) -> Job:
    return job.replace(key=key.hex(), harness=(GRADER_DIR / "harness.py").read_text(),
                       cell_timeout=limits.cell_timeout, interrupt_grace=limits.grace,
                       kernel_start_timeout=limits.kernel_start_timeout, max_restarts=limits.max_restarts,
                       output_per_cell=limits.output_per_cell, output_total=limits.output_total,
                       driver_rlimits=limits.driver_rlimits, kernel_rlimits=limits.kernel_rlimits)


def grade_in_sandbox(job: Job, limits: Limits, unsafe: bool = False) -> RunOutcome:
    """Execute a prepared job (see autograde.prepare_job) and return what happened."""
    key = secrets.token_bytes(32)
    job = with_grading_settings(job, limits, key)
    start = time.monotonic()
    deadline = start + limits.timeout
    tally = Tally(job, key)
    notes: list = []
    status = "ok"
    for attempt in range(limits.max_relaunches + 1):
        run = None
        if limits.warm and not unsafe:
            run = pool.run_warm(job, limits, deadline)
        if run is None:
            run = run_cold(job, limits, unsafe, deadline)
        started, finished, fatal = tally.add(run)
        if finished:
            break
        if run.how == "timeout":
            status = "timeout"
            where = f" (while running cell {started})" if started is not None else ""
            notes.append(f"stopped at the whole-submission time limit of {limits.timeout:g} s{where}")
            break
        if run.how == "memory":
            status = "aborted"
            notes.append(f"stopped: the submission's processes used more than {limits.memory_mb} MB together")
            break
        if started is None:  # no cell was running: the grader itself failed
            if fatal:
                status = "aborted" if tally.cells else "error"
                notes.append(f"grading failed: {fatal}")
                if run.stderr.strip():
                    notes.append(run.stderr.strip()[-300:])
            else:
                status = "error"
                notes.append(f"the sandbox exited unexpectedly (exit {run.returncode}): {run.stderr.strip()[-300:]}")
            break
        # The driver was killed while a cell ran (e.g. the submission killed its parent): grade
        # the rest in a fresh sandbox, skipping the cell that did it.
        tally.killed_by(started)
        notes.append(f"cell {started} killed the grading process; the rest was graded in a fresh sandbox")
        if attempt == limits.max_relaunches:
            status = "aborted"
            notes.append("gave up after the submission killed the grading process repeatedly")
            break
        job = job.replace(start_index=started + 1, killers=sorted(tally.killers), done_tests=sorted(tally.done_tests))
    return RunOutcome(status=status, verdicts=tally.verdicts, cells=tally.cells, notes=notes,
                      elapsed=round(time.monotonic() - start, 3), restarts=tally.restarts,
                      output_truncated=tally.truncated, sandbox="none" if unsafe else "bwrap",
                      invalid_verdicts=tally.invalid, kernel_secs=tally.kernel_secs)
