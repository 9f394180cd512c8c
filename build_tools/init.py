"""`course init DIR`: a new, complete course that builds, checks, grades and publishes as it is.

The files come from `templates/course/` (config, book pages, Makefile, CI script, README, a test)
plus one example section made by `course new`'s template. Placeholders `{{title}}`, `{{author}}`,
`{{year}}`, `{{slug}}` and `{{coursepress}}` are filled in; nothing else is generated.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from build_tools.scaffold import scaffold

TEMPLATE = Path(__file__).parent / "templates" / "course"


def tooling_requirement() -> str:
    """How the new course's Makefile installs the tooling: from the folder it is installed from
    (a checkout's `tooling/`, editable or not), else the released version."""
    dist = metadata.distribution("coursepress")
    direct = dist.read_text("direct_url.json")
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file://"):
            return url[len("file://"):]
    return f"coursepress=={dist.version}"


def constraints() -> str:
    """The versions this tooling was installed and tested with, as a pip constraints file, so the
    new course gets the same ones (constraints pin without installing anything extra)."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True).stdout
    pins = [line for line in frozen.splitlines() if "==" in line and "@" not in line]
    return ("# Versions the tooling was tested with (a pip constraints file; `course init` wrote it).\n"
            + "\n".join(pins) + "\n")


def init_course(dest: Path, title: str | None = None, author: str = "The course authors") -> list[Path]:
    """Create the course in `dest` (which must be missing or empty). Returns the files written."""
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} exists and is not empty: choose a new folder")
    title = title or dest.name.replace("-", " ").replace("_", " ").strip().capitalize() or "My course"
    values = {"{{title}}": title, "{{author}}": author, "{{year}}": str(datetime.date.today().year),
              "{{coursepress}}": tooling_requirement(),
              "{{slug}}": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "my-course"}
    staging = dest.with_name(f".{dest.name}.init-tmp")  # all or nothing: moved into place at the end
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(TEMPLATE, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in staging.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace(key, value)
            path.write_text(text, encoding="utf-8")
    (staging / "constraints.txt").write_text(constraints(), encoding="utf-8")
    (staging / ".ci" / "run").chmod(0o755)
    scaffold(staging / "source_exercises", "example", [])
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.rmdir()
    staging.rename(dest)
    return sorted(p for p in dest.rglob("*") if p.is_file())
