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

import ctypes
import json
import os
import resource
import secrets
import signal
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
SECRETS_DIR = Path("/tmp/.course-grader")  # re-rooted under job["scratch"] in main()
KERNEL_DIR = Path("/tmp/.course-grader-kernels")
MAX_OUTPUT_PER_CELL = 20_000  # characters kept per cell for the instructor's copy
MAX_OUTPUT_TOTAL = 400_000


class Events:
    def __init__(self) -> None:
        self.out = os.fdopen(os.dup(1), "wb", buffering=0)
        # Nothing else in this process may write to the event stream.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)

    def send(self, **event) -> None:
        self.out.write((json.dumps(event) + "\n").encode())


def drop_privileges(uid: int | None, gid: int | None) -> None:
    if os.getuid() == 0 and uid:
        os.setgroups([])
        os.setresgid(gid or uid, gid or uid, gid or uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SystemExit("could not drop root privileges")
    # No setuid binary inside the sandbox may give privileges back.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def set_limits(limits: dict) -> None:
    for name, value in limits.items():
        value = int(value)
        res = getattr(resource, name)
        soft, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))


ISOLATED = True  # in a pid namespace of our own (False with --unsafe-no-sandbox)
PROTECTED: set[int] = set()  # processes no sweep may kill (a warm sandbox's zygote)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
                ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_strays(keep: set[int]) -> int:
    """SIGKILL every process the cells left behind, keeping only the driver and the live kernel.

    In the sandbox that is every process of the pid namespace but init; without a sandbox, only
    the driver's descendants (it is a child subreaper, so orphans stay its descendants). Returns
    only when they are all gone and reaped: until then they count against RLIMIT_NPROC, and a
    kernel started next could not start its threads.
    """
    killed = 0
    me = os.getpid()
    deadline = time.monotonic() + 3
    while True:  # a fork bomb may still be spawning: sweep until nothing is left
        if ISOLATED:
            pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
        else:
            pids = sorted(_descendants(me))
        left = [pid for pid in pids if pid not in keep and pid != me and pid != 1 and pid not in PROTECTED]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        _reap()
        if not left or time.monotonic() > deadline:
            return killed
        time.sleep(0.01)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _trim_outputs(outputs: list, budget: dict) -> list:
    kept = []
    for out in outputs:
        text = out.get("text", "")
        room = min(MAX_OUTPUT_PER_CELL, budget["left"])
        if room <= 0:
            budget["dropped"] = True
            break
        if len(text) > room:
            text = text[:room] + "\n[output truncated by the grader]"
            budget["dropped"] = True
        budget["left"] -= len(text)
        kept.append({**out, "text": text})
    return kept


class _ForkedKernelProcess:
    """What the driver needs of a KernelManager, for a kernel that is a fork of this process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.provisioner = self
        self.exited = False

    def is_alive(self) -> bool:
        if self.exited:
            return False
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by a sweep
            done = self.pid
        self.exited = bool(done)
        return not self.exited

    def interrupt_kernel(self) -> None:
        if self.is_alive():
            os.kill(self.pid, signal.SIGINT)

    def shutdown_kernel(self, now: bool = True) -> None:
        if self.is_alive():
            os.kill(self.pid, signal.SIGKILL)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        self.exited = True


def _fork_kernel(job: dict, connection_file: str, log_path: Path) -> int:
    """Start an IPython kernel as a fork of this process, whose parent imported torch and the rest.

    Call only while this process has one thread (before any client channel exists): fork copies
    the calling thread alone.
    """
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 1 << 16)
        os.setsid()
        ctypes.CDLL(None, use_errno=True).prctl(15, b"cg-kernel", 0, 0, 0)  # PR_SET_NAME (was cg-driver)
        os.chdir(job["workdir"])
        os.environ.clear()
        os.environ.update(job["env"])
        from grader.kernel_launch import apply_limits, reseed

        apply_limits(job["kernel_limits"])
        reseed()
        from ipykernel import kernelapp

        sys.argv = ["ipykernel_launcher", "-f", connection_file]
        kernelapp.launch_new_instance()
        code = 0
    finally:
        os._exit(code)


class Kernel:
    """One IPython kernel plus its client, both inside this sandbox (they talk over loopback ZMQ)."""

    def __init__(self, job: dict, events: Events, generation: int, fork: bool = False) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.job = job
        self.events = events
        log_path = SECRETS_DIR.parent / f"kernel-{generation}.log"
        if fork:
            from jupyter_client.blocking import BlockingKernelClient
            from jupyter_client.connect import write_connection_file

            KERNEL_DIR.mkdir(parents=True, exist_ok=True)
            connection_file, _ = write_connection_file(str(KERNEL_DIR / f"kernel-{generation}.json"),
                                                       ip="127.0.0.1")
            self.km = _ForkedKernelProcess(_fork_kernel(job, connection_file, log_path))
            self.kc = BlockingKernelClient(connection_file=connection_file)
            self.kc.load_connection_file()
            self.kc.start_channels()
            deadline = time.monotonic() + job["kernel_start_timeout"]
            while True:  # in steps, so that a kernel that died on the way is seen at once
                try:
                    self.kc.wait_for_ready(timeout=1)
                    return
                except RuntimeError:
                    if not self.km.is_alive() or time.monotonic() > deadline:
                        raise
        spec_dir = KERNEL_DIR / "course-grader"
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "grader.kernel_launch", "-f", "{connection_file}"],
            "display_name": "course grader",
            "language": "python",
        }))
        env = {**job["env"], "COURSE_GRADER_LIMITS": json.dumps(job["kernel_limits"])}
        self.km = KernelManager(kernel_name="course-grader",
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(KERNEL_DIR)]))
        log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the kernel
        self.km.start_kernel(cwd=job["workdir"], env=env, stdout=log, stderr=log)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=job["kernel_start_timeout"])

    @property
    def pid(self) -> int | None:
        return getattr(self.km.provisioner, "pid", None)

    def alive(self) -> bool:
        return bool(self.km.is_alive())

    def execute(self, code: str, timeout: float, silent: bool = False, budget: dict | None = None) -> dict:
        """Run one cell. Returns {status: ok|error|timeout|killed|died, outputs, ename, evalue, secs}."""
        import queue

        start = time.monotonic()
        msg_id = self.kc.execute(code, silent=silent, store_history=not silent,
                                 allow_stdin=False, stop_on_error=False)
        deadline = start + timeout
        outputs: list[dict] = []
        size = 0
        reply = None
        idle = False
        interrupted_at = None
        flooding = False
        result = {"status": "ok", "ename": "", "evalue": ""}
        while True:
            now = time.monotonic()
            if reply is not None and (idle or flooding or now > reply_at + 2.0):
                break
            if interrupted_at is None and now > deadline:
                result["status"] = "timeout"
                self.km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + self.job["interrupt_grace"]:
                result["status"] = "killed"  # ignored the interrupt: the kernel must go
                self.km.shutdown_kernel(now=True)
                break
            got = False
            if flooding:
                # Past the output budget: drop raw frames unparsed (decoding 100 MB of JSON is
                # the expensive part); the shell reply alone tells when the cell is done.
                sock = self.kc.iopub_channel.socket
                if sock.poll(50):
                    while sock.poll(0):
                        sock.recv_multipart(copy=False)
                    got = True
            else:
                try:
                    msg = self.kc.get_iopub_msg(timeout=0.05)
                    got = True
                    if msg["parent_header"].get("msg_id") == msg_id:
                        kind = msg["msg_type"]
                        content = msg["content"]
                        if kind == "status" and content.get("execution_state") == "idle":
                            idle = True
                        elif kind == "stream":
                            text = content.get("text", "")[: 4 * MAX_OUTPUT_PER_CELL]
                            size += len(content.get("text", ""))
                            outputs.append({"type": "stream", "name": content.get("name", "stdout"), "text": text})
                        elif kind in ("execute_result", "display_data"):
                            text = str(content.get("data", {}).get("text/plain", ""))[:MAX_OUTPUT_PER_CELL]
                            size += len(text)
                            outputs.append({"type": kind, "text": text})
                        elif kind == "error":
                            result["ename"] = str(content.get("ename", ""))[:200]
                            result["evalue"] = str(content.get("evalue", ""))[:2000]
                        if size > 4 * MAX_OUTPUT_PER_CELL:
                            flooding = True
                            if budget is not None:
                                budget["dropped"] = True
                except queue.Empty:
                    pass
            if reply is None:
                try:
                    shell = self.kc.get_shell_msg(timeout=0)
                    if shell["parent_header"].get("msg_id") == msg_id:
                        reply = shell["content"]
                        reply_at = time.monotonic()
                        got = True
                except queue.Empty:
                    pass
            if not got and not self.alive():
                result["status"] = "died"
                break
        if flooding:  # leave no backlog of huge messages for the next cell to parse
            sock = self.kc.iopub_channel.socket
            while sock.poll(200):
                sock.recv_multipart(copy=False)
        if reply is not None and result["status"] == "ok" and reply.get("status") != "ok":
            result["status"] = "error"
            result["ename"] = result["ename"] or str(reply.get("ename", ""))[:200]
            result["evalue"] = result["evalue"] or str(reply.get("evalue", ""))[:2000]
        result["secs"] = round(time.monotonic() - start, 3)
        result["outputs"] = _trim_outputs(outputs, budget) if budget is not None else []
        return result

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001
            pass


def secrets_for(job: dict, nonces: dict, done: set, skipped: set) -> str:
    """Write the harness's one-time secrets file and return the bootstrap code that consumes it."""
    SECRETS_DIR.mkdir(mode=0o700, exist_ok=True)
    path = SECRETS_DIR / f"s-{secrets.token_hex(8)}.json"
    required = {}
    for tid, hashes in job["required"].items():
        required[tid] = [h for h, i in hashes if i not in skipped]
    payload = {
        "key": job["key"],
        "verdict_path": str(SECRETS_DIR / "verdicts"),
        "tests": job["tests"],
        "nonces": nonces,
        "instructor": job["instructor_hashes"],
        "required": required,
        "done": sorted(done),
        "preimport": job.get("preimport", []),
        "library_classes": job.get("library_classes", []),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    return (
        "def _course_grader_boot():\n"
        "    ns = {'__name__': '_course_grader', '__builtins__': __import__('builtins')}\n"
        f"    exec(compile({job['harness']!r}, '<course-grader>', 'exec'), ns)\n"
        f"    ns['install']({str(path)!r})\n"
        "_course_grader_boot()\n"
        "del _course_grader_boot\n"
    )


class _Restart(Exception):
    """The kernel died while replaying earlier cells: start another one without that cell."""


class VerdictTail:
    def __init__(self) -> None:
        self.path = SECRETS_DIR / "verdicts"
        self.offset = 0

    def forward(self, events: Events) -> list[str]:
        lines = []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(1_000_000)
                self.offset += len(chunk)
        except FileNotFoundError:
            return lines
        for raw in chunk.split(b"\n"):
            if raw.startswith(b"CGV1 ") and len(raw) < 8000:
                line = raw.decode("ascii", "replace")
                lines.append(line)
                events.send(ev="verdict", line=line)
        return lines


def run(job: dict, events: Events, fork_kernel: bool = False) -> None:
    cells = job["cells"]
    nonces = {tid: secrets.token_hex(8) for tid in job["tests"]}
    done: set[str] = set(job.get("done_tests", []))
    skipped: set[int] = set(job.get("killers", []))  # cells that killed a kernel: never replayed
    budget = {"left": MAX_OUTPUT_TOTAL, "dropped": False}
    tail = VerdictTail()
    generation = 0
    restarts = 0

    def start_kernel(upto: int) -> Kernel:
        nonlocal generation
        generation += 1
        t0 = time.monotonic()
        # Only the first kernel can be a fork: by the next one this process runs client threads.
        kernel = Kernel(job, events, generation, fork=fork_kernel and generation == 1)
        boot = kernel.execute(secrets_for(job, nonces, done, skipped), timeout=120, silent=True)
        if boot["status"] != "ok":
            raise RuntimeError(f"grader harness failed to start: {boot['ename']} {boot['evalue']}")
        events.send(ev="kernel", generation=generation, secs=round(time.monotonic() - t0, 3), replay_upto=upto)
        for j in range(job.get("replay_from", 0), upto):  # silently rebuild the state of cells before `upto`
            cell = cells[j]
            if cell["kind"] == "test" or j in skipped:
                continue
            res = kernel.execute(cell["code"], timeout=job["cell_timeout"])
            if res["status"] in ("died", "killed"):
                skipped.add(j)
                events.send(ev="replay_failed", i=j, status=res["status"])
                raise _Restart(j)
            kill_strays({kernel.pid} if kernel.pid else set())
        return kernel

    start = job.get("start_index", 0)
    kernel = None
    while kernel is None:
        try:
            kernel = start_kernel(start)
        except _Restart:
            restarts += 1
            if restarts > job["max_restarts"]:
                events.send(ev="fatal", message="the kernel kept dying while replaying earlier cells")
                return
    i = start
    while i < len(cells):
        cell = cells[i]
        if i in skipped:
            i += 1
            continue
        code = cell["code"]
        if cell["kind"] == "test":
            if cell["ref"] in done:
                i += 1
                continue
            code = f"_course_grader_run({cell['ref']!r}, {nonces[cell['ref']]!r})"
        events.send(ev="start", i=i)
        res = kernel.execute(code, timeout=job["cell_timeout"], budget=budget)
        tail.forward(events)
        if cell["kind"] == "test":
            done.add(cell["ref"])
        events.send(ev="cell", i=i, **res)
        if res["status"] in ("died", "killed"):
            skipped.add(i)
            kernel.shutdown()
            kill_strays(set())
            while True:
                restarts += 1
                if restarts > job["max_restarts"]:
                    events.send(ev="fatal", message=f"too many kernel restarts (limit {job['max_restarts']})")
                    return
                events.send(ev="restart", at=i, reason=res["status"])
                try:
                    kernel = start_kernel(i + 1)
                    break
                except _Restart:
                    continue
        else:
            kill_strays({kernel.pid} if kernel.pid else set())
        i += 1
    tail.forward(events)
    kernel.shutdown()
    kill_strays(set())
    events.send(ev="done", restarts=restarts, output_truncated=budget["dropped"])


def serve(job: dict, events: Events, fork_kernel: bool = False) -> None:
    """Grade one job: drop privileges, set limits, run the cells. `fork_kernel`: this process is a
    fork of the warm sandbox's zygote (`grader.zygote`), so its first kernel can be a fork too."""
    global SECRETS_DIR, KERNEL_DIR, ISOLATED, PROTECTED
    drop_privileges(job.get("uid"), job.get("gid"))
    if fork_kernel:
        PROTECTED = {os.getppid()}  # the zygote: it outlives this job
        # Dropping root made this process undumpable, and its kernel would inherit that: the
        # host's memory watchdog could then not read the kernel's proportional set size.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    set_limits(job["driver_limits"])
    os.umask(0o077)
    ISOLATED = bool(job.get("isolated", True))
    scratch = Path(job.get("scratch", "/tmp"))
    SECRETS_DIR, KERNEL_DIR = scratch / ".course-grader", scratch / ".course-grader-kernels"
    try:
        run(job, events, fork_kernel)
    except Exception as exc:  # noqa: BLE001 - report, the host decides what it means
        events.send(ev="fatal", message=f"{type(exc).__name__}: {exc}"[:500])
        kill_strays(set())


def main() -> None:
    events = Events()
    job = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    serve(job, events)


if __name__ == "__main__":
    main()
