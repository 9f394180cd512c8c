# %% [markdown]
# ## The toy model
#
# Each input is a vector $x \in \mathbb{R}^n$ of $n$ *features*. The model squeezes it through a
# hidden space of only $m < n$ dimensions and tries to give it back:
#
# $$
# h = W x \in \mathbb{R}^m, \qquad x' = \operatorname{ReLU}\!\left(W^\top h + b\right) \in \mathbb{R}^n .
# $$
#
# $W$ is an $m \times n$ matrix whose column $W_i$ is the direction in which feature $i$ is written
# into the hidden space, and $b \in \mathbb{R}^n$ is a bias on the output. The same $W$ encodes and
# decodes (tied weights), so $x' = \operatorname{ReLU}(W^\top W x + b)$: everything the model can do
# is written in the $n \times n$ matrix $W^\top W$ of dot products between feature directions, plus $b$.
# The hidden layer has **no** nonlinearity, so any rotation $R$ of the hidden space
# ($W \to R W$) gives exactly the same model: the hidden basis is *not privileged*, only the geometry
# of the columns $W_i$ (their lengths and the angles between them) means anything.
#
# We train many independent copies of the model at once, one per *instance*, each with its own
# sparsity (and possibly importance). Every tensor carries an `inst` dimension, and one `einsum` over
# it does the work of a Python loop over models. The shapes below follow that convention:
# `W: [inst, d_hidden, feats]`, a batch of inputs `[batch, inst, feats]`.
#
# You will write three methods of `Model`: `forward`, `generate_batch` and `calculate_loss`.
# Their exercises, each with its specification and its tests, come right after the class cell:
# read them first, then fill in the marked places in the class and re-run the cell.

# %%
# Layout note for authors: section 1 splices this file with `include=`, so the graded tests for
# forward / generate_batch / calculate_loss live in the section file right after the include (a
# graded test must follow its exercise header, and test cells here would run on every import).
# That is why the three exercise headers follow the class cell in section 1 instead of sitting here.
import math
import sys
from dataclasses import dataclass
from typing import Callable

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from tqdm import tqdm

from course_helpers.training import adam, threads_for


# %% [markdown]
# ### Learning-rate schedules
#
# `optimize` multiplies the learning rate by `lr_scale(step, steps)` at every step. Three schedules
# are used in the course: constant, linear decay to 0, and a quarter cosine from 1 down to 0.

# %%
def constant_lr(step: int, steps: int) -> float:
    return 1.0


def linear_lr(step: int, steps: int) -> float:
    return 1 - step / steps


def cosine_decay_lr(step: int, steps: int) -> float:
    return math.cos(0.5 * math.pi * step / max(steps - 1, 1))


# %% [markdown]
# ### Configuration and the model class
#
# `Config` holds the sizes. `n_correlated_pairs` and `n_anticorrelated_pairs` are only used in the
# next section (correlated features); here they stay 0.
#
# `feature_probability` (the chance that a feature is non-zero, i.e. $1 - S$ for sparsity $S$) and
# `importance` (the weight of each feature in the loss) can each be given as `None` (meaning 1), a
# number, or a tensor that broadcasts to `[inst, feats]`: a tensor of shape `[feats]` is the same for
# every instance, one of shape `[inst, 1]` is the same for every feature. Both are stored as buffers of
# shape `[inst, feats]` (they move with `.to(device)` but are not trained).

# %%
@dataclass
class Config:
    n_inst: int
    n_features: int = 5
    n_hidden: int = 2
    n_correlated_pairs: int = 0
    n_anticorrelated_pairs: int = 0


def _as_inst_feat(value, n_inst: int, n_features: int, name: str, device) -> Float[Tensor, "inst feats"]:
    """None -> ones; number or tensor -> float tensor broadcast to [inst, feats] (a copy, not a view)."""
    if value is None:
        value = 1.0
    tensor = torch.as_tensor(value, dtype=torch.float32, device=device)  # ints and floats are fine
    try:
        return torch.broadcast_to(tensor, (n_inst, n_features)).clone()
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(tensor.shape)} does not broadcast to [n_inst={n_inst}, "
            f"n_features={n_features}]; give per-instance values as shape [n_inst, 1]"
        ) from None


class Model(nn.Module):
    W: Float[Tensor, "inst d_hidden feats"]
    b_final: Float[Tensor, "inst feats"]
    feature_probability: Float[Tensor, "inst feats"]
    importance: Float[Tensor, "inst feats"]

    def __init__(self, cfg: Config, feature_probability=None, importance=None, device="cpu"):
        super().__init__()
        self.cfg = cfg
        n_inst, n_feats, d_hidden = cfg.n_inst, cfg.n_features, cfg.n_hidden

        p = _as_inst_feat(feature_probability, n_inst, n_feats, "feature_probability", device)
        if not ((p >= 0) & (p <= 1)).all():
            raise ValueError(f"feature_probability must lie in [0, 1], got values from {p.min():.3g} to {p.max():.3g}")
        imp = _as_inst_feat(importance, n_inst, n_feats, "importance", device)
        if not (torch.isfinite(imp).all() and (imp >= 0).all()):
            raise ValueError("importance must be finite and non-negative")
        self.register_buffer("feature_probability", p)
        self.register_buffer("importance", imp)

        # Xavier-normal per instance: std = sqrt(2 / (fan_in + fan_out)) with fan_in = n, fan_out = m.
        # (nn.init.xavier_normal_ on a 3-D tensor would count the instance axis in the fans.)
        std = math.sqrt(2 / (n_feats + d_hidden))
        self.W = nn.Parameter(torch.randn(n_inst, d_hidden, n_feats, device=device) * std)
        self.b_final = nn.Parameter(torch.zeros(n_inst, n_feats, device=device))

    def forward(self, features: Float[Tensor, "... inst feats"]) -> Float[Tensor, "... inst feats"]:
        """h = W x in each instance, then x' = ReLU(W^T h + b_final). Leading dims are batch dims."""
        ### BEGIN SOLUTION
        # W^T (W x) = (W^T W) x: the tiny [inst, feats, feats] product first, so the batch goes through
        # one matrix product instead of two (and its backward through one instead of three).
        gram = einops.einsum(self.W, self.W, "inst d_hidden feats_in, inst d_hidden feats_out -> inst feats_in feats_out")
        out = einops.einsum(gram, features, "inst feats_in feats_out, ... inst feats_in -> ... inst feats_out")
        return F.relu(out + self.b_final)
        ### END SOLUTION
        ### BEGIN STUB
        # hidden = ...  # [... inst d_hidden]
        # out = ...  # [... inst feats], before the ReLU
        # return ...
        ### END STUB

    def generate_batch(self, batch_size: int) -> Float[Tensor, "batch inst feats"]:
        """Each entry is U[0, 1], kept (else 0) independently with probability feature_probability[inst, feat]."""
        ### BEGIN SOLUTION
        shape = (batch_size, self.cfg.n_inst, self.cfg.n_features)
        # One draw does both jobs: u < p happens with probability p (rand is in [0, 1), so never when
        # p = 0 and always when p = 1), and given that, u / p is uniform on [0, 1). Drawing random
        # numbers is the costliest part of a training step, so this halves it.
        u = torch.rand(shape, device=self.W.device)
        p = self.feature_probability
        return torch.where(u < p, u / p, 0.0)
        ### END SOLUTION
        ### BEGIN STUB
        # values = ...  # [batch inst feats], uniform in [0, 1]
        # is_present = ...  # [batch inst feats], bool, True with probability feature_probability
        # return ...
        ### END STUB

    def calculate_loss(
        self, out: Float[Tensor, "batch inst feats"], batch: Float[Tensor, "batch inst feats"]
    ) -> Float[Tensor, ""]:
        """Importance-weighted squared error: mean over batch and features in each instance, summed over instances."""
        ### BEGIN SOLUTION
        # Average the squared error over the batch first, then weight the small [inst, feats] result:
        # the same number, with one pass less over the batch (forward and backward).
        squared_error = F.mse_loss(out, batch, reduction="none")  # [batch inst feats]
        mean_error = einops.reduce(squared_error, "batch inst feats -> inst feats", "mean")
        loss_per_inst = einops.reduce(self.importance * mean_error, "inst feats -> inst", "mean")
        return loss_per_inst.sum()
        ### END SOLUTION
        ### BEGIN STUB
        # error = ...  # [batch inst feats]
        # loss_per_inst = ...  # [inst]
        # return ...  # a 0-dim tensor
        ### END STUB

    def optimize(
        self,
        batch_size: int = 1024,
        steps: int = 10_000,
        log_freq: int = 100,
        lr: float = 1e-3,
        lr_scale: Callable[[int, int], float] = constant_lr,
    ) -> dict:
        """Train every instance at once with Adam on a fresh batch each step.

        Returns {"step": [...], "loss": [...]}, logged every `log_freq` steps; "loss" is the summed loss
        divided by n_inst, i.e. the average loss of one instance (what the progress bar shows).
        """
        optimizer = adam(self.parameters(), lr=lr)  # fused: one kernel updates W and b_final
        history = {"step": [], "loss": []}
        progress = tqdm(range(steps), file=sys.stdout, mininterval=1.0)
        with threads_for(batch_size * self.cfg.n_inst * self.cfg.n_features):
            for step in progress:
                # The schedule is applied by hand so that any function of (step, steps) can be used.
                for group in optimizer.param_groups:
                    group["lr"] = lr * lr_scale(step, steps)
                batch = self.generate_batch(batch_size)
                loss = self.calculate_loss(self(batch), batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step % log_freq == 0 or step == steps - 1:
                    loss_per_inst = loss.item() / self.cfg.n_inst
                    history["step"].append(step)
                    history["loss"].append(loss_per_inst)
                    progress.set_postfix(loss=f"{loss_per_inst:.4g}", lr=f"{lr * lr_scale(step, steps):.2g}")
        return history
