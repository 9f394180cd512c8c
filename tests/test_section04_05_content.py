"""Fast tests of what sections 4 and 5 add: course_helpers/geometry.py and the sections' structure."""

import ast
import math

import pytest
import torch

from build_tools import pipeline
from build_tools.validate import load_valid
from conftest import REPO
from course_helpers.geometry import compute_dimensionality

SECTION4 = REPO / "source_exercises" / "04_feature_geometry.py"
SECTION5 = REPO / "source_exercises" / "05_double_descent.py"


def gram_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """Independent formula: D_i = G_ii^2 / sum_j G_ij^2 with G = W^T W (0 for a zero column)."""
    W = W.double()
    G = torch.einsum("khi,khj->kij", W, W)
    num = torch.diagonal(G, dim1=-2, dim2=-1) ** 2
    den = (G**2).sum(-1)
    return torch.where(num > 0, num / torch.where(den > 0, den, 1.0), 0.0)


@pytest.mark.parametrize("shape", [(5, 20, 40), (1, 1, 6), (3, 4, 1), (2, 7, 3)])
def test_dimensionality_matches_gram_formula(shape):
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    D = compute_dimensionality(W)
    assert D.shape == shape[:1] + shape[2:]
    torch.testing.assert_close(D.double(), gram_dimensionality(W), atol=1e-5, rtol=1e-4)
    assert ((D >= 0) & (D <= 1 + 1e-6)).all()
    assert (D.sum(-1) <= shape[1] + 1e-4).all()  # sum_i D_i <= m


def test_dimensionality_of_regular_shapes():
    def polygon(k):
        a = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
        return torch.stack([a.cos(), a.sin()])[None]

    for k, expected in [(3, 2 / 3), (5, 2 / 5), (8, 2 / 8)]:
        torch.testing.assert_close(compute_dimensionality(polygon(k)), torch.full((1, k), expected, dtype=torch.float64))
    pair_and_lone = torch.tensor([[[1.0, -1.0, 0.0], [0.0, 0.0, 3.0]]])
    torch.testing.assert_close(compute_dimensionality(pair_and_lone), torch.tensor([[0.5, 0.5, 1.0]]))
    tetrahedron = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])[None]
    torch.testing.assert_close(compute_dimensionality(tetrahedron), torch.full((1, 4), 0.75))
    k_parallel = torch.zeros(1, 2, 4)
    k_parallel[0, 0, :3] = torch.tensor([0.5, -0.5, 0.5])
    k_parallel[0, 1, 3] = 0.1
    torch.testing.assert_close(compute_dimensionality(k_parallel), torch.tensor([[1 / 3, 1 / 3, 1 / 3, 1.0]]))


def test_zero_columns_give_zero_without_nan():
    W = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    W[0, :, 1] = 0
    D = compute_dimensionality(W)
    assert torch.isfinite(D).all() and D[0, 1] == 0
    torch.testing.assert_close(D.double(), gram_dimensionality(W), atol=1e-5, rtol=1e-4)
    assert (compute_dimensionality(torch.zeros(1, 2, 3)) == 0).all()


@pytest.mark.parametrize("path", [SECTION4, SECTION5], ids=["section4", "section5"])
def test_sections_validate_and_split(path):
    section = load_valid(path)  # raises with every problem listed
    exercise = pipeline.exercise_notebook(section)
    grader = pipeline.grader_source_notebook(section)
    code = "\n".join(c.source for c in exercise.cells if c.cell_type == "code")
    assert "### BEGIN HIDDEN TESTS" not in code and "### BEGIN SOLUTION" not in code
    assert sum("### BEGIN HIDDEN TESTS" in c.source for c in grader.cells) >= 2
    defines_dimensionality = [c.source for c in exercise.cells if "def compute_dimensionality" in c.source]
    assert len(defines_dimensionality) == 1, "compute_dimensionality must be defined exactly once"
    if path == SECTION4:  # taught here: the student's notebook has the stub, not the solution
        assert "raise NotImplementedError" in defines_dimensionality[0] or "..." in defines_dimensionality[0]
        assert "norms_sq / torch.where" not in defines_dimensionality[0]
    else:  # imported here: the helper is inlined with its solution
        assert "norms_sq / torch.where" in defines_dimensionality[0]


def _section5_function(name: str):
    tree = ast.parse(SECTION5.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(SECTION5), "exec"), namespace)
    return namespace[name]


def test_group_sizes_covers_every_size_once():
    group_sizes = _section5_function("group_sizes")
    sizes = [5, 8, 10, 15, 20, 30, 50, 70, 100, 150, 200, 250, 300, 500, 1000]
    groups = group_sizes(sizes)
    assert [s for g in groups for s in g] == sizes
    assert all(g[-1] < 2 * g[0] for g in groups)
    assert group_sizes([1000, 5]) == [[5], [1000]]
