"""Warm sandboxes (`grader/zygote.py`): one sandbox grades submission after submission, so nothing
one submission leaves behind may reach the next.

One worker grades, in this order: an attacker that plants everything it can (a daemon that keeps
writing files, files in every writable folder, an undeletable folder, an IPython startup script,
a System V shared-memory segment, forged control lines to the zygote, a kill of the zygote), then
honest students whose answers go wrong if they see any trace of it. Section `90_light`: test_add
1 point, test_mean 2, test_series 1.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures" / "grader"))
import submissions as S  # noqa: E402

from grader import sandbox  # noqa: E402
from grader.cli import grade  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PLANTS = ["/tmp/planted", "/home/student/planted", "/dev/shm/planted", "/tmp/planted-by-daemon",
          "/home/student/planted-by-daemon", "/home/student/locked",
          "/tmp/.ipython/profile_default/startup/00-plant.py"]

ATTACK = f"""
import ctypes, os, signal, time
# a daemon that outlives its job and keeps planting files for whoever comes next
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            for folder in ('/tmp', '/home/student'):
                try:
                    open(folder + '/planted-by-daemon', 'w').write('x')
                except OSError:
                    pass
            time.sleep(0.05)
    os._exit(0)
os.waitpid(first, 0)
for folder in ('/tmp', '/home/student', '/dev/shm'):
    try:
        open(folder + '/planted', 'w').write('x')
    except OSError:
        pass
startup = os.path.join(os.environ['IPYTHONDIR'], 'profile_default', 'startup')
os.makedirs(startup, exist_ok=True)
open(os.path.join(startup, '00-plant.py'), 'w').write('PLANTED = True\\n')
os.makedirs('/home/student/locked/inner', exist_ok=True)
open('/home/student/locked/inner/f', 'w').write('x')
os.chmod('/home/student/locked/inner', 0)
os.chmod('/home/student/locked', 0o500)
libc = ctypes.CDLL(None, use_errno=True)
SHM = libc.shmget(0x5EED, 1 << 20, 0o1666)  # IPC_CREAT | 0666
# the zygote: the driver's parent. Forge its control lines, then try to kill it.
driver = os.getppid()
zygote = int(open(f'/proc/{{driver}}/stat').read().rsplit(')', 1)[1].split()[1])
ATTEMPTS = []
for fd in (0, 1):
    try:
        out = os.open(f'/proc/{{zygote}}/fd/{{fd}}', os.O_WRONLY)
        os.write(out, b'Z end 0\\nZ ready {{}}\\n')
        ATTEMPTS.append('wrote')
    except OSError as exc:
        ATTEMPTS.append(type(exc).__name__)
try:
    os.kill(zygote, signal.SIGKILL)
    ATTEMPTS.append('killed')
except OSError as exc:
    ATTEMPTS.append(type(exc).__name__)
print(ATTEMPTS, SHM)
def add(a, b):
    return a + b
"""

CHECK = f"""
import ctypes, os, time
def traces():
    seen = [p for p in {PLANTS!r} if os.path.exists(p)]
    if 'PLANTED' in globals():
        seen.append('IPython startup script ran')
    if ctypes.CDLL(None).shmget(0x5EED, 0, 0) != -1:
        seen.append('shared memory segment')
    return seen
SEEN = traces()
time.sleep(0.3)  # a surviving daemon would have planted again by now
SEEN += traces()
print('traces:', SEEN)
def add(a, b):
    return a + b if not SEEN else -100
"""


@pytest.fixture(scope="module")
def warm_batch(tmp_path_factory):
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    root = tmp_path_factory.mktemp("warm")
    course = S.copy_dist(root / "dist") / "nbgrader"
    subs, out = root / "subs", root / "out"
    H = S.HONEST_LIGHT
    S.write(subs, "a_attacker", S.fill("90_light", {**H, "solution-add": ATTACK}))
    for name in ("b_victim", "c_victim"):
        S.write(subs, name, S.fill("90_light", {**H, "solution-add": CHECK}))
    started = []
    real_init = sandbox.WarmSandbox.__init__

    def counting_init(self, *args, **kwargs):
        started.append(1)
        real_init(self, *args, **kwargs)

    sandbox.WarmSandbox.__init__ = counting_init
    try:
        code = grade("90_light", subs, out, workers=1, cell_timeout=10, timeout=120, memory_mb=512,
                     course_dir=course)
    finally:
        sandbox.WarmSandbox.__init__ = real_init
    with open(out / "grades.csv") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return {"code": code, "rows": rows, "sandboxes": len(started)}


def test_the_next_submission_sees_nothing_of_the_previous_one(warm_batch):
    rows = warm_batch["rows"]
    for student in ("b_victim", "c_victim"):
        r = rows[student]
        assert (float(r["score"]), r["test_add"], r["test_mean"], r["test_series"]) == (4.0, "1", "2", "1"), r
        assert r["status"] == "ok", r
    attacker = rows["a_attacker"]
    if os.geteuid() == 0:
        # its own uid: the zygote (root) is out of its reach, so its answer cell ran to the end
        assert float(attacker["score"]) == 4.0, attacker
        assert warm_batch["code"] == 0
    else:
        # one uid for the whole sandbox: killing the zygote is possible, and costs the cell that did it
        assert (float(attacker["score"]), attacker["test_add"]) == (3.0, "0"), attacker
        assert "killed the grading process" in attacker["message"]


@pytest.mark.skipif(os.geteuid() != 0, reason="as root each job has its own uid and cannot kill the zygote")
def test_one_warm_sandbox_served_the_whole_batch(warm_batch):
    # The attacker could neither forge the zygote's control lines nor kill it, and the clean-up
    # after it left nothing: the same sandbox went on to grade both victims.
    assert warm_batch["sandboxes"] == 1


def test_cold_sandboxes_remain_available(tmp_path, monkeypatch):
    """`--cold-sandboxes`: a fresh sandbox and kernel per submission, as before warm sandboxes."""
    if sandbox.sandbox_problem():
        pytest.skip(f"bubblewrap unusable here: {sandbox.sandbox_problem()}")
    course = S.copy_dist(tmp_path / "dist") / "nbgrader"
    subs, out = tmp_path / "subs", tmp_path / "out"
    S.write(subs, "honest", S.honest("90_light"))
    S.write(subs, "honest2", S.honest("90_light"))

    def no_warm(*args, **kwargs):
        raise AssertionError("a warm sandbox was started")

    monkeypatch.setattr(sandbox.WarmSandbox, "__init__", no_warm)
    code = grade("90_light", subs, out, workers=1, cold_sandboxes=True, course_dir=course)
    assert code == 0
    with open(out / "grades.csv") as fh:
        assert [float(r["score"]) for r in csv.DictReader(fh)] == [4.0, 4.0]
