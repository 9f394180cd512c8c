"""Offline plotly figures with text captions, for every course built by the tooling.

While the site is built (COURSE_BUILD=1) figures render as a `<figure>` holding only their data
and a caption: the site serves plotly.js once, so nothing is fetched from a CDN. Anywhere else
(Colab, Jupyter) plotly's own renderers are left alone.
"""
import os
import re
from html import escape

import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer


def _plain(text) -> str:
    text = text.get("text") if isinstance(text, dict) else text  # plotly titles: str or {"text": ...}
    text = re.sub(r"<[^>]+>", " ", str(text or ""))  # drop plotly's <br>, <b>, <sub>...
    return re.sub(r"\s+", " ", text).strip()


def figure_description(fig_dict: dict) -> str:
    """A figure's text alternative, built from the figure itself: title, kind of chart, axes."""
    layout = fig_dict.get("layout") or {}
    title = _plain(layout.get("title")) or "; ".join(  # subplot titles are annotations
        t for t in (_plain(a.get("text")) for a in layout.get("annotations") or []) if t)
    kinds = []
    for trace in fig_dict.get("data") or []:
        kind = trace.get("type", "scatter")
        if kind in ("scatter", "scattergl"):
            kind = "line" if "lines" in str(trace.get("mode", "markers")) else "scatter"
        kinds += [kind] if kind not in kinds else []
    axes = [f"{k[0]}: {_plain(layout[k].get('title'))}" for k in sorted(layout)
            if re.fullmatch(r"[xy]axis\d*", k) and _plain((layout[k] or {}).get("title"))]
    text = f"Figure: {title or 'untitled'}."
    if kinds:
        text += f" Interactive {', '.join(kinds)} plot" + (f" ({'; '.join(dict.fromkeys(axes))})." if axes else ".")
    if fig_dict.get("frames"):
        text += f" Animated: {len(fig_dict['frames'])} frames, with a play button and a slider."
    return text


# ------------------------------------------------------------------ fitting a figure to the site
# On the site a figure fills the text column (about 660 px on a desktop, 340 px on a phone) rather
# than keeping the width it was drawn for. Before it is rendered there, its titles are fitted to
# the narrowest width it can get, estimated from their length: a subplot title wider than its
# panel gets a smaller font, then a second line; a long figure title wraps; the top margin grows
# to hold the extra lines. (The site's browser tests measure the result.)
COLUMN_PX, PHONE_PX, PANEL_MIN_PX = 660, 340, 130
CHAR_EM = 0.52  # average glyph width of the course font, in ems
TITLE_PX, SUBTITLE_PX, LINE = 18, 16, 1.3


def _text_px(text: str, size: float) -> float:
    return len(_plain(text)) * CHAR_EM * size


def _wrap(text: str, max_px: float, size: float) -> list[str]:
    """Greedy word wrap of one line of plotly text (its tags kept) to lines of at most max_px."""
    if re.search(r"<\w+\s", text):  # a tag with attributes: a space there is not between words
        return [text]
    lines, line = [], ""
    for word in text.split(" "):
        if line and _text_px(f"{line} {word}", size) > max_px:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def _panel_columns(layout: dict) -> list[tuple[float, float]]:
    """The distinct x domains of the figure's panels, left to right."""
    domains = {tuple(round(v, 4) for v in axis["domain"]) for key, axis in layout.items()
               if re.fullmatch(r"xaxis\d*", key) and isinstance(axis, dict) and axis.get("domain")}
    return sorted(domains) or [(0.0, 1.0)]


def _is_subplot_title(ann: dict) -> bool:
    return (ann.get("xref") == "paper" and ann.get("yref") == "paper" and ann.get("showarrow") is False
            and ann.get("xanchor") == "center" and ann.get("yanchor") == "bottom")


def site_min_width(layout: dict) -> int:
    """The narrowest the figure may get on the site before it scrolls sideways in its output: half
    an author-given width (at most 600 px), and enough for PANEL_MIN_PX per panel side by side."""
    floor = min(int(layout["width"]) // 2, 600) if layout.get("width") else 0
    n_cols = len(_panel_columns(layout))
    if n_cols > 1:
        floor = max(floor, min(n_cols * PANEL_MIN_PX + 90, COLUMN_PX))
    return floor


def fit_titles(fig_dict: dict, width: int) -> dict:
    """A copy of the figure whose title and subplot titles fit `width` px (see above)."""
    layout = dict(fig_dict.get("layout") or {})
    margin = dict(layout.get("margin") or {})
    left, right = margin.get("l", 50), margin.get("r", 30)
    legend = layout.get("legend") or {}
    named = [t for t in fig_dict.get("data") or [] if t.get("name") and t.get("showlegend", True)]
    if layout.get("showlegend", len(named) > 1) and legend.get("orientation") != "h":
        right += 110  # a legend at the right takes that much of the width
    plot_px = max(width - left - right, 100)
    columns = _panel_columns(layout)

    top_lines = 1
    annotations = []
    for ann in layout.get("annotations") or []:
        if _is_subplot_title(ann) and ann.get("text"):
            ann = dict(ann)
            domain = next((d for d in columns if d[0] - 1e-3 <= ann.get("x", 0.5) <= d[1] + 1e-3), columns[0])
            room = (domain[1] - domain[0]) * plot_px - 6
            size = (ann.get("font") or {}).get("size", SUBTITLE_PX)
            if _text_px(ann["text"], size) > room:
                size = max(11, min(size, int(room / (len(_plain(ann["text"])) * CHAR_EM))))
                ann["font"] = {**(ann.get("font") or {}), "size": size}
                lines = _wrap(ann["text"], room, size) if "<br>" not in ann["text"] else [ann["text"]]
                ann["text"] = "<br>".join(lines)
                if ann.get("y", 0) >= 0.97:
                    top_lines = max(top_lines, len(lines))
        annotations.append(ann)
    if annotations:
        layout["annotations"] = annotations

    title = layout.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    title_lines = 0
    if text:
        first, _, rest = str(text).partition("<br>")
        lines = _wrap(first, width - 30, TITLE_PX)
        title_lines = len(lines) + (rest.count("<br>") + 1 if rest else 0)
        if len(lines) > 1:
            wrapped = "<br>".join(lines) + (f"<br>{rest}" if rest else "")
            layout["title"] = {**title, "text": wrapped} if isinstance(title, dict) else {"text": wrapped}
    # The title hangs from the top of the figure (12 px down); the text above the plot area (subplot
    # titles of the top row, labels of lines drawn across it) sits at the margin's bottom.
    block = lambda lines, size: size * (1 + (lines - 1) * LINE) if lines else 0  # noqa: E731
    above = [block(a.get("text", "").count("<br>") + 1, (a.get("font") or {}).get("size", 12 if not _is_subplot_title(a) else SUBTITLE_PX))
             for a in annotations if a.get("yref") == "paper" and a.get("y", 0) >= 0.97 and a.get("yanchor") == "bottom"]
    need = 12 + block(title_lines, TITLE_PX) + 8 + max(above, default=0) + 4
    top = margin.get("t", 60)
    if need > top:
        margin["t"] = int(need)
        layout["margin"] = margin
        layout["height"] = (layout.get("height") or 450) + int(need - top)
    if text and not (isinstance(layout.get("title"), dict) and "y" in layout["title"]):
        title = layout.get("title")
        height = layout.get("height") or 450  # (a figure without a height is drawn 450 px high)
        # plotly lifts a title of several lines by about 15 px above its anchor (measured in Chromium)
        drop = 12 + (15 if title_lines > 1 else 0)
        layout["title"] = {**(title if isinstance(title, dict) else {"text": text}),
                           "y": round(1 - drop / height, 4), "yref": "container", "yanchor": "top"}
    out = {**fig_dict, "layout": layout}
    if fig_dict.get("frames") and layout.get("title") is not title:  # frames restate the title
        first_line = "<br>".join(_wrap(str(text).partition("<br>")[0], width - 30, TITLE_PX))
        out["frames"] = [_retitle(frame, str(text).partition("<br>")[0], first_line) for frame in fig_dict["frames"]]
    return out


def _retitle(frame: dict, old: str, new: str) -> dict:
    title = ((frame.get("layout") or {}).get("title") or {})
    text = title.get("text") if isinstance(title, dict) else title
    if not text or not str(text).startswith(old):
        return frame
    return {**frame, "layout": {**frame["layout"], "title": {**(title if isinstance(title, dict) else {}),
                                                             "text": new + str(text)[len(old):]}}}


class _OfflineSiteRenderer(MimetypeRenderer):
    """Renders a figure as a `<div>` + script that expects plotly.js to be loaded by the page.

    Used only while the course site is built (COURSE_BUILD=1): the site serves plotly.js once,
    so figures carry only their data, and nothing is fetched from a CDN. The plotly JSON is kept
    beside the HTML so that JupyterLab can still draw the figure when the notebook is downloaded.
    Each figure is a `<figure>` whose caption (its text alternative) says what it shows.
    """

    def to_mimebundle(self, fig_dict):
        layout, style = fig_dict.get("layout") or {}, "margin:0;position:relative"
        # A fixed width overflows narrow columns: on the site the figure fills its column
        # (responsive), but not below its minimum width; below that it scrolls sideways inside its
        # output rather than squashing its panels. Its titles are fitted to that narrowest width.
        min_width = site_min_width(layout)
        if min_width:
            style += f";min-width:{min_width}px"
        site_fig = fit_titles(fig_dict, min_width or PHONE_PX)
        site_fig["layout"] = {k: v for k, v in site_fig["layout"].items() if k != "width"}
        html = pio.to_html(
            site_fig,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            config={"responsive": True, "displaylogo": False},
        )
        # The caption is the figure's text alternative for screen readers; it is hidden on screen
        # (the title is drawn in the figure) by an inline style, which holds with or without the
        # site's stylesheet.
        hidden = "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap"
        html = (f'<figure class="course-figure" style="{style}"><figcaption style="{hidden}">'
                f'{escape(figure_description(fig_dict))}</figcaption>{html}</figure>')
        return {"text/html": html, "application/vnd.plotly.v1+json": fig_dict}


if os.environ.get("COURSE_BUILD") == "1":
    pio.renderers["course_site"] = _OfflineSiteRenderer()
    pio.renderers.default = "course_site"
