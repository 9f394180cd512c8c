# %% [markdown]
# ## The sparse autoencoder
#
# A sparse autoencoder (SAE) reads an activation vector $h \in \mathbb{R}^{d_\text{in}}$ and writes it
# as a sparse, non-negative combination of $d_\text{sae}$ learned directions, its *latents*:
#
# $$
# z = \operatorname{ReLU}\!\big(W_\text{enc}^\top (h - b_\text{dec}) + b_\text{enc}\big) \in \mathbb{R}^{d_\text{sae}},
# \qquad
# h' = W_\text{dec}^\top z + b_\text{dec} = \sum_k z_k \, d_k + b_\text{dec} .
# $$
#
# Row $k$ of the decoder, $d_k$, is the direction latent $k$ writes; column $k$ of the encoder is the
# direction it reads. Subtracting $b_\text{dec}$ first makes $b_\text{dec}$ the SAE's estimate of the
# "centre" of the data. The loss of one input adds two terms:
#
# $$
# L = \underbrace{\tfrac{1}{d_\text{in}} \lVert h - h' \rVert_2^2}_{L_\text{rec}\text{: mean over } d_\text{in}}
#   \;+\; \lambda \underbrace{\lVert z \rVert_1}_{L_\text{sparsity}\text{: sum over latents}} .
# $$
#
# The L1 term is **summed** over latents: each latent then pays the same price for firing however big
# the dictionary is (a mean would dilute the pressure as $d_\text{sae}$ grows). Per instance we take
# the mean over the batch; instances are summed, so that each one trains as if it were alone.
#
# The L1 penalty could be dodged by shrinking $z$ and growing $d_k$ to match, so every decoder row is
# kept at **unit norm**: we rescale the rows after each optimizer step (`normalize_decoder`). With
# **tied weights** the decoder is the encoder's transpose ($W_\text{dec} = W_\text{enc}^\top$): fewer
# parameters, and both directions are then unit vectors.
#
# As everywhere in this course, many SAEs train side by side, one per *instance*: every tensor has an
# `inst` axis and `einsum` does the work of a loop over SAEs. Section 7 imports this very file to
# train an SAE on a language model, so nothing here knows about the toy model: the SAE only ever
# sees batches `h: [batch, inst, d_in]`.

# %%
import sys
from collections import deque
from dataclasses import dataclass
from typing import Callable, NamedTuple

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn
from tqdm import tqdm

from course_helpers.training import adam, threads_for


@dataclass
class SAEConfig:
    n_inst: int
    d_in: int
    d_sae: int
    l1_coeff: float = 0.25
    tied_weights: bool = False


class SAEOutput(NamedTuple):
    l1_loss: Float[Tensor, "batch inst"]  # sum over latents of |z|
    l2_loss: Float[Tensor, "batch inst"]  # mean over d_in of (h' - h)^2
    loss: Float[Tensor, ""]  # sum over instances of the batch mean of l2_loss + l1_coeff * l1_loss
    z: Float[Tensor, "batch inst d_sae"]  # latent activations
    h_reconstructed: Float[Tensor, "batch inst d_in"]


# %% [markdown]
# ### The `SparseAutoencoder` class
#
# Your tasks (their exercise headers, with specifications and tests, follow the cell):
#
# * `__init__`: create `W_enc: [inst, d_in, d_sae]` and, unless weights are tied,
#   `_W_dec: [inst, d_sae, d_in]` as Xavier-normal parameters (std $\sqrt{2/(d_\text{in} +
#   d_\text{sae})}$), and the biases `b_enc: [inst, d_sae]`, `b_dec: [inst, d_in]` as zeros.
#   With tied weights set `self._W_dec = None`: the property `W_dec` (given) then returns the
#   encoder's transpose, so code that *reads* `sae.W_dec` never needs to care.
# * `normalize_decoder`: rescale every decoder row to unit norm, in place. With tied weights the
#   decoder rows *are* the encoder columns.
# * `forward`: the equations above, returning an `SAEOutput`.

# %%
class SparseAutoencoder(nn.Module):
    W_enc: Float[Tensor, "inst d_in d_sae"]
    _W_dec: Float[Tensor, "inst d_sae d_in"] | None
    b_enc: Float[Tensor, "inst d_sae"]
    b_dec: Float[Tensor, "inst d_in"]

    def __init__(self, cfg: SAEConfig, device="cpu"):
        super().__init__()
        self.cfg = cfg
        ### BEGIN SOLUTION
        n_inst, d_in, d_sae = cfg.n_inst, cfg.d_in, cfg.d_sae
        std = (2 / (d_in + d_sae)) ** 0.5  # Xavier-normal per instance (the inst axis is not a fan)
        self.W_enc = nn.Parameter(torch.randn(n_inst, d_in, d_sae, device=device) * std)
        if cfg.tied_weights:
            self._W_dec = None
        else:
            self._W_dec = nn.Parameter(torch.randn(n_inst, d_sae, d_in, device=device) * std)
        self.b_enc = nn.Parameter(torch.zeros(n_inst, d_sae, device=device))
        self.b_dec = nn.Parameter(torch.zeros(n_inst, d_in, device=device))
        ### END SOLUTION
        ### BEGIN STUB
        # self.W_enc = ...
        # self._W_dec = ...  # None when cfg.tied_weights
        # self.b_enc = ...
        # self.b_dec = ...
        ### END STUB
        self.normalize_decoder()

    @property
    def W_dec(self) -> Float[Tensor, "inst d_sae d_in"]:
        """The decoder: its own parameter, or (tied weights) a transposed view of the encoder."""
        if self._W_dec is None:
            return self.W_enc.transpose(-1, -2)
        return self._W_dec

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale each decoder row (each latent's output direction) to unit norm, in place."""
        ### BEGIN SOLUTION
        # Through the `W_dec` view this also covers tied weights (it rescales the encoder columns).
        W_dec = self.W_dec
        W_dec.div_(W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8))
        ### END SOLUTION

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Drop the part of each decoder row's gradient that only changes the row's length.

        The row is renormalised after the step anyway; without this, Adam would spend part of each
        step on a change that is then undone (Anthropic's SAEs do the same).
        """
        W_dec = self.W_dec
        grad = self._W_dec.grad if self._W_dec is not None else self.W_enc.grad.transpose(-1, -2)
        if grad is None:
            return
        parallel = einops.einsum(grad, W_dec, "inst d_sae d_in, inst d_sae d_in -> inst d_sae")
        grad.sub_(parallel[..., None] * W_dec)  # rows have unit norm

    def forward(self, h: Float[Tensor, "batch inst d_in"]) -> SAEOutput:
        ### BEGIN SOLUTION
        z = F.relu(
            einops.einsum(h - self.b_dec, self.W_enc, "batch inst d_in, inst d_in d_sae -> batch inst d_sae")
            + self.b_enc
        )
        h_reconstructed = (
            einops.einsum(z, self.W_dec, "batch inst d_sae, inst d_sae d_in -> batch inst d_in") + self.b_dec
        )
        l2_loss = einops.reduce((h_reconstructed - h) ** 2, "batch inst d_in -> batch inst", "mean")
        l1_loss = einops.reduce(z.abs(), "batch inst d_sae -> batch inst", "sum")
        per_inst = einops.reduce(l2_loss + self.cfg.l1_coeff * l1_loss, "batch inst -> inst", "mean")
        loss = per_inst.sum()
        ### END SOLUTION
        ### BEGIN STUB
        # z = ...  # [batch inst d_sae]
        # h_reconstructed = ...  # [batch inst d_in]
        # l2_loss = ...  # [batch inst]
        # l1_loss = ...  # [batch inst]
        # loss = ...  # 0-dim
        ### END STUB
        return SAEOutput(l1_loss, l2_loss, loss, z, h_reconstructed)


# %% [markdown]
# ### Measuring an SAE while it trains
#
# Four numbers per instance tell us how an SAE is doing:
#
# * **L0**: how many latents fire (are $> 0$) on an input, averaged over the batch. Lower is sparser.
# * **Reconstruction loss**: the batch mean of `l2_loss`.
# * **Fraction of variance explained** (FVE): $1 - \sum \lVert h - h' \rVert^2 / \sum \lVert h -
#   \bar h \rVert^2$, sums over the batch, $\bar h$ the batch mean: 1 is perfect, 0 is no better than
#   always answering the mean.
# * **Dead latents**: a latent that has not fired on *any* input for a while gets no gradient from the
#   reconstruction loss (its ReLU is closed), so it will most likely never come back. We keep, for
#   every training step, the fraction of the batch on which each latent fired (`frac_active`), and
#   call a latent dead if, averaged over the last `window` steps, it fired on at most a fraction
#   `threshold` of the inputs. With `threshold = 0` (the default) that means it fired on nothing at
#   all; a small positive threshold also catches latents that are *nearly* dead, firing only on rare
#   coincidences. Until `window` steps have been seen there is not enough evidence, and no latent is dead.

# %%
def sae_metrics(h: Float[Tensor, "batch inst d_in"], out: SAEOutput) -> dict[str, Float[Tensor, "inst"]]:
    """L0, reconstruction loss and fraction of variance explained of one batch, per instance."""
    ### BEGIN SOLUTION
    l0 = einops.reduce((out.z > 0).float(), "batch inst d_sae -> inst", "sum") / h.shape[0]
    l2_loss = einops.reduce(out.l2_loss, "batch inst -> inst", "mean")
    residual = einops.reduce((h - out.h_reconstructed) ** 2, "batch inst d_in -> inst", "sum")
    spread = einops.reduce((h - h.mean(0)) ** 2, "batch inst d_in -> inst", "sum")
    fve = 1 - residual / spread.clamp(min=1e-12)
    ### END SOLUTION
    ### BEGIN STUB
    # l0 = ...  # [inst]
    # l2_loss = ...  # [inst]
    # fve = ...  # [inst]
    ### END STUB
    return {"l0": l0.detach(), "l2_loss": l2_loss.detach(), "fve": fve.detach()}


def find_dead_latents(
    frac_active_history: Float[Tensor, "step inst d_sae"], window: int, threshold: float = 0.0
) -> Bool[Tensor, "inst d_sae"]:
    """Latents whose firing fraction, averaged over the last `window` steps, is at most `threshold`."""
    ### BEGIN SOLUTION
    if frac_active_history.shape[0] < window:
        return torch.zeros(frac_active_history.shape[1:], dtype=torch.bool, device=frac_active_history.device)
    return frac_active_history[-window:].mean(dim=0) <= threshold
    ### END SOLUTION


@torch.no_grad()
def find_duplicate_latents(sae: "SparseAutoencoder", min_cos: float = 0.99) -> Bool[Tensor, "inst d_sae"]:
    """The weaker (smaller encoder norm) of every pair of latents whose decoder rows have cosine > min_cos.

    Two latents that write the same direction split one feature between them; neither is dead, so
    resampling dead latents alone never frees one of them (given code, not an exercise).
    """
    W_dec = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    cos = einops.einsum(W_dec, W_dec, "inst a d_in, inst b d_in -> inst a b")
    strength = sae.W_enc.norm(dim=1)  # [inst d_sae]
    index = torch.arange(sae.cfg.d_sae, device=cos.device)
    # latent a is the weaker of (a, b): smaller encoder norm, ties broken by the larger index
    weaker = (strength[:, :, None] < strength[:, None, :]) | (
        (strength[:, :, None] == strength[:, None, :]) & (index[:, None] > index[None, :])
    )
    return ((cos > min_cos) & weaker).any(dim=-1)


# %% [markdown]
# ### Resampling dead latents
#
# A dead latent is a wasted slice of the dictionary. *Resampling* gives it a second life: point it in
# a new direction, give it a fair chance to fire, and let training go on. Every rewrite below does
# the same four things to each dead latent $k$ of an instance, given a unit vector $v$:
#
# 1. decoder row $k$ $\leftarrow v$;
# 2. encoder column $k$ $\leftarrow \beta\,\alpha\, v$, where $\alpha$ is the mean norm of the encoder
#    columns of that instance's *alive* latents (1 if none is alive) and $\beta$ is
#    `neuron_resample_scale` (0.2 in Anthropic's recipe): small enough that the new latent does not
#    trample on the live ones at first. With tied weights the encoder column *is* the decoder row and
#    stays $v$;
# 3. $b_\text{enc}[k] \leftarrow 0$;
# 4. Adam's running moments (`exp_avg`, `exp_avg_sq`) for exactly the entries just rewritten
#    $\leftarrow 0$, so that momentum gathered by the dead latent does not push the new one around.
#
# Nothing else may change: live latents, $b_\text{dec}$ and Adam's moments of live latents are left alone.
#
# Where does $v$ come from?
#
# * **Simple resampling**: a random direction (a normalised Gaussian vector).
# * **Loss-weighted resampling** (Anthropic, *Towards Monosemanticity*): pick an input $h$ from a
#   batch with probability proportional to its reconstruction loss `l2_loss` (which is already a
#   *squared* error: do not square it again), and use $v = (h - b_\text{dec}) / \lVert h - b_\text{dec}
#   \rVert$. The inputs the SAE explains worst are exactly the ones a new latent should learn. Draw one
#   input per latent (with replacement) for each instance; if an instance reconstructs its whole batch
#   perfectly (zero loss everywhere), draw uniformly.

# %%
@torch.no_grad()
def reinitialize_latents(
    sae: SparseAutoencoder,
    dead: Bool[Tensor, "inst d_sae"],
    directions: Float[Tensor, "inst d_sae d_in"],
    neuron_resample_scale: float = 0.2,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Rewrite the dead latents along `directions` (unit vectors; rows of live latents are ignored)."""
    ### BEGIN SOLUTION
    alive = ~dead
    enc_norms = sae.W_enc.norm(dim=1)  # [inst d_sae]
    n_alive = alive.sum(-1)  # [inst]
    mean_alive_norm = (enc_norms * alive).sum(-1) / n_alive.clamp(min=1)
    mean_alive_norm = torch.where(n_alive > 0, mean_alive_norm, torch.ones_like(mean_alive_norm))
    if sae.cfg.tied_weights:
        new_W_enc = directions  # the encoder column is the (unit) decoder row
    else:
        new_W_enc = directions * (neuron_resample_scale * mean_alive_norm)[:, None, None]
        sae._W_dec.copy_(torch.where(dead[..., None], directions, sae._W_dec))
    new_W_enc = einops.rearrange(new_W_enc, "inst d_sae d_in -> inst d_in d_sae")
    sae.W_enc.copy_(torch.where(dead[:, None, :], new_W_enc, sae.W_enc))
    sae.b_enc.masked_fill_(dead, 0.0)

    if optimizer is not None:
        rewritten = [(sae.W_enc, dead[:, None, :]), (sae.b_enc, dead)]
        if sae._W_dec is not None:
            rewritten.append((sae._W_dec, dead[:, :, None]))
        for param, mask in rewritten:
            state = optimizer.state.get(param, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key].masked_fill_(mask, 0.0)
    ### END SOLUTION


@torch.no_grad()
def resample_simple(
    sae: SparseAutoencoder,
    dead: Bool[Tensor, "inst d_sae"],
    neuron_resample_scale: float = 0.2,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Point every dead latent in a random direction."""
    ### BEGIN SOLUTION
    cfg = sae.cfg
    directions = torch.randn(cfg.n_inst, cfg.d_sae, cfg.d_in, device=sae.W_enc.device)
    directions /= directions.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    reinitialize_latents(sae, dead, directions, neuron_resample_scale, optimizer)
    ### END SOLUTION


@torch.no_grad()
def resample_advanced(
    sae: SparseAutoencoder,
    h: Float[Tensor, "batch inst d_in"],
    dead: Bool[Tensor, "inst d_sae"],
    neuron_resample_scale: float = 0.2,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Point every dead latent at an input of `h` drawn with probability proportional to its l2_loss."""
    ### BEGIN SOLUTION
    cfg = sae.cfg
    weights = einops.rearrange(sae(h).l2_loss, "batch inst -> inst batch")
    # An instance with zero loss on the whole batch has nothing to point at: draw uniformly.
    weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, torch.ones_like(weights))
    picks = torch.multinomial(weights, num_samples=cfg.d_sae, replacement=True)  # [inst d_sae]
    h_by_inst = einops.rearrange(h, "batch inst d_in -> inst batch d_in")
    chosen = h_by_inst[torch.arange(cfg.n_inst, device=h.device)[:, None], picks]  # [inst d_sae d_in]
    directions = chosen - sae.b_dec[:, None, :]
    directions /= directions.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    reinitialize_latents(sae, dead, directions, neuron_resample_scale, optimizer)
    ### END SOLUTION


# %% [markdown]
# ### The training loop
#
# `train_sae` draws a fresh batch from `sample_h(batch_size)` at every step (a frozen toy model here,
# a language model in section 7), takes one Adam step, renormalises the decoder and records, every
# `log_every` steps, per instance: L0, reconstruction loss, FVE, the fraction of dead latents over
# the last `dead_window` steps (with `dead_threshold`), and each latent's `frac_active` averaged since
# the previous log.
# With `resample="simple"` or `"advanced"`, it resamples the latents that are dead over the window
# every `resample_every` steps (none after step `resample_until`, so that the last resampled latents
# have time to settle), at most `max_resampled_per_inst` per instance at a time if that is set (the
# others wait for the next event). With `duplicate_cos` set, an event also rewrites the weaker of two
# latents whose decoder rows have a cosine above it (`find_duplicate_latents`). The log holds
# stacked tensors, one row per logged step.

# %%
def train_sae(
    sae: SparseAutoencoder,
    sample_h: Callable[[int], Float[Tensor, "batch inst d_in"]],
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    log_every: int = 100,
    dead_window: int = 400,
    dead_threshold: float = 0.0,
    resample: str | None = None,
    resample_every: int = 2500,
    resample_until: int | None = None,
    max_resampled_per_inst: int | None = None,
    duplicate_cos: float | None = None,
    neuron_resample_scale: float = 0.2,
    snapshot_weights: bool = False,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Train `sae` (all instances at once); returns the log described above.

    Log keys: step [log]; l0, l2_loss, fve, dead_frac [log inst]; frac_active [log inst d_sae];
    resampled [log inst d_sae] (latents rewritten since the previous log); with `snapshot_weights`
    also W_enc [log inst d_in d_sae] and W_dec [log inst d_sae d_in] (taken after the step).
    """
    if resample not in (None, "simple", "advanced"):
        raise ValueError(f"resample must be None, 'simple' or 'advanced', got {resample!r}")
    if resample is not None and dead_window >= resample_every:
        raise ValueError(f"dead_window ({dead_window}) must be shorter than resample_every ({resample_every})")
    optimizer = adam(sae.parameters(), lr=lr)  # fused: one kernel updates every parameter
    history: deque[Tensor] = deque(maxlen=dead_window)  # frac_active of the last dead_window steps
    keys = ["step", "l0", "l2_loss", "fve", "dead_frac", "frac_active", "resampled"]
    keys += ["W_enc", "W_dec"] if snapshot_weights else []
    log: dict[str, list] = {key: [] for key in keys}
    cfg = sae.cfg
    resampled = torch.zeros(cfg.n_inst, cfg.d_sae, dtype=torch.bool, device=sae.W_enc.device)
    active_sum, active_count = torch.zeros_like(resampled, dtype=torch.float), 0

    last_resample = steps if resample_until is None else resample_until
    bar = tqdm(range(steps), file=sys.stdout, mininterval=1.0, disable=not progress)
    with threads_for(batch_size * cfg.n_inst * max(cfg.d_sae, cfg.d_in)):
        for step in bar:
            if resample is not None and step > 0 and step % resample_every == 0 and step <= last_resample:
                dead = find_dead_latents(torch.stack(list(history)), dead_window, dead_threshold)
                if duplicate_cos is not None:  # the weaker of two latents that write the same direction
                    dead |= find_duplicate_latents(sae, duplicate_cos)
                if max_resampled_per_inst is not None:  # the rest wait for the next event
                    dead &= dead.long().cumsum(dim=-1) <= max_resampled_per_inst
                if dead.any():
                    if resample == "simple":
                        resample_simple(sae, dead, neuron_resample_scale, optimizer)
                    else:
                        resample_advanced(sae, sample_h(batch_size), dead, neuron_resample_scale, optimizer)
                    resampled |= dead
                    # A rewritten latent starts a fresh record: it must get a whole window to prove itself.
                    for past in history:
                        past[dead] = float("nan")

            h = sample_h(batch_size)
            ### BEGIN SOLUTION
            out = sae(h)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            sae.remove_parallel_decoder_grad()
            optimizer.step()
            sae.normalize_decoder()
            frac_active = einops.reduce((out.z > 0).float(), "batch inst d_sae -> inst d_sae", "mean").detach()
            ### END SOLUTION
            ### BEGIN STUB
            # out = ...
            # # one optimizer step (with remove_parallel_decoder_grad), then renormalise the decoder
            # frac_active = ...  # [inst d_sae], fraction of the batch on which each latent fired
            ### END STUB
            history.append(frac_active)
            active_sum += frac_active
            active_count += 1

            if step % log_every == 0 or step == steps - 1:
                metrics = sae_metrics(h, out)
                dead_now = find_dead_latents(torch.stack(list(history)), dead_window, dead_threshold)
                log["step"].append(torch.tensor(step))
                for key in ("l0", "l2_loss", "fve"):
                    log[key].append(metrics[key])
                log["dead_frac"].append(dead_now.float().mean(-1))
                log["frac_active"].append(active_sum / active_count)
                log["resampled"].append(resampled.clone())
                if snapshot_weights:
                    log["W_enc"].append(sae.W_enc.detach().clone())
                    log["W_dec"].append(sae.W_dec.detach().clone())
                resampled.zero_()
                active_sum, active_count = torch.zeros_like(active_sum), 0
                bar.set_postfix(
                    loss=f"{out.loss.item() / cfg.n_inst:.4g}",
                    l0=f"{metrics['l0'].mean():.2f}",
                    dead=f"{dead_now.float().mean():.0%}",
                )
    return {key: torch.stack(values).cpu() for key, values in log.items()}
