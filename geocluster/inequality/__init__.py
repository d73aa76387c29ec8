"""Regional inequality: indices, Theil decomposition, spatial Gini, convergence, charts.

Pure computation on arrays; see :mod:`geocluster.analyses.inequality` for the
workspace-level orchestration.
"""

from geocluster.inequality.convergence import (
    BetaConvergence,
    RankMobility,
    Trend,
    beta_convergence,
    rank_mobility,
    trend,
)
from geocluster.inequality.decomposition import TheilDecomposition, theil_decomposition
from geocluster.inequality.indices import (
    ATKINSON_EPSILONS,
    GE_ALPHAS,
    InequalityIndices,
    atkinson,
    coefficient_of_variation,
    generalized_entropy,
    gini,
    hoover,
    inequality_indices,
    lorenz_curve,
    max_min_ratio,
    quintile_share_ratio,
    theil_contributions,
    theil_l,
    theil_t,
    williamson,
)
from geocluster.inequality.spatial import (
    SpatialGini,
    contiguity_pairs,
    neighbour_pairs,
    spatial_gini,
)

__all__ = [
    "ATKINSON_EPSILONS",
    "GE_ALPHAS",
    "BetaConvergence",
    "InequalityIndices",
    "RankMobility",
    "SpatialGini",
    "TheilDecomposition",
    "Trend",
    "atkinson",
    "beta_convergence",
    "coefficient_of_variation",
    "contiguity_pairs",
    "generalized_entropy",
    "gini",
    "hoover",
    "inequality_indices",
    "lorenz_curve",
    "max_min_ratio",
    "neighbour_pairs",
    "quintile_share_ratio",
    "rank_mobility",
    "spatial_gini",
    "theil_contributions",
    "theil_decomposition",
    "theil_l",
    "theil_t",
    "trend",
    "williamson",
]
