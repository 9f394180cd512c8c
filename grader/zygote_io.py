"""The zygote's two streams: reading a job's header without touching its body, and forwarding the
job's events through one buffer that is wiped after every job."""

from __future__ import annotations

import ctypes
import os

from .protocol import CONTROL_PREFIX, EVENT_PREFIX
from .streams import MAX_EVENT_LINE


class Out:
    def __init__(self) -> None:
        self.fh = os.fdopen(os.dup(1), "wb", buffering=0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # stderr stays: the host keeps its tail for the notes

    def control(self, text: str) -> None:
        self.fh.write(CONTROL_PREFIX + text.encode() + b"\n")

    def event(self, line) -> None:
        os.writev(self.fh.fileno(), [EVENT_PREFIX, line, b"\n"])  # no copy of the line in this heap


def read_line(fd: int, limit: int = 65536) -> bytes:
    """One line from fd, byte by byte: nothing past it is read (the next bytes are not ours)."""
    data = bytearray()
    while len(data) < limit:
        ch = os.read(fd, 1)
        if not ch or ch == b"\n":
            break
        data += ch
    return bytes(data)


def read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError(f"job cut short: {left} of {n} bytes missing")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Forwarder:
    """Copies the job's event lines to stdout as ``E <line>``, through one fixed buffer.

    The buffer is zeroed after every job: the next job's driver is a fork of this process, and
    must not find the previous job's outputs in its copy of the heap.
    """

    def __init__(self, out: Out) -> None:
        self.out = out
        self.buf = bytearray(MAX_EVENT_LINE + (1 << 16))
        self.view = memoryview(self.buf)
        self.raw = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
        self.used = 0
        self.skipping = False  # inside a line too long to forward

    def feed(self, fd: int) -> bool:
        """Read what is there; False at end of stream."""
        n = os.readv(fd, [self.view[self.used:]])
        if n == 0:
            return False
        end = self.used + n
        start = 0
        while True:
            nl = self.buf.find(b"\n", start, end)
            if nl < 0:
                break
            if not self.skipping and nl > start:
                self.out.event(self.view[start:nl])
            self.skipping = False
            start = nl + 1
        rest = end - start
        if rest and start:
            ctypes.memmove(self.raw, ctypes.byref(self.raw, start), rest)  # keep the partial line
        self.used = rest
        if self.used > MAX_EVENT_LINE:
            self.used, self.skipping = 0, True
        return True

    def wipe(self) -> None:
        ctypes.memset(self.raw, 0, len(self.buf))
        self.used, self.skipping = 0, False
