"""Process plumbing shared by the host, the zygote and the driver: walking a process tree, killing
and reaping, resource limits, prctl. Linux only; everything reads /proc directly (cheap enough
to run every half second against a tree that maps torch, and usable inside the sandbox).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time

PR_SET_DUMPABLE = 4  # 0: no ptrace, no /proc/<pid>/mem or fd/ for anyone but root
PR_SET_NAME = 15  # the process's comm, how the host's watchdog recognises the grader's own processes
PR_SET_CHILD_SUBREAPER = 36  # orphans of our descendants stay our descendants (so sweeps find them)
PR_SET_NO_NEW_PRIVS = 38  # no setuid binary can give privileges back
PAGE = os.sysconf("SC_PAGE_SIZE")

_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, value) -> None:
    _libc.prctl(option, value, 0, 0, 0)


def set_name(name: str) -> None:
    prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()))


def set_rlimits(limits: dict[str, int]) -> None:
    """Soft and hard limit both set (a process cannot raise them again), never above a hard limit
    already in place. `limits`: resource name (RLIMIT_DATA) -> value."""
    for name, value in limits.items():
        res = getattr(resource, name)
        _, hard = resource.getrlimit(res)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))


def switch_uid(uid: int) -> None:
    """Become `uid` (group too, no supplementary groups) for good: real, effective and saved ids."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


# ---------------------------------------------------------------------------------------------
def all_pids() -> set[int]:
    return {int(e) for e in os.listdir("/proc") if e.isdigit()}


def descendants(root: int) -> set[int]:
    """Every process below `root` (not root itself), from one pass over /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_tree(root: int) -> None:
    """SIGKILL root and everything below it, sweeping again while new processes appear."""
    for _ in range(5):
        pids = descendants(root)
        for pid in pids:
            kill(pid)
        if not pids:
            break
        time.sleep(0.05)
    kill(root)


def reap() -> None:
    """Collect every child that has exited (zombies count against RLIMIT_NPROC)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def uid_has_living(uid: int, exclude: set[int]) -> bool:
    """Whether a process of `uid` other than `exclude` is still running (zombies do not count)."""
    for pid in all_pids() - exclude:
        try:
            with open(f"/proc/{pid}/status", "rb") as fh:
                status = fh.read(4096)
        except OSError:
            continue
        fields = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        state = fields.get(b"State", b"").split()[:1]
        uids = fields.get(b"Uid", b"").split()[:1]
        if state not in ([b"Z"], [b"X"]) and uids == [str(uid).encode()]:
            return True
    return False


def kill_all_signalable() -> None:
    """SIGKILL every process the caller may signal (`kill(-1)`: never itself, never the pid
    namespace's init), until none of its uid is left."""
    me = os.getpid()
    for _ in range(400):  # a fork bomb may still be spawning
        try:
            os.kill(-1, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.002)
        if not uid_has_living(os.getuid(), {me, 1}):
            return


# ---------------------------------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    """Resident set size: cheap to read, and never below the proportional set size."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size (forked copies sharing pages are not counted N times); the resident
    size where the kernel does not say."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss_bytes(pid)


def comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read(64).strip()
    except OSError:
        return b""


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read(4096)
    except OSError:
        return b""
