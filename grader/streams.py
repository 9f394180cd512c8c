"""The host's readers of a sandbox's output: never blocking the sandbox, bounded in memory.

A cold sandbox's stdout is the driver's event stream (one JSON `Event` a line); a warm sandbox's
stdout interleaves the current job's events (``E <event>``) with its zygote's control lines
(``Z <text>``); stderr is kept only as a short tail for error notes.
"""

from __future__ import annotations

import dataclasses
import queue
import threading

from .protocol import CONTROL_PREFIX, EVENT_PREFIX, Event, decode_event

MAX_EVENT_LINE = 2_000_000  # a longer line is dropped whole
MAX_EVENTS_BYTES = 16_000_000  # progress events kept per job; verdicts are always kept


@dataclasses.dataclass
class SandboxRun:
    """What one sandbox run left: the job's events and how it ended."""

    events: list[Event]
    how: str | None  # None, or the watchdog's reason for stopping it: "timeout" | "memory"
    returncode: int | None  # the driver's exit status
    stderr: str  # a tail, for notes (empty when a warm sandbox ended the job normally)


class EventReader(threading.Thread):
    """Reads a driver's stdout into `events` until the stream ends."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.events: list[Event] = []
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
                self.line(line)
            if len(buf) > MAX_EVENT_LINE:
                buf = b""  # an absurd line: drop it
        if buf:
            self.line(buf)

    def line(self, line: bytes) -> None:
        if len(line) > MAX_EVENT_LINE:
            return
        event = decode_event(line)
        if event is None:
            return
        if event.ev != "verdict":
            self.bytes += len(line)
            if self.bytes > MAX_EVENTS_BYTES:
                return
        self.events.append(event)


class ZygoteReader(EventReader):
    """Reads a zygote's stdout: ``E`` lines go to the current job's `sink`, ``Z`` lines to
    `control` (None there: the sandbox is gone)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.control: queue.Queue = queue.Queue()
        self.sink = EventReader(None)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.control.put(None)

    def line(self, line: bytes) -> None:
        if line.startswith(EVENT_PREFIX):
            self.sink.line(line[len(EVENT_PREFIX):])
        elif line.startswith(CONTROL_PREFIX):
            self.control.put(line[len(CONTROL_PREFIX):].decode("utf-8", "replace"))


def keep_tail(stream, keep: int = 4000) -> list[bytes]:
    """Drain `stream` in a thread; element 0 of the returned list is always its last `keep` bytes."""
    tail = [b""]

    def run():
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            tail[0] = (tail[0] + chunk)[-keep:]

    threading.Thread(target=run, daemon=True).start()
    return tail
