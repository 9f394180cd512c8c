# ---
# title: "Sparse autoencoders in toy models"
# short_title: "SAEs in toy models"
# essential: true
# prerequisites: [1]
# minutes: 180
# colab_requires: ["einops==0.8.2", "jaxtyping"]
# ---

# %% [markdown]
# # Sparse autoencoders in toy models
#
# In section 1 a toy model squeezed five sparse features into a two-dimensional hidden space, and we
# could *see* them: five arrows forming a pentagon. We could see them only because we built the model
# and know which input is which feature. Inside a real network nobody hands us the features. All we
# have are activation vectors, and if the network stores more features than it has dimensions, no
# basis of the activation space lines up with them.
#
# A **sparse autoencoder** (SAE) is a way to find them anyway. It learns an overcomplete *dictionary*
# of directions and rewrites every activation vector as a sparse, non-negative combination of a few of
# them. If features really are sparse directions, the cheapest sparse description of the activations
# is in terms of those very directions, and the dictionary should come out as the features.
#
# The toy model is the perfect test bed: we know the answer. We train SAEs on the toy model's hidden
# vectors $h = Wx$ and check whether their latents point along the columns of $W$. On the way we meet
# the problem that dogs every SAE: **dead latents**, dictionary entries that stop firing and never
# learn anything, and we fix it the way Anthropic did (*Towards Monosemanticity*, 2023): by
# **resampling** them towards the inputs the SAE reconstructs worst.
#
# What you will do:
#
# 1. Write the SAE: weights (optionally tied), forward pass, the loss and its exact reductions.
# 2. Write what measures it as it trains: L0, fraction of variance explained, dead latents over a window.
# 3. Train it on the toy model and watch some latents die and some features go missing.
# 4. Write two resampling methods, random and loss-weighted, and recover **every** feature.
#
# The SAE code you write here lives in `course_helpers/sae.py`: section 7 reuses it unchanged to train
# an SAE on a language model.

# %%
import einops
import torch
from jaxtyping import Float
from torch import Tensor

from coursepress.results import save_results
from course_helpers.sae import SAEConfig, SAEOutput, SparseAutoencoder, find_dead_latents, find_duplicate_latents, reinitialize_latents, resample_advanced, resample_simple, sae_metrics, train_sae
from course_helpers.sae_plots import animate_latents, plot_frac_active, plot_latents_vs_features, plot_reconstructions, plot_training_curves
from coursepress.testing import assert_close, assert_shape, assert_true
from course_helpers.tms_plots import plot_features_in_2d
from course_helpers.toy_model import Config, Model

device = "cuda" if torch.cuda.is_available() else "cpu"

# %% tags=["parameters"]
FAST = False
SEED = 0

# %%
# FAST keeps every qualitative result with fewer steps; the full settings are the published ones.
TOY_STEPS = 5_000 if FAST else 10_000
SAE_STEPS = 6_000 if FAST else 20_000
EXPLORE_STEPS = 4_000 if FAST else 20_000  # the last exploration (uneven features)
RESAMPLE_EVERY = 1_000 if FAST else 2_500
RESAMPLE_UNTIL = 4_000 if FAST else 15_000  # the rest of training lets the last resampled latents settle
DEAD_WINDOW = 300 if FAST else 400
FEATURE_PROB = 0.01
DEAD_THRESHOLD = FEATURE_PROB / 10  # "dead" = fires on at most a tenth as many inputs as one feature is present on
LOG_EVERY = 50 if FAST else 100

# %% [markdown]
# ## The toy model we will take apart
#
# Eight instances of the section-1 toy model, five features into two dimensions, every feature present
# with probability $p = 0.01$ and all equally important. At this sparsity each instance settles into a
# regular pentagon: five feature directions $72°$ apart, each of norm $\approx 1.16$.
#
# The SAE will only ever see the hidden vectors $h = Wx$. Since at most one feature is usually active
# at a time, almost every nonzero $h$ lies on one of the five feature rays: a clean dictionary-learning
# problem, with the answer known.

# %% skip_grading=true
torch.manual_seed(SEED)
toy_cfg = Config(n_inst=8, n_features=5, n_hidden=2)
toy = Model(toy_cfg, feature_probability=FEATURE_PROB, device=device)
toy.optimize(steps=TOY_STEPS)
toy.requires_grad_(False)  # frozen from now on: it only produces data for the SAEs


def sample_h(batch_size: int) -> Float[Tensor, "batch inst d_hidden"]:
    """A fresh batch of the toy model's hidden vectors h = W x."""
    with torch.no_grad():
        x = toy.generate_batch(batch_size)
        return einops.einsum(toy.W, x, "inst d_hidden feats, batch inst feats -> batch inst d_hidden")


W_toy = toy.W.detach()
print("feature norms per instance:\n", W_toy.norm(dim=1).cpu().numpy().round(3))

# %% [markdown]
# The figure shows each instance's five feature directions (the columns of $W$) and, as grey dots, a
# batch of hidden vectors. Notice that the dots sit on the feature rays: an input with one active
# feature lands on that feature's ray, at a distance given by the feature's value. The few dots off
# the rays are inputs with two features active at once.

# %% skip_grading=true fold="Show code"
h_demo = sample_h(400)
plot_features_in_2d(
    W_toy,
    colors="#1f77b4",
    titles=[f"instance {i}" for i in range(toy_cfg.n_inst)],
    title="The toy model: five features in two dimensions (p = 0.01), with a batch of hidden vectors",
    n_rows=2,
    points=einops.rearrange(h_demo, "batch inst d -> inst d batch"),
).show()

# %% [markdown]
# ## Building the SAE
#
# The next cells are the shared SAE code. Read them top to bottom, then work through the exercises
# that follow: each one names the functions it is about, says exactly what they must do, and tests
# them. You can write all the code first and run the tests after, or go one exercise at a time
# (re-run the code cell after each change).
#
# A note on shapes: as in section 1 every tensor has an `inst` axis, and the SAE of instance $i$ only
# ever sees the hidden vectors of toy instance $i$. Each SAE has `d_in = 2` (the toy's hidden size)
# and, for now, `d_sae = 5` latents: exactly one per true feature.

# %% include="course_helpers/sae.py"

# %% [markdown] exercise="The SAE: weights, forward pass and loss" difficulty=4 importance=5 minutes="30-45"
# Fill in `SparseAutoencoder.__init__`, `normalize_decoder` and `forward` in the class cell above.
#
# * `__init__(cfg)`: parameters `W_enc [inst, d_in, d_sae]`, and `_W_dec [inst, d_sae, d_in]` unless
#   `cfg.tied_weights` (then `self._W_dec = None`), both drawn from $\mathcal N(0, \sigma^2)$ with
#   $\sigma = \sqrt{2 / (d_\text{in} + d_\text{sae})}$; `b_enc [inst, d_sae]` and `b_dec [inst, d_in]`
#   zeros. Use `nn.Parameter` for all four. The given last line normalises the decoder.
# * `normalize_decoder()`: divide every row of `W_dec` (one row per latent, length `d_in`) by its norm,
#   in place, without recording gradients. The `W_dec` property returns a *view* of the encoder when
#   weights are tied, so an in-place operation on `self.W_dec` rescales whichever tensor holds the
#   decoder.
# * `forward(h)` with `h: [batch, inst, d_in]` returns `SAEOutput(l1_loss, l2_loss, loss, z, h_reconstructed)`:
#   * `z = ReLU((h - b_dec) @ W_enc + b_enc)`, shape `[batch, inst, d_sae]`;
#   * `h_reconstructed = z @ W_dec + b_dec`, shape `[batch, inst, d_in]`;
#   * `l2_loss [batch, inst]`: mean over `d_in` of the squared error;
#   * `l1_loss [batch, inst]`: sum over latents of $|z|$;
#   * `loss` (a 0-dim tensor): for each instance, the batch mean of `l2_loss + l1_coeff * l1_loss`;
#     then the **sum** over instances.
#
# Use `einops.einsum` for the products; every operation acts on all instances at once.

# %% test="test_sae_init" points=2
def _check_sae_init(n_inst: int, d_in: int, d_sae: int, tied: bool) -> SparseAutoencoder:
    torch.manual_seed(0)
    sae = SparseAutoencoder(SAEConfig(n_inst=n_inst, d_in=d_in, d_sae=d_sae, tied_weights=tied))
    names = {name for name, _ in sae.named_parameters()}
    expected = {"W_enc", "b_enc", "b_dec"} | (set() if tied else {"_W_dec"})
    assert_true(names == expected, f"tied_weights={tied}: expected the parameters {sorted(expected)}, got {sorted(names)}")
    assert_shape(sae.W_enc, (n_inst, d_in, d_sae), "W_enc")
    assert_shape(sae.W_dec, (n_inst, d_sae, d_in), f"W_dec (tied_weights={tied})")
    assert_close(sae.b_enc, torch.zeros(n_inst, d_sae), "b_enc (should start at zero)")
    assert_close(sae.b_dec, torch.zeros(n_inst, d_in), "b_dec (should start at zero)")
    assert_close(sae.W_dec.norm(dim=-1), torch.ones(n_inst, d_sae), "norms of the decoder rows after __init__")
    if tied:
        assert_close(sae.W_dec, sae.W_enc.transpose(-1, -2), "W_dec with tied weights (should be W_enc transposed)")
    return sae


for tied in (False, True):
    _check_sae_init(3, 2, 5, tied)

# The encoder keeps its Xavier scale (only the decoder is normalised).
sae = _check_sae_init(2, 40, 120, tied=False)
std, expected_std = sae.W_enc.std().item(), (2 / (40 + 120)) ** 0.5
assert_true(abs(std / expected_std - 1) < 0.05, f"std of W_enc is {std:.4f}; expected about {expected_std:.4f}")
assert_true(
    (sae.W_dec - sae.W_enc.transpose(-1, -2)).abs().max() > 0.01,
    "untied W_dec should be drawn independently of W_enc",
)

# normalize_decoder rescales each row to unit norm without turning it.
with torch.no_grad():
    sae._W_dec.mul_(torch.rand(2, 120, 1) * 3 + 0.1)
before = sae.W_dec.detach().clone()
sae.normalize_decoder()
assert_close(sae.W_dec, before / before.norm(dim=-1, keepdim=True), "W_dec after normalize_decoder")
### BEGIN HIDDEN TESTS
for tied in (False, True):
    _check_sae_init(1, 3, 7, tied)
    _check_sae_init(4, 6, 2, tied)
sae = _check_sae_init(3, 30, 90, tied=False)
assert_true(all(isinstance(p, torch.nn.Parameter) for p in (sae.W_enc, sae._W_dec, sae.b_enc, sae.b_dec)),
            "all four weights must be nn.Parameter")
std, expected_std = sae._W_dec.std().item(), 1 / 30 ** 0.5  # rows of d_in=30 entries, unit norm
assert_true(abs(std / expected_std - 1) < 0.05, "W_dec rows should be random unit vectors")
# Tied: normalize_decoder must rescale the encoder columns, and keep them unit after a change.
sae = _check_sae_init(2, 5, 8, tied=True)
with torch.no_grad():
    sae.W_enc.mul_(torch.rand(2, 1, 8) * 3 + 0.1)
before = sae.W_enc.detach().clone()
sae.normalize_decoder()
assert_close(sae.W_enc, before / before.norm(dim=1, keepdim=True), "tied W_enc columns after normalize_decoder")
assert_true(sae.W_enc.requires_grad, "normalize_decoder must keep W_enc a trainable parameter")
### END HIDDEN TESTS


# %% test="test_sae_forward" points=3
def _reference_forward(sae, h):
    """The SAE's forward pass, one instance at a time, with plain matrix products."""
    l1s, l2s, zs, recs = [], [], [], []
    for i in range(sae.cfg.n_inst):
        z_i = torch.relu((h[:, i] - sae.b_dec[i]) @ sae.W_enc[i] + sae.b_enc[i])
        rec_i = z_i @ sae.W_dec[i] + sae.b_dec[i]
        zs.append(z_i), recs.append(rec_i)
        l2s.append(((rec_i - h[:, i]) ** 2).mean(-1))
        l1s.append(z_i.abs().sum(-1))
    l1, l2 = torch.stack(l1s, 1), torch.stack(l2s, 1)
    loss = (l2 + sae.cfg.l1_coeff * l1).mean(0).sum()
    return l1, l2, loss, torch.stack(zs, 1), torch.stack(recs, 1)


def _check_forward(n_inst, d_in, d_sae, batch, l1_coeff, tied, seed):
    torch.manual_seed(seed)
    sae = SparseAutoencoder(SAEConfig(n_inst, d_in, d_sae, l1_coeff=l1_coeff, tied_weights=tied))
    with torch.no_grad():  # non-zero biases, so that a forgotten bias shows
        sae.b_enc.copy_(torch.randn(n_inst, d_sae) * 0.3)
        sae.b_dec.copy_(torch.randn(n_inst, d_in) * 0.5)
    h = torch.randn(batch, n_inst, d_in)
    out = sae(h)
    assert_true(len(out) == 5, "forward should return SAEOutput(l1_loss, l2_loss, loss, z, h_reconstructed)")
    l1, l2, loss, z, h_rec = out
    with torch.no_grad():
        ref = _reference_forward(sae, h)
    names = ["l1_loss", "l2_loss", "loss", "z", "h_reconstructed"]
    shapes = [(batch, n_inst), (batch, n_inst), (), (batch, n_inst, d_sae), (batch, n_inst, d_in)]
    for name, shape, got, want in zip(names, shapes, (l1, l2, loss, z, h_rec), ref):
        assert_shape(got, shape, f"{name} (tied_weights={tied})")
        assert_close(got, want, f"{name} (tied_weights={tied})", atol=1e-5, rtol=1e-4)
    assert_true(loss.requires_grad, "loss must be differentiable (did you compute it under no_grad or detach it?)")
    loss.backward()
    assert_true(sae.b_dec.grad is not None and sae.W_enc.grad is not None, "loss.backward() should reach W_enc and b_dec")


_check_forward(n_inst=3, d_in=4, d_sae=6, batch=16, l1_coeff=0.3, tied=False, seed=1)
_check_forward(n_inst=3, d_in=4, d_sae=6, batch=16, l1_coeff=0.3, tied=True, seed=1)
### BEGIN HIDDEN TESTS
_check_forward(n_inst=1, d_in=2, d_sae=5, batch=1, l1_coeff=0.25, tied=False, seed=11)
_check_forward(n_inst=5, d_in=7, d_sae=3, batch=33, l1_coeff=1.7, tied=False, seed=12)
_check_forward(n_inst=4, d_in=3, d_sae=9, batch=8, l1_coeff=0.0, tied=True, seed=13)
# Each term separately: a perfect reconstruction has l2 = 0, and l1 is an unweighted sum.
torch.manual_seed(14)
sae = SparseAutoencoder(SAEConfig(2, 3, 3, l1_coeff=0.5))
with torch.no_grad():
    sae.W_enc.copy_(torch.eye(3).expand(2, 3, 3))
    sae._W_dec.copy_(torch.eye(3).expand(2, 3, 3))
h = torch.rand(10, 2, 3)  # non-negative, so the ReLU keeps it all and h' = h
l1, l2, loss, z, h_rec = sae(h)
assert_close(l2, torch.zeros(10, 2), "l2_loss of a perfect reconstruction")
assert_close(l1, h.sum(-1), "l1_loss (sum over latents of |z|, not weighted by l1_coeff)")
assert_close(loss, 0.5 * h.sum(-1).mean(0).sum(), "loss: batch mean per instance, summed over instances")
### END HIDDEN TESTS

# %% [markdown] exercise="Measuring an SAE: L0, variance explained and dead latents" difficulty=2 importance=4 minutes="15-25"
# Fill in `sae_metrics` and `find_dead_latents`.
#
# * `sae_metrics(h, out)` returns a dict of three `[inst]` tensors, for one batch:
#   * `"l0"`: the number of latents with $z > 0$ on an input, averaged over the batch;
#   * `"l2_loss"`: the batch mean of `out.l2_loss`;
#   * `"fve"`: $1 - \frac{\sum_{b,d} (h - h')^2}{\sum_{b,d} (h - \bar h)^2}$, where $\bar h$ is the
#     batch mean of $h$ (per instance and dimension) and the sums run over the batch and `d_in`.
# * `find_dead_latents(frac_active_history, window, threshold=0.0)`: `frac_active_history [step, inst, d_sae]`
#   holds, for each training step so far (oldest first), the fraction of the batch on which each latent
#   fired. Return a boolean `[inst, d_sae]`: `True` for latents whose fraction, **averaged over the last
#   `window` steps**, is at most `threshold`. With the default `threshold = 0` these are the latents
#   that fired on nothing in the whole window. With fewer than `window` steps recorded, return all
#   `False`. Entries may be `NaN` (the training loop writes `NaN` into the record of a latent it has
#   just resampled, so that the latent gets a whole new window): such a latent must not count as dead.
#   (The original course accepted a window and silently ignored it; here the tests check that it is used.)

# %% test="test_sae_metrics" points=2
def _check_metrics(batch, n_inst, d_in, d_sae, seed):
    torch.manual_seed(seed)
    h = torch.randn(batch, n_inst, d_in)
    z = torch.relu(torch.randn(batch, n_inst, d_sae))
    h_rec = h + 0.3 * torch.randn(batch, n_inst, d_in)
    l2 = ((h_rec - h) ** 2).mean(-1)
    out = SAEOutput(l1_loss=z.sum(-1), l2_loss=l2, loss=l2.mean(0).sum(), z=z, h_reconstructed=h_rec)
    metrics = sae_metrics(h, out)
    assert_true(set(metrics) >= {"l0", "l2_loss", "fve"}, f"expected keys l0, l2_loss, fve; got {sorted(metrics)}")
    fve = 1 - ((h - h_rec) ** 2).sum((0, 2)) / ((h - h.mean(0)) ** 2).sum((0, 2))
    assert_close(metrics["l0"], (z > 0).float().sum(-1).mean(0), "l0 (mean number of active latents)")
    assert_close(metrics["l2_loss"], l2.mean(0), "l2_loss (batch mean)")
    assert_close(metrics["fve"], fve, "fve (fraction of variance explained)")


_check_metrics(batch=20, n_inst=3, d_in=2, d_sae=5, seed=2)
### BEGIN HIDDEN TESTS
_check_metrics(batch=7, n_inst=1, d_in=6, d_sae=11, seed=21)
_check_metrics(batch=64, n_inst=4, d_in=3, d_sae=2, seed=22)
# Tiny positive activations count as firing; a perfect reconstruction explains everything, the mean nothing.
h = torch.randn(10, 2, 3)
z = torch.zeros(10, 2, 4)
z[:3, 0, 1] = 1e-6
z[:, 1, :] = 2.0
mean_rec = h.mean(0, keepdim=True).expand_as(h)
for rec, fve in ((h, 1.0), (mean_rec, 0.0)):
    l2 = ((rec - h) ** 2).mean(-1)
    m = sae_metrics(h, SAEOutput(z.sum(-1), l2, l2.mean(0).sum(), z, rec))
    assert_close(m["fve"], torch.full((2,), fve), f"fve when h' = {'h' if fve else 'the batch mean of h'}")
    assert_close(m["l0"], torch.tensor([0.3, 4.0]), "l0 with tiny positive activations")
### END HIDDEN TESTS


# %% test="test_find_dead_latents" points=2
history = torch.zeros(6, 2, 4)  # 6 steps, 2 instances, 4 latents
history[0, 0, 0] = 0.5  # fired 6 steps ago, then never
history[1, 0, 1] = 0.01  # fired 5 steps ago
history[5, 1, 2] = 1e-3  # fired in the last step only
history[:, 1, 3] = 0.2  # fires all the time
expected = torch.tensor([[True, False, True, True], [True, True, False, False]])
dead = find_dead_latents(history, window=5)
assert_shape(dead, (2, 4), "dead latents")
assert_true(dead.dtype == torch.bool, f"find_dead_latents should return a bool tensor, got {dead.dtype}")
assert_true(torch.equal(dead, expected), f"window=5: expected\n{expected}\ngot\n{dead}")
expected6 = expected.clone()
expected6[0, 0] = False  # with a 6-step window the firing 6 steps ago counts
assert_true(torch.equal(find_dead_latents(history, window=6), expected6),
            "window=6: a latent that fired 6 steps ago is alive (is the window used?)")
assert_true(not find_dead_latents(history, window=7).any(),
            "with fewer recorded steps than the window, no latent can be called dead yet")
# A threshold: latent (1, 2) fired on 0.1% of one step's inputs, 0.02% on average over the last 5 steps.
assert_true(torch.equal(find_dead_latents(history, window=5, threshold=1e-3), torch.tensor([[True, False, True, True], [True, True, True, False]])),
            "threshold=1e-3: a latent whose average firing fraction over the window is <= 1e-3 is dead")
history[-1, 0, 0] = float("nan")  # just resampled: not dead, whatever the window says
assert_true(not find_dead_latents(history, window=5)[0, 0], "a latent with NaN in its record must not count as dead")
### BEGIN HIDDEN TESTS
torch.manual_seed(23)
for steps, window, threshold in ((50, 1, 0.0), (50, 17, 0.0), (50, 50, 0.0), (10, 11, 0.0), (60, 20, 0.004), (60, 60, 0.001)):
    h = (torch.rand(steps, 3, 20) < 0.03).float() * torch.rand(steps, 3, 20) * 0.1
    want = h[-window:].mean(0) <= threshold if steps >= window else torch.zeros(3, 20, dtype=torch.bool)
    got = find_dead_latents(h, window, threshold)
    assert_true(torch.equal(got, want), f"steps={steps}, window={window}, threshold={threshold}: wrong dead latents")
### END HIDDEN TESTS

# %% [markdown] exercise="The training step" difficulty=2 importance=4 minutes="10-15"
# `train_sae` is written except for the body of one step. Fill in the region marked in its cell:
# run the SAE on `h`, take one optimizer step on `out.loss` (zero the gradients, backward, call
# `sae.remove_parallel_decoder_grad()` between backward and `optimizer.step()`), renormalise the
# decoder, and set `frac_active [inst, d_sae]` to the fraction of the batch on which each latent fired
# ($z > 0$), detached. The loop stores `frac_active` for dead-latent detection and averages it for the
# log; the test checks the log on an SAE that cannot change (learning rate 0) and then a real training run.

# %% test="test_train_sae" points=2
torch.manual_seed(3)
sae = SparseAutoencoder(SAEConfig(n_inst=2, d_in=3, d_sae=4))
with torch.no_grad():
    sae.b_enc[:, 0] = -100.0  # latent 0 can never fire: it is dead from the start
h_fixed = torch.randn(64, 2, 3)
log = train_sae(sae, lambda batch_size: h_fixed, steps=30, batch_size=64, lr=0.0, log_every=10, dead_window=15,
                progress=False)
assert_true(log["step"].tolist() == [0, 10, 20, 29], f"logged steps should be [0, 10, 20, 29], got {log['step'].tolist()}")
with torch.no_grad():
    z = torch.relu(einops.einsum(h_fixed - sae.b_dec, sae.W_enc, "b i d, i d s -> b i s") + sae.b_enc)
for key, want in (("frac_active", (z > 0).float().mean(0)), ("l0", (z > 0).float().sum(-1).mean(0))):
    assert_shape(log[key], (4, *want.shape), f"log['{key}']")
    assert_close(log[key], want.expand(4, *want.shape), f"log['{key}'] with lr=0 on a fixed batch", atol=1e-5)
assert_close(log["dead_frac"], torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.25, 0.25], [0.25, 0.25]]),
             "log['dead_frac'] (latent 0 never fires; dead once 15 steps are recorded)")

# A real run: 3 sparse features in 3 dimensions. The loss must fall and the decoder rows stay unit.
torch.manual_seed(4)
sae = SparseAutoencoder(SAEConfig(n_inst=2, d_in=3, d_sae=3, l1_coeff=0.05))
W_enc_start = sae.W_enc.detach().clone()
log = train_sae(sae, lambda b: (torch.rand(b, 2, 3) < 0.1) * torch.rand(b, 2, 3), steps=300, batch_size=256,
                lr=1e-2, log_every=50, progress=False)
assert_true(not torch.allclose(sae.W_enc, W_enc_start), "W_enc did not change: is optimizer.step() called?")
assert_close(sae.W_dec.norm(dim=-1), torch.ones(2, 3), "decoder row norms after training (normalize_decoder)")
assert_true((log["l2_loss"][-1] < 0.5 * log["l2_loss"][0]).all(),
            f"reconstruction loss should at least halve in 300 steps: {log['l2_loss'][0].tolist()} -> {log['l2_loss'][-1].tolist()}")
### BEGIN HIDDEN TESTS
torch.manual_seed(31)
sae = SparseAutoencoder(SAEConfig(n_inst=3, d_in=2, d_sae=5, tied_weights=True))
log = train_sae(sae, lambda b: torch.rand(b, 3, 2) * (torch.rand(b, 3, 1) < 0.2), steps=200, batch_size=128,
                lr=1e-2, log_every=40, progress=False)
assert_close(sae.W_dec.norm(dim=-1), torch.ones(3, 5), "tied decoder row norms after training")
assert_true((log["l2_loss"][-1] < log["l2_loss"][0]).all(), "tied SAE: reconstruction loss should fall")
assert_true(((log["frac_active"] >= 0) & (log["frac_active"] <= 1)).all(), "frac_active must be a fraction")
### END HIDDEN TESTS

# %% [markdown] exercise="Did the SAE find the features?" difficulty=1 importance=3 minutes="5-10"
# To score an SAE against the toy model, write `best_latent_cosine(W_dec, W_features)`:
# for every true feature (column of `W_features [inst, d_in, feats]`), the largest cosine similarity
# between it and any latent's decoder row (`W_dec [inst, d_sae, d_in]`). Return `[inst, feats]`.
# We count a feature as **recovered** when this is above 0.9 (about 26°).

# %%
def best_latent_cosine(
    W_dec: Float[Tensor, "inst d_sae d_in"], W_features: Float[Tensor, "inst d_in feats"]
) -> Float[Tensor, "inst feats"]:
    ### BEGIN SOLUTION
    latents = W_dec / W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    features = W_features / W_features.norm(dim=1, keepdim=True).clamp(min=1e-8)
    cos = einops.einsum(latents, features, "inst d_sae d_in, inst d_in feats -> inst d_sae feats")
    return cos.max(dim=1).values
    ### END SOLUTION


# %% test="test_best_latent_cosine" points=1
W_dec = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # 1 instance, 2 latents along the axes
W_features = torch.tensor([[[2.0, 0.0, 1.0], [0.0, -3.0, 1.0]]])  # features (2, 0), (0, -3), (1, 1)
assert_close(best_latent_cosine(W_dec, W_features), torch.tensor([[1.0, 0.0, 0.5**0.5]]),
             "best cosine of features (2,0), (0,-3), (1,1) against latents (1,0), (0,1)")
### BEGIN HIDDEN TESTS
torch.manual_seed(41)
W_dec, W_features = torch.randn(3, 7, 4), torch.randn(3, 4, 5)
want = torch.stack([
    torch.stack([max(torch.cosine_similarity(W_dec[i, k], W_features[i, :, f], dim=0) for k in range(7)) for f in range(5)])
    for i in range(3)
])
assert_close(best_latent_cosine(W_dec, W_features), want, "best cosine on random directions (3 instances)")
### END HIDDEN TESTS

# %% [markdown]
# ## Training without resampling
#
# Time to train: one SAE per toy instance, 5 latents each, L1 coefficient 0.25, Adam at $10^{-3}$, a
# fresh batch of 1024 hidden vectors every step. Each latent that finds a feature should end up firing
# on a fraction $p = 0.01$ of the inputs: exactly as often as its feature is present.
#
# We call a latent dead when, over the last `DEAD_WINDOW` steps, it fired on at most
# `DEAD_THRESHOLD` $= p/10$ of the inputs: a tenth as often as a single feature occurs. Why not "never
# fired"? Some latents shrink until they can only fire when two features are active at once (the
# input is then longer than any single feature), which happens about once per batch. Such a latent
# never quite reaches zero, but it explains nothing. With `threshold = 0` these latents escape
# detection, and they were the first thing that kept our SAEs from recovering every feature.

# %% skip_grading=true
sae_cfg = SAEConfig(n_inst=toy_cfg.n_inst, d_in=toy_cfg.n_hidden, d_sae=toy_cfg.n_features, l1_coeff=0.25)
torch.manual_seed(SEED)
sae_plain = SparseAutoencoder(sae_cfg, device=device)
log_plain = train_sae(sae_plain, sample_h, steps=SAE_STEPS, log_every=LOG_EVERY, dead_window=DEAD_WINDOW,
                      dead_threshold=DEAD_THRESHOLD, snapshot_weights=True)
cos_plain = best_latent_cosine(sae_plain.W_dec.detach(), W_toy).cpu()
print(f"dead latents at the end: {log_plain['dead_frac'][-1].mean():.1%}")
print(f"features recovered (cos > 0.9): {(cos_plain > 0.9).float().mean():.1%}")
print("recovered per instance:", (cos_plain > 0.9).sum(-1).tolist())
print("latents duplicating a stronger one (decoder cos > 0.99), per instance:", find_duplicate_latents(sae_plain).sum(-1).tolist())

# %% [markdown]
# Each panel below is one instance: the toy model's five features in grey, the SAE's five decoder
# rows in blue. Look for grey arrows with no blue arrow on them: features that no latent learned.
# Their latents are usually dead, or two latents crowd onto the same feature.

# %% skip_grading=true fold="Show code"
plot_latents_vs_features(
    sae_plain.W_dec, W_toy,
    title="Without resampling: SAE decoder rows (blue) against the toy model's features (grey)",
    subplot_titles=[f"instance {i}: {int((c > 0.9).sum())}/5 found" for i, c in enumerate(cos_plain)],
).show()

# %% [markdown]
# How often each latent fires, through training. A latent that has found its feature settles on the
# dashed line at $p = 0.01$. Dead latents drop to 0 early and stay there: once a latent's ReLU is closed
# on every input, the reconstruction loss sends it no gradient, and only the L1 term, which pushes it
# further down, still acts on it.

# %% skip_grading=true fold="Show code"
plot_frac_active(log_plain, FEATURE_PROB, title="Without resampling: fraction of inputs each latent fires on").show()

# %% [markdown]
# The animation below replays training (press ▶ or drag the slider). Latents are blue while they fire,
# grey once they stop. Notice how early the fate of a latent is decided: a latent that starts pointing
# away from every feature, or loses the race for its feature to a neighbour, falls silent within the
# first few hundred steps.

# %% skip_grading=true fold="Show code"
animate_latents(log_plain, W_toy, title="Without resampling: SAE decoder rows through training").show()

# %% [markdown] fold="Why do latents die here?"
# At initialisation each latent reads a random direction. The ones that happen to point near a feature
# fire on it, get gradient and rotate onto it. A latent whose encoder direction has a negative dot
# product with every feature (plus a bias pushed down by L1) fires on nothing: with five directions
# spread around a circle, that happens to one or two latents in most instances. And when two latents
# compete for one feature, the one that reconstructs it better takes over; the L1 penalty then starves
# the other. Either way a latent is lost and, with exactly one latent per feature, a feature goes missing.

# %% [markdown] exercise="Rewriting dead latents, and random resampling" difficulty=3 importance=4 minutes="20-30"
# Fill in `reinitialize_latents` and `resample_simple` (cell *Resampling dead latents* above).
#
# * `reinitialize_latents(sae, dead, directions, neuron_resample_scale, optimizer)`: `dead [inst, d_sae]`
#   is boolean, `directions [inst, d_sae, d_in]` holds one unit vector per latent (use the rows where
#   `dead` is `True`, ignore the others). For each dead latent $k$ of instance $i$:
#   * decoder row `W_dec[i, k, :]` $\leftarrow$ `directions[i, k]`;
#   * encoder column `W_enc[i, :, k]` $\leftarrow$ `directions[i, k]` $\times$ `neuron_resample_scale`
#     $\times$ (mean norm of the encoder columns of instance $i$'s **alive** latents, measured before
#     any change, or 1 if instance $i$ has none); with tied weights the column is just `directions[i, k]`;
#   * `b_enc[i, k]` $\leftarrow 0$;
#   * if `optimizer` is given (an `Adam`), zero `exp_avg` and `exp_avg_sq` in `optimizer.state[param]`
#     for exactly the entries you rewrote (of `W_enc`, `_W_dec` when untied, `b_enc`).
#
#   Everything else stays as it was. Write it without a loop over instances or latents: build the new
#   tensors and pick between old and new with `torch.where` (or `masked_fill_`), writing in place into
#   the parameters (the function runs under `torch.no_grad()`).
# * `resample_simple(sae, dead, neuron_resample_scale, optimizer)`: draw a Gaussian vector for each latent,
#   normalise it, and hand the result to `reinitialize_latents`.

# %% test="test_reinitialize_latents" points=3
def _sae_with_adam_state(n_inst, d_in, d_sae, tied, seed):
    """An SAE with random biases, varied encoder norms and a filled-in Adam state."""
    torch.manual_seed(seed)
    sae = SparseAutoencoder(SAEConfig(n_inst, d_in, d_sae, tied_weights=tied))
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(n_inst, d_sae))
        sae.b_dec.copy_(torch.randn(n_inst, d_in))
        if not tied:
            sae.W_enc.mul_(torch.rand(n_inst, 1, d_sae) + 0.5)
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-3)
    sae(torch.randn(32, n_inst, d_in)).loss.backward()
    optimizer.step()
    return sae, optimizer


def _snapshot(sae, optimizer):
    params = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "b_dec": sae.b_dec}
    if sae._W_dec is not None:
        params["_W_dec"] = sae._W_dec
    return {name: (p.detach().clone(), {k: v.clone() for k, v in optimizer.state[p].items() if k != "step"})
            for name, p in params.items()}


def _check_rewrite(sae, optimizer, before, dead, scale, directions=None):
    """Checks shared by every resampling test; returns the new decoder rows of the dead latents."""
    alive = ~dead
    tied = sae.cfg.tied_weights
    W_enc0, W_dec0 = before["W_enc"][0], before["W_enc"][0].transpose(-1, -2) if tied else before["_W_dec"][0]
    W_enc, W_dec = sae.W_enc.detach(), sae.W_dec.detach()
    # Alive latents and b_dec untouched.
    assert_close(W_enc.transpose(-1, -2)[alive], W_enc0.transpose(-1, -2)[alive], "W_enc columns of alive latents (must not change)", atol=1e-7)
    assert_close(W_dec[alive], W_dec0[alive], "W_dec rows of alive latents (must not change)", atol=1e-7)
    assert_close(sae.b_enc.detach()[alive], before["b_enc"][0][alive], "b_enc of alive latents (must not change)", atol=1e-7)
    assert_close(sae.b_dec, before["b_dec"][0], "b_dec (must not change)", atol=1e-7)
    # Dead latents: unit decoder rows, scaled encoder columns along them, zero bias.
    new_rows = W_dec[dead]
    assert_close(new_rows.norm(dim=-1), torch.ones(len(new_rows)), "norms of the resampled decoder rows")
    if directions is not None:
        assert_close(new_rows, directions[dead], "resampled decoder rows (should equal `directions`)")
    alive_norms = W_enc0.norm(dim=1)  # [inst d_sae]
    n_alive = alive.sum(-1)
    alpha = torch.where(n_alive > 0, (alive_norms * alive).sum(-1) / n_alive.clamp(min=1), torch.ones(len(n_alive)))
    enc_scale = torch.ones_like(alpha) if tied else scale * alpha
    want_cols = W_dec * enc_scale[:, None, None]
    assert_close(W_enc.transpose(-1, -2)[dead], want_cols[dead],
                 "resampled W_enc columns (decoder direction x scale x mean alive encoder norm; tied: the direction)")
    assert_close(sae.b_enc.detach()[dead], torch.zeros(int(dead.sum())), "b_enc of resampled latents (should be 0)")
    # Adam moments: zero where rewritten, untouched elsewhere.
    masks = {"W_enc": dead[:, None, :].expand_as(W_enc), "b_enc": dead, "b_dec": torch.zeros_like(sae.b_dec, dtype=torch.bool)}
    if not tied:
        masks["_W_dec"] = dead[:, :, None].expand_as(W_dec)
    for name, mask in masks.items():
        param = getattr(sae, name)
        for key in ("exp_avg", "exp_avg_sq"):
            state = optimizer.state[param][key]
            assert_close(state[mask], torch.zeros(int(mask.sum())), f"Adam {key} of {name} for resampled latents (should be reset to 0)")
            assert_close(state[~mask], before[name][1][key][~mask], f"Adam {key} of {name} elsewhere (must not change)", atol=1e-9)
    return new_rows


sae, optimizer = _sae_with_adam_state(n_inst=3, d_in=4, d_sae=6, tied=False, seed=5)
dead = torch.tensor([[True, False, False, True, False, False], [False] * 6, [True] * 6])
directions = torch.randn(3, 6, 4)
directions /= directions.norm(dim=-1, keepdim=True)
before = _snapshot(sae, optimizer)
reinitialize_latents(sae, dead, directions, neuron_resample_scale=0.2, optimizer=optimizer)
_check_rewrite(sae, optimizer, before, dead, scale=0.2, directions=directions)
### BEGIN HIDDEN TESTS
for tied, scale, seed in ((True, 0.2, 51), (False, 0.7, 52)):
    sae, optimizer = _sae_with_adam_state(n_inst=4, d_in=3, d_sae=5, tied=tied, seed=seed)
    dead = torch.rand(4, 5) < 0.5
    dead[0] = False
    dead[1] = True
    directions = torch.randn(4, 5, 3)
    directions /= directions.norm(dim=-1, keepdim=True)
    before = _snapshot(sae, optimizer)
    reinitialize_latents(sae, dead, directions, neuron_resample_scale=scale, optimizer=optimizer)
    _check_rewrite(sae, optimizer, before, dead, scale=scale, directions=directions)
# Without an optimizer it must still work.
sae, _ = _sae_with_adam_state(n_inst=2, d_in=2, d_sae=3, tied=False, seed=53)
directions = torch.nn.functional.normalize(torch.randn(2, 3, 2), dim=-1)
reinitialize_latents(sae, torch.tensor([[True, False, False], [False, False, True]]), directions, 0.2, None)
assert_close(sae.W_dec[0, 0], directions[0, 0], "W_dec row of a resampled latent without optimizer")
assert_close(sae.b_enc[0, 0], torch.tensor(0.0), "b_enc of a resampled latent without optimizer")
### END HIDDEN TESTS

# %% test="test_resample_simple" points=2
sae, optimizer = _sae_with_adam_state(n_inst=3, d_in=4, d_sae=6, tied=False, seed=6)
dead = torch.tensor([[True, True, False, True, False, False], [False] * 6, [False, False, False, False, False, True]])
before = _snapshot(sae, optimizer)
resample_simple(sae, dead, neuron_resample_scale=0.5, optimizer=optimizer)
new_rows = _check_rewrite(sae, optimizer, before, dead, scale=0.5)
assert_true((new_rows - before["_W_dec"][0][dead]).abs().amax(-1).min() > 1e-3, "every dead latent should get a new direction")
assert_true(torch.pdist(new_rows).min() > 1e-3, "the resampled directions should be random, not all the same")
# Nothing dead: nothing changes.
before = _snapshot(sae, optimizer)
resample_simple(sae, torch.zeros(3, 6, dtype=torch.bool), neuron_resample_scale=0.5, optimizer=optimizer)
assert_close(sae.W_dec, before["_W_dec"][0], "W_dec after resampling with no dead latent", atol=0)
### BEGIN HIDDEN TESTS
sae, optimizer = _sae_with_adam_state(n_inst=2, d_in=3, d_sae=8, tied=True, seed=61)
dead = torch.zeros(2, 8, dtype=torch.bool)
dead[0, :5] = True
dead[1, -1] = True
before = _snapshot(sae, optimizer)
resample_simple(sae, dead, neuron_resample_scale=0.2, optimizer=optimizer)
new_rows = _check_rewrite(sae, optimizer, before, dead, scale=0.2)
assert_true(torch.pdist(new_rows).min() > 1e-3, "tied: the resampled directions should be random")
# Directions should be spread over the sphere, not biased to one orthant.
sae, optimizer = _sae_with_adam_state(n_inst=1, d_in=2, d_sae=400, tied=False, seed=62)
resample_simple(sae, torch.ones(1, 400, dtype=torch.bool), 0.2, optimizer)
assert_true(sae.W_dec[0].mean(0).abs().max() < 0.15, "random directions should average to about 0")
### END HIDDEN TESTS

# %% [markdown] exercise="Loss-weighted resampling" difficulty=4 importance=4 minutes="20-30"
# Fill in `resample_advanced(sae, h, dead, neuron_resample_scale, optimizer)`, with `h [batch, inst, d_in]`
# a batch of inputs:
#
# 1. Run the SAE on `h` and take `l2_loss [batch, inst]`, the squared reconstruction error of each input.
# 2. For each instance, draw `d_sae` batch indices with replacement, with probabilities proportional
#    to that instance's `l2_loss` (`torch.multinomial` draws from every row of a `[inst, batch]`
#    weight matrix at once). `l2_loss` is already squared: use it as it is. If an instance's losses are
#    all zero, use equal weights.
# 3. The direction for latent $k$ is the drawn input minus `b_dec`, normalised to unit length.
# 4. Hand the directions to `reinitialize_latents`.
#
# Why centre by `b_dec`? The decoder adds `b_dec` back, so an input is "explained" by the latent whose
# direction points from `b_dec` to it.

# %% test="test_resample_advanced" points=3
def _bad_input_batch(sae, batch, bad_rows, seed):
    """A batch the SAE reconstructs perfectly except the given rows: every other input equals b_dec
    and every latent is shut (b_enc = -100), so h' = b_dec."""
    torch.manual_seed(seed)
    n_inst, d_in = sae.cfg.n_inst, sae.cfg.d_in
    with torch.no_grad():
        sae.b_enc.fill_(-100.0)
    h = sae.b_dec.detach().expand(batch, n_inst, d_in).clone()
    offsets = {}
    for (row, inst), size in bad_rows.items():
        direction = torch.randn(d_in)
        offsets[row, inst] = direction / direction.norm() * size  # loss of this row = size**2 / d_in
        h[row, inst] += offsets[row, inst]
    return h, offsets


sae, optimizer = _sae_with_adam_state(n_inst=2, d_in=3, d_sae=6, tied=False, seed=7)
dead = torch.tensor([[True, False, True, True, False, False], [False, True, False, False, False, True]])
h, offsets = _bad_input_batch(sae, batch=50, bad_rows={(17, 0): 1.0, (4, 1): 1.0}, seed=7)
before = _snapshot(sae, optimizer)
resample_advanced(sae, h, dead, neuron_resample_scale=0.2, optimizer=optimizer)
_check_rewrite(sae, optimizer, before, dead, scale=0.2)
# The only input with a nonzero loss is row 17 in instance 0 and row 4 in instance 1: every dead latent points at it.
for inst, row in ((0, 17), (1, 4)):
    target = offsets[row, inst] / offsets[row, inst].norm()
    assert_close(sae.W_dec[inst][dead[inst]], target.expand(int(dead[inst].sum()), 3),
                 f"instance {inst}: dead decoder rows should point at (h - b_dec) of the only badly reconstructed input")

# Two bad inputs, losses in ratio 1 : 4: about 20% / 80% of 2000 dead latents should pick each.
sae, optimizer = _sae_with_adam_state(n_inst=1, d_in=2, d_sae=2000, tied=False, seed=8)
h, offsets = _bad_input_batch(sae, batch=10, bad_rows={(2, 0): 1.0, (6, 0): 2.0}, seed=8)
resample_advanced(sae, h, torch.ones(1, 2000, dtype=torch.bool), neuron_resample_scale=0.2, optimizer=optimizer)
big = offsets[6, 0] / offsets[6, 0].norm()
share = ((sae.W_dec[0] @ big) > 0.9999).float().mean().item()
assert_true(0.74 < share < 0.86, f"{share:.0%} of latents picked the input with 4x the loss; expected about 80% "
            "(94% means the loss was squared again; 50% means the draw ignored the loss)")
### BEGIN HIDDEN TESTS
# Several instances with bad rows at different places (catches indexing h with the wrong instance).
sae, optimizer = _sae_with_adam_state(n_inst=4, d_in=5, d_sae=7, tied=False, seed=71)
dead = torch.rand(4, 7) < 0.6
dead[:, 0] = True
bad = {(3, 0): 1.0, (40, 1): 2.0, (0, 2): 0.5, (63, 3): 1.5}
h, offsets = _bad_input_batch(sae, batch=64, bad_rows=bad, seed=71)
before = _snapshot(sae, optimizer)
resample_advanced(sae, h, dead, neuron_resample_scale=0.35, optimizer=optimizer)
_check_rewrite(sae, optimizer, before, dead, scale=0.35)
for (row, inst) in bad:
    target = offsets[row, inst] / offsets[row, inst].norm()
    assert_close(sae.W_dec[inst][dead[inst]], target.expand(int(dead[inst].sum()), 5), f"instance {inst}: dead rows")
# Tied weights.
sae, optimizer = _sae_with_adam_state(n_inst=2, d_in=3, d_sae=4, tied=True, seed=72)
dead = torch.tensor([[True, False, True, False], [False, False, False, True]])
h, offsets = _bad_input_batch(sae, batch=20, bad_rows={(5, 0): 1.0, (9, 1): 1.0}, seed=72)
before = _snapshot(sae, optimizer)
resample_advanced(sae, h, dead, neuron_resample_scale=0.2, optimizer=optimizer)
_check_rewrite(sae, optimizer, before, dead, scale=0.2)
for (row, inst) in ((5, 0), (9, 1)):
    target = offsets[row, inst] / offsets[row, inst].norm()
    assert_close(sae.W_dec[inst][dead[inst]], target.expand(int(dead[inst].sum()), 3), f"tied, instance {inst}")
# No dead latent: nothing changes.
before = _snapshot(sae, optimizer)
resample_advanced(sae, h, torch.zeros(2, 4, dtype=torch.bool), 0.2, optimizer)
assert_close(sae.W_enc, before["W_enc"][0], "W_enc after resampling with no dead latent", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# ## Training with resampling
#
# Same SAEs, same data, but every `RESAMPLE_EVERY` steps the dead latents are rewritten by
# loss-weighted resampling. Anthropic's recipe as written (what the exercises implement) recovers about
# 95% of the features here; four details, found by looking at the instances where it failed, take it
# to all of them:
#
# * **Nearly dead latents count as dead** (`dead_threshold`, above).
# * **At most one latent per instance is rewritten per event** (`max_resampled_per_inst=1`). In this
#   toy every input of one missing feature points in the same direction, so two dead latents rewritten
#   in the same event are both aimed at the worst feature, with identical weights, biases and
#   (zeroed) Adam state. From then on they receive identical gradients and stay exact twins forever
#   (question 4 below). Rewriting one latent at a time lets it take its feature before the next event
#   looks for the next worst one.
# * **Duplicates count as free** (`duplicate_cos=0.99`). Two latents can also end up sharing one
#   feature without being twins, for instance two latents that started near the same feature: one
#   strong, one weak, both firing on every input of that feature. Neither is dead, and this state
#   does not resolve by itself even in 20,000 steps, so the weaker of two latents whose decoder rows
#   are within about 8° is rewritten too (`find_duplicate_latents`, given). This one goes beyond the
#   paper: in a language model, near-identical latents are rare.
# * **A final phase without resampling** (`resample_until`): a latent rewritten near the end of
#   training would be judged half-trained, so the last quarter of training is left to settle.
#
# Section 7 trains a much larger SAE on a language model, whose inputs are varied enough that all the
# dead latents of an event can be rewritten at once; it keeps the final phase without resampling.

# %% skip_grading=true
torch.manual_seed(SEED)
sae_resampled = SparseAutoencoder(sae_cfg, device=device)
resampling = dict(
    dead_window=DEAD_WINDOW, dead_threshold=DEAD_THRESHOLD, resample="advanced", resample_every=RESAMPLE_EVERY,
    resample_until=RESAMPLE_UNTIL, max_resampled_per_inst=1, duplicate_cos=0.99, neuron_resample_scale=0.2,
)
log_resampled = train_sae(sae_resampled, sample_h, steps=SAE_STEPS, log_every=LOG_EVERY, snapshot_weights=True, **resampling)
cos_resampled = best_latent_cosine(sae_resampled.W_dec.detach(), W_toy).cpu()
n_resampled = int(log_resampled["resampled"].sum())
print(f"latents resampled over training: {n_resampled}")
print(f"dead latents at the end: {log_resampled['dead_frac'][-1].mean():.1%}")
print(f"features recovered (cos > 0.9): {(cos_resampled > 0.9).float().mean():.1%}")
print("recovered per instance:", (cos_resampled > 0.9).sum(-1).tolist())

# %% [markdown]
# Replay training again. Resampled latents are drawn **red** in the frame where they were rewritten: watch
# them appear pointing straight at a feature nobody covered (the inputs the SAE reconstructed worst
# were exactly that feature's), then turn blue as they start firing on it.

# %% skip_grading=true fold="Show code"
animate_latents(log_resampled, W_toy, title="With loss-weighted resampling: SAE decoder rows through training").show()

# %% skip_grading=true fold="Show code"
plot_latents_vs_features(
    sae_resampled.W_dec, W_toy,
    title="With resampling: SAE decoder rows (blue) against the toy model's features (grey)",
    subplot_titles=[f"instance {i}: {int((c > 0.9).sum())}/5 found" for i, c in enumerate(cos_resampled)],
).show()

# %% [markdown]
# The fraction of inputs each latent fires on: dotted red lines mark resampling events. After each
# event the rewritten latents climb from 0 to the dashed line at $p$, and by the end every latent of
# every instance fires at the rate of the feature it found.

# %% skip_grading=true fold="Show code"
plot_frac_active(log_resampled, FEATURE_PROB, title="With resampling: fraction of inputs each latent fires on").show()

# %% [markdown]
# ## Tied weights
#
# With tied weights the decoder is the encoder's transpose. The toy's features are independent and
# equally likely, and its hidden vectors lie along the features, so reading a feature along its own
# direction is the best an encoder can do here: tying costs nothing and halves the parameters. The
# same training loop and resampling work unchanged (the `W_dec` property and the tied branch of
# `reinitialize_latents` take care of it).

# %% skip_grading=true
torch.manual_seed(SEED)
tied_cfg = SAEConfig(n_inst=toy_cfg.n_inst, d_in=toy_cfg.n_hidden, d_sae=toy_cfg.n_features, l1_coeff=0.25, tied_weights=True)
sae_tied = SparseAutoencoder(tied_cfg, device=device)
log_tied = train_sae(sae_tied, sample_h, steps=SAE_STEPS, log_every=LOG_EVERY, **resampling)
cos_tied = best_latent_cosine(sae_tied.W_dec.detach(), W_toy).cpu()
print(f"tied: dead at the end {log_tied['dead_frac'][-1].mean():.1%}, "
      f"features recovered {(cos_tied > 0.9).float().mean():.1%}")

# %% [markdown]
# The four numbers we logged, averaged over instances, for the three runs. Notice the dead fraction
# of the plain run stepping up early and staying up, while the resampled runs drop back to 0 after
# each event; L0 settles near $5p = 0.05$ (one latent per active feature); the reconstruction loss of
# the resampled runs falls below that of the plain one as the missing features are picked up.

# %% skip_grading=true fold="Show code"
plot_training_curves(
    {"no resampling": log_plain, "loss-weighted resampling": log_resampled, "tied weights + resampling": log_tied},
    title="Training curves (mean over the 8 instances)",
).show()

# %% [markdown]
# Finally, what the resampled SAE does to a batch: grey dots are hidden vectors, blue dots their
# reconstructions. The reconstructions lie on the feature rays but fall a little short of the inputs:
# the L1 penalty makes every activation pay for its size, so the SAE *shrinks* what it reconstructs.
# This shrinkage is why the fraction of variance explained stays below 1 even when every feature is found.

# %% skip_grading=true fold="Show code"
h_batch = sample_h(300)
with torch.no_grad():
    h_rec = sae_resampled(h_batch).h_reconstructed
active = h_batch.norm(dim=-1).amax(-1) > 0  # leave out the inputs with no feature at all
plot_reconstructions(h_batch[active], h_rec[active], title="Hidden vectors (grey) and their SAE reconstructions (blue)").show()

# %% [markdown]
# ## Exploration: untied weights on features that are not evenly spread
#
# Tied weights worked because the pentagon is symmetric. Now take four features whose directions are
# *not* evenly spread: at angles $2\pi \cdot \{0, 0.25, 0.55, 0.70\}$ (each instance randomly rotated),
# with the toy model's $W$ set by hand rather than trained, $p = 0.025$ and 4 latents. Features 2
# and 3 are only $54°$ apart.
#
# Train an untied SAE and compare its encoder columns with its decoder rows: the **decoder** rows line
# up with the features, but the **encoder** columns of the crowded pair tilt away from each other. An
# encoder that read feature 2 along its own direction would also respond to feature 3, which has a
# large component along it; tilting away from the neighbour trades a little signal for much less
# interference. The encoder has to *disentangle*; the decoder only has to *reconstruct*. This is why
# real SAEs are trained untied, and why an encoder column is not a good picture of what a latent means.

# %% skip_grading=true
torch.manual_seed(SEED)
n_inst_u, angles = 8, 2 * torch.pi * torch.tensor([0.0, 0.25, 0.55, 0.70])
rotation = 2 * torch.pi * torch.rand(n_inst_u, 1)
W_uneven = torch.stack([torch.cos(angles + rotation), torch.sin(angles + rotation)], dim=1).to(device)  # [inst 2 feats]
toy_uneven = Model(Config(n_inst=n_inst_u, n_features=4, n_hidden=2), feature_probability=0.025, device=device)


def sample_h_uneven(batch_size: int) -> Float[Tensor, "batch inst d_hidden"]:
    with torch.no_grad():
        return einops.einsum(W_uneven, toy_uneven.generate_batch(batch_size), "inst d feats, batch inst feats -> batch inst d")


sae_uneven = SparseAutoencoder(SAEConfig(n_inst=n_inst_u, d_in=2, d_sae=4, l1_coeff=0.25), device=device)
log_uneven = train_sae(
    sae_uneven, sample_h_uneven, steps=EXPLORE_STEPS, log_every=LOG_EVERY,
    **{**resampling, "resample_until": int(EXPLORE_STEPS * 0.75), "dead_threshold": 0.025 / 10},
)
enc_dirs = einops.rearrange(sae_uneven.W_enc.detach(), "inst d_in d_sae -> inst d_sae d_in")
cos_dec_uneven = best_latent_cosine(sae_uneven.W_dec.detach(), W_uneven).cpu()
cos_enc_uneven = best_latent_cosine(enc_dirs, W_uneven).cpu()
print("best cosine per feature, decoder rows (mean over instances):", cos_dec_uneven.mean(0).numpy().round(3))
print("best cosine per feature, encoder columns (mean over instances):", cos_enc_uneven.mean(0).numpy().round(3))

# %% skip_grading=true fold="Show code"
plot_latents_vs_features(
    sae_uneven.W_dec, W_uneven, title="Uneven features: decoder rows (blue) match the features (grey)",
).show()
plot_latents_vs_features(
    enc_dirs / enc_dirs.norm(dim=-1, keepdim=True), W_uneven, latent_name="encoder columns (normalised)",
    title="Uneven features: encoder columns (normalised) tilt away from their crowded neighbours",
).show()

# %% [markdown]
# ## Questions
#
# 1. Without resampling, would more latents than features (say 8 per instance) help? What would you
#    expect to happen to the extra latents?
# 2. Loss-weighted resampling chose inputs the SAE reconstructs worst. In the toy model, which inputs
#    are those, and why does that make a resampled latent land on a *missing* feature almost every time?
# 3. Why must the encoder column of a resampled latent start small ($0.2\times$ the mean alive norm)?
#    What could go wrong with a full-size column?
# 4. Two latents of one SAE have identical encoder columns, decoder rows, biases and Adam state.
#    Show that one training step keeps them identical. What does that mean for resampling several
#    latents of one instance at once towards the same input?

# %% [markdown] only="solution"
# 1. Extra latents raise the chance that every feature is caught by *some* latent at initialisation,
#    so coverage improves. The extra latents end up dead, or share a feature with another latent
#    (splitting its activation); neither helps the loss, and the L1 term starves the weaker of a pair.
# 2. Inputs whose active feature has no latent: the SAE reconstructs them as roughly $b_\text{dec}$,
#    so their error is the whole input, far larger than the small shrinkage error on covered features.
#    Centred by $b_\text{dec}$ and normalised, such an input points exactly along the missing feature.
# 3. A full-size column would make the new latent fire strongly on inputs of the features its
#    direction overlaps, competing with the live latents there and raising the loss for a while. A small
#    column lets it start quietly, firing mostly on the inputs it is aimed at, and grow under the gradient.
# 4. Swapping the two latents leaves the SAE's output and loss unchanged, so the loss is symmetric
#    in them: at a point where they are equal its gradients with respect to their parameters are equal
#    too, and Adam, given equal gradients and equal state, makes equal updates. By induction they stay
#    equal for ever (the batch is shared, so no noise separates them). Two latents rewritten towards
#    the same input, or towards inputs along the same direction, are such twins: they share one
#    feature for the rest of training, and the dictionary is one latent short.

# %% [markdown]
# ## Results

# %% skip_grading=true
def _frac(cos):
    return round((cos > 0.9).float().mean().item(), 4)


results = {
    "dead_latents_before_resampling_frac": round(log_plain["dead_frac"][-1].mean().item(), 4),
    "dead_latents_after_resampling_frac": round(log_resampled["dead_frac"][-1].mean().item(), 4),
    "features_recovered_frac": _frac(cos_resampled),
    "features_recovered_frac_no_resampling": _frac(cos_plain),
    "l0": round(log_resampled["l0"][-1].mean().item(), 4),
    "fraction_variance_explained": round(log_resampled["fve"][-1].mean().item(), 4),
    "reconstruction_loss": round(log_resampled["l2_loss"][-1].mean().item(), 6),
    "latents_resampled_total": n_resampled,
    "tied_dead_latents_frac": round(log_tied["dead_frac"][-1].mean().item(), 4),
    "tied_features_recovered_frac": _frac(cos_tied),
    "uneven_decoder_best_cos_mean": round(cos_dec_uneven.mean().item(), 4),
    "uneven_encoder_best_cos_mean": round(cos_enc_uneven.mean().item(), 4),
    "toy_feature_norm_mean": round(W_toy.norm(dim=1).mean().item(), 4),
    "fast": FAST,
}
for key, value in results.items():
    print(f"{key:>40}: {value}")
save_results(6, results)
