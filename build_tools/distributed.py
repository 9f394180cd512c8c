"""Execute a build's notebooks on a Dask cluster (`course build --scheduler tcp://HOST:8786`).

The same engine `course grade --scheduler` uses: one task per notebook. A worker only executes
(`run_fresh`: papermill in a scratch folder) and sends the executed notebook and its results back;
the driver keeps them (cache entry, results file) exactly as after a local run. Workers need this
project's Python environment; sections that read a declared data folder also need it at the same
path (a shared file system), as the notebook finds it through the environment.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from typing import Callable, Iterator

from build_tools.execute import Executed, run_fresh, run_key, store_run


def _put(queue, event) -> None:
    queue.put(list(event))  # through the scheduler: msgpack-able data only


def _relay(queue, on_cell: Callable, stop: threading.Event) -> threading.Thread:
    """Pass the workers' cell events to `on_cell` until `stop` is set and the queue is empty."""
    def run():
        while True:
            finishing = stop.is_set()  # read first: a last drain after the stop is asked for
            for event in queue.get(batch=True):  # what is there now, without waiting
                on_cell(tuple(event))
            if finishing:
                return
            time.sleep(0.2)

    thread = threading.Thread(target=run, name="build-cluster-progress", daemon=True)
    thread.start()
    return thread


def execute_on_cluster(scheduler: str, runs: list[dict], threads: int | None = None,
                       on_cell: Callable | None = None) -> Iterator[tuple[str, Executed]]:
    """Submit every run (the keyword arguments of `execute`) and yield (stem, Executed) as each
    finishes; `on_cell` receives the cells' events from the workers through a Dask queue. A failing
    notebook raises its ExecutionFailed here, as a local run would."""
    from distributed import Client, Queue, as_completed

    batch = uuid.uuid4().hex[:8]  # task keys unique to this build: a cluster may serve several
    with Client(scheduler, timeout=60) as client:
        events = Queue(f"course-build-progress-{batch}", client=client) if on_cell else None
        stop = threading.Event()
        relay = _relay(events, on_cell, stop) if on_cell else None
        futures = {}
        for run in runs:
            future = client.submit(
                run_fresh, run["nb"], stem=run["stem"], section_number=run["section_number"],
                parameters=run["parameters"], work_dir=run["work_dir"], timeout=run.get("timeout"),
                threads=threads, kernel_env=run.get("kernel_env"),
                on_cell=functools.partial(_put, events) if events else None,
                key=f"course-build-{run['stem']}-{batch}", pure=False, retries=0)
            futures[future] = run
        try:
            for future in as_completed(futures):
                run = futures[future]
                fresh = future.result()
                if relay:  # this notebook's last cell events come before its "executed" line
                    _wait_for_events(events)
                key = run_key(run["nb"], run["parameters"], run["lock_text"], run["work_dir"])
                yield run["stem"], store_run(run["nb"], fresh, stem=run["stem"], section_number=run["section_number"],
                                             key=key, cache_dir=run["cache_dir"], results_dir=run["results_dir"])
        finally:
            client.cancel(list(futures))  # a failure: stop what is still queued
            if relay:
                stop.set()
                relay.join()


def _wait_for_events(queue, limit: float = 5.0) -> None:
    """Give the relay a moment to empty the queue (events and results travel separately)."""
    deadline = time.monotonic() + limit
    while queue.qsize() and time.monotonic() < deadline:
        time.sleep(0.05)
