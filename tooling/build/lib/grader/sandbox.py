"""Run one prepared submission in a bubblewrap sandbox and collect what it reports.

Layout inside the sandbox (nothing else of the host exists there):

    /usr, /bin, /lib*           read-only system
    <python prefix>, <venv>     read-only, at their host paths (the interpreter needs them)
    /opt/course-grader/grader   read-only: this package (the driver, harness, kernel launcher)
    /home/student               the working copy: a private tmpfs, size-capped, the only place
    /tmp                        private tmpfs, size-capped
    /proc, /dev                 the sandbox's own

Namespaces: network (only a loopback of its own: no host service, no DNS, no internet), pid,
ipc, uts, cgroup. The course folder, the gradebook, other submissions and the repository are
simply not mounted. The job (notebook cells, tests, HMAC key) goes in on stdin; events come back
on stdout.

Limits (per process, set inside): RLIMIT_DATA = --memory-mb for the kernel, RLIMIT_NPROC,
RLIMIT_FSIZE, RLIMIT_CPU, no core dumps. RLIMIT_NPROC is not enforced for root, so when the
grader runs as root (CI) bubblewrap runs privileged and the driver switches to a uid of its own,
unique to this job (1_000_000 + 64 * pid + slot), before anything else: the process limit then
counts exactly this sandbox. Non-root graders get an unprivileged user namespace instead.
On the host a watchdog enforces the whole-submission wall timeout and the total memory of the
sandbox's process tree, and kills the whole tree at the end, whatever happened.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GRADER_DIR = Path(__file__).resolve().parent
SANDBOX_PKG_ROOT = "/opt/course-grader"
PUBLIC_ASSETS = GRADER_DIR.parent / "assets" / "lm"  # section 7's public model files, if the course has them
WORKDIR = "/home/student"
PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_EVENT_LINE = 2_000_000
MAX_EVENTS_BYTES = 16_000_000


class SandboxUnavailable(RuntimeError):
    pass


@dataclasses.dataclass
class Limits:
    memory_mb: int = 2048
    cell_timeout: float = 60
    timeout: float = 600
    nproc: int = 128
    fsize_mb: int = 64
    tmpfs_mb: int = 256
    interrupt_grace: float | None = None  # default: half the cell timeout, 1 to 5 s
    max_restarts: int = 6
    kernel_start_timeout: float = 60
    max_relaunches: int = 2
    warm: bool = True  # a warm sandbox per worker that forks each job from pre-imported libraries


@dataclasses.dataclass
class RunOutcome:
    status: str  # ok | timeout | aborted | error
    verdicts: dict  # test id -> dict(status, where, ename, message, seconds)
    cells: dict  # cell index -> last "cell" event
    notes: list
    elapsed: float
    restarts: int = 0
    output_truncated: bool = False
    sandbox: str = "bwrap"
    invalid_verdicts: int = 0
    kernel_secs: list = dataclasses.field(default_factory=list)  # start-up time of each kernel


# ---------------------------------------------------------------------------------------------
# uid allocation: a fresh uid per concurrently running job of this process
_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _allocate_uid() -> int:
    base = 1_000_000 + 64 * (os.getpid() % 30_000_000)
    with _uid_lock:
        for slot in range(64):
            if base + slot not in _uids_in_use:
                _uids_in_use.add(base + slot)
                return base + slot
    raise RuntimeError("more than 64 concurrent sandboxes in one process")


def _release_uid(uid: int | None) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


_live: set = set()  # running sandboxes of this process, for kill_all_live()
_warm_idle: dict[tuple, list] = {}  # warm sandboxes between jobs, by what they pre-imported
_warm_refused: set[tuple] = set()  # pre-import sets a zygote cannot fork safely: cold sandboxes


def kill_all_live() -> None:
    """Kill every sandbox this process started that is still running (Ctrl-C, shutdown)."""
    with _uid_lock:
        procs = list(_live)
        _warm_idle.clear()
    for proc in procs:
        kill_tree(proc.pid)


# ---------------------------------------------------------------------------------------------
def bwrap_path() -> str | None:
    return os.environ.get("COURSE_GRADER_BWRAP") or shutil.which("bwrap")


def _ro_paths() -> list[str]:
    """Host paths the interpreter needs, read-only, at the same place."""
    paths = []
    for p in (sys.base_prefix, sys.prefix):
        real = os.path.realpath(p)
        if not real.startswith("/usr/") and real not in paths:
            paths.append(real)
        if p != real and p not in paths and not p.startswith("/usr/"):
            paths.append(p)
    exe = os.path.realpath(sys.executable)
    if not exe.startswith("/usr/") and not any(exe.startswith(p + "/") for p in paths):
        paths.append(os.path.dirname(exe))
    return paths


def bwrap_argv(limits: Limits, privileged: bool) -> list[str]:
    argv = [bwrap_path() or "bwrap",
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv"]
    if privileged:
        # bwrap drops every capability but these two; the driver uses them once to switch to
        # the job's own uid and sets no_new_privs, after which the process has none at all.
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                "/etc/nsswitch.conf", "/etc/hosts", "/etc/alternatives"):
        if os.path.exists(etc):
            argv += ["--ro-bind", etc, etc]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(limits.tmpfs_mb << 20), "--tmpfs", "/tmp"]
    made = {"/", "/usr", "/tmp", "/proc", "/dev", "/etc"}
    binds = [(p, p) for p in _ro_paths()] + [(str(GRADER_DIR), f"{SANDBOX_PKG_ROOT}/grader")]
    if PUBLIC_ASSETS.is_dir():  # section 7's model and SAEs: public (the site serves them too)
        binds.append((str(PUBLIC_ASSETS), f"{SANDBOX_PKG_ROOT}/assets/lm"))
    for src, dest in binds:
        parts = Path(dest).parts
        for k in range(2, len(parts)):
            anc = str(Path(*parts[:k]))
            if anc not in made:
                # privileged bwrap would create these 0700 (unreadable for the job's uid)
                argv += ["--perms", "0755", "--dir", anc]
                made.add(anc)
        argv += ["--ro-bind", src, dest]
        made.add(dest)
    argv += ["--perms", "0755", "--dir", "/home",
             "--perms", "1777", "--size", str(limits.tmpfs_mb << 20), "--tmpfs", WORKDIR,
             "--chdir", WORKDIR]
    for k, v in sandbox_env(WORKDIR, "/tmp").items():
        argv += ["--setenv", k, v]
    return argv


def sandbox_env(home: str, tmp: str) -> dict:
    assets = {}
    if PUBLIC_ASSETS.is_dir():  # where course_helpers.lm looks first (no download while grading)
        assets["COURSE_LM_ASSETS"] = f"{SANDBOX_PKG_ROOT}/assets/lm" if home == WORKDIR else str(PUBLIC_ASSETS)
    return {
        **assets,
        "HOME": home,
        "USER": "student",
        "LOGNAME": "student",
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": SANDBOX_PKG_ROOT if home == WORKDIR else str(GRADER_DIR.parent),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "TMPDIR": tmp,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "MPLBACKEND": "Agg",
        "IPYTHONDIR": f"{tmp}/.ipython",
        "JUPYTER_RUNTIME_DIR": f"{tmp}/.jupyter-runtime",
        "JUPYTER_DATA_DIR": f"{tmp}/.jupyter-data",
        "JUPYTER_CONFIG_DIR": f"{tmp}/.jupyter-config",
        "JUPYTER_PLATFORM_DIRS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TQDM_DISABLE": "1",  # progress bars are noise in grading (and cost output budget)
        "COURSE_GRADING": "1",
    }


@functools.lru_cache(maxsize=4)
def sandbox_problem() -> str | None:
    """None when bubblewrap works here, else a sentence saying why not."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap sandboxes need Linux"
    if not bwrap_path():
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    privileged = os.geteuid() == 0
    argv = bwrap_argv(Limits(), privileged) + [sys.executable, "-c", "import jupyter_client, ipykernel"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to start: {exc}"
    if r.returncode != 0:
        return f"bubblewrap failed here (exit {r.returncode}): {r.stderr.strip()[-300:]}"
    return None


# ---------------------------------------------------------------------------------------------
def _proc_tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
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


def _rss_bytes(pid: int) -> int:
    """Resident set size: cheap to read, and never below the proportional set size."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _mem_bytes(pid: int) -> int:
    """Proportional set size: forked copies sharing pages are not counted N times."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read(4096)
    except OSError:
        return b""


def kill_tree(root: int) -> None:
    for _ in range(5):
        pids = _proc_tree(root)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not pids:
            break
        time.sleep(0.05)
    try:
        os.kill(root, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_verdict(line: str, key: bytes) -> dict | None:
    """A verdict line from the harness, or None when its MAC does not check out."""
    try:
        body, mac = line.rsplit(" ", 1)
        expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            return None
        tag, tid, nonce, status, where, ename, msg, secs = body.split(" ")
        if tag != "CGV1" or status not in ("pass", "fail"):
            return None
        dec = lambda h: "" if h == "-" else bytes.fromhex(h).decode("utf-8", "replace")  # noqa: E731
        return {"test": tid, "status": status, "where": "" if where == "-" else where,
                "ename": dec(ename), "message": dec(msg), "seconds": float(secs)}
    except (ValueError, UnicodeError):
        return None


class _Reader(threading.Thread):
    """Reads the driver's stdout: JSON lines, bounded in size, never blocking the driver."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.events: list[dict] = []
        self.bytes = 0

    def run(self) -> None:
        buf = b""
        while True:
            chunk = self.stream.read1(1 << 16) if hasattr(self.stream, "read1") else self.stream.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._line(line)
            if len(buf) > MAX_EVENT_LINE:
                buf = b""  # an absurd line: drop it
        if buf:
            self._line(buf)

    def _line(self, line: bytes) -> None:
        if len(line) > MAX_EVENT_LINE:
            return
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("ev") != "verdict":
            self.bytes += len(line)
            if self.bytes > MAX_EVENTS_BYTES:
                return
        self.events.append(event)


def _drain(stream, keep: int = 4000) -> list[bytes]:
    tail = [b""]

    def run():
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            tail[0] = (tail[0] + chunk)[-keep:]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return tail


def _comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read(64).strip()
    except OSError:
        return b""


GRADER_PROCESSES = (b"cg-zygote", b"cg-driver")  # comm names of a warm sandbox's own processes


class _Watchdog:
    """The host's view of a sandbox: its deadline and the total memory of its processes."""

    EVERY = 0.5  # seconds between two looks at the process tree (a scan of all of /proc)

    def __init__(self, root: int, limits: Limits) -> None:
        self.root = root
        self.next_look = 0.0
        self.total_cap = int(limits.memory_mb * 1.25 + 768) << 20
        self.over_since = None

    def check(self, deadline: float) -> str | None:
        now = time.monotonic()
        if now > deadline:
            return "timeout"
        if now < self.next_look:
            return None
        self.next_look = now + self.EVERY
        tree = _proc_tree(self.root)
        # smaps_rollup walks every mapping (torch maps ~1 GB per process): read the proportional
        # sizes only when the resident sizes, which can only be larger, are over the cap.
        if sum(_rss_bytes(p) for p in tree) <= self.total_cap:
            self.over_since = None
            return None
        sizes = {p: _mem_bytes(p) for p in tree}
        if sum(sizes.values()) > self.total_cap:
            # a multi-process memory bomb: per-process limits are not enough, kill the biggest
            victims = sorted((p for p in sizes if b"grader.driver" not in _cmdline(p)
                              and _comm(p) not in GRADER_PROCESSES), key=lambda p: -sizes[p])
            if victims:
                try:
                    os.kill(victims[0], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.over_since = self.over_since or now
            if now - self.over_since > 3:
                return "memory"
        else:
            self.over_since = None
        return None


class _WarmReader(_Reader):
    """Reads a zygote's stdout: ``E`` lines are the current job's events, ``Z`` lines control."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.control: queue.Queue = queue.Queue()
        self.sink = _Reader(None)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.control.put(None)  # end of stream: the sandbox is gone

    def _line(self, line: bytes) -> None:
        if line.startswith(b"E "):
            self.sink._line(line[2:])
        elif line.startswith(b"Z "):
            self.control.put(line[2:].decode("utf-8", "replace"))


class WarmUnusable(RuntimeError):
    pass


class WarmSandbox:
    """One bubblewrap sandbox running `grader.zygote`: many jobs, one at a time (see zygote.py)."""

    def __init__(self, limits: Limits, preimport: list[str]) -> None:
        self.privileged = os.geteuid() == 0
        argv = bwrap_argv(limits, self.privileged) + [sys.executable, "-m", "grader.zygote"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd="/",
                                     start_new_session=True)
        with _uid_lock:
            _live.add(self.proc)
        self.reader = _WarmReader(self.proc.stdout)
        self.reader.start()
        self.err_tail = _drain(self.proc.stderr)
        self.usable = False
        try:
            self._send({"preimport": preimport})
            reply = self.reader.control.get(timeout=limits.kernel_start_timeout)
        except (OSError, queue.Empty):
            reply = None
        if not reply or not reply.startswith("ready"):
            self.close()
            if reply and reply.startswith("unusable"):
                raise WarmUnusable(reply[len("unusable "):])
            raise SandboxUnavailable(f"the warm sandbox did not start: {self.err_tail[0].decode('utf-8', 'replace')[-300:]}")
        self.usable = True

    def _send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.usable and self.proc.poll() is None

    def run(self, job: dict, limits: Limits, deadline: float) -> dict:
        """One job, start to end; afterwards `usable` says whether the sandbox can take another."""
        sink = self.reader.sink = _Reader(None)
        self.usable = False
        how = None
        ended = False
        status = None
        try:
            body = json.dumps(job).encode()
            self.proc.stdin.write(json.dumps({"uid": job.get("uid"), "bytes": len(body)}).encode() + b"\n" + body)
            self.proc.stdin.flush()
        except OSError:
            pass
        watch = _Watchdog(self.proc.pid, limits)
        while True:
            try:
                msg = self.reader.control.get(timeout=0.2)
            except queue.Empty:
                how = watch.check(deadline)
                if how:
                    break
                continue
            if msg is None:
                break
            if msg.startswith("end "):
                ended, status = True, msg[4:]
                break
            if msg.startswith("unusable"):
                break
        if ended:
            self.usable = True
        else:
            self.close()
        code = int(status) if status and status.lstrip("-").isdigit() else self.proc.returncode
        stderr = "" if ended else self.err_tail[0].decode("utf-8", "replace")
        return {"events": sink.events, "how": how, "returncode": code, "stderr": stderr}

    def close(self) -> None:
        self.usable = False
        kill_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        with _uid_lock:
            _live.discard(self.proc)


def _warm_key(limits: Limits, preimport: list[str]) -> tuple:
    return (limits.tmpfs_mb, tuple(preimport))


def prewarm(limits: Limits, preimport: list[str]) -> bool:
    """Start one warm sandbox and keep it idle for the next job (while the batch is prepared).

    Call it from a thread that lives as long as the sandbox should: bubblewrap's --die-with-parent
    follows the thread that started it.
    """
    key = _warm_key(limits, preimport)
    with _uid_lock:
        if key in _warm_refused:
            return False
    try:
        sandbox = WarmSandbox(limits, list(preimport))
    except WarmUnusable:
        with _uid_lock:
            _warm_refused.add(key)
        return False
    except SandboxUnavailable:
        return False
    with _uid_lock:
        _warm_idle.setdefault(key, []).append(sandbox)
    return True


def _launch_warm(job: dict, limits: Limits, deadline: float) -> dict | None:
    """Run the job in a warm sandbox of this process; None when there is none to be had."""
    key = _warm_key(limits, job.get("preimport", []))
    sandbox = None
    with _uid_lock:
        if key in _warm_refused:
            return None
        idle = _warm_idle.get(key, [])
        while idle and sandbox is None:
            candidate = idle.pop()
            if candidate.alive():
                sandbox = candidate
            else:
                candidate.close()
    if sandbox is None:
        try:
            sandbox = WarmSandbox(limits, list(key[1]))
        except WarmUnusable:
            with _uid_lock:
                _warm_refused.add(key)
            return None
        except SandboxUnavailable:
            return None
    uid = _allocate_uid() if sandbox.privileged else None
    try:
        job = {**job, "uid": uid, "gid": uid, "isolated": True, "scratch": "/tmp", "workdir": WORKDIR,
               "env": sandbox_env(WORKDIR, "/tmp")}
        result = sandbox.run(job, limits, deadline)
    finally:
        _release_uid(uid)
        if sandbox.alive():
            with _uid_lock:
                _warm_idle.setdefault(key, []).append(sandbox)
        else:
            sandbox.close()
    return result


def _launch(job: dict, limits: Limits, unsafe: bool, deadline: float) -> dict:
    """One driver process, start to end. Returns raw events plus how it ended."""
    if limits.warm and not unsafe:
        result = _launch_warm(job, limits, deadline)
        if result is not None:
            return result
    privileged = os.geteuid() == 0
    uid = None
    scratch = None
    if unsafe:
        scratch = tempfile.mkdtemp(prefix="course-grader-")
        work = os.path.join(scratch, "home")
        os.mkdir(work)
        job = {**job, "uid": None, "isolated": False, "scratch": scratch, "workdir": work,
               "env": sandbox_env(work, scratch)}
        argv = [sys.executable, "-m", "grader.driver"]
        env = {**sandbox_env(work, scratch), "PYTHONPATH": str(GRADER_DIR.parent)}
        cwd = work
    else:
        if privileged:
            uid = _allocate_uid()
        job = {**job, "uid": uid, "gid": uid, "isolated": True, "scratch": "/tmp", "workdir": WORKDIR,
               "env": sandbox_env(WORKDIR, "/tmp")}
        argv = bwrap_argv(limits, privileged) + [sys.executable, "-m", "grader.driver"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        cwd = "/"
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=cwd, start_new_session=True)
        with _uid_lock:
            _live.add(proc)
        reader = _Reader(proc.stdout)
        reader.start()
        err_tail = _drain(proc.stderr)
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        how = None
        watch = _Watchdog(proc.pid, limits)
        while proc.poll() is None:
            how = watch.check(deadline)
            if how:
                break
            time.sleep(0.2)
        kill_tree(proc.pid)
        proc.wait()
        with _uid_lock:
            _live.discard(proc)
        reader.join(timeout=5)
        return {"events": reader.events, "how": how, "returncode": proc.returncode,
                "stderr": err_tail[0].decode("utf-8", "replace")}
    finally:
        _release_uid(uid)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def run_job(job: dict, limits: Limits, unsafe: bool = False) -> RunOutcome:
    """Execute a prepared job (see autograde.prepare_job) and return what happened.

    Verdicts are checked against a key generated here, so a job that runs on a remote Dask
    worker never sends its key over the network.
    """
    key = secrets.token_bytes(32)
    job = {
        **job,
        "key": key.hex(),
        "harness": (GRADER_DIR / "harness.py").read_text(),
        "cell_timeout": limits.cell_timeout,
        "interrupt_grace": limits.interrupt_grace or max(1.0, min(5.0, limits.cell_timeout / 2)),
        "kernel_start_timeout": limits.kernel_start_timeout,
        "max_restarts": limits.max_restarts,
        "driver_limits": {
            "RLIMIT_NPROC": limits.nproc,
            "RLIMIT_FSIZE": limits.fsize_mb << 20,
            "RLIMIT_CORE": 0,
            "RLIMIT_CPU": int(limits.timeout) + 60,
            "RLIMIT_NOFILE": 1024,
            "RLIMIT_DATA": (max(limits.memory_mb, 2048) + 1024) << 20,
        },
        "kernel_limits": {"RLIMIT_DATA": limits.memory_mb << 20},
    }
    start = time.monotonic()
    deadline = start + limits.timeout
    verdicts: dict = {}
    cells: dict = {}
    notes: list = []
    invalid = 0
    restarts = 0
    truncated = False
    status = "ok"
    done_tests: set = set()
    killers: set = set(job.get("killers", []))
    kernel_secs: list = []
    for attempt in range(limits.max_relaunches + 1):
        run = _launch(job, limits, unsafe, deadline)
        started = None
        finished = False
        fatal = None
        for ev in run["events"]:
            kind = ev.get("ev")
            if kind == "verdict":
                v = parse_verdict(str(ev.get("line", "")), key)
                if v is None or v["test"] not in job["tests"]:
                    invalid += 1
                    continue
                prev = verdicts.get(v["test"])
                if prev is None or v["status"] == "fail":  # two verdicts for one test: a failure wins
                    verdicts[v["test"]] = v
            elif kind == "start":
                started = ev.get("i")
            elif kind == "cell" and isinstance(ev.get("i"), int):
                cells[ev["i"]] = ev
                started = None
                if 0 <= ev["i"] < len(job["cells"]) and job["cells"][ev["i"]]["kind"] == "test":
                    done_tests.add(job["cells"][ev["i"]]["ref"])
            elif kind == "restart":
                restarts += 1
            elif kind == "kernel":
                kernel_secs.append(ev.get("secs"))
            elif kind == "done":
                finished = True
                truncated = truncated or bool(ev.get("output_truncated"))
            elif kind == "fatal":
                fatal = str(ev.get("message", ""))[:300]
        if finished:
            break
        if run["how"] == "timeout":
            status = "timeout"
            where = f" (while running cell {started})" if started is not None else ""
            notes.append(f"stopped at the whole-submission time limit of {limits.timeout:g} s{where}")
            break
        if run["how"] == "memory":
            status = "aborted"
            notes.append(f"stopped: the submission's processes used more than {limits.memory_mb} MB together")
            break
        if fatal and started is None:
            status = "aborted" if cells else "error"
            notes.append(f"grading failed: {fatal}")
            if run["stderr"].strip():
                notes.append(run["stderr"].strip()[-300:])
            break
        # The driver itself was killed (e.g. the submission killed its parent): grade the rest in a
        # fresh sandbox, skipping the cell that did it.
        if started is None:
            status = "error"
            notes.append(f"the sandbox exited unexpectedly (exit {run['returncode']}): {run['stderr'].strip()[-300:]}")
            break
        if started is not None:
            killers.add(started)
            if job["cells"][started]["kind"] == "test":
                done_tests.add(job["cells"][started]["ref"])
            cells.setdefault(started, {"ev": "cell", "i": started, "status": "killed-sandbox", "outputs": []})
            notes.append(f"cell {started} killed the grading process; the rest was graded in a fresh sandbox")
        if attempt == limits.max_relaunches:
            status = "aborted"
            notes.append("gave up after the submission killed the grading process repeatedly")
            break
        job = {**job, "start_index": started + 1, "killers": sorted(killers), "done_tests": sorted(done_tests)}
    return RunOutcome(status=status, verdicts=verdicts, cells=cells, notes=notes,
                      elapsed=round(time.monotonic() - start, 3), restarts=restarts,
                      output_truncated=truncated, sandbox="none" if unsafe else "bwrap",
                      invalid_verdicts=invalid, kernel_secs=kernel_secs)
