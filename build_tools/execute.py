"""Execute a section's notebook with papermill, cached on what can change its outputs.

The story: hash the code → reuse a cached run if there is one → otherwise parameterise with
FAST/SEED and run with papermill in a scratch folder → keep the results it wrote → cache it.
Markdown edits do not change the key: a cached run is re-dressed with the new text.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from papermill.exceptions import PapermillExecutionError

from build_tools.atomic import copy_file, write_notebook
from build_tools.source import environment


class ExecutionFailed(Exception):
    pass


@dataclass
class Executed:
    nb: nbformat.NotebookNode
    cached: bool
    seconds: float
    key: str


def cache_key(nb, parameters: dict, lock_text: str) -> str:
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode())
            digest.update(b"\0")
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    digest.update(lock_text.encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:24]


def cached_run(cache_dir: Path, stem: str, key: str) -> tuple[Path, Path]:
    """Where a run's executed notebook and its results file are cached."""
    return cache_dir / f"{stem}-{key}.ipynb", cache_dir / f"{stem}-{key}.results.json"


def run_key(nb, parameters: dict, lock_text: str, work_dir: Path) -> str:
    """The cache key of a run: its code, parameters and locked versions (the caller adds the
    digests of the data folders the section reads to `lock_text`)."""
    return cache_key(nb, parameters, lock_text)


def offline_figures_profile(work_dir: Path) -> Path:
    """An IPython folder whose startup script loads coursepress's offline plotly renderer, so every
    figure on the site is drawn from the site's own plotly.js, whatever the section imports."""
    ipython_dir = work_dir / "ipython"
    startup = ipython_dir / "profile_default" / "startup" / "00-coursepress-offline-figures.py"
    text = "try:\n    import coursepress.plots  # noqa: F401\nexcept ImportError:\n    pass\n"
    if not startup.exists() or startup.read_text() != text:
        startup.parent.mkdir(parents=True, exist_ok=True)
        startup.write_text(text)
    return ipython_dir


def _merge_outputs(fresh, cached):
    """Give the fresh notebook (new markdown) the outputs of the cached run (same code)."""
    out = copy.deepcopy(fresh)
    injected = [c for c in cached.cells if "injected-parameters" in c.metadata.get("tags", [])]
    ran = [c for c in cached.cells if c.cell_type == "code" and not any(c is i for i in injected)]
    fresh_code = [c for c in out.cells if c.cell_type == "code"]
    assert len(ran) == len(fresh_code), "cache key matched but code cells differ"
    cells = []
    for cell in out.cells:
        if cell.cell_type == "code":
            old = ran.pop(0)
            cell.outputs = old.outputs
            cell.execution_count = old.execution_count
        cells.append(cell)
        if "parameters" in cell.metadata.get("tags", []) and injected:
            params_cell = copy.deepcopy(injected[0])
            params_cell.id = "injected-parameters"  # papermill picks a random id: keep pages stable
            cells.append(params_cell)
    out.cells = cells
    out.metadata["papermill"] = cached.metadata.get("papermill", {})
    # tqdm writes one stream chunk per refresh; merge them and apply the carriage returns so a
    # page shows each progress bar once, in its final state.
    out, _ = CoalesceStreamsPreprocessor().preprocess(out, {})
    return out


def _describe_failure(err: PapermillExecutionError, output_path: Path, stem: str) -> str:
    where = f"cell {err.exec_count}"
    try:
        nb = nbformat.read(output_path, as_version=4)
        # The failing cell is the one holding the error output (indices shift with injected cells).
        failed = next(c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", [])))
        course = failed.metadata.get("course", {})
        where = f"cell {failed.get('id', '?')}"
        if course.get("origin"):
            where += f" (source {course['origin']}:{course['line']})"
    except Exception:
        pass
    # papermill's own error text holds the cell source and the traceback.
    return f"section {stem}: {where} failed\n{err}"


def execute(
    nb,
    *,
    stem: str,
    section_number: int,
    parameters: dict,
    lock_text: str,
    cache_dir: Path,
    results_dir: Path,
    work_dir: Path,
    timeout: int | None = None,
    threads: int | None = None,
    only_cached: bool = False,
    kernel_env: dict | None = None,
) -> Executed | None:
    """Run `nb` (or reuse its cached run). `threads` caps the kernel's BLAS/OpenMP threads, so that
    several notebooks can run side by side without oversubscribing the cores. With `only_cached`,
    return None instead of executing. `kernel_env`: variables the kernel gets (declared data folders)."""
    key = run_key(nb, parameters, lock_text, work_dir)
    cached_nb, cached_results = cached_run(cache_dir, stem, key)
    results_file = results_dir / f"section{section_number}.json"
    if cached_nb.exists():
        merged = _merge_outputs(nb, nbformat.read(cached_nb, as_version=4))
        if cached_results.exists():
            copy_file(cached_results, results_file)
        return Executed(merged, cached=True, seconds=0.0, key=key)
    if only_cached:
        return None

    scratch = work_dir / stem
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "results").mkdir(parents=True)
    input_path, output_path = scratch / f"{stem}.input.ipynb", scratch / f"{stem}.ipynb"
    nbformat.write(nb, input_path)
    env = {**(kernel_env or {}), "IPYTHONDIR": str(offline_figures_profile(work_dir).resolve()),
           "COURSE_BUILD": "1", "COURSE_RESULTS_DIR": str((scratch / "results").resolve()),
           "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    if threads:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    start = time.perf_counter()
    try:
        with environment(env):
            papermill.execute_notebook(
                str(input_path), str(output_path), parameters=parameters, kernel_name="python3",
                cwd=str(scratch), progress_bar=False, log_output=False, execution_timeout=timeout,
            )
    except PapermillExecutionError as err:
        raise ExecutionFailed(_describe_failure(err, output_path, stem)) from None
    seconds = time.perf_counter() - start
    executed = nbformat.read(output_path, as_version=4)
    produced = scratch / "results" / f"section{section_number}.json"
    if produced.exists():
        copy_file(produced, cached_results)
        copy_file(produced, results_file)
    write_notebook(cached_nb, executed)  # last: only a complete run becomes a cache entry
    shutil.rmtree(scratch, ignore_errors=True)
    # Same path as a cache hit, so a rebuild produces byte-identical pages.
    return Executed(_merge_outputs(nb, executed), cached=False, seconds=seconds, key=key)
