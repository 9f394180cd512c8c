"""The bubblewrap command: what a sandbox sees of the host, and the environment it runs with.

    /usr, /bin, /lib*           read-only system
    <python prefix>, <venv>     read-only, at their host paths (the interpreter needs them)
    /opt/course-grader/grader   read-only: this package (driver, zygote, harness, kernel launcher)
    /opt/course-data/<name>     read-only: the course data folders the section declares (`data:`)
    /home/student               the working copy: a private tmpfs, size-capped
    /tmp                        private tmpfs, size-capped
    /proc, /dev                 the sandbox's own

Namespaces: network (only a loopback of its own: no host service, no DNS), pid, ipc, uts, cgroup.
The course folder, the gradebook, other submissions and the repository are not mounted. A root
grader runs bubblewrap privileged with only CAP_SETUID/CAP_SETGID (RLIMIT_NPROC is not enforced
for root, so the driver switches to a uid of the job's own); any other grader gets an
unprivileged user namespace.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .limits import MB, Limits
from .protocol import DataBind

GRADER_DIR = Path(__file__).resolve().parent
SANDBOX_PKG_ROOT = "/opt/course-grader"
SANDBOX_DATA_ROOT = "/opt/course-data"
WORKDIR = "/home/student"
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                "/etc/nsswitch.conf", "/etc/hosts", "/etc/alternatives")


def bwrap_path() -> str | None:
    return os.environ.get("COURSE_GRADER_BWRAP") or shutil.which("bwrap")


def data_binds(folders) -> list[DataBind]:
    """`build_tools.config.DataFolder`s → binds at /opt/course-data/<name>."""
    return [DataBind(host=str(f.path), sandbox=f"{SANDBOX_DATA_ROOT}/{f.name}", env=f.env) for f in folders]


def _interpreter_paths() -> list[str]:
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


def bwrap_argv(limits: Limits, privileged: bool, data: list[DataBind] = ()) -> list[str]:
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
    for etc in SYSTEM_FILES:
        if os.path.exists(etc):
            argv += ["--ro-bind", etc, etc]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(limits.tmpfs_mb * MB), "--tmpfs", "/tmp"]
    made = {"/", "/usr", "/tmp", "/proc", "/dev", "/etc"}
    binds = ([(p, p) for p in _interpreter_paths()] + [(str(GRADER_DIR), f"{SANDBOX_PKG_ROOT}/grader")]
             + [(d.host, d.sandbox) for d in data])
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
             "--perms", "1777", "--size", str(limits.tmpfs_mb * MB), "--tmpfs", WORKDIR,
             "--chdir", WORKDIR]
    for k, v in sandbox_env(WORKDIR, "/tmp", data).items():
        argv += ["--setenv", k, v]
    return argv


def sandbox_env(home: str, tmp: str, data: list[DataBind] = ()) -> dict:
    """The whole environment of the driver and its kernels. `home` is the sandbox's working copy,
    or a host folder for an unsafe run (then data variables point at the host paths)."""
    inside = home == WORKDIR
    return {
        **{d.env: d.sandbox if inside else d.host for d in data},
        "HOME": home,
        "USER": "student",
        "LOGNAME": "student",
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": SANDBOX_PKG_ROOT if inside else str(GRADER_DIR.parent),
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
