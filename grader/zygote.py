"""A warm sandbox: one bubblewrap sandbox that grades many submissions, one after another.

    python -m grader.zygote      (inside the sandbox; the protocol is at the end of this text)

A fresh kernel for every submission spends most of its time importing torch, IPython and the
section's libraries (~3 of a section-1 submission's ~5 s). This process, the *zygote*, imports
them once and then forks, per job, a driver (`grader.driver.serve`) whose first kernel is a
fork of that pristine state. Nothing a job does can reach the next one:

* The zygote never runs student code and never holds a job's cells, tests or key: it reads a
  job's header (uid, size) and its driver reads the body straight from the pipe. Events pass
  through one buffer that is zeroed after each job. It is not dumpable (no ptrace, no
  /proc/<pid>/mem), and with a root grader it runs as root while the jobs do not.
* Each job's processes run as the job's own uid (when the grader is root) and are all killed
  before the next job starts: `kill(-1, SIGKILL)` from that uid (or from the zygote, which the
  pid namespace's `kill(-1)` never includes), repeated until nothing is left, then checked.
* Every writable place (the working copy, /tmp, /dev/shm) is emptied and System V IPC objects
  are removed; if anything is left, the zygote exits and the host starts a fresh sandbox.
* The job's driver writes its events into a pipe of its own; the zygote forwards each complete
  line as ``E <line>`` and alone writes the ``Z ...`` control lines, so no job can forge "the
  previous job is over" or speak for the next one.

Protocol (written and read by `protocol.py`). stdin: `zygote_hello` once, then per job a
`job_header` line (uid, size) followed by that many bytes of `Job`. stdout: ``Z ready {json}`` (or
``Z unusable <why>`` and exit) after the imports, then per job any number of ``E <event>`` lines
and one ``Z end <driver exit status>`` (or ``Z unusable <why>``: nothing more comes).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import stat
import sys
import time

from . import procs
from .protocol import decode_job, read_job_header
from .zygote_io import Forwarder, Out, read_exactly, read_line

WRITABLE = ("/home/student", "/tmp", "/dev/shm")
_libc = ctypes.CDLL(None, use_errno=True)


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def preimport(modules: list[str]) -> list[str]:
    """Import what every kernel of this section imports. Returns the modules that failed."""
    failed = []
    for name in ["jupyter_client", "jupyter_client.blocking", "ipykernel.kernelapp", "grader.driver",
                 "grader.kernel_launch", *modules]:
        try:
            __import__(name)
        except BaseException:  # noqa: BLE001 - the kernel will report it the way it always does
            failed.append(name)
    return failed


# ---------------------------------------------------------------------------------------------
def _remove_ipc() -> None:
    """System V IPC objects outlive their processes: remove the job's (IPC_RMID = 0)."""
    calls = {"shm": _libc.shmctl, "msg": _libc.msgctl, "sem": _libc.semctl}
    for kind, call in calls.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 1:
                ident = int(fields[1])
                if kind == "sem":
                    call(ident, 0, 0, None)
                else:
                    call(ident, 0, None)


def _entries(folder: str) -> list[str]:
    """Paths of what is in folder; none when it cannot be listed (gone, or locked to us)."""
    try:
        return [os.path.join(folder, name) for name in os.listdir(folder)]
    except OSError:
        return []


def _remove(path: str) -> None:
    """Delete a file or a whole tree, making each folder writable first (a job may lock them)."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
        for entry in _entries(path):
            _remove(entry)
        try:
            os.rmdir(path)
        except OSError:
            pass
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def tree(folder: str) -> dict[str, int]:
    """Path -> mode of everything under folder, not descending into other mounts.

    Those mounts exist: when the course's Python or venv lives under /tmp (a CI clone), bubblewrap
    binds them read-only at the same paths, inside the sandbox's /tmp."""
    found: dict[str, int] = {}
    try:
        dev = os.lstat(folder).st_dev
    except OSError:
        return found
    todo = [folder]
    while todo:
        for path in _entries(todo.pop()):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            found[path] = stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode)
            if stat.S_ISDIR(st.st_mode) and st.st_dev == dev:
                todo.append(path)
    return found


BASELINE: dict[str, int] = {}  # what the writable folders held before the first job (set in main)


def _empty(folder: str) -> None:
    """Remove what is not in the baseline and give baseline folders back their modes. What cannot
    be removed (a tree deeper than a path can name) is found by the check."""
    for path in _entries(folder):
        if path not in BASELINE:
            try:
                _remove(path)
            except RecursionError:
                pass
        elif stat.S_ISDIR(BASELINE[path]) and not os.path.ismount(path):
            try:
                os.chmod(path, stat.S_IMODE(BASELINE[path]))
            except OSError:
                pass
            _empty(path)


def _sweep_as_job() -> None:
    """Run in the job's identity: kill its processes, remove its files and IPC objects."""
    procs.kill_all_signalable()
    _remove_ipc()
    for folder in WRITABLE:
        _empty(folder)


def _as_job(uid: int | None, work) -> None:
    """Run `work` as the job's uid (in a child: the zygote keeps its own), or here when the jobs
    share the zygote's uid. Only that uid can signal the job's processes and delete its files in
    the sticky folders: the zygote keeps no capability but SETUID/SETGID."""
    if not uid:
        work()
        return
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            procs.switch_uid(uid)
            work()
            code = 0
        finally:
            os._exit(code)
    os.waitpid(helper, 0)


def clean_up(uid: int | None) -> str | None:
    """Leave the sandbox as the zygote found it. None when clean, else what is left."""
    _as_job(uid, _sweep_as_job)
    procs.reap()
    left = procs.all_pids() - {1, os.getpid()}
    if left:
        time.sleep(0.1)
        procs.reap()
        left = procs.all_pids() - {1, os.getpid()}
    if left:
        return f"processes left behind: {sorted(left)[:5]}"
    for folder in WRITABLE:
        now = tree(folder)
        before = {path: mode for path, mode in BASELINE.items() if path.startswith(folder + "/")}
        if now != before:
            changed = sorted(set(now.items()) ^ set(before.items()))
            return f"files left in {folder}: {changed[0][0]}"
    return None


# ---------------------------------------------------------------------------------------------
def _driver_child(size: int, write_fd: int) -> None:
    """The forked driver: reads its job from the zygote's stdin, then keeps nothing of the zygote's."""
    code = 70
    try:
        job = decode_job(read_exactly(0, size))
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(write_fd, 1)
        os.dup2(null, 2)
        os.closerange(3, 1 << 16)
        sys.stdin = open(os.devnull)  # noqa: SIM115
        procs.set_name("cg-driver")
        from grader import driver

        driver.serve(job, driver.Events(), fork_kernel=True)
        code = 0
    except BaseException:  # noqa: BLE001 - the host sees a run without "done"
        code = 71
    finally:
        os._exit(code)


def serve_one_job(uid: int | None, size: int, forwarder: Forwarder) -> str:
    """Fork the job's driver, forward its events until it and everything it started are gone."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _driver_child(size, write_fd)
    os.close(write_fd)
    status = None
    eof = False
    gone_at = None
    while not eof and not (gone_at and time.monotonic() - gone_at > 5):
        ready, _, _ = select.select([read_fd], [], [], 0.2)
        if ready:
            eof = not forwarder.feed(read_fd)
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
                gone_at = time.monotonic()
                # The driver is gone; so must be everything else of this job (which might hold
                # the pipe open): then the pipe reaches its end.
                _kill_job(uid)
    os.close(read_fd)
    forwarder.wipe()
    if status is None:  # the pipe ended first: the driver is on its way out, or made to be
        _kill_job(uid)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return str(status)


def _kill_job(uid: int | None) -> None:
    _as_job(uid, procs.kill_all_signalable)


def main() -> None:
    out = Out()
    procs.set_name("cg-zygote")
    procs.prctl(procs.PR_SET_DUMPABLE, 0)
    procs.prctl(procs.PR_SET_CHILD_SUBREAPER, 1)
    os.umask(0o077)
    start = time.monotonic()
    init = json.loads(read_line(0) or b"{}")
    failed = preimport(list(init.get("preimport", [])))
    if threads() != 1:
        # fork() copies one thread: a library that started threads at import cannot be forked safely
        out.control(f"unusable importing the section's libraries started {threads() - 1} thread(s)")
        return
    for folder in WRITABLE:
        BASELINE.update(tree(folder))
    forwarder = Forwarder(out)
    out.control("ready " + json.dumps({"secs": round(time.monotonic() - start, 3), "failed": failed}))
    while True:
        # A job is a header line ({"uid", "bytes"}) and its body; the body (cells, tests, key) is read
        # by the job's own driver, so this process, which every later driver is a fork of, never
        # holds it.
        line = read_line(0)
        if not line:
            return
        uid, size = read_job_header(line)
        status = serve_one_job(uid, size, forwarder)
        procs.reap()
        problem = clean_up(uid)
        if problem:
            out.control(f"unusable {problem}")
            return
        out.control(f"end {status}")


if __name__ == "__main__":
    main()
