"""What crosses a process boundary while grading, and its one wire format.

    host ──Job──▶ zygote ──Job──▶ driver ──cells──▶ kernel (harness)
    host ◀─Event─ zygote ◀─Event─ driver ◀─verdict lines── kernel

* `Job`: everything one submission's grading needs. The host builds it (`autograde.prepare_job`,
  then `sandbox.grade_in_sandbox` adds the key and limits, the launch adds where it runs); it
  travels as JSON on the driver's stdin (or to a Dask worker, pickled), never as a file.
* `Event`: one line of the driver's progress stream (JSON). Events are untrusted: a submission can
  make its driver say anything it could say itself, so they only describe; no event gives points.
* `Verdict`: a test's result, a line the harness signs with the job's HMAC key (the format is
  written in `harness.py`, which runs inside the kernel from source and imports nothing of ours).
  Only a verdict whose MAC checks out counts.
* A warm sandbox's zygote wraps the same objects: stdin gets `zygote_hello` once, then per job a
  `job_header` line and the job's bytes (read by the job's driver, never by the zygote); stdout
  carries `E <event>` lines and the zygote's own `Z <control>` lines (see `zygote.py`).

Decoding never trusts its input: a malformed line decodes to None and is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass, field

VERDICT_TAG = "CGV1"


class _Fields:
    """Read access by name (`job["cells"]`), for code that treats these records as plain data."""

    def __getitem__(self, name: str):
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default=None):
        return getattr(self, name, default) if name in self.__dataclass_fields__ else default


@dataclass
class Cell(_Fields):
    kind: str  # "param" | "instructor" | "solution" | "added" | "test"
    ref: str  # grade_id, cell id, or "added"
    code: str  # empty for a test cell: tests travel in Job.tests and run through the harness


@dataclass
class TestCode(_Fields):
    code: str  # the instructor's test cell, hidden blocks included
    hidden: list[tuple[int, int]]  # 1-based inclusive line ranges of the hidden blocks


@dataclass
class DataBind(_Fields):
    """A course data folder the section declared (`data: [lm]`): bound read-only into the sandbox,
    its variable pointing at the bound path."""

    host: str  # absolute path on the host, inside the course root
    sandbox: str  # where the sandbox sees it
    env: str  # the variable the kernel reads (as declared in _config.yml)


@dataclass
class Job(_Fields):
    # --- the submission (autograde.prepare_job, on the host that owns the gradebook)
    cells: list[Cell]
    tests: dict[str, TestCode]
    instructor_hashes: list[str]  # sha256 of every instructor cell's code
    required: dict[str, list[tuple[str, int]]]  # test id -> instructor cells (hash, index) run before it
    preimport: list[str]  # modules the instructor's cells import (imported before any student code)
    library_classes: list[tuple[str, str]]  # (module, class) whose methods the harness restores
    data: list[DataBind] = field(default_factory=list)
    # --- how to grade it (sandbox.grade_in_sandbox, on the worker: the key never crosses the network)
    key: str = ""  # hex HMAC key for verdicts
    harness: str = ""  # source of grader/harness.py
    cell_timeout: float = 60.0
    interrupt_grace: float = 5.0
    kernel_start_timeout: float = 60.0
    max_restarts: int = 6
    output_per_cell: int = 20_000  # characters of output kept per cell
    output_total: int = 400_000  # ... and per submission
    driver_rlimits: dict[str, int] = field(default_factory=dict)
    kernel_rlimits: dict[str, int] = field(default_factory=dict)
    # --- where it runs (the launch: cold sandbox, warm sandbox or unsafe)
    uid: int | None = None  # the job's own uid (root grader), else None: stay the caller's uid
    isolated: bool = True  # in a pid namespace of its own
    scratch: str = "/tmp"  # the driver's private files (secrets, kernel connection files)
    workdir: str = "/home/student"
    env: dict[str, str] = field(default_factory=dict)  # the kernel's whole environment
    # --- resuming after the submission killed its driver (sandbox.grade_in_sandbox's relaunch)
    start_index: int = 0
    killers: list[int] = field(default_factory=list)  # cells that killed a driver or kernel: never rerun
    done_tests: list[str] = field(default_factory=list)

    def replace(self, **changes) -> "Job":
        return dataclasses.replace(self, **changes)


def encode_job(job: Job) -> bytes:
    return json.dumps(dataclasses.asdict(job)).encode()


def decode_job(data: bytes) -> Job:
    raw = json.loads(data)
    raw["cells"] = [Cell(**c) for c in raw["cells"]]
    raw["tests"] = {tid: TestCode(t["code"], [tuple(r) for r in t["hidden"]]) for tid, t in raw["tests"].items()}
    raw["data"] = [DataBind(**d) for d in raw.get("data", [])]
    raw["required"] = {tid: [tuple(x) for x in rows] for tid, rows in raw["required"].items()}
    raw["library_classes"] = [tuple(x) for x in raw["library_classes"]]
    return Job(**raw)


# ---------------------------------------------------------------------------------------------
EVENT_KINDS = ("start", "cell", "verdict", "kernel", "restart", "replay_failed", "fatal", "done")


@dataclass
class Event(_Fields):
    """One line of the driver's progress stream; which fields mean something depends on `ev`."""

    ev: str  # one of EVENT_KINDS
    i: int | None = None  # start, cell, replay_failed: the cell's index in Job.cells
    status: str = ""  # cell: ok | error | timeout | killed | died; replay_failed: died | killed
    ename: str = ""  # cell: the exception's name
    evalue: str = ""  # cell: its message
    secs: float = 0.0  # cell: run time; kernel: start-up time
    outputs: list[dict] = field(default_factory=list)  # cell: {type, name?, text}, trimmed
    line: str = ""  # verdict: the harness's signed line, verbatim
    message: str = ""  # fatal: why the driver gave up
    generation: int = 0  # kernel: 1 for the first kernel of the job
    replay_upto: int = 0  # kernel: cells before this index were replayed silently
    at: int = 0  # restart: the cell after which the kernel was restarted
    reason: str = ""  # restart: died | killed
    restarts: int = 0  # done: kernel restarts in the whole job
    output_truncated: bool = False  # done: the output budget ran out

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_EVENT_TYPES = {f.name: f.type for f in dataclasses.fields(Event)}
_PYTHON_TYPES = {"str": str, "int | None": int, "int": int, "float": (int, float), "bool": bool,
                 "list[dict]": list}


def encode_event(event: Event) -> bytes:
    """Only the fields that differ from their defaults: a cell event is small."""
    defaults = Event(ev=event.ev)
    return json.dumps({k: v for k, v in dataclasses.asdict(event).items()
                       if k == "ev" or v != getattr(defaults, k)}).encode()


def decode_event(line: bytes) -> Event | None:
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("ev") not in EVENT_KINDS:
        return None
    fields = {}
    for name, value in raw.items():
        wanted = _PYTHON_TYPES.get(_EVENT_TYPES.get(name, ""))
        if wanted is None or not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            continue  # an unknown or ill-typed field is left at its default
        fields[name] = float(value) if name == "secs" else value
    return Event(**fields)


# ---------------------------------------------------------------------------------------------
@dataclass
class Verdict(_Fields):
    test: str
    status: str  # pass | fail
    where: str  # "" | public | hidden: where in the test cell the failure happened
    ename: str
    message: str
    seconds: float


def parse_verdict(line: str, key: bytes) -> Verdict | None:
    """A verdict line from the harness, or None when its MAC does not check out.

    Format: ``CGV1 <test> <nonce> <pass|fail> <where|-> <hex ename|-> <hex message|-> <secs> <hmac>``
    with the HMAC-SHA256 of everything before the last space.
    """
    try:
        body, mac = line.rsplit(" ", 1)
        expected = hmac.new(key, body.encode("ascii"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            return None
        tag, tid, _nonce, status, where, ename, msg, secs = body.split(" ")
        if tag != VERDICT_TAG or status not in ("pass", "fail"):
            return None

        def unhex(h: str) -> str:
            return "" if h == "-" else bytes.fromhex(h).decode("utf-8", "replace")

        return Verdict(test=tid, status=status, where="" if where == "-" else where,
                       ename=unhex(ename), message=unhex(msg), seconds=float(secs))
    except (ValueError, UnicodeError):
        return None


# ---------------------------------------------------------------------------------------------
EVENT_PREFIX = b"E "  # a zygote's stdout: the current job's event line follows
CONTROL_PREFIX = b"Z "  # a zygote's stdout: its own control line (ready | unusable <why> | end <status>)


def zygote_hello(preimport: list[str]) -> bytes:
    """The first line a warm sandbox's zygote reads: what to import before the first job."""
    return json.dumps({"preimport": list(preimport)}).encode() + b"\n"


def job_header(uid: int | None, body: bytes) -> bytes:
    """The line the zygote reads before a job: the job's uid and the size of the body that follows."""
    return json.dumps({"uid": uid, "bytes": len(body)}).encode() + b"\n"


def read_job_header(line: bytes) -> tuple[int | None, int]:
    raw = json.loads(line)
    uid = raw.get("uid")
    return (int(uid) if uid else None), int(raw["bytes"])
