"""Turn the executed notebook into the site page: links and badges on top, solution code folded,
helper code shown as the import a reader would write, set-up cells removed."""

import copy

import nbformat


def _tag(cell, tag: str):
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def links_block(stem: str, meta: dict, links: dict, titles: dict) -> str:
    prereq = meta.get("prerequisites") or []
    prereq_md = ", ".join(f"[{titles.get(n, n)}]({links['page_for'](n)})" for n in prereq) or "none"
    time = f" &nbsp;·&nbsp; **Time:** about {meta['minutes'] // 60}h{meta['minutes'] % 60:02d}" if meta.get("minutes") else ""
    essential = " &nbsp;·&nbsp; **Essential**" if meta.get("essential") else " &nbsp;·&nbsp; Optional"
    return (
        '<div class="course-links">\n'
        f'<a class="course-badge colab" href="{links["colab_exercise"]}">Open exercises in Colab</a>\n'
        f'<a class="course-badge colab" href="{links["colab_solution"]}">Open solutions in Colab</a>\n'
        f'<a class="course-badge download" href="{links["download_exercise"]}" download>Download exercises (.ipynb)</a>\n'
        f'<a class="course-badge download" href="{links["download_solution"]}" download>Download solutions (.ipynb)</a>\n'
        "</div>\n\n"
        f"**Prerequisites:** {prereq_md}{essential}{time}"
    )


def make_page(executed, stem: str, meta: dict, links: dict, titles: dict):
    out = copy.deepcopy(executed)
    for cell in out.cells:
        course = cell.metadata.get("course", {})
        tags = cell.metadata.get("tags", [])
        if course.get("setup") or "injected-parameters" in tags:
            # the Colab install cell, and papermill's FAST/SEED override: build plumbing, not course
            _tag(cell, "remove-cell")
        if cell.cell_type != "code":
            continue
        if "original_source" in course:
            cell.source = course["original_source"]
        if course.get("solution_cell") or "test" in course:
            _tag(cell, "hide-input")
    block = nbformat.v4.new_markdown_cell(links_block(stem, meta, links, titles))
    block.metadata["course"] = {"links": True}
    block.id = "course-links"  # fixed, so that rebuilding gives the same page
    first_md = next((i for i, c in enumerate(out.cells) if c.cell_type == "markdown"), -1)
    if first_md >= 0:  # links and prerequisites right under the title, not after a long introduction
        out.cells[first_md:first_md + 1] = _split_after_title(out.cells[first_md])
    out.cells.insert(first_md + 1, block)
    return out


def _split_after_title(cell) -> list:
    """[cell] or, when it opens with a `# Title` and goes on, [title, the rest] (stable ids)."""
    lines = cell.source.lstrip("\n").split("\n")
    if not lines[0].startswith("# ") or not "\n".join(lines[1:]).strip():
        return [cell]
    title, rest = copy.deepcopy(cell), copy.deepcopy(cell)
    title.source, rest.source = lines[0], "\n".join(lines[1:]).strip("\n")
    rest.id = f"{cell.id}-text"[-64:]
    return [title, rest]
