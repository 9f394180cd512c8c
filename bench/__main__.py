"""`make bench`: build, rebuild, grading and training speed, each as a ratio against its baseline
measured in the same run. Writes bench/results.json and bench/RESULTS.md.

    python -m bench                 # FAST builds, grading (20 submissions), training, site weight
    python -m bench --full          # also the full-mode build (≈ 40 min on 2 cores)
    python -m bench --grade-200     # also 200 section-1 submissions with --workers 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRACKED = ["_config.yml", "requirements.lock", "book", "course_helpers", "source_exercises", "assets"]


def _copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in TRACKED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("_build", "generated", "__pycache__"))
        elif src.exists():
            shutil.copy(src, dest / name)
    return dest


def _course(args: list[str], cwd: Path) -> tuple[float, str, int]:
    """Run `course ARGS`; returns (wall seconds, stdout, peak RSS in MB of the process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "build_tools.cli", *args], cwd=cwd, capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": "200"})
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"course {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return wall, result.stdout, int(peak)


def _executed_seconds(stdout: str) -> dict:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"(\d\d_\w+): executed in ([\d.]+) s", stdout)}


def bench_build(work: Path) -> dict:
    """FAST build from cold, no-op rebuild, rebuild after a markdown edit, and the site's weight."""
    out: dict = {}
    project = _copy_project(work / "proj")
    first, stdout, rss = _course(["build", "--fast"], project)
    executed = _executed_seconds(stdout)
    second, stdout2, _ = _course(["build", "--fast"], project)
    assert "executed no notebook" in stdout2, stdout2
    # Edit one section's markdown: its code is unchanged, so its cached run is reused.
    target = sorted((project / "source_exercises").glob("01_*.py"))[0]
    target.write_text(target.read_text().replace("# %% [markdown]\n", "# %% [markdown]\n# (edited for the benchmark)\n#\n", 1))
    edited, stdout3, _ = _course(["build", "--fast"], project)
    share = executed.get(target.stem, 0.0) / max(sum(executed.values()), 1e-9)
    out.update({
        "build_fast_s": first, "noop_rebuild_s": second, "noop_rebuild_ratio": second / first,
        "one_section_rebuild_s": edited, "one_section_rebuild_ratio": edited / first,
        "one_section_execution_share": share,
        "one_section_rebuild_target": 1.2 * share,
        "notebook_execution_s": executed, "build_overhead_ratio": first / max(sum(executed.values()), 1e-9),
        "peak_rss_build_mb": rss,
    })
    html = project / "book" / "_build" / "html"
    pages = []
    for page in html.rglob("*.html"):
        size = page.stat().st_size  # figure data is inline in the page (no separate JSON)
        pages.append((size, str(page.relative_to(html))))
    pages.sort(reverse=True)
    out["max_page_mb"] = pages[0][0] / 1e6
    out["max_page"] = pages[0][1]
    out["site_total_mb"] = sum(f.stat().st_size for f in html.rglob("*") if f.is_file()) / 1e6
    out["plotly_js_copies"] = sum(1 for f in html.rglob("*.js") if f.read_bytes()[:20000].find(b"plotly.js v") >= 0
                                  or f.name.startswith("plotly"))
    _keep_runs(project)
    return out


def _keep_runs(project: Path) -> None:
    """Copy the copy's executed runs into the repo's cache. The cache is keyed on code, parameters,
    lock and assets, so a later `make book` reuses them instead of executing everything again."""
    cache = project / "dist" / ".cache" / "execute"
    if cache.is_dir():
        dest = REPO / "dist" / ".cache" / "execute"
        dest.mkdir(parents=True, exist_ok=True)
        for entry in cache.glob("*-*.*"):
            if not (dest / entry.name).exists():
                shutil.copy(entry, dest / entry.name)


def bench_full_build(work: Path) -> dict:
    """The full-mode build of the whole course (the published hyper-parameters)."""
    project = _copy_project(work / "full")
    try:
        seconds, stdout, rss = _course(["build"], project)
    except RuntimeError as err:  # keep what did finish, report the failure, go on with the rest
        _keep_runs(project)
        return {"build_full_error": str(err)[-2000:]}
    _keep_runs(project)
    return {"build_full_s": seconds, "full_notebook_execution_s": _executed_seconds(stdout), "peak_rss_full_build_mb": rss}


def _project_at(rev: str, dest: Path) -> Path:
    """The course files of git revision `rev` (sources, helpers, config, book, assets) in `dest`."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, *TRACKED], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _fast_executions(project: Path, only: list[str], extra: list[str] = ()) -> tuple[float, dict]:
    """A FAST build of `only` from an empty cache (no site): wall seconds and each notebook's seconds."""
    shutil.rmtree(project / "dist", ignore_errors=True)
    wall, stdout, _ = _course(["build", "--fast", "--no-site", *extra, *sum((["--only", n] for n in only), [])], project)
    return wall, _executed_seconds(stdout)


def bench_build_before_after(work: Path, rev: str, only: list[str], rounds: int = 1) -> dict:
    """The same FAST build (today's tooling, `-j 2` as `make book`) of the course at `rev` and of
    the course now, alternating (before, after, before, after, ...) so that the machine's drift
    falls on both; each section's best time."""
    before_project = _project_at(rev, work / "before")
    after_project = _copy_project(work / "after")
    best = {"before": {}, "after": {}}
    for _ in range(rounds):
        for name, project in (("before", before_project), ("after", after_project)):
            _, seconds = _fast_executions(project, only)
            for stem, s in seconds.items():
                best[name][stem] = min(s, best[name].get(stem, s))
    return {"fast_execution_before_rev": rev, "fast_execution_before_s": best["before"],
            "fast_execution_after_s": best["after"],
            "fast_execution_speedup": {stem: round(best["before"][stem] / best["after"][stem], 2)
                                       for stem in best["after"] if stem in best["before"]}}


def bench_build_dask(work: Path, only: list[str]) -> dict:
    """FAST executions of `only` through `course build --scheduler` on a LocalCluster of one worker,
    then of two (one thread each); each from an empty cache. The clusters start before the clock."""
    from distributed import LocalCluster

    project = _copy_project(work / "dask")
    walls = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            walls[workers], _ = _fast_executions(project, only, ["--scheduler", cluster.scheduler_address])
    return {"build_dask_sections": only, "build_dask_1_worker_s": walls[1], "build_dask_2_workers_s": walls[2],
            "build_dask_speedup": walls[1] / walls[2]}


def bench_grade(work: Path, n200: bool, skip_plain: bool = False) -> dict:
    """20 section-1 submissions: sandboxed 1 and 2 workers, a 2-worker Dask cluster, 1 worker with cold
    sandboxes and 1 without a sandbox (both a new process per submission: the sandbox's own cost),
    and plain nbgrader; optionally 200 with 2 workers."""
    out: dict = {}
    report = work / "grade.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-m", "bench.grading", "--section", "1", "--students", "20", "--unsandboxed",
                    "--cold", "--repeat", "2", "--json", str(report), *(["--skip-plain"] if skip_plain else [])],
                   cwd=REPO, check=True, capture_output=True, text=True)
    out["peak_rss_grade_mb"] = int(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    raw = json.loads(report.read_text())
    out["grade_raw"] = raw
    w1, w2 = raw["ours_1_worker"]["wall_s"], raw["ours_2_workers"]["wall_s"]
    out["grade_1_worker_s"], out["grade_2_workers_s"] = w1, w2
    out["grade_two_worker_speedup"] = w1 / w2
    # The sandbox's own cost, same process model on both sides: a new process per submission.
    cold = raw["ours_1_worker_cold"]["wall_s"]
    out["grade_1_worker_cold_s"] = cold
    out["grade_bwrap_overhead_ratio"] = cold / raw["ours_1_worker_unsandboxed"]["wall_s"]
    out["grade_warm_speedup"] = cold / w1  # warm sandboxes (the default) against cold ones
    if "ours_dask_2_workers" in raw:
        out["grade_dask_speedup"] = w1 / raw["ours_dask_2_workers"]["wall_s"]
    plain = raw.get("plain_nbgrader", {})
    # Plain nbgrader runs every cell in full mode without a sandbox; ours injects FAST and skips
    # the cells no test reads, so this ratio is the whole product against the baseline.
    if "wall_s" in plain:
        out["grade_sandbox_overhead_ratio"] = w1 / plain["wall_s"]
    elif "timed_out_after_s" in plain:  # plain did not finish: the ratio is at most this
        out["grade_sandbox_overhead_ratio_at_most"] = w1 / plain["timed_out_after_s"]
    if n200:
        report200 = work / "grade200.json"
        subprocess.run([sys.executable, "-m", "bench.grading", "--section", "1", "--students", "200", "--json",
                        str(report200), "--workers", "2", "--skip-plain", "--skip-dask"],
                       cwd=REPO, check=True, capture_output=True, text=True)
        out["grade_200_s"] = json.loads(report200.read_text())["ours_2_workers"]["wall_s"]
    return out


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


TARGETS = {
    "build_fast_s": ("<=", 600), "build_full_s": ("<=", 2700), "noop_rebuild_ratio": ("<=", 0.03),
    "build_overhead_ratio": ("<=", 1.5), "grade_sandbox_overhead_ratio": ("<=", 1.15),
    "grade_sandbox_overhead_ratio_at_most": ("<=", 1.15), "grade_bwrap_overhead_ratio": ("<=", 1.15),
    "grade_two_worker_speedup": (">=", 1.7), "grade_dask_speedup": (">=", 1.6), "grade_200_s": ("<=", 600),
    "train_loop_vs_plain": (">=", 1.6), "max_page_mb": ("<=", 5), "plotly_js_copies": ("<=", 1),
}


def write_report(results: dict) -> None:
    (REPO / "bench" / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    lines = [f"# Benchmark results — {results['date']}", "",
             f"Machine: {results['cores']} cores, {results['cpu']}; Python {platform.python_version()}.", "",
             "| key | value | target | met |", "|---|---|---|---|"]
    for key, value in results.items():
        if isinstance(value, (dict, list)) or key in ("date", "cores", "cpu", "build_full_error", "notes"):
            continue
        target = TARGETS.get(key)
        if key == "one_section_rebuild_ratio":
            target = ("<=", results.get("one_section_rebuild_target"))
        met = ""
        if target and target[1] is not None and isinstance(value, (int, float)):
            met = "yes" if (value <= target[1] if target[0] == "<=" else value >= target[1]) else "**no**"
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        lines.append(f"| `{key}` | {shown} | {f'{target[0]} {target[1]:.3g}' if target and target[1] is not None else 'report'} | {met} |")
    if results.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in results["notes"]]
    if "build_full_error" in results:
        lines += ["", "The full-mode build failed:", "", "```", results["build_full_error"], "```"]
    (REPO / "bench" / "RESULTS.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also time the full-mode build")
    parser.add_argument("--grade-200", action="store_true", help="also grade 200 submissions")
    parser.add_argument("--skip", nargs="*", default=[], choices=["build", "grade", "train"])
    parser.add_argument("--skip-plain", action="store_true", help="do not time plain nbgrader (hours in full mode)")
    parser.add_argument("--before", metavar="REV",
                        help="also FAST-build the course at git revision REV and now, alternating (per-section times)")
    parser.add_argument("--dask", action="store_true", help="also time FAST executions on a 1- and a 2-worker LocalCluster")
    parser.add_argument("--sections", nargs="*", default=["1", "2", "4"],
                        help="sections for --before and --dask (default: 1 2 4)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the keys of the last bench/results.json that this run does not measure")
    args = parser.parse_args()
    results = {}
    if args.merge and (REPO / "bench" / "results.json").exists():
        results = json.loads((REPO / "bench" / "results.json").read_text())
    results.update({"date": datetime.datetime.now().isoformat(timespec="minutes"), "cores": os.cpu_count(),
                    "cpu": _cpu_model()})
    work = Path(tempfile.mkdtemp(prefix="course-bench-"))
    try:
        if args.full:  # first: the longest and the one most worth having if the run is cut short
            results.update(bench_full_build(work))
            write_report(results)
        if args.before:
            results.update(bench_build_before_after(work, args.before, args.sections))
            write_report(results)
        if args.dask:
            results.update(bench_build_dask(work, args.sections))
            write_report(results)
        if "train" not in args.skip:
            from bench.train import measure

            results.update(measure())
        if "build" not in args.skip:
            results.update(bench_build(work))
            write_report(results)
        if "grade" not in args.skip:
            results.update(bench_grade(work, args.grade_200, args.skip_plain))
    finally:
        write_report(results)
        shutil.rmtree(work, ignore_errors=True)
    print((REPO / "bench" / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
