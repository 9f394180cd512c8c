"""`course new NAME`: a new section file from the template, with the next free number."""

import re
from pathlib import Path

TEMPLATE = Path(__file__).parent / "templates" / "section.py"


def scaffold(sources: Path, name: str, existing: list[Path]) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"cannot make a file name from {name!r}")
    number = max((int(p.stem[:2]) for p in existing), default=0) + 1
    if number > 99:
        raise ValueError("no free section number left (01-99)")
    path = sources / f"{number:02d}_{slug}.py"
    if path.exists():
        raise ValueError(f"{path} already exists")
    text = TEMPLATE.read_text()
    title = name.replace("_", " ").strip().capitalize()
    text = text.replace('title: "A first section"', f'title: "{title}"')
    text = text.replace('short_title: "First section"', f'short_title: "{title}"')
    text = text.replace("# # A first section", f"# # {title}")
    text = text.replace("save_results(1,", f"save_results({number},")
    sources.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
