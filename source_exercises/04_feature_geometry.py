# ---
# title: "Feature geometry: how many dimensions does a feature get?"
# short_title: "Feature geometry"
# essential: false
# prerequisites: [1]
# minutes: 45
# colab_requires: ["einops==0.8.2", "jaxtyping"]
# ---

# %% [markdown]
# # Feature geometry: how many dimensions does a feature get?
#
# In section 1 a model with 5 features and 2 hidden dimensions arranged its features as a regular
# pentagon once they were sparse enough. Five features, two dimensions: each feature got, in a sense,
# $2/5$ of a dimension. This section asks the same question for bigger models, where we cannot just
# look at a 2-D picture: **how many hidden dimensions does each feature get, and in what shapes do
# features share them?**
#
# We follow the section *"The Geometry of Superposition"* of Elhage et al. (2022), *Toy Models of
# Superposition*. Its two findings, which you will reproduce here:
#
# 1. The number of dimensions per stored feature does not fall smoothly as features get sparser. It
#    **sticks** at $1$ and then at $\tfrac12$ over a wide range of sparsity: at $\tfrac12$, features
#    sit in *antipodal pairs*, two features on one line, pointing in opposite directions.
# 2. Looked at feature by feature, the share of a dimension each feature gets clusters at a few
#    fractions, $1, \tfrac34, \tfrac23, \tfrac12, \tfrac25, \tfrac38$, which are exactly the values of
#    features arranged as small regular shapes (tetrahedra, triangles, pairs, pentagons, square
#    antiprisms) that are orthogonal to each other.
#
# **What you will do.** Write two measures of "dimensions per feature" (one for the whole model, one
# per feature), train 200 features into 20 dimensions at 20 levels of sparsity at once, and read the
# two figures of the paper off your own model.
#
# **Notation** (as in section 1). $n$ features, $m < n$ hidden dimensions, a weight matrix
# $W \in \mathbb{R}^{m \times n}$ whose column $W_i$ is feature $i$'s direction in the hidden space,
# $x' = \operatorname{ReLU}(W^\top W x + b)$. Each feature is non-zero with probability $p = 1 - S$
# ($S$ is the *sparsity*); $1/p = 1/(1-S)$ is the average number of inputs between two appearances of
# a feature, the x-axis of every figure here. We train many *instances* (independent models) at once;
# tensors carry an `inst` dimension: `W: [inst, d_hidden, feats]`.

# %% tags=["parameters"]
FAST = False
SEED = 0

# %%
import time

import einops
import numpy as np
import plotly.graph_objects as go
import torch
from jaxtyping import Float
from torch import Tensor

from course_helpers.toy_model import Config, Model
from course_helpers.geometry import compute_dimensionality
from course_helpers.plots import SEQUENTIAL
from coursepress.testing import assert_close, assert_shape, assert_true
from coursepress.results import save_results

torch.manual_seed(SEED)
device = "cpu"  # these models are small: a GPU does not help much here

# FAST keeps every qualitative result (the 1/2 plateau included) at a quarter of the cost.
if FAST:
    N_FEATURES, N_HIDDEN, N_INST, BATCH_SIZE, STEPS = 100, 10, 20, 256, 2000
else:
    N_FEATURES, N_HIDDEN, N_INST, BATCH_SIZE, STEPS = 200, 20, 20, 1024, 3000
LR = 3e-3
print(f"{N_FEATURES} features -> {N_HIDDEN} hidden dimensions, {N_INST} instances, {STEPS} steps")

# %% [markdown]
# ## 1. Dimensions per feature
#
# A feature the model stores gets a column $W_i$ of norm close to $1$ (it has to come back out at
# its own size); a feature it ignores gets $W_i \approx 0$. So the squared Frobenius norm
#
# $$
# \|W\|_F^2 = \sum_{i=1}^{n} \|W_i\|^2
# $$
#
# is roughly the **number of features the model stores**, and
#
# $$
# \text{dimensions per feature} = \frac{m}{\|W\|_F^2}
# $$
#
# is how many hidden dimensions each stored feature gets on average. It is $1$ when $m$ features
# each get a dimension of their own (no superposition), $\tfrac12$ when twice as many features as
# dimensions are stored, and so on.

# %% [markdown] exercise="Dimensions per feature" difficulty=1 importance=3 minutes="5"
# Write `dimensions_per_feature(W)`.
#
# * **Input:** `W`, a tensor of shape `[inst, d_hidden, feats]` (any float dtype).
# * **Output:** a tensor of shape `[inst]`: for each instance, $m / \|W\|_F^2$ where
#   $m$ = `d_hidden` and $\|W\|_F^2$ is the sum of the squares of all entries of that instance's matrix.
# * An instance whose `W` is all zero stores nothing: return `inf` there (plain division does this).

# %%
def dimensions_per_feature(W: Float[Tensor, "inst d_hidden feats"]) -> Float[Tensor, "inst"]:
    ### BEGIN SOLUTION
    d_hidden = W.shape[1]
    frobenius_sq = einops.reduce(W.pow(2), "inst d_hidden feats -> inst", "sum")
    return d_hidden / frobenius_sq
    ### END SOLUTION
    ### BEGIN STUB
    # frobenius_sq = ...  # [inst]
    # return ...
    ### END STUB


# %% test="test_dimensions_per_feature" points=1
_gen = torch.Generator().manual_seed(0)
_W = torch.randn(3, 4, 7, generator=_gen)
_expected = torch.tensor([4 / (_W[i] ** 2).sum().item() for i in range(3)])
_out = dimensions_per_feature(_W)
assert_shape(_out, (3,), "dimensions_per_feature(W) for W of shape [3, 4, 7]")
assert_close(_out, _expected, "dimensions_per_feature(random W)")
# Four unit features in four dimensions: one dimension each.
assert_close(dimensions_per_feature(torch.eye(4)[None]), torch.tensor([1.0]), "dimensions_per_feature(identity)")
### BEGIN HIDDEN TESTS
_gen = torch.Generator().manual_seed(1)
_W = torch.randn(5, 1, 3, generator=_gen, dtype=torch.float64)
_expected = torch.tensor([1 / (_W[i] ** 2).sum().item() for i in range(5)])
assert_close(dimensions_per_feature(_W), _expected, "dimensions_per_feature with d_hidden = 1")
assert_close(dimensions_per_feature(2 * _W), _expected / 4, "dimensions_per_feature(2 W) should be a quarter of that of W")
# Six unit features in three dimensions (three antipodal pairs): half a dimension each.
_pairs = torch.cat([torch.eye(3), -torch.eye(3)], dim=1)[None]
assert_close(dimensions_per_feature(_pairs), torch.tensor([0.5]), "dimensions_per_feature(3 antipodal pairs in 3-D)")
_zero = dimensions_per_feature(torch.zeros(2, 3, 4))
assert_shape(_zero, (2,), "dimensions_per_feature(all-zero W)")
assert_true(torch.isinf(_zero).all(), f"an all-zero W stores nothing: expected inf, got {_zero.tolist()}")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The sparsity sweep
#
# Now the experiment. Every instance gets the same $n$ features and $m = n/10$ hidden dimensions, the
# same importance for every feature, and its own feature probability: $p$ runs from $1$ (dense, every
# feature always present) down to $1/20$, evenly spaced on a log scale,
#
# $$
# p_k = 20^{-k/(I-1)}, \qquad k = 0, \dots, I-1 .
# $$
#
# All instances train together with the `optimize` method of section 1 (Adam, a fresh batch every step).
#
# *Sizes.* The public course's page used 400 features in 30 dimensions for 20,000 steps, its solution
# file 200 features in 20 dimensions for 10,000 steps at learning rate $10^{-3}$. That is the heaviest toy-model run of
# the course (8 minutes for 5,000 steps on one CPU core), so full mode here trains the same 200 → 20
# model for 3,000 steps at learning rate $3 \times 10^{-3}$: on a GPU we checked that it ends on the
# same curve as the 10,000-step run (the plateau to within 0.005; the largest gap, 0.04, is on the
# steep drop). `FAST` mode trains 100 features into 10
# dimensions with batches of 256 (about 20 s instead of 4 minutes on two CPU cores): every result
# below still shows, a little noisier.

# %% skip_grading=true
cfg = Config(n_inst=N_INST, n_features=N_FEATURES, n_hidden=N_HIDDEN)
# [inst, 1]: one probability per instance, the same for all of its features.
feature_probability = 20.0 ** -torch.linspace(0, 1, N_INST)
torch.manual_seed(SEED)
model = Model(cfg, feature_probability=feature_probability[:, None], device=device)

start = time.time()
history = model.optimize(batch_size=BATCH_SIZE, steps=STEPS, lr=LR, log_freq=STEPS // 10)
train_seconds = time.time() - start
print(f"trained in {train_seconds:.0f} s; final loss per instance {history['loss'][-1]:.4f}")

# %% skip_grading=true
W = model.W.detach()  # [inst d_hidden feats]
inv_p = (1 / feature_probability).tolist()
dims_per_feat = dimensions_per_feature(W)
for inst in range(N_INST):
    print(f"1/p = {inv_p[inst]:5.2f}   stored features ~ {W[inst].pow(2).sum():6.1f}   "
          f"dimensions per feature = {dims_per_feat[inst]:.3f}")

# %% fold="Show code"
# Tick labels at round values of 1/p (plotly's default log ticks label only the first digit).
LOG_TICKS = dict(tickvals=[1, 1.5, 2, 3, 4, 5, 7, 10, 15, 20], range=[np.log10(0.9), np.log10(23)])


def plot_dims_per_feature(inv_p: list[float], dims: list[float], title: str) -> go.Figure:
    """m / ||W||_F^2 against 1/(1-S) on a log axis, with guides at 1 and 1/2."""
    fig = go.Figure()
    for level, label in [(1.0, "1: one dimension per feature"), (0.5, "1/2: antipodal pairs")]:
        fig.add_hline(y=level, line=dict(color="#9467bd", dash="dot", width=1),
                      annotation_text=label, annotation_position="top right")
    fig.add_trace(go.Scatter(
        x=inv_p, y=dims, mode="lines+markers", line=dict(color="black"), name="m / ‖W‖²<sub>F</sub>",
        customdata=np.stack([np.arange(len(inv_p)), 1 / np.asarray(inv_p)], axis=-1),
        hovertemplate="instance %{customdata[0]}<br>p = %{customdata[1]:.3f}, 1/p = %{x:.2f}"
                      "<br>dimensions per feature %{y:.3f}<extra></extra>",
    ))
    fig.update_xaxes(type="log", title_text="1/(1−S) = 1/p   (dense → sparse)", **LOG_TICKS)
    fig.update_yaxes(title_text="dimensions per feature  m / ‖W‖²<sub>F</sub>", range=[0, 1.1])
    fig.update_layout(title=title, height=420, width=720, showlegend=False)
    return fig


# %% skip_grading=true
plot_dims_per_feature(
    inv_p, dims_per_feat.tolist(), f"Dimensions per feature: {N_FEATURES} features in {N_HIDDEN} dimensions"
).show()

# %% [markdown]
# **What the figure shows.** One point per instance: how many hidden dimensions each stored feature
# gets, from dense features (left) to sparse ones (right).
#
# **What to notice.**
#
# * **Left, at 1:** dense features interfere with each other all the time, so the model stores only
#   $m$ of them ($\|W\|_F^2 = m$) and nothing else.
# * **A sudden drop, then a plateau near $\tfrac12$**: in full mode $0.53, 0.51, 0.50, 0.50$ for
#   $1/p = 2.2, 2.6, 3.0, 3.5$ (in `FAST` mode $0.54, 0.53, 0.49, 0.47$, a shorter and less flat shelf). Over this whole range the model stores exactly twice as many
#   features as it has dimensions. It does not creep from 1 to $\tfrac12$: it *sticks*.
# * **Right:** as features get sparser still, more and more features share each dimension
#   (about $0.14$, i.e. 7 features per dimension, at $1/p = 20$).
#
# Why is $\tfrac12$ sticky? Put two features on the same line with opposite signs, $W_j = -W_i$.
# When only feature $i$ is on, the hidden vector points along $W_i$; reading it back gives feature $i$
# its value and feature $j$ a *negative* value, which the ReLU (with $b_j \le 0$) turns into an exact 0.
# The pair only interferes when both features are on at once, which happens with probability $p^2$.
# Storing a third feature on that line, or pairs at any angle other than $180°$, would cost positive
# interference that the ReLU cannot remove, so the model keeps the pairs until sparsity makes even
# that worth paying.

# %% [markdown]
# ## 3. Dimensionality of each feature
#
# $m/\|W\|_F^2$ is an average. To see *how* features share dimensions, the paper gives every feature
# its own number, its **dimensionality**
#
# $$
# D_i = \frac{\|W_i\|^2}{\sum_{j=1}^{n} \big(\hat W_i \cdot W_j\big)^2},
# \qquad \hat W_i = \frac{W_i}{\|W_i\|} .
# $$
#
# The numerator is how strongly feature $i$ is stored. The denominator counts, weighted by how much
# they overlap with $W_i$'s direction, all the features that use that direction, feature $i$ itself
# included (its own term $j = i$ is $\|W_i\|^2$). So $D_i$ is feature $i$'s share of "its" dimension:
#
# * $D_i = 1$ exactly when $W_i$ is orthogonal to every other feature: a dimension of its own.
# * $k$ features of equal norm on one line (pointing either way) and orthogonal to the rest get
#   $D = 1/k$ each; an **antipodal pair** gets $D = \tfrac12$.
# * $0 \le D_i \le 1$, and a feature that is not stored at all ($W_i = 0$) gets $D_i = 0$ (the formula
#   would give $0/0$; we *define* it as 0).
# * Summed over features, $\sum_i D_i \le m$: the features can't share out more dimensions than
#   there are.

# %% [markdown] fold="Why regular shapes give the fractions 2/3, 2/5, 3/8, …"
# Take $k$ unit vectors $v_1, \dots, v_k$ spanning a $d$-dimensional subspace and arranged
# *symmetrically*, like the corners of a triangle ($k=3, d=2$), a pentagon ($k=5, d=2$), a
# tetrahedron ($k=4, d=3$) or a square antiprism ($k=8, d=3$). Symmetry forces
# $\sum_j v_j v_j^\top = \tfrac{k}{d}\, P$, where $P$ is the projection onto the subspace (the sum is
# invariant under the shape's rotations, so it is a multiple of $P$, and its trace is $k$). Then for
# each $i$
#
# $$
# \sum_j (v_i \cdot v_j)^2 = v_i^\top \Big(\sum_j v_j v_j^\top\Big) v_i = \frac{k}{d},
# \qquad\text{so}\qquad D_i = \frac{1}{k/d} = \frac{d}{k}.
# $$
#
# Triangle $\tfrac23$, pentagon $\tfrac25$, tetrahedron $\tfrac34$, square antiprism $\tfrac38$,
# antipodal pair ($k = 2, d = 1$) $\tfrac12$, a lone feature $1$, provided each shape lies in a
# subspace orthogonal to all other features.
#
# **Why $\sum_i D_i \le m$.** Let $M = \sum_j W_j W_j^\top = W W^\top$ ($m \times m$). The denominator
# of $D_i$ is $\hat W_i^\top M \hat W_i$, so $D_i = (W_i^\top W_i)^2 / (W_i^\top M W_i)$. By
# Cauchy–Schwarz with the pseudo-inverse $M^+$, $(W_i^\top W_i)^2 \le (W_i^\top M W_i)(W_i^\top M^+ W_i)$,
# hence $D_i \le W_i^\top M^+ W_i$ and
# $\sum_i D_i \le \operatorname{tr}\!\big(M^+ \sum_i W_i W_i^\top\big) = \operatorname{tr}(M^+ M) = \operatorname{rank} M \le m$.

# %% [markdown] exercise="Per-feature dimensionality" difficulty=2 importance=4 minutes="10-20"
# Write `compute_dimensionality(W)`, vectorised over instances and features (no Python loops).
#
# * **Input:** `W` of shape `[inst, d_hidden, feats]`; column `W[k, :, i]` is $W_i$ in instance $k$.
# * **Output:** `D` of shape `[inst, feats]` with
#   $D_i = \|W_i\|^2 / \sum_j (\hat W_i \cdot W_j)^2$ in each instance.
# * A feature whose column is exactly zero gets $D_i = 0$ — not `nan`. Make sure the zero column
#   does not produce `nan` anywhere else either (a `nan` in $\hat W_i$ would spread through an
#   einsum).
# * It must work for any sizes, including one instance and a one-dimensional hidden space
#   (`d_hidden = 1`): avoid `.squeeze()`, which would drop those dimensions.
#
# This function is shared with the next section (which applies it to the hidden vectors of
# datapoints as well), so it lives in the course's helper code: the cell below is that helper.

# %% include="course_helpers/geometry.py"

# %% [markdown] fold="Hint"
# Compute the norms with `einops.reduce(W.pow(2), "inst d_hidden feats -> inst feats", "sum")` and
# `.sqrt()`. To normalise without dividing by zero, divide by `torch.where(norms > 0, norms, 1.0)`:
# a zero column then stays zero. The overlaps $\hat W_i \cdot W_j$ are one
# `einops.einsum(W_unit, W, "inst d_hidden f_i, inst d_hidden f_j -> inst f_i f_j")`. Finish with a
# `torch.where(norms > 0, ..., 0.0)`.

# %% test="test_compute_dimensionality" points=3
def _reference_dimensionality(W):
    # Same quantity through the Gram matrix G = W^T W: D_i = G_ii^2 / sum_j G_ij^2 (0 for a zero column).
    W = W.double()
    G = einops.einsum(W, W, "inst hid f_i, inst hid f_j -> inst f_i f_j")
    num = torch.diagonal(G, dim1=-2, dim2=-1) ** 2
    den = (G ** 2).sum(-1)
    return torch.where(num > 0, num / torch.where(den > 0, den, 1.0), 0.0)


_gen = torch.Generator().manual_seed(0)
_W = torch.randn(2, 5, 8, generator=_gen)
_D = compute_dimensionality(_W)
assert_shape(_D, (2, 8), "compute_dimensionality(W) for W of shape [2, 5, 8]")
assert_close(_D, _reference_dimensionality(_W), "compute_dimensionality(random W)", atol=1e-5)
# Orthogonal features: a dimension each.
assert_close(compute_dimensionality(3 * torch.eye(4)[None]), torch.ones(1, 4), "D of 4 orthogonal features")
# An antipodal pair on the first axis, plus one feature on the second axis.
_W = torch.tensor([[[1.0, -1.0, 0.0], [0.0, 0.0, 2.0]]])
assert_close(compute_dimensionality(_W), torch.tensor([[0.5, 0.5, 1.0]]), "D of an antipodal pair + a lone feature")
# Three unit features at 120 degrees (a triangle) in 2-D: 2/3 each.
_angles = torch.tensor([0.0, 2.0, 4.0]) * torch.pi / 3
_W = torch.stack([torch.cos(_angles), torch.sin(_angles)])[None]
assert_close(compute_dimensionality(_W), torch.full((1, 3), 2 / 3), "D of a triangle", atol=1e-5)
### BEGIN HIDDEN TESTS
# Other seeds and shapes, float64.
for _seed, _shape in [(1, (3, 7, 12)), (2, (1, 4, 4)), (3, (6, 2, 5))]:
    _gen = torch.Generator().manual_seed(_seed)
    _W = torch.randn(*_shape, generator=_gen, dtype=torch.float64)
    assert_close(compute_dimensionality(_W), _reference_dimensionality(_W), f"compute_dimensionality(W of shape {_shape})", atol=1e-6)
# One instance, one hidden dimension: every feature is on the same line, D_i = w_i^2 / sum_j w_j^2.
_gen = torch.Generator().manual_seed(4)
_W = torch.randn(1, 1, 6, generator=_gen)
_D = compute_dimensionality(_W)
assert_shape(_D, (1, 6), "compute_dimensionality(W of shape [1, 1, 6])")
assert_close(_D, (_W[0, 0] ** 2 / (_W[0, 0] ** 2).sum())[None], "D with d_hidden = 1", atol=1e-5)
# A single feature.
assert_close(compute_dimensionality(torch.tensor([[[0.3], [0.4]]])), torch.ones(1, 1), "D of a single feature")
# k features of equal norm on one line (either sign), orthogonal to two lone features: 1/k each.
for _k in (2, 3, 5):
    _col = torch.zeros(3, _k + 2)
    _col[0, :_k] = 0.7 * torch.tensor([(-1.0) ** j for j in range(_k)])
    _col[1, _k] = 1.3
    _col[2, _k + 1] = 0.2
    _expected = torch.tensor([1 / _k] * _k + [1.0, 1.0])[None]
    assert_close(compute_dimensionality(_col[None]), _expected, f"D of {_k} parallel features + 2 orthogonal ones", atol=1e-5)
# Randomly rotated orthonormal features with different norms: still 1 each.
_gen = torch.Generator().manual_seed(5)
_Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=_gen, dtype=torch.float64))
_W = (_Q[:, :4] * torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64))[None]
assert_close(compute_dimensionality(_W), torch.ones(1, 4), "D of rotated orthogonal features with different norms", atol=1e-6)
# Regular pentagon in 2-D: 2/5; regular tetrahedron in 3-D: 3/4.
_angles = torch.arange(5, dtype=torch.float64) * 2 * torch.pi / 5
_W = torch.stack([torch.cos(_angles), torch.sin(_angles)])[None]
assert_close(compute_dimensionality(_W), torch.full((1, 5), 0.4), "D of a pentagon", atol=1e-6)
_tet = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])
assert_close(compute_dimensionality(_tet[None]), torch.full((1, 4), 0.75), "D of a tetrahedron", atol=1e-5)
# A zero column: D = 0 there, no NaN anywhere, and the other features do not notice it.
_gen = torch.Generator().manual_seed(6)
_W = torch.randn(2, 3, 5, generator=_gen)
_W_zero = _W.clone()
_W_zero[0, :, 2] = 0.0
_W_zero[1, :, 0] = 0.0
_D = compute_dimensionality(_W_zero)
assert_true(torch.isfinite(_D).all(), f"a zero feature column must not give NaN/inf, got {_D.tolist()}")
assert_close(_D[0, 2], 0.0, "D of a zero feature column (instance 0, feature 2)")
assert_close(_D[1, 0], 0.0, "D of a zero feature column (instance 1, feature 0)")
assert_close(_D, _reference_dimensionality(_W_zero), "D of the other features next to a zero column", atol=1e-5)
assert_close(compute_dimensionality(torch.zeros(1, 2, 3)), torch.zeros(1, 3), "D of an all-zero W")
# Scale invariance and the bound sum_i D_i <= m.
_gen = torch.Generator().manual_seed(7)
_W = torch.randn(4, 3, 10, generator=_gen)
assert_close(compute_dimensionality(5 * _W), compute_dimensionality(_W), "D(5 W) should equal D(W)", atol=1e-5)
_sums = compute_dimensionality(_W).sum(-1)
assert_true((_sums <= 3 + 1e-4).all(), f"sum_i D_i can never exceed d_hidden = 3; got {_sums.tolist()}")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Reading the geometry off the trained model
#
# We now compute $D_i$ for every feature of every instance and plot them all: x = the instance's
# $1/p$ (spread a little sideways so that points don't hide each other), y = $D_i$, colour = the
# feature's norm $\|W_i\|$. The black line is the dimensions-per-feature curve from before; the dotted
# lines mark the fractions of the regular shapes.

# %% fold="Show code"
FRACTIONS = {
    "1": (1.0, "1: own dimension"),
    "3/4": (3 / 4, "3/4: tetrahedron"),
    "2/3": (2 / 3, "2/3: triangle"),
    "1/2": (1 / 2, "1/2: antipodal pair"),
    "2/5": (2 / 5, "2/5: pentagon"),
    "3/8": (3 / 8, "3/8: square antiprism"),
}


def plot_feature_dimensionality(
    inv_p: list[float], D: Tensor, norms: Tensor, dims: list[float], title: str, jitter: float = 0.035
) -> go.Figure:
    """Scatter of every feature's D_i at its instance's 1/p, coloured by ||W_i||, over the m/||W||_F^2 line."""
    n_inst, n_feats = D.shape
    gen = np.random.default_rng(0)  # the sideways spread is cosmetic: fixed, so the figure is reproducible
    x = np.asarray(inv_p)[:, None] * np.exp(gen.uniform(-jitter, jitter, size=(n_inst, n_feats)))
    inst_idx, feat_idx = np.meshgrid(np.arange(n_inst), np.arange(n_feats), indexing="ij")
    fig = go.Figure()
    for value, label in FRACTIONS.values():
        fig.add_hline(y=value, line=dict(color="#9467bd", dash="dot", width=1),
                      annotation_text=label, annotation_position="right", annotation_font_size=11)
    fig.add_trace(go.Scatter(
        x=x.ravel(), y=D.numpy().ravel(), mode="markers", name="features",
        marker=dict(size=4, color=norms.numpy().ravel(), colorscale=SEQUENTIAL, cmin=0,
                    cmax=float(norms.max()), colorbar=dict(title=dict(text="‖W<sub>i</sub>‖"), thickness=12, x=1.17)),
        customdata=np.stack([inst_idx.ravel(), feat_idx.ravel(), norms.numpy().ravel(),
                             np.repeat(np.asarray(inv_p), n_feats)], axis=-1),
        hovertemplate="instance %{customdata[0]} (1/p = %{customdata[3]:.2f})<br>feature %{customdata[1]}"
                      "<br>D = %{y:.3f}<br>‖W<sub>i</sub>‖ = %{customdata[2]:.3f}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(x=inv_p, y=dims, mode="lines+markers", name="m / ‖W‖²<sub>F</sub>",
                             line=dict(color="black", width=2), marker=dict(size=5), hoverinfo="skip"))
    fig.update_xaxes(type="log", title_text="1/(1−S) = 1/p   (dense → sparse)", **LOG_TICKS)
    fig.update_yaxes(title_text="dimensionality D<sub>i</sub>", range=[-0.03, 1.08])
    fig.update_layout(title=title, height=520, width=900, margin=dict(r=190),
                      legend=dict(x=0.72, y=1.0, bgcolor="rgba(255,255,255,0.8)"))
    return fig


def count_near_fractions(D: Tensor, norms: Tensor, tol: float = 0.03, min_norm: float = 0.5) -> dict[str, int]:
    """How many stored features (||W_i|| >= min_norm) have D_i within tol of each named fraction.

    Each feature counts once, for the nearest fraction (3/8 and 2/5 are only 0.025 apart).
    """
    stored = D[norms >= min_norm]
    values = torch.tensor([v for v, _ in FRACTIONS.values()])
    dist = (stored[:, None] - values[None, :]).abs()  # [stored, fractions]
    nearest = dist.argmin(-1)
    close = dist.min(-1).values <= tol
    return {name: int((close & (nearest == k)).sum()) for k, name in enumerate(FRACTIONS)}


def plot_dimensionality_histogram(D: Tensor, norms: Tensor, min_norm: float = 0.5) -> go.Figure:
    """Histogram of D_i over the stored features of every instance, with the fractions marked."""
    stored = D[norms >= min_norm].numpy()
    fig = go.Figure(go.Histogram(x=stored, xbins=dict(start=0, end=1.02, size=0.01), marker_color="#1f77b4",
                                 hovertemplate="D in [%{x}]<br>%{y} features<extra></extra>"))
    for value, label in FRACTIONS.values():
        fig.add_vline(x=value, line=dict(color="#9467bd", dash="dot", width=1))
        # 3/8 and 2/5 are close: put their labels on either side of their lines.
        anchor = {"3/8": "right", "2/5": "left"}.get(label.split(":")[0], "center")
        fig.add_annotation(x=value, y=1.0, yref="paper", text=label.split(":")[0], showarrow=False,
                           yshift=10, xanchor=anchor)
    fig.update_xaxes(title_text="dimensionality D<sub>i</sub>", range=[0, 1.03])
    fig.update_yaxes(title_text="number of features")
    fig.update_layout(title=f"D of the {len(stored)} stored features (‖W<sub>i</sub>‖ ≥ {min_norm}), all instances",
                      height=360, width=900, bargap=0)
    return fig


# %% skip_grading=true
D = compute_dimensionality(W)  # [inst feats]
norms = W.norm(dim=1)  # [inst feats]
plot_feature_dimensionality(
    inv_p, D, norms, dims_per_feat.tolist(),
    f"Dimensionality of every feature ({N_FEATURES} features in {N_HIDDEN} dimensions, {N_INST} instances)",
).show()

# %% [markdown]
# **What the figure shows.** Every dot is one feature of one instance. Hover over a dot to see which
# instance and feature it is, its $D_i$ and its norm. Dark dots near the bottom are features the model
# does not store ($\|W_i\| \approx 0$, so $D_i \approx 0$).
#
# **What to notice.**
#
# * **The stored (bright) features do not spread evenly between 0 and 1: they line up.** In the
#   plateau region almost every stored feature sits at $D = \tfrac12$: the antipodal pairs. Around
#   it, in the instances where the model is changing arrangement, features sit at $\tfrac23$
#   (triangles) and at $\tfrac25$ / $\tfrac38$ (pentagons, square antiprisms): small regular shapes in
#   subspaces orthogonal to each other. Moving right, features *jump* from one shape to the next
#   rather than deforming continuously, which the paper compares to phase changes.
# * **Sparser still, the stored features of one instance cluster tightly around that instance's
#   average** (the black line) at values below $\tfrac38$: the shapes get bigger (many features
#   spread evenly over a larger subspace), and every feature takes the same small share.
# * **The dense instances are the exception.** There $m/\|W\|_F^2 = 1$, yet the features' $D_i$ are
#   small and spread out rather than $m$ features at 1. With dense features and equal importance the
#   model is (almost) linear, and *every* $m$-dimensional projection of the input loses the same
#   amount, so nothing pushes it to pick $m$ features and drop the others: from a random start it
#   keeps $W^\top W$ a projection spread over all the features (then $D_i = \|W_i\|^2$, and
#   $\sum_i D_i = m$). The average measure says "one dimension per stored feature", the per-feature
#   measure shows that no feature owns one. Give the features different importances, as in section 1,
#   and the dense model does pick the most important $m$.
# * Between the fractions there are features in less regular arrangements, and a few stored features
#   with $D$ well below $\tfrac38$: the paper sees the same thing. The fractions are where features
#   *cluster*, not where every one of them lands.
#
# The histogram below counts the stored features ($\|W_i\| \ge 0.5$) of all instances by $D$.

# %% skip_grading=true
plot_dimensionality_histogram(D, norms).show()
fraction_counts = count_near_fractions(D, norms)
n_stored = int((norms >= 0.5).sum())
print(f"{n_stored} stored features (norm >= 0.5); within ±0.03 of each fraction:")
for name, count in fraction_counts.items():
    print(f"  {name:>4}: {count}")

# %% [markdown]
# **Questions to check your understanding.**
#
# 1. Two features form an antipodal pair and a third, orthogonal one has its own dimension. What are
#    the three $D_i$, and what is $\sum_i D_i$? How many dimensions do they use?
# 2. Why does $D_i$ not change if you multiply all of $W$ by 3, and why *does* it change if you
#    multiply only $W_j$ ($j \ne i$) by 3 when $W_j$ overlaps with $W_i$?
# 3. A feature with a tiny norm that happens to be orthogonal to all others gets $D_i = 1$. Why is that
#    harmless in the figures above, and why do we count only features with $\|W_i\| \ge 0.5$?

# %% [markdown] only="solution"
# **Answers.**
#
# 1. $\tfrac12, \tfrac12, 1$; the sum is $2$, exactly the two dimensions they span (a tight
#    arrangement reaches the bound $\sum_i D_i \le m$).
# 2. Both numerator and denominator of $D_i$ scale by $9$ when all of $W$ is scaled by 3. Scaling only
#    $W_j$ multiplies its term $(\hat W_i \cdot W_j)^2$ by 9 in the denominator of $D_i$: feature $j$
#    now takes more of the direction $W_i$ uses, so $D_i$ falls.
# 3. $D_i$ measures how a feature *shares* its direction, not how strongly it is stored. A feature
#    with $\|W_i\| \approx 0$ contributes nothing to the model's output, whatever its $D_i$; in the
#    scatter its dark colour shows it. Counting features at the fractions only makes sense for
#    features the model actually stores, hence the norm threshold.

# %% skip_grading=true
save_results(4, {
    "dims_per_feature_curve": [[round(p, 4), round(d, 4)] for p, d in zip(inv_p, dims_per_feat.tolist())],
    "feature_dimensionality_fractions": fraction_counts,
    "n_stored_features": n_stored,
    "setup": {"n_features": N_FEATURES, "n_hidden": N_HIDDEN, "n_inst": N_INST, "steps": STEPS,
              "batch_size": BATCH_SIZE, "lr": LR, "fast": FAST},
    "train_seconds": round(train_seconds, 1),
})
