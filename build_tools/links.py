"""`course check --links`: every internal link and anchor of the built site resolves.

The story: read every page of book/_build/html → note the ids it defines and the URLs it points at
(a href, link href, script/img/iframe/source src) → an internal URL must name a file of the site,
and its #fragment an id (or a named anchor) of that page → external URLs are only listed, and
fetched only when asked (`--online`): building and checking the site never needs the network.
"""

from __future__ import annotations

import posixpath
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Folders that hold no pages of their own: Sphinx's copies of the sources and its static files.
NOT_PAGES = ("_sources/", "_static/")
URL_ATTRIBUTES = {"a": "href", "link": "href", "script": "src", "img": "src", "iframe": "src", "source": "src"}
NOT_CHECKED = ("javascript:", "mailto:", "data:", "tel:", "about:")


@dataclass
class Page:
    ids: set[str] = field(default_factory=set)
    urls: list[tuple[int, str]] = field(default_factory=list)  # (line, URL as written)


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.page.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.page.ids.add(attrs["name"])
        url = attrs.get(URL_ATTRIBUTES.get(tag, ""))
        if url is not None and not (tag == "link" and "canonical" in (attrs.get("rel") or "")):
            self.page.urls.append((self.getpos()[0], url.strip()))


def read_page(path: Path) -> Page:
    parser = _PageParser()
    parser.feed(path.read_text(errors="replace"))
    parser.close()
    return parser.page


@dataclass
class LinkReport:
    pages: int = 0
    internal: int = 0  # internal links checked
    broken: list[str] = field(default_factory=list)  # "page:line: URL: why"
    external: dict[str, list[str]] = field(default_factory=dict)  # URL -> pages that use it

    @property
    def ok(self) -> bool:
        return not self.broken


def is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme in ("http", "https") or parts.netloc)


def check_site(html: Path) -> LinkReport:
    """Check every internal link and anchor of the site built in `html`; list the external ones."""
    html = Path(html)
    if not (html / "index.html").exists():
        raise FileNotFoundError(f"no built site in {html}: run `course build` first")
    files = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html"))
    pages = {rel: read_page(html / rel) for rel in files if not rel.startswith(NOT_PAGES)}
    report = LinkReport(pages=len(pages))
    for rel, page in pages.items():
        for line, url in page.urls:
            if not url or url.lower().startswith(NOT_CHECKED):
                continue
            if is_external(url):
                report.external.setdefault(url, []).append(rel)
                continue
            report.internal += 1
            problem = _resolve(html, rel, url, pages)
            if problem:
                report.broken.append(f"{rel}:{line}: {url}: {problem}")
    return report


def _resolve(html: Path, rel: str, url: str, pages: dict[str, Page]) -> str | None:
    """None when `url`, written on page `rel`, leads somewhere; else why not."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if path.startswith("/"):
        return "absolute path: the site may be served under a sub-folder, use a relative link"
    target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), path)) if path else rel
    if target == ".." or target.startswith("../"):
        return "points outside the site"
    if (html / target).is_dir():
        target = posixpath.join(target, "index.html").removeprefix("./")
    if not (html / target).is_file():
        return f"no such file {target}"
    fragment = unquote(parts.fragment)
    if fragment and target.endswith(".html"):
        ids = pages[target].ids if target in pages else read_page(html / target).ids
        if fragment not in ids:
            return f"no anchor #{fragment} in {target}"
    return None


def check_external(urls, timeout: float = 10.0) -> list[str]:
    """Fetch each external URL (HEAD, then GET where HEAD is refused); "URL: why" for each that fails."""
    failures = []
    for url in urls:
        if url.startswith("//"):
            url = "https:" + url
        for method in ("HEAD", "GET"):
            request = urllib.request.Request(url, method=method, headers={"User-Agent": "course-link-check"})
            try:
                with urllib.request.urlopen(request, timeout=timeout):
                    break
            except urllib.error.HTTPError as err:
                if method == "GET" or err.code not in (403, 405, 501):
                    failures.append(f"{url}: HTTP {err.code}")
                    break
            except (urllib.error.URLError, OSError, ValueError) as err:
                failures.append(f"{url}: {getattr(err, 'reason', err)}")
                break
    return failures
