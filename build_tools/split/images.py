"""Images a section's text shows from files next to it (``![alt](NN_name_files/figure.png)``, a path
relative to the source file), embedded so that every copy of the notebook shows them: Jupyter,
Colab and a download (cell attachments), and the site page (a data URI: MyST-NB does not read
attachments)."""

import base64
import copy
import mimetypes
import re
from pathlib import Path

MARKDOWN_IMAGE = re.compile(r"(?P<head>!\[[^\]]*\]\(\s*<?)(?P<url>[^)\s>]+)(?P<tail>>?(?:\s+\"[^\"]*\")?\s*\))")
HTML_IMAGE = re.compile(r"(?P<head><img\b[^>]*?\bsrc\s*=\s*[\"'])(?P<url>[^\"']+)(?P<tail>[\"'])", re.I)


def is_local(url: str) -> bool:
    """A path relative to the text (not a web address, an absolute path or an anchor)."""
    return not re.match(r"^([a-z][a-z0-9+.-]*:|/|#)", url, re.I)


def _local_file(url: str, folder: Path) -> Path | None:
    if not is_local(url):
        return None
    path = (folder / url).resolve()
    return path if path.is_file() else None


def _folder(cell, source_path: Path) -> Path:
    """Links are relative to the file the cell was written in (a helper's cells: the helper)."""
    return Path(cell.metadata.get("course", {}).get("origin") or source_path).resolve().parent


def local_images(nb, source_path: Path) -> list[Path]:
    """The image files a notebook's text shows (part of what its pages are made from)."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for pattern in (MARKDOWN_IMAGE, HTML_IMAGE):
                for match in pattern.finditer(cell.source):
                    path = _local_file(match.group("url"), _folder(cell, source_path))
                    if path is not None:
                        found.add(path)
    return sorted(found)


def embed_images(nb, source_path: Path, style: str):
    """style: "attachment" (notebooks) or "data-uri" (the site page)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type != "markdown" or ("](" not in cell.source and "<img" not in cell.source.lower()):
            continue
        folder = _folder(cell, source_path)

        def embed(match):
            path = _local_file(match.group("url"), folder)
            if path is None:
                return match.group(0)
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            data = base64.b64encode(path.read_bytes()).decode()
            if style == "data-uri":
                return f"{match.group('head')}data:{mime};base64,{data}{match.group('tail')}"
            cell.setdefault("attachments", {})[path.name] = {mime: data}
            return f"{match.group('head')}attachment:{path.name}{match.group('tail')}"

        cell.source = HTML_IMAGE.sub(embed, MARKDOWN_IMAGE.sub(embed, cell.source))
    return out
