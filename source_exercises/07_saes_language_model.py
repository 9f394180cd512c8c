# ---
# title: "Sparse autoencoders in a language model"
# short_title: "SAEs in a language model"
# essential: true
# prerequisites: [6]
# minutes: 180
# colab_requires: ["einops==0.8.2", "jaxtyping", "transformer_lens==3.9.0"]
# data: [lm]
# ---

# %% [markdown]
# # Sparse autoencoders in a language model
#
# In section 6 an SAE recovered the features of a toy model, where we knew the answer. Now we point
# the same SAE at a real language model, where nobody knows the answer, and ask the questions that
# matter in practice: how good is the SAE, what do its latents mean, and can we trust them?
#
# **The model.** A one-layer transformer (attention, then a GELU MLP with 512 neurons, LayerNorm,
# a 4096-token byte-level BPE vocabulary, context 128), the same shape as the model of Anthropic's
# *Towards Monosemanticity* (2023). The course trained it itself (`assets/lm_recipe/`, the `lm-assets` command), on a
# corpus of about 120 MB of Python code and English documentation taken from packages on the Python
# package index: the standard library, SymPy, SQLAlchemy, NumPy, NetworkX, Flask and friends, and
# **Django** (about 14 % of the corpus). Every file is labelled with the package it came from, so we
# can check claims like "this latent fires on Django code" against ground truth. The corpus is split
# by file: we evaluate on held-out files that the model never saw.
#
# **The SAEs.** Two SAEs on the MLP's post-GELU activations `blocks.0.mlp.hook_post`, each with
# $4 \times 512 = 2048$ latents, trained with **your section-6 code** (`train_sae` with loss-weighted
# resampling) and the same L1 coefficient, from two different random seeds. They are the two
# *instances* of one `SparseAutoencoder`, so everything you write here runs on both at once.
#
# What you will do:
#
# 1. Measure how often each latent fires, and look at the rare ones.
# 2. Measure the SAE: reconstruction error, explained variance, L0, dead latents, and the loss of the
#    model when the SAE's reconstruction replaces the real activations (with a confidence interval).
# 3. Interpret latents: top-activating contexts, the logits they push up and down, and how spread
#    out they are over the MLP's neurons.
# 4. Hunt for features, starting with Django, and check which latents both seeds found.
# 5. Build feature dashboards, and (bonus) estimate each latent's importance from gradients.
#
# Everything runs offline on a CPU: the model, tokenizer and SAEs ship with the course (about 12 MB).

# %%
import warnings

import einops
import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from course_helpers.dashboards import dashboard_figure, show_dashboard
from course_helpers.lm import HOOK_NAME, load_course_model, load_heldout, load_saes, training_record, vocab_strings
from coursepress.results import save_results
from course_helpers.sae import SAEConfig, SparseAutoencoder
from coursepress.testing import assert_close, assert_shape, assert_true

warnings.filterwarnings("ignore", category=DeprecationWarning)  # TransformerLens announces its 4.0 API
device = "cpu"  # the model is small: a CPU is plenty

# %% tags=["parameters"]
FAST = False
SEED = 0

# %%
# FAST evaluates on fewer held-out rows (each row: BOS + 127 tokens); every result still shows.
N_ROWS = 256 if FAST else 1024
BATCH = 32  # rows per forward pass
N_BOOTSTRAP = 1000  # resamples for the confidence intervals
torch.manual_seed(SEED)

# %% [markdown]
# ## The model, the SAEs and the data
#
# `load_course_model()` returns a TransformerLens `HookedTransformer`; `load_saes()` the two SAEs as
# a section-6 `SparseAutoencoder` with `n_inst = 2`; `load_heldout()` token rows from files the model
# never saw, plus, for every token, the file it came from. The files are loaded from the course
# repository if you have it, and otherwise downloaded once from the course site (about 12 MB).

# %%
model = load_course_model(device)
saes = load_saes(device)
tokens, doc_ids, docs = load_heldout(N_ROWS)
record = training_record()

n_inst, d_sae, d_mlp = saes.cfg.n_inst, saes.cfg.d_sae, saes.cfg.d_in
vocab = vocab_strings(model.tokenizer)  # each token's text (partial characters shown as bytes)
is_django_doc = torch.tensor([d["django"] for d in docs])
token_is_django: Bool[Tensor, "row pos"] = (doc_ids >= 0) & is_django_doc[doc_ids.clamp(min=0)]

print(f"model: {model.cfg.n_layers} layer, d_model {model.cfg.d_model}, d_mlp {d_mlp}, "
      f"vocab {model.cfg.d_vocab}, context {model.cfg.n_ctx}")
print(f"SAEs: {n_inst} instances x {d_sae} latents, L1 coefficient {saes.cfg.l1_coeff}")
print(f"held-out rows: {tuple(tokens.shape)}, from {len(docs)} files")
print(f"when the assets were built: held-out loss {record['heldout_eval']['loss_clean']:.3f} nats, "
      f"model trained {record['model']['seconds'] / 60:.1f} min, SAEs {record['sae']['seconds'] / 60:.1f} min "
      f"({record['device']})")
print(model.to_string(tokens[0, :60]))

# %% [markdown] fold="Using the original public model and SAEs instead (needs internet)"
# With internet access you can run the same analysis on the model this section was first written
# for, `gelu-1l` (one layer, 2048 MLP neurons, trained on web text and code), with Neel Nanda's two
# SAEs on its MLP (runs 25 and 47, 16384 latents each):
#
# ```python
# from course_helpers.lm import load_gelu_1l_from_hub
# model, saes, tokens = load_gelu_1l_from_hub()   # downloads ~1 GB; no per-file labels, so no Django check
# ```
#
# The functions you write below work unchanged on it; the parts that use the course's file labels
# (Django, documentation, test files) need the course's own held-out data.

# %% [markdown]
# Every position of a row is a prediction: position $i$ predicts token $i+1$. Position 0 holds the
# BOS token (`<|endoftext|>`), whose activations look like no other position's; the SAEs were trained
# without it, and we leave it out of every measurement. `get_mlp_acts` gives the SAEs' input,
# `hook_post`, on every token; `h_flat` is the same without BOS, one row per token.

# %%
@torch.no_grad()
def get_mlp_acts(model, tokens: Int[Tensor, "row pos"], batch_size: int = BATCH) -> Float[Tensor, "row pos d_mlp"]:
    """The MLP's post-GELU activations (the SAEs' input) at every position."""
    parts = []
    for part in tokens.split(batch_size):
        _, cache = model.run_with_cache(part, names_filter=HOOK_NAME)
        parts.append(cache[HOOK_NAME])
    return torch.cat(parts)


mlp_acts = get_mlp_acts(model, tokens)
h_flat = einops.rearrange(mlp_acts[:, 1:], "row pos d -> (row pos) d")  # BOS left out
django_flat = einops.rearrange(token_is_django[:, 1:], "row pos -> (row pos)")
django_base_rate = django_flat.float().mean().item()
print(f"{h_flat.shape[0]} tokens; {django_base_rate:.1%} of them are in Django files")

# %% [markdown]
# ## How often does each latent fire?
#
# A latent's **firing frequency** is the fraction of tokens on which it is active, $P(z_k > 0)$. It is
# not its mean activation: a latent that fires rarely but strongly and one that fires often but weakly
# can have the same mean. (The original version of this exercise computed the mean activation and
# called it a frequency; every plot and threshold built on it measured the wrong thing.)

# %% [markdown] exercise="Firing frequencies" difficulty=2 importance=4 minutes="10-20"
# Write `latent_frequencies(sae, h)`: for activations `h: [tokens, d_in]` return `[inst, d_sae]`, the
# fraction of tokens on which each latent of each instance is **strictly positive**.
#
# * Every instance reads the same tokens: copy `h` along a new `inst` axis
#   (`einops.repeat(..., "t d -> t inst d", inst=...)`) and use the SAE's `forward` (its `.z`).
# * The SAE makes a `[tokens, inst, d_sae]` tensor: go through `h` in chunks of `chunk` tokens so that
#   memory stays bounded, and add up the counts.

# %%
@torch.no_grad()
def latent_frequencies(sae: SparseAutoencoder, h: Float[Tensor, "tokens d_in"], chunk: int = 4096) -> Float[Tensor, "inst d_sae"]:
    ### BEGIN SOLUTION
    fired = torch.zeros(sae.cfg.n_inst, sae.cfg.d_sae, device=h.device)
    for part in h.split(chunk):
        z = sae(einops.repeat(part, "t d -> t inst d", inst=sae.cfg.n_inst)).z
        fired += einops.reduce((z > 0).float(), "t inst k -> inst k", "sum")
    return fired / h.shape[0]
    ### END SOLUTION
    ### BEGIN STUB
    # fired = torch.zeros(sae.cfg.n_inst, sae.cfg.d_sae, device=h.device)
    # for part in h.split(chunk):
    #     ...
    # return ...
    ### END STUB


# %%
# Two helpers for the tests below: a small SAE with random biases, and its latents computed naively.
def _random_sae(n_inst: int, d_in: int, d_sae: int, seed: int) -> SparseAutoencoder:
    torch.manual_seed(seed)
    sae = SparseAutoencoder(SAEConfig(n_inst=n_inst, d_in=d_in, d_sae=d_sae))
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.5)
        sae.b_dec.normal_(0, 0.5)
    return sae


def _z_reference(sae, h):
    pre = einops.einsum(h[:, None, :] - sae.b_dec, sae.W_enc, "t inst d, inst d k -> t inst k") + sae.b_enc
    return torch.relu(pre)


# %% test="test_latent_frequencies" points=2
_sae = _random_sae(2, 6, 10, seed=1)
_h = torch.randn(50, 6).relu()
_got = latent_frequencies(_sae, _h)
assert_shape(_got, (2, 10), "latent_frequencies(sae, h) with 2 instances, 10 latents")
assert_close(_got, (_z_reference(_sae, _h) > 0).float().mean(0), "firing frequencies", atol=1e-6)
assert_true(not torch.allclose(_got, _z_reference(_sae, _h).mean(0)),
            "this looks like the mean activation; the frequency is the fraction of tokens with z > 0")
### BEGIN HIDDEN TESTS
_sae = _random_sae(3, 5, 7, seed=2)
with torch.no_grad():
    _sae.b_enc[:, 0] = -100.0  # never fires
    _sae.b_enc[:, 1] = 100.0  # always fires
_h = torch.randn(101, 5)
_got = latent_frequencies(_sae, _h, chunk=8)  # chunks that do not divide the token count
assert_close(_got, (_z_reference(_sae, _h) > 0).float().mean(0), "frequencies with chunk=8 over 101 tokens", atol=1e-6)
assert_close(_got[:, 0], torch.zeros(3), "a latent that never fires", atol=0)
assert_close(_got[:, 1], torch.ones(3), "a latent that always fires", atol=1e-7)
### END HIDDEN TESTS

# %%
freqs = latent_frequencies(saes, h_flat)
l0 = freqs.sum(-1)  # the expected number of active latents per token is the sum of the firing rates
dead = freqs == 0
for i in range(n_inst):
    print(f"instance {i}: L0 = {l0[i]:.1f} active latents per token, "
          f"{dead[i].float().mean():.1%} of latents never fire on these {h_flat.shape[0]} tokens")

# %% [markdown]
# Notice the identity used for L0: the number of active latents on a token, averaged over tokens, is
# $\mathbb E\big[\sum_k \mathbf 1[z_k > 0]\big] = \sum_k P(z_k > 0)$, the sum of the frequencies.
#
# The histogram shows $\log_{10}$ of every latent's frequency, for both seeds (dead latents, which
# have frequency 0, are left out and counted in the title). Look at its shape: one broad bump of
# ordinary latents, firing on roughly 0.1 % to 10 % of tokens, and whether a separate cluster of very
# rare latents sits to its left.

# %% skip_grading=true fold="Show code"
fig = go.Figure()
for i in range(n_inst):
    alive = freqs[i][freqs[i] > 0]
    fig.add_trace(go.Histogram(x=alive.log10().numpy(), name=f"seed {i}", opacity=0.6, nbinsx=60))
fig.update_layout(
    barmode="overlay",
    title=f"Latent firing frequencies (dead: {dead[0].sum().item()} and {dead[-1].sum().item()} latents)",
    xaxis_title="log10(fraction of tokens on which the latent fires)", yaxis_title="latents",
)
fig.show()

# %% [markdown]
# ### The rare latents
#
# Anthropic found, in SAEs like these, an "ultralow-density cluster": latents that fire almost never
# and whose encoder directions all point the same way, a training artifact rather than features. We
# look at the rarest latents of seed 0: are their encoder directions unusually similar to each other?
# To find out we need the cosine similarity of every *pair* of them, without a latent's similarity
# with itself (which is always 1 and would inflate the picture).

# %% [markdown] exercise="Pairwise cosine similarities, without self-pairs" difficulty=2 importance=3 minutes="10-15"
# Write `pairwise_cosines(W)`: for `W: [n, d]` (one direction per row) return the cosine similarity of
# every unordered pair of distinct rows, a 1-D tensor of length $n(n-1)/2$, in the order of
# `torch.triu_indices(n, n, offset=1)`. Rows of zero norm have cosine 0 with everything.

# %%
def pairwise_cosines(W: Float[Tensor, "n d"]) -> Float[Tensor, "pairs"]:
    ### BEGIN SOLUTION
    unit = W / W.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    cos = einops.einsum(unit, unit, "i d, j d -> i j")
    i, j = torch.triu_indices(W.shape[0], W.shape[0], offset=1)
    return cos[i, j]
    ### END SOLUTION


# %% test="test_pairwise_cosines" points=1
torch.manual_seed(3)
_W = torch.randn(5, 3)
_want = torch.stack([torch.cosine_similarity(_W[a], _W[b], dim=0) for a in range(5) for b in range(a + 1, 5)])
_got = pairwise_cosines(_W)
assert_shape(_got, (10,), "pairwise_cosines of 5 rows (10 pairs)")
assert_close(_got, _want, "pairwise cosines of 5 random rows")
### BEGIN HIDDEN TESTS
assert_shape(pairwise_cosines(torch.randn(1, 4)), (0,), "a single row has no pairs")
_W = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
assert_close(pairwise_cosines(_W), torch.tensor([1.0, 0.0, -(0.5**0.5), 0.0, -(0.5**0.5), 0.0]),
             "pairwise cosines with a parallel pair and a zero row", atol=1e-6)
### END HIDDEN TESTS

# %%
RARE = 1e-4  # fires on fewer than 1 token in 10,000 (but not dead)
rare = (freqs[0] > 0) & (freqs[0] < RARE)
common = freqs[0] >= RARE
gen = torch.Generator().manual_seed(SEED)
enc_dirs = saes.W_enc[0].T  # [d_sae, d_in]: latent k reads along row k
rare_idx = torch.nonzero(rare).flatten()
common_idx = torch.nonzero(common).flatten()
common_idx = common_idx[torch.randperm(len(common_idx), generator=gen)[:max(len(rare_idx), 200)]]
cos_rare = pairwise_cosines(enc_dirs[rare_idx]) if len(rare_idx) > 1 else torch.empty(0)
cos_common = pairwise_cosines(enc_dirs[common_idx])
print(f"seed 0: {rare.sum().item()} rare latents (0 < frequency < {RARE:g}), {common.sum().item()} common ones")
if len(cos_rare):
    print(f"mean encoder cosine: rare pairs {cos_rare.mean():.3f}, common pairs {cos_common.mean():.3f}")

# %% [markdown]
# The histogram compares the encoder cosines of rare pairs with those of a random sample of common
# latents. Random directions in 512 dimensions have cosines near 0 (spread $\approx 1/\sqrt{512}
# \approx 0.04$); an artifact cluster would show up as rare pairs piled up far to the right.

# %% skip_grading=true fold="Show code"
# Binned here rather than by plotly: hundreds of rare latents make ~10^5 pairs, and raw values would
# put megabytes of numbers into the page for an 80-bar picture.
every_cos = torch.cat([cos_common, cos_rare]).float()
edges = torch.linspace(every_cos.min().item(), every_cos.max().item() + 1e-6, 81)
centres = ((edges[1:] + edges[:-1]) / 2).numpy()
fig = go.Figure()
for name, cos in [("common latents", cos_common), ("rare latents", cos_rare)]:
    if len(cos):
        share = torch.histogram(cos.float(), bins=edges).hist / len(cos)
        fig.add_trace(go.Bar(x=centres, y=share.numpy(), name=name, opacity=0.6, width=(edges[1] - edges[0]).item()))
fig.update_layout(barmode="overlay", title="Encoder cosine similarity between pairs of latents (seed 0, no self-pairs)",
                  xaxis_title="cosine similarity", yaxis_title="share of pairs")
fig.show()

# %% [markdown]
# ## How good is the SAE?
#
# An SAE is a lossy compression of the activations, so the first questions are how much it loses and
# whether what it loses matters to the model.
#
# ### Reconstruction error

# %% [markdown] exercise="Reconstruction metrics" difficulty=2 importance=4 minutes="15-20"
# Write `reconstruction_metrics(h, h_rec)` for activations `h: [tokens, d]` and their reconstructions
# by every instance `h_rec: [tokens, inst, d]`. Return a dict of three `[inst]` tensors:
#
# * `"mse"`: the mean over tokens and neurons of $(h' - h)^2$;
# * `"neuron_cosine"`: for each neuron $j$, the cosine similarity between the column $h_{:,j}$ and
#   $h'_{:,j}$ (taken over tokens), averaged over neurons (norms clamped at $10^{-8}$);
# * `"explained_variance"`: $1 - \sum \lVert h - h' \rVert^2 \,/\, \sum \lVert h - \bar h \rVert^2$ with
#   sums over tokens and $\bar h$ the mean activation vector over tokens.

# %%
def reconstruction_metrics(h: Float[Tensor, "tokens d"], h_rec: Float[Tensor, "tokens inst d"]) -> dict[str, Float[Tensor, "inst"]]:
    ### BEGIN SOLUTION
    err = h_rec - h[:, None, :]
    mse = einops.reduce(err**2, "t inst d -> inst", "mean")
    dot = einops.einsum(h, h_rec, "t d, t inst d -> inst d")
    norms = h.norm(dim=0).clamp(min=1e-8) * h_rec.norm(dim=0).clamp(min=1e-8)  # [inst d]
    neuron_cosine = (dot / norms).mean(-1)
    spread = ((h - h.mean(0)) ** 2).sum()
    explained_variance = 1 - einops.reduce(err**2, "t inst d -> inst", "sum") / spread
    return {"mse": mse, "neuron_cosine": neuron_cosine, "explained_variance": explained_variance}
    ### END SOLUTION


# %% test="test_reconstruction_metrics" points=2
torch.manual_seed(4)
_h = torch.randn(30, 4)
_rec = _h[:, None, :] + 0.3 * torch.randn(30, 2, 4)
_got = reconstruction_metrics(_h, _rec)
assert_true(set(_got) == {"mse", "neuron_cosine", "explained_variance"}, f"expected the keys mse, neuron_cosine, explained_variance; got {sorted(_got)}")
for _i in range(2):
    assert_close(_got["mse"][_i], ((_rec[:, _i] - _h) ** 2).mean(), f"mse of instance {_i}")
    _cos = torch.stack([torch.cosine_similarity(_h[:, j], _rec[:, _i, j], dim=0) for j in range(4)]).mean()
    assert_close(_got["neuron_cosine"][_i], _cos, f"mean per-neuron cosine of instance {_i}")
    _fve = 1 - ((_rec[:, _i] - _h) ** 2).sum() / ((_h - _h.mean(0)) ** 2).sum()
    assert_close(_got["explained_variance"][_i], _fve, f"explained variance of instance {_i}")
### BEGIN HIDDEN TESTS
_h = torch.randn(20, 3) + 5.0  # a large mean: explained variance is about the spread, not the raw size
_rec = einops.repeat(_h.mean(0), "d -> t inst d", t=20, inst=3).clone()
_got = reconstruction_metrics(_h, _rec)
assert_close(_got["explained_variance"], torch.zeros(3), "answering the mean explains no variance", atol=1e-5)
_got = reconstruction_metrics(_h, einops.repeat(_h, "t d -> t inst d", inst=3))
assert_close(_got["mse"], torch.zeros(3), "a perfect reconstruction has mse 0", atol=1e-10)
assert_close(_got["neuron_cosine"], torch.ones(3), "a perfect reconstruction has cosine 1", atol=1e-5)
assert_close(_got["explained_variance"], torch.ones(3), "a perfect reconstruction explains all variance", atol=1e-6)
### END HIDDEN TESTS

# %%
@torch.no_grad()
def reconstruct(sae: SparseAutoencoder, h: Float[Tensor, "tokens d"], chunk: int = 4096) -> Float[Tensor, "tokens inst d"]:
    """Every instance's reconstruction of `h`, computed in chunks of tokens."""
    return torch.cat([sae(einops.repeat(p, "t d -> t inst d", inst=sae.cfg.n_inst)).h_reconstructed for p in h.split(chunk)])


rec_metrics = reconstruction_metrics(h_flat, reconstruct(saes, h_flat))
mean_sq = (h_flat**2).mean().item()
for i in range(n_inst):
    print(f"instance {i}: MSE {rec_metrics['mse'][i]:.5f} (mean squared activation {mean_sq:.5f}), "
          f"per-neuron cosine {rec_metrics['neuron_cosine'][i]:.3f}, explained variance {rec_metrics['explained_variance'][i]:.3f}")

# %% [markdown]
# ### Loss recovered
#
# Reconstruction error says how far $h'$ is from $h$, not whether the model cares. So we splice the
# reconstruction into the forward pass, in place of the real activations, and measure the model's
# next-token loss. To put the number on a scale we compare with two ways of deleting the MLP's
# output altogether: **zero-ablation** (replace $h$ by 0) and **mean-ablation** (replace it by its
# average over the data, which keeps the "typical" MLP output and is the harder baseline):
#
# $$
# \text{loss recovered} = \frac{L_\text{ablated} - L_\text{SAE}}{L_\text{ablated} - L_\text{clean}} .
# $$
#
# 100 % means the reconstruction is as good as the real activations, 0 % that it is no better than
# deleting the MLP.

# %% [markdown] exercise="Per-sequence losses under substitution" difficulty=3 importance=5 minutes="20-30"
# Write `per_sequence_losses(model, sae, tokens, mean_act)`. For `tokens: [batch, pos]` return
# `[batch, 3 + inst]`: the model's mean next-token loss on each row when `hook_post` is
#
# * column 0: left alone; column 1: replaced by zeros; column 2: replaced by `mean_act: [d_mlp]` at every
#   position; column `3 + i`: replaced by instance `i`'s reconstruction.
#
# Use `model.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=[(HOOK_NAME, fn)])`;
# it returns `[batch, pos - 1]`, entry `j` being the loss of predicting token `j + 1` at position `j`.
# **Leave out position 0** (the prediction made at BOS) and average the rest of each row. A hook
# function receives `(activation, hook)` and returns the replacement. Compute the reconstructions
# once (e.g. from `run_with_cache`), not once per instance.

# %%
@torch.no_grad()
def per_sequence_losses(model, sae: SparseAutoencoder, tokens: Int[Tensor, "batch pos"], mean_act: Float[Tensor, "d_mlp"]) -> Float[Tensor, "batch variant"]:
    ### BEGIN SOLUTION
    _, cache = model.run_with_cache(tokens, names_filter=HOOK_NAME)
    h = cache[HOOK_NAME]  # [batch pos d_mlp]
    rec = sae(einops.repeat(h, "b p d -> (b p) inst d", inst=sae.cfg.n_inst)).h_reconstructed
    rec = einops.rearrange(rec, "(b p) inst d -> inst b p d", b=tokens.shape[0])

    def row_loss(hook_fn=None) -> Float[Tensor, "batch"]:
        hooks = [] if hook_fn is None else [(HOOK_NAME, hook_fn)]
        per_token = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=hooks)
        return per_token[:, 1:].mean(-1)

    columns = [
        row_loss(),
        row_loss(lambda act, hook: torch.zeros_like(act)),
        row_loss(lambda act, hook: mean_act.expand_as(act)),
    ]
    columns += [row_loss(lambda act, hook, i=i: rec[i]) for i in range(sae.cfg.n_inst)]
    return torch.stack(columns, dim=-1)
    ### END SOLUTION


# %% test="test_per_sequence_losses" points=3
def _reference_row_losses(model, tokens, replacement=None):
    """Mean next-token loss of each row, positions 1.. as predictors, with hook_post replaced."""
    hooks = [] if replacement is None else [(HOOK_NAME, lambda act, hook: replacement(act))]
    logits = model.run_with_hooks(tokens, fwd_hooks=hooks)  # [batch pos vocab]
    logprobs = logits.log_softmax(-1)[:, 1:-1]
    nll = -logprobs.gather(-1, tokens[:, 2:, None])[..., 0]
    return nll.mean(-1)


with torch.no_grad():
    _rows = tokens[:3]
    _mean = mlp_acts[:, 1:].mean((0, 1))
    _got = per_sequence_losses(model, saes, _rows, _mean)
    assert_shape(_got, (3, 3 + n_inst), "per_sequence_losses on 3 rows")
    assert_close(_got[:, 0], _reference_row_losses(model, _rows), "clean loss per row (position 0 left out)", atol=1e-4)
    assert_close(_got[:, 1], _reference_row_losses(model, _rows, torch.zeros_like), "zero-ablated loss per row", atol=1e-4)
    assert_close(_got[:, 2], _reference_row_losses(model, _rows, lambda a: _mean.expand_as(a)), "mean-ablated loss per row", atol=1e-4)
    for _i in range(n_inst):
        _rec = lambda a, i=_i: reconstruct(saes, a.reshape(-1, a.shape[-1]))[:, i].reshape(a.shape)
        assert_close(_got[:, 3 + _i], _reference_row_losses(model, _rows, _rec), f"loss per row with instance {_i}'s reconstruction", atol=1e-4)
### BEGIN HIDDEN TESTS
with torch.no_grad():
    _sae1 = _random_sae(1, d_mlp, 64, seed=5)
    _rows = tokens[5:7, :40]
    _mean = torch.rand(d_mlp) * 0.1
    _got = per_sequence_losses(model, _sae1, _rows, _mean)
    assert_shape(_got, (2, 4), "per_sequence_losses with a 1-instance SAE on 2 rows of 40 tokens")
    assert_close(_got[:, 2], _reference_row_losses(model, _rows, lambda a: _mean.expand_as(a)), "mean-ablated loss with another mean", atol=1e-4)
    _rec = lambda a: reconstruct(_sae1, a.reshape(-1, a.shape[-1]))[:, 0].reshape(a.shape)
    assert_close(_got[:, 3], _reference_row_losses(model, _rows, _rec), "loss with a random 1-instance SAE", atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# A ratio of two noisy averages needs an error bar. The rows are independent samples, so we
# **bootstrap** over rows: draw rows with replacement, recompute the ratio, and take the 2.5 % and
# 97.5 % quantiles of the results as a 95 % confidence interval.

# %%
def loss_recovered(row_losses: Float[Tensor, "batch variant"], baseline: int, n_boot: int = N_BOOTSTRAP, seed: int = SEED):
    """(estimate [inst], low [inst], high [inst]) of the loss recovered against column `baseline` (1 zero, 2 mean)."""
    def ratio(losses):
        mean = losses.mean(0)
        return (mean[baseline] - mean[3:]) / (mean[baseline] - mean[0])

    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, row_losses.shape[0], (n_boot, row_losses.shape[0]), generator=gen)
    boots = torch.stack([ratio(row_losses[p]) for p in picks])
    return ratio(row_losses), boots.quantile(0.025, dim=0), boots.quantile(0.975, dim=0)


mean_act = h_flat.mean(0)
row_losses = torch.cat([per_sequence_losses(model, saes, part, mean_act) for part in tokens.split(BATCH)])
L = row_losses.mean(0)
print(f"loss: clean {L[0]:.3f}, zero-ablated {L[1]:.3f}, mean-ablated {L[2]:.3f}, "
      + ", ".join(f"SAE {i} {L[3 + i]:.3f}" for i in range(n_inst)))
recovered = {}
for name, col in (("zero", 1), ("mean", 2)):
    est, lo, hi = loss_recovered(row_losses, col)
    recovered[name] = est
    for i in range(n_inst):
        print(f"loss recovered vs {name}-ablation, instance {i}: {est[i]:.1%} (95% CI {lo[i]:.1%} to {hi[i]:.1%})")

# %% [markdown]
# Notice how much the baseline matters. Zero-ablation is a brutal intervention (the MLP never outputs
# anything like zero), so almost anything beats it; against mean-ablation the same SAE scores lower.
# Always say which baseline a "loss recovered" number uses. And notice the width of the intervals:
# the original exercise reported this number from 5 sequences, which would make the interval several
# times wider.

# %% [markdown]
# ## What does a latent mean?
#
# ### Top-activating contexts

# %% [markdown] exercise="A latent's activations and its top contexts" difficulty=2 importance=5 minutes="15-25"
# Write two functions.
#
# * `latent_activations(sae, h, inst, latent)`: for `h: [batch, pos, d_in]` return `[batch, pos]`, the
#   activation of one latent of one instance on every token: the **full** encoder,
#   $\operatorname{ReLU}\big((h - b_\text{dec}) \cdot W_\text{enc}[:, k] + b_\text{enc}[k]\big)$, bias and ReLU
#   included (so the values are the ones the SAE really uses). Do not run all `d_sae` latents.
# * `top_activations(acts, k)`: for `acts: [batch, pos]` return `(indices, values)`: the `k` largest
#   entries, largest first, `values: [k]` and `indices: [k, 2]` (long) holding each one's (row, position).

# %%
def latent_activations(sae: SparseAutoencoder, h: Float[Tensor, "batch pos d_in"], inst: int, latent: int) -> Float[Tensor, "batch pos"]:
    ### BEGIN SOLUTION
    pre = (h - sae.b_dec[inst]) @ sae.W_enc[inst, :, latent] + sae.b_enc[inst, latent]
    return torch.relu(pre)
    ### END SOLUTION


def top_activations(acts: Float[Tensor, "batch pos"], k: int) -> tuple[Int[Tensor, "k 2"], Float[Tensor, "k"]]:
    ### BEGIN SOLUTION
    values, flat = acts.flatten().topk(k)
    rows, positions = flat // acts.shape[1], flat % acts.shape[1]
    return torch.stack([rows, positions], dim=-1), values
    ### END SOLUTION


# %% test="test_top_activations" points=2
_sae = _random_sae(2, 8, 12, seed=6)
_h = torch.randn(3, 5, 8)
with torch.no_grad():
    _z = _z_reference(_sae, _h.reshape(-1, 8)).reshape(3, 5, 2, 12)
    assert_close(latent_activations(_sae, _h, 1, 7), _z[:, :, 1, 7], "latent_activations(inst=1, latent=7)", atol=1e-5)
_acts = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 2.0]])
_idx, _vals = top_activations(_acts, 3)
assert_close(_vals, torch.tensor([5.0, 3.0, 2.0]), "top 3 values, largest first")
assert_true(_idx.tolist() == [[1, 0], [0, 1], [1, 2]], f"indices should be [[1, 0], [0, 1], [1, 2]], got {_idx.tolist()}")
### BEGIN HIDDEN TESTS
with torch.no_grad():
    _sae.b_enc[0, 3] = -50.0
    assert_close(latent_activations(_sae, _h, 0, 3), torch.zeros(3, 5), "a latent with a very negative bias (ReLU!)", atol=0)
    _sae.b_enc[0, 4] = 2.0
    assert_close(latent_activations(_sae, _h, 0, 4), _z_reference(_sae, _h.reshape(-1, 8)).reshape(3, 5, 2, 12)[:, :, 0, 4],
                 "a latent with a positive bias (the bias must be included)", atol=1e-5)
torch.manual_seed(7)
_acts = torch.rand(4, 9)
_idx, _vals = top_activations(_acts, 5)
assert_true(_idx.dtype == torch.long and tuple(_idx.shape) == (5, 2), "indices must be a long tensor of shape [k, 2]")
assert_close(_vals, _acts.flatten().sort(descending=True).values[:5], "top 5 of a 4 x 9 tensor")
assert_close(_acts[_idx[:, 0], _idx[:, 1]], _vals, "values at the returned (row, position) indices")
### END HIDDEN TESTS

# %% [markdown]
# `contexts_for` turns top activations into something to read: the tokens around each hit (14 before,
# 4 after), each one shaded by the latent's activation on it, with the file it came from.
# `show_latent` prints them; hover a token on the page to see its exact activation.

# %%
def contexts_for(acts: Float[Tensor, "batch pos"], k: int = 10, before: int = 14, after: int = 4) -> list[dict]:
    idx, values = top_activations(acts, k)
    out = []
    for (row, pos), value in zip(idx.tolist(), values.tolist()):
        lo, hi = max(1, pos - before), min(acts.shape[1], pos + after + 1)
        doc = doc_ids[row, pos].item()
        out.append({
            "str_tokens": [vocab[t] for t in tokens[row, lo:hi].tolist()],
            "acts": acts[row, lo:hi].tolist(),
            "centre": pos - lo,
            "value": value,
            "label": docs[doc]["path"] if doc >= 0 else "(between files)",
        })
    return out


def show_latent(inst: int, latent: int, k: int = 8) -> None:
    acts = latent_activations(saes, mlp_acts, inst, latent)
    acts[:, 0] = 0  # BOS is not evaluated
    print(f"instance {inst}, latent {latent}: fires on {(acts[:, 1:] > 0).float().mean():.3%} of tokens")
    for c in contexts_for(acts, k):
        print(f"{c['value']:7.3f}  {c['label'][-38:]:>38}  {''.join(c['str_tokens'])!r}")


# The most frequent latent that fires on fewer than 1% of tokens: a typical, specific latent.
_candidates = torch.nonzero((freqs[0] > 0) & (freqs[0] < 0.01)).flatten()
example_latent = _candidates[freqs[0][_candidates].argmax()].item()
show_latent(0, example_latent)

# %% [markdown] fold="A caution about top-activating examples"
# Top activations show what a latent does at its *strongest*, which is not the same as what it does.
# A latent can fire weakly on many unrelated tokens (the bulk of its firing), and its top examples can
# share a pattern by coincidence or because we read one into them (the "interpretability illusion").
# Look at random firings and at the activation histogram too (the dashboards below show it), and test
# a hypothesis against labels you did not use to form it, as we do with the Django labels below.

# %% [markdown]
# ### What a latent does: its direct effect on the logits
#
# Latent $k$ adds $z_k d_k$ to the MLP's activations ($d_k$ its decoder row), which adds
# $z_k\, d_k W_\text{out}$ to the residual stream. Before the unembedding the final LayerNorm
# *centres* the residual vector (subtracts the mean of its coordinates), divides it by its norm and
# multiplies each coordinate by a learned weight $w$. The division depends on the whole residual stream
# at that token, not on the latent, so we cannot include it; it scales every logit alike and leaves
# the ranking of tokens unchanged. The rest is linear, so the latent's **direct effect** on the logits
# per unit of activation is
#
# $$
# \big(\operatorname{centre}(d_k W_\text{out}) \odot w\big)\, W_U \in \mathbb R^{d_\text{vocab}} .
# $$
#
# "Direct" because it ignores any later use of the latent's output: fine for a one-layer model, where
# nothing comes after the MLP but the unembedding.

# %% [markdown] exercise="A latent's logit effect" difficulty=2 importance=4 minutes="10-20"
# Write `logit_effect(model, sae, inst, latent)` returning `[d_vocab]` as above: the decoder row
# `sae.W_dec[inst, latent]`, through `model.W_out[0]` (`[d_mlp, d_model]`), centred (subtract the mean
# over `d_model`), times `model.ln_final.w`, through `model.W_U` (`[d_model, d_vocab]`).

# %%
def logit_effect(model, sae: SparseAutoencoder, inst: int, latent: int) -> Float[Tensor, "d_vocab"]:
    ### BEGIN SOLUTION
    resid = sae.W_dec[inst, latent] @ model.W_out[0]  # [d_model]
    resid = resid - resid.mean()  # the final LayerNorm centres its input
    return (resid * model.ln_final.w) @ model.W_U
    ### END SOLUTION


# %% test="test_logit_effect" points=2
with torch.no_grad():
    _d = saes.W_dec[1, 5] @ model.W_out[0]
    _want = ((_d - _d.mean()) * model.ln_final.w) @ model.W_U
    _got = logit_effect(model, saes, 1, 5)
    assert_shape(_got, (model.cfg.d_vocab,), "logit_effect")
    assert_close(_got, _want, "logit effect of instance 1, latent 5", atol=1e-4)
### BEGIN HIDDEN TESTS
with torch.no_grad():
    _sae = _random_sae(3, d_mlp, 20, seed=8)
    _d = _sae.W_dec[2, 19] @ model.W_out[0]
    _uncentred = (_d * model.ln_final.w) @ model.W_U
    _want = ((_d - _d.mean()) * model.ln_final.w) @ model.W_U
    _got = logit_effect(model, _sae, 2, 19)
    assert_close(_got, _want, "logit effect of a random SAE's instance 2, latent 19", atol=1e-4)
    assert_true((_got - _uncentred).abs().max() > 1e-4 or _d.mean().abs() < 1e-6, "remember to centre before the LayerNorm weight")
### END HIDDEN TESTS

# %%
def show_logits(effect: Float[Tensor, "d_vocab"], k: int = 10) -> None:
    top, bottom = effect.topk(k), (-effect).topk(k)
    print("raises: ", ", ".join(f"{vocab[i]!r} {v:+.2f}" for v, i in zip(top.values.tolist(), top.indices.tolist())))
    print("lowers: ", ", ".join(f"{vocab[i]!r} {-v:+.2f}" for v, i in zip(bottom.values.tolist(), bottom.indices.tolist())))


with torch.no_grad():
    show_logits(logit_effect(model, saes, 0, example_latent))

# %% [markdown]
# ### Is the latent just a neuron?
#
# If the MLP's neurons were already monosemantic we would not need an SAE. One way to check: how is
# a latent's decoder row spread over the 512 neurons? A latent aligned with one neuron puts almost all
# its weight there; a "dense" latent spreads it out, which means no single neuron carries the feature.

# %% [markdown] exercise="Neuron shares of a latent" difficulty=1 importance=3 minutes="5-10"
# Write `neuron_shares(sae, inst, latent)`: `[d_in]`, the share of the decoder row's L1 norm carried by
# each neuron, $|d_{k,j}| / \sum_{j'} |d_{k,j'}|$.

# %%
def neuron_shares(sae: SparseAutoencoder, inst: int, latent: int) -> Float[Tensor, "d_in"]:
    ### BEGIN SOLUTION
    row = sae.W_dec[inst, latent].abs()
    return row / row.sum()
    ### END SOLUTION


# %% test="test_neuron_shares" points=1
_sae = _random_sae(2, 4, 3, seed=9)
with torch.no_grad():
    _sae._W_dec[1, 2] = torch.tensor([0.5, -0.5, 0.5, -0.5])
assert_close(neuron_shares(_sae, 1, 2), torch.full((4,), 0.25), "shares of a row spread evenly over 4 neurons")
### BEGIN HIDDEN TESTS
_row = _sae.W_dec[0, 1].detach()
assert_close(neuron_shares(_sae, 0, 1), _row.abs() / _row.abs().sum(), "shares of a random row (signs must not cancel)")
### END HIDDEN TESTS

# %%
def neuron_summary(inst: int, latent: int, k: int = 8) -> None:
    """The neurons that carry the most of a latent, and what each of them pushes up directly."""
    with torch.no_grad():
        shares = neuron_shares(saes, inst, latent)
        neuron_logits = (model.W_out[0] - model.W_out[0].mean(-1, keepdim=True)) * model.ln_final.w @ model.W_U
        top_token = logit_effect(model, saes, inst, latent).argmax().item()
    order = shares.argsort(descending=True)
    n_half = int((shares.sort(descending=True).values.cumsum(0) < 0.5).sum()) + 1
    print(f"latent {latent}: the top neuron carries {shares.max():.1%} of the L1 norm; "
          f"{n_half} of {d_mlp} neurons are needed for half of it (uniform spread: {d_mlp // 2})")
    print(f"the latent's most raised token: {vocab[top_token]!r}")
    for j in order[:k].tolist():
        boosts = neuron_logits[j].topk(3).indices.tolist()
        rank = int((neuron_logits[j] > neuron_logits[j, top_token]).sum())
        print(f"  neuron {j:3d}: {shares[j]:.2%} of the norm, raises {[vocab[t] for t in boosts]}, "
              f"rank of {vocab[top_token]!r} among its raised tokens: {rank}")


neuron_summary(0, example_latent)

# %% [markdown]
# A feature spread over many neurons, none of which raises the latent's favourite token by itself,
# is what superposition predicts: the neuron basis is not where the features are.

# %% [markdown]
# ## Finding features
#
# Let us test interpretations against ground truth. The held-out files carry labels (which package,
# code or docs), so for a latent we can ask: of the tokens where it fires strongly, what share is in
# Django files? If that share is far above the **base rate** (the share of all evaluated tokens that
# are in Django files), the latent is about Django.

# %% [markdown] exercise="Precision of latents for a set of tokens" difficulty=3 importance=4 minutes="15-25"
# Write `activation_precision(acts, in_set, rel_threshold=0.25)`. `acts: [tokens, n]` holds the
# activations of `n` latents; `in_set: [tokens]` (bool) marks the tokens of interest. For each latent,
# its **strong firings** are the tokens where its activation is above `rel_threshold` times its own
# maximum over all tokens. Return `[n]`: the share of each latent's strong firings that are in the set,
# and `nan` for a latent that never fires (maximum 0). No Python loop over latents.

# %%
def activation_precision(acts: Float[Tensor, "tokens n"], in_set: Bool[Tensor, "tokens"], rel_threshold: float = 0.25) -> Float[Tensor, "n"]:
    ### BEGIN SOLUTION
    peak = acts.max(dim=0).values  # [n]
    strong = (acts > rel_threshold * peak) & (peak > 0)
    n_strong = strong.sum(0).float()
    n_in = (strong & in_set[:, None]).sum(0).float()
    return torch.where(peak > 0, n_in / n_strong.clamp(min=1), torch.full_like(peak, float("nan")))
    ### END SOLUTION


# %% test="test_activation_precision" points=2
_acts = torch.tensor([[4.0, 0.0, 0.0], [0.5, 0.0, 1.0], [2.0, 0.0, 1.0], [1.5, 0.0, 0.2]])
_in = torch.tensor([True, False, True, False])
_got = activation_precision(_acts, _in)
assert_shape(_got, (3,), "activation_precision of 3 latents")
# latent 0: max 4, strong = {4, 2, 1.5} (> 1), 2 of 3 in the set; latent 1 never fires; latent 2: {1, 1} -> 1 of 2
assert_close(_got[[0, 2]], torch.tensor([2 / 3, 0.5]), "precision of latents 0 and 2")
assert_true(torch.isnan(_got[1]), "a latent that never fires should give nan")
### BEGIN HIDDEN TESTS
torch.manual_seed(10)
_acts = torch.rand(200, 6) * (torch.rand(200, 6) > 0.7)
_in = torch.rand(200) > 0.5
for _rel in (0.25, 0.6):
    _want = torch.stack([(_in[_acts[:, j] > _rel * _acts[:, j].max()]).float().mean() for j in range(6)])
    assert_close(activation_precision(_acts, _in, _rel), _want, f"precision of random latents at rel_threshold={_rel}")
### END HIDDEN TESTS

# %% [markdown]
# To scan all 2048 latents of seed 0 we compute their activations in blocks of 512 (the full
# `[tokens, 2048]` matrix would take about a gigabyte) and measure, for every latent, its precision for
# several sets of tokens at once: Django files, English documentation (`.rst`/`.md` files), and test
# files. We also count each latent's strong firings: a precision computed from 3 tokens means little.

# %%
doc_kind = [d["kind"] for d in docs]
doc_path = [d["path"] for d in docs]


def doc_mask(pred) -> Bool[Tensor, "tokens"]:
    keep = torch.tensor([bool(pred(i)) for i in range(len(docs))])
    mask = (doc_ids >= 0) & keep[doc_ids.clamp(min=0)]
    return einops.rearrange(mask[:, 1:], "row pos -> (row pos)")


token_sets = {
    "django": django_flat,
    "docs": doc_mask(lambda i: doc_kind[i] == "doc"),
    "tests": doc_mask(lambda i: "test" in doc_path[i].split("/")[-1] or "/tests/" in doc_path[i]),
}
base_rates = {name: mask.float().mean().item() for name, mask in token_sets.items()}


@torch.no_grad()
def scan_latents(inst: int, block: int = 512):
    """Precision for every token set, and the number of strong firings, for every latent of `inst`."""
    precision = {name: torch.empty(d_sae) for name in token_sets}
    n_strong = torch.empty(d_sae)
    for start in range(0, d_sae, block):
        ks = slice(start, start + block)
        acts = torch.relu((h_flat - saes.b_dec[inst]) @ saes.W_enc[inst, :, ks] + saes.b_enc[inst, ks])
        for name, mask in token_sets.items():
            precision[name][ks] = activation_precision(acts, mask)
        peak = acts.max(0).values
        n_strong[ks] = ((acts > 0.25 * peak) & (peak > 0)).sum(0).float()
    return precision, n_strong


precision, n_strong = scan_latents(0)
MIN_STRONG = 20  # ignore latents with fewer strong firings than this
for name in token_sets:
    ok = (n_strong >= MIN_STRONG) & ~precision[name].isnan()
    best = torch.where(ok, precision[name], torch.tensor(-1.0)).topk(5)
    print(f"{name:>6}: base rate {base_rates[name]:.1%}; best latents "
          + ", ".join(f"{k} ({p:.0%}, n={int(n_strong[k])})" for p, k in zip(best.values.tolist(), best.indices.tolist())))

# %% [markdown]
# ### Django
#
# Look at the Django line above: several latents with a precision far above the base rate. Read the
# top contexts of the best few. They are not one general "this is Django" latent: each one fires on a
# particular **Django idiom**, the kind of token sequence that only Django code contains (the `.` after
# `Model.objects`, ORM field names, the `_("...")` translation call...). A one-layer model sees at
# most 128 tokens and has no notion of a "project"; what it can learn is that certain local patterns
# predict certain next tokens, and the SAE splits those apart.

# %%
ok = (n_strong >= MIN_STRONG) & ~precision["django"].isnan()
django_ranking = torch.where(ok, precision["django"], torch.tensor(-1.0)).argsort(descending=True)
django_latent = django_ranking[0].item()
django_latent_precision = precision["django"][django_latent].item()
print(f"best Django latent: {django_latent}, precision {django_latent_precision:.1%} "
      f"(base rate {django_base_rate:.1%}, {int(n_strong[django_latent])} strong firings)\n")
for k in django_ranking[:3].tolist():
    show_latent(0, k, k=6)
    print()

# %% [markdown]
# ### A latent that predicts `django`
#
# The reverse question: is there a latent whose *output* is Django? The token ` django` follows
# `from` and `import` at the top of every Django file; a latent that raises its logit must fire where
# the next word is likely to be `django`. We rank latents by their direct effect on the ` django`
# logit (per unit of activation, times their typical strong activation) and read the best one's contexts.

# %%
django_token = model.tokenizer.encode(" django", add_special_tokens=False)
print("' django' is", "one token" if len(django_token) == 1 else f"{len(django_token)} tokens", django_token)
with torch.no_grad():
    resid = saes.W_dec[0] @ model.W_out[0]  # [d_sae, d_model]: every latent at once
    effect_on_django = ((resid - resid.mean(-1, keepdim=True)) * model.ln_final.w) @ model.W_U[:, django_token[0]]
    peak_act = torch.cat([torch.relu((h_flat - saes.b_dec[0]) @ saes.W_enc[0, :, ks] + saes.b_enc[0, ks]).max(0).values
                          for ks in torch.arange(d_sae).split(512)])
django_predictor = (effect_on_django * peak_act).argmax().item()
print(f"latent {django_predictor}: +{effect_on_django[django_predictor]:.2f} on ' django' per unit, peak activation {peak_act[django_predictor]:.2f}")
show_latent(0, django_predictor)
with torch.no_grad():
    show_logits(logit_effect(model, saes, 0, django_predictor))

# %% [markdown]
# ### Other features
#
# The same scan finds latents for the other token sets; below are the best latent for English
# documentation and for test files, and the most selective latent for one particular next token
# (the token it raises most strongly, per the direct effect, among latents that fire on at least 0.1 %
# of tokens). Read their contexts and decide whether each one has a clear meaning.

# %%
def best_for(name: str) -> int:
    ok = (n_strong >= MIN_STRONG) & ~precision[name].isnan()
    return torch.where(ok, precision[name], torch.tensor(-1.0)).argmax().item()


docs_latent, tests_latent = best_for("docs"), best_for("tests")
for name, k in (("docs", docs_latent), ("tests", tests_latent)):
    print(f"== best '{name}' latent {k}: precision {precision[name][k]:.1%} (base rate {base_rates[name]:.1%})")
    show_latent(0, k, k=6)
    print()

with torch.no_grad():
    all_effects = ((resid - resid.mean(-1, keepdim=True)) * model.ln_final.w) @ model.W_U  # [d_sae, d_vocab]
    spread = all_effects.max(-1).values - all_effects.median(-1).values  # how much one token stands out
    spread[freqs[0] < 1e-3] = -1
token_latent = spread.argmax().item()
print(f"== latent {token_latent}: the most single-minded predictor")
show_latent(0, token_latent, k=6)
with torch.no_grad():
    show_logits(logit_effect(model, saes, 0, token_latent))

# %% [markdown]
# ### Did both seeds find the same latents?
#
# Two SAEs trained from different seeds on the same activations are two attempts at the same
# dictionary. A latent that the other seed also found (its decoder row has a near-parallel partner)
# is more likely a real property of the model than an accident of one run; there are many ways for a
# latent to be wrong and only one way to be right.

# %% [markdown] exercise="Matching latents across seeds" difficulty=2 importance=4 minutes="10-15"
# Write `max_cosine_across(W_a, W_b)`: for directions `W_a: [n, d]` and `W_b: [m, d]` return `[n]`,
# for each row of `W_a` its largest cosine similarity with any row of `W_b`. Work in blocks of rows of
# `W_a` if you like; never loop over single rows.

# %%
def max_cosine_across(W_a: Float[Tensor, "n d"], W_b: Float[Tensor, "m d"]) -> Float[Tensor, "n"]:
    ### BEGIN SOLUTION
    unit_a = W_a / W_a.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    unit_b = W_b / W_b.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return einops.einsum(unit_a, unit_b, "n d, m d -> n m").max(dim=-1).values
    ### END SOLUTION


# %% test="test_max_cosine_across" points=2
_Wa = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
_Wb = torch.tensor([[3.0, 0.0], [0.0, -1.0]])
assert_close(max_cosine_across(_Wa, _Wb), torch.tensor([1.0, 0.0, 0.5**0.5]), "max cosine of 3 rows against 2", atol=1e-6)
### BEGIN HIDDEN TESTS
torch.manual_seed(11)
_Wa, _Wb = torch.randn(9, 5), torch.randn(13, 5)
_want = torch.stack([max(torch.cosine_similarity(_Wa[i], _Wb[j], dim=0) for j in range(13)) for i in range(9)])
assert_close(max_cosine_across(_Wa, _Wb), _want, "max cosine of 9 random rows against 13")
### END HIDDEN TESTS

# %%
MATCH = 0.7  # cosine above which we call two decoder rows the same latent
with torch.no_grad():
    match_cos = max_cosine_across(saes.W_dec[0], saes.W_dec[1])
alive_a = freqs[0] > 0
cross_seed_match_frac = (match_cos[alive_a] > MATCH).float().mean().item()
print(f"{cross_seed_match_frac:.1%} of seed 0's live latents have a partner in seed 1 with cosine > {MATCH}")
for name, k in (("Django", django_latent), ("predicts ' django'", django_predictor), ("docs", docs_latent),
                ("tests", tests_latent), ("single-token", token_latent)):
    print(f"  {name:>18} latent {k}: best match in seed 1 has cosine {match_cos[k]:.2f}")

# %% [markdown]
# The histogram shows the best-match cosine of every live latent of seed 0, split by how often the
# latent fires. Notice where the unmatched latents are: if they are mostly rare ones, each seed spends
# its rare latents on different things (or on nothing useful).

# %% skip_grading=true fold="Show code"
bands = [("fires on < 0.1% of tokens", alive_a & (freqs[0] < 1e-3)), ("fires on >= 0.1% of tokens", freqs[0] >= 1e-3)]
fig = go.Figure()
for label, mask in bands:
    fig.add_trace(go.Histogram(x=match_cos[mask].numpy(), name=f"{label} ({int(mask.sum())})", opacity=0.6, nbinsx=50))
fig.add_vline(x=MATCH, line_dash="dash", annotation_text="match threshold")
fig.update_layout(barmode="overlay", title="Best cosine match in seed 1 for each live latent of seed 0 (decoder rows)",
                  xaxis_title="max cosine similarity with any seed-1 latent", yaxis_title="latents")
fig.show()

# %% [markdown]
# ## Feature dashboards
#
# Everything about a latent on one screen: how often and how strongly it fires (histogram of its
# non-zero activations; log scale), what it fires on (top contexts, tokens shaded by activation: hover
# them for values), and what it does (the tokens its direct effect raises and lowers most). Here are
# the dashboards of the latents we found.

# %%
def dashboard(inst: int, latent: int, title: str, k: int = 8) -> None:
    with torch.no_grad():
        acts = latent_activations(saes, mlp_acts, inst, latent)
        acts[:, 0] = 0
        effect = logit_effect(model, saes, inst, latent)
    nonzero = acts[:, 1:][acts[:, 1:] > 0]
    top, bottom = effect.topk(10), (-effect).topk(10)
    fig = dashboard_figure(
        nonzero_acts=nonzero.tolist(),
        frac_active=(acts[:, 1:] > 0).float().mean().item(),
        top_logits=[(vocab[i], v) for v, i in zip(top.values.tolist(), top.indices.tolist())],
        bottom_logits=[(vocab[i], -v) for v, i in zip(bottom.values.tolist(), bottom.indices.tolist())],
        title=f"Latent {inst}/{latent}: {title}",
    )
    show_dashboard(fig, contexts_for(acts, k), max_act=acts.max().item(),
                   caption=f"Top contexts of latent {inst}/{latent} (outlined: the token it fires on)")


# %% skip_grading=true
dashboard(0, django_latent, f"best Django latent (precision {django_latent_precision:.0%} vs base rate {django_base_rate:.0%})")

# %% skip_grading=true
dashboard(0, django_predictor, "raises the ' django' logit")

# %% skip_grading=true
dashboard(0, docs_latent, f"English documentation (precision {precision['docs'][docs_latent]:.0%})")

# %% skip_grading=true
dashboard(0, tests_latent, f"test files (precision {precision['tests'][tests_latent]:.0%})")

# %% skip_grading=true
dashboard(0, token_latent, "a single-minded next-token predictor")

# %% [markdown]
# ## Bonus: which latents matter to the model?
#
# The dashboards say what a latent fires on, not how much the model's loss depends on it. The direct
# way to find out is to **ablate** it (set $z_k = 0$ everywhere, keep the rest) and measure the loss:
# one forward pass per latent, 2048 of them. **Attribution** estimates all of them from one forward and
# one backward pass, with a first-order Taylor expansion of the loss in $z$:
#
# $$
# L(z_k \to 0) - L \;\approx\; -\sum_\text{tokens} z_k \,\frac{\partial L}{\partial z_k} .
# $$
#
# To make the forward pass exact we splice in the reconstruction **plus the SAE's error**
# $h - h'$ (held fixed): the model then computes exactly what it computed before, and the gradient
# flows only through the latents.

# %% [markdown] exercise="Attribution: activation times gradient" difficulty=4 importance=2 minutes="20-30"
# Write `latent_attributions(model, sae, tokens, inst, latents)` returning `[len(latents)]`: the
# estimated change of the mean loss (positions 1.. as predictors, as before) when each latent in
# `latents` is zeroed at every position of `tokens`.
#
# 1. Get `h` (`run_with_cache`), then `z` of instance `inst` for every position as a leaf tensor that
#    requires a gradient, its reconstruction `h_rec = z @ W_dec[inst] + b_dec[inst]`, and the error
#    `h - h_rec` (detached).
# 2. Run the model with a hook that returns `h_rec + error`, take the mean loss, `backward()`.
# 3. Return $-\sum z_k \,\partial L / \partial z_k$ for the requested latents.

# %%
def latent_attributions(model, sae: SparseAutoencoder, tokens: Int[Tensor, "batch pos"], inst: int, latents: list[int]) -> Float[Tensor, "n"]:
    ### BEGIN SOLUTION
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=HOOK_NAME)
        h = cache[HOOK_NAME]
        z = torch.relu((h - sae.b_dec[inst]) @ sae.W_enc[inst] + sae.b_enc[inst])  # [batch pos d_sae]
    z = z.clone().requires_grad_(True)
    h_rec = z @ sae.W_dec[inst].detach() + sae.b_dec[inst].detach()
    error = (h - h_rec).detach()
    with torch.enable_grad():
        per_token = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True,
                                         fwd_hooks=[(HOOK_NAME, lambda act, hook: h_rec + error)])
        per_token[:, 1:].mean().backward()
    scores = -(z * z.grad).detach()
    return einops.reduce(scores[..., latents], "batch pos n -> n", "sum")
    ### END SOLUTION


# %% test="test_latent_attributions" points=2
_rows = tokens[:2, :48]
_lat = [0, 1, 2]
_got = latent_attributions(model, saes, _rows, 0, _lat)
assert_shape(_got, (3,), "latent_attributions for 3 latents")


def _reference_attributions(rows, inst):
    """With autograd: minus the derivative of the loss in a scale factor s_k on latent k, at s = 1."""
    with torch.no_grad():
        _, cache = model.run_with_cache(rows, names_filter=HOOK_NAME)
        h = cache[HOOK_NAME]
        z = torch.relu((h - saes.b_dec[inst]) @ saes.W_enc[inst] + saes.b_enc[inst])
        err = h - (z @ saes.W_dec[inst] + saes.b_dec[inst])
    s = torch.ones(saes.cfg.d_sae, requires_grad=True)
    with torch.enable_grad():
        patched = (z * s) @ saes.W_dec[inst] + saes.b_dec[inst] + err
        model.run_with_hooks(rows, return_type="loss", loss_per_token=True,
                             fwd_hooks=[(HOOK_NAME, lambda act, hook: patched)])[:, 1:].mean().backward()
    return -s.grad


assert_close(_got, _reference_attributions(_rows, 0)[_lat], "attributions of latents 0, 1, 2 (seed 0)", atol=1e-5, rtol=1e-3)
### BEGIN HIDDEN TESTS
_rows = tokens[3:4, :64]
_lat = [5, 17]
_got = latent_attributions(model, saes, _rows, 1, _lat)
assert_close(_got, _reference_attributions(_rows, 1)[_lat], "attributions for instance 1 on another row", atol=1e-5, rtol=1e-3)
### END HIDDEN TESTS

# %% [markdown]
# How good is the first-order estimate? We compare it with true ablation for the latents we studied
# and for the latents with the largest estimated effects, on the first rows of the held-out data.

# %%
@torch.no_grad()
def mean_loss_with_latents_zeroed(model, sae, tokens, inst, zeroed: list[int]) -> float:
    """True ablation: the mean loss with some latents set to 0 (the SAE's error term kept)."""
    _, cache = model.run_with_cache(tokens, names_filter=HOOK_NAME)
    h = cache[HOOK_NAME]
    z = torch.relu((h - sae.b_dec[inst]) @ sae.W_enc[inst] + sae.b_enc[inst])
    error = h - (z @ sae.W_dec[inst] + sae.b_dec[inst])
    z[..., zeroed] = 0
    patched = z @ sae.W_dec[inst] + sae.b_dec[inst] + error
    per_token = model.run_with_hooks(tokens, return_type="loss", loss_per_token=True,
                                     fwd_hooks=[(HOOK_NAME, lambda act, hook: patched)])
    return per_token[:, 1:].mean().item()


ATTR_ROWS = tokens[: 16 if FAST else 48]
studied = list(dict.fromkeys([django_latent, django_predictor, docs_latent, tests_latent, token_latent]))
all_scores = latent_attributions(model, saes, ATTR_ROWS, 0, list(range(d_sae)))
top_by_attr = all_scores.abs().argsort(descending=True)[:10].tolist()
check = list(dict.fromkeys(studied + top_by_attr))
base_loss = mean_loss_with_latents_zeroed(model, saes, ATTR_ROWS, 0, [])
true_effect = torch.tensor([mean_loss_with_latents_zeroed(model, saes, ATTR_ROWS, 0, [k]) - base_loss for k in check])
estimated = all_scores[check]
attr_corr = torch.corrcoef(torch.stack([true_effect, estimated]))[0, 1].item()
print(f"correlation of attribution with true ablation over {len(check)} latents: {attr_corr:.3f}")

# %% skip_grading=true fold="Show code"
fig = px.scatter(x=estimated.numpy(), y=true_effect.numpy(), text=[str(k) for k in check],
                 labels={"x": "attribution estimate of the loss change", "y": "true loss change when ablated"},
                 title="Attribution (activation x gradient) against true ablation, seed 0")
lim = float(max(true_effect.abs().max(), estimated.abs().max())) * 1.1
fig.add_trace(go.Scatter(x=[-lim, lim], y=[-lim, lim], mode="lines", line=dict(dash="dash", color="grey"), name="y = x"))
fig.update_traces(textposition="top center", selector=dict(mode="markers+text"))
fig.show()

# %% [markdown]
# Points near the diagonal are latents whose effect is close to linear in their activation. Expect the
# estimate to be rougher for the latents with the largest effects: removing a big contribution moves
# the model far from the point where the gradient was taken.

# %% [markdown]
# ## Questions
#
# 1. Why is the sum of the firing frequencies the L0? Would the sum of the *mean activations* mean anything?
# 2. Zero-ablation and mean-ablation give different "loss recovered" numbers for the same SAE. Which
#    would you report, and why is the gap between them informative?
# 3. The best Django latents fire on Django idioms, not on "Django code" in general. Why would a
#    one-layer model with a 128-token context not have a general Django feature?
# 4. A latent whose decoder row has no good match in the other seed: name two reasons this could happen.

# %% [markdown] only="solution"
# 1. $\sum_k \mathbf 1[z_k>0]$ is the number of active latents on a token; its expectation is
#    $\sum_k P(z_k > 0)$. The sum of mean activations is $\mathbb E[\lVert z\rVert_1]$, the L1 norm, a
#    size and not a count: a few strong latents and many weak ones can give the same value.
# 2. Mean-ablation, the stricter baseline: it keeps the MLP's average output, so it measures how much of
#    the *token-specific* information the SAE preserves. The gap shows how much of the zero-ablation
#    score only comes from getting the average output right, which any constant would.
# 3. The MLP acts on one position at a time, reading what attention gathered from up to 127 earlier
#    tokens. "This file is Django" is not available as such; what is available are local patterns that
#    are much more frequent in Django (`objects.`, `models.CharField`, `_("`), each of which predicts
#    its own next tokens. Features are what helps predict the next token, so the SAE finds the idioms.
# 4. The latent could be one of several ways to split a feature (the other seed split it differently,
#    e.g. one latent there for two here); or it could be an artifact of its run (a rare or recently
#    resampled latent that never found a stable direction).

# %% [markdown]
# ## Results

# %%
results = {
    "loss_clean": round(L[0].item(), 4),
    "loss_recovered": round(recovered["zero"].mean().item(), 4),
    "loss_recovered_zero_ablation": [round(v, 4) for v in recovered["zero"].tolist()],
    "loss_recovered_mean_ablation": [round(v, 4) for v in recovered["mean"].tolist()],
    "dead_frac": round(dead.float().mean().item(), 4),
    "l0": round(l0.mean().item(), 3),
    "explained_variance": round(rec_metrics["explained_variance"].mean().item(), 4),
    "django_base_rate": round(django_base_rate, 4),
    "django_latent_precision": round(django_latent_precision, 4),
    "cross_seed_match_frac": round(cross_seed_match_frac, 4),
    "attribution_vs_ablation_corr": round(attr_corr, 4),
    "n_eval_tokens": int(h_flat.shape[0]),
    "fast": FAST,
}
for key, value in results.items():
    print(f"{key:>30}: {value}")
save_results(7, results)
