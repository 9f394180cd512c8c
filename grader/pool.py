"""The sandboxes this process runs: job uids, every live sandbox (for Ctrl-C), and the warm pool.

A warm sandbox is one bubblewrap sandbox running `grader.zygote`, which imports the section's
libraries once and grades jobs one after another (see zygote.py for what keeps them apart). Each
worker thread keeps one: `prewarm` starts it while the batch is prepared, `run_warm` takes an
idle one (or starts one), runs a job and puts it back if it is still clean. A sandbox is keyed by
what it was started with (tmpfs size, pre-imports, data binds): a job only runs in a sandbox made
for it.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

from . import procs
from .bwrap import WORKDIR, bwrap_argv, sandbox_env
from .limits import Limits
from .protocol import DataBind, Job, encode_job, job_header, zygote_hello
from .streams import EventReader, SandboxRun, ZygoteReader, keep_tail
from .watchdog import Watchdog


class SandboxUnavailable(RuntimeError):
    pass


class WarmUnusable(RuntimeError):
    """This section's libraries cannot be forked safely (they start threads at import)."""


# ---------------------------------------------------------------------------------------------
# A uid of its own for each job running at the same time in this process (root graders only):
# RLIMIT_NPROC then counts exactly one job, and no job can signal another.
_uids_lock = threading.Lock()
_uids_in_use: set[int] = set()


def allocate_uid() -> int:
    base = 1_000_000 + 64 * (os.getpid() % 30_000_000)
    with _uids_lock:
        for slot in range(64):
            if base + slot not in _uids_in_use:
                _uids_in_use.add(base + slot)
                return base + slot
    raise RuntimeError("more than 64 concurrent sandboxes in one process")


def release_uid(uid: int | None) -> None:
    with _uids_lock:
        _uids_in_use.discard(uid)


# ---------------------------------------------------------------------------------------------
_live_lock = threading.Lock()
_live: set[subprocess.Popen] = set()


def start_sandbox(argv: list[str], env: dict, cwd: str) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=cwd, start_new_session=True)
    with _live_lock:
        _live.add(proc)
    return proc


def end_sandbox(proc: subprocess.Popen, wait: float | None = None) -> None:
    procs.kill_tree(proc.pid)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass
    with _live_lock:
        _live.discard(proc)


def kill_all_live() -> None:
    """Kill every sandbox this process started that is still running (Ctrl-C, shutdown)."""
    with _pool_lock:
        _idle.clear()
    with _live_lock:
        live = list(_live)
    for proc in live:
        procs.kill_tree(proc.pid)


# ---------------------------------------------------------------------------------------------
class WarmSandbox:
    """One sandbox running `grader.zygote`: many jobs, one at a time."""

    def __init__(self, limits: Limits, preimport: list[str], data: list[DataBind] = ()) -> None:
        self.privileged = os.geteuid() == 0
        self.data = list(data)
        argv = bwrap_argv(limits, self.privileged, self.data) + [sys.executable, "-m", "grader.zygote"]
        self.proc = start_sandbox(argv, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "/")
        self.reader = ZygoteReader(self.proc.stdout)
        self.reader.start()
        self.err_tail = keep_tail(self.proc.stderr)
        self.usable = False
        try:
            self.proc.stdin.write(zygote_hello(preimport))
            self.proc.stdin.flush()
            reply = self.reader.control.get(timeout=limits.kernel_start_timeout)
        except (OSError, queue.Empty):
            reply = None
        if not reply or not reply.startswith("ready"):
            self.close()
            if reply and reply.startswith("unusable"):
                raise WarmUnusable(reply[len("unusable "):])
            raise SandboxUnavailable(f"the warm sandbox did not start: {self.err_tail[0].decode('utf-8', 'replace')[-300:]}")
        self.usable = True

    def alive(self) -> bool:
        return self.usable and self.proc.poll() is None

    def run(self, job: Job, limits: Limits, deadline: float) -> SandboxRun:
        """One job, start to end; afterwards `usable` says whether the sandbox can take another."""
        sink = self.reader.sink = EventReader(None)
        self.usable = False
        how = None
        status = None
        try:
            body = encode_job(job)
            self.proc.stdin.write(job_header(job.uid, body) + body)
            self.proc.stdin.flush()
        except OSError:
            pass
        watch = Watchdog(self.proc.pid, limits)
        while True:
            try:
                msg = self.reader.control.get(timeout=0.2)
            except queue.Empty:
                how = watch.check(deadline)
                if how:
                    break
                continue
            if msg is None or msg.startswith("unusable"):
                break
            if msg.startswith("end "):
                status = msg[4:]
                break
        ended = status is not None
        if ended:
            self.usable = True
        else:
            self.close()
        code = int(status) if status and status.lstrip("-").isdigit() else self.proc.returncode
        stderr = "" if ended else self.err_tail[0].decode("utf-8", "replace")
        return SandboxRun(events=sink.events, how=how, returncode=code, stderr=stderr)

    def close(self) -> None:
        self.usable = False
        end_sandbox(self.proc, wait=10)


# ---------------------------------------------------------------------------------------------
_pool_lock = threading.Lock()
_idle: dict[tuple, list[WarmSandbox]] = {}  # warm sandboxes between jobs, by what they were made for
_refused: set[tuple] = set()  # what a zygote cannot fork safely: those jobs use cold sandboxes


def _key(limits: Limits, preimport: list[str], data: list[DataBind]) -> tuple:
    return (limits.tmpfs_mb, tuple(preimport), tuple((d.host, d.sandbox, d.env) for d in data))


def _start(key: tuple, limits: Limits, preimport: list[str], data: list[DataBind]) -> WarmSandbox | None:
    try:
        return WarmSandbox(limits, list(preimport), data)
    except WarmUnusable:
        with _pool_lock:
            _refused.add(key)
    except SandboxUnavailable:
        pass
    return None


def prewarm(limits: Limits, preimport: list[str], data: list[DataBind] = ()) -> bool:
    """Start one warm sandbox and keep it idle for the next job (while the batch is prepared).

    Call it from a thread that lives as long as the sandbox should: bubblewrap's --die-with-parent
    follows the thread that started it.
    """
    key = _key(limits, preimport, list(data))
    with _pool_lock:
        if key in _refused:
            return False
    sandbox = _start(key, limits, preimport, list(data))
    if sandbox is None:
        return False
    with _pool_lock:
        _idle.setdefault(key, []).append(sandbox)
    return True


def run_warm(job: Job, limits: Limits, deadline: float) -> SandboxRun | None:
    """Run the job in a warm sandbox of this process; None when there is none to be had."""
    key = _key(limits, job.preimport, job.data)
    sandbox = None
    with _pool_lock:
        if key in _refused:
            return None
        idle = _idle.get(key, [])
        while idle and sandbox is None:
            candidate = idle.pop()
            if candidate.alive():
                sandbox = candidate
            else:
                candidate.close()
    if sandbox is None:
        sandbox = _start(key, limits, job.preimport, job.data)
        if sandbox is None:
            return None
    uid = allocate_uid() if sandbox.privileged else None
    try:
        job = job.replace(uid=uid, isolated=True, scratch="/tmp", workdir=WORKDIR,
                          env=sandbox_env(WORKDIR, "/tmp", job.data))
        return sandbox.run(job, limits, deadline)
    finally:
        release_uid(uid)
        if sandbox.alive():
            with _pool_lock:
                _idle.setdefault(key, []).append(sandbox)
        else:
            sandbox.close()
