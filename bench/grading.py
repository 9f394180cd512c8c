"""Grader benchmark: `course grade` vs plain `nbgrader autograde` on the same notebooks.

    .venv/bin/python -m bench.grading [--section 91] [--students 4] [--json out.json]

Section 1 of the course is used when it builds (`--section 1`), else one of the grader's fixture
sections. Each student submits the solution (full marks expected everywhere), except one whose
correct answer prints a warning to stderr. Measured, on the same submissions:

* `course grade` with 1 worker, 2 workers, and a 2-worker Dask LocalCluster (`--repeat 2`: each
  twice, in the order A B C C B A, so that the machine's drift cancels out of the ratios); with
  `--cold`, 1 worker with a new sandbox per submission, and with `--unsandboxed`, 1 worker
  without a sandbox (also a new process per submission: `--cold` against it is the sandbox's cost);
* plain `nbgrader generate_assignment` + `nbgrader autograde` (no sandbox, no FAST, all cells).

Prints one JSON document with wall times, seconds per submission and the scores each got.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "grader" / "built"
DASK_GRADING_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.interval": "5s"}


def _section(selector: str, work: Path, given: Path | None = None) -> tuple[str, Path, Path]:
    """(stem, course dir, dist dir) for the section, copied into `work`."""
    dist = work / "dist"
    if given is not None:
        shutil.copytree(given, dist, ignore=shutil.ignore_patterns("gradebook.db", "autograded"))
    elif (FIXTURES / "nbgrader" / "source").is_dir() and any(
            p.name.startswith(selector.zfill(2)) for p in (FIXTURES / "nbgrader" / "source").iterdir()):
        shutil.copytree(FIXTURES, dist)
    else:
        from build_tools.api import split_section

        split_section(selector, dist, root=REPO)
    from grader.section import find_section_files

    stem, _, _ = find_section_files(selector, dist / "nbgrader")
    return stem, dist / "nbgrader", dist


def _submissions(stem: str, dist: Path, folder: Path, n: int) -> None:
    source = nbformat.read(str(dist / "nbgrader" / "source" / stem / f"{stem}.ipynb"), 4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    folder.mkdir(parents=True)
    for i in range(n):
        nb = nbformat.read(str(dist / "exercises" / f"{stem}.ipynb"), 4)
        first = True
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
                funcs = [n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)]
                if i == n - 1 and first and funcs:
                    # a correct answer that also writes to stderr whenever a test calls it
                    cell.source += (f"\nimport functools as _ft, sys as _sys\n_orig = {funcs[0]}\n"
                                    f"@_ft.wraps(_orig)\ndef {funcs[0]}(*args, **kwargs):\n"
                                    "    print('a harmless warning', file=_sys.stderr)\n"
                                    "    return _orig(*args, **kwargs)\n")
                    first = False
        nbformat.write(nb, str(folder / f"student{i:02d}.ipynb"))


def _cpu() -> float:
    """CPU seconds of this process and every child it has reaped (sandboxes, kernels, nbgrader)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _ours(stem, course, subs, out, **kw) -> dict:
    from grader.cli import grade

    cpu0 = _cpu()
    start = time.monotonic()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = grade(stem, subs, out, course_dir=course, **kw)
    wall = time.monotonic() - start
    if not (out / "grades.csv").exists():
        raise SystemExit(f"grading failed:\n{log.getvalue()}")
    with open(out / "grades.csv") as fh:
        rows = list(csv.DictReader(fh))
    journal = [json.loads(p.read_text()) for p in (out / ".grader-state" / stem).glob("*.json")]
    per = [j["elapsed"] for j in journal if j.get("elapsed")]
    n = len(rows)
    return {"exit": code, "wall_s": round(wall, 1), "wall_per_submission_s": round(wall / n, 2),
            "sandbox_run_mean_s": round(sum(per) / len(per), 2), "cpu_s": round(_cpu() - cpu0, 1),
            "cpu_per_submission_s": round((_cpu() - cpu0) / n, 2),
            "scores": {r["student"]: float(r["score"]) for r in rows}}


def _timed(stem, course, subs, out, kw: dict, common: dict) -> dict:
    if not kw.get("dask"):
        return _ours(stem, course, subs, out, **kw, **common)
    import dask
    from distributed import LocalCluster

    # The settings the instructors' guide recommends for a grading cluster: each task is a sandbox
    # that works in other processes, so the worker's 10 ms thread-sampling profiler and twice-a-second
    # system monitor only take CPU from the kernels (idle, 2 workers: 0.21 of a core; 0.13 with these).
    # The cluster starts before the clock does and stops after it.
    with dask.config.set(DASK_GRADING_CONFIG), LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        return _ours(stem, course, subs, out, scheduler=cluster.scheduler_address, **common)


def _combined(runs: list[dict]) -> dict:
    """One phase's result: its first run's details, with wall_s the mean over its runs."""
    wall = [r["wall_s"] for r in runs]
    return {**runs[0], "wall_s": round(sum(wall) / len(wall), 1), "wall_s_runs": wall}


def _plain_nbgrader(stem: str, dist: Path, subs: Path, work: Path, limit: float) -> dict:
    course = work / "plain"
    (course / "source" / stem).mkdir(parents=True)
    shutil.copy(dist / "nbgrader" / "source" / stem / f"{stem}.ipynb", course / "source" / stem)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = %r\nc.CourseDirectory.db_url = 'sqlite:///%s/gradebook.db'\n"
        "c.Execute.timeout = 600\n" % (str(course), str(course)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    cpu0 = _cpu()
    t0 = time.monotonic()
    subprocess.run([*nbgrader, "generate_assignment", stem, "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    gen = time.monotonic() - t0
    for nb in sorted(subs.glob("*.ipynb")):
        dest = course / "submitted" / nb.stem / stem
        dest.mkdir(parents=True)
        shutil.copy(nb, dest / f"{stem}.ipynb")
    t0, cpu1 = time.monotonic(), _cpu()
    try:
        r = subprocess.run([*nbgrader, "autograde", stem], cwd=course, env=env, capture_output=True, text=True,
                           timeout=limit)
    except subprocess.TimeoutExpired:
        done = [d for d in (course / "autograded").glob("*/*/*.ipynb")]
        return {"timed_out_after_s": limit, "submissions_finished": len(done),
                "note": "plain nbgrader did not finish (no FAST, no skipped cells)"}
    wall = time.monotonic() - t0
    cpu = _cpu() - cpu1
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        for sub in gb.find_assignment(stem).submissions:
            scores[sub.student.id] = float(sub.score)
    n = len(list(subs.glob("*.ipynb")))
    return {"exit": r.returncode, "generate_assignment_s": round(gen, 1), "generate_cpu_s": round(cpu1 - cpu0, 1),
            "wall_s": round(wall, 1), "wall_per_submission_s": round(wall / n, 2), "cpu_s": round(cpu, 1),
            "cpu_per_submission_s": round(cpu / n, 2), "scores": scores}


def _save(report: dict, path: Path | None) -> None:
    if path:  # after every phase: a long baseline that is cut short loses nothing else
        path.write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", default="91")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--dist", type=Path, help="use this already built dist/ folder")
    parser.add_argument("--plain-timeout", type=float, default=1800, help="give up on plain nbgrader after this")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time (sandboxed)")
    parser.add_argument("--repeat", type=int, choices=[1, 2], default=1,
                        help="2: time every phase twice, in the order A B C C B A (drift cancels)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="also time 1 worker with --unsafe-no-sandbox: the sandbox's own cost, same work")
    parser.add_argument("--cold", action="store_true",
                        help="also time 1 worker with --cold-sandboxes (a new sandbox and kernel process per "
                             "submission: what --unsafe-no-sandbox does, plus the sandbox)")
    args = parser.parse_args()
    from grader.autograde import _alembic_on_path

    _alembic_on_path()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stem, course, dist = _section(args.section, work, args.dist)
        subs = work / "subs"
        _submissions(stem, dist, subs, args.students)
        report = {"section": stem, "students": args.students, "cpus": os.cpu_count(),
                  "loadavg_at_start": os.getloadavg()[0]}
        common = {"cell_timeout": 300, "timeout": 900}
        runs = [(f"ours_{w}_worker{'s' if w > 1 else ''}", {"workers": w}) for w in args.workers]
        if args.cold:
            runs.append(("ours_1_worker_cold", {"workers": 1, "cold_sandboxes": True}))
        if args.unsandboxed:
            runs.append(("ours_1_worker_unsandboxed", {"workers": 1, "unsafe_no_sandbox": True}))
        if not args.skip_dask:
            runs.append(("ours_dask_2_workers", {"dask": True}))
        # This VM's speed drifts by ±20 % over minutes, and the ratios compare phases that run minutes
        # apart. With --repeat 2 the phases run forward, then backward (A B C C B A): each one's mean
        # sits at the same moment, so a steady drift cancels out of every ratio.
        order = runs + runs[::-1] if args.repeat == 2 else runs
        timings: dict[str, list[dict]] = {}
        for n, (name, kw) in enumerate(order):
            copy = work / f"{name}-{n}"
            shutil.copytree(dist, copy)
            timings.setdefault(name, []).append(_timed(stem, copy / "nbgrader", subs, work / f"out-{name}-{n}",
                                                       kw, common))
            report[name] = _combined(timings[name])
            _save(report, args.json)
        if not args.skip_plain:
            report["plain_nbgrader"] = _plain_nbgrader(stem, dist, subs, work, args.plain_timeout)
        report["loadavg_at_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
