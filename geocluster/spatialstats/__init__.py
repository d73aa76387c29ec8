"""Spatial statistics: weights, Moran / LISA / Getis-Ord Gi*, point-pattern tests.

Region statistics use libpysal weights and esda's formulas and conventions, with the
conditional-permutation inference in :mod:`~geocluster.spatialstats.permutation` (numba,
cached on disk; tested against esda); see :func:`warm_up` for the cold start. Point-pattern tests (Ripley's L, Duranton-Overman K-density) are vectorised here
and tested against pointpats / direct evaluation.
"""

from geocluster.spatialstats.autocorrelation import (
    QUADRANTS,
    GlobalMoran,
    LocalResult,
    fdr_significant,
    getis_ord,
    global_moran,
    local_moran,
    warm_up,
)
from geocluster.spatialstats.pointpattern import (
    KDensityResult,
    RipleyResult,
    kdensity,
    ripley_l,
)
from geocluster.spatialstats.weights import WEIGHT_KINDS, build_weights, parse_weights_spec

__all__ = [
    "QUADRANTS",
    "WEIGHT_KINDS",
    "GlobalMoran",
    "KDensityResult",
    "LocalResult",
    "RipleyResult",
    "build_weights",
    "fdr_significant",
    "getis_ord",
    "global_moran",
    "kdensity",
    "local_moran",
    "parse_weights_spec",
    "ripley_l",
    "warm_up",
]
