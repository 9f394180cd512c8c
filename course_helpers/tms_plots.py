"""Figures for the toy models of superposition (section 1, reused by sections 2-6).

Every function takes tensors (torch or numpy, any device) and returns a plotly Figure; call
`.show()` on it. Nothing here modifies its inputs.
"""


import einops
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from course_helpers.panels import panel_grid
from course_helpers.plots import DIVERGING, SEQUENTIAL


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x)


def feature_norms_and_polysemanticity(W, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Norms ||W_i|| and interference sqrt(sum_{j != i} (W_i/||W_i|| . W_j)^2) of every feature.

    W: [inst, d_hidden, feats] (or [d_hidden, feats]). Returns two tensors [inst, feats] (or [feats]).
    An unlearned feature (W_i = 0) gets norm 0 and interference 0.
    """
    W = torch.as_tensor(W).detach().to("cpu", torch.float64)
    squeeze = W.dim() == 2
    if squeeze:
        W = W[None]
    norms = W.norm(dim=1)  # [inst feats]
    W_unit = W / (norms[:, None, :] + eps)
    dots = einops.einsum(W_unit, W, "inst hid f_i, inst hid f_j -> inst f_i f_j")
    dots = dots - torch.diag_embed(torch.diagonal(dots, dim1=-2, dim2=-1))  # drop j == i
    poly = dots.pow(2).sum(-1).sqrt()
    return (norms[0], poly[0]) if squeeze else (norms, poly)


def _instance_colors(colors, n_inst: int, n_feats: int, colorscale: str, cmin, cmax):
    """Returns (per-instance list of per-feature colours, numeric array or None, cmin, cmax)."""
    if colors is None:
        colors = [["#1f77b4"] * n_feats] * n_inst
        return colors, None, None, None
    if isinstance(colors, str):
        return [[colors] * n_feats] * n_inst, None, None, None
    is_str = isinstance(colors, (list, tuple)) and len(colors) > 0 and (
        isinstance(colors[0], str) or (isinstance(colors[0], (list, tuple)) and isinstance(colors[0][0], str))
    )
    if is_str:
        if isinstance(colors[0], str):  # one list of per-feature colours shared by every instance
            assert len(colors) == n_feats, f"got {len(colors)} colours for {n_feats} features"
            return [list(colors)] * n_inst, None, None, None
        assert len(colors) == n_inst, f"got {len(colors)} colour lists for {n_inst} instances"
        return [list(c) for c in colors], None, None, None
    values = np.broadcast_to(_to_numpy(colors).astype(float), (n_inst, n_feats))
    cmin = float(values.min()) if cmin is None else cmin
    cmax = float(values.max()) if cmax is None else cmax
    scaled = (values - cmin) / (cmax - cmin) if cmax > cmin else np.ones_like(values)
    rgb = [sample_colorscale(colorscale, list(np.clip(row, 0, 1))) for row in scaled]
    return rgb, values, cmin, cmax


def plot_features_in_2d(
    W,
    colors=None,
    titles=None,
    title: str | None = None,
    n_rows: int | None = None,
    importance=None,
    points=None,
    color_label: str = "colour",
    colorscale: str = SEQUENTIAL,
    cmin: float | None = None,
    cmax: float | None = None,
    panel_size: int = 230,
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """One panel per instance; each feature i is a line from the origin to W_i with a marker at its tip.

    W: [inst, 2, feats] (or [2, feats] for one panel).
    colors: None; one colour string; a list of `feats` colour strings (shared by every instance) or
        `inst` such lists; or numbers of shape [feats] or [inst, feats], mapped through `colorscale`
        (range cmin..cmax, default the data range) with a colour bar titled `color_label`.
    titles: one subplot title per instance. importance: [feats] or [inst, feats], shown on hover.
    points: optional [inst, 2, batch] hidden vectors, drawn as small grey dots over faded feature lines.
    n_rows: panels are laid out in this many rows (default 1), or more where a row would hold more
        than panels.MAX_COLS panels.
    """
    W = _to_numpy(W)
    if W.ndim == 2:  # a single panel: add the instance dimension (to the points too)
        W = W[None]
        if points is not None and _to_numpy(points).ndim == 2:
            points = _to_numpy(points)[None]
    n_inst, d_hidden, n_feats = W.shape
    assert d_hidden == 2, f"plot_features_in_2d needs a 2-D hidden space, got W of shape {W.shape}"
    colors_rgb, values, cmin, cmax = _instance_colors(colors, n_inst, n_feats, colorscale, cmin, cmax)
    imp = None if importance is None else np.broadcast_to(_to_numpy(importance).astype(float), (n_inst, n_feats))
    pts = None if points is None else _to_numpy(points)
    norms = np.linalg.norm(W, axis=1)  # [inst feats]

    lim = float(norms.max()) if norms.size else 1.0
    if pts is not None and pts.size:
        lim = max(lim, float(np.abs(pts).max()))
    lim = 1.15 * max(lim, 1e-3)

    rows, cols = panel_grid(n_inst, n_rows=n_rows)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=None if titles is None else [str(t) for t in titles],
        horizontal_spacing=0.25 / cols,
        vertical_spacing=0.3 / rows,
    )
    for inst in range(n_inst):
        row, col = inst // cols + 1, inst % cols + 1
        for feat in range(n_feats):
            fig.add_trace(
                go.Scatter(
                    x=[0, W[inst, 0, feat]], y=[0, W[inst, 1, feat]], mode="lines", showlegend=False,
                    hoverinfo="skip", line=dict(color=colors_rgb[inst][feat], width=2),
                    opacity=0.5 if pts is not None else 1.0,  # let the points show through
                ),
                row=row, col=col,
            )
        if pts is not None:
            fig.add_trace(
                go.Scatter(
                    x=pts[inst, 0], y=pts[inst, 1], mode="markers", showlegend=False, hoverinfo="skip",
                    marker=dict(size=4, color="rgba(40,40,40,0.45)"),
                ),
                row=row, col=col,
            )
        hover = ["feature %{customdata[0]}", "norm %{customdata[1]:.3f}"]
        custom = [np.arange(n_feats), norms[inst]]
        if imp is not None:
            hover.append("importance %{customdata[2]:.3g}")
            custom.append(imp[inst])
        if values is not None:
            hover.append(f"{color_label} %{{customdata[{len(custom)}]:.3g}}")
            custom.append(values[inst])
        marker = dict(size=9, color=colors_rgb[inst], line=dict(width=1, color="white"))
        if values is not None and inst == 0:  # one colour bar for the whole figure
            marker.update(
                colorscale=colorscale, cmin=cmin, cmax=cmax, showscale=True,
                colorbar=dict(title=dict(text=color_label, side="right"), thickness=12, len=0.8),
            )
            # plotly needs numbers (not rgb strings) to draw a colour bar: use the values themselves.
            marker["color"] = values[inst]
        fig.add_trace(
            go.Scatter(
                x=W[inst, 0], y=W[inst, 1], mode="markers", showlegend=False, marker=marker,
                customdata=np.stack(custom, axis=-1), hovertemplate="<br>".join(hover) + "<extra></extra>",
            ),
            row=row, col=col,
        )
        axis_suffix = "" if inst == 0 else str(inst + 1)
        fig.update_xaxes(range=[-lim, lim], showticklabels=False, zeroline=True, row=row, col=col)
        fig.update_yaxes(
            range=[-lim, lim], showticklabels=False, zeroline=True, row=row, col=col,
            scaleanchor=f"x{axis_suffix}", scaleratio=1,
        )
    fig.update_layout(
        title=title,
        height=height or panel_size * rows + 90,
        width=width or min(panel_size * cols + 140, 1400),
        showlegend=False,
    )
    return fig


def plot_features_in_Nd(
    W,
    titles=None,
    title: str | None = None,
    neuron_plot: bool = False,
    height: int | None = None,
    width: int | None = None,
    panel_width: int = 260,
) -> go.Figure:
    """Two panels per instance (one column each, at most four columns: more instances start a new
    row of columns, and `height` is that of each such row), for hidden spaces of any size.

    W: [inst, d_hidden, feats] (or [d_hidden, feats]).
    Top: the heatmap of W^T W (feats x feats: dot products between feature directions), or of W itself
    (d_hidden x feats, rows = neurons) when `neuron_plot`, which is what to look at when the hidden
    basis is privileged.
    Bottom: bars of the feature norms ||W_i||, coloured by interference
    sqrt(sum_{j != i} (W_i/||W_i|| . W_j)^2): dark = orthogonal to every other feature (no superposition),
    light = shares its direction with others.
    """
    W_t = torch.as_tensor(_to_numpy(W))
    if W_t.dim() == 2:
        W_t = W_t[None]
    n_inst, d_hidden, n_feats = W_t.shape
    norms, poly = feature_norms_and_polysemanticity(W_t)
    if neuron_plot:
        top = W_t.numpy()
    else:
        top = einops.einsum(W_t, W_t, "inst hid f_i, inst hid f_j -> inst f_i f_j").numpy()
    zmax = float(np.abs(top).max()) or 1.0
    poly_max = max(1.0, float(poly.max()))

    # Instances in blocks of at most four side by side; a block is a row of heatmaps over a row of bars.
    blocks, cols = panel_grid(n_inst, max_cols=4)
    subplot_titles = None
    if titles is not None:
        padded = [str(t) for t in titles] + [""] * (blocks * cols - n_inst)
        subplot_titles = [t for k in range(blocks) for t in padded[k * cols:(k + 1) * cols] + [""] * cols]
    fig = make_subplots(
        rows=2 * blocks,
        cols=cols,
        subplot_titles=subplot_titles,
        row_heights=([0.6, 0.4] if not neuron_plot else [0.45, 0.55]) * blocks,
        horizontal_spacing=min(0.04, 0.4 / cols),
        vertical_spacing=0.1 / blocks,
    )
    for inst in range(n_inst):
        top_row, col = 2 * (inst // cols) + 1, inst % cols + 1
        axis = (top_row - 1) * cols + col  # plotly numbers the axes row by row
        top_hover = (
            "neuron %{y}, feature %{x}<br>W = %{z:.3f}<extra></extra>"
            if neuron_plot
            else "features %{y}, %{x}<br>W_i · W_j = %{z:.3f}<extra></extra>"
        )
        fig.add_trace(go.Heatmap(z=top[inst], coloraxis="coloraxis", hovertemplate=top_hover), row=top_row, col=col)
        fig.update_yaxes(autorange="reversed", showticklabels=col == 1, constrain="domain", row=top_row, col=col)
        fig.update_xaxes(showticklabels=False, constrain="domain", row=top_row, col=col)
        if not neuron_plot:  # square cells for the square matrix W^T W
            fig.update_yaxes(scaleanchor=f"x{axis if axis > 1 else ''}", row=top_row, col=col)
        fig.add_trace(
            go.Bar(
                x=np.arange(n_feats),
                y=norms[inst].numpy(),
                marker=dict(color=poly[inst].numpy(), coloraxis="coloraxis2", line=dict(width=0)),
                customdata=poly[inst].numpy(),
                hovertemplate="feature %{x}<br>norm %{y:.3f}<br>interference %{customdata:.3f}<extra></extra>",
                showlegend=False,
            ),
            row=top_row + 1, col=col,
        )
        fig.update_yaxes(range=[0, max(1.2, 1.05 * float(norms.max()))], showticklabels=col == 1, row=top_row + 1, col=col)
        last_block = inst // cols == blocks - 1  # above another block the title would meet its panel titles
        fig.update_xaxes(title_text="feature" if col == 1 and last_block else None, nticks=4, row=top_row + 1, col=col)
    for k in range(blocks):
        fig.update_yaxes(title_text="neuron" if neuron_plot else "feature", row=2 * k + 1, col=1)
        fig.update_yaxes(title_text="‖W<sub>i</sub>‖", row=2 * k + 2, col=1)
    fig.update_layout(
        title=title,
        height=(height or 560) * blocks,
        width=width or min(panel_width * cols + 160, 1600),
        bargap=0.1,
        showlegend=False,
        coloraxis=dict(
            colorscale=DIVERGING, reversescale=True, cmin=-zmax, cmax=zmax,
            colorbar=dict(title=dict(text="W" if neuron_plot else "W<sup>T</sup>W"), y=0.8, len=0.4, thickness=12),
        ),
        coloraxis2=dict(
            colorscale=SEQUENTIAL, cmin=0, cmax=poly_max,
            colorbar=dict(title=dict(text="interference"), y=0.2, len=0.4, thickness=12),
        ),
    )
    return fig


def plot_matrix(
    M,
    title: str | None = None,
    x_label: str = "",
    y_label: str = "",
    zmid: float | None = 0.0,
    colorscale: str | None = None,
    text_auto: bool = True,
    height: int = 380,
    width: int = 420,
) -> go.Figure:
    """A single heatmap of a 2-D matrix (rows top to bottom), diverging around `zmid` by default."""
    M = _to_numpy(M)
    kwargs = {}
    if zmid is not None:
        zmax = float(np.abs(M - zmid).max()) or 1.0
        kwargs = dict(zmin=zmid - zmax, zmax=zmid + zmax)
    fig = go.Figure(
        go.Heatmap(
            z=M,
            colorscale=colorscale or DIVERGING,
            reversescale=colorscale is None,
            texttemplate="%{z:.2f}" if text_auto else None,
            hovertemplate="row %{y}, column %{x}<br>value %{z:.3f}<extra></extra>",
            **kwargs,
        )
    )
    fig.update_yaxes(autorange="reversed", title_text=y_label, scaleanchor="x", constrain="domain")
    fig.update_xaxes(title_text=x_label, constrain="domain")
    fig.update_layout(title=title, height=height, width=width)
    return fig


def plot_lines(
    y,
    x=None,
    names=None,
    title: str | None = None,
    x_label: str = "",
    y_label: str = "",
    log_x: bool = False,
    log_y: bool = False,
    markers: bool = True,
    height: int = 360,
    width: int = 600,
) -> go.Figure:
    """Line plot of one curve ([n]) or several ([n_lines, n]); `names` labels the lines in the legend."""
    y = _to_numpy(y).astype(float)
    if y.ndim == 1:
        y = y[None]
    x = np.arange(y.shape[1]) if x is None else _to_numpy(x)
    fig = go.Figure()
    for i, row in enumerate(y):
        fig.add_trace(
            go.Scatter(
                x=x, y=row, mode="lines+markers" if markers else "lines",
                name=None if names is None else str(names[i]), showlegend=names is not None,
            )
        )
    fig.update_xaxes(title_text=x_label, type="log" if log_x else None)
    # Log axes label 1, 2 and 5 of each decade (plotly's default labels every digit of a short range,
    # and they print over each other).
    fig.update_xaxes(dtick="D2" if log_x else None)
    fig.update_yaxes(title_text=y_label, type="log" if log_y else None, dtick="D2" if log_y else None)
    fig.update_layout(title=title, height=height, width=width)
    return fig
