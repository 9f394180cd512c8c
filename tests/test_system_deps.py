"""`make setup`'s system packages (.ci/system-deps.sh) and the rule that a sandbox or browser test
never skips silently (system_deps.py), each run against fakes: a PATH without chromium or bwrap,
and recording stand-ins for id, sudo and apt-get."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SCRIPT = REPO / ".ci" / "system-deps.sh"


def fake_bin(tmp_path: Path, *, uid: int, sudo: bool, present=(), apt=True) -> Path:
    """A PATH folder with only what the script may use; apt-get and sudo log their arguments."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("cat", "env", "true"):
        (bin_ / tool).symlink_to(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip())
    scripts = {"id": f'echo {uid}'}
    if apt:
        scripts["apt-get"] = f'echo "apt-get $* (DEBIAN_FRONTEND=$DEBIAN_FRONTEND)" >> {log}'
    if sudo:
        scripts["sudo"] = f'[ "$1" = -n ] && shift; echo "sudo $*" >> {log}; exec "$@"'
    for name in present:
        scripts[name] = "exit 0"
    for name, body in scripts.items():
        (bin_ / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_ / name).chmod(0o755)
    return bin_


def run_script(bin_: Path, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    result = subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={"PATH": str(bin_), **env})
    log = bin_.parent / "calls.log"
    return result, log.read_text().splitlines() if log.exists() else []


def test_nothing_to_do_when_both_are_installed(tmp_path):
    result, calls = run_script(fake_bin(tmp_path, uid=1000, sudo=False, present=("chromium", "bwrap")))
    assert result.returncode == 0 and calls == [] and result.stderr == ""


def test_root_installs_only_what_is_missing_with_apt(tmp_path):
    result, calls = run_script(fake_bin(tmp_path, uid=0, sudo=False, present=("chromium",)))
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update -qq (DEBIAN_FRONTEND=)",
                     "apt-get install -y -qq --no-install-recommends bubblewrap (DEBIAN_FRONTEND=noninteractive)"]


def test_a_user_with_sudo_installs_through_sudo(tmp_path):
    result, calls = run_script(fake_bin(tmp_path, uid=1000, sudo=True))
    assert result.returncode == 0, result.stderr
    assert calls == ["sudo true", "sudo apt-get update -qq", "apt-get update -qq (DEBIAN_FRONTEND=)",
                     "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium bubblewrap",
                     "apt-get install -y -qq --no-install-recommends chromium bubblewrap (DEBIAN_FRONTEND=noninteractive)"]


@pytest.mark.parametrize("apt", [True, False], ids=["no-root-no-sudo", "no-apt"])
def test_neither_root_nor_sudo_fails_with_the_fix_unless_opted_out(tmp_path, apt):
    bin_ = fake_bin(tmp_path, uid=1000, sudo=False, apt=apt)
    result, calls = run_script(bin_)
    assert result.returncode == 1 and calls == []
    assert "missing chromium bubblewrap" in result.stderr
    assert ("neither root nor sudo" if apt else "apt-get is not available") in result.stderr
    assert "apt-get install chromium bubblewrap" in result.stderr and "COURSE_SKIP_SYSTEM_TESTS=1" in result.stderr
    opted, _ = run_script(bin_, COURSE_SKIP_SYSTEM_TESTS="1")
    assert opted.returncode == 0 and "missing chromium bubblewrap" in opted.stderr


# ------------------------------------------------------------------ skip → failure inside the suite

SUITE = '''
import pytest

def test_sandbox():
    pytest.skip("bubblewrap unusable here: bubblewrap (bwrap) is not installed")

@pytest.fixture
def browser():
    pytest.skip("Debian chromium is not installed (/usr/bin/chromium missing)")

def test_browser(browser):
    pass

def test_other():
    pytest.skip("section 1 is not written yet")

def test_passes():
    pass
'''


def run_suite(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text("from system_deps import pytest_runtest_makereport, pytest_terminal_summary\n")
    environ = {k: v for k, v in os.environ.items() if k != "COURSE_SKIP_SYSTEM_TESTS"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           "-c", "/dev/null", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path,
                          env={**environ, "PYTHONPATH": str(REPO / "tests"), **env})


def test_a_skip_for_a_missing_system_package_fails_the_run_with_the_fix(tmp_path):
    result = run_suite(tmp_path)
    assert result.returncode == 1, result.stdout
    last = result.stdout.strip().splitlines()[-1]
    # the sandbox test fails, the browser fixture errors; an unrelated skip stays a skip
    assert "1 failed" in last and "1 passed" in last and "1 skipped" in last and "1 error" in last, last
    assert result.stdout.count("Fix: run `make system-deps`") >= 2, result.stdout


def test_the_opt_out_skips_them_and_says_so_in_the_summary(tmp_path):
    result = run_suite(tmp_path, COURSE_SKIP_SYSTEM_TESTS="1")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped" in result.stdout.strip().splitlines()[-1]
    assert "skipped on purpose (COURSE_SKIP_SYSTEM_TESTS=1)" in result.stdout
    assert "2 test(s) needing chromium or bubblewrap were skipped" in result.stdout
