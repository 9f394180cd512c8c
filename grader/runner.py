"""Grade a batch: intake → sanitise → sandboxed runs (local threads or Dask) → gradebook, feedback, CSV.

Only sandbox runs are farmed out (`sandbox.grade_in_sandbox` is a plain function of plain data, so a
Dask worker anywhere can run it, with its own bubblewrap). Everything that touches the gradebook
or the output folder happens here, in one thread, as results arrive: SQLite never sees two
writers, and the journal/CSV are updated after each student.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import dataclasses
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import nbformat

from . import autograde, export, feedback, manual
from .intake import Submission
from .limits import Limits
from .pool import kill_all_live, prewarm
from .protocol import DataBind, Job
from .sandbox import RunOutcome, grade_in_sandbox
from .section import SectionSpec


@dataclasses.dataclass
class Settings:
    limits: Limits
    out: Path
    course_dir: Path
    db_url: str
    workers: int = 1
    scheduler: str | None = None
    unsafe: bool = False


@dataclasses.dataclass
class BatchResult:
    rows: list[dict]
    graded: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    run_times: list[float] = dataclasses.field(default_factory=list)

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts

    @property
    def mean_score(self) -> float | None:
        scores = [r["score"] for r in self.rows if r["status"] != "error"]
        return statistics.fmean(scores) if scores else None


def _local_pool(settings: Settings, preimport: list[str], data: list[DataBind]) -> cf.ThreadPoolExecutor:
    """The local workers, started before the batch is prepared: each one first starts its warm
    sandbox (~3 s: torch and the rest imported), while this thread sanitises the submissions."""
    pool = cf.ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="grade")
    if settings.limits.warm and not settings.unsafe:
        for _ in range(max(1, settings.workers)):
            pool.submit(prewarm, settings.limits, preimport, data)
    return pool


def _local(items: list[tuple[str, Job]], settings: Settings,
           pool: cf.ThreadPoolExecutor | None = None) -> Iterator[tuple[str, object]]:
    pool = pool or cf.ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="grade")
    futures = {pool.submit(grade_in_sandbox, job, settings.limits, settings.unsafe): key for key, job in items}
    try:
        for fut in cf.as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except Exception as exc:  # noqa: BLE001 - one broken job never stops the batch
                yield futures[fut], exc
    finally:
        for fut in futures:
            fut.cancel()
        kill_all_live()
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(items: list[tuple[str, Job]], settings: Settings) -> Iterator[tuple[str, object]]:
    from distributed import Client, as_completed

    with Client(settings.scheduler, timeout=60) as client:
        futures = {client.submit(grade_in_sandbox, job, settings.limits, settings.unsafe, pure=False, retries=0): key
                   for key, job in items}
        try:
            for fut in as_completed(futures):
                try:
                    yield futures[fut], fut.result()
                except Exception as exc:  # noqa: BLE001
                    yield futures[fut], exc
        finally:
            client.cancel(list(futures))


def _signature(spec: SectionSpec, settings: Settings) -> str:
    lim = settings.limits
    return f"{spec.digest}|{lim.cell_timeout:g}|{lim.timeout:g}|{lim.memory_mb}|{int(settings.unsafe)}"


class Batch:
    def __init__(self, spec: SectionSpec, settings: Settings) -> None:
        self.spec = spec
        self.s = settings
        self.scrub = feedback.Scrubber(spec.secrets)
        self.journal = export.Journal(settings.out, spec.stem)
        self.sig = _signature(spec, settings)
        self.rows: dict[str, dict] = {}
        self.gradebook = None  # one nbgrader Gradebook for the batch, opened on first use

    # ---- rows --------------------------------------------------------------------------------
    def _row(self, student, status, score, per_test, message) -> dict:
        parts = [message] if message else []
        if self.s.unsafe:
            parts.append("UNSAFE: graded without a sandbox (--unsafe-no-sandbox)")
        text = feedback.clip(self.scrub("; ".join(parts)), 1000)
        return {"student": student, "section": self.spec.stem, "score": float(score),
                "max_score": self.spec.max_score, "tests": per_test, "status": status, "message": text}

    def _finish(self, sub: Submission, row: dict, results: dict, notes: list[str], retry: bool,
                elapsed: float | None, graded_nb=None) -> None:
        stem = self.spec.stem
        points = row["tests"]
        maxima = {t: s.points for t, s in self.spec.tests.items()}
        page = feedback.render(sub.student, f"{self.spec.title} ({stem})", row, results, points, maxima,
                               notes, self.scrub, self.s.unsafe)
        export.atomic_write(self.s.out / "feedback" / f"{sub.disk}.html", page)
        if graded_nb is not None:
            path = self.s.course_dir / "autograded" / sub.disk / stem / f"{stem}.ipynb"
            export.atomic_write(path, nbformat.writes(graded_nb))
        self.journal.put(sub.student, {"student": sub.student, "sha256": sub.sha256, "signature": self.sig,
                                       "row": row, "results": results, "retry": retry, "elapsed": elapsed,
                                       "source": sub.source, "time": time.time(), "intake": sub.intake_record()})
        self.rows[sub.student] = row
        export.write_csv(self.s.out / "grades.csv", list(self.rows.values()), self.spec.test_ids)

    def _record(self, student: str, nb) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings
            if self.gradebook is None:
                from nbgrader.api import Gradebook

                self.gradebook = Gradebook(self.s.db_url)
            try:
                return autograde.record(self.spec, self.s.db_url, student, nb, self.gradebook)
            except BaseException:
                self.close()  # the next student starts from a fresh connection
                raise

    def close(self) -> None:
        if self.gradebook is not None:
            self.gradebook.close()
            self.gradebook = None

    def error(self, sub: Submission, message: str, retry: bool = False) -> None:
        """A submission that cannot be graded: 0 points in the gradebook, the reason everywhere."""
        results = {t: {"status": "not run", "where": "", "message": ""} for t in self.spec.tests}
        prep = autograde.Prepared(job=None, test_cells={})
        nb = autograde.graded_notebook(self.spec, prep, results)
        recorded = self._record(sub.student, nb)
        row = self._row(sub.student, "error", recorded["score"], recorded["grades"], message)
        self._finish(sub, row, results, [*sub.notes, message], retry, None)

    def done(self, sub: Submission, prep: autograde.Prepared, outcome: RunOutcome | Exception) -> float | None:
        if isinstance(outcome, Exception):
            self.error(sub, f"grading failed: {type(outcome).__name__}: {outcome}", retry=True)
            return None
        results = autograde.test_results(prep, outcome)
        nb = manual.copy_written_answers(autograde.graded_notebook(self.spec, prep, results, outcome), sub.nb)
        recorded = self._record(sub.student, nb)
        notes = list(sub.notes) + list(prep.notes) + list(outcome.notes)
        for i, cell in enumerate(prep.job.cells):
            status = outcome.cells.get(i, {}).get("status")
            if cell.kind in ("solution", "added") and status not in (None, "ok"):
                what = {"error": f"raised {outcome.cells[i].get('ename') or 'an error'}", "timeout": "timed out",
                        "killed": "timed out and was stopped", "died": "crashed the kernel",
                        "killed-sandbox": "killed the grading process"}.get(status, status)
                where = f"answer cell {cell.ref}" if cell.kind == "solution" else "a cell the student added"
                notes.append(f"{where} {what}")
        if outcome.output_truncated:
            notes.append("output truncated: the submission printed more than the grader keeps")
        if outcome.restarts:
            notes.append(f"the kernel was restarted {outcome.restarts} time(s) after a crash or hang")
        if prep.answered == 0:
            notes.append("no answers: every answer cell is still the original stub")
        if prep.flags:
            notes.append("flagged for review: the code uses " + ", ".join(prep.flags))
        failing = [f"{t}: {feedback.describe(r)}" for t, r in results.items() if r["status"] != "passed"]
        row = self._row(sub.student, outcome.status, recorded["score"], recorded["grades"],
                        "; ".join(failing + notes))
        self._finish(sub, row, results, notes, retry=outcome.status == "error", elapsed=outcome.elapsed,
                     graded_nb=nb)
        return outcome.elapsed


def grade_batch(spec: SectionSpec, subs: list[Submission], settings: Settings,
                on_progress: Callable[[str, dict | None], None] | None = None) -> BatchResult:
    start = time.monotonic()
    autograde.prepare_gradebook(spec, settings.db_url)
    batch = Batch(spec, settings)
    pool = None if settings.scheduler else _local_pool(settings, autograde.section_preimports(spec), spec.data)
    try:
        return _grade_batch(batch, spec, subs, settings, on_progress, start, pool)
    finally:
        batch.close()
        if pool is not None:  # nothing was left to grade: the warm sandboxes go
            kill_all_live()
            pool.shutdown(wait=True, cancel_futures=True)


def _grade_batch(batch: Batch, spec: SectionSpec, subs: list[Submission], settings: Settings,
                 on_progress, start: float, pool: cf.ThreadPoolExecutor | None) -> BatchResult:
    for entry in batch.journal.all():  # rows of earlier runs of students not in this batch stay
        if entry.get("row"):
            batch.rows[entry["student"]] = entry["row"]
    result = BatchResult(rows=[])
    pending: list[tuple[str, Job]] = []
    preps: dict[str, tuple[Submission, autograde.Prepared]] = {}
    note = on_progress or (lambda student, row: None)
    for sub in subs:
        old = batch.journal.get(sub.student)
        if (old and not old.get("retry") and old.get("sha256") == sub.sha256 and sub.sha256
                and old.get("signature") == batch.sig and (settings.out / "feedback" / f"{sub.disk}.html").exists()):
            batch.rows[sub.student] = old["row"]
            result.skipped += 1
            note(sub.student, old["row"])
            continue
        if sub.error:
            batch.error(sub, sub.error)
            note(sub.student, batch.rows[sub.student])
            continue
        try:
            nb, changes = autograde.sanitize(copy.deepcopy(sub.nb), spec, settings.db_url, sub.student)
        except autograde.SubmissionError as exc:
            batch.error(sub, str(exc))
            note(sub.student, batch.rows[sub.student])
            continue
        prep = autograde.prepare_job(nb, spec)
        prep.notes[:0] = autograde.test_cell_changes(sub.nb, spec)
        preps[sub.student] = (sub, prep)
        pending.append((sub.student, prep.job))

    results = _dask(pending, settings) if settings.scheduler else _local(pending, settings, pool)
    for student, outcome in results:
        sub, prep = preps[student]
        elapsed = batch.done(sub, prep, outcome)
        if elapsed is not None:
            result.run_times.append(elapsed)
        result.graded += 1
        note(student, batch.rows[student])
    result.rows = [batch.rows[s.student] for s in subs if s.student in batch.rows]
    result.elapsed = time.monotonic() - start
    return result
