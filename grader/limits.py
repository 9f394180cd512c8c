"""Every limit a submission runs under, in one place, with why each derived value is what it is.

The instructor sets four (`course grade --memory-mb --cell-timeout --timeout --cold-sandboxes`);
everything else is either a fixed policy below or derived from those.
"""

from __future__ import annotations

import dataclasses

MB = 1 << 20


@dataclasses.dataclass
class Limits:
    memory_mb: int = 2048  # --memory-mb: what one submission's kernel may allocate
    cell_timeout: float = 60  # --cell-timeout: one cell's wall time
    timeout: float = 600  # --timeout: the whole submission's wall time, enforced by the host
    nproc: int = 128  # processes of the job's uid: room for a DataLoader's workers, not for a fork bomb
    fsize_mb: int = 64  # largest file a cell may write
    tmpfs_mb: int = 256  # size of each of the sandbox's two writable folders (/tmp, /home/student)
    interrupt_grace: float | None = None  # None: derived (`grace`)
    max_restarts: int = 6  # kernel restarts after crashes or hangs, per submission
    kernel_start_timeout: float = 60
    max_relaunches: int = 2  # fresh sandboxes after the submission killed its driver
    # Output kept for the instructor's copy of the graded notebook (characters). A cell printing
    # more than 4x its share stops being parsed at all: decoding floods is what costs CPU.
    output_per_cell: int = 20_000
    output_total: int = 400_000
    warm: bool = True  # a warm sandbox per worker that forks each job from pre-imported libraries

    @property
    def grace(self) -> float:
        """How long a cell may ignore the interrupt sent at its timeout before its kernel is killed:
        half the cell timeout (time for `finally` blocks and KeyboardInterrupt handlers), at least
        1 s (a busy kernel needs that to notice SIGINT), at most 5 s (a cell that swallows the
        interrupt should not get much more than it was given)."""
        if self.interrupt_grace is not None:
            return self.interrupt_grace
        return max(1.0, min(5.0, self.cell_timeout / 2))

    @property
    def kernel_rlimits(self) -> dict[str, int]:
        """The kernel: RLIMIT_DATA = --memory-mb (heap and anonymous mappings, what tensors and
        lists use; not RLIMIT_AS, since importing torch alone reserves ~600 MB of address space it
        never touches). An allocation past it raises MemoryError in the cell."""
        return {"RLIMIT_DATA": self.memory_mb * MB}

    @property
    def driver_rlimits(self) -> dict[str, int]:
        """The driver, inherited by its kernels and whatever they start (the kernel then lowers
        RLIMIT_DATA to its own cap)."""
        return {
            "RLIMIT_NPROC": self.nproc,
            "RLIMIT_FSIZE": self.fsize_mb * MB,
            "RLIMIT_CORE": 0,  # a crashing kernel writes no core file into the tmpfs
            # CPU time only backs up the host's wall timeout (which fires first): a minute beyond it
            "RLIMIT_CPU": int(self.timeout) + 60,
            "RLIMIT_NOFILE": 1024,
            # The driver holds jupyter_client and, in a warm sandbox, a fork of torch's import: it
            # gets the kernel's cap plus 1 GB, and never under 3 GB, so a small --memory-mb starves
            # only the student's code, never the grader's own process.
            "RLIMIT_DATA": (max(self.memory_mb, 2048) + 1024) * MB,
        }

    @property
    def tree_memory_cap(self) -> int:
        """The host watchdog's cap on the proportional memory of the whole sandbox: the kernel's
        cap plus a quarter (a kernel's RLIMIT_DATA does not count its stack, file-backed pages or
        what forked children allocate each under their own cap) plus 768 MB for the grader's own
        processes (zygote, driver: torch's libraries mapped once). A multi-process memory bomb,
        each process under its own limit, is stopped by this one."""
        return int(self.memory_mb * 1.25 + 768) * MB
