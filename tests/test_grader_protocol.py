"""The grader's wire format (`grader/protocol.py`) and limits (`grader/limits.py`): no sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import prepare  # noqa: E402
from grader.limits import Limits  # noqa: E402
from grader import protocol  # noqa: E402
from grader.protocol import (Cell, DataBind, Event, decode_event, decode_job, encode_event,  # noqa: E402
                             encode_job, job_header, read_job_header)
from grader.section import find_section_files, read_section_spec  # noqa: E402


def test_a_prepared_job_survives_its_wire_format_unchanged():
    spec = read_section_spec(*find_section_files("90", S.DIST / "nbgrader")[1:])
    job = prepare.prepare_job(S.honest("90_light"), spec).job
    job = job.replace(data=[DataBind("/course/assets/lm", "/opt/course-data/lm", "COURSE_LM_ASSETS")],
                      uid=1_000_065, killers=[3], done_tests=["test_add"], driver_rlimits=Limits().driver_rlimits)
    again = decode_job(encode_job(job))
    assert again == job
    assert isinstance(again.cells[0], Cell) and isinstance(again.tests["test_add"], protocol.TestCode)
    assert again.tests["test_add"].hidden == spec.tests["test_add"].hidden_ranges
    body = encode_job(job)
    assert read_job_header(job_header(job.uid, body)) == (1_000_065, len(body))


def test_events_decode_only_what_they_declare():
    cell = Event("cell", i=4, status="error", ename="AssertionError", secs=0.25,
                 outputs=[{"type": "stream", "name": "stdout", "text": "hi"}])
    assert decode_event(encode_event(cell)) == cell
    assert encode_event(Event("start", i=2)) == b'{"ev": "start", "i": 2}'
    # hostile or broken lines: dropped whole, or ill-typed fields left at their defaults
    assert decode_event(b"not json") is None
    assert decode_event(b'["ev", "cell"]') is None
    assert decode_event(b'{"ev": "points", "score": 100}') is None
    forged = decode_event(b'{"ev": "cell", "i": true, "status": 7, "secs": "x", "score": 100}')
    assert forged == Event("cell")
    assert decode_event(b'{"ev": "kernel", "secs": 2}').secs == 2.0


def test_limits_derived_from_the_memory_and_time_options():
    small = Limits(memory_mb=512, cell_timeout=5, timeout=150)
    assert small.grace == 2.5
    assert Limits(cell_timeout=60).grace == 5.0 and Limits(cell_timeout=1).grace == 1.0
    assert small.kernel_rlimits == {"RLIMIT_DATA": 512 << 20}
    assert small.driver_rlimits["RLIMIT_DATA"] == 3072 << 20  # never under 3 GB for the grader itself
    assert Limits(memory_mb=4096).driver_rlimits["RLIMIT_DATA"] == 5120 << 20
    assert small.driver_rlimits["RLIMIT_CPU"] == 210
    assert small.tree_memory_cap == 1408 << 20


def test_preimports_leave_out_what_is_not_installed():
    spec = read_section_spec(*find_section_files("90", S.DIST / "nbgrader")[1:])
    assert prepare.section_preimports(spec) == ["math"]
    instructor = next(sk for sk in spec.skeleton if sk.kind == "instructor" and not sk.skip)
    instructor.source += "\nimport no_such_package_here\nimport no_such_package_here.sub\nimport json.decoder\n"
    assert prepare.section_preimports(spec) == ["json.decoder", "math"]
    assert "torch" not in sys.modules or prepare._importable("torch")


def test_job_is_the_only_thing_the_driver_reads():
    """The driver and the zygote decode a job only through the protocol (no dict access left)."""
    for name in ("driver.py", "zygote.py", "kernel.py", "sandbox.py", "pool.py"):
        text = (HERE.parent / "grader" / name).read_text()
        assert 'job["' not in text and "job.get(" not in text and "json.loads(read_exactly" not in text, name
