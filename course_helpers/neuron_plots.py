"""Neuron-basis figures and measures for models whose hidden layer has a ReLU (section 3).

When the hidden layer is privileged, the rows of W (one per neuron) mean something, so we look at
which features each neuron reads. Every function takes tensors [inst, neurons, feats] (torch or
numpy, any device) and works on a copy: nothing here modifies a model's weights.
"""

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from course_helpers.plots import DIVERGING, SEQUENTIAL


def _as_tensor(W) -> torch.Tensor:
    W = torch.as_tensor(W.detach() if isinstance(W, torch.Tensor) else np.asarray(W))
    W = W.to("cpu", torch.float64).clone()  # a copy: sorting below can never touch the caller's weights
    return W[None] if W.dim() == 2 else W


def _ndim(W) -> int:
    return W.dim() if isinstance(W, torch.Tensor) else np.ndim(W)


def monosemanticity(W_neuron) -> torch.Tensor:
    """Share of each neuron's squared weight held by its largest feature: max_f W_kf^2 / sum_f W_kf^2.

    W_neuron: [inst, neurons, feats] (or [neurons, feats]), row k = the weights of neuron k over the
    features. Returns [inst, neurons] (or [neurons]) in [1/feats, 1]; 1 = the neuron reads a single
    feature. A dead neuron (all weights 0) gets 0.
    """
    sq = _as_tensor(W_neuron).pow(2)
    total = sq.sum(-1)
    share = torch.where(total > 0, sq.max(-1).values / total.clamp_min(1e-30), torch.zeros_like(total))
    return share[0] if _ndim(W_neuron) == 2 else share


def monosemantic_fraction(W_neuron, threshold: float = 0.9) -> torch.Tensor:
    """Fraction of neurons per instance whose largest feature holds more than `threshold` of the
    neuron's squared weight. W_neuron: [inst, neurons, feats] -> [inst]."""
    return (monosemanticity(_as_tensor(W_neuron)) > threshold).double().mean(-1)


def sort_neurons(W_neuron, threshold: float = 0.9) -> torch.Tensor:
    """An order of the neurons of each instance for plotting: [inst, neurons] indices.

    Monosemantic neurons (share > threshold) come first, ordered by the feature they read (so that a
    heatmap of features x neurons shows them as a diagonal); polysemantic ones follow, the most
    monosemantic first.
    """
    W = _as_tensor(W_neuron)
    share = monosemanticity(W)
    top_feature = W.abs().argmax(-1).double()
    n_feats = W.shape[-1]
    # One key per neuron: monosemantic -> top feature index (0..n-1); polysemantic -> n + (1 - share).
    key = torch.where(share > threshold, top_feature, n_feats + (1 - share))
    return key.argsort(dim=-1, stable=True)


def _feature_colors(n_feats: int) -> list[str]:
    """Discrete colours when few features (each one recognisable), a sequential scale otherwise."""
    if n_feats <= 10:
        return list(qualitative.Plotly[:n_feats])
    return sample_colorscale(SEQUENTIAL, list(np.linspace(0, 1, n_feats)))


def _stacked_segments(W_sorted: np.ndarray):
    """Segments of a stacked bar per neuron: positive weights stacked up from 0, negative ones down.

    W_sorted: [neurons, feats]. Returns x (neuron position), base, height, feature index, each 1-D.
    """
    xs, bases, heights, feats = [], [], [], []
    for pos, row in enumerate(W_sorted):
        up, down = 0.0, 0.0
        for f, w in enumerate(row):
            if w >= 0:
                xs.append(pos), bases.append(up), heights.append(w), feats.append(f)
                up += w
            else:
                xs.append(pos), bases.append(down), heights.append(w), feats.append(f)
                down += w
    return np.array(xs), np.array(bases), np.array(heights), np.array(feats)


def plot_neuron_basis(
    W_in,
    W_out=None,
    titles=None,
    title: str | None = None,
    feature_names=None,
    threshold: float = 0.9,
    panel_width: int = 240,
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Which features each neuron reads (and writes), one column per instance.

    W_in: [inst, neurons, feats], row k = the input weights of neuron k (W of NeuronModel, W1 of the
        |x| model).
    W_out: optional [inst, feats, neurons] output weights (W2 of the |x| model).
    Row 1: heatmap of W_in as features x neurons. Row 2: stacked bars of each neuron's input weights,
    one coloured segment per feature (positive up, negative down). Row 3 (if W_out): the same for the
    neuron's output weights W_out[:, :, k]. Neurons are sorted by `sort_neurons` (monosemantic first,
    shaded grey); the same order is used in every row of a column.
    feature_names: one label per feature for the legend / hover (default "feature i").
    """
    W_in_t = _as_tensor(W_in)
    n_inst, n_neurons, n_feats = W_in_t.shape
    W_out_t = None if W_out is None else _as_tensor(W_out).transpose(-1, -2)  # -> [inst, neurons, feats]
    order = sort_neurons(W_in_t, threshold)  # [inst, neurons]
    idx = order[..., None].expand(-1, -1, n_feats)
    W_in_s = torch.gather(W_in_t, 1, idx).numpy()  # gather returns a new tensor
    W_out_s = None if W_out_t is None else torch.gather(W_out_t, 1, idx).numpy()
    n_mono = (monosemanticity(W_in_t) > threshold).sum(-1).tolist()
    names = list(feature_names) if feature_names is not None else [f"feature {f}" for f in range(n_feats)]
    colors = np.array(_feature_colors(n_feats))
    discrete = n_feats <= 10

    n_rows = 2 if W_out_s is None else 3
    fig = make_subplots(
        rows=n_rows,
        cols=n_inst,
        subplot_titles=None if titles is None else [str(t) for t in titles] + [""] * (n_inst * (n_rows - 1)),
        row_heights=[0.4, 0.6] if n_rows == 2 else [0.34, 0.33, 0.33],
        horizontal_spacing=min(0.04, 0.4 / n_inst),
        vertical_spacing=0.07,
    )
    zmax = float(np.abs(W_in_s).max()) or 1.0
    for inst in range(n_inst):
        col = inst + 1
        neuron_ids = order[inst].numpy()
        fig.add_trace(
            go.Heatmap(
                z=W_in_s[inst].T,  # features x neurons
                coloraxis="coloraxis",
                customdata=np.broadcast_to(neuron_ids, (n_feats, n_neurons)),
                hovertemplate="feature %{y}, neuron %{customdata}<br>weight %{z:.3f}<extra></extra>",
            ),
            row=1, col=col,
        )
        fig.update_yaxes(autorange="reversed", showticklabels=inst == 0, row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        bar_rows = [(2, W_in_s[inst], "in")] + ([] if W_out_s is None else [(3, W_out_s[inst], "out")])
        for row, weights, kind in bar_rows:
            xs, bases, heights, feats = _stacked_segments(weights)
            custom = np.stack([np.array(names, dtype=object)[feats], neuron_ids[xs]], axis=-1)
            fig.add_trace(
                go.Bar(
                    x=xs, y=heights, base=bases, width=0.8, showlegend=False,
                    marker=dict(color=colors[feats], line=dict(width=0)), customdata=custom,
                    hovertemplate=f"neuron %{{customdata[1]}}<br>%{{customdata[0]}}<br>{kind}put weight %{{y:.3f}}<extra></extra>",
                ),
                row=row, col=col,
            )
            if n_mono[inst]:
                fig.add_vrect(x0=-0.5, x1=n_mono[inst] - 0.5, fillcolor="grey", opacity=0.15, line_width=0,
                              layer="below", row=row, col=col)
            fig.update_xaxes(showticklabels=False, range=[-0.6, n_neurons - 0.4], row=row, col=col)
            fig.update_yaxes(showticklabels=inst == 0, zeroline=True, zerolinecolor="#888", row=row, col=col)
        # All bar rows of all columns share one y-range so that heights compare across instances.
    for row, weights in [(2, W_in_s)] + ([] if W_out_s is None else [(3, W_out_s)]):
        top = max(float(np.clip(weights, 0, None).sum(-1).max()), 1e-3)
        bottom = min(float(np.clip(weights, None, 0).sum(-1).min()), -1e-3)
        fig.update_yaxes(range=[1.05 * bottom, 1.05 * top], row=row)
    fig.update_yaxes(title_text="feature", row=1, col=1)
    fig.update_yaxes(title_text="input weights", row=2, col=1)
    if n_rows == 3:
        fig.update_yaxes(title_text="output weights", row=3, col=1)
    fig.update_xaxes(title_text="neurons (sorted)", row=n_rows, col=1)
    if discrete:  # legend entries: one invisible marker per feature
        for f in range(n_feats):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=names[f],
                                     marker=dict(color=colors[f], size=10, symbol="square")), row=n_rows, col=1)
    else:  # a colour bar saying which colour is which feature
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
            marker=dict(color=[0, n_feats - 1], colorscale=SEQUENTIAL, cmin=0, cmax=n_feats - 1, showscale=True,
                        colorbar=dict(title=dict(text="feature", side="right"), y=0.3, len=0.55, thickness=12)),
        ), row=n_rows, col=1)
    fig.update_layout(
        title=title,
        barmode="overlay",
        height=height or (520 if n_rows == 2 else 700),
        width=width or min(panel_width * n_inst + 220, 1700),
        showlegend=discrete,
        legend=dict(y=0.3, yanchor="middle"),
        coloraxis=dict(
            colorscale=DIVERGING, reversescale=True, cmin=-zmax, cmax=zmax,
            colorbar=dict(title=dict(text="weight", side="right"), y=0.85, len=0.3, thickness=12),
        ),
    )
    return fig
