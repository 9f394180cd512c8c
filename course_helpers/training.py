# %% [markdown]
# ## Training-loop plumbing
#
# Two choices every training loop of the course makes the same way: Adam's fused kernel (one
# operation updates every parameter) and, for the small tensors of the toy models, one thread.

# %%
from contextlib import contextmanager

import torch


def adam(params, optimizer=torch.optim.Adam, **kwargs) -> torch.optim.Optimizer:
    """`optimizer(params, **kwargs)` (Adam or AdamW) with its fused kernel where this torch has one
    for the parameters' device, else the default implementation (same maths, same state keys)."""
    params = list(params)
    try:
        return optimizer(params, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return optimizer(params, **kwargs)


@contextmanager
def threads_for(numel: int, small: int = 1 << 20):
    """Train with one intra-op thread when a step's largest tensor has fewer than `small` elements.

    Splitting an operation on ~40,000 numbers between threads costs more in hand-over than it saves
    (2.7 ms a step with two threads against ~1 ms with one for section 1's model on 2 cores, and far
    worse when another process holds the other core). Restores the previous setting afterwards.
    """
    before = torch.get_num_threads()
    if numel < small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
