"""Assertions for exercise tests whose messages tell a student what to fix.

They accept numbers, (nested) lists, numpy arrays and torch tensors. torch is never imported:
a tensor is recognised by its type and converted with `.detach().cpu()`, so a course without
torch can use them as they are.
"""
import numpy as np


def _is_tensor(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _describe(value) -> str:
    if _is_tensor(value):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}, dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def _as_float_array(value) -> np.ndarray:
    if _is_tensor(value):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def assert_shape(actual, expected_shape, name: str = "output") -> None:
    """Fail with a message naming the tensor and both shapes."""
    if not (_is_tensor(actual) or isinstance(actual, np.ndarray)):
        raise AssertionError(f"{name}: expected a tensor of shape {tuple(expected_shape)}, got {_describe(actual)}")
    if tuple(actual.shape) != tuple(expected_shape):
        raise AssertionError(f"{name}: expected shape {tuple(expected_shape)}, got {tuple(actual.shape)}")


def assert_close(actual, expected, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Compare a student's value with a reference computed in the test.

    The message says what differs (shape, then the worst element) so that a student can act on it.
    """
    expected_a = _as_float_array(expected)
    try:
        actual_a = _as_float_array(actual)
    except (TypeError, ValueError):
        raise AssertionError(f"{name}: expected a number or tensor, got {_describe(actual)}") from None
    if actual_a.shape != expected_a.shape:
        raise AssertionError(f"{name}: expected shape {expected_a.shape}, got {actual_a.shape}")
    if not np.isfinite(actual_a).all():
        raise AssertionError(f"{name}: contains NaN or inf")
    err = np.abs(actual_a - expected_a)
    tol = atol + rtol * np.abs(expected_a)
    wrong = err > tol
    if wrong.any():
        idx = np.unravel_index(int(np.argmax(err - tol)), err.shape) if err.ndim else ()
        idx = tuple(int(i) for i in idx)
        raise AssertionError(
            f"{name}: {int(wrong.sum())} of {err.size} values differ from the reference; "
            f"worst at index {idx}: got {actual_a[idx]:.6g}, expected {expected_a[idx]:.6g}"
        )


def assert_true(condition, message: str) -> None:
    if not bool(condition):
        raise AssertionError(message)
