"""Feature dashboards for SAE latents on a language model (section 7), in plotly + plain HTML.

A dashboard answers three questions about one latent:

* **How does it fire?** A histogram of its non-zero activations (and how often it fires at all).
* **On what?** Its top-activating contexts, every token shaded by the latent's activation on it
  (hover a token for the exact value).
* **What does it do?** The tokens whose logits it raises and lowers most through the direct path.

Everything is static HTML and plotly JSON, so the dashboards stay interactive on the course site (no
server, no CDN) as well as in Jupyter and Colab.
"""

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from course_helpers.plots import COURSE_TEMPLATE  # importing it makes the course look the default

HIGHLIGHT_RGB = (230, 97, 1)  # orange: activation
BORDER_COLOR = "#1f77b4"  # the token the context is centred on


def _visible(token: str) -> str:
    """Show whitespace in code: newlines as ⏎ (then a real line break would break the table), tabs as →."""
    return html.escape(token).replace("\n", "⏎").replace("\t", "→").replace(" ", "&nbsp;")


def tokens_html(str_tokens: list[str], acts: list[float], max_act: float, centre: int | None = None) -> str:
    """One line of tokens, each shaded by activation / max_act; hover shows the token and its value."""
    spans = []
    for i, (tok, act) in enumerate(zip(str_tokens, acts)):
        alpha = 0.0 if max_act <= 0 else max(0.0, min(1.0, act / max_act))
        style = f"background: rgba({HIGHLIGHT_RGB[0]},{HIGHLIGHT_RGB[1]},{HIGHLIGHT_RGB[2]},{alpha:.2f});"
        if i == centre:
            style += f" outline: 2px solid {BORDER_COLOR};"
        title = html.escape(f"{tok!r}: {act:.3f}", quote=True)
        spans.append(f'<span style="{style} padding: 1px 0; border-radius: 2px;" title="{title}">{_visible(tok)}</span>')
    return '<span style="font-family: monospace; font-size: 12px; white-space: nowrap;">' + "".join(spans) + "</span>"


def contexts_html(contexts: list[dict], max_act: float, caption: str = "") -> str:
    """A table of contexts. Each context: {"str_tokens", "acts", "centre", "value", "label"}."""
    rows = []
    for c in contexts:
        line = tokens_html(c["str_tokens"], c["acts"], max_act, c["centre"])
        rows.append(
            f"<tr><td style='text-align:right; padding-right:8px;'>{c['value']:.3f}</td>"
            f"<td style='padding-right:8px; color:#444;'>{html.escape(c.get('label', ''))}</td>"
            f"<td style='overflow-x:auto; max-width:720px;'>{line}</td></tr>"
        )
    head = "<tr><th>activation</th><th>file</th><th>context (hover a token for its activation)</th></tr>"
    cap = f"<caption style='caption-side: top; text-align:left; color:#1a1a1a;'>{html.escape(caption)}</caption>" if caption else ""
    # A light card in every theme (black text stays legible on the orange shading, which a dark
    # theme's light text is not), scrolling sideways on its own like code: contexts are code.
    label = html.escape(caption or "top contexts", quote=True)
    return (f"<div class='course-contexts' tabindex='0' role='region' aria-label='{label}' style='overflow-x:auto; max-width:100%; background:#fff; color:#000; "
            f"border-radius:0.25rem; padding:0.25rem;'><table style='border-collapse: collapse; font-size: 12px;'>"
            f"{cap}{head}{''.join(rows)}</table></div>")


def dashboard_figure(
    nonzero_acts: list[float],
    frac_active: float,
    top_logits: list[tuple[str, float]],
    bottom_logits: list[tuple[str, float]],
    title: str,
) -> go.Figure:
    """Activation histogram (left) and the most raised / lowered logits (right) of one latent."""
    fig = make_subplots(
        1, 2, column_widths=[0.55, 0.45], horizontal_spacing=0.14,
        subplot_titles=["Activations", "Effect on logits"],
    )
    fig.add_trace(go.Histogram(x=nonzero_acts, nbinsx=40, marker_color="rgb(230,97,1)", name="activations",
                               showlegend=False), row=1, col=1)
    logits = bottom_logits[::-1] + top_logits[::-1]  # plotted bottom-up: the largest raise ends on top
    labels = [repr(t) for t, _ in logits]
    values = [v for _, v in logits]
    # Numeric positions with text ticks: two tokens that print alike still get a bar each.
    fig.add_trace(go.Bar(x=values, y=list(range(len(values))), orientation="h", showlegend=False,
                         marker_color=["#d62728" if v < 0 else "#1f77b4" for v in values],
                         customdata=labels, hovertemplate="%{customdata}: %{x:.3f}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text=f"activation (fires on {frac_active:.3%} of tokens)", row=1, col=1)
    # dtick D2: labels at 1, 2, 5 of each decade (plotly's default labels every digit of a short
    # log range, and "8", "9" print over each other)
    fig.update_yaxes(title_text="count", type="log", dtick="D2", row=1, col=1)
    fig.update_xaxes(title_text="logit change per unit of activation", row=1, col=2)
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels,
                     tickfont=dict(family="monospace", size=11), row=1, col=2)
    fig.update_layout(title=title, height=max(360, 18 * len(labels) + 120), bargap=0.05)
    return fig


def show_dashboard(fig: go.Figure, contexts: list[dict], max_act: float, caption: str) -> None:
    """Show the figure, then the contexts table (as HTML where it can be shown, else as text)."""
    fig.show()
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = lambda: None  # noqa: E731
    if get_ipython() is not None:
        display(HTML(contexts_html(contexts, max_act, caption)))
    else:  # plain Python: the contexts as text
        print(caption)
        for c in contexts:
            print(f"{c['value']:8.3f}  {c.get('label', ''):40.40s}  {''.join(c['str_tokens'])!r}")
