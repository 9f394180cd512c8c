"""The built site in real headless Chromium, served by `course serve`."""

import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import CHROMIUM, require_chromium, COURSE
from conftest import CHROMIUM_ARGS as ARGS

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(built_fixture):
    require_chromium()
    root, _ = built_fixture
    port = _free_port()
    server = subprocess.Popen([*COURSE, "serve", "--port", str(port)], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(600):  # up to 60 s: `course serve` imports a lot on a busy machine
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", root
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_section_page_math_plotly_badges_and_no_external_requests(site, browser, tmp_path):
    base, root = site
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:", "about:")) else None)
    page.goto(f"{base}/generated/01_fixture.html", wait_until="networkidle")
    page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=20000)
    # Math is typeset: MathJax elements exist and no raw $...$ is left in the text.
    body_text = page.inner_text("article")
    assert "\\frac" not in body_text and "$L" not in body_text
    # The plotly figure is drawn and interactive: hovering a point shows a hover label.
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20000)
    # Scroll the figure into the viewport first: mouse events outside it hover nothing.
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    for attempt in range(5):  # plotly may still be laying out on a busy machine: move again
        point = page.locator(".js-plotly-plot .scatterlayer .point").first.bounding_box()
        assert point
        page.mouse.move(point["x"] + point["width"] / 2 + attempt, point["y"] + point["height"] / 2)
        try:
            page.wait_for_selector(".js-plotly-plot .hoverlayer .hovertext", timeout=2000)
            break
        except Exception:
            page.mouse.move(0, 0)
    else:
        pytest.fail("hovering a plotly point never showed a hover label")
    # Colab badge points at the published exercise notebook; the download link is served by the site.
    colab = page.locator("a.course-badge.colab").first.get_attribute("href")
    assert colab.endswith("/blob/gh-pages/notebooks/exercises/01_fixture.ipynb")
    download = page.locator("a.course-badge.download").first.get_attribute("href")
    response = page.request.get(f"{base}/generated/{download}")
    assert response.ok and b'"nbgrader"' in response.body()
    page.screenshot(path=str(tmp_path / "section.png"), full_page=True)
    assert outside == [], f"requests outside 127.0.0.1: {outside}"


def test_animation_plays_on_the_static_page(site, browser):
    """The section-6 animation helper's play button advances frames on the built page."""
    base, _ = site
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{base}/generated/01_fixture.html", wait_until="networkidle")
    animated = "Array.from(document.querySelectorAll('.js-plotly-plot')).find(g => g._transitionData && g._transitionData._frames && g._transitionData._frames.length)"
    page.wait_for_function(f"!!({animated})", timeout=20000)
    title = f"({animated}).querySelector('.gtitle').textContent"
    before = page.evaluate(title)
    assert page.evaluate(f"({animated})._transitionData._frames.length") == 6
    page.locator(".js-plotly-plot .updatemenu-button", has_text="play").first.click()
    # frames advance: the title shows each frame's step, and the last one (step 500) is reached
    # (read at the moment it shows: under load the evaluation can land in a redraw)
    reached = page.wait_for_function(f"{title}.includes('step 500') ? {title} : false", timeout=15000).json_value()
    assert "step 0" in before and "step 500" in reached
    # the slider follows the animation (it is updated a moment after each frame is drawn)
    page.wait_for_function(f"({animated})._fullLayout.sliders[0].active === 5", timeout=5000)


def test_no_html_file_loads_anything_from_outside(site):
    _, root = site
    import re

    offenders = []
    for html in (root / "book/_build/html").rglob("*.html"):
        text = html.read_text(errors="replace")
        for tag in re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text):
            if re.search(r"""(?:src|href)=["'](?:https?:)?//""", tag) and "rel=\"canonical\"" not in tag:
                offenders.append((html.name, tag[:120]))
        for url in re.findall(r"""@import\s+url\(["']?(https?://[^)"']+)""", text):
            offenders.append((html.name, url))
    assert offenders == []
