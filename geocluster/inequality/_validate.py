"""Input checks shared by the inequality measures (one place, one wording)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geocluster.errors import InvalidInput


def as_values(values: Sequence[float] | np.ndarray, *, name: str = "values") -> np.ndarray:
    """Return ``values`` as a finite 1-d float array with at least one element.

    Raises
    ------
    InvalidInput
        If the values are not numbers, not one-dimensional, empty, or contain NaN/inf.
    """
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"expected {name} to be a list of numbers, got {values!r:.80}") from exc
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InvalidInput(f"expected {name} to be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInput(f"expected at least one value in {name}, got none")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise InvalidInput(
            f"expected finite numbers in {name}, got NaN or infinity at position(s) {where}"
        )
    return arr


def as_population(population, n: int) -> np.ndarray | None:
    """Return population shares (summing to 1) for ``n`` regions, or None if not given.

    Raises
    ------
    InvalidInput
        If the length differs from ``n``, a population is negative, or all are 0.
    """
    if population is None:
        return None
    pop = as_values(population, name="population")
    if pop.size != n:
        raise InvalidInput(
            f"expected one population per value ({n}), got {pop.size} population figures"
        )
    if (pop < 0).any():
        where = np.flatnonzero(pop < 0)[:5].tolist()
        raise InvalidInput(f"expected non-negative populations, got negatives at {where}")
    total = pop.sum()
    if total <= 0:
        raise InvalidInput("expected a positive total population, got 0")
    return pop / total


def shares(population: np.ndarray | None, n: int) -> np.ndarray:
    """Population shares, or equal shares ``1/n`` when unweighted."""
    if population is None:
        return np.full(n, 1.0 / n)
    return population


def require_non_negative(y: np.ndarray, index: str) -> None:
    """Raise InvalidInput if any value is negative (every index here needs y >= 0)."""
    if (y < 0).any():
        where = np.flatnonzero(y < 0)[:5].tolist()
        raise InvalidInput(
            f"{index}: undefined for negative values; expected values >= 0, "
            f"got negatives at position(s) {where}"
        )


def require_positive(y: np.ndarray, index: str) -> None:
    """Raise InvalidInput unless every value is strictly positive (log-based indices)."""
    require_non_negative(y, index)
    if (y == 0).any():
        where = np.flatnonzero(y == 0)[:5].tolist()
        raise InvalidInput(
            f"{index} is undefined when a value is 0 (it takes the log or a negative "
            f"power of each value); expected values > 0, got 0 at position(s) {where}"
        )


def require_positive_mean(y: np.ndarray, w: np.ndarray, index: str) -> float:
    """Return the (weighted) mean, raising InvalidInput if it is 0."""
    mu = float(np.dot(w, y))
    if mu <= 0:
        raise InvalidInput(
            f"{index} is undefined when every value is 0 (the mean is 0); "
            "expected at least one positive value"
        )
    return mu
