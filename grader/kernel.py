"""One IPython kernel inside the sandbox, and the client the driver runs cells through.

A kernel is either started fresh (`python -m grader.kernel_launch`, the kernel's rlimits applied
before ipykernel loads) or, as a warm sandbox's first kernel of a job, forked from the driver,
which is itself a fork of the zygote that imported torch and the section's libraries. Cell
output is kept within a budget; past it, messages are dropped unparsed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import time
from pathlib import Path

from . import procs
from .protocol import Job

def trim_outputs(outputs: list, budget: dict, per_cell: int) -> list:
    """Keep at most `per_cell` characters of a cell's output, and what is left of the job's
    `budget` ({"left": characters, "dropped": whether anything was cut})."""
    kept = []
    for out in outputs:
        text = out.get("text", "")
        room = min(per_cell, budget["left"])
        if room <= 0:
            budget["dropped"] = True
            break
        if len(text) > room:
            text = text[:room] + "\n[output truncated by the grader]"
            budget["dropped"] = True
        budget["left"] -= len(text)
        kept.append({**out, "text": text})
    return kept


class ForkedKernelProcess:
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


def fork_kernel(job: Job, connection_file: str, log_path: Path) -> int:
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
        procs.set_name("cg-kernel")  # it was cg-driver: the watchdog may kill a kernel, never a driver
        os.chdir(job.workdir)
        os.environ.clear()
        os.environ.update(job.env)
        from grader.kernel_launch import reseed

        procs.set_rlimits(job.kernel_rlimits)
        reseed()
        from ipykernel import kernelapp

        sys.argv = ["ipykernel_launcher", "-f", connection_file]
        kernelapp.launch_new_instance()
        code = 0
    finally:
        os._exit(code)


class Kernel:
    """One IPython kernel plus its client, both inside this sandbox (they talk over loopback ZMQ)."""

    def __init__(self, job: Job, generation: int, kernel_dir: Path, log_path: Path, fork: bool = False) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.job = job
        if fork:
            from jupyter_client.blocking import BlockingKernelClient
            from jupyter_client.connect import write_connection_file

            kernel_dir.mkdir(parents=True, exist_ok=True)
            connection_file, _ = write_connection_file(str(kernel_dir / f"kernel-{generation}.json"),
                                                       ip="127.0.0.1")
            self.km = ForkedKernelProcess(fork_kernel(job, connection_file, log_path))
            self.kc = BlockingKernelClient(connection_file=connection_file)
            self.kc.load_connection_file()
            self.kc.start_channels()
            deadline = time.monotonic() + job.kernel_start_timeout
            while True:  # in steps, so that a kernel that died on the way is seen at once
                try:
                    self.kc.wait_for_ready(timeout=1)
                    return
                except RuntimeError:
                    if not self.km.is_alive() or time.monotonic() > deadline:
                        raise
        spec_dir = kernel_dir / "course-grader"
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "grader.kernel_launch", "-f", "{connection_file}"],
            "display_name": "course grader",
            "language": "python",
        }))
        env = {**job.env, "COURSE_GRADER_LIMITS": json.dumps(job.kernel_rlimits)}
        self.km = KernelManager(kernel_name="course-grader",
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
        log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the kernel
        self.km.start_kernel(cwd=job.workdir, env=env, stdout=log, stderr=log)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=job.kernel_start_timeout)

    @property
    def pid(self) -> int | None:
        return getattr(self.km.provisioner, "pid", None)

    def alive(self) -> bool:
        return bool(self.km.is_alive())

    def execute(self, code: str, timeout: float, silent: bool = False, budget: dict | None = None) -> dict:
        """Run one cell. Returns {status: ok|error|timeout|killed|died, outputs, ename, evalue, secs}."""
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
        per_cell = self.job.output_per_cell
        result = {"status": "ok", "ename": "", "evalue": ""}
        while True:
            now = time.monotonic()
            if reply is not None and (idle or flooding or now > reply_at + 2.0):
                break
            if interrupted_at is None and now > deadline:
                result["status"] = "timeout"
                self.km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + self.job.interrupt_grace:
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
                            text = content.get("text", "")[: 4 * per_cell]
                            size += len(content.get("text", ""))
                            outputs.append({"type": "stream", "name": content.get("name", "stdout"), "text": text})
                        elif kind in ("execute_result", "display_data"):
                            text = str(content.get("data", {}).get("text/plain", ""))[:per_cell]
                            size += len(text)
                            outputs.append({"type": kind, "text": text})
                        elif kind == "error":
                            result["ename"] = str(content.get("ename", ""))[:200]
                            result["evalue"] = str(content.get("evalue", ""))[:2000]
                        if size > 4 * per_cell:
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
        result["outputs"] = trim_outputs(outputs, budget, per_cell) if budget is not None else []
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
