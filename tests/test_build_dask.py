"""`course build --scheduler`: notebooks executed on a Dask cluster, kept by the driver."""

import json
import re

import nbformat

from conftest import make_project, run_course


def test_build_on_a_two_worker_local_cluster(tmp_path):
    from distributed import LocalCluster

    root = make_project(tmp_path / "p")
    src = root / "source_exercises/01_fixture.py"
    (root / "source_exercises/02_fixture_copy.py").write_text(src.read_text().replace("save_results(1", "save_results(2"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        first = run_course("build", "--fast", "--no-site", "--scheduler", cluster.scheduler_address, cwd=root)
        workers = len(cluster.workers)
    assert workers == 2
    assert f"on the Dask cluster at {cluster.scheduler_address}" in first.stdout
    cache = root / "dist/.cache/execute"
    for number, stem in ((1, "01_fixture"), (2, "02_fixture_copy")):
        assert re.search(rf"{stem}: executed in [\d.]+ s", first.stdout), first.stdout
        # Cell events came back from the workers through the scheduler, every cell once.
        total = int(re.search(rf"  {stem}: started, (\d+) cells", first.stdout).group(1))
        done = [int(n) for n in re.findall(rf"  {stem}: cell (\d+)/{total} done", first.stdout)]
        assert done == list(range(1, total + 1)), (stem, done)
        solution = nbformat.read(root / f"dist/solutions/{stem}.ipynb", 4)
        assert any(c.get("outputs") for c in solution.cells if c.cell_type == "code")
        # The driver wrote the results file and the cache entry from what the worker sent back.
        results = json.loads((root / f"dist/results/section{number}.json").read_text())
        assert results, results
        assert len(list(cache.glob(f"{stem}-*.ipynb"))) == 1
        assert json.loads(next(cache.glob(f"{stem}-*.results.json")).read_text()) == results
        assert not (root / "dist/.work" / stem).exists(), "scratch folder left behind"
    assert set(json.loads((cache / "durations.json").read_text())) == {"01_fixture:fast", "02_fixture_copy:fast"}

    # Without the cluster, the next build reuses both runs.
    again = run_course("build", "--fast", "--no-site", cwd=root)
    assert "executed no notebook" in again.stdout


def test_a_failing_notebook_on_the_cluster_fails_the_build_with_its_cell(tmp_path):
    from distributed import LocalCluster

    root = make_project(tmp_path / "p")
    src = root / "source_exercises/01_fixture.py"
    src.write_text(src.read_text().replace("fig.show()", "fig.show()\n1 / 0", 1))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        failed = run_course("build", "--fast", "--no-site", "--scheduler", cluster.scheduler_address, cwd=root, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "section 01_fixture: cell" in failed.stdout and "ZeroDivisionError" in failed.stdout
    assert not (root / "dist/solutions/01_fixture.ipynb").exists()
    assert not list((root / "dist/.cache/execute").glob("01_fixture-*.ipynb"))
