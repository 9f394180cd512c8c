import os

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

# One look for every figure of the course: same template, fonts, margins and colour scales.
COURSE_TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
COURSE_TEMPLATE.layout.update(
    font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13),
    margin=dict(l=50, r=30, t=60, b=45),
    colorway=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2"],
    hoverlabel=dict(font_size=12),
)
pio.templates["course"] = COURSE_TEMPLATE
pio.templates.default = "course"
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu"


class _OfflineSiteRenderer(MimetypeRenderer):
    """Renders a figure as a `<div>` + script that expects plotly.js to be loaded by the page.

    Used only while the course site is built (COURSE_BUILD=1): the site serves plotly.js once,
    so figures carry only their data, and nothing is fetched from a CDN. The plotly JSON is kept
    beside the HTML so that JupyterLab can still draw the figure when the notebook is downloaded.
    """

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            config={"responsive": True, "displaylogo": False},
        )
        return {"text/html": html, "application/vnd.plotly.v1+json": fig_dict}


if os.environ.get("COURSE_BUILD") == "1":
    pio.renderers["course_site"] = _OfflineSiteRenderer()
    pio.renderers.default = "course_site"
