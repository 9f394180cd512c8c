"""Fast tests of section 1's shared helpers: course_helpers.toy_model and course_helpers.tms_plots."""

import math

import einops
import plotly.graph_objects as go
import pytest
import torch

from course_helpers.tms_plots import (
    feature_norms_and_polysemanticity,
    plot_features_in_2d,
    plot_features_in_Nd,
    plot_lines,
    plot_matrix,
)
from course_helpers.toy_model import Config, Model, constant_lr, cosine_decay_lr, linear_lr


# ---------------------------------------------------------------- toy model: construction


def test_config_defaults():
    cfg = Config(n_inst=3)
    assert (cfg.n_features, cfg.n_hidden, cfg.n_correlated_pairs, cfg.n_anticorrelated_pairs) == (5, 2, 0, 0)


def test_model_shapes_and_init():
    torch.manual_seed(0)
    model = Model(Config(n_inst=64, n_features=30, n_hidden=10))
    assert model.W.shape == (64, 10, 30)
    assert model.b_final.shape == (64, 30)
    assert torch.equal(model.b_final, torch.zeros(64, 30))
    # Xavier-normal per instance: std sqrt(2 / (n + m)), independent of the number of instances.
    assert model.W.std().item() == pytest.approx(math.sqrt(2 / 40), rel=0.05)
    assert {name for name, _ in model.named_parameters()} == {"W", "b_final"}
    assert {name for name, _ in model.named_buffers()} == {"feature_probability", "importance"}


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, torch.ones(3, 4)),
        (1, torch.ones(3, 4)),  # an int must work (the original crashed on it)
        (0.25, torch.full((3, 4), 0.25)),
        (torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([0.1, 0.2, 0.3, 0.4]).expand(3, 4)),
        (torch.tensor([[0.1], [0.2], [0.3]]), torch.tensor([[0.1], [0.2], [0.3]]).expand(3, 4)),
        (torch.tensor([[0], [1], [1]]), torch.tensor([[0.0], [1.0], [1.0]]).expand(3, 4)),
    ],
)
def test_buffers_broadcast(value, expected):
    model = Model(Config(n_inst=3, n_features=4), feature_probability=value, importance=value)
    for buffer in (model.feature_probability, model.importance):
        assert buffer.shape == (3, 4) and buffer.dtype == torch.float32
        assert torch.allclose(buffer, expected)
    # The buffers are copies: writing to one instance must not change the others.
    model.feature_probability[0, 0] = 0.5
    assert model.feature_probability[1, 0] == expected[1, 0]


@pytest.mark.parametrize("p", [1.5, -0.1, torch.tensor([0.5, 2.0, 0.1, 0.1])])
def test_probability_outside_unit_interval_rejected(p):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Model(Config(n_inst=2, n_features=4), feature_probability=p)


def test_bad_shapes_and_importance_rejected():
    with pytest.raises(ValueError, match="n_inst, 1"):
        Model(Config(n_inst=3, n_features=4), feature_probability=torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        Model(Config(n_inst=2, n_features=4), importance=-1.0)


# ---------------------------------------------------------------- toy model: forward, data, loss


def test_forward_matches_reference_and_relu_placement():
    torch.manual_seed(1)
    model = Model(Config(n_inst=3, n_features=6, n_hidden=2))
    with torch.no_grad():
        model.b_final.copy_(torch.randn(3, 6))
    x = torch.rand(4, 7, 3, 6)
    W, b = model.W.detach(), model.b_final.detach()
    gram = einops.einsum(W, W, "inst hid f_i, inst hid f_j -> inst f_i f_j")
    expected = torch.relu(einops.einsum(gram, x, "inst f_out f_in, ... inst f_in -> ... inst f_out") + b)
    out = model(x)
    assert out.shape == x.shape
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(model(x[0, 0]), expected[0, 0], atol=1e-5)  # no batch dimension at all


def test_generate_batch_statistics():
    torch.manual_seed(2)
    p = torch.tensor([[0.0, 0.2], [0.5, 1.0]])
    model = Model(Config(n_inst=2, n_features=2), feature_probability=p)
    batch = model.generate_batch(40_000)
    assert batch.shape == (40_000, 2, 2)
    assert ((batch >= 0) & (batch <= 1)).all()
    rate = (batch > 0).float().mean(0)
    assert torch.allclose(rate, p, atol=0.01)
    values = batch[batch > 0]
    assert values.mean().item() == pytest.approx(0.5, abs=0.01)
    assert (values < 0.25).float().mean().item() == pytest.approx(0.25, abs=0.01)
    # Independence across instances and features: joint presence of (inst 0, f 1) and (inst 1, f 0).
    both = ((batch[:, 0, 1] > 0) & (batch[:, 1, 0] > 0)).float().mean().item()
    assert both == pytest.approx(0.2 * 0.5, abs=0.01)


def test_calculate_loss_convention():
    torch.manual_seed(3)
    importance = torch.rand(4, 5)
    model = Model(Config(n_inst=4, n_features=5), importance=importance)
    out, batch = torch.rand(8, 4, 5), torch.rand(8, 4, 5)
    loss = model.calculate_loss(out, batch)
    assert loss.shape == ()
    # mean over batch and features, summed over instances
    expected = sum((importance[k] * (batch[:, k] - out[:, k]) ** 2).mean() for k in range(4))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------- toy model: training


def test_lr_schedules():
    assert constant_lr(3, 10) == 1.0
    assert linear_lr(0, 10) == 1.0 and linear_lr(5, 10) == pytest.approx(0.5)
    assert cosine_decay_lr(0, 10) == pytest.approx(1.0)
    assert cosine_decay_lr(9, 10) == pytest.approx(0.0, abs=1e-12)
    assert cosine_decay_lr(0, 1) == pytest.approx(1.0)  # no division by zero


def test_optimize_logs_and_reduces_loss():
    torch.manual_seed(4)
    model = Model(Config(n_inst=3, n_features=5, n_hidden=2), feature_probability=0.1)
    history = model.optimize(batch_size=128, steps=201, log_freq=100, lr=1e-2, lr_scale=linear_lr)
    assert history["step"] == [0, 100, 200]
    assert len(history["loss"]) == 3 and all(isinstance(v, float) for v in history["loss"])
    assert history["loss"][-1] < 0.7 * history["loss"][0]


def test_model_trains_to_two_orthogonal_features_when_dense():
    """The qualitative result section 1 relies on: dense features -> the 2 most important, orthogonal."""
    torch.manual_seed(0)
    model = Model(Config(n_inst=1), feature_probability=1.0, importance=0.9 ** torch.arange(5))
    model.optimize(batch_size=512, steps=1500, log_freq=500, lr=1e-2, lr_scale=cosine_decay_lr)
    norms = model.W.detach()[0].norm(dim=0)
    assert (norms > 0.5).sum().item() == 2
    assert (norms[:2] > 0.9).all()
    W01 = model.W.detach()[0, :, :2]
    cosine = (W01[:, 0] @ W01[:, 1]) / (norms[0] * norms[1])
    assert abs(cosine.item()) < 0.1


# ---------------------------------------------------------------- plots


def test_norms_and_polysemanticity():
    W = torch.tensor([[[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, 0.0]]])  # [1, 2, 4]
    norms, poly = feature_norms_and_polysemanticity(W)
    assert torch.allclose(norms, torch.tensor([[1.0, 1.0, 0.0, 2.0]], dtype=torch.float64))
    # feature 0 and feature 3 are parallel: interference of 0 is |W_0_hat . W_3| = 2, of 3 is |W_3_hat . W_0| = 1
    assert torch.allclose(poly, torch.tensor([[2.0, 0.0, 0.0, 1.0]], dtype=torch.float64))
    assert torch.isfinite(poly).all()
    norms_2d, poly_2d = feature_norms_and_polysemanticity(W[0])  # [d_hidden, feats] works too
    assert norms_2d.shape == (4,) and torch.allclose(poly_2d, poly[0])


def test_plot_features_in_2d_traces_and_colorbar():
    torch.manual_seed(5)
    W = torch.randn(6, 2, 5)
    W_before = W.clone()
    fig = plot_features_in_2d(
        W, colors=0.9 ** torch.arange(5), importance=0.9 ** torch.arange(5), titles=[f"t{k}" for k in range(6)], n_rows=2
    )
    assert isinstance(fig, go.Figure)
    assert torch.equal(W, W_before)
    # per instance: one line per feature + one marker trace
    assert len(fig.data) == 6 * (5 + 1)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 6
    assert markers[0].marker.showscale is True and sum(bool(t.marker.showscale) for t in markers) == 1
    assert list(markers[2].x) == pytest.approx(W[2, 0].tolist())
    assert "importance" in markers[0].hovertemplate and "norm" in markers[0].hovertemplate
    assert [a.text for a in fig.layout.annotations] == [f"t{k}" for k in range(6)]
    assert fig.layout.yaxis6.scaleanchor == "x6"  # equal aspect ratio in every panel (2 rows x 3 cols)


def test_plot_features_in_2d_variants():
    torch.manual_seed(6)
    W = torch.randn(3, 2, 4)
    fig = plot_features_in_2d(W, colors=[["red", "blue", "green", "black"]] * 3, points=torch.randn(3, 2, 20))
    assert len(fig.data) == 3 * (1 + 4 + 1)
    assert fig.data[0].line.color == "red" and fig.data[4].mode == "markers"  # lines, then points, then tips
    fig = plot_features_in_2d(W, colors=torch.rand(3, 4))  # per-instance numbers
    assert len(fig.data) == 3 * 5
    fig = plot_features_in_2d(W[0])  # a single [2, feats] matrix
    assert len(fig.data) == 5
    with pytest.raises(AssertionError):
        plot_features_in_2d(torch.randn(2, 3, 4))


@pytest.mark.parametrize("neuron_plot", [False, True])
def test_plot_features_in_nd(neuron_plot):
    torch.manual_seed(7)
    W = torch.randn(4, 6, 10)
    fig = plot_features_in_Nd(W, titles=["a", "b", "c", "d"], neuron_plot=neuron_plot, title="t")
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(heatmaps) == 4 and len(bars) == 4
    expected_top = W[1] if neuron_plot else W[1].T @ W[1]
    assert torch.allclose(torch.tensor(heatmaps[1].z), expected_top.double(), atol=1e-5)
    assert list(bars[1].y) == pytest.approx(W[1].norm(dim=0).tolist(), rel=1e-5)
    _, poly = feature_norms_and_polysemanticity(W)
    assert list(bars[1].marker.color) == pytest.approx(poly[1].tolist())
    assert fig.layout.coloraxis2.colorbar.title.text == "interference"


def test_plot_matrix_and_lines():
    fig = plot_matrix(torch.eye(3), title="m")
    assert fig.data[0].z.shape == (3, 3) and fig.layout.title.text == "m"
    fig = plot_lines(torch.rand(2, 5), names=["a", "b"], log_y=True)
    assert len(fig.data) == 2 and fig.layout.yaxis.type == "log"
