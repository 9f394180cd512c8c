"""The sandbox and browser tests need two Debian packages (bubblewrap, chromium). Inside the test
suite a test skipped for want of one of them FAILS, with the fix to apply: a run without the
sandbox must not look green. COURSE_SKIP_SYSTEM_TESTS=1 is the explicit opt-out: those tests then
skip, and the summary says how many and why.

Loaded by conftest.py (its hooks are imported there); a module of its own so that a test can load
it into a separate pytest run.
"""

import os
import re

import pytest

OPT_OUT = "COURSE_SKIP_SYSTEM_TESTS"
# Skip reasons that mean "a system package is missing or unusable".
SYSTEM_PACKAGE = re.compile(r"bubblewrap|\bbwrap\b|chromium", re.I)
FIX = ("Fix: run `make system-deps` (installs chromium and bubblewrap with apt, through sudo when not "
       f"root) or `apt-get install chromium bubblewrap` as an administrator; or set {OPT_OUT}=1 to "
       "skip the sandbox and browser tests on purpose.")
_opted_out: list[str] = []


def _skip_reason(report) -> str | None:
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    reason = _skip_reason(report)
    if reason is None or not SYSTEM_PACKAGE.search(reason) or hasattr(report, "wasxfail"):
        return
    if os.environ.get(OPT_OUT) == "1":
        _opted_out.append(f"{item.nodeid}: {reason}")
        return
    report.outcome = "failed"
    reason = reason.removeprefix("Skipped: ")
    report.longrepr = f"A system package this test needs is missing or unusable: {reason}\n{FIX}"


def pytest_terminal_summary(terminalreporter):
    if _opted_out:
        terminalreporter.section(f"skipped on purpose ({OPT_OUT}=1)", yellow=True)
        terminalreporter.line(f"{len(_opted_out)} test(s) needing chromium or bubblewrap were skipped "
                              f"because {OPT_OUT}=1; this run does not cover the grading sandbox or the browser.")
        for line in _opted_out:
            terminalreporter.line(f"  {line}")
