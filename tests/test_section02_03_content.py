"""Fast tests of the helpers written for sections 2 and 3 (course_helpers/neuron_plots.py)."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from course_helpers.neuron_plots import (
    _stacked_segments,
    monosemantic_fraction,
    monosemanticity,
    plot_neuron_basis,
    sort_neurons,
)


def test_monosemanticity_values():
    W = torch.tensor([[[3.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [-2.0, 0.0, 1.0]]])
    share = monosemanticity(W)
    assert share.shape == (1, 4)
    np.testing.assert_allclose(share[0].numpy(), [1.0, 0.5, 0.0, 0.8])  # dead neuron -> 0
    np.testing.assert_allclose(monosemantic_fraction(W, threshold=0.9).numpy(), [0.25])
    np.testing.assert_allclose(monosemantic_fraction(W, threshold=0.75).numpy(), [0.5])
    # 2-D input keeps its shape; numpy input works.
    assert monosemanticity(W[0]).shape == (4,)
    np.testing.assert_allclose(monosemanticity(W[0].numpy()).numpy(), share[0].numpy())


def test_sort_neurons_puts_monosemantic_first_by_feature():
    W = torch.tensor([[[0.1, 0.9, 0.9], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.05]]])
    order = sort_neurons(W)[0].tolist()
    # monosemantic: neuron 2 (feature 0), neuron 4 (feature 1), neuron 1 (feature 2); then polysemantic
    # by decreasing share: neuron 0 (share 0.81/1.63 = 0.50) and neuron 3 (0.5) -- stable order.
    assert order[:3] == [2, 4, 1]
    assert sorted(order[3:]) == [0, 3]


def test_helpers_never_modify_the_weights():
    torch.manual_seed(0)
    W = torch.randn(3, 6, 8, requires_grad=True)
    W2 = torch.randn(3, 8, 6)
    before, before2 = W.detach().clone(), W2.clone()
    sort_neurons(W)
    monosemanticity(W)
    fig = plot_neuron_basis(W, W2, titles=["a", "b", "c"], title="t")
    assert torch.equal(W.detach(), before) and torch.equal(W2, before2)
    assert isinstance(fig, go.Figure)


def test_stacked_segments_stack_up_and_down():
    xs, bases, heights, feats = _stacked_segments(np.array([[1.0, -2.0, 0.5], [-1.0, -1.0, 0.0]]))
    assert xs.tolist() == [0, 0, 0, 1, 1, 1]
    # positives stack from 0 upwards, negatives from 0 downwards
    assert bases.tolist() == [0.0, 0.0, 1.0, 0.0, -1.0, 0.0]
    assert heights.tolist() == [1.0, -2.0, 0.5, -1.0, -1.0, 0.0]
    assert feats.tolist() == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize("n_feats, with_out", [(5, False), (30, True)])
def test_plot_neuron_basis_structure(n_feats, with_out):
    torch.manual_seed(1)
    n_inst, n_neurons = 2, 4
    W = torch.randn(n_inst, n_neurons, n_feats)
    W[:, 0] = 0
    W[:, 0, 1] = 1.0  # one monosemantic neuron per instance -> a shaded band
    W_out = torch.randn(n_inst, n_feats, n_neurons) if with_out else None
    fig = plot_neuron_basis(W, W_out, titles=["x", "y"])
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(heatmaps) == n_inst
    assert heatmaps[0].z.shape == (n_feats, n_neurons)  # features x neurons
    assert len(bars) == n_inst * (2 if with_out else 1)
    assert len(bars[0].x) == n_neurons * n_feats  # one segment per (neuron, feature)
    # the monosemantic neuron is drawn first, so column 0 of the heatmap is its weights
    np.testing.assert_allclose(heatmaps[0].z[:, 0], W[0, 0].numpy())
    assert len(fig.layout.shapes) == n_inst * (2 if with_out else 1)  # one shaded band per bar panel
