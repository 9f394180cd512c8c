"""The host's view of a running sandbox: the whole-submission deadline and the total memory of its
processes. Per-process limits (RLIMIT_DATA) cannot stop a submission that forks many processes
each under its own cap; this sums the tree's proportional memory and kills the largest of the
submission's processes while the sum is over `Limits.tree_memory_cap`.
"""

from __future__ import annotations

import time

from . import procs
from .limits import Limits

GRADER_PROCESSES = (b"cg-zygote", b"cg-driver")  # comm names of a warm sandbox's own processes
EVERY = 0.5  # seconds between two looks at the process tree (each a scan of all of /proc)
OVER_FOR = 3  # seconds over the cap, killing all the while, before the submission is aborted


class Watchdog:
    def __init__(self, root: int, limits: Limits) -> None:
        self.root = root
        self.cap = limits.tree_memory_cap
        self.next_look = 0.0
        self.over_since: float | None = None

    def check(self, deadline: float) -> str | None:
        """None while all is well; "timeout" past the deadline; "memory" when killing the largest
        process did not bring the tree under the cap within OVER_FOR seconds."""
        now = time.monotonic()
        if now > deadline:
            return "timeout"
        if now < self.next_look:
            return None
        self.next_look = now + EVERY
        tree = procs.descendants(self.root)
        # smaps_rollup walks every mapping (torch maps ~1 GB per process): read the proportional
        # sizes only when the resident sizes, which can only be larger, are over the cap.
        if sum(procs.rss_bytes(p) for p in tree) <= self.cap:
            self.over_since = None
            return None
        sizes = {p: procs.pss_bytes(p) for p in tree}
        if sum(sizes.values()) <= self.cap:
            self.over_since = None
            return None
        victims = sorted((p for p in sizes if b"grader.driver" not in procs.cmdline(p)
                          and procs.comm(p) not in GRADER_PROCESSES), key=lambda p: -sizes[p])
        if victims:
            procs.kill(victims[0])
        self.over_since = self.over_since or now
        return "memory" if now - self.over_since > OVER_FOR else None
