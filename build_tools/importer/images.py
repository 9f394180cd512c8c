"""Images the notebook's text shows: copied next to the section, links rewritten to the copies.

Local files (``![alt](figure.png)``, ``<img src="figure.png">``, relative to the notebook) and cell
attachments (``attachment:figure.png``) go to ``source_exercises/<stem>_files/``; a link in a
section file is relative to the file, and the build embeds such images in every notebook and page
(``build_tools/split/images.py``). Web addresses are left as they are.
"""

from __future__ import annotations

import base64
from pathlib import Path

from build_tools.importer.model import Cell
from build_tools.importer.report import Report
from build_tools.split.images import HTML_IMAGE, MARKDOWN_IMAGE, is_local

def _free_name(folder: Path, name: str, taken: dict) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, k = name, 2
    while candidate in taken.values() or (folder / candidate).exists():
        candidate, k = f"{stem}-{k}{suffix}", k + 1
    return candidate


def collect_images(cells: list[Cell], attachments: dict, notebook_dir: Path, files_dir: Path,
                   report: Report) -> dict[str, bytes]:
    """Rewrite image links in markdown cells; return {file name under files_dir: content} to write.

    attachments: {cell index: {name: {mime: base64}}} from the notebook's markdown cells.
    """
    out: dict[str, bytes] = {}
    names: dict[tuple, str] = {}  # (origin) → name under files_dir; one copy per source image

    def place(key, name: str, data: bytes) -> str:
        if key not in names:
            names[key] = _free_name(files_dir, Path(name).name or "image", names)
            out[names[key]] = data
        return f"{files_dir.name}/{names[key]}"

    def rewrite(cell: Cell, match) -> str:
        url = match.group("url")
        if url.startswith("attachment:"):
            name = url[len("attachment:"):]
            bundle = attachments.get(cell.index, {}).get(name)
            if not bundle:
                report.unmappable(cell.index, f"image {url!r} has no attachment in the cell; link kept")
                return match.group(0)
            data = base64.b64decode(next(iter(bundle.values())))
            return match.group("head") + place(("attachment", cell.index, name), name, data) + match.group("tail")
        if not is_local(url):
            return match.group(0)
        path = (notebook_dir / url.split("#")[0].split("?")[0]).resolve()
        if not path.is_file():
            report.unmappable(cell.index, f"image {url!r} not found next to the notebook; link kept as written")
            return match.group(0)
        return match.group("head") + place(("file", path), path.name, path.read_bytes()) + match.group("tail")

    for cell in cells:
        if cell.kind != "markdown":
            continue
        body = MARKDOWN_IMAGE.sub(lambda m: rewrite(cell, m), cell.body)
        cell.body = HTML_IMAGE.sub(lambda m: rewrite(cell, m), body)
    for name in out:
        report.note(None, f"image copied to {files_dir.name}/{name}")
    return out
