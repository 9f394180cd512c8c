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


class _OfflineSiteRenderer(MimetypeRenderer):
    """Renders a figure as a `<div>` + script that expects plotly.js to be loaded by the page.

    Used only while the course site is built (COURSE_BUILD=1): the site serves plotly.js once,
    so figures carry only their data, and nothing is fetched from a CDN. The plotly JSON is kept
    beside the HTML so that JupyterLab can still draw the figure when the notebook is downloaded.
    Each figure is a `<figure>` whose caption (its text alternative) says what it shows.
    """

    def to_mimebundle(self, fig_dict):
        layout, style = fig_dict.get("layout") or {}, "margin:0;position:relative"
        site_fig = fig_dict
        if layout.get("width"):
            # A fixed width overflows narrow columns: on the site the figure fills its column
            # (responsive), but not below half its width (at most 600 px); below that it scrolls
            # sideways inside its output rather than squashing its panels.
            site_fig = {**fig_dict, "layout": {k: v for k, v in layout.items() if k != "width"}}
            style += f";min-width:{min(int(layout['width']) // 2, 600)}px"
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
