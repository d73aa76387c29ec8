"""Input checks shared by the clustering estimators.

Every check raises :class:`geocluster.errors.InvalidInput` with a message that says
what was expected and what came, so the CLI and the API can show it as is.
"""

from __future__ import annotations

import numbers

import numpy as np

from geocluster.errors import InvalidInput


def check_points(X, *, name: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous float64 array of shape (n, 2).

    Raises
    ------
    InvalidInput
        If ``X`` is not two-dimensional with two columns or holds NaN/inf.
    """
    try:
        arr = np.ascontiguousarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"expected {name} as numeric (n, 2) coordinates, got {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInput(
            f"expected {name} with shape (n, 2) (x, y in metres), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise InvalidInput(f"expected finite coordinates in {name}, got {bad} rows with NaN/inf")
    return arr


def check_weights(sample_weight, n: int, *, name: str = "sample_weight") -> np.ndarray | None:
    """Return ``sample_weight`` as float64 of shape (n,), or None if not given."""
    if sample_weight is None:
        return None
    try:
        w = np.ascontiguousarray(sample_weight, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"expected numeric {name}, got {exc}") from None
    if w.shape[0] != n:
        raise InvalidInput(f"expected {name} with {n} values (one per point), got {w.shape[0]}")
    if not np.isfinite(w).all():
        raise InvalidInput(f"expected finite {name}, got {int((~np.isfinite(w)).sum())} NaN/inf")
    return w


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"expected {name} as a number > 0, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise InvalidInput(f"expected {name} > 0, got {value!r}")
    return v


def check_min_count(value, name: str, *, minimum: int = 1, real: bool = False) -> float:
    """Return a count parameter (``min_samples`` …) checked to be >= ``minimum``.

    With ``real=True`` non-integer values are accepted (a weighted ``min_samples``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"expected {name} as an integer >= {minimum}, got {value!r}")
    if not real and float(value) != int(value):
        raise InvalidInput(f"expected {name} as an integer >= {minimum}, got {value!r}")
    if not np.isfinite(float(value)) or value < minimum:
        raise InvalidInput(f"expected {name} >= {minimum}, got {value!r}")
    return float(value) if real else int(value)
