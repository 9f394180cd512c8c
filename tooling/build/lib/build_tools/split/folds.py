"""Collapsible blocks (``fold="Hint"``): ``<details>`` in notebooks, a folded dropdown on the page."""

import copy


def render_folds(nb, style: str):
    """style: "details" (Jupyter, Colab) or "dropdown" (MyST, for the site)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        summary = cell.metadata.get("course", {}).get("fold")
        if not summary:
            continue
        if cell.cell_type == "code":
            if style == "dropdown":
                tags = cell.metadata.setdefault("tags", [])
                if "hide-input" not in tags:
                    tags.append("hide-input")
            continue
        if style == "details":
            cell.source = f"<details>\n<summary>{summary}</summary>\n\n{cell.source}\n\n</details>"
        else:
            # Four colons so that fenced blocks (```) inside the fold keep working.
            cell.source = f"::::{{dropdown}} {summary}\n\n{cell.source}\n\n::::"
    return out
