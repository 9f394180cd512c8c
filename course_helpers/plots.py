"""The course's look: one plotly template and colour scales for every figure.

The site renders figures offline with captions through the tooling (coursepress.plots).
"""
import plotly.graph_objects as go
import plotly.io as pio

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
