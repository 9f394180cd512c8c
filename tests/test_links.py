"""`course check --links`: internal links and anchors of the built site resolve, a planted broken
one is caught, external links are listed and fetched only with --online."""

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from build_tools.links import check_external, check_site
from conftest import run_course


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tiny_site(tmp_path) -> Path:
    html = tmp_path / "html"
    write(html / "index.html", '<meta http-equiv="refresh" content="0; url=intro.html"><a href="intro.html">go</a>')
    write(html / "intro.html", """<h1 id="top">Intro</h1><a name="old-anchor"></a>
<a href="generated/01%20a.html#sec-1">section</a> <a href="#top">top</a> <a href="">self</a>
<a href="generated/">folder</a> <a href="intro.html?highlight=x#old-anchor">query</a>
<link rel="stylesheet" href="_static/s.css"><script src="_static/s.js"></script>
<a href="https://example.org/a">out</a> <a href="//cdn.example.org/b">out</a> <a href="mailto:x@y.z">mail</a>
<link rel="canonical" href="/nowhere.html">""")
    write(html / "generated" / "01 a.html", '<h2 id="sec-1">1</h2><a href="../intro.html#top">back</a>'
                                            '<img src="../_static/fig.png"><a href="https://example.org/a">again</a>')
    write(html / "generated" / "index.html", "<p>folder index</p>")
    for name in ("s.css", "s.js", "fig.png"):
        write(html / "_static" / name, "x")
    write(html / "_static" / "vendor.html", '<a href="missing.html">not a page of the site</a>')
    return html


def test_every_kind_of_good_link_resolves_and_external_ones_are_listed(tiny_site):
    report = check_site(tiny_site)
    assert report.broken == []
    assert report.pages == 4  # _static/ holds no pages
    assert report.internal == 9  # the empty href (this page) is not counted
    assert report.external == {"https://example.org/a": ["generated/01 a.html", "intro.html"],
                               "//cdn.example.org/b": ["intro.html"]}


def test_broken_files_anchors_and_escapes_are_each_reported_with_their_line(tiny_site):
    page = tiny_site / "generated" / "01 a.html"
    page.write_text(page.read_text() + '\n<a href="../intro.html#nowhere">x</a>\n<a href="02_missing.html">y</a>'
                    '\n<img src="../../outside.png">\n<a href="/intro.html">z</a>\n<a href="#sec-2">w</a>')
    assert check_site(tiny_site).broken == [
        "generated/01 a.html:2: ../intro.html#nowhere: no anchor #nowhere in intro.html",
        "generated/01 a.html:3: 02_missing.html: no such file generated/02_missing.html",
        "generated/01 a.html:4: ../../outside.png: points outside the site",
        "generated/01 a.html:5: /intro.html: absolute path: the site may be served under a sub-folder, use a relative link",
        "generated/01 a.html:6: #sec-2: no anchor #sec-2 in generated/01 a.html",
    ]


def test_external_links_are_fetched_only_when_asked(tmp_path):
    (tmp_path / "here.html").write_text("ok")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert check_external([f"{base}/here.html", f"{base}/gone.html"], timeout=5) == [f"{base}/gone.html: HTTP 404"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_course_check_links_on_the_built_fixture_site_and_a_planted_broken_link(built_fixture, tmp_path):
    root, _ = built_fixture
    ok = run_course("check", "--links", cwd=root)
    assert "links OK" in ok.stdout and "external link(s) (not fetched" in ok.stdout, ok.stdout
    internal = int(ok.stdout.split("links OK: ")[1].split()[0])
    assert internal > 100, ok.stdout  # navigation, contents, badges, scripts: a real site has many
    # A copy of the site with one broken anchor and one missing page planted in the section page.
    copy = tmp_path / "proj"
    shutil.copytree(root / "book" / "_build" / "html", copy / "book" / "_build" / "html")
    shutil.copy(root / "_config.yml", copy)
    (copy / "source_exercises").mkdir()
    page = copy / "book" / "_build" / "html" / "generated" / "01_fixture.html"
    text = page.read_text()
    page.write_text(text.replace("</article>", '<a href="../intro.html#no-such-heading">a</a>'
                                               '<a href="02_gone.html">b</a></article>', 1))
    bad = run_course("check", "--links", "--root", str(copy), cwd=copy, check=False)
    assert bad.returncode == 1, bad.stdout
    lines = [line for line in bad.stdout.splitlines() if line.startswith("generated/01_fixture.html:")]
    assert len(lines) == 2 and "no anchor #no-such-heading in intro.html" in lines[0] \
        and "no such file generated/02_gone.html" in lines[1], bad.stdout
    assert "2 broken internal link(s)" in bad.stdout
