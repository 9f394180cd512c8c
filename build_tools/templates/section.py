# ---
# title: "A first section"
# short_title: "First section"
# essential: true
# prerequisites: []
# minutes: 15
# colab_requires: []
# ---

# %% [markdown]
# # A first section
#
# A starting point to edit: two small exercises on the mean squared error
# $L = \frac{1}{n}\sum_i (x_i - y_i)^2$ and its absolute cousin, and a figure of noisy data.

# %% tags=["parameters"]
FAST = False
SEED = 0

# %%
import random

import plotly.graph_objects as go

from coursepress.results import save_results

random.seed(SEED)
N_POINTS = 20 if FAST else 200

# %% [markdown] exercise="Mean squared error" difficulty=1 importance=2 minutes="5-10"
# Write `mse(xs, ys)`: the mean of the squared differences of two equally long lists of numbers.
# Return `0.0` for empty lists.

# %%
def mse(xs: list[float], ys: list[float]) -> float:
    ### BEGIN SOLUTION
    if not xs:
        return 0.0
    return sum((x - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
    ### END SOLUTION
    ### BEGIN STUB
    # total = ...  # sum of squared differences
    # return ...
    ### END STUB

# %% [markdown] fold="Hint"
# `zip(xs, ys)` walks both lists together.

# %% test="test_mse" points=2
assert mse([1.0, 2.0], [1.0, 4.0]) == 2.0, "mse([1, 2], [1, 4]) should be 2.0"
### BEGIN HIDDEN TESTS
assert mse([], []) == 0.0, "empty lists have mse 0"
assert abs(mse([0.5] * 3, [0.0] * 3) - 0.25) < 1e-12, "constant difference 0.5 gives 0.25"
### END HIDDEN TESTS

# %% [markdown] exercise="Absolute error" difficulty=2 importance=1 minutes="5"
# Write `mae(xs, ys)`, the mean absolute difference.

# %%
def mae(xs, ys):
    ### BEGIN SOLUTION
    return sum(abs(x - y) for x, y in zip(xs, ys)) / max(len(xs), 1)
    ### END SOLUTION

# %% test="test_mae" points=1
assert mae([1.0, 3.0], [2.0, 1.0]) == 1.5, f"expected 1.5, got {mae([1.0, 3.0], [2.0, 1.0])}"
### BEGIN HIDDEN TESTS
assert mae([], []) == 0.0, "empty lists have mae 0"
### END HIDDEN TESTS

# %% skip_grading=true
xs = [random.random() for _ in range(N_POINTS)]
ys = [x + random.gauss(0, 0.1) for x in xs]
fig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers", marker=dict(color=ys, colorscale="Viridis")))
fig.update_layout(title="Noisy copy of x", xaxis_title="x", yaxis_title="y")
fig.show()

# %% [markdown] only="solution"
# The solution's own commentary: the error is about $0.1^2 = 0.01$.

# %% [markdown] only="exercise"
# Run every cell, then check your answers with the tests above.

# %% [markdown] only="page"
# This note appears only on the site.

# %%
save_results(1, {"mse": mse(xs, ys), "n_points": N_POINTS})
