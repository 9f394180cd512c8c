# %%
# Section 4 splices this file with `include=` (the exercise header and its graded test sit in the
# section file, around this cell); section 5 imports it, which inlines the solution.
import einops
import torch
from jaxtyping import Float
from torch import Tensor


def compute_dimensionality(W: Float[Tensor, "inst d_hidden feats"]) -> Float[Tensor, "inst feats"]:
    """Per-feature dimensionality D_i = ||W_i||^2 / sum_j (W_i/||W_i|| . W_j)^2, in every instance.

    W_i is column i of W (feature i's direction in the hidden space). A column that is exactly zero
    (a feature the model does not store) gets D_i = 0. Works for any n_inst, d_hidden and feats >= 1.
    """
    ### BEGIN SOLUTION
    norms_sq = einops.reduce(W.pow(2), "inst d_hidden feats -> inst feats", "sum")
    norms = norms_sq.sqrt()
    stored = norms > 0
    # Divide by 1 where the norm is 0: the unit vector of a zero column stays zero instead of NaN.
    W_unit = W / einops.rearrange(torch.where(stored, norms, 1.0), "inst feats -> inst 1 feats")
    overlaps = einops.einsum(W_unit, W, "inst d_hidden f_i, inst d_hidden f_j -> inst f_i f_j")
    # The j = i term is ||W_i||^2 itself, so the denominator is >= the numerator wherever W_i != 0.
    denominator = einops.reduce(overlaps.pow(2), "inst f_i f_j -> inst f_i", "sum")
    return torch.where(stored, norms_sq / torch.where(stored, denominator, 1.0), 0.0)
    ### END SOLUTION
    ### BEGIN STUB
    # norms_sq = ...     # [inst feats], ||W_i||^2
    # W_unit = ...       # [inst d_hidden feats], W_i / ||W_i|| (keep zero columns at zero, no NaN)
    # overlaps = ...     # [inst feats feats], W_unit_i . W_j
    # return ...         # [inst feats], 0 where ||W_i|| = 0
    ### END STUB
