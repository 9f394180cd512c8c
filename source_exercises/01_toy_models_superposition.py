# ---
# title: "Toy models of superposition: non-privileged basis"
# short_title: "TMS: non-privileged basis"
# essential: true
# prerequisites: []
# minutes: 120
# colab_requires: ["einops==0.8.2", "jaxtyping"]
# ---

# %% [markdown]
# # Toy models of superposition: non-privileged basis
#
# A neural network layer with $m$ neurons can only have $m$ orthogonal directions. Yet models seem to
# track far more properties of their input ("features": *this token is in French*, *this is a cat's
# ear*, ...) than they have dimensions. **Superposition** is the hypothesis that a model stores more
# features than it has dimensions by giving them directions that are *almost* orthogonal, and accepts
# a little interference between them in exchange. Superposition is the main reason why single neurons
# are often hard to interpret, and it is the problem that sparse autoencoders (the second half of this
# chapter) try to undo.
#
# In this section you build the smallest model in which superposition can happen, the toy model of
# Elhage et al., [*Toy Models of Superposition*](https://transformer-circuits.pub/2022/toy_model/index.html)
# (2022), train many copies of it at once, and watch features share a two-dimensional space.
# You will see **when** a model chooses superposition (it depends on how *sparse* and how *important*
# the features are) and **what geometry** it picks (digons, triangles, pentagons).
#
# This is the longest set of exercises in the chapter. Sections 1 (this one), 6 and 7 form the core; 4
# and 5 can be skipped on a first pass.
#
# **What you will do here**
# 1. Relate feature directions to the matrix $W^\top W$ of their dot products.
# 2. Write the toy model: its forward pass, its synthetic data and its loss (graded, with tests).
# 3. Train 8 models over a range of sparsities and read their geometry.
# 4. Scale up to 80 features in 20 dimensions.
# 5. Bonus: perturb the frequency of one feature; estimate feature importance by backpropagation.
#
# **Reading** (optional, about 45 minutes): Neel Nanda's *200 Concrete Open Problems: polysemanticity
# and superposition*; his Dynalist notes on superposition; the paper above up to the section "Summary:
# a hierarchy of feature properties".

# %% [markdown]
# ## Vocabulary, and four warm-up questions
#
# * A **feature** is a property of the input that the model represents, ideally as a direction in its
#   activation space.
# * A basis is **privileged** when its directions mean something: some operation acts on each
#   coordinate separately (an elementwise nonlinearity such as ReLU), so *the coordinates themselves*
#   matter. Without such an operation only the geometry of the representation matters.
# * **Superposition**: a layer represents more features than it has dimensions.
# * **Polysemanticity**: one neuron responds to several unrelated features.
# * The **importance** $I_i$ of feature $i$ is how much an error on it costs in the loss; its
#   **sparsity** $S_i$ is the probability that it is zero, and $p_i = 1 - S_i$ is its *feature
#   probability*, the chance that it is present.
#
# Think about each question before opening the answer.
#
# 1. Why is the residual stream of a transformer **not** a privileged basis?
# 2. Does superposition imply polysemanticity? Does polysemanticity imply superposition?
# 3. If features become sparser, would you expect more or fewer polysemantic neurons?
# 4. The toy model in this section has no nonlinearity in its hidden layer. What does that tell you
#    about its hidden coordinates?

# %% [markdown] fold="Answers"
# 1. Every read from and write to the residual stream is linear (embeddings, attention and MLP inputs
#    and outputs). Rotate the stream by any orthogonal $R$, and fold $R$ into every matrix that writes
#    to it and $R^\top$ into every matrix that reads from it: the network computes exactly the same
#    function. Nothing singles out the standard basis.
# 2. Superposition implies polysemanticity: with more features than neurons, at least some neurons must
#    respond to more than one feature. The converse fails: a layer can have as many neurons as features
#    and still mix them (a rotated basis), which is polysemantic without superposition.
# 3. More. Sparse features rarely occur together, so sharing a direction costs little, and the model
#    packs more of them in (you will measure this below).
# 4. They are arbitrary: rotating the hidden space changes nothing (section 3 adds a ReLU there, and
#    then the neurons become meaningful).

# %% tags=["parameters"]
FAST = False  # fewer training steps and a shorter schedule (same qualitative results)
SEED = 0

# %%
import math

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from coursepress.results import save_results
from coursepress.testing import assert_close, assert_shape, assert_true
from course_helpers.toy_model import Config, Model, constant_lr, cosine_decay_lr
from course_helpers.tms_plots import feature_norms_and_polysemanticity, plot_features_in_2d, plot_features_in_Nd, plot_lines, plot_matrix

torch.manual_seed(SEED)
device = "cuda" if torch.cuda.is_available() else "cpu"

# %% [markdown]
# ## Feature directions and $W^\top W$
#
# Suppose a layer with $m$ dimensions stores $n$ features, feature $i$ as the column $W_i$ of an
# $m \times n$ matrix $W$. How much two features get in each other's way is measured by the dot
# product $W_i \cdot W_j$: zero for orthogonal directions, large when they point the same way. All
# these dot products together form the $n \times n$ matrix
#
# $$ (W^\top W)_{ij} = W_i \cdot W_j , $$
#
# whose diagonal holds the squared lengths $\lVert W_i \rVert^2$. If every column has length 1, it is
# the matrix of cosine similarities.
#
# Below are 5 random unit vectors in 2 dimensions: on the left their cosine-similarity matrix
# $W^\top W$, on the right the vectors themselves. Match the large off-diagonal entries to pairs of
# arrows that point the same way, and the negative ones to pairs that point in opposite directions.

# %% skip_grading=true
generator = torch.Generator().manual_seed(SEED + 2)
W_demo = torch.randn(2, 5, generator=generator)
W_demo = W_demo / W_demo.norm(dim=0, keepdim=True)  # unit columns: W^T W holds cosine similarities
gram_demo = einops.einsum(W_demo, W_demo, "hid f_i, hid f_j -> f_i f_j")

plot_matrix(gram_demo, title="W<sup>T</sup>W for 5 random unit vectors in 2-D", x_label="feature j", y_label="feature i").show()
plot_features_in_2d(
    W_demo, colors=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"], title="The same 5 vectors", panel_size=320
).show()
print(f"rank of W^T W: {torch.linalg.matrix_rank(gram_demo).item()} (it is 5 x 5)")

# %% [markdown]
# The 5 × 5 matrix $W^\top W$ has rank 2: it is a product through a 2-dimensional space, so its rank is
# at most $m = 2$. In particular it can never be the identity, which would mean 5 mutually orthogonal
# features. **Five features in two dimensions must interfere**; the only question is how a model
# arranges them so that the interference costs as little as possible. That is what the toy model learns.
#
# ## The toy model, and your three exercises
#
# The next cells define the model. They are the same code that later sections import (as
# `course_helpers.toy_model`), so the class you complete here is the class you will reuse.

# %% include="course_helpers/toy_model.py"

# %% [markdown] exercise="Implement the forward pass" difficulty=2 importance=3 minutes="10-20"
# Fill in `Model.forward` in the class cell above.
#
# * **Input** `features`: `[..., inst, feats]`, any number of leading batch dimensions (also none: a
#   single input `[inst, feats]`).
# * **Output**: the reconstruction, same shape.
# * In every instance separately: $h = W x$ (`[..., inst, d_hidden]`), then
#   $x' = \operatorname{ReLU}(W^\top h + b)$ with `b = self.b_final`.
#
# Use `einops.einsum` with `...` for the batch dimensions, and keep the `inst` dimension in both
# operands so that one einsum handles every instance. The ReLU acts on the output only: the hidden layer
# stays linear.

# %% [markdown] fold="Hint"
# The first product contracts `feats`: `"inst d_hidden feats, ... inst feats -> ... inst d_hidden"`.
# The second contracts `d_hidden` with the same `W`.

# %% test="test_forward" points=2
def _reference_forward(W, b, x):
    hidden = einops.einsum(W, x, "inst hid feats, ... inst feats -> ... inst hid")
    return torch.relu(einops.einsum(W, hidden, "inst hid feats, ... inst hid -> ... inst feats") + b)


def _check_forward(n_inst, n_features, n_hidden, batch_shape, seed):
    torch.manual_seed(seed)
    model = Model(Config(n_inst=n_inst, n_features=n_features, n_hidden=n_hidden))
    with torch.no_grad():  # a non-zero bias of both signs, so a misplaced ReLU changes the output
        model.b_final.copy_(torch.randn(n_inst, n_features) * 0.5)
    x = torch.rand(*batch_shape, n_inst, n_features)
    out = model(x)
    W, b = model.W.detach(), model.b_final.detach()
    expected = _reference_forward(W, b, x)
    assert_shape(out, expected.shape, "model(x)")
    hidden = einops.einsum(W, x, "inst hid feats, ... inst feats -> ... inst hid")
    relu_hidden = einops.einsum(W, torch.relu(hidden), "inst hid feats, ... inst hid -> ... inst feats")
    if torch.allclose(out, torch.relu(relu_hidden + b), atol=1e-5) and not torch.allclose(out, expected, atol=1e-5):
        raise AssertionError("model(x): there is a ReLU on the hidden layer; the hidden layer must stay linear")
    no_bias = einops.einsum(W, hidden, "inst hid feats, ... inst hid -> ... inst feats")
    if torch.allclose(out, torch.relu(no_bias) + b, atol=1e-5):
        raise AssertionError("model(x): b_final must be added before the ReLU, not after it")
    assert_close(out, expected, "model(x)")
    assert_true(out.requires_grad, "model(x): the output must depend on W with gradients (no .detach() or no_grad)")


_check_forward(n_inst=3, n_features=5, n_hidden=2, batch_shape=(10,), seed=0)
### BEGIN HIDDEN TESTS
_check_forward(n_inst=4, n_features=7, n_hidden=3, batch_shape=(2, 6), seed=11)  # two batch dims
_check_forward(n_inst=2, n_features=6, n_hidden=4, batch_shape=(), seed=12)  # a single input
_check_forward(n_inst=1, n_features=3, n_hidden=1, batch_shape=(5,), seed=13)
# Instances must not mix: swapping two instances' weights must swap their outputs and nothing else.
torch.manual_seed(14)
_model = Model(Config(n_inst=3, n_features=4, n_hidden=2))
_x = torch.rand(8, 3, 4)
_out = _model(_x).detach()
with torch.no_grad():
    _model.W.copy_(_model.W[[1, 0, 2]])
    _model.b_final.copy_(_model.b_final[[1, 0, 2]])
_out_swapped = _model(_x[:, [1, 0, 2]]).detach()
assert_close(_out_swapped, _out[:, [1, 0, 2]], "model(x) after swapping instances 0 and 1")
### END HIDDEN TESTS
print("forward: all tests passed")

# %% [markdown] exercise="Generate a batch of sparse features" difficulty=3 importance=3 minutes="10-15"
# Fill in `Model.generate_batch(batch_size)`, which returns a fresh batch `[batch, inst, feats]`.
#
# Every entry $x_{b,i,f}$ is drawn independently:
# * with probability `feature_probability[i, f]` the feature is present, with a value uniform in
#   $[0, 1]$;
# * otherwise it is exactly 0.
#
# So draw two independent tensors of uniforms of the full shape: one for the values, one to decide
# presence (present when it is below the probability). (The course's solution draws one: $u < p$
# decides presence and, given that, $u / p$ is uniform on $[0, 1)$; half the random numbers, and
# drawing them is the costliest part of a training step. Either way passes.) Read the probabilities from
# `self.feature_probability` (`[inst, feats]`; it broadcasts against `[batch, inst, feats]`), and create
# the tensors on `self.W.device`.
#
# The tests draw large batches with a fixed seed and check the shape, the range, the rate of non-zero
# entries of every feature, that the present values are uniform, and that features and instances are
# independent of each other.

# %% [markdown] fold="Hint"
# `torch.rand(shape, device=...)` gives uniforms in $[0, 1)$; `torch.where(mask, values, 0.0)` keeps
# values where the mask is true. Using the *same* uniform, unchanged, both for the value and for the
# presence test is a classic bug: the kept values would then all be below $p$ (divided by $p$ they are
# uniform again).

# %% test="test_generate_batch" points=3
def _check_batch_statistics(model, batch_size, seed):
    """Checks a batch against the specification with deviations of at most ~6 standard errors."""
    torch.manual_seed(seed)
    batch = model.generate_batch(batch_size)
    n_inst, n_feats = model.cfg.n_inst, model.cfg.n_features
    assert_shape(batch, (batch_size, n_inst, n_feats), "generate_batch(batch_size)")
    assert_true(batch.dtype == torch.float32, f"generate_batch: expected float32 values, got {batch.dtype}")
    assert_true(((batch >= 0) & (batch <= 1)).all(), "generate_batch: every value must lie in [0, 1]")

    p = model.feature_probability
    present = (batch > 0).float()
    rate = present.mean(0)  # [inst feats]
    tolerance = 6 * (p * (1 - p) / batch_size).sqrt() + 1e-3
    worst = ((rate - p).abs() - tolerance).flatten().argmax()
    inst, feat = divmod(int(worst), n_feats)
    assert_true(
        ((rate - p).abs() <= tolerance).all(),
        f"generate_batch: instance {inst}, feature {feat} is non-zero in {rate[inst, feat]:.4f} of the batch, "
        f"but its feature_probability is {p[inst, feat]:.4f}",
    )

    values = batch[batch > 0]
    if values.numel() > 1000:  # Kolmogorov-Smirnov distance of the present values from U[0, 1]
        sorted_values = values.sort().values
        uniform_cdf = torch.arange(1, values.numel() + 1) / values.numel()
        ks = (sorted_values - uniform_cdf).abs().max().item()
        assert_true(
            ks < 2.7 / math.sqrt(values.numel()) + 1e-3,
            f"generate_batch: the non-zero values are not uniform on [0, 1] (their largest CDF gap from "
            f"U[0,1] is {ks:.3f}); did you use the same random numbers for the value and the presence test?",
        )

    # Independence: for every pair of features of an instance, and every pair of instances for a feature,
    # both-present should happen with probability p_a * p_b.
    joint_feats = einops.einsum(present, present, "batch inst f_a, batch inst f_b -> inst f_a f_b") / batch_size
    expected_feats = einops.einsum(p, p, "inst f_a, inst f_b -> inst f_a f_b")
    expected_feats = expected_feats + torch.diag_embed(p - p**2)  # a feature with itself: p, not p^2
    tol_feats = 6 * (expected_feats * (1 - expected_feats) / batch_size).sqrt() + 1e-3
    assert_true(
        ((joint_feats - expected_feats).abs() <= tol_feats).all(),
        "generate_batch: features of one instance are not independent (pairs of features are present together "
        "more or less often than p_a * p_b); draw a separate uniform for every (batch, inst, feat) entry",
    )
    joint_inst = einops.einsum(present, present, "batch i_a feats, batch i_b feats -> feats i_a i_b") / batch_size
    p_t = einops.rearrange(p, "inst feats -> feats inst")
    expected_inst = einops.einsum(p_t, p_t, "feats i_a, feats i_b -> feats i_a i_b") + torch.diag_embed(p_t - p_t**2)
    tol_inst = 6 * (expected_inst * (1 - expected_inst) / batch_size).sqrt() + 1e-3
    assert_true(
        ((joint_inst - expected_inst).abs() <= tol_inst).all(),
        "generate_batch: instances are not independent (the same feature is present in two instances together "
        "more or less often than p_a * p_b); draw a separate uniform for every instance",
    )
    return batch


torch.manual_seed(0)
_probs = torch.linspace(0.05, 0.95, 12).reshape(4, 3)  # a different probability for every (instance, feature)
_check_batch_statistics(Model(Config(n_inst=4, n_features=3), feature_probability=_probs), batch_size=20_000, seed=1)
### BEGIN HIDDEN TESTS
torch.manual_seed(21)
_model = Model(Config(n_inst=10, n_features=5), feature_probability=(torch.arange(1, 11) / 11)[:, None])
_check_batch_statistics(_model, batch_size=5000, seed=22)
# Probabilities changed after construction must be used (read the buffer, not a saved copy).
with torch.no_grad():
    _model.feature_probability.copy_(torch.rand(10, 5))
_check_batch_statistics(_model, batch_size=5000, seed=23)
# Edge cases: p = 0 gives exactly zero, p = 1 gives (almost surely) no zeros; ints are accepted.
_edge = Model(Config(n_inst=2, n_features=3), feature_probability=torch.tensor([[0], [1]]))
torch.manual_seed(24)
_edge_batch = _edge.generate_batch(4000)
assert_true((_edge_batch[:, 0] == 0).all(), "generate_batch: a feature with probability 0 must always be 0")
assert_true((_edge_batch[:, 1] > 0).float().mean() > 0.999, "generate_batch: a feature with probability 1 must be present")
_check_batch_statistics(Model(Config(n_inst=1, n_features=20), feature_probability=0.3), batch_size=8000, seed=25)
# Two batches must differ (fresh randomness every call).
assert_true(not torch.equal(_edge.generate_batch(50), _edge.generate_batch(50)), "generate_batch: two calls gave the same batch")
### END HIDDEN TESTS
print("generate_batch: all tests passed")

# %% [markdown] exercise="Implement the loss" difficulty=2 importance=3 minutes="5-10"
# Fill in `Model.calculate_loss(out, batch)`: both arguments are `[batch, inst, feats]`; return a
# scalar (a 0-dimensional tensor).
#
# For instance $k$, with importances $I_{k,f}$ (`self.importance`, `[inst, feats]`), batch size $B$ and
# $n$ features, the loss is the importance-weighted squared error, **averaged** over the batch and the
# features:
#
# $$ L_k = \frac{1}{B\,n} \sum_{b=1}^{B} \sum_{f=1}^{n} I_{k,f} \left(x_{b,k,f} - x'_{b,k,f}\right)^2 ,
# \qquad L = \sum_k L_k . $$
#
# The total is the **sum** over instances.

# %% [markdown] fold="Why mean over batch and features, but a sum over instances?"
# * **Mean over the batch**: the size of the gradient, and so the right learning rate, does not depend
#   on the batch size.
# * **Mean over the features**: the usual mean-squared-error convention. The paper writes a plain sum
#   over features, which is the same loss times $n$; with Adam the scale of the loss hardly matters, but
#   the learning rate of $10^{-3}$ used throughout the course was chosen with the mean.
# * **Sum over instances**: the instances share no parameters, so the gradient of $L_k$ only reaches
#   instance $k$. Summing keeps every instance's gradient exactly what it would be if it were trained
#   alone; a mean would divide each by the number of instances.

# %% test="test_calculate_loss" points=2
def _check_loss(n_inst, n_features, batch_size, importance, seed):
    torch.manual_seed(seed)
    model = Model(Config(n_inst=n_inst, n_features=n_features), importance=importance)
    batch = torch.rand(batch_size, n_inst, n_features)
    out = torch.rand(batch_size, n_inst, n_features, requires_grad=True)
    loss = model.calculate_loss(out, batch)
    error = model.importance * (batch - out.detach()) ** 2
    per_inst = error.mean(dim=(0, 2))
    assert_shape(loss, (), "calculate_loss(out, batch)")
    if n_inst > 1 and torch.allclose(loss.detach(), per_inst.mean(), rtol=1e-4):
        raise AssertionError("calculate_loss: you averaged over instances; the total is their sum")
    if n_features > 1 and torch.allclose(loss.detach(), per_inst.sum() * n_features, rtol=1e-4):
        raise AssertionError("calculate_loss: you summed over features; the course averages over them")
    assert_close(loss, per_inst.sum(), "calculate_loss(out, batch)")
    loss.backward()
    assert_true(out.grad is not None and out.grad.abs().sum() > 0, "calculate_loss: the loss must be differentiable in out")


_check_loss(n_inst=10, n_features=5, batch_size=20, importance=None, seed=0)
_check_loss(n_inst=10, n_features=5, batch_size=20, importance=torch.rand(10, 5), seed=1)
### BEGIN HIDDEN TESTS
_check_loss(n_inst=3, n_features=7, batch_size=33, importance=0.9 ** torch.arange(7), seed=31)
_check_loss(n_inst=1, n_features=4, batch_size=5, importance=2.0, seed=32)
_check_loss(n_inst=6, n_features=1, batch_size=9, importance=torch.rand(6, 1), seed=33)
# The importance buffer must be read when the loss is computed.
torch.manual_seed(34)
_model = Model(Config(n_inst=2, n_features=3))
with torch.no_grad():
    _model.importance.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]))
_batch, _out = torch.rand(8, 2, 3), torch.rand(8, 2, 3)
_expected = (_model.importance * (_batch - _out) ** 2).mean(dim=(0, 2)).sum()
assert_close(_model.calculate_loss(_out, _batch), _expected, "calculate_loss with importance changed after construction")
### END HIDDEN TESTS
print("calculate_loss: all tests passed")

# %% [markdown]
# ## Training
#
# `optimize` (given, in the class above) trains all instances together with Adam. Every step draws a
# **fresh** batch from `generate_batch`: the model never sees the same data twice, so there is no
# overfitting to think about, only how well the model can represent the distribution. The learning rate
# is multiplied by `lr_scale(step, steps)` at every step (`constant_lr`, `linear_lr` or
# `cosine_decay_lr`), and the progress bar shows the loss divided by the number of instances, that is,
# the loss of an average instance. It uses Adam's fused kernel and, for tensors this small, one
# thread: handing ~40,000 numbers to a second thread costs more than it saves.
#
# ### Five features in two dimensions
#
# We train 8 instances with $n = 5$ features and $m = 2$ hidden dimensions. Within an instance every
# feature has the same probability $p$, and $p$ falls from 1 (every feature always present) in
# instance 0 to $50^{-1} = 0.02$ in instance 7, evenly on a log scale: $p_k = 50^{-t_k}$ with
# $t = (0, \tfrac17, \dots, 1)$. The importance is the same in every instance and decays with the
# feature index, $I_f = 0.9^f$, from 1 down to $0.9^4 \approx 0.66$.

# %%
cfg = Config(n_inst=8, n_features=5, n_hidden=2)
importance = 0.9 ** torch.arange(cfg.n_features)  # [feats], the same for every instance
feature_probability = 50 ** -torch.linspace(0, 1, cfg.n_inst)  # [inst], the same for every feature

plot_lines(importance, title="Importance of each feature", x_label="feature", y_label="importance", width=450).show()
plot_lines(
    feature_probability, title="Feature probability p = 1 - S of each instance", x_label="instance",
    y_label="feature probability", log_y=True, width=450,
).show()

# %% [markdown]
# Left: the importances (the colour of each feature in the plots below). Right: the feature probability
# of each instance, on a log scale; instance 0 is dense, instance 7 very sparse.
#
# Training takes about a second per thousand steps. In `FAST` mode we take 3,000 steps with a
# higher learning rate that decays to 0 along a quarter cosine; the full run uses the paper's settings
# (10,000 steps at a constant $10^{-3}$). Both end in the same configurations.

# %% skip_grading=true
STEPS_2D = 3_000 if FAST else 10_000
LR_2D, LR_SCALE_2D = (1e-2, cosine_decay_lr) if FAST else (1e-3, constant_lr)

torch.manual_seed(SEED)
model = Model(
    cfg,
    feature_probability=einops.rearrange(feature_probability, "inst -> inst 1"),
    importance=importance,
    device=device,
)
history = model.optimize(steps=STEPS_2D, lr=LR_2D, lr_scale=LR_SCALE_2D)
plot_lines(
    history["loss"], x=history["step"], title="Training loss (average over instances)", x_label="step",
    y_label="loss", log_y=True, markers=False,
).show()

# %% [markdown]
# ### What the 8 models learned
#
# Each panel is one instance, from dense (left) to sparse (right). An arrow is a column $W_i$: the
# direction in which feature $i$ is stored in the 2-D hidden space, its length how strongly.
# Colour is importance (yellow = most important); hover over a tip to read the feature's index, norm
# and importance. Remember that the hidden space has no preferred axes: only the lengths and angles mean
# anything, so the same picture rotated is the same model.

# %%  skip_grading=true
subplot_titles = [f"1 − S = {p:.3f}" for p in feature_probability.tolist()]
plot_features_in_2d(
    model.W,
    colors=importance,
    importance=importance,
    color_label="importance",
    titles=subplot_titles,
    title="Feature directions of 5 features in 2 dimensions, dense (left) to sparse (right)",
    n_rows=2,
).show()

# %% [markdown]
# What to notice:
#
# * **Dense** ($p = 1$): exactly two features are represented, the two most important ones, at right
#   angles and with length 1. The other three have length 0: the model gives up on them entirely. This
#   is what PCA would do; no superposition.
# * **Sparse** ($p = 0.02$): all five features are represented with equal length, at angles of
#   $360°/5 = 72°$, a **regular pentagon**. Five features share two dimensions.
# * **In between**: the number of represented features grows from 2 to 5 as $p$ falls, often with
#   some features collapsed onto others or only partly represented.
#
# (These are the results for `SEED = 0`. Training finds a local optimum, and with another seed an
# instance occasionally settles in a different one, for example 4 features where 5 would be best.)
#
# The next cell measures this: a feature counts as represented when $\lVert W_i \rVert > 0.5$, and for
# the sparsest instance we sort the represented features by angle and compare each gap with 72°.

# %% skip_grading=true
def angle_gaps_deg(W_inst: Float[Tensor, "2 feats"], threshold: float = 0.5) -> Float[Tensor, "n_represented"]:
    """Angles (degrees) between neighbouring represented features, going once around the circle."""
    represented = W_inst.norm(dim=0) > threshold
    angles = torch.atan2(W_inst[1, represented], W_inst[0, represented]).rad2deg().sort().values
    return torch.cat([angles.diff(), angles[:1] + 360 - angles[-1:]])


W_2d = model.W.detach().cpu()
norms_2d = W_2d.norm(dim=1)  # [inst feats]
n_represented = (norms_2d > 0.5).sum(dim=1)  # [inst]
for k in range(cfg.n_inst):
    print(f"instance {k} (p = {feature_probability[k]:.3f}): {n_represented[k]} features represented, norms {[round(x, 2) for x in norms_2d[k].tolist()]}")

gaps_sparse = angle_gaps_deg(W_2d[-1])
pentagon_features_represented = int(n_represented[-1])
pentagon_max_angle_error_deg = float((gaps_sparse - 72).abs().max())
dense_features_represented = int(n_represented[0])
print(f"\nsparsest instance: bias b = {[round(x, 2) for x in model.b_final[-1].tolist()]}")
print(f"sparsest instance: angle gaps {[round(g, 1) for g in gaps_sparse.tolist()]}, largest error from 72°: {pentagon_max_angle_error_deg:.2f}°")

# %% [markdown]
# ### Question: interpret these diagrams
#
# *(difficulty 3/5, importance 4/5, about 10 minutes: write your answer down before opening ours.)*
#
# 1. Why does the dense model represent only two features, and why *these* two?
# 2. Why does the sparse model represent all five, and why does it place them at equal angles instead
#    of, say, packing them into a half-circle?
# 3. In the pentagon, two features at 72° interfere: when both are present, each leaks into the
#    other's output. Why is that acceptable at $p = 0.02$ but not at $p = 1$?
# 4. The pentagon's features are longer than 1 (about 1.15). What do you think the bias $b$ is doing?

# %% [markdown] fold="Answer"
# The model trades **feature benefit** (the loss it saves by representing a feature at all) against
# **interference** (the loss it pays when a represented feature leaks into others).
#
# 1. With every feature always present, any two non-orthogonal directions interfere on every input,
#    and two dimensions hold only two orthogonal directions. The model keeps the two features whose
#    errors cost most, the two most important ones (features 0 and 1), and zeroes the rest, the same
#    choice as PCA. A zero column costs that feature's importance times its variance, but nothing else.
# 2. When features are rarely present, most inputs contain at most one of them, and then
#    interference costs nothing: the ReLU and a small negative bias clip the small leaks into other
#    features. Representing a feature now has a large benefit and a small expected cost, so all five
#    get a direction. Equal angles make the worst interference as small as possible (a half-circle
#    would put some features much closer together than 72°); the importances are close enough here
#    that the symmetric solution wins.
# 3. The cost of interference is paid only when two features are present at once, which happens with
#    probability about $p^2$, while the benefit of representing a feature scales with $p$. At
#    $p = 0.02$ the ratio $p^2/p = p$ is tiny; at $p = 1$ interference is paid on every input.
# 4. The bias is negative (printed above, about $-0.26$ in every feature of the sparsest instance), so
#    the ReLU cuts any leak smaller than $|b|$ to zero: a neighbour at 72° leaks
#    $1.15^2 \cos 72° \approx 0.41$ times its value, which is wiped out for most values. The longer
#    weights make up for the bias on the feature itself: a present feature comes out as about
#    $1.15^2 x - 0.26 \approx 1.32x - 0.26$, close to $x$ for large values and too small for small ones,
#    a price worth paying because interference is removed.

# %% [markdown]
# ### The hidden space, seen through a batch
#
# Another view of the same models: take 200 inputs, map each to its hidden vector $h = W x$, and plot
# these points (grey) over the feature directions (faded).

# %% skip_grading=true
torch.manual_seed(SEED)
with torch.no_grad():
    batch_2d = model.generate_batch(200)
    hidden_2d = einops.einsum(model.W, batch_2d, "inst hid feats, batch inst feats -> inst hid batch")
plot_features_in_2d(
    model.W, colors=importance, importance=importance, color_label="importance", titles=subplot_titles,
    points=hidden_2d, title="Hidden vectors h = Wx of 200 inputs (grey) and the feature directions", n_rows=2,
).show()

# %% [markdown]
# In the dense models the points fill a region: many features are present in every input, and their
# contributions add up. In the sparse models almost every point lies **on one of the feature
# directions**, because an input usually contains at most one feature, and its hidden vector is just
# that feature's direction scaled by its value. The points near the origin are inputs with no feature
# at all; points off the directions are the rarer inputs with two features present at once, where
# interference happens.
#
# ## Many features in more dimensions
#
# Two dimensions allow pretty pictures but few geometries. We now take $n = 80$ features in $m = 20$
# dimensions, importance $I_f = 0.9^f$ (feature 0 most important) and 7 instances with
# $p \in \{1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001\}$, the settings of the paper's figure of this
# experiment. Arrows no longer work, so we look at two other pictures per instance:
#
# * **top**, the matrix $W^\top W$ (80 × 80): its diagonal is $\lVert W_i \rVert^2$, its off-diagonal
#   entries the interference between pairs of features (red positive, blue negative);
# * **bottom**, the length $\lVert W_i \rVert$ of every feature, coloured by how much it shares its
#   direction with the others, $\sqrt{\sum_{j \ne i} (\hat W_i \cdot W_j)^2}$ with
#   $\hat W_i = W_i / \lVert W_i \rVert$: dark means orthogonal to every other feature, light means in
#   superposition.

# %% skip_grading=true
cfg_nd = Config(n_inst=7, n_features=80, n_hidden=20)
probs_nd = torch.tensor([1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001])
importance_nd = 0.9 ** torch.arange(cfg_nd.n_features)
STEPS_ND = 2_000 if FAST else 10_000
LR_ND, LR_SCALE_ND = (1e-2, cosine_decay_lr) if FAST else (1e-3, constant_lr)

torch.manual_seed(SEED)
model_nd = Model(
    cfg_nd, feature_probability=einops.rearrange(probs_nd, "inst -> inst 1"), importance=importance_nd, device=device
)
model_nd.optimize(steps=STEPS_ND, lr=LR_ND, lr_scale=LR_SCALE_ND)

# %% skip_grading=true
plot_features_in_Nd(
    model_nd.W,
    titles=[f"1 − S = {p:g}" for p in probs_nd.tolist()],
    title="80 features in 20 dimensions: W<sup>T</sup>W (top) and feature norms (bottom), dense to sparse",
    height=600,
).show()

W_nd = model_nd.W.detach().cpu().double()  # float64, so that the rank is not blurred by rounding errors
norms_nd, interference_nd = feature_norms_and_polysemanticity(W_nd)
represented_nd = norms_nd > 0.5
nd_features_represented = represented_nd.sum(dim=1).tolist()
nd_superposed = ((interference_nd > 0.25) & represented_nd).sum(dim=1).tolist()
gram_nd = einops.einsum(W_nd, W_nd, "inst hid f_i, inst hid f_j -> inst f_i f_j")
nd_gram_rank = torch.linalg.matrix_rank(gram_nd).tolist()
for k, p in enumerate(probs_nd.tolist()):
    print(f"p = {p:<6g}: {nd_features_represented[k]:2d} features with norm > 0.5, {nd_superposed[k]:2d} of them with interference > 0.25, rank of W^T W = {nd_gram_rank[k]}")

# %% [markdown]
# What to notice:
#
# * **Dense** ($p = 1$): about 20 features, the 20 most important, have norm 1, and $W^\top W$ is an
#   identity on them and zero elsewhere: one feature per dimension, as in the 2-D case.
# * **Sparser**: more and more features are represented (the bars extend to the right), their colours
#   turn light (they interfere), and $W^\top W$ gains off-diagonal structure: features now share
#   dimensions. At the sparsest end several times more features than dimensions are stored. Look for
#   dark blue entries close to $-1$ at intermediate sparsity: pairs of features stored in opposite
#   directions (*antipodal* pairs), the 2-feature analogue of the pentagon; section 4 counts them.
# * Whatever the sparsity, **$W^\top W$ has rank at most 20** (the printed ranks): an 80 × 80 matrix
#   of dot products of 20-dimensional vectors. Superposition is the model using that rank budget for
#   more than 20 features.
#
# ## Bonus: one feature becomes rarer
#
# So far all features of an instance had the same probability. What happens to the pentagon when *one*
# feature becomes rarer than the others? All features get $p = 0.05$ and equal importance, except
# feature 0, whose probability is multiplied by $16/16, 15/16, \dots, 1/16$: 16 settings.
#
# Near a change of geometry two configurations have almost the same loss, and which one training
# reaches depends on the random initialisation. So, like the paper, we train several models per
# setting (4 seeds, as extra instances: `inst = 4 × 16`) and keep the one with the lowest loss.
# (The original exercise trains 25,000 steps; 10,000 are enough here, as for the pentagon above.)

# %% skip_grading=true
N_SEEDS, N_SETTINGS = 4, 16
multiplier = torch.linspace(0, 1, N_SETTINGS + 1)[1:].flip(0)  # 16/16, 15/16, ..., 1/16
probs_setting = torch.full((N_SETTINGS, 5), 0.05)
probs_setting[:, 0] = 0.05 * multiplier
cfg_rare = Config(n_inst=N_SEEDS * N_SETTINGS, n_features=5, n_hidden=2)
STEPS_RARE = 3_000 if FAST else 10_000
LR_RARE, LR_SCALE_RARE = (1e-2, cosine_decay_lr) if FAST else (1e-3, constant_lr)

torch.manual_seed(SEED)
model_rare = Model(
    cfg_rare,
    feature_probability=einops.repeat(probs_setting, "setting feats -> (seed setting) feats", seed=N_SEEDS),
    device=device,
)
model_rare.optimize(steps=STEPS_RARE, lr=LR_RARE, lr_scale=LR_SCALE_RARE)

# Compare the seeds of each setting on the same large batch, and keep the best one.
torch.manual_seed(SEED)
with torch.no_grad():
    batch_rare = model_rare.generate_batch(20_000)[:, :N_SETTINGS]  # the first seed's instances: one per setting
    batch_rare = einops.repeat(batch_rare, "batch setting feats -> batch (seed setting) feats", seed=N_SEEDS)
    error = model_rare.importance * (batch_rare - model_rare(batch_rare)) ** 2
    loss_rare = einops.reduce(error, "batch (seed setting) feats -> seed setting", "mean", seed=N_SEEDS).cpu()
W_rare_all = einops.rearrange(model_rare.W.detach().cpu(), "(seed setting) hid feats -> seed setting hid feats", seed=N_SEEDS)
best_seed = loss_rare.argmin(dim=0)  # [setting]
W_rare = W_rare_all[best_seed, torch.arange(N_SETTINGS)]  # [setting hid feats]

# %% skip_grading=true
relative_p = probs_setting / probs_setting.amax(dim=1, keepdim=True)
plot_features_in_2d(
    W_rare,
    colors=relative_p,
    color_label="p / max p",
    titles=[f"p₀ = 0.05 × {N_SETTINGS - k}/16" for k in range(N_SETTINGS)],
    title="Feature 0 (dark) becomes rarer from left to right, top to bottom (best of 4 seeds)",
    n_rows=2,
).show()
norms_rare = W_rare.norm(dim=1)  # [setting feats]
rare_feature_norm = norms_rare[:, 0]
rare_features_represented = (norms_rare > 0.5).sum(dim=1)
n_represented_all = (W_rare_all.norm(dim=2) > 0.5).sum(dim=-1)  # [seed setting]
for k in range(N_SETTINGS):
    gaps = angle_gaps_deg(W_rare[k])
    print(
        f"p0 = 0.05 x {N_SETTINGS - k:2d}/16: seeds ending with 5 features: {int((n_represented_all[:, k] == 5).sum())} of {N_SEEDS}; "
        f"best: {rare_features_represented[k]} features, norm of feature 0 = {rare_feature_norm[k]:.2f}, "
        f"angle gaps {[round(g) for g in gaps.tolist()]}"
    )

# %% [markdown]
# While feature 0 is only a little rarer, the best model keeps all five features, but the pentagon is
# no longer regular: the gaps on either side of the rare feature shrink (a rarer feature interferes
# less, so its neighbours can come closer to it) and the other gaps widen. Below some frequency the
# best model **drops** the rare feature (norm near 0), and the other four rearrange into a **square**,
# four gaps of 90°. The paper calls this a *phase change*: as the frequency crosses a critical value,
# the best geometry jumps from one configuration to another instead of changing smoothly.
#
# The seed counts show why we kept the best of several runs: on both sides of the change, some seeds
# end in the other configuration, a local optimum that training cannot leave. A single run per setting
# would show pentagons and squares mixed along the row.
#
# ## Bonus: recover the importances by backpropagation
#
# Importance is part of the *loss*, not of the model; but a trained model reflects it (the dense
# models kept the two most important features). Can we read the importances back out of a trained
# model with gradients? This is also a first taste of *attribution*, asking the loss how much each
# feature matters to it.
#
# A natural first try puts a gain $g_f$ on each output feature, $x'_f \to g_f\, x'_f$, and asks for
# $\partial L / \partial g_f$ at $g = 1$. That derivative is
# $-\tfrac{2}{Bn}\sum_b I_f\,(x_f - x'_f)\,x'_f$: importance times the correlation between the model's
# **error** and its output. For a model trained to a minimum this correlation is close to zero (the
# residual of a good fit is uncorrelated with the fit), so the gradient is mostly noise, whatever the
# importance.
#
# Instead we linearise around the **ablated** model: $g = 0$, every output switched off. Then
#
# $$ -\frac{\partial L}{\partial g_f}\Big|_{g=0} = \frac{2}{Bn} \sum_b I_f\, x_f\, x'_f , $$
#
# the first-order drop in the loss from switching feature $f$'s output back on. It is the importance
# $I_f$ times $\mathbb{E}[x_f x'_f]$, how much of feature $f$ the model actually reconstructs. In an
# instance that reconstructs every feature equally well (the pentagon: equal norms, equal probabilities)
# its ranking is exactly the ranking of the importances; in an instance that ignores a feature it
# sees only what the output bias gives that feature.
#
# To compare rankings we use the **Spearman rank correlation**: replace each value by its rank and take
# the Pearson correlation of the ranks (1 = same order, −1 = reversed).

# %% [markdown] exercise="Spearman rank correlation" difficulty=2 importance=1 minutes="10-15"
# Write `spearman(x, y)`: `x` and `y` are `[..., n]`; return `[...]`, the Spearman correlation along the
# last dimension.
#
# * Rank each vector: the smallest value gets rank 1, the largest rank $n$, and **tied values share
#   the mean of the ranks they occupy** (e.g. `[5, 1, 5]` → `[2.5, 1, 2.5]`).
# * Return the Pearson correlation of the two rank vectors:
#   $\dfrac{\sum_i (r_i - \bar r)(s_i - \bar s)}{\sqrt{\sum_i (r_i - \bar r)^2}\,\sqrt{\sum_i (s_i - \bar s)^2}}$.
#
# No scipy: torch only. Vectors of a few hundred entries are enough here, so comparing all pairs is
# fine.

# %% [markdown] fold="Hint"
# With `a = x[..., :, None]` and `b = x[..., None, :]` (`einops.rearrange` does this), the rank of
# entry $i$ is (number of entries smaller than it) + (number equal to it, itself included, plus 1) / 2.

# %%
def spearman(x: Float[Tensor, "... n"], y: Float[Tensor, "... n"]) -> Float[Tensor, "..."]:
    ### BEGIN SOLUTION
    def average_ranks(v: Float[Tensor, "... n"]) -> Float[Tensor, "... n"]:
        v_i = einops.rearrange(v, "... n -> ... n 1")
        v_j = einops.rearrange(v, "... n -> ... 1 n")
        n_smaller = (v_j < v_i).sum(-1)
        n_equal = (v_j == v_i).sum(-1)  # includes the entry itself
        return n_smaller + (n_equal + 1) / 2

    r_x, r_y = average_ranks(x.float()), average_ranks(y.float())
    r_x = r_x - r_x.mean(-1, keepdim=True)
    r_y = r_y - r_y.mean(-1, keepdim=True)
    return (r_x * r_y).sum(-1) / (r_x.norm(dim=-1) * r_y.norm(dim=-1))
    ### END SOLUTION
    ### BEGIN STUB
    # ranks_x = ...  # [..., n], ties share their mean rank
    # ranks_y = ...
    # return ...  # Pearson correlation of the ranks, [...]
    ### END STUB


# %% test="test_spearman" points=2
def _reference_spearman(x, y):
    """A slow, loop-based reference for 1-D inputs."""

    def ranks(v):
        return torch.tensor([float((v < a).sum()) + (float((v == a).sum()) + 1) / 2 for a in v])

    r, s = ranks(x), ranks(y)
    r, s = r - r.mean(), s - s.mean()
    return float((r * s).sum() / (r.norm() * s.norm()))


assert_close(spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 25.0, 100.0])), 1.0, "spearman of the same order")
assert_close(spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])), -1.0, "spearman of reversed order")
_x, _y = torch.tensor([5.0, 1.0, 5.0, 2.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])
assert_close(spearman(_x, _y), _reference_spearman(_x, _y), "spearman with a tie (ties share their mean rank)")
torch.manual_seed(0)
_x, _y = torch.randn(3, 10), torch.randn(3, 10)
assert_close(spearman(_x, _y), torch.tensor([_reference_spearman(a, b) for a, b in zip(_x, _y)]), "spearman over a batch [3, 10]")
### BEGIN HIDDEN TESTS
torch.manual_seed(41)
_x = torch.randint(0, 4, (2, 5, 12)).float()  # many ties
_y = torch.randn(2, 5, 12)
_expected = torch.tensor([[_reference_spearman(a, b) for a, b in zip(xs, ys)] for xs, ys in zip(_x, _y)])
assert_close(spearman(_x, _y), _expected, "spearman with many ties, shape [2, 5, 12]")
assert_close(spearman(_y, _x), _expected, "spearman(y, x) must equal spearman(x, y)")
_z = torch.randn(50)
assert_close(spearman(_z, _z.exp()), 1.0, "spearman is invariant under increasing transformations")
assert_close(spearman(_z, -(_z**3)), -1.0, "spearman of a decreasing transformation")
### END HIDDEN TESTS
print("spearman: all tests passed")

# %% [markdown] exercise="Importance from gradients" difficulty=3 importance=2 minutes="15-25"
# Write `importance_from_gradients(model, n_batches, batch_size)` → `[inst, feats]`.
#
# * Create a gain `[inst, feats]` of **zeros** that requires gradients.
# * For each of `n_batches` batches from `model.generate_batch(batch_size)` (draw nothing else at
#   random, so the tests can replay the same batches): compute the output `model(batch) * gain`, the
#   loss `model.calculate_loss(output, batch)`, and the gradient of the loss with respect to the gain
#   (`torch.autograd.grad`).
# * Return **minus** the gradient averaged over the batches (so that larger = more important).
#
# Do not call `loss.backward()` on the model's parameters: we only want the gradient for the gain.

# %%
def importance_from_gradients(model: Model, n_batches: int = 10, batch_size: int = 1024) -> Float[Tensor, "inst feats"]:
    ### BEGIN SOLUTION
    gain = torch.zeros(model.cfg.n_inst, model.cfg.n_features, device=model.W.device, requires_grad=True)
    total = torch.zeros_like(gain)
    for _ in range(n_batches):
        batch = model.generate_batch(batch_size)
        loss = model.calculate_loss(model(batch) * gain, batch)
        (grad,) = torch.autograd.grad(loss, gain)
        total += grad
    return -total / n_batches
    ### END SOLUTION
    ### BEGIN STUB
    # gain = ...  # [inst feats], zeros, requires_grad=True
    # ...
    # return ...  # minus the mean gradient, [inst feats]
    ### END STUB


# %% test="test_importance_from_gradients" points=2
def _check_importance_from_gradients(n_inst, n_features, n_hidden, importance, n_batches, batch_size, seed):
    torch.manual_seed(seed)
    model = Model(Config(n_inst, n_features, n_hidden), feature_probability=0.5, importance=importance)
    with torch.no_grad():
        model.b_final.copy_(torch.randn(n_inst, n_features) * 0.1)
    torch.manual_seed(seed + 1)
    estimate = importance_from_gradients(model, n_batches=n_batches, batch_size=batch_size)
    assert_shape(estimate, (n_inst, n_features), "importance_from_gradients(model)")
    torch.manual_seed(seed + 1)  # replay the same batches
    expected = torch.zeros(n_inst, n_features)
    with torch.no_grad():
        for _ in range(n_batches):
            batch = model.generate_batch(batch_size)
            products = model.importance * batch * model(batch)  # I_f x_f x'_f
            expected += 2 * einops.reduce(products, "batch inst feats -> inst feats", "sum") / (batch_size * n_features)
    expected /= n_batches
    if torch.allclose(estimate, -expected, rtol=1e-3, atol=1e-6):
        raise AssertionError("importance_from_gradients: the sign is flipped; return minus the gradient")
    if n_batches > 1 and torch.allclose(estimate, expected * n_batches, rtol=1e-3, atol=1e-6):
        raise AssertionError("importance_from_gradients: average the gradients over batches instead of summing them")
    assert_close(estimate, expected, "importance_from_gradients(model)", atol=1e-6, rtol=1e-3)
    assert_true(all(p.grad is None for p in model.parameters()), "importance_from_gradients: do not backpropagate into the model's parameters")


_check_importance_from_gradients(n_inst=3, n_features=5, n_hidden=2, importance=0.9 ** torch.arange(5), n_batches=4, batch_size=64, seed=0)
### BEGIN HIDDEN TESTS
_check_importance_from_gradients(n_inst=2, n_features=8, n_hidden=3, importance=torch.rand(2, 8), n_batches=1, batch_size=100, seed=51)
_check_importance_from_gradients(n_inst=5, n_features=3, n_hidden=2, importance=None, n_batches=3, batch_size=17, seed=52)
### END HIDDEN TESTS
print("importance_from_gradients: all tests passed")

# %% [markdown]
# Now apply it to the 8 trained models of 5 features in 2-D. For comparison we also compute the
# naive gradient at gain 1.

# %% skip_grading=true
torch.manual_seed(SEED)
estimated_importance = importance_from_gradients(model, n_batches=20, batch_size=4096).cpu()  # [inst feats]


def gradient_at_gain_one(model: Model, n_batches: int = 20, batch_size: int = 4096) -> Float[Tensor, "inst feats"]:
    gain = torch.ones(model.cfg.n_inst, model.cfg.n_features, device=model.W.device, requires_grad=True)
    total = torch.zeros_like(gain)
    for _ in range(n_batches):
        batch = model.generate_batch(batch_size)
        total += torch.autograd.grad(model.calculate_loss(model(batch) * gain, batch), gain)[0]
    return -total / n_batches


naive_estimate = gradient_at_gain_one(model).cpu()
true_importance = model.importance.cpu()
rho_ablation = spearman(estimated_importance, true_importance)  # [inst]
rho_naive = spearman(naive_estimate, true_importance)
for k in range(cfg.n_inst):
    print(f"instance {k} (p = {feature_probability[k]:.3f}): Spearman at gain 0 = {rho_ablation[k]:+.2f}, at gain 1 = {rho_naive[k]:+.2f}")
importance_grad_spearman = float(rho_ablation.mean())
print(f"\nmean over instances: gain 0 {importance_grad_spearman:+.2f}, gain 1 {float(rho_naive.mean()):+.2f}")
print(f"typical size of the gradient: gain 0 {estimated_importance.abs().mean():.2e}, gain 1 {naive_estimate.abs().mean():.2e}")

shown = [0, cfg.n_inst // 2, cfg.n_inst - 1]
curves = torch.cat([true_importance[:1], estimated_importance[shown] / estimated_importance[shown].amax(dim=1, keepdim=True)])
plot_lines(
    curves,
    names=["true importance"] + [f"estimate, p = {feature_probability[k]:.3f}" for k in shown],
    title="Importance estimated at gain 0, scaled to a maximum of 1",
    x_label="feature",
    y_label="importance (relative)",
    width=650,
).show()

# %% [markdown]
# At gain 0 the estimate follows the true importance closely. At the sparse end every feature is
# reconstructed alike, so the estimate is proportional to the importance (the curves overlap) and the
# rank correlation is 1. At the dense end the estimate falls much faster than the importance after
# feature 1: the three features the model ignores are "reconstructed" only by the constant bias, so
# their factor $\mathbb{E}[x_f x'_f]$ is small; their ranking survives because those biases are
# nearly equal. The rank correlation drops below 1 only where the model keeps a less important
# feature and (partly) drops a more important one (compare with the norms printed earlier): the
# estimate then ranks the dropped feature low.
#
# At gain 1 the gradient is about a hundred times smaller, and its order does not follow the
# importances (its rank correlation changes from instance to instance and is often negative): what is
# left there are the small systematic over- and undershoots of a model whose encoder and decoder are
# tied, not a measure of importance.
#
# The general lesson, which returns in section 7: a gradient-based attribution measures importance
# *as the model uses it*: the loss's sensitivity times what the model does with the feature. A feature
# the model ignores looks unimportant, however much the loss cares about it.

# %% [markdown]
# ## Summary
#
# * A layer can store more features than it has dimensions by giving them non-orthogonal directions.
#   The cost is interference, paid only when features are present together.
# * Dense features: the model keeps the $m$ most important ones, orthogonally. Sparse features: it
#   keeps more, in symmetric arrangements (a pentagon for 5 features in 2-D).
# * $W^\top W$ summarises the geometry; its rank never exceeds $m$, however many features share it.
# * Changing one feature's frequency can make the geometry jump between configurations (a phase change).
#
# Next, section 2 asks how *correlations* between features change these geometries, and section 3 adds
# a ReLU to the hidden layer, where neurons become meaningful.

# %% skip_grading=true
save_results(
    1,
    {
        "pentagon_features_represented": pentagon_features_represented,
        "pentagon_max_angle_error_deg": round(pentagon_max_angle_error_deg, 3),
        "pentagon_mean_norm": round(float(norms_2d[-1][norms_2d[-1] > 0.5].mean()), 4),
        "dense_features_represented": dense_features_represented,
        "features_represented_per_instance_2d": n_represented.tolist(),
        "nd_features_represented": nd_features_represented,
        "nd_superposed_features": nd_superposed,
        "nd_gram_rank": nd_gram_rank,
        "rare_feature_norm": [round(x, 4) for x in rare_feature_norm.tolist()],
        "rare_seeds_with_5_features": (n_represented_all == 5).sum(dim=0).tolist(),
        "rare_features_represented": rare_features_represented.tolist(),
        "importance_grad_spearman": round(importance_grad_spearman, 4),
        "importance_grad_spearman_per_instance": [round(x, 4) for x in rho_ablation.tolist()],
        "importance_grad_spearman_gain_one": round(float(rho_naive.mean()), 4),
        "fast": FAST,
    },
)
