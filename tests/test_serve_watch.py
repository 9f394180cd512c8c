"""`course serve --watch`: saving a section rebuilds it, the open page reloads (in Chromium), a
broken save shows its error on the page, and the reload script never reaches the built site."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from build_tools.build import Paths
from build_tools.watch import sections_to_rebuild, watched_files
from conftest import CHROMIUM, CHROMIUM_ARGS, COURSE, make_project

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]
ORIGINAL = "This section exists to exercise the build."
EDITED = "This section exists to exercise the WATCHED build."


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def wait_for(predicate, seconds: float, what: str):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture
def watched(tmp_path):
    root = make_project(tmp_path / "proj")
    proc = subprocess.Popen([*COURSE, "serve", "--watch", "--fast", "--port", "0"], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        match = wait_for(lambda: next((m for m in map(re.compile(r"on http://127\.0\.0\.1:(\d+)/").search, list(lines))
                                       if m), None), 600, "the server (initial build)\n" + "".join(lines))
        yield root, f"http://127.0.0.1:{match.group(1)}", lines
    finally:
        proc.terminate()
        proc.wait(30)


def state(base: str) -> dict:
    return json.loads(get(f"{base}/__reload"))


def test_save_rebuilds_section_and_reloads_open_page(watched):
    root, base, lines = watched
    source = root / "source_exercises" / "01_fixture.py"
    built_page = root / "book" / "_build" / "html" / "generated" / "01_fixture.html"
    assert state(base) == {"build": 1, "error": ""}  # the start-up build
    served = get(f"{base}/generated/01_fixture.html")
    assert ORIGINAL in served and "var seen = 1," in served and "__reload" in served
    assert "__reload" not in built_page.read_text()  # served only, never written into the site

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{base}/generated/01_fixture.html", wait_until="load")
        page.evaluate("window.__not_reloaded = true")

        source.write_text(source.read_text().replace(ORIGINAL, EDITED))
        wait_for(lambda: state(base)["build"] == 2, 600, "the rebuild\n" + "".join(lines))
        assert EDITED in get(f"{base}/generated/01_fixture.html")
        assert EDITED in built_page.read_text() and "__reload" not in built_page.read_text()
        assert "rebuilding 01_fixture" in "".join(lines)  # only the edited section
        page.wait_for_function(f"document.body.innerText.includes({EDITED!r})", timeout=30000)
        assert page.evaluate("window.__not_reloaded") is None  # a fresh page: it reloaded itself

        # A broken save: the page shows the problem (path:line) and keeps the last good build.
        good = source.read_text()
        source.write_text(good.replace("# %% test=\"test_mse\" points=2", "# %% test=\"test_mse\""))
        error = wait_for(lambda: state(base)["error"], 120, "the failed rebuild")
        assert re.search(r"01_fixture\.py:\d+: graded test cell 'test_mse' has no points", error)
        page.wait_for_selector("#course-watch-error", timeout=30000)
        assert "has no points" in page.inner_text("#course-watch-error")
        assert state(base)["build"] == 2 and EDITED in built_page.read_text()

        source.write_text(good)  # fixed: cached run, the banner goes with the reload
        wait_for(lambda: state(base) == {"build": 3, "error": ""}, 600, "the rebuild after the fix")
        page.wait_for_function("!document.getElementById('course-watch-error')", timeout=30000)
        browser.close()


def test_which_sections_a_change_rebuilds(tmp_path):
    root = make_project(tmp_path / "proj")
    paths = Paths(root)
    before = watched_files(paths, "course_helpers")
    assert root / "source_exercises" / "01_fixture.py" in before and root / "book" / "intro.md" in before
    section = {**before, root / "source_exercises" / "01_fixture.py": 1}
    assert sections_to_rebuild(before, section, paths) == ["01_fixture"]
    image = {**before, root / "source_exercises" / "02_other_files" / "a.png": 1}
    assert sections_to_rebuild(before, image, paths) == ["02_other"]
    helper = {**before, root / "course_helpers" / "plots.py": 1}
    assert sections_to_rebuild(before, helper, paths) is None  # shared: every section, cached
    page = {**before, root / "book" / "intro.md": 1}
    assert sections_to_rebuild(before, page, paths) is None
    removed = {k: v for k, v in before.items() if k.name != "01_fixture.py"}
    assert sections_to_rebuild(before, removed, paths) is None
