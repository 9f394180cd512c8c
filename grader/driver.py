"""The process that runs *inside* the sandbox for one submission.

    python -m grader.driver < job.json      (stdout: one JSON event per line)

It drops privileges (when started as root by a privileged bubblewrap), sets resource limits,
starts one IPython kernel, installs the harness (`grader/harness.py`) and executes the prepared
cells in order with a per-cell timeout. When a cell hangs it interrupts the kernel, and kills it
if the interrupt is ignored; when the kernel dies (segfault, `os._exit`, memory) it starts a new
one, replays the earlier non-test cells silently and goes on, so a crash loses only the points
of the cell that caused it. After every cell it kills any process the cell left behind.

Events are progress information for the host; only the harness's HMAC-signed verdict lines
(forwarded verbatim) decide points. The job arrives on stdin, so nothing about the grading
(tests, key) is ever a file a student could read before the harness has consumed it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
import time
from pathlib import Path

from . import procs
from .kernel import Kernel
from .protocol import VERDICT_TAG, Event, Job, decode_job, encode_event


class Events:
    """The driver's stdout, taken over: nothing else in this process may write to it."""

    def __init__(self) -> None:
        self.out = os.fdopen(os.dup(1), "wb", buffering=0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)

    def send(self, event: Event) -> None:
        self.out.write(encode_event(event) + b"\n")


def drop_privileges(uid: int | None) -> None:
    if os.getuid() == 0 and uid:
        procs.switch_uid(uid)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SystemExit("could not drop root privileges")
    # No setuid binary inside the sandbox may give privileges back.
    procs.prctl(procs.PR_SET_NO_NEW_PRIVS, 1)


@dataclasses.dataclass
class Place:
    """Where this driver runs: its private folders, and which processes its sweeps may kill."""

    scratch: Path  # /tmp in a sandbox; a private folder with --unsafe-no-sandbox
    isolated: bool  # in a pid namespace of its own: every process but init is the job's
    protected: frozenset = frozenset()  # never killed (a warm sandbox's zygote)

    @property
    def secrets_dir(self) -> Path:
        return self.scratch / ".course-grader"

    @property
    def kernel_dir(self) -> Path:
        return self.scratch / ".course-grader-kernels"

    def kill_strays(self, keep: set[int]) -> None:
        """SIGKILL every process the cells left behind, keeping only the driver and `keep`.

        In the sandbox that is every process of the pid namespace but init; without a sandbox,
        only the driver's descendants (it is a child subreaper, so orphans stay its descendants).
        Returns only when they are all gone and reaped: until then they count against
        RLIMIT_NPROC, and a kernel started next could not start its threads.
        """
        me = os.getpid()
        deadline = time.monotonic() + 3
        while True:  # a fork bomb may still be spawning: sweep until nothing is left
            pids = procs.all_pids() if self.isolated else procs.descendants(me)
            left = [p for p in sorted(pids) if p not in keep and p not in (me, 1) and p not in self.protected]
            for pid in left:
                procs.kill(pid)
            procs.reap()
            if not left or time.monotonic() > deadline:
                return
            time.sleep(0.01)


def harness_boot(job: Job, secrets_dir: Path, nonces: dict, done: set, skipped: set) -> str:
    """Write the harness's one-time secrets file and return the bootstrap code that consumes it."""
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    path = secrets_dir / f"s-{secrets.token_hex(8)}.json"
    payload = {
        "key": job.key,
        "verdict_path": str(secrets_dir / "verdicts"),
        "tests": {tid: dataclasses.asdict(t) for tid, t in job.tests.items()},
        "nonces": nonces,
        "instructor": job.instructor_hashes,
        "required": {tid: [h for h, i in rows if i not in skipped] for tid, rows in job.required.items()},
        "done": sorted(done),
        "preimport": job.preimport,
        "library_classes": job.library_classes,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    return (
        "def _course_grader_boot():\n"
        "    ns = {'__name__': '_course_grader', '__builtins__': __import__('builtins')}\n"
        f"    exec(compile({job.harness!r}, '<course-grader>', 'exec'), ns)\n"
        f"    ns['install']({str(path)!r})\n"
        "_course_grader_boot()\n"
        "del _course_grader_boot\n"
    )


class _Restart(Exception):
    """The kernel died while replaying earlier cells: start another one without that cell."""


class VerdictTail:
    """Forwards the verdict lines the harness appends to its file, as `verdict` events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def forward(self, events: Events) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(1_000_000)
                self.offset += len(chunk)
        except FileNotFoundError:
            return
        for raw in chunk.split(b"\n"):
            if raw.startswith(VERDICT_TAG.encode() + b" ") and len(raw) < 8000:
                events.send(Event("verdict", line=raw.decode("ascii", "replace")))


def run_cells(job: Job, events: Events, place: Place, fork_kernel: bool = False) -> None:
    """Run the job's cells in order from `job.start_index`, restarting the kernel after a crash."""
    cells = job.cells
    nonces = {tid: secrets.token_hex(8) for tid in job.tests}
    done: set[str] = set(job.done_tests)
    skipped: set[int] = set(job.killers)  # cells that killed a kernel: never replayed
    budget = {"left": job.output_total, "dropped": False}
    tail = VerdictTail(place.secrets_dir / "verdicts")
    generation = 0
    restarts = 0

    def start_kernel(upto: int) -> Kernel:
        nonlocal generation
        generation += 1
        t0 = time.monotonic()
        # Only the first kernel can be a fork: by the next one this process runs client threads.
        kernel = Kernel(job, generation, place.kernel_dir, place.scratch / f"kernel-{generation}.log",
                        fork=fork_kernel and generation == 1)
        boot = kernel.execute(harness_boot(job, place.secrets_dir, nonces, done, skipped), timeout=120, silent=True)
        if boot["status"] != "ok":
            raise RuntimeError(f"grader harness failed to start: {boot['ename']} {boot['evalue']}")
        events.send(Event("kernel", generation=generation, secs=round(time.monotonic() - t0, 3), replay_upto=upto))
        for j in range(upto):  # silently rebuild the state of cells before `upto`
            cell = cells[j]
            if cell.kind == "test" or j in skipped:
                continue
            res = kernel.execute(cell.code, timeout=job.cell_timeout)
            if res["status"] in ("died", "killed"):
                skipped.add(j)
                events.send(Event("replay_failed", i=j, status=res["status"]))
                raise _Restart(j)
            place.kill_strays({kernel.pid} if kernel.pid else set())
        return kernel

    start = job.start_index
    kernel = None
    while kernel is None:
        try:
            kernel = start_kernel(start)
        except _Restart:
            restarts += 1
            if restarts > job.max_restarts:
                events.send(Event("fatal", message="the kernel kept dying while replaying earlier cells"))
                return
    i = start
    while i < len(cells):
        cell = cells[i]
        if i in skipped:
            i += 1
            continue
        code = cell.code
        if cell.kind == "test":
            if cell.ref in done:
                i += 1
                continue
            code = f"_course_grader_run({cell.ref!r}, {nonces[cell.ref]!r})"
        events.send(Event("start", i=i))
        res = kernel.execute(code, timeout=job.cell_timeout, budget=budget)
        tail.forward(events)
        if cell.kind == "test":
            done.add(cell.ref)
        events.send(Event("cell", i=i, **res))
        if res["status"] in ("died", "killed"):
            skipped.add(i)
            kernel.shutdown()
            place.kill_strays(set())
            while True:
                restarts += 1
                if restarts > job.max_restarts:
                    events.send(Event("fatal", message=f"too many kernel restarts (limit {job.max_restarts})"))
                    return
                events.send(Event("restart", at=i, reason=res["status"]))
                try:
                    kernel = start_kernel(i + 1)
                    break
                except _Restart:
                    continue
        else:
            place.kill_strays({kernel.pid} if kernel.pid else set())
        i += 1
    tail.forward(events)
    kernel.shutdown()
    place.kill_strays(set())
    events.send(Event("done", restarts=restarts, output_truncated=budget["dropped"]))


def serve(job: Job, events: Events, fork_kernel: bool = False) -> None:
    """Grade one job: drop privileges, set limits, run the cells. `fork_kernel`: this process is a
    fork of the warm sandbox's zygote (`grader.zygote`), so its first kernel can be a fork too."""
    drop_privileges(job.uid)
    protected = frozenset()
    if fork_kernel:
        protected = frozenset({os.getppid()})  # the zygote: it outlives this job
        # Dropping root made this process undumpable, and its kernel would inherit that: the
        # host's memory watchdog could then not read the kernel's proportional set size.
        procs.prctl(procs.PR_SET_DUMPABLE, 1)
    procs.prctl(procs.PR_SET_CHILD_SUBREAPER, 1)
    procs.set_rlimits(job.driver_rlimits)
    os.umask(0o077)
    place = Place(Path(job.scratch), job.isolated, protected)
    try:
        run_cells(job, events, place, fork_kernel)
    except Exception as exc:  # noqa: BLE001 - report, the host decides what it means
        events.send(Event("fatal", message=f"{type(exc).__name__}: {exc}"[:500]))
        place.kill_strays(set())


def main() -> None:
    events = Events()
    job = decode_job(sys.stdin.buffer.read())
    sys.stdin.close()
    serve(job, events)


if __name__ == "__main__":
    main()
