"""`course serve --watch`: the authors' loop, as `mkdocs serve` / `sphinx-autobuild` do it.

A thread polls the modification times of the files a build reads (section sources and the images
next to them, helpers, the book's pages, `_config.yml`; polling needs no extra dependency and
works on every file system). When one changes it rebuilds, cached as always: a section file alone
rebuilds that section (`course build --only`), anything shared rebuilds every section (cached, so
only what the change affects executes). Served HTML pages get a small script that polls
``/__reload`` and reloads the page when a build finished, or shows the build's error. The script
is added while serving; it is never written into the built site.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import traceback
from pathlib import Path

from rich.console import Console

from build_tools.build import Paths, build
from build_tools.source import SourceError

RELOAD_PATH = "/__reload"
SNIPPET = """<script>/* course serve --watch: live reload (not part of the built site) */
(function () {
  var seen = %(build)d, box = null;
  function show(error) {
    if (!error) { if (box) { box.remove(); box = null; } return; }
    if (!box) {
      box = document.createElement("pre");
      box.id = "course-watch-error";
      box.style.cssText = "position:fixed;bottom:0;left:0;right:0;max-height:40%%;overflow:auto;margin:0;"
        + "padding:1em;background:#fee;color:#900;border-top:2px solid #900;z-index:10000;white-space:pre-wrap";
      document.body.appendChild(box);
    }
    box.textContent = "course serve --watch: the last rebuild failed\\n\\n" + error;
  }
  function poll() {
    fetch("%(path)s", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (state) {
      if (state.build !== seen) { location.reload(); return; }
      show(state.error);
      setTimeout(poll, 500);
    }, function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 500);
})();
</script>"""


def watched_files(paths: Paths, helpers: str) -> dict[Path, int]:
    """Every file a build reads that an author edits, with its modification time (ns)."""
    root = paths.root
    files = [*paths.sources.glob("*.py"), *paths.sources.glob("*_files/*"), *(root / helpers).glob("*.py"),
             *paths.book.glob("*.md"), *(paths.book / "_static").glob("*.css"), root / "_config.yml"]
    found = {}
    for f in files:
        try:
            found[f] = f.stat().st_mtime_ns
        except FileNotFoundError:  # deleted between the listing and now
            continue
    return found


def sections_to_rebuild(before: dict, after: dict, paths: Paths) -> list[str] | None:
    """Stems of the edited section files, or None when something shared changed (rebuild all)."""
    changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
    stems = set()
    for f in changed:
        if f.parent == paths.sources and f.suffix == ".py" and f.name[:2].isdigit() and f in after:
            stems.add(f.stem)
        elif f.parent.parent == paths.sources and f.parent.name.endswith("_files"):
            stems.add(f.parent.name[: -len("_files")])  # an image a section shows
        else:
            return None
    return sorted(stems)


class Rebuilder:
    """Rebuilds on change; ``state()`` is what ``/__reload`` answers: {"build": n, "error": text}."""

    def __init__(self, paths: Paths, fast: bool, console: Console, helpers: str = "course_helpers",
                 interval: float = 0.4):
        self.paths, self.fast, self.console, self.helpers, self.interval = paths, fast, console, helpers, interval
        self.builds, self.error = 0, ""
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def state(self) -> dict:
        with self.lock:
            return {"build": self.builds, "error": self.error}

    def rebuild(self, only: list[str] | None, reason: str = "change detected") -> None:
        from build_tools.execute import ExecutionFailed

        what = ", ".join(only) if only else "every section (cached)"
        self.console.print(f"[bold]{reason}[/]: rebuilding {what}")
        try:
            build(self.paths, fast=self.fast, only=only, console=self.console)
        except SourceError as err:
            error = "\n".join(err.problems)
        except ExecutionFailed as err:
            error = str(err)
        except Exception:  # noqa: BLE001 - keep serving whatever went wrong; the page shows it
            error = traceback.format_exc(limit=5)
        else:
            error = ""
        with self.lock:
            self.error = error
            if not error:
                self.builds += 1
        if error:
            print(error, flush=True)  # plain print: path:line must never be wrapped
            self.console.print("[red]rebuild failed[/]; still serving the last good build")
        else:
            self.console.print(f"[green]rebuilt[/] (build {self.builds}); open pages reload")

    def run(self) -> None:
        seen = watched_files(self.paths, self.helpers)
        while not self.stop.wait(self.interval):
            now = watched_files(self.paths, self.helpers)
            if now == seen:
                continue
            while not self.stop.wait(self.interval):  # an editor may write a file in several steps
                settled = watched_files(self.paths, self.helpers)
                if settled == now:
                    break
                now = settled
            self.rebuild(sections_to_rebuild(seen, now, self.paths))
            seen = watched_files(self.paths, self.helpers)  # edits made during the build trigger another


def handler_class(html: Path, rebuilder: Rebuilder | None):
    """Static files from ``html``; with a rebuilder, HTML pages carry the reload script."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(html), **kwargs)

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass  # one line per request drowns the build's output

        def do_GET(self):
            if rebuilder is None:
                return super().do_GET()
            if self.path.split("?")[0] == RELOAD_PATH:
                return self._send(json.dumps(rebuilder.state()).encode(), "application/json")
            target = Path(self.translate_path(self.path))
            if target.is_dir() and self.path.split("?")[0].endswith("/"):
                target = target / "index.html"
            if target.suffix == ".html" and target.is_file():
                page = target.read_text(encoding="utf-8", errors="replace")
                script = SNIPPET % {"build": rebuilder.state()["build"], "path": RELOAD_PATH}
                at = page.rfind("</body>")
                page = page[:at] + script + page[at:] if at >= 0 else page + script
                return self._send(page.encode("utf-8"), "text/html; charset=utf-8")
            return super().do_GET()

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def serve(paths: Paths, port: int, console: Console, watch: bool = False, fast: bool = False,
          helpers: str = "course_helpers") -> None:
    html = paths.book / "_build" / "html"
    rebuilder = Rebuilder(paths, fast, console, helpers) if watch else None
    if rebuilder is not None:
        rebuilder.rebuild(None, reason="start")  # start from a site that matches the sources (cached: quick)
    if not (html / "index.html").exists():
        raise FileNotFoundError("no built site: run `course build` (or `course build --fast`) first")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_class(html, rebuilder))
    watcher = threading.Thread(target=rebuilder.run, daemon=True) if rebuilder else None
    if watcher:
        watcher.start()
    mode = f", rebuilding on change ({'FAST' if fast else 'full'} mode)" if watch else ""
    print(f"serving {html} on http://127.0.0.1:{server.server_address[1]}/{mode} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if rebuilder:
            rebuilder.stop.set()
        server.server_close()
