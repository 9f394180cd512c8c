"""Figures for sparse autoencoders trained on 2-D toy models (section 6).

Every figure is plain plotly (animations included: frames + play button + slider, no matplotlib),
so it works on the static course site as well as in Jupyter and Colab.
"""


import einops
import plotly.graph_objects as go
import torch
from jaxtyping import Bool, Float
from plotly.subplots import make_subplots
from torch import Tensor

from course_helpers.panels import panel_grid
from course_helpers.plots import COURSE_TEMPLATE  # importing it makes the course look the default

FEATURE_COLOR = "rgba(120, 120, 120, 0.45)"
LATENT_COLOR = "#1f77b4"
RESAMPLED_COLOR = "#d62728"
SILENT_COLOR = "rgba(150, 150, 150, 0.9)"


def _segments(vectors: Float[Tensor, "n 2"]) -> tuple[list, list, list]:
    """Lines from the origin to each vector, as one trace: x, y and marker sizes (tip only)."""
    xs, ys, sizes = [], [], []
    for x, y in vectors.tolist():
        xs += [0.0, round(x, 4), None]
        ys += [0.0, round(y, 4), None]
        sizes += [0, 7, 0]
    return xs, ys, sizes


def _square_axes(fig: go.Figure, n_rows: int, n_cols: int, limit: float) -> None:
    for i in range(n_rows * n_cols):
        suffix = "" if i == 0 else str(i + 1)
        fig.layout[f"xaxis{suffix}"].update(range=[-limit, limit], showticklabels=False, zeroline=False)
        fig.layout[f"yaxis{suffix}"].update(
            range=[-limit, limit], showticklabels=False, zeroline=False,
            scaleanchor=f"x{suffix}", scaleratio=1,
        )


def _feature_traces(W_features: Float[Tensor, "inst 2 feats"], inst: int, showlegend: bool) -> go.Scatter:
    xs, ys, sizes = _segments(W_features[inst].T)
    return go.Scatter(
        x=xs, y=ys, mode="lines+markers", name="toy model features",
        line=dict(color=FEATURE_COLOR, width=7), marker=dict(size=[s * 1.6 for s in sizes], color=FEATURE_COLOR),
        legendgroup="features", showlegend=showlegend, hoverinfo="skip",
    )


def plot_latents_vs_features(
    W_latents: Float[Tensor, "inst d_sae 2"],
    W_features: Float[Tensor, "inst 2 feats"],
    title: str,
    subplot_titles: list[str] | None = None,
    latent_name: str = "SAE decoder rows",
    n_cols: int | None = None,
    height: int | None = None,
) -> go.Figure:
    """Each instance's latent directions (blue) over the toy model's feature directions (grey)."""
    W_latents, W_features = W_latents.detach().cpu(), W_features.detach().cpu()
    n_inst = W_latents.shape[0]
    n_rows, n_cols = panel_grid(n_inst, n_cols=n_cols, max_cols=4)
    fig = make_subplots(n_rows, n_cols, subplot_titles=subplot_titles, horizontal_spacing=0.03, vertical_spacing=0.08)
    for inst in range(n_inst):
        row, col = inst // n_cols + 1, inst % n_cols + 1
        fig.add_trace(_feature_traces(W_features, inst, inst == 0), row=row, col=col)
        xs, ys, sizes = _segments(W_latents[inst])
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines+markers", name=latent_name, legendgroup="latents", showlegend=inst == 0,
                line=dict(color=LATENT_COLOR, width=2), marker=dict(size=sizes, color=LATENT_COLOR),
            ),
            row=row, col=col,
        )
    limit = 1.15 * max(W_latents.norm(dim=-1).max().item(), W_features.norm(dim=1).max().item())
    _square_axes(fig, n_rows, n_cols, limit)
    fig.update_layout(
        title=title, height=height or 260 * n_rows + 80,
        legend=dict(orientation="h", yanchor="bottom", y=1.04, x=1, xanchor="right"),
    )
    return fig


def animate_latents(
    log: dict[str, Tensor],
    W_features: Float[Tensor, "inst 2 feats"],
    title: str,
    max_frames: int = 50,
    key: str = "W_dec",
    n_cols: int | None = None,
) -> go.Figure:
    """Animate the latents' directions through training (log from train_sae(snapshot_weights=True)).

    Each frame shows one logged step. Latents rewritten by resampling since the previous frame are
    red, latents that did not fire since the previous frame are grey, the others blue. Frames are
    subsampled to at most `max_frames`, always keeping the logs where a resampling happened.
    """
    W = log[key]
    if key == "W_enc":  # columns -> rows, and unit length so that the two are comparable
        W = einops.rearrange(W, "log inst d_in d_sae -> log inst d_sae d_in")
        W = W / W.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    W_features = W_features.detach().cpu()
    n_logs, n_inst, d_sae, _ = W.shape
    # Pick frames: evenly spaced, plus every log that holds a resampling event, plus the last one.
    resample_logs = set(log["resampled"].flatten(1).any(-1).nonzero().flatten().tolist())
    budget = max(max_frames - len(resample_logs), 2)
    chosen = {round(i * (n_logs - 1) / (budget - 1)) for i in range(budget)} | resample_logs | {n_logs - 1}
    chosen = sorted(chosen)

    n_rows, n_cols = panel_grid(n_inst, n_cols=n_cols, max_cols=4)
    fig = make_subplots(  # short panel titles: eight side by side must not run into each other
        n_rows, n_cols, subplot_titles=[f"inst {i}" for i in range(n_inst)],
        horizontal_spacing=0.03, vertical_spacing=0.08,
    )
    kinds = [("latents", LATENT_COLOR, 2), ("silent since last frame", SILENT_COLOR, 2),
             ("resampled since last frame", RESAMPLED_COLOR, 3)]

    def frame_traces(frame_pos: int) -> tuple[list[go.Scatter], str]:
        idx = chosen[frame_pos]
        prev = chosen[frame_pos - 1] if frame_pos > 0 else -1
        resampled = log["resampled"][prev + 1 : idx + 1].any(0)  # [inst d_sae]
        active = log["frac_active"][prev + 1 : idx + 1].amax(0) > 0
        category = torch.where(resampled, 2, torch.where(active, 0, 1))
        traces = []
        for inst in range(n_inst):
            for k, (name, color, width) in enumerate(kinds):
                xs, ys, sizes = _segments(W[idx, inst][category[inst] == k])
                traces.append(go.Scatter(
                    x=xs or [None], y=ys or [None], mode="lines+markers", name=name, legendgroup=name,
                    showlegend=inst == 0, line=dict(color=color, width=width), marker=dict(size=sizes, color=color),
                ))
        n_resampled = int(resampled.sum())
        label = f"step {int(log['step'][idx])}" + (f": resampled {n_resampled}/{n_inst * d_sae} latents" if n_resampled else "")
        return traces, label

    for inst in range(n_inst):
        fig.add_trace(_feature_traces(W_features, inst, inst == 0), row=inst // n_cols + 1, col=inst % n_cols + 1)
    first, first_label = frame_traces(0)
    for i, trace in enumerate(first):
        inst = i // len(kinds)
        fig.add_trace(trace, row=inst // n_cols + 1, col=inst % n_cols + 1)
    moving = list(range(n_inst, n_inst + len(first)))  # trace indices the frames update

    frames, steps = [], []
    for pos in range(len(chosen)):
        traces, label = frame_traces(pos)
        name = str(int(log["step"][chosen[pos]]))
        frames.append(go.Frame(data=traces, traces=moving, name=name, layout=dict(title_text=f"{title}<br><sub>{label}</sub>")))
        steps.append(dict(method="animate", label=name, args=[[name], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))]))
    fig.frames = frames

    limit = 1.15 * max(W.norm(dim=-1).max().item(), W_features.norm(dim=1).max().item())
    _square_axes(fig, n_rows, n_cols, limit)
    fig.update_layout(
        title=f"{title}<br><sub>{first_label}</sub>",
        # The legend goes under the play button and slider: above the panels it ran into the title.
        height=260 * n_rows + 260,
        legend=dict(orientation="h", yanchor="top", y=-110 / (260 * n_rows - 20), x=0, xanchor="left"),
        margin=dict(t=110, b=170),
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=-0.06, xanchor="left", yanchor="top", showactive=False,
            buttons=[
                dict(label="▶ play", method="animate",
                     args=[None, dict(frame=dict(duration=250, redraw=True), fromcurrent=True, transition=dict(duration=0))]),
                dict(label="❚❚ pause", method="animate",
                     args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))]),
            ],
        )],
        sliders=[dict(active=0, x=0.25, len=0.75, y=-0.04, yanchor="top", currentvalue=dict(visible=False), steps=steps)],  # the title shows the step
    )
    return fig


def plot_frac_active(
    log: dict[str, Tensor],
    feature_probability: float,
    title: str,
    y_max: float | None = None,
    n_cols: int | None = None,
) -> go.Figure:
    """Fraction of inputs each latent fires on, over training, one panel per instance.

    The dashed line is the probability of each true feature: a latent that has found a feature
    fires exactly that often. Dotted vertical lines mark resampling events.
    """
    frac = log["frac_active"]  # [log inst d_sae]
    steps = log["step"].tolist()
    n_inst, d_sae = frac.shape[1:]
    n_rows, n_cols = panel_grid(n_inst, n_cols=n_cols, max_cols=4)
    fig = make_subplots(
        n_rows, n_cols, subplot_titles=[f"instance {i}" for i in range(n_inst)], shared_xaxes=True,
        shared_yaxes=True, horizontal_spacing=0.03, vertical_spacing=0.1,
    )
    colors = [f"hsl({int(360 * k / d_sae)}, 65%, 45%)" for k in range(d_sae)]
    resample_steps = [s for s, r in zip(steps, log["resampled"].flatten(1).any(-1).tolist()) if r]
    for inst in range(n_inst):
        row, col = inst // n_cols + 1, inst % n_cols + 1
        for k in range(d_sae):
            fig.add_trace(
                go.Scatter(
                    x=steps, y=[round(v, 5) for v in frac[:, inst, k].tolist()], mode="lines",
                    line=dict(width=1.5, color=colors[k % len(colors)]), name=f"latent {k}",
                    legendgroup=f"latent {k}", showlegend=inst == 0,
                ),
                row=row, col=col,
            )
        fig.add_hline(y=feature_probability, line=dict(dash="dash", color="black", width=1), row=row, col=col)
        for s in resample_steps:
            fig.add_vline(x=s, line=dict(dash="dot", color=RESAMPLED_COLOR, width=1), row=row, col=col)
    fig.update_yaxes(range=[0, y_max or 3 * feature_probability])
    fig.update_xaxes(nticks=4)  # step counts are long labels: a few per narrow panel
    fig.update_xaxes(title_text="step", row=n_rows)
    fig.update_layout(title=title, height=230 * n_rows + 110)
    return fig


def plot_training_curves(logs: dict[str, dict[str, Tensor]], title: str) -> go.Figure:
    """L0, dead-latent fraction, reconstruction loss and FVE over training, mean over instances, one line per run."""
    panels = [("l0", "L0 (active latents per input)", False), ("dead_frac", "fraction of latents dead", False),
              ("l2_loss", "reconstruction loss", True), ("fve", "fraction of variance explained", False)]
    # Two by two: four long panel titles side by side run into each other in a text column.
    fig = make_subplots(2, 2, subplot_titles=[p[1] for p in panels], horizontal_spacing=0.1, vertical_spacing=0.18)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]
    for r, (name, log) in enumerate(logs.items()):
        steps = log["step"].tolist()
        for c, (key, _, _) in enumerate(panels):
            values = log[key].mean(-1)
            fig.add_trace(
                go.Scatter(
                    x=steps, y=[round(v, 6) for v in values.tolist()], mode="lines", name=name, legendgroup=name,
                    showlegend=c == 0, line=dict(color=palette[r % len(palette)], width=2),
                ),
                row=c // 2 + 1, col=c % 2 + 1,
            )
    for c, (_, _, log_y) in enumerate(panels):
        fig.update_xaxes(title_text="step", row=c // 2 + 1, col=c % 2 + 1)
        if log_y:
            fig.update_yaxes(type="log", row=c // 2 + 1, col=c % 2 + 1)
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(title=title, height=600, legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, xanchor="left"))
    return fig


def plot_reconstructions(
    h: Float[Tensor, "batch inst 2"],
    h_reconstructed: Float[Tensor, "batch inst 2"],
    title: str,
    n_cols: int | None = None,
) -> go.Figure:
    """A batch of hidden vectors (grey) and the SAE's reconstructions of them (blue), per instance."""
    h, h_reconstructed = h.detach().cpu(), h_reconstructed.detach().cpu()
    n_inst = h.shape[1]
    n_rows, n_cols = panel_grid(n_inst, n_cols=n_cols, max_cols=4)
    fig = make_subplots(n_rows, n_cols, subplot_titles=[f"instance {i}" for i in range(n_inst)],
                        horizontal_spacing=0.03, vertical_spacing=0.08)
    for inst in range(n_inst):
        row, col = inst // n_cols + 1, inst % n_cols + 1
        for data, name, color, size in ((h, "h (input)", "rgba(120,120,120,0.6)", 8), (h_reconstructed, "h' (reconstruction)", LATENT_COLOR, 5)):
            fig.add_trace(go.Scatter(
                x=[round(v, 4) for v in data[:, inst, 0].tolist()], y=[round(v, 4) for v in data[:, inst, 1].tolist()],
                mode="markers", name=name, legendgroup=name, showlegend=inst == 0,
                marker=dict(size=size, color=color),
            ), row=row, col=col)
    limit = 1.15 * max(h.norm(dim=-1).max().item(), h_reconstructed.norm(dim=-1).max().item())
    _square_axes(fig, n_rows, n_cols, limit)
    fig.update_layout(title=title, height=260 * n_rows + 80,
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=1, xanchor="right"))
    return fig
