"""Hostile submissions, all graded in ONE batch with honest ones (2 workers, bubblewrap).

Each test asserts the exact row (score, status, message) of its attacker and that the honest
students of the same batch still get full marks. Section `90_light` (no torch, so kernels start
fast): test_add 1 point, test_mean 2 points (hidden part), test_series 1 point; max 4.
"""

from __future__ import annotations

import copy
import csv
import os
import socket
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import sandbox  # noqa: E402
from grader.cli import grade  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = HERE.parent
STUB_ADD = "def add(a, b):\n    return a - b\n"  # a wrong answer to try to force through


def _attackers(paths: dict) -> dict:
    """student -> notebook (or raw bytes)."""
    H = S.HONEST_LIGHT
    subs = {}
    subs["honest"] = S.honest("90_light")
    subs["warnings"] = S.fill("90_light", {
        "solution-add": "import sys, warnings\nwarnings.simplefilter('always')\n"
                        "def add(a, b):\n    warnings.warn('add is deprecated', DeprecationWarning)\n"
                        "    print('debug output', file=sys.stderr)\n    return a + b\n",
        "solution-mean_of": "import logging\ndef mean_of(xs):\n    logging.warning('computing a mean')\n"
                            "    return sum(xs) / len(xs) if xs else 0.0\n",
        "solution-partial_sum": H["solution-partial_sum"]})
    subs["partial"] = S.fill("90_light", {"solution-add": H["solution-add"],
                                          "solution-mean_of": "def mean_of(xs):\n    return sum(xs) / len(xs)\n"})
    subs["blank"] = S.release("90_light")
    subs["loops"] = S.fill("90_light", {
        "solution-add": "def add(a, b):\n    while True:\n        pass\n",
        "solution-mean_of": "import time\ndef mean_of(xs):\n    while True:  # swallows the interrupt\n"
                            "        try:\n            time.sleep(0.2)\n        except BaseException:\n            pass\n",
        "solution-partial_sum": H["solution-partial_sum"]})
    subs["crash"] = S.fill("90_light", {
        "solution-add": "import os\ndef add(a, b):\n    os._exit(0)\n",
        "solution-mean_of": "import ctypes\ndef mean_of(xs):\n    return ctypes.string_at(0)  # segfault\n",
        "solution-partial_sum": H["solution-partial_sum"]})
    subs["exits"] = S.fill("90_light", {
        "solution-add": H["solution-add"] + "raise SystemExit(1)\n",
        "solution-mean_of": "import sys\ndef mean_of(xs):\n    sys.exit(3)\n",
        "solution-partial_sum": H["solution-partial_sum"]})
    subs["killparent"] = S.fill("90_light", {
        "solution-add": H["solution-add"],
        "solution-mean_of": "import os, signal\ndef mean_of(xs):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                            "    return 2.0\n",
        "solution-partial_sum": H["solution-partial_sum"]})
    subs["bombs"] = S.fill("90_light", {
        "solution-add": "hog = []\ntry:\n    while True:\n        hog.append(bytearray(64 << 20))  # touches the pages\n"
                        "except MemoryError:\n    pass\ndel hog\n" + H["solution-add"],
        "solution-mean_of": "def mean_of(xs):\n    big = bytearray(50 << 30)\n    return 0.0\n",
        "solution-partial_sum": H["solution-partial_sum"]},
        added=[("solution-partial_sum", "import os\nwhile True:\n    os.fork()\n")])
    net = (f"import socket, urllib.request\nATTEMPTS = []\n"
           f"for target in [('127.0.0.1', {paths['port']}), ('10.0.2.2', 80), ('pypi.org', 443)]:\n"
           "    try:\n        s = socket.create_connection(target, timeout=2)\n        s.sendall(b'leak')\n"
           "        ATTEMPTS.append('connected')\n    except OSError as exc:\n        ATTEMPTS.append(type(exc).__name__)\n"
           "try:\n    urllib.request.urlopen('http://example.com', timeout=2)\n    ATTEMPTS.append('connected')\n"
           "except Exception as exc:\n    ATTEMPTS.append(type(exc).__name__)\n"
           "def add(a, b):\n    return a + b if 'connected' not in ATTEMPTS else -1\n")
    escape = (f"import os\nLEAKS = []\nfor p in {paths['read']!r}:\n    try:\n"
              "        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(16)\n        LEAKS.append(p)\n"
              "    except OSError:\n        pass\n"
              f"for p in {paths['write']!r}:\n    try:\n        with open(p, 'w') as fh:\n            fh.write('pwned')\n"
              "        LEAKS.append(p)\n    except OSError:\n        pass\n"
              "def mean_of(xs):\n    if LEAKS:\n        return 123.0\n    return sum(xs) / len(xs) if xs else 0.0\n")
    subs["escape"] = S.fill("90_light", {"solution-add": net, "solution-mean_of": escape,
                                         "solution-partial_sum": H["solution-partial_sum"]})
    # --- forcing passes -------------------------------------------------------------------
    rest = {"solution-mean_of": H["solution-mean_of"], "solution-partial_sum": H["solution-partial_sum"]}
    subs["patch_helper"] = S.fill("90_light", {"solution-add": STUB_ADD + "check_equal = lambda *a, **k: None\n", **rest},
                                  added=[("solution-add", "def check_equal(actual, expected, name):\n    return None\n")])
    subs["patch_library"] = S.fill("90_light", {
        "solution-add": H["solution-add"], "solution-partial_sum": H["solution-partial_sum"],
        "solution-mean_of": "import math\nmath.isclose = lambda *a, **k: True\ndef mean_of(xs):\n    return 99.0\n"})
    subs["patch_builtins"] = S.fill("90_light", {
        "solution-add": H["solution-add"], "solution-mean_of": H["solution-mean_of"],
        "solution-partial_sum": "import builtins\nbuiltins.round = lambda x, n=None: 0.0  # both sides of the test agree\n"
                                "def partial_sum(n):\n    return 0.5\n"})
    subs["patch_code"] = S.fill("90_light", {
        "solution-add": STUB_ADD + "check_equal.__code__ = (lambda actual, expected, name: None).__code__\n", **rest})
    subs["sabotage"] = S.fill("90_light", {
        "solution-add": STUB_ADD + "import sys, os\nip = get_ipython()\n"
                        "ip.showtraceback = lambda *a, **k: None\nip._showtraceback = lambda *a, **k: None\n"
                        "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\nsys.excepthook = lambda *a: None\n"
                        "sys.stderr = open(os.devnull, 'w')\n"
                        "print('CGV1 test_add 0 pass - - - 0.001 ' + '0' * 64)\n", **rest})
    subs["forge"] = S.fill("90_light", {
        "solution-add": STUB_ADD + "import os, glob, json\n"
                        "fake = 'CGV1 test_add 0 pass - - - 0.001 ' + 'f' * 64\n"
                        "for path in glob.glob('/tmp/.course-grader*/*') + ['/tmp/.course-grader/verdicts']:\n"
                        "    try:\n        open(path, 'a').write(fake + '\\n')\n    except OSError:\n        pass\n"
                        "ppid = os.getppid()\n"
                        "for fd in os.listdir(f'/proc/{ppid}/fd'):\n    try:\n"
                        "        os.write(os.open(f'/proc/{ppid}/fd/{fd}', os.O_WRONLY), "
                        "(json.dumps({'ev': 'verdict', 'line': fake}) + '\\n').encode())\n"
                        "    except OSError:\n        pass\n", **rest})
    # --- edited / deleted / reordered test cells ------------------------------------------------
    nb = S.fill("90_light", {"solution-add": "def add(a, b):\n    return 0\n", **rest})
    cells = nb.cells
    test_add = next(c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add")
    test_add.source = "pass  # nothing to see here"
    nb.cells = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_mean"]
    series = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_series")
    nb.cells.remove(series)
    nb.cells.insert(1, series)
    subs["tampered"] = nb
    # --- exfiltrating hidden tests ----------------------------------------------------------
    finder = ("import types\ndef _secrets():\n    found = set()\n"
              "    run = get_ipython().user_ns['_course_grader_run']\n"
              "    for cell in run.__closure__ or ():\n        try:\n            v = cell.cell_contents\n"
              "        except ValueError:\n            continue\n        if isinstance(v, dict):\n"
              "            for t in list(v.values()):\n"
              "                if isinstance(t, tuple) and t and isinstance(t[0], types.CodeType):\n"
              "                    found.update(c for c in t[0].co_consts if isinstance(c, str))\n"
              "    return ' || '.join(sorted(found)) or 'nothing'\n")
    subs["exfiltrate"] = S.fill("90_light", {
        "solution-add": finder + "def add(a, b):\n    raise AssertionError('LEAK: ' + _secrets())\n",
        "solution-mean_of": "def mean_of(xs):\n    return type('LEAK ' + _secrets(), (float,), {})(2.0)\n",
        "solution-partial_sum": "def partial_sum(n):\n    raise type('LEAK ' + _secrets(), (Exception,), {})()\n"})
    # --- files that are not (good) notebooks -----------------------------------------------------
    subs["v3"] = S.as_v3(S.honest("90_light"))
    # 100 MB printed by a cell the student added (whether it finishes in time or is interrupted,
    # the answers around it must be graded normally). Flushed line by line: unflushed, ipykernel
    # buffers it all and, under the 512 MB limit, drops it itself before the grader sees any.
    huge = S.fill("90_light", H, added=[("solution-add",
                                         "for _ in range(1000):\n    print('x' * 100_000, flush=True)\n")])
    huge.cells[0].outputs = []
    next(c for c in huge.cells if c.cell_type == "code").outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="y" * 20_000_000)]
    subs["huge_output"] = huge
    subs["invalid_json"] = b'{"cells": [{"cell_type": "code", '
    subs["empty"] = b""
    subs["wrong_section"] = S.honest("91_torch")
    bare = S.honest("90_light")
    bare.metadata.pop("course", None)
    for cell in bare.cells:
        cell.metadata.pop("nbgrader", None)
    subs["no_metadata"] = bare
    return subs


@pytest.fixture(scope="module")
def light_batch(tmp_path_factory):
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    root = tmp_path_factory.mktemp("adversarial")
    dist = S.copy_dist(root / "dist")
    subs_dir, out = root / "subs", root / "out"
    host_secret = root / "host-secret.txt"
    host_secret.write_text("instructor only")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    hits = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                hits.append(conn.recv(100))
                conn.close()
            except OSError:
                continue

    threading.Thread(target=serve, daemon=True).start()
    course = dist / "nbgrader"
    paths = {
        "port": server.getsockname()[1],
        "read": [str(course / "source" / "90_light" / "90_light.ipynb"), str(course / "gradebook.db"),
                 str(course / "source"), str(subs_dir), str(subs_dir / "honest.ipynb"), str(host_secret),
                 str(REPO / "source_exercises"), str(REPO / "tests"), str(REPO / "grader" / "sandbox.py"),
                 "/etc/shadow", "/root/.bash_history", "/work/main/tests"],
        "write": [str(root / "pwned.txt"), str(course / "pwned.txt"), str(subs_dir / "pwned.ipynb"),
                  str(out / "pwned.txt"), str(REPO / "pwned.txt"), "/usr/pwned", "/opt/course-grader/grader/pwned.py",
                  f"{sys.prefix}/pwned.txt"],
    }
    for student, nb in _attackers(paths).items():
        S.write(subs_dir, student, nb)
    start = time.monotonic()
    code = grade("90_light", subs_dir, out, workers=2, cell_timeout=5, timeout=150, memory_mb=512,
                 course_dir=course)
    duration = time.monotonic() - start
    stop.set()
    server.close()
    with open(out / "grades.csv") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return {"code": code, "rows": rows, "out": out, "course": course, "paths": paths, "hits": hits,
            "duration": duration, "root": root}


def row(batch, student):
    return batch["rows"][student]


def scores(r):
    return (float(r["score"]), r["test_add"], r["test_mean"], r["test_series"])


def test_honest_students_get_full_marks_in_the_hostile_batch(light_batch):
    for student in ("honest", "warnings", "v3"):
        r = row(light_batch, student)
        assert scores(r) == (4.0, "1", "2", "1"), (student, r)
        assert r["status"] == "ok"
    assert "upgraded from nbformat 3" in row(light_batch, "v3")["message"]
    assert row(light_batch, "honest")["message"] == ""
    # exit code 1: some files could not be graded (the four bad files below)
    assert light_batch["code"] == 1
    assert len(light_batch["rows"]) == 24


def test_stderr_and_warnings_never_cost_points(light_batch):
    r = row(light_batch, "warnings")
    assert scores(r) == (4.0, "1", "2", "1") and r["message"] == ""


def test_partial_and_blank_submissions(light_batch):
    r = row(light_batch, "partial")
    assert scores(r) == (1.0, "1", "0", "0")
    assert r["message"].startswith("test_mean: failed (hidden tests); test_series: failed")
    feedback = (light_batch["out"] / "feedback" / "partial.html").read_text()
    assert "NotImplementedError" in feedback  # public test: the student sees why
    assert "ZeroDivisionError" not in feedback  # hidden test: name and status only
    r = row(light_batch, "blank")
    assert scores(r) == (0.0, "0", "0", "0") and r["status"] == "ok"
    assert "no answers: every answer cell is still the original stub" in r["message"]


def test_infinite_loops_lose_only_their_own_test(light_batch):
    r = row(light_batch, "loops")
    assert scores(r) == (1.0, "0", "0", "1") and r["status"] == "ok"
    assert r["message"].startswith("test_add: timed out; test_mean: timed out (the kernel was stopped)")
    assert "the kernel was restarted 1 time(s)" in r["message"]


def test_os_exit_and_segfault_restart_the_kernel(light_batch):
    r = row(light_batch, "crash")
    assert scores(r) == (1.0, "0", "0", "1") and r["status"] == "ok"
    assert r["message"].startswith("test_add: crashed (the kernel died); test_mean: crashed (the kernel died)")
    assert "restarted 2 time(s)" in r["message"]


def test_sys_exit(light_batch):
    r = row(light_batch, "exits")
    assert scores(r) == (2.0, "1", "0", "1") and r["status"] == "ok"
    assert r["message"].startswith("test_mean: failed")
    assert "SystemExit: 3" in (light_batch["out"] / "feedback" / "exits.html").read_text()


def test_killing_the_parent_process(light_batch):
    r = row(light_batch, "killparent")
    assert scores(r) == (2.0, "1", "0", "1") and r["status"] == "ok"
    assert "test_mean: crashed (killed the grading process)" in r["message"]
    assert "killed the grading process; the rest was graded in a fresh sandbox" in r["message"]


def test_memory_and_fork_bombs_are_contained(light_batch):
    r = row(light_batch, "bombs")
    # the gradual memory bomb hit the limit and the kernel lived on; the 50 GB allocation
    # failed inside mean_of (that test only)
    assert scores(r) == (2.0, "1", "0", "1") and r["status"] == "ok"
    # the fork bomb (a cell the student added) was stopped: either the interrupt got through
    # (the cell timed out) or the kernel had to be replaced (restarted) -- which one depends on
    # how fast the host's process table fills, so both are accepted, but one must be reported
    assert ("a cell the student added timed out" in r["message"]
            or "the kernel was restarted 1 time(s)" in r["message"]), r["message"]
    assert "flagged for review: the code uses fork" in r["message"]
    feedback = (light_batch["out"] / "feedback" / "bombs.html").read_text()
    assert "MemoryError" in feedback
    # nothing of any sandbox is left running on the host
    leftover = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = open(f"/proc/{entry}/status").read()
            except OSError:
                continue
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            if uid >= 1_000_000:
                leftover.append(entry)
    assert leftover == []


def test_no_network_no_course_files_no_writes_outside(light_batch):
    r = row(light_batch, "escape")
    # add() and mean_of() return wrong values if ANY connection, read or write outside succeeded
    assert scores(r) == (4.0, "1", "2", "1"), r
    assert light_batch["hits"] == []
    for p in light_batch["paths"]["write"]:
        assert not os.path.exists(p), p


@pytest.mark.parametrize("student, expected", [
    ("patch_helper", (3.0, "0", "2", "1")),    # rebinding the helper, in the answer and in an added cell
    ("patch_library", (2.0, "1", "0", "1")),   # math.isclose patched to always agree
    ("patch_builtins", (3.0, "1", "2", "0")),  # builtins.round patched so both sides of the test agree
    ("patch_code", (3.0, "0", "2", "1")),      # the helper's __code__ replaced
    ("sabotage", (3.0, "0", "2", "1")),        # tracebacks suppressed, stderr closed, fake result printed
    ("forge", (3.0, "0", "2", "1")),           # forged verdict lines written to every reachable channel
])
def test_monkeypatching_cannot_force_a_pass(light_batch, student, expected):
    r = row(light_batch, student)
    assert scores(r) == expected, r
    assert r["status"] == "ok"


def test_edited_deleted_and_moved_test_cells_are_restored(light_batch):
    r = row(light_batch, "tampered")
    assert scores(r) == (3.0, "0", "2", "1")
    assert "edited test cells were restored: test_add" in r["message"]
    assert "deleted test cells were restored: test_mean" in r["message"]
    assert "reordered test cells were put back in place" in r["message"]


def test_hidden_tests_never_leak(light_batch):
    r = row(light_batch, "exfiltrate")
    assert scores(r) == (0.0, "0", "0", "0")
    feedback = (light_batch["out"] / "feedback" / "exfiltrate.html").read_text()
    assert "LEAK" in feedback and "[hidden]" in feedback  # the attempt ran and was scrubbed
    source = nbformat.read(str(light_batch["course"] / "source" / "90_light" / "90_light.ipynb"), 4)
    hidden = []
    for cell in source.cells:
        lines = cell.source.splitlines()
        if "### BEGIN HIDDEN TESTS" in cell.source:
            a = lines.index("### BEGIN HIDDEN TESTS")
            b = lines.index("### END HIDDEN TESTS")
            hidden += [ln.strip() for ln in lines[a + 1 : b]]
    assert len(hidden) == 3
    outputs = [(light_batch["out"] / "grades.csv").read_text()]
    outputs += [p.read_text() for p in (light_batch["out"] / "feedback").glob("*.html")]
    for text in outputs:
        assert "HIDDEN-SENTINEL" not in text
        for line in hidden:
            assert line not in text


def test_huge_output_is_truncated(light_batch):
    r = row(light_batch, "huge_output")
    assert scores(r) == (4.0, "1", "2", "1") and r["status"] == "ok"
    assert "output truncated" in r["message"]
    assert "20 MB of saved outputs were discarded before grading" in r["message"]


@pytest.mark.parametrize("student, message", [
    ("invalid_json", "not a notebook: invalid JSON"),
    ("empty", "empty file (0 bytes of notebook JSON)"),
    ("wrong_section", "this notebook is for section 91_torch, not 90_light"),
    ("no_metadata", "the notebook has no nbgrader metadata"),
])
def test_bad_files_get_an_error_row(light_batch, student, message):
    r = row(light_batch, student)
    assert r["status"] == "error" and float(r["score"]) == 0.0
    assert r["message"].startswith(message), r["message"]
    assert (light_batch["out"] / "feedback" / f"{student}.html").exists()


def test_gradebook_agrees_with_grades_csv(light_batch):
    from grader.autograde import _alembic_on_path
    from nbgrader.api import Gradebook

    _alembic_on_path()
    with Gradebook(f"sqlite:///{light_batch['course'] / 'gradebook.db'}") as gb:
        for student, r in light_batch["rows"].items():
            sub = gb.find_submission("90_light", student)
            assert float(sub.score) == float(r["score"]), student
            assert float(sub.max_score) == 4.0


def test_gradebook_schema_version_is_the_one_alembic_reports(light_batch):
    # The grader reads the schema head in-process instead of running `alembic heads` (8 s); the
    # gradebook it created must carry exactly what nbgrader's own subprocess call would have written.
    import sqlite3
    import subprocess

    from grader.autograde import _alembic_on_path
    from nbgrader.dbutil import _temp_alembic_ini

    _alembic_on_path()
    with _temp_alembic_ini("sqlite:////tmp/unused.db") as ini:
        cli_head = subprocess.check_output(["alembic", "-c", ini, "heads"], text=True).split()[0]
    with sqlite3.connect(light_batch["course"] / "gradebook.db") as db:
        stored = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert stored == [(cli_head,)]


def test_batch_time_is_bounded(light_batch):
    # 21 sandboxed runs + 4 bad files on 2 workers, including 3 s cell timeouts and restarts
    assert light_batch["duration"] < 240
