"""Exercise headers: title plus difficulty / importance / time badges, numbered per section."""

import copy


def _dots(value: int) -> str:
    # Geometric shapes, not emoji: they render in every font, Colab and headless browsers included.
    return "●" * value + "○" * (5 - value)


def badge_line(opts: dict) -> str:
    minutes = str(opts["minutes"]).replace("-", "–")
    return (
        f"**Difficulty** {_dots(opts['difficulty'])} {opts['difficulty']}/5 &nbsp;·&nbsp; "
        f"**Importance** {_dots(opts['importance'])} {opts['importance']}/5 &nbsp;·&nbsp; "
        f"**Time** ~{minutes} min"
    )


def render_exercise_headers(nb, section_number: int):
    out = copy.deepcopy(nb)
    count = 0
    for cell in out.cells:
        opts = cell.metadata.get("course", {})
        if cell.cell_type != "markdown" or "exercise" not in opts:
            continue
        count += 1
        title = f"### Exercise {section_number}.{count}: {opts['exercise']}"
        cell.source = f"{title}\n\n> {badge_line(opts)}\n\n{cell.source}".rstrip()
        tags = cell.metadata.setdefault("tags", [])
        if "exercise" not in tags:
            tags.append("exercise")
    return out
