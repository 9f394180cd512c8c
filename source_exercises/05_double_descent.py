# ---
# title: "Superposition, memorisation and deep double descent"
# short_title: "Double descent"
# essential: false
# prerequisites: [1, 4]
# minutes: 75
# colab_requires: ["einops==0.8.2", "jaxtyping"]
# ---

# %% [markdown]
# # Superposition, memorisation and deep double descent
#
# Until now every toy model saw a fresh batch at every step: an endless supply of data. Real models
# see a finite dataset many times. Henighan et al. (2023), *Superposition, Memorization, and Double
# Descent*, trained the toy model of section 1 on a **fixed training set of $T$ examples** and varied
# $T$. They found:
#
# * **Small $T$ — memorisation.** The model fits its few training points (almost) exactly. What it
#   stores in superposition is not the features but the **datapoints**: the hidden vectors $h = Wx$ of
#   the training examples spread out into a regular polygon, one direction per example, as the
#   features did in section 1.
# * **Large $T$ — generalisation.** The model learns the features themselves, in superposition, as
#   with infinite data, and the datapoints' hidden vectors no longer have directions of their own.
# * **In between — a bump in the test loss.** Around the transition, the loss on *new* data is worse
#   than at both smaller and larger $T$: more data makes the model worse before it makes it better.
#   This is *data double descent*, seen in large networks too.
#
# The public course this one is modelled on trained these models but never measured a held-out
# loss, so the double-descent curve itself never appeared. Here it will: you will build the dataset
# generator, the learning-rate schedule and a training loop that trains models on datasets of
# different sizes **all at once**, then measure train and test loss for a sweep of $T$ and look at
# the geometry on both sides of the peak.
#
# **Setup.** $n$ features, $m = 2$ hidden dimensions (so that we can draw the hidden space),
# $x' = \operatorname{ReLU}(W^\top W x + b)$ as before. Each feature is non-zero with probability $p$;
# each example is then scaled to unit length (as in the paper), so every non-zero example has
# $\|x\| = 1$.

# %% tags=["parameters"]
FAST = False
SEED = 0

# %%
import math
import sys
import time

import einops
import numpy as np
import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from plotly.subplots import make_subplots
from torch import Tensor
from tqdm import tqdm

from course_helpers.toy_model import Config, Model
from course_helpers.geometry import compute_dimensionality
from course_helpers.plots import SEQUENTIAL
from coursepress.testing import assert_close, assert_shape, assert_true
from coursepress.results import save_results

torch.manual_seed(SEED)
device = "cpu"

N_HIDDEN = 2
LR, WEIGHT_DECAY, N_TEST = 1e-2, 1e-2, 5000
if FAST:  # ~10 active features per example in both modes: n * p = 10
    N_FEATURES, FEATURE_PROB, N_SEEDS, STEPS, WARMUP_STEPS = 200, 0.05, 4, 1000, 100
    DATASET_SIZES = [5, 10, 20, 30, 50, 70, 100, 200, 500, 1000]
else:
    N_FEATURES, FEATURE_PROB, N_SEEDS, STEPS, WARMUP_STEPS = 1000, 0.01, 5, 1000, 100
    DATASET_SIZES = [5, 8, 10, 15, 20, 30, 50, 70, 100, 150, 200, 250, 300, 500, 1000]
print(f"n = {N_FEATURES} features, m = {N_HIDDEN}, p = {FEATURE_PROB}; {len(DATASET_SIZES)} dataset sizes "
      f"x {N_SEEDS} seeds, {STEPS} steps each")

# %% [markdown]
# ## 1. A fixed, seeded dataset
#
# A training set here is a tensor `[examples, inst, feats]`: `T` examples for each instance. Every
# instance gets **its own** examples (independent draws), so that the instances trained in parallel
# are really independent experiments. The dataset must be **fixed**: the same arguments must give the
# same tensor, whatever random numbers were drawn before. We get that with our own
# `torch.Generator`, seeded from the arguments, instead of the global random state.
#
# Each example is drawn as in section 1 and then scaled to unit length:
#
# $$
# \tilde x_f = \begin{cases} u_f \sim U[0, 1] & \text{with probability } p \\ 0 & \text{otherwise}\end{cases},
# \qquad x = \frac{\tilde x}{\|\tilde x\|}.
# $$
#
# With $n p = 10$ features active on average, a few examples still come out all zero
# (probability $(1-p)^n \approx 4 \times 10^{-5}$ here, much more for small $n p$). Such an example
# must stay all zero: $0/0$ would give `nan` and poison the whole training run.

# %% [markdown] exercise="Generate a fixed dataset" difficulty=2 importance=3 minutes="10-15"
# Write `generate_dataset(n_examples, n_inst, n_features, feature_probability, seed)`.
#
# * **Output:** a float tensor of shape `[n_examples, n_inst, n_features]`.
# * Every entry, independently: with probability `feature_probability` a value drawn uniformly from
#   $[0, 1)$, otherwise 0.
# * Then every example (each `[e, inst, :]` row) is divided by its Euclidean norm, so its norm is 1;
#   an all-zero row stays exactly zero (no `nan`).
# * Use `gen = torch.Generator().manual_seed(seed)` and pass `generator=gen` to **every** random call,
#   so that the same arguments always return the same tensor and the global random state is neither
#   used nor changed.

# %%
def generate_dataset(
    n_examples: int, n_inst: int, n_features: int, feature_probability: float, seed: int
) -> Float[Tensor, "examples inst feats"]:
    ### BEGIN SOLUTION
    gen = torch.Generator().manual_seed(seed)
    shape = (n_examples, n_inst, n_features)
    values = torch.rand(shape, generator=gen)
    is_present = torch.rand(shape, generator=gen) < feature_probability
    data = torch.where(is_present, values, 0.0)
    norms = einops.reduce(data.pow(2), "examples inst feats -> examples inst 1", "sum").sqrt()
    # Divide zero rows by 1 instead of 0: they stay zero.
    return data / torch.where(norms > 0, norms, 1.0)
    ### END SOLUTION
    ### BEGIN STUB
    # gen = torch.Generator().manual_seed(seed)
    # values = ...      # [examples inst feats], uniform in [0, 1)
    # is_present = ...  # [examples inst feats], True with probability feature_probability
    # norms = ...       # [examples inst 1]
    # return ...
    ### END STUB


# %% test="test_generate_dataset" points=2
def _check_dataset(data, shape, p, name):
    assert_shape(data, shape, name)
    assert_true(torch.is_floating_point(data), f"{name}: expected a float tensor, got {data.dtype}")
    assert_true(torch.isfinite(data).all(), f"{name}: contains NaN or inf (all-zero rows must stay zero)")
    assert_true((data >= 0).all(), f"{name}: values must be >= 0")
    norms = data.norm(dim=-1)
    zero = norms == 0
    bad = ((norms - 1).abs() > 1e-5) & ~zero
    assert_true(not bad.any(), f"{name}: every non-zero example must have norm 1; {int(bad.sum())} do not, "
                               f"e.g. norms {norms[bad][:3].tolist()}")
    return zero


_a = generate_dataset(4000, 3, 5, 0.3, seed=1)
_zero = _check_dataset(_a, (4000, 3, 5), 0.3, "generate_dataset(4000, 3, 5, 0.3, seed=1)")
# Fixed: the same call gives the same tensor, whatever the global random state.
torch.manual_seed(123)
torch.rand(10)
assert_true(torch.equal(_a, generate_dataset(4000, 3, 5, 0.3, seed=1)),
            "generate_dataset must return the same tensor for the same arguments (seed a torch.Generator)")
assert_true(not torch.equal(_a, generate_dataset(4000, 3, 5, 0.3, seed=2)), "a different seed must give different data")
assert_true(not torch.equal(_a[:, 0], _a[:, 1]), "every instance must get its own examples")
# Statistics: each entry is non-zero with probability 0.3; a row is all zero with probability 0.7^5 = 0.168.
_frac_nonzero = (_a > 0).float().mean().item()
assert_true(abs(_frac_nonzero - 0.3) < 0.01, f"fraction of non-zero entries should be about 0.3, got {_frac_nonzero:.3f}")
_frac_zero_rows = _zero.float().mean().item()
assert_true(abs(_frac_zero_rows - 0.7 ** 5) < 0.015,
            f"fraction of all-zero examples should be about 0.7^5 = 0.168, got {_frac_zero_rows:.3f}")
### BEGIN HIDDEN TESTS
# Global random state neither used nor advanced.
torch.manual_seed(7)
_expected_next = torch.rand(3)
torch.manual_seed(7)
generate_dataset(10, 2, 4, 0.5, seed=3)
assert_true(torch.equal(torch.rand(3), _expected_next), "generate_dataset must not draw from the global random state")
# Uniform values: with two always-present features, x2/x1 = u2/u1, and P(u2/u1 < 1/2) = 1/4.
_b = generate_dataset(20000, 1, 2, 1.0, seed=4)
_check_dataset(_b, (20000, 1, 2), 1.0, "generate_dataset(20000, 1, 2, 1.0, seed=4)")
_ratio_frac = (_b[:, 0, 1] < 0.5 * _b[:, 0, 0]).float().mean().item()
assert_true(abs(_ratio_frac - 0.25) < 0.015,
            f"values should be uniform on [0, 1) before normalising: P(x2 < x1/2) should be 0.25, got {_ratio_frac:.3f}")
# p = 0: all zero, no NaN. p = 1 with one feature: every value is exactly 1 after normalising.
_c = generate_dataset(50, 2, 6, 0.0, seed=5)
_check_dataset(_c, (50, 2, 6), 0.0, "generate_dataset with p = 0")
assert_true((_c == 0).all(), "with feature_probability = 0 every example must be all zero")
assert_close(generate_dataset(30, 2, 1, 1.0, seed=6), torch.ones(30, 2, 1), "generate_dataset with one always-present feature")
# Sparse, many features: rate of non-zero entries and of all-zero rows.
_d = generate_dataset(3000, 4, 40, 0.02, seed=8)
_zero = _check_dataset(_d, (3000, 4, 40), 0.02, "generate_dataset(3000, 4, 40, 0.02, seed=8)")
assert_true(abs((_d > 0).float().mean().item() - 0.02) < 0.003, "fraction of non-zero entries should be about 0.02")
assert_true(abs(_zero.float().mean().item() - 0.98 ** 40) < 0.02, "fraction of all-zero examples should be about 0.98^40 = 0.446")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Warm-up, then cosine decay
#
# The paper trains with AdamW, whose learning rate first rises linearly (*warm-up*: Adam's running
# averages start empty, and large early steps on a tiny dataset can throw the weights far away), then
# falls to zero along half a cosine (large steps to move, small steps at the end to settle into a
# minimum). With $w$ warm-up steps out of $N$, the factor that multiplies the learning rate at step
# $s = 0, 1, \dots, N-1$ is
#
# $$
# \text{scale}(s) = \begin{cases}
#   \dfrac{s+1}{w} & s < w, \\[2ex]
#   \dfrac12\Big(1 + \cos\big(\pi\, \tfrac{s - w}{\max(N - w - 1,\ 1)}\big)\Big) & s \ge w .
# \end{cases}
# $$
#
# It reaches 1 at the end of the warm-up, stays at 1 for step $w$, and reaches exactly 0 at the last
# step $s = N - 1$. (With $w = 0$ it is a plain half cosine.)

# %% [markdown] exercise="Warm-up + cosine schedule" difficulty=1 importance=2 minutes="5-10"
# Write `warmup_cosine_lr(step, steps, warmup_steps)` returning the factor $\text{scale}(s)$ above as
# a Python `float`, for `0 <= step < steps` and `0 <= warmup_steps < steps`.

# %%
def warmup_cosine_lr(step: int, steps: int, warmup_steps: int) -> float:
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(steps - warmup_steps - 1, 1)
    return 0.5 * (1 + math.cos(math.pi * progress))
    ### END SOLUTION
    ### BEGIN STUB
    # if step < warmup_steps:
    #     return ...
    # progress = ...  # 0 at step = warmup_steps, 1 at the last step
    # return ...
    ### END STUB


# %% test="test_warmup_cosine_lr" points=1
def _reference_scale(s, n, w):
    if s < w:
        return (s + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (s - w) / max(n - w - 1, 1)))


_got = [warmup_cosine_lr(s, 10, 3) for s in range(10)]
_expected = [_reference_scale(s, 10, 3) for s in range(10)]
assert_true(all(isinstance(v, (int, float)) for v in _got), f"warmup_cosine_lr must return numbers, got {_got[:3]}...")
assert_close(torch.tensor(_got), torch.tensor(_expected), "warmup_cosine_lr(s, steps=10, warmup_steps=3) for s = 0..9", atol=1e-9)
assert_true(isinstance(warmup_cosine_lr(5, 10, 3), float), "warmup_cosine_lr should return a Python float")
### BEGIN HIDDEN TESTS
for _n, _w in [(1000, 100), (50, 0), (7, 6), (2000, 200)]:
    _got = torch.tensor([warmup_cosine_lr(s, _n, _w) for s in range(_n)], dtype=torch.float64)
    _expected = torch.tensor([_reference_scale(s, _n, _w) for s in range(_n)], dtype=torch.float64)
    assert_close(_got, _expected, f"warmup_cosine_lr(s, steps={_n}, warmup_steps={_w})", atol=1e-9)
    assert_true(abs(_got[-1]) < 1e-9 or _n - _w == 1, f"the factor must reach 0 at the last step (steps={_n}, warmup={_w})")
    assert_true((_got >= 0).all() and (_got <= 1 + 1e-12).all(), "the factor must stay in [0, 1]")
### END HIDDEN TESTS

# %% skip_grading=true
_steps = list(range(STEPS))
go.Figure(go.Scatter(x=_steps, y=[LR * warmup_cosine_lr(s, STEPS, WARMUP_STEPS) for s in _steps], mode="lines")).update_layout(
    title=f"Learning rate over training ({WARMUP_STEPS} warm-up steps of {STEPS})", height=300, width=600,
    xaxis_title="step", yaxis_title="learning rate",
).show()

# %% [markdown]
# ## 3. Training on datasets of different sizes at once
#
# We want one model per pair (dataset size $T$, seed), trained as independent instances in one go.
# The snag: instances with different $T$ have different numbers of examples, but a tensor
# `[examples, inst, feats]` has one `examples` dimension. The fix is **padding and a mask**: give every
# instance `T_max` rows and tell the loss how many of them are real, `n_rows[inst]`. Instance `i`
# trains on rows `0 .. n_rows[i] - 1` and must be blind to the rest: whatever the other rows hold
# must change neither its loss nor its gradients. (Our datasets are drawn `T_max` rows long for
# every instance, so instance `i`'s training set is simply its first `n_rows[i]` rows.)
#
# The loss of instance $i$, on its own $T_i$ examples, is the squared error summed over features and
# averaged over its examples:
#
# $$
# L_i = \frac{1}{T_i} \sum_{t < T_i} \sum_{f} \big(x_{t,i,f} - x'_{t,i,f}\big)^2 .
# $$
#
# Predicting all zeros gives $L_i = \frac{1}{T_i}\sum_t \|x_t\|^2$, which is the fraction of
# non-zero examples ($\approx 1$). We will report every loss **divided by this trivial loss**, so that
# 1 means "no better than outputting zeros".

# %% [markdown] exercise="Masked loss per instance" difficulty=2 importance=3 minutes="10"
# Write `per_instance_loss(out, data, n_rows)`.
#
# * `out`, `data`: `[examples, inst, feats]`; `n_rows`: an integer tensor `[inst]` with
#   `1 <= n_rows[i] <= examples`.
# * **Output:** `[inst]`, the loss $L_i$ above: for instance `i`, the squared error summed over
#   features, averaged over its first `n_rows[i]` examples only.
# * Rows at or after `n_rows[i]` may hold anything (large values included): they must not change the
#   result. Build a boolean mask `[examples, inst]` from `torch.arange(examples)` and `n_rows` (no
#   Python loop over instances).

# %%
def per_instance_loss(
    out: Float[Tensor, "examples inst feats"],
    data: Float[Tensor, "examples inst feats"],
    n_rows: Int[Tensor, "inst"],
) -> Float[Tensor, "inst"]:
    ### BEGIN SOLUTION
    n_examples = data.shape[0]
    is_real = torch.arange(n_examples, device=data.device)[:, None] < n_rows[None, :]  # [examples inst]
    sq_error = einops.reduce((data - out).pow(2), "examples inst feats -> examples inst", "sum")
    return torch.where(is_real, sq_error, 0.0).sum(0) / n_rows
    ### END SOLUTION
    ### BEGIN STUB
    # is_real = ...   # [examples inst], True for the rows instance i trains on
    # sq_error = ...  # [examples inst], summed over features
    # return ...      # [inst]
    ### END STUB


# %% test="test_per_instance_loss" points=2
_gen = torch.Generator().manual_seed(0)
_data = torch.rand(6, 3, 4, generator=_gen)
_out = torch.rand(6, 3, 4, generator=_gen)
_n_rows = torch.tensor([6, 2, 4])
_expected = torch.stack([((_data[: int(k), i] - _out[: int(k), i]) ** 2).sum(-1).mean() for i, k in enumerate(_n_rows)])
_got = per_instance_loss(_out, _data, _n_rows)
assert_shape(_got, (3,), "per_instance_loss for 3 instances")
assert_close(_got, _expected, "per_instance_loss(out, data, n_rows=[6, 2, 4])")
### BEGIN HIDDEN TESTS
# Padding rows must be ignored, whatever they hold.
_data2, _out2 = _data.clone(), _out.clone()
_data2[2:, 1] = 1e3
_out2[4:, 2] = -1e3
assert_close(per_instance_loss(_out2, _data2, _n_rows), _expected, "per_instance_loss must ignore rows at or after n_rows[i]")
# One row only; all rows; other shapes, float64.
_gen = torch.Generator().manual_seed(1)
_data = torch.rand(9, 5, 7, generator=_gen, dtype=torch.float64)
_out = torch.rand(9, 5, 7, generator=_gen, dtype=torch.float64)
_n_rows = torch.tensor([1, 9, 3, 8, 5])
_expected = torch.stack([((_data[: int(k), i] - _out[: int(k), i]) ** 2).sum(-1).mean() for i, k in enumerate(_n_rows)])
assert_close(per_instance_loss(_out, _data, _n_rows), _expected, "per_instance_loss(n_rows=[1, 9, 3, 8, 5])", atol=1e-9)
# Predicting zeros on unit-norm data gives the fraction of non-zero examples.
_gen = torch.Generator().manual_seed(2)
_x = torch.rand(40, 2, 5, generator=_gen) * (torch.rand(40, 2, 5, generator=_gen) < 0.3)
_x = _x / _x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
_trivial = per_instance_loss(torch.zeros_like(_x), _x, torch.tensor([40, 40]))
assert_close(_trivial, (_x.norm(dim=-1) > 0).float().mean(0), "per_instance_loss of an all-zero output on unit-norm data", atol=1e-5)
# Gradients flow to `out` for real rows only.
_out = torch.rand(4, 2, 3, requires_grad=True)
per_instance_loss(_out, torch.zeros(4, 2, 3), torch.tensor([1, 3])).sum().backward()
assert_true((_out.grad[1:, 0] == 0).all() and (_out.grad[3:, 1] == 0).all(),
            "padding rows must get zero gradient")
assert_true((_out.grad[:1, 0] != 0).all() and (_out.grad[:3, 1] != 0).all(), "real rows must get a gradient")
### END HIDDEN TESTS

# %% [markdown]
# Now the training loop. It is the loop of section 1 with four changes, each from the paper:
#
# 1. **Full batch on a fixed dataset**: every step uses all of `data` (masked by `n_rows`), never new
#    examples.
# 2. **AdamW** instead of Adam, with **weight decay on `W` only**. AdamW shrinks a weight by
#    $\text{lr} \times \text{wd} \times$ weight at every step, separately from the gradient. Decay is a
#    preference for small weights; it has no good reason to pull the output bias $b$ towards zero, so
#    `b_final` goes in its own parameter group with `weight_decay=0` (the public course decayed it too).
# 3. **The warm-up + cosine schedule**: at every step, set each parameter group's `"lr"` to
#    `lr * warmup_cosine_lr(step, steps, warmup_steps)` before the update.
# 4. The loss is `per_instance_loss(...).sum()`: summing over instances lets each instance train as if
#    it were alone (its gradient only depends on its own loss).

# %% [markdown] exercise="Train on fixed datasets, many sizes at once" difficulty=3 importance=4 minutes="15-25"
# Write `train_on_fixed_datasets(model, data, n_rows, steps, lr, weight_decay, warmup_steps, log_freq, progress)`.
#
# * `model`: a `Model` (from section 1) with `n_inst` instances; `data`: `[examples, inst, feats]`;
#   `n_rows`: integer `[inst]`, the number of real rows of each instance.
# * Optimiser: `torch.optim.AdamW` with two parameter groups, `[model.W]` with
#   `weight_decay=weight_decay` and `[model.b_final]` with `weight_decay=0.0`; other settings default.
# * For `step` in `range(steps)`, wrapped in `tqdm(..., file=sys.stdout, disable=not progress)`: set the
#   learning rate of both groups to `lr * warmup_cosine_lr(step, steps, warmup_steps)`, compute
#   `loss_per_inst = per_instance_loss(model(data), data, n_rows)`, then `zero_grad`, `backward` on
#   `loss_per_inst.sum()`, `step`.
# * Every `log_freq` steps and at the last step, append `step` to `history["step"]` and
#   `loss_per_inst.tolist()` (the losses computed at that step, before the update) to `history["loss"]`.
# * **Return** `history = {"step": [...], "loss": [...]}`.

# %%
def train_on_fixed_datasets(
    model: Model,
    data: Float[Tensor, "examples inst feats"],
    n_rows: Int[Tensor, "inst"],
    steps: int = 1000,
    lr: float = 1e-2,
    weight_decay: float = 1e-2,
    warmup_steps: int = 100,
    log_freq: int = 100,
    progress: bool = True,
) -> dict[str, list]:
    ### BEGIN SOLUTION
    optimizer = torch.optim.AdamW([
        {"params": [model.W], "weight_decay": weight_decay},
        {"params": [model.b_final], "weight_decay": 0.0},  # decay is for weights, not the output bias
    ], lr=lr)
    history = {"step": [], "loss": []}
    bar = tqdm(range(steps), file=sys.stdout, disable=not progress, mininterval=1.0)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr * warmup_cosine_lr(step, steps, warmup_steps)
        loss_per_inst = per_instance_loss(model(data), data, n_rows)  # [inst]
        optimizer.zero_grad(set_to_none=True)
        loss_per_inst.sum().backward()
        optimizer.step()
        if step % log_freq == 0 or step == steps - 1:
            history["step"].append(step)
            history["loss"].append(loss_per_inst.tolist())
            bar.set_postfix(mean_loss=f"{loss_per_inst.mean().item():.4g}")
    return history
    ### END SOLUTION
    ### BEGIN STUB
    # optimizer = ...  # AdamW, two parameter groups
    # history = {"step": [], "loss": []}
    # for step in tqdm(range(steps), file=sys.stdout, disable=not progress):
    #     ...
    # return history
    ### END STUB


# %% test="test_train_on_fixed_datasets" points=4
def _reference_training(W0, b0, data, n_rows, steps, lr, wd, warmup):
    """Each instance trained alone (a loop over instances, on its own rows only), in float64."""
    W_out, b_out = W0.clone(), b0.clone()
    for i in range(W0.shape[0]):
        W = W0[i : i + 1].clone().requires_grad_(True)
        b = b0[i : i + 1].clone().requires_grad_(True)
        x = data[: int(n_rows[i]), i : i + 1]
        opt = torch.optim.AdamW([{"params": [W], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}], lr=lr)
        for s in range(steps):
            scale = (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup - 1, 1)))
            for g in opt.param_groups:
                g["lr"] = lr * scale
            h = torch.einsum("ihf,tif->tih", W, x)
            out = torch.relu(torch.einsum("ihf,tih->tif", W, h) + b)
            loss = ((x - out) ** 2).sum(-1).mean(0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        W_out[i], b_out[i] = W.detach()[0], b.detach()[0]
    return W_out, b_out


def _make_case(n_inst, n_feats, n_hidden, n_examples, p, seed):
    torch.manual_seed(seed)
    model = Model(Config(n_inst, n_feats, n_hidden)).double()
    # Unit-norm sparse data built here, so that this test does not depend on generate_dataset.
    data = torch.rand(n_examples, n_inst, n_feats, dtype=torch.float64) * (torch.rand(n_examples, n_inst, n_feats) < p)
    data = data / data.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return model, data, model.W.detach().clone(), model.b_final.detach().clone()


_model, _data, _W0, _b0 = _make_case(n_inst=3, n_feats=6, n_hidden=2, n_examples=8, p=0.4, seed=0)
_n_rows = torch.tensor([8, 3, 5])
_hist = train_on_fixed_datasets(_model, _data, _n_rows, steps=30, lr=1e-2, weight_decay=1e-2, warmup_steps=5,
                                log_freq=10, progress=False)
assert_true(isinstance(_hist, dict) and set(_hist) >= {"step", "loss"}, "return a dict with keys 'step' and 'loss'")
assert_true(_hist["step"] == [0, 10, 20, 29], f"history['step'] should be [0, 10, 20, 29], got {_hist['step']}")
assert_true(len(_hist["loss"]) == 4 and all(len(l) == 3 for l in _hist["loss"]),
            "history['loss'] should hold one list of 3 per-instance losses per logged step")
_W_ref, _b_ref = _reference_training(_W0, _b0, _data, _n_rows, steps=30, lr=1e-2, wd=1e-2, warmup=5)
assert_close(_model.W, _W_ref, "W after 30 steps (compared with training each instance alone)", atol=1e-6)
assert_close(_model.b_final, _b_ref, "b_final after 30 steps (compared with training each instance alone)", atol=1e-6)
### BEGIN HIDDEN TESTS
# Strong weight decay (to catch decay on b_final or a missing schedule), padding rows full of junk, n_rows = 1.
_model, _data, _W0, _b0 = _make_case(n_inst=4, n_feats=10, n_hidden=3, n_examples=12, p=0.3, seed=1)
_n_rows = torch.tensor([1, 12, 7, 4])
_data[7:, 2] = 5.0
_data[4:, 3] = -3.0
_hist = train_on_fixed_datasets(_model, _data, _n_rows, steps=40, lr=2e-2, weight_decay=0.5, warmup_steps=10,
                                log_freq=7, progress=False)
assert_true(_hist["step"] == [0, 7, 14, 21, 28, 35, 39], f"history['step'] for steps=40, log_freq=7: got {_hist['step']}")
_W_ref, _b_ref = _reference_training(_W0, _b0, _data, _n_rows, steps=40, lr=2e-2, wd=0.5, warmup=10)
assert_close(_model.W, _W_ref, "W with weight_decay=0.5 and junk in the padding rows", atol=1e-6)
assert_close(_model.b_final, _b_ref, "b_final with weight_decay=0.5 (weight decay must not touch b_final)", atol=1e-6)
# The logged losses are the per-instance losses before each update: the first one is the initial loss.
_model, _data, _W0, _b0 = _make_case(n_inst=2, n_feats=5, n_hidden=2, n_examples=6, p=0.5, seed=2)
_n_rows = torch.tensor([6, 2])
with torch.no_grad():
    _initial = per_instance_loss(_model(_data), _data, _n_rows)
_hist = train_on_fixed_datasets(_model, _data, _n_rows, steps=200, lr=3e-2, weight_decay=1e-2, warmup_steps=0,
                                log_freq=50, progress=False)
assert_close(torch.tensor(_hist["loss"][0]), _initial, "history['loss'][0] should be the loss at step 0", atol=1e-6)
assert_true(all(l < f for l, f in zip(_hist["loss"][-1], _hist["loss"][0])), "training should lower the loss of every instance")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The sweep
#
# The settings, following the paper where the cost allows:
#
# * $m = 2$ hidden dimensions; $n = 1000$ features with $p = 0.01$ (full mode, the setting of Marius
#   Hobbhahn's replication that the public course suggested) or $n = 200$ with $p = 0.05$ (`FAST`):
#   about 10 active features per example either way.
# * One instance per pair (dataset size $T$, seed), each with its own training set; one shared test set
#   of 5000 fresh examples from the same distribution.
# * AdamW, learning rate $10^{-2}$, weight decay $10^{-2}$, warm-up (10 % of the steps) then cosine to 0,
#   full batch, 1000 steps. The paper used 50,000 steps at $10^{-3}$; a 10× larger learning rate gets
#   there in 1000 steps here.
# * The initialisation matters: the toy model's $W_{ij} \sim \mathcal{N}(0, 2/(n+m))$ (Xavier). A much
#   larger start (entries of size 1) leaves the small-$T$ models with huge test losses that only fall
#   as $T$ grows, and no peak.
#
# Padding to the largest $T$ would waste most of the work when $T$ spans three decades, so the sweep
# trains the sizes in groups (largest less than 2× smallest): one vectorised model per group.

# %% fold="Show code"
def group_sizes(sizes: list[int], max_ratio: float = 2.0) -> list[list[int]]:
    """Split sorted dataset sizes into runs whose largest is less than max_ratio x their smallest."""
    groups = []
    for size in sorted(sizes):
        if groups and size < max_ratio * groups[-1][0]:
            groups[-1].append(size)
        else:
            groups.append([size])
    return groups


@torch.no_grad()
def relative_loss(
    model: Model, data: Float[Tensor, "examples inst_or_1 feats"], n_rows: Int[Tensor, "inst"] | None = None,
    chunk_size: int = 250,
) -> Float[Tensor, "inst"]:
    """Loss divided by the loss of the all-zero output on the same examples (1 = trivial), per instance.

    `data` may have a single instance slot (a test set shared by every instance); it is read in chunks
    so that [chunk, inst, feats] stays small.
    """
    n_inst = model.cfg.n_inst
    error, trivial = torch.zeros(n_inst), torch.zeros(n_inst)
    for start in range(0, data.shape[0], chunk_size):
        x = data[start : start + chunk_size]
        sq_err = einops.reduce((x - model(x)).pow(2), "examples inst feats -> examples inst", "sum")
        sq_norm = einops.reduce(x.pow(2), "examples inst feats -> examples inst", "sum").expand_as(sq_err)
        if n_rows is not None:
            is_real = torch.arange(start, start + x.shape[0])[:, None] < n_rows[None, :]
            sq_err, sq_norm = torch.where(is_real, sq_err, 0.0), torch.where(is_real, sq_norm, 0.0)
        error += sq_err.sum(0)
        trivial += sq_norm.sum(0)
    return error / trivial


def run_sweep(sizes: list[int], n_seeds: int, n_features: int, feature_prob: float, test_data: Tensor) -> dict:
    """Train one instance per (size, seed); return losses and, per instance, W and the training points' h."""
    runs = []  # one dict per (size, seed)
    for group_idx, group in enumerate(group_sizes(sizes)):
        n_rows = torch.tensor([size for size in group for _ in range(n_seeds)])
        seeds = [seed for _ in group for seed in range(n_seeds)]
        torch.manual_seed(SEED * 1000 + group_idx)  # the initial weights of this group's instances
        model = Model(Config(len(n_rows), n_features, N_HIDDEN), feature_probability=feature_prob)
        # Training seeds differ from the test set's (SEED) and between groups: every instance sees its own data.
        data = generate_dataset(max(group), len(n_rows), n_features, feature_prob, seed=SEED * 1000 + 1 + group_idx)
        print(f"dataset sizes {group}: {len(n_rows)} instances")
        train_on_fixed_datasets(model, data, n_rows, steps=STEPS, lr=LR, weight_decay=WEIGHT_DECAY,
                                warmup_steps=WARMUP_STEPS, log_freq=STEPS // 10)
        train_loss = relative_loss(model, data, n_rows)
        test_loss = relative_loss(model, test_data)
        with torch.no_grad():
            hidden = einops.einsum(model.W, data, "inst hid feats, examples inst feats -> examples inst hid")
        for i, (size, seed) in enumerate(zip(n_rows.tolist(), seeds)):
            runs.append({
                "size": size, "seed": seed, "train_loss": train_loss[i].item(), "test_loss": test_loss[i].item(),
                "W": model.W.detach()[i].clone(),  # [hid feats]
                "hidden": hidden[:size, i].clone(),  # [size hid]: the training points in the hidden space
                "n_active": (data[:size, i] > 0).sum(-1),  # [size]: active features of each training point
            })
    return {"runs": runs}


# %% skip_grading=true
test_data = generate_dataset(N_TEST, 1, N_FEATURES, FEATURE_PROB, seed=SEED)  # [N_TEST 1 feats], shared
start = time.time()
sweep = run_sweep(DATASET_SIZES, N_SEEDS, N_FEATURES, FEATURE_PROB, test_data)
sweep_seconds = time.time() - start
runs = sweep["runs"]
test_loss = torch.tensor([[r["test_loss"] for r in runs if r["size"] == T] for T in DATASET_SIZES])  # [sizes seeds]
train_loss = torch.tensor([[r["train_loss"] for r in runs if r["size"] == T] for T in DATASET_SIZES])
print(f"sweep done in {sweep_seconds:.0f} s")
for T, te, tr in zip(DATASET_SIZES, test_loss, train_loss):
    print(f"T = {T:5d}   test loss {te.mean():6.3f} (seeds: {', '.join(f'{v:.3f}' for v in te)})   "
          f"train loss {tr.mean():.2e}")

# %% [markdown]
# ## 5. The double-descent curve

# %% fold="Show code"
SIZE_TICKS = dict(tickvals=[3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])  # plain numbers on log axes


def plot_losses_vs_size(sizes: list[int], test_loss: Tensor, train_loss: Tensor, title: str) -> go.Figure:
    """Left: test loss against T (each seed thin, mean thick). Right: train loss, log scale."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["test loss (5000 fresh examples)", "train loss"],
                        horizontal_spacing=0.12)
    n_seeds = test_loss.shape[1]
    for col, losses, color in [(1, test_loss, "#d62728"), (2, train_loss, "#1f77b4")]:
        for seed in range(n_seeds):
            fig.add_trace(go.Scatter(
                x=sizes, y=losses[:, seed].tolist(), mode="lines", line=dict(color=color, width=1), opacity=0.3,
                showlegend=False, hovertemplate=f"seed {seed}<br>T = %{{x}}<br>loss %{{y:.4g}}<extra></extra>",
            ), row=1, col=col)
        fig.add_trace(go.Scatter(
            x=sizes, y=losses.mean(1).tolist(), mode="lines+markers", line=dict(color=color, width=3),
            showlegend=False, hovertemplate="mean over seeds<br>T = %{x}<br>loss %{y:.4g}<extra></extra>",
        ), row=1, col=col)
    fig.add_hline(y=1.0, line=dict(color="grey", dash="dash", width=1), row=1, col=1,
                  annotation_text="all-zero output", annotation_position="bottom right")
    fig.add_hline(y=1.0, line=dict(color="grey", dash="dash", width=1), row=1, col=2)
    peak = int(test_loss.mean(1).argmax())
    fig.add_vline(x=sizes[peak], line=dict(color="#d62728", dash="dot", width=1), row=1, col=1)
    fig.update_xaxes(type="log", title_text="training set size T", **SIZE_TICKS)
    fig.update_yaxes(title_text="loss / loss of all-zero output", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    fig.update_layout(title=title, height=430, width=980)
    return fig


# %% skip_grading=true
plot_losses_vs_size(
    DATASET_SIZES, test_loss, train_loss,
    f"Double descent: {N_FEATURES} features, m = {N_HIDDEN}, p = {FEATURE_PROB} ({N_SEEDS} seeds, {STEPS} steps)",
).show()
peak_idx = int(test_loss.mean(1).argmax())
print(f"test loss peaks at T = {DATASET_SIZES[peak_idx]}: {test_loss[peak_idx].mean():.3f} x trivial "
      f"(smallest T: {test_loss[0].mean():.3f}, largest T: {test_loss[-1].mean():.3f})")

# %% [markdown]
# **What the figure shows.** Left: the loss on 5000 fresh examples of every model, divided by the loss
# of always answering 0 (dashed line at 1); thin lines are single seeds, the thick line their mean.
# Right: the loss on each model's own training set, on a log scale.
#
# **What to notice.**
#
# * **Train loss (right) rises with $T$.** With a handful of examples the model fits them almost
#   exactly: at $T = 5$ the training loss is $2 \times 10^{-4}$ of the trivial loss in full mode
#   ($10^{-2}$ to $10^{-5}$ depending on the seed in `FAST` mode). $T$ points can be given directions
#   of their own in the hidden plane. With more points than that, they cannot, and the training loss
#   climbs towards the level of the infinite-data model.
# * **Test loss (left) is *not* monotone in $T$.** For small $T$ it sits at about 1 (1.00–1.03 up to
#   $T = 70$ in full mode): memorising a few examples teaches nothing about new ones. It then **rises
#   to a peak well above 1** — in full mode at $T = 300$, 2.3× the trivial loss on average (1.9–2.6×
#   depending on the seed), in `FAST` mode at $T = 70$, 1.25× — where the models are *worse than
#   outputting zeros* on new data. Beyond the peak it **falls again**, below 1 (0.99 at $T = 1000$ in
#   full mode, 0.94 in `FAST` mode): the models now generalise. With only 2 hidden dimensions for
#   hundreds of features, "generalising" cannot mean much better than the trivial loss; the point is
#   the shape of the curve.
# * **The height of the peak varies a lot between seeds (the thin lines), its position hardly at
#   all.** It also needs enough training: with too few steps, a too-small learning rate, strong weight
#   decay (e.g. 1.0) or a large initialisation, the peak shrinks or disappears. Try it: change `STEPS`,
#   `LR`, `WEIGHT_DECAY` above and re-run.

# %% [markdown]
# ## 6. What the model stores: datapoints or features?
#
# To see *why* the test loss behaves like this, we look inside. With $m = 2$ we can draw the hidden
# space. For a few dataset sizes (one seed each) the figure shows, on top, the **features** — the
# columns $W_i$ — and below, the **training points** — their hidden vectors $h_t = W x_t$.

# %% fold="Show code"
def _segments(vectors: np.ndarray):
    """x, y lists drawing a line from the origin to each 2-D vector, as one trace (None breaks lines)."""
    xs = np.stack([np.zeros(len(vectors)), vectors[:, 0], np.full(len(vectors), np.nan)], axis=1).ravel()
    ys = np.stack([np.zeros(len(vectors)), vectors[:, 1], np.full(len(vectors), np.nan)], axis=1).ravel()
    return xs, ys


def plot_hidden_geometry(selected: list[dict], title: str) -> go.Figure:
    """Top row: feature directions W_i; bottom row: training points h_t = W x_t; one column per run."""
    cols = len(selected)
    fig = make_subplots(
        rows=2, cols=cols, horizontal_spacing=0.04, vertical_spacing=0.1,
        subplot_titles=[f"T = {r['size']}: features" for r in selected]
                       + [f"T = {r['size']}: training points" for r in selected],
    )
    for col, run in enumerate(selected, start=1):
        W = run["W"].T.numpy()  # [feats hid]
        h = run["hidden"].numpy()  # [size hid]
        D_feat = compute_dimensionality(run["W"][None])[0].numpy()
        D_data = compute_dimensionality(einops.rearrange(run["hidden"], "examples hid -> 1 hid examples"))[0].numpy()
        for row, vectors, D, color, kind in [(1, W, D_feat, "#1f77b4", "feature"), (2, h, D_data, "#d62728", "point")]:
            xs, ys = _segments(vectors)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1), opacity=0.6,
                                     hoverinfo="skip", showlegend=False), row=row, col=col)
            norms = np.linalg.norm(vectors, axis=1)
            extra = [run["n_active"].numpy()] if kind == "point" else []
            fig.add_trace(go.Scatter(
                x=vectors[:, 0], y=vectors[:, 1], mode="markers", marker=dict(size=5, color=color), showlegend=False,
                customdata=np.stack([np.arange(len(vectors)), norms, D] + extra, axis=-1),
                hovertemplate=f"{kind} %{{customdata[0]}}<br>norm %{{customdata[1]:.3f}}<br>D = %{{customdata[2]:.3f}}"
                              + ("<br>active features %{customdata[3]}" if kind == "point" else "") + "<extra></extra>",
            ), row=row, col=col)
            lim = 1.15 * max(float(norms.max()), 1e-3)
            axis = (row - 1) * cols + col
            fig.update_xaxes(range=[-lim, lim], showticklabels=False, row=row, col=col)
            fig.update_yaxes(range=[-lim, lim], showticklabels=False, row=row, col=col,
                             scaleanchor=f"x{'' if axis == 1 else axis}", scaleratio=1)
    fig.update_layout(title=title, height=560, width=min(250 * cols + 80, 1300))
    return fig


# %% skip_grading=true
_peak_T = DATASET_SIZES[peak_idx]
geometry_sizes = sorted({DATASET_SIZES[0], 20, _peak_T, DATASET_SIZES[-1]})
selected = [next(r for r in runs if r["size"] == T and r["seed"] == 0) for T in geometry_sizes]
plot_hidden_geometry(selected, "Hidden space (seed 0): features (top) and training points (bottom)").show()

# %% [markdown]
# **What the figure shows.** Each column is one trained model. Blue lines: the $n$ feature directions
# $W_i$ (most are tiny: the model does not store them). Red lines: the hidden vectors of that model's
# $T$ training examples. Each panel has its own scale; hover for the norms and dimensionalities.
#
# **What to notice.**
#
# * **Small $T$: the training points are in superposition.** Their hidden vectors form a regular
#   polygon (with $T = 5$, a pentagon, like the 5 features of section 1), each point with a direction
#   of its own. The features, on top, come in **bundles, one per training point**: every feature that
#   is active in an example simply points along that example's direction. What the model stores is
#   "which training example is this", not "which feature is on".
# * **Large $T$: the features are in superposition.** A few features get long, evenly spread
#   directions — a star like the pentagon of section 1, now made of *features* (five of them in `FAST`
#   mode, about a dozen in full mode) — the rest stay tiny, and the training points lie along those
#   feature directions, with no directions of their own: the model has stopped memorising.
# * **At the peak** neither picture is clean: too many points to give each a direction, too little data
#   to find the features. A model stuck between the two strategies generalises worst.

# %% [markdown]
# ## 7. Dimensionality of features and of datapoints
#
# Section 4's dimensionality $D$ makes this quantitative, and it applies to any set of vectors: to the
# features $W_i$ and equally to the training points' hidden vectors $h_t$. If $T$ points share the
# $m$ dimensions evenly (a regular polygon), each gets $D = m/T$: the dotted line. Each dot below is one
# feature (blue; features with a norm below 10 % of the largest in their model are left out: they
# are not stored) or one training point (red) of the seed-0 model with that $T$, spread sideways a
# little.

# %% fold="Show code"
def plot_dimensionality_strip(runs_seed0: list[dict], title: str, min_rel_norm: float = 0.1) -> go.Figure:
    gen = np.random.default_rng(0)  # cosmetic sideways spread, fixed for a reproducible figure
    fig = go.Figure()
    for kind, color in [("features", "#1f77b4"), ("training points", "#d62728")]:
        xs, ys, custom = [], [], []
        for run in runs_seed0:
            if kind == "features":
                vectors = run["W"]  # [hid feats]
            else:
                vectors = einops.rearrange(run["hidden"], "examples hid -> hid examples")
            D = compute_dimensionality(vectors[None])[0]
            norms = vectors.norm(dim=0)
            keep = norms >= min_rel_norm * norms.max() if kind == "features" else torch.ones_like(norms, dtype=torch.bool)
            idx = torch.nonzero(keep)[:, 0].numpy()
            xs.append(run["size"] * np.exp(gen.uniform(-0.08, 0.08, size=len(idx))))
            ys.append(D[keep].numpy())
            custom.append(np.stack([np.full(len(idx), run["size"]), idx, norms[keep].numpy()], axis=-1))
        fig.add_trace(go.Scatter(
            x=np.concatenate(xs), y=np.concatenate(ys), mode="markers", name=kind,
            marker=dict(size=5, color=color, opacity=0.55), customdata=np.concatenate(custom),
            hovertemplate=f"T = %{{customdata[0]}}<br>{kind[:-1]} %{{customdata[1]}}<br>D = %{{y:.3f}}"
                          "<br>norm %{customdata[2]:.3f}<extra></extra>",
        ))
    sizes = np.array(sorted({r["size"] for r in runs_seed0}), dtype=float)
    grid = np.geomspace(sizes.min(), sizes.max(), 100)
    fig.add_trace(go.Scatter(x=grid, y=np.minimum(N_HIDDEN / grid, 1.0), mode="lines", name=f"m / T = {N_HIDDEN} / T",
                             line=dict(color="black", dash="dot", width=1), hoverinfo="skip"))
    fig.update_xaxes(type="log", title_text="training set size T", **SIZE_TICKS)
    y_max = max(float(np.concatenate([np.asarray(t.y) for t in fig.data]).max()), N_HIDDEN / sizes.min())
    fig.update_yaxes(title_text="dimensionality D", range=[-0.02, min(1.05, 1.15 * y_max)])
    fig.update_layout(title=title, height=450, width=900)
    return fig


# %% skip_grading=true
runs_seed0 = [r for r in runs if r["seed"] == 0]
plot_dimensionality_strip(runs_seed0, "Dimensionality of features and of training points against T (seed 0)").show()

# %% [markdown]
# **What the figure shows.** For every $T$ (x-axis), the dimensionality of each stored feature (blue)
# and of each training point (red) of one model.
#
# **What to notice.**
#
# * **Small $T$:** the training points sit on the dotted line $D = m/T$: they share the plane evenly,
#   like the corners of a regular polygon. Data in superposition.
# * **Large $T$:** the training points' dimensionality collapses towards 0 (a thousand points, no
#   direction of their own), while the stored features get dimensionalities of their own (about 0.3
#   for the five features of the `FAST` model, about 0.1–0.15 for the dozen of the full one): the
#   features are now what is in superposition.
# * **Around the test-loss peak** both are low: neither the datapoints nor the features own a share of
#   the hidden space. This is the transition between memorising and generalising, and where the model
#   does worst on new data.

# %% [markdown]
# **Questions.**
#
# 1. Why can a model with only 2 hidden dimensions fit 5 training points (almost) perfectly, but not
#    500?
# 2. The training loss at large $T$ approaches the same value as the test loss. Why?
# 3. Why does weight decay help the model *leave* the memorising solution as $T$ grows?

# %% [markdown] only="solution"
# **Answers.**
#
# 1. With 5 points, each can get its own direction in the plane, 72° apart. Reading one point back,
#    the ReLU and a negative bias cut off the (smaller) projections of the others, so the output is
#    that point's features alone. With 500 points the directions are less than 1° apart: every point
#    interferes with its neighbours and no bias can separate them.
# 2. With many examples the training set is a good sample of the distribution: a model that does well
#    on it does equally well on fresh examples (it can no longer fit individual examples better than
#    the features allow).
# 3. Memorising $T$ points with $T$ directions needs weights whose size grows with the number of
#    points to store, and which are useless for new points; weight decay charges for every unit of
#    weight, so as soon as a feature-based solution fits the data about as well, the decay tips the
#    balance towards it.

# %% skip_grading=true
test_mean, train_mean = test_loss.mean(1), train_loss.mean(1)
save_results(5, {
    "test_loss_by_dataset_size": [[T, round(v, 5)] for T, v in zip(DATASET_SIZES, test_mean.tolist())],
    "train_loss_by_dataset_size": [[T, float(f"{v:.4g}")] for T, v in zip(DATASET_SIZES, train_mean.tolist())],
    "test_loss_by_dataset_size_per_seed": [[T] + [round(v, 4) for v in row] for T, row in zip(DATASET_SIZES, test_loss.tolist())],
    "test_loss_peak": {"dataset_size": DATASET_SIZES[peak_idx], "test_loss": round(test_mean[peak_idx].item(), 4)},
    "setup": {"n_features": N_FEATURES, "n_hidden": N_HIDDEN, "feature_probability": FEATURE_PROB, "n_seeds": N_SEEDS,
              "steps": STEPS, "warmup_steps": WARMUP_STEPS, "lr": LR, "weight_decay": WEIGHT_DECAY, "n_test": N_TEST,
              "fast": FAST},
    "sweep_seconds": round(sweep_seconds, 1),
})
