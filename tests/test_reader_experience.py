"""What a reader gets from the built site, checked in real headless Chromium: offline search,
navigation (previous/next, page contents, prerequisite links), accessibility (axe-core, figure text
alternatives), phones (390 px), dark mode with plotly figures, page weight, and screenshots.

The site is the fixture project plus a second section that lists the first as a prerequisite.
Screenshots and the numbers (page weight, axe results) land in dist/screenshots/ (or
$COURSE_SCREENSHOTS) for a person to look at.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import CHROMIUM, require_chromium, FIXTURES, REPO, run_course
from conftest import CHROMIUM_ARGS as ARGS

SHOTS = Path(os.environ.get("COURSE_SCREENSHOTS", REPO / "dist" / "screenshots"))
UNIQUE_WORD = "zanzibarite"  # appears in the second section's text and nowhere else
SECTION = "generated/02_second.html"
LANDING = "intro.html"
PHONE, DESKTOP = 390, 1280


def browser_test(test):
    return pytest.mark.slow(pytest.mark.browser(test))


def _second_section() -> str:
    """The fixture with another title and a prerequisite. Its code cells are the fixture's own, so
    the build reuses the fixture's executed run (see the cache copy below) instead of running it."""
    text = (FIXTURES / "source_exercises" / "01_fixture.py").read_text()
    swaps = [('title: "A tiny fixture section"', 'title: "A second fixture section"'),
             ('short_title: "Fixture"', 'short_title: "Second"'),
             ("prerequisites: []", "prerequisites: [1]"),
             ("# # A tiny fixture section\n",
              f"# # A second fixture section\n#\n# Here a rare mineral, {UNIQUE_WORD}, stands in for a search term.\n")]
    for old, new in swaps:
        assert old in text, f"fixture changed: {old!r} not found"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def site(built_fixture, tmp_path_factory):
    """A two-section site, served from a thread; yields (base URL, html folder)."""
    require_chromium()
    fixture_root, _ = built_fixture
    root = tmp_path_factory.mktemp("reader") / "proj"
    shutil.copytree(fixture_root, root, ignore=shutil.ignore_patterns("_build", ".work"))
    (root / "source_exercises" / "02_second.py").write_text(_second_section())
    # Same code, so the same executed run: reuse it under the new section's name. (Should the cache
    # layout change, the build simply executes the section: slower, same result.)
    cache = root / "dist" / ".cache" / "execute"
    for entry in cache.glob("01_fixture-*"):
        shutil.copyfile(entry, cache / entry.name.replace("01_fixture-", "02_second-", 1))
    run_course("build", "--fast", cwd=root)
    yield from serve(root / "book" / "_build" / "html")


def serve(html: Path):
    """Serve a built site from a thread; yields (base URL, html folder)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a tab that moves on mid-download breaks the pipe: not a site problem

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", html
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def real_site():
    """The course's own site, FAST build (cached per section: a no-op when it is up to date).
    COURSE_SITE=path/to/html audits a site built elsewhere instead (e.g. the full build)."""
    require_chromium()
    if os.environ.get("COURSE_SITE"):
        html = Path(os.environ["COURSE_SITE"]).resolve()
    else:
        run_course("build", "--fast", cwd=REPO, timeout=3600)
        html = REPO / "book" / "_build" / "html"
    yield from serve(html)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report():
    """Numbers collected by the tests, written next to the screenshots at the end."""
    data = {}
    yield data
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "report.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def html_pages(html: Path, redirects: bool = False) -> list[str]:
    """The site's pages; index.html only redirects to the landing page, so it is left out unless asked."""
    skip = ("_static/", "_sources/", "notebooks/")
    pages = [p for p in html.rglob("*.html") if not p.relative_to(html).as_posix().startswith(skip)]
    return sorted(p.relative_to(html).as_posix() for p in pages
                  if redirects or 'http-equiv="refresh"' not in p.read_text(errors="replace")[:2000].lower())


@pytest.fixture(scope="module")
def tabs(browser):
    """tab(width, theme): one tab per layout and theme, reused by every page and test, so that
    plotly.js and MathJax come from the browser cache after the first page, as for a reader."""
    opened = {}

    def tab(width: int = DESKTOP, theme: str = "light"):
        if (width, theme) not in opened:
            context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=theme)
            context.set_default_timeout(60_000)  # generous: CI machines can be busy
            # The theme keeps the reader's choice in localStorage; set it before every page load.
            context.add_init_script(f"localStorage.setItem('mode', '{theme}'); localStorage.setItem('theme', '{theme}');")
            opened[(width, theme)] = context.new_page()
        page = opened[(width, theme)]
        page.set_viewport_size({"width": width, "height": 900})  # a test may have resized it
        return page

    yield tab
    for page in opened.values():
        page.context.close()


def visit(page, base: str, rel: str):
    """Go to a page and wait for its figures to be drawn."""
    page.goto(f"{base}/{rel}", wait_until="load")
    theme = "dark" if page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") else "light"
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    if page.locator(".js-plotly-plot").count():
        page.wait_for_selector(".js-plotly-plot .main-svg")
    return page


def settle(page):
    """Wait until MathJax (on pages with math) has typeset, then let plotly finish its layout."""
    page.evaluate("""async () => {
      if (!document.querySelector('script[src*="mathjax"]')) return;
      for (let i = 0; i < 400 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
        await new Promise(r => setTimeout(r, 50));
      if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    }""")
    page.wait_for_timeout(200)


# ---------------------------------------------------------------------------------------------- search

def search_hits(page) -> list[str]:
    """Pages listed by Sphinx's search once it has finished (it then fills in the summary)."""
    page.wait_for_function("(document.querySelector('#search-results p.search-summary') || {}).textContent",
                           timeout=20000)
    links = page.locator("#search-results ul.search li a")
    return sorted({re.sub(r"[?#].*$", "", links.nth(i).get_attribute("href")) for i in range(links.count())})


@browser_test
def test_search_works_offline_and_finds_a_word_from_a_section_body(site, tabs):
    base, _ = site
    outside = []
    page = tabs()
    def note(request):
        if not request.url.startswith((base, "data:", "blob:", "about:")):
            outside.append(request.url)
    page.on("request", note)
    visit(page, base, LANDING)
    # The theme's search: Ctrl+K opens its dialog, Enter goes to search.html?q=...
    page.keyboard.press("Control+k")
    field = page.locator("form.bd-search input[name='q']:visible").first
    field.wait_for(timeout=5000)
    field.fill(UNIQUE_WORD)
    field.press("Enter")
    page.wait_for_url(re.compile(r"search\.html\?q="), timeout=10000)
    assert search_hits(page) == ["generated/02_second.html"]
    # A word that is nowhere finds nothing (the search really filters).
    page.goto(f"{base}/search.html?q=qwxzvbnothere", wait_until="load")
    assert search_hits(page) == []
    page.remove_listener("request", note)
    assert outside == [], f"search fetched from outside the site: {outside}"


# ------------------------------------------------------------------------------------------ navigation

@browser_test
def test_previous_next_page_contents_and_prerequisite_links(site, tabs):
    base, _ = site
    # The site's root sends the reader to the landing page.
    page = tabs()
    page.goto(f"{base}/", wait_until="load")
    page.wait_for_url(f"**/{LANDING}")
    visit(page, base, SECTION)
    # Previous/next follow the table of contents: landing → section 1 → section 2 → the guides.
    prev_href = page.locator("a.left-prev").get_attribute("href")
    next_href = page.locator("a.right-next").get_attribute("href")
    assert prev_href.endswith("01_fixture.html") and next_href.endswith("guide-students.html"), (prev_href, next_href)
    for href in (prev_href, next_href):
        assert page.request.get(f"{base}/generated/{href}").ok, href
    page.click("a.left-prev")
    page.wait_for_url("**/01_fixture.html")
    assert page.locator("a.left-prev").get_attribute("href").endswith("intro.html")
    assert page.locator("a.right-next").get_attribute("href").endswith("02_second.html")
    # The first section needs nothing, and says so.
    assert "Prerequisites: none" in page.inner_text("article")
    page.go_back()
    page.wait_for_url(f"**/{SECTION}")

    # Contents of this page: the exercise headings, each link landing on a heading of the page.
    toc = page.locator("#pst-page-toc-nav a, nav.page-toc a, .bd-toc-nav a")
    assert toc.count() >= 2, "no per-page table of contents"
    labels = [toc.nth(i).inner_text().strip() for i in range(toc.count())]
    assert any(t.startswith("Exercise 2.1") for t in labels) and any(t.startswith("Exercise 2.2") for t in labels), labels
    for i in range(toc.count()):
        anchor = toc.nth(i).get_attribute("href")
        assert anchor.startswith("#") and page.locator(f"[id='{anchor[1:]}']").count() == 1, anchor

    # Prerequisites: near the top, before the first exercise, as links that lead to the pages.
    prereq = page.locator("article p", has_text="Prerequisites:").first
    intro = page.locator("article p", has_text="This section exists to exercise the build").first
    title_y, prereq_y = page.locator("article h1").first.bounding_box()["y"], prereq.bounding_box()["y"]
    assert title_y < prereq_y < intro.bounding_box()["y"], "prerequisites are not right under the title"
    links = prereq.locator("a")
    assert links.count() == 1 and links.first.inner_text().strip() == "1. Fixture"
    links.first.click()
    page.wait_for_url("**/generated/01_fixture.html")
    assert page.locator("article h1").first.inner_text().strip().startswith("A tiny fixture section")


# ------------------------------------------------------------------- accessibility, phones, figures

AXE_SCRIPT = None


def run_axe(page) -> list[dict]:
    global AXE_SCRIPT
    if AXE_SCRIPT is None:  # the axe-core copy bundled with axe-playwright-python: no CDN
        import axe_playwright_python

        AXE_SCRIPT = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
    page.evaluate(AXE_SCRIPT)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"]]


# Everything that reaches past the right edge of the screen (whether it widens the page or is cut
# off by a parent), except inside what may scroll sideways: code (and the token contexts of the
# dashboards), figures, math, and a table whose
# math cannot wrap (in the theme's scrolling table container). Tables of text must fit.
OVERFLOW_JS = """() => {
  const W = document.documentElement.clientWidth, bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('pre, figure, .plotly, .js-plotly-plot, div.highlight, mjx-container, .course-contexts')) continue;
    const box = el.closest('.pst-scrollable-table-container');
    if (box && box.querySelector('.math, mjx-container')) continue;
    const st = getComputedStyle(el);
    if (st.display === 'none' || st.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= 0) continue;  // off-screen left: no scrollbar
    if (r.right > W + 1) bad.push(`${el.tagName.toLowerCase()}.${String(el.className).slice(0, 40)} right=${Math.round(r.right)}`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, bad: bad.slice(0, 10)};
}"""

FIGURES_JS = r"""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => {
  const fig = el.closest('figure'), cap = fig && fig.querySelector('figcaption');
  const t = el.layout && el.layout.title;
  // the title's first line, as text: an animation's subtitle (after <br>) changes with each frame
  const raw = String((t && (t.text || t)) || '').split(/<br\s*\/?>/i)[0];
  return {title: raw.replace(/<[^>]+>/g, '').trim(), caption: cap ? cap.textContent.trim() : '',
          width: el.getBoundingClientRect().width,
          svgWidth: el.querySelector('.main-svg').getBoundingClientRect().width,
          column: el.closest('.cell_output') ? el.closest('.cell_output').getBoundingClientRect().width : 0,
          scrolls: ['auto', 'scroll'].includes(getComputedStyle(el.closest('.cell_output') || el).overflowX)};
})"""


def audit(tabs, base: str, pages: list[str]) -> tuple[list[str], dict, int]:
    """Each page twice: desktop in the light theme and phone in the dark one, so that axe sees both
    themes and both layouts. Returns (problems, axe findings per page, figures seen). Problems: a
    serious/critical axe violation; anything but code and figures wider than a 390 px screen; a
    figure that is not a <figure> named by a caption carrying its title, or is wider than its column;
    figure titles or tick labels drawn over each other; an output that is a bare object repr."""
    axe_found, problems, figures_seen = {}, [], 0
    for width, theme in ((DESKTOP, "light"), (PHONE, "dark")):
        for rel in pages:
            page = visit(tabs(width, theme), base, rel)
            settle(page)
            found = run_axe(page)
            axe_found[f"{rel} {width}px {theme}"] = [f"{v['id']} ({v['impact']})" for v in found]
            problems += [f"{rel} {width}px {theme}: axe {v['id']} ({v['impact']}) at {v['nodes']}"
                         for v in found if v["impact"] in ("serious", "critical")]
            if width == PHONE:
                fit = page.evaluate(OVERFLOW_JS)
                if fit["scrollWidth"] > fit["innerWidth"] or fit["bad"]:
                    problems.append(f"{rel} at {PHONE}px scrolls sideways: {fit}")
            problems += figure_layout_problems(page, rel, width) + bare_reprs(page, rel)
            figures = page.evaluate(FIGURES_JS)
            for fig in figures:
                # (compared without spaces: the caption spells W<sup>T</sup> as "W T", the page as "WT")
                if not fig["caption"] or (fig["title"] and re.sub(r"\s", "", fig["title"]) not in re.sub(r"\s", "", fig["caption"])):
                    problems.append(f"{rel}: figure {fig['title']!r} has no caption naming it: {fig['caption']!r}")
                # Figures resize with the page: on a desktop they fit their column; on a phone a
                # wide multi-panel figure may keep a minimum width, but then scrolls in its output.
                if fig["svgWidth"] > fig["column"] + 1 and (width == DESKTOP or not fig["scrolls"]):
                    problems.append(f"{rel} at {width}px: figure wider than its column {fig}")
            if figures:  # the accessibility tree names every figure by its caption
                named = page.get_by_role("figure", name=re.compile(r"^Figure: "))
                if named.count() != len(figures):
                    problems.append(f"{rel}: {len(figures)} plots but {named.count()} named figures")
            if figures and theme == "dark":  # figures keep readable axes on the dark page
                pairs = page.evaluate(FIGURE_COLOURS_JS)["pairs"]
                worst = min(_contrast(text, paper) for text, paper in pairs) if pairs else 21
                if worst < 4.5:
                    problems.append(f"{rel} dark: figure axis text contrast {worst:.2f} < 4.5")
            figures_seen += len(figures)
    return problems, axe_found, figures_seen


# Figure texts drawn over each other. In each plotly figure: the title and subplot titles (plotly
# draws these as annotations) must not intersect one another, nor may two tick labels of one axis.
OVERLAPS_JS = r"""() => {
  const box = el => { const r = el.getBoundingClientRect(); return {l: r.left, r: r.right, t: r.top, b: r.bottom,
                                                                     w: r.width, text: el.textContent.trim()}; };
  const hit = (a, b) => Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1;
  const pairs = items => { const out = [];
    for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++)
      if (hit(items[i], items[j])) out.push([items[i].text, items[j].text]);
    return out; };
  const found = [];
  document.querySelectorAll('.js-plotly-plot').forEach((plot, n) => {
    const title = String((plot.layout && plot.layout.title && (plot.layout.title.text || plot.layout.title)) || '')
      .replace(/<[^>]+>/g, ' ').slice(0, 60);
    const titles = [...plot.querySelectorAll('.g-gtitle text, .annotation-text')].map(box).filter(b => b.w > 0 && b.text);
    for (const [a, b] of pairs(titles)) found.push(`figure ${n} (${title}): titles "${a}" and "${b}" overlap`);
    const svg = plot.querySelector('.main-svg').getBoundingClientRect();
    for (const t of titles)
      if (t.l < svg.left - 1 || t.r > svg.right + 1) found.push(`figure ${n} (${title}): title "${t.text}" runs past the figure's edge`);
    for (const axis of plot.querySelectorAll('.xaxislayer-above, .yaxislayer-above')) {
      const texts = [...axis.querySelectorAll('.xtick text, .ytick text')].filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0);
      const angle = Math.abs(Number(((texts[0] && texts[0].getAttribute('transform')) || '').match(/rotate\((-?[\d.]+)/)?.[1] || 0));
      if (angle % 180 === 0) {  // level labels: their boxes must not meet
        for (const [a, b] of pairs(texts.map(box)).slice(0, 1)) found.push(`figure ${n} (${title}): tick labels "${a}" and "${b}" overlap`);
      } else {  // slanted labels are parallel lines of text: they need a line's height between them
        const size = parseFloat(getComputedStyle(texts[0]).fontSize), sin = Math.abs(Math.sin(angle * Math.PI / 180));
        const at = t => { const m = (t.getAttribute('transform') || '').match(/translate\((-?[\d.]+)/);  // plotly places ticks by translate
                          return Number(m ? m[1] : t.getAttribute('x')); };
        const xs = texts.map(t => [at(t), t.textContent.trim()]).sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < xs.length; i++)
          if ((xs[i][0] - xs[i - 1][0]) * sin < 0.8 * size) {
            found.push(`figure ${n} (${title}): slanted tick labels "${xs[i - 1][1]}" and "${xs[i][1]}" overlap`); break; }
      }
    }
  });
  return found;
}"""

# A cell whose last line returns an object prints its repr: `<torch._C.Generator at 0x7f...>`.
BARE_REPR = re.compile(r"<[\w.]+(?: object)? at 0x[0-9a-f]+>")


def figure_layout_problems(page, rel: str, width: int) -> list[str]:
    return [f"{rel} at {width}px: {o}" for o in page.evaluate(OVERLAPS_JS)]


def bare_reprs(page, rel: str) -> list[str]:
    outputs = page.locator(".cell_output").all_inner_texts()
    return [f"{rel}: an output is a bare object repr {m!r}" for text in outputs for m in BARE_REPR.findall(text)]


@browser_test
def test_every_page_accessible_fits_a_phone_and_figures_have_text(site, tabs, report):
    base, html = site
    pages = html_pages(html)
    assert {LANDING, SECTION, "generated/01_fixture.html", "search.html"} <= set(pages)
    problems, axe_found, figures_seen = audit(tabs, base, pages)
    report["axe"] = {k: v for k, v in axe_found.items() if v}
    report["axe_pages_checked"] = len(axe_found)
    assert figures_seen >= 4, "the fixture pages should show their figures (2 pages x 2 passes)"
    assert problems == [], "\n".join(problems)


@pytest.mark.sections
# Issue 20 is open: the last audit of the real pages found 7 problems, all at 390 px (overlapping
# panel titles in sections 1, 2 and 3, overlapping tick labels in section 3, a title past the edge
# in section 6). The audit runs and reports them; it fails the suite once they are fixed
# (not strict, so that a fix shows as XPASS rather than hiding).
@pytest.mark.xfail(reason="issue 20: 7 known phone-width figure problems on the real pages", strict=False)
@browser_test
def test_every_real_section_page_passes_the_reader_audit(real_site, tabs, report):
    """The seven section pages of the FAST build (the real figures, animations and dashboards):
    the same audit as above, plus a screenshot of each page on a desktop and on a phone."""
    base, html = real_site
    pages = sorted(p for p in html_pages(html) if re.fullmatch(r"generated/\d\d_\w+\.html", p))
    sources = sorted((REPO / "source_exercises").glob("[0-9][0-9]_*.py"))
    assert [Path(p).stem for p in pages] == [s.stem for s in sources], pages
    problems, axe_found, figures_seen = audit(tabs, base, pages)
    report["real_axe"] = {k: v for k, v in axe_found.items() if v}
    report["real_figures_seen"] = figures_seen
    shots = SHOTS / "sections"
    shots.mkdir(parents=True, exist_ok=True)
    for rel in pages:
        for width, theme in ((DESKTOP, "light"), (PHONE, "dark")):
            page = visit(tabs(width, theme), base, rel)
            settle(page)
            page.screenshot(path=str(shots / f"{Path(rel).stem}-{width}-{theme}.png"), full_page=True,
                            animations="disabled")
    assert figures_seen >= 2 * 40, f"only {figures_seen} figures on the section pages"
    assert problems == [], f"{len(problems)} problem(s):\n" + "\n".join(problems)


@browser_test
def test_figures_resize_with_the_window(site, tabs):
    base, _ = site
    page = visit(tabs(), base, SECTION)
    wide = page.locator(".js-plotly-plot .main-svg").first.bounding_box()["width"]
    page.set_viewport_size({"width": PHONE, "height": 900})
    page.wait_for_function(f"document.querySelector('.js-plotly-plot .main-svg').getBoundingClientRect().width < {PHONE}",
                           timeout=10000)
    narrow = page.locator(".js-plotly-plot .main-svg").first.bounding_box()["width"]
    assert wide > 500 and narrow < PHONE, (wide, narrow)


# ------------------------------------------------------------------------------------------- dark mode

def _luminance(rgb: str) -> float:
    parts = [float(x) for x in re.findall(r"[\d.]+", rgb)[:3]]
    lin = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in parts]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# For every figure: the colour of its axis labels and titles, and what is really behind them (the
# first opaque background from its plot upwards).
FIGURE_COLOURS_JS = """() => {
  const opaque = el => { for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c && c !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(c)) return c; } return 'rgb(255, 255, 255)'; };
  const pairs = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const paper = opaque(plot.querySelector('.main-svg'));
    for (const t of plot.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text, .g-gtitle text'))
      pairs.push([getComputedStyle(t).fill, paper]);
  }
  return {pairs, paper: opaque(document.querySelector('.js-plotly-plot .main-svg')),
          page: opaque(document.querySelector('.bd-article')),
          frame: opaque(document.querySelector('.cell_output .text_html:has(.js-plotly-plot)'))};
}"""


def worst_contrast(colours: dict) -> float:
    assert len(colours["pairs"]) >= 5, "no axis labels found"
    return min(_contrast(text, paper) for text, paper in colours["pairs"])


@browser_test
def test_dark_mode_keeps_figure_axes_readable(site, tabs, report):
    base, _ = site
    seen = {}
    for theme in ("light", "dark"):
        page = visit(tabs(DESKTOP, theme), base, SECTION)
        seen[theme] = colours = page.evaluate(FIGURE_COLOURS_JS)
        worst = worst_contrast(colours)
        assert worst >= 4.5, f"{theme}: axis text contrast {worst:.2f} < 4.5 ({colours})"
        seen[theme]["worst_contrast"] = round(worst, 2)
    # The theme really switched: a dark page around the light figure, whose output frame takes
    # the figure's own paper colour (one light card, not a grey mat around a white plot).
    assert _luminance(seen["light"]["page"]) > 0.8 and _luminance(seen["dark"]["page"]) < 0.1, seen
    assert seen["dark"]["frame"] == seen["dark"]["paper"], seen["dark"]
    # Switching with the theme's own button keeps the axes readable too.
    page = visit(tabs(DESKTOP, "light"), base, SECTION)
    for _ in range(3):  # the button cycles light → dark → auto
        page.locator(".theme-switch-button").first.click()
        if page.evaluate("document.documentElement.dataset.theme") == "dark":
            break
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    colours = page.evaluate(FIGURE_COLOURS_JS)
    assert worst_contrast(colours) >= 4.5, colours
    report["figure_contrast"] = {t: seen[t]["worst_contrast"] for t in seen}


# ----------------------------------------------------------------------------------------- page weight

PLOTLY_BANNER = re.compile(rb"\* plotly\.js v\d")


def site_weight(html: Path) -> dict:
    """Bytes of every page (its HTML holds its figures' data), of the whole site, and the copies
    of plotly.js and MathJax that pages load."""
    pages = {rel: (html / rel).stat().st_size for rel in html_pages(html, redirects=True)}
    largest = max(pages, key=pages.get)
    total = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
    plotly_copies = [f.relative_to(html).as_posix() for f in html.rglob("*.js")
                     if PLOTLY_BANNER.search(f.read_bytes()[:4000])]
    return {"largest_page": largest, "largest_page_bytes": pages[largest], "total_site_bytes": total,
            "pages": pages, "plotly_js_copies": plotly_copies,
            "static_bytes": sum(f.stat().st_size for f in (html / "_static").rglob("*") if f.is_file())}


@browser_test
def test_page_weight_plotly_and_mathjax_served_once(site, browser, report):
    base, html = site
    weight = site_weight(html)
    assert weight["pages"], "no pages"
    assert weight["plotly_js_copies"] == ["_static/plotly.min.js"], weight["plotly_js_copies"]
    loaded = {}
    for rel in html_pages(html, redirects=True):
        text = (html / rel).read_bytes()
        assert not PLOTLY_BANNER.search(text), f"{rel} embeds plotly.js"
        assert b"MathJax.startup" not in text and len(re.findall(rb"<script[^>]*mathjax", text, re.I)) <= 1, rel
        scripts = re.findall(rb"""<script[^>]*src=["']([^"']+)""", text)
        loaded[rel] = [s.decode() for s in scripts if re.search(rb"plotly|mathjax", s, re.I)]
    # Pages with figures load the one site copy of plotly.js; pages with math the one MathJax.
    for rel in ("generated/01_fixture.html", SECTION):
        names = sorted(re.sub(r"^(\.\./)*|\?.*$", "", s) for s in loaded[rel])
        assert names == ["_static/mathjax/tex-chtml.js", "_static/plotly.min.js"], (rel, loaded[rel])
    # What one section page really transfers on a first visit (its HTML, figures, all scripts).
    page = browser.new_page(viewport={"width": DESKTOP, "height": 900})
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.goto(f"{base}/{SECTION}", wait_until="networkidle", timeout=60_000)
    sizes = {r.url: len(r.body()) for r in responses if r.ok}
    page.close()
    assert sum(1 for url in sizes if "plotly" in url.rsplit("/", 1)[-1]) == 1
    weight["section_page_first_visit_bytes"] = sum(sizes.values())
    report["weight"] = {k: v for k, v in weight.items() if k != "pages"}
    print(f"\nlargest page {weight['largest_page']}: {weight['largest_page_bytes'] / 1e3:.0f} kB; "
          f"site {weight['total_site_bytes'] / 1e6:.1f} MB; first visit of {SECTION}: "
          f"{weight['section_page_first_visit_bytes'] / 1e6:.2f} MB")


# ----------------------------------------------------------------------------------------- screenshots

@browser_test
def test_screenshots_desktop_and_phone_light_and_dark(site, tabs):
    base, _ = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    made = []
    for rel, name in ((LANDING, "landing"), (SECTION, "section")):
        for width in (DESKTOP, PHONE):
            for theme in ("light", "dark"):
                page = visit(tabs(width, theme), base, rel)
                settle(page)
                path = SHOTS / f"{name}-{width}-{theme}.png"
                # Transitions finished: a capture must not catch the theme mid-slide.
                page.screenshot(path=str(path), full_page=True, animations="disabled")
                made.append(path)
    for path in made:
        assert path.stat().st_size > 20_000, f"{path} looks empty"
    for name in ("landing", "section"):
        for width in (DESKTOP, PHONE):
            light, dark = (SHOTS / f"{name}-{width}-{t}.png" for t in ("light", "dark"))
            assert light.read_bytes() != dark.read_bytes(), f"{name} {width}px: dark looks like light"


# ------------------------------------------------------------ the pieces, without a browser or a build

def test_site_renderer_wraps_each_figure_in_a_captioned_figure_without_plotly_js():
    code = """
import json, plotly.express as px, plotly.io as pio
import coursepress.plots as plots
fig = px.line(x=[1, 2], y=[3, 4], title="Loss <b>&</b> steps", width=1400)
bundle = pio.renderers["course_site"].to_mimebundle(fig.to_dict())
print(json.dumps({"html": bundle["text/html"], "json_width": bundle["application/vnd.plotly.v1+json"]["layout"]["width"],
                  "default": pio.renderers.default}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "COURSE_BUILD": "1"})
    result = json.loads(out.stdout)
    html = result["html"]
    assert result["default"] == "course_site"
    assert html.startswith('<figure class="course-figure"') and html.endswith("</figure>")
    caption = re.search(r"<figcaption[^>]*>(.*?)</figcaption>", html).group(1)
    assert caption == "Figure: Loss &amp; steps. Interactive line plot (x: x; y: y)."
    assert "Plotly.newPlot" in html and "cdn.plot.ly" not in html and not PLOTLY_BANNER.search(html.encode())
    # A fixed width would overflow the column: the page gets a fluid figure with a floor,
    # the notebook's JSON keeps the author's width.
    assert '"width":1400' not in html and "min-width:600px" in html and result["json_width"] == 1400


def test_outside_the_site_build_the_default_renderer_is_untouched():
    code = """
import plotly.io as pio
before = pio.renderers.default
import coursepress.plots
print(before == pio.renderers.default, "course_site" in pio.renderers)
"""
    env = {k: v for k, v in os.environ.items() if k != "COURSE_BUILD"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "False"]


def test_links_and_prerequisites_come_right_under_the_title():
    import nbformat

    from build_tools.split.page import make_page

    links = {"colab_exercise": "c1", "colab_solution": "c2", "download_exercise": "d1",
             "download_solution": "d2", "page_for": lambda n: f"0{n}_x.ipynb"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("setup = 1"),
                                         nbformat.v4.new_markdown_cell("# Title\n\nA long introduction."),
                                         nbformat.v4.new_code_cell("x = 1")])
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    page = make_page(nb, "02_x", {"prerequisites": [1]}, links, {1: "1. First"})
    assert [c.id for c in page.cells] == ["cell-0", "cell-1", "course-links", "cell-1-text", "cell-2"]
    assert page.cells[1].source == "# Title" and page.cells[3].source == "A long introduction."
    assert "**Prerequisites:** [1. First](01_x.ipynb)" in page.cells[2].source
    # A first cell that is only a title, or has none, keeps the block after it.
    nb.cells[1].source = "Plain text first."
    assert [c.id for c in make_page(nb, "02_x", {}, links, {}).cells] == ["cell-0", "cell-1", "course-links", "cell-2"]
