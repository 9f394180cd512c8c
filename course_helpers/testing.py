import torch


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def assert_shape(actual, expected_shape, name: str = "output") -> None:
    """Fail with a message naming the tensor and both shapes."""
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{name}: expected a tensor of shape {tuple(expected_shape)}, got {_describe(actual)}")
    if tuple(actual.shape) != tuple(expected_shape):
        raise AssertionError(f"{name}: expected shape {tuple(expected_shape)}, got {tuple(actual.shape)}")


def assert_close(actual, expected, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Compare a student's tensor/number with a reference computed in the test.

    The message says what differs (shape, then the worst element) so that a student can act on it.
    """
    expected_t = torch.as_tensor(expected, dtype=torch.float64)
    if not isinstance(actual, torch.Tensor):
        try:
            actual = torch.as_tensor(actual)
        except Exception:
            raise AssertionError(f"{name}: expected a number or tensor, got {_describe(actual)}") from None
    actual_t = actual.detach().to("cpu", torch.float64)
    if actual_t.shape != expected_t.shape:
        raise AssertionError(f"{name}: expected shape {tuple(expected_t.shape)}, got {tuple(actual_t.shape)}")
    if not torch.isfinite(actual_t).all():
        raise AssertionError(f"{name}: contains NaN or inf")
    err = (actual_t - expected_t).abs()
    tol = atol + rtol * expected_t.abs()
    if (err > tol).any():
        worst = int((err - tol).flatten().argmax())
        idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), err.shape)) if err.dim() else ()
        raise AssertionError(
            f"{name}: {(err > tol).sum().item()} of {err.numel()} values differ from the reference; "
            f"worst at index {idx}: got {actual_t[idx].item():.6g}, expected {expected_t[idx].item():.6g}"
        )


def assert_true(condition, message: str) -> None:
    if not bool(condition):
        raise AssertionError(message)
