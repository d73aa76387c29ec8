"""Relatedness and economic complexity of regions and sectors (the "product space").

Notation: ``x[r, s]`` is the measure (employment or the number of firms) of sector ``s``
in region ``r``.

- RCA (Balassa 1965): ``RCA[r, s] = (x[r, s] / x[r]) / (x[s] / x)``; the region "has"
  the sector, ``M[r, s] = 1``, when ``RCA >= 1``.
- Diversity ``k[r] = sum_s M[r, s]``, ubiquity ``k[s] = sum_r M[r, s]``.
- Proximity (Hidalgo et al. 2007): ``phi[s, t] = min(P(M_s | M_t), P(M_t | M_s))``, the
  smaller of the two conditional probabilities that a region has one sector given it has
  the other (``phi[s, s] = 1``).
- Density: ``omega[r, s] = sum_t M[r, t] phi[s, t] / sum_t phi[s, t]``, the share of the
  sectors related to ``s`` that the region already has (the sum includes ``t = s``, as in
  the Growth Lab's ``ecomplexity``).
- ECI / PCI by the eigenvector method (Hidalgo & Hausmann 2009): the eigenvector of
  ``M~[s, t] = sum_r M[r, s] M[r, t] / (k[r] k[s])`` for the second largest eigenvalue
  gives the sector scores ``kp``; region scores are ``kc = (M kp) / k[r]``. The sign is
  chosen so that ECI correlates positively with diversity; both are standardised with
  the mean and standard deviation of ``kc`` (so that a region's ECI is the mean PCI of the
  sectors it has), the convention of the Growth Lab's Stata and Python packages.

Regions or sectors with a zero total are dropped before the computation (as
``ecomplexity`` does) and come back with NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput

__all__ = ["Relatedness", "nearby_opportunities", "relatedness", "rca"]

RCA_THRESHOLD = 1.0


@dataclass(frozen=True)
class Relatedness:
    """Result of :func:`relatedness`; every frame is labelled by region id / sector.

    Attributes
    ----------
    rca : DataFrame, shape (R, S)
        Balassa RCA.
    presence : DataFrame of int, shape (R, S)
        ``M[r, s] = 1`` where ``RCA >= rca_threshold``.
    proximity : DataFrame, shape (S, S)
        Symmetric proximity ``phi``.
    density : DataFrame, shape (R, S)
        Density ``omega`` in [0, 1].
    eci : Series, shape (R,)
        Economic complexity index of each region (standardised).
    pci : Series, shape (S,)
        Product (sector) complexity index.
    diversity : Series, shape (R,)
    ubiquity : Series, shape (S,)
    eigenvalue : float
        The second largest eigenvalue used; close to 1 means the region–sector network is
        nearly disconnected and ECI mostly separates the components.
    """

    rca: pd.DataFrame
    presence: pd.DataFrame
    proximity: pd.DataFrame
    density: pd.DataFrame
    eci: pd.Series
    pci: pd.Series
    diversity: pd.Series
    ubiquity: pd.Series
    eigenvalue: float

    def components(self) -> int:
        """Connected components of the region–sector presence network (``M``).

        More than one means the second eigenvalue is 1 and ECI only tells the
        components apart: it ranks nothing within them.
        """
        from scipy.sparse import bmat, csr_matrix
        from scipy.sparse.csgraph import connected_components

        m = csr_matrix(self.presence.to_numpy(dtype=float))
        keep_r = np.asarray(m.sum(axis=1)).ravel() > 0
        keep_s = np.asarray(m.sum(axis=0)).ravel() > 0
        m = m[keep_r][:, keep_s]
        if m.shape[0] == 0:
            return 0
        graph = bmat([[None, m], [m.T, None]])
        return int(connected_components(graph, directed=False)[0])

    def density_rows(self) -> pd.DataFrame:
        """Long table ``region_id, sector, density, rca`` (the API's ``density`` rows)."""
        d = self.density.stack(future_stack=True).rename("density")
        r = self.rca.stack(future_stack=True).rename("rca")
        out = pd.concat([d, r], axis=1).reset_index()
        out.columns = ["region_id", "sector", "density", "rca"]
        return out

    def proximity_edges(self, *, min_phi: float = 0.0) -> list[list]:
        """``[[sector, sector, phi], ...]`` for each unordered pair with ``phi > min_phi``."""
        phi = self.proximity.to_numpy(float)
        labels = self.proximity.index.to_list()
        i, j = np.triu_indices(len(labels), k=1)
        keep = np.isfinite(phi[i, j]) & (phi[i, j] > min_phi)
        return [[labels[a], labels[b], float(phi[a, b])] for a, b in zip(i[keep], j[keep])]


def _as_table(table: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InvalidInput(f"expected a region × sector DataFrame, got {type(table).__name__}")
    if table.index.has_duplicates or table.columns.has_duplicates:
        raise InvalidInput("expected unique region ids and sectors in the table")
    values = table.apply(pd.to_numeric, errors="coerce")
    arr = values.to_numpy(float)
    if not np.isfinite(arr).all():
        raise InvalidInput("expected finite numbers in every cell, got missing or non-numeric")
    if (arr < 0).any():
        raise InvalidInput("expected non-negative values, got negative cells")
    values.index = values.index.astype(str)
    values.columns = values.columns.astype(str)
    return values


def rca(table: pd.DataFrame) -> pd.DataFrame:
    """Balassa revealed comparative advantage of a region × sector table.

    Parameters
    ----------
    table : DataFrame, shape (R, S)
        Non-negative measure per region (index) and sector (columns).

    Returns
    -------
    DataFrame, shape (R, S)
        ``(x[r, s] / x[r]) / (x[s] / x)``; NaN for a region or sector with a zero total.

    Notes
    -----
    Balassa, B. (1965), "Trade liberalisation and 'revealed' comparative advantage",
    *The Manchester School* 33(2), 99–123. On regional employment this is the location
    quotient.
    """
    t = _as_table(table)
    x = t.to_numpy(float)
    xr = x.sum(axis=1, keepdims=True)
    xs = x.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (x / xr) / (xs / x.sum())
    out[~np.isfinite(out)] = np.nan
    return pd.DataFrame(out, index=t.index, columns=t.columns)


def relatedness(table: pd.DataFrame, *, rca_threshold: float = RCA_THRESHOLD) -> Relatedness:
    """RCA, proximity, density and ECI/PCI of a region × sector table.

    Parameters
    ----------
    table : DataFrame, shape (R, S)
        Non-negative measure (employees or firms) per region (index) and sector (columns).
    rca_threshold : float, default 1
        ``M[r, s] = 1`` where ``RCA >= rca_threshold``.

    Returns
    -------
    Relatedness

    Raises
    ------
    InvalidInput
        Bad cells, or fewer than two regions and two sectors with a positive total (the
        eigenvector method needs a second eigenvalue).

    Notes
    -----
    Hidalgo, C. A., Klinger, B., Barabási, A.-L. & Hausmann, R. (2007), "The product space
    conditions the development of nations", *Science* 317, 482–487 (proximity, density).
    Hidalgo, C. A. & Hausmann, R. (2009), "The building blocks of economic complexity",
    *PNAS* 106(26), 10570–10575 (ECI/PCI). Hausmann, R. et al. (2014), *The Atlas of
    Economic Complexity*, MIT Press (the eigenvector form and the standardisation). The
    results equal those of the Growth Lab's ``ecomplexity`` package (tested).
    """
    if not np.isfinite(rca_threshold) or rca_threshold <= 0:
        raise InvalidInput(f"expected a positive rca_threshold, got {rca_threshold}")
    t = _as_table(table)
    keep_r = t.sum(axis=1).to_numpy() > 0
    keep_s = t.sum(axis=0).to_numpy() > 0
    if keep_r.sum() < 2 or keep_s.sum() < 2:
        raise InvalidInput(
            "expected at least two regions and two sectors with a positive total, got "
            f"{int(keep_r.sum())} regions and {int(keep_s.sum())} sectors"
        )
    sub = t.loc[keep_r, keep_s]
    R = rca(sub).to_numpy(float)
    M = (np.nan_to_num(R) >= rca_threshold).astype(float)
    div = M.sum(axis=1)  # > 0: some sector has RCA >= 1 in every region with a total
    ubi = M.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        co = M.T @ M
        cond = co / ubi[None, :]  # P(s | t) = co[s, t] / k[t]
        phi = np.minimum(cond, cond.T)
        omega = (M @ phi.T) / phi.sum(axis=1)[None, :]
    eci, pci, lam = _eci_pci(M, div, ubi, rca_threshold)

    regions, sectors = t.index, t.columns
    sub_r, sub_s = sub.index, sub.columns

    def frame(a, rows, cols):
        return pd.DataFrame(a, index=rows, columns=cols).reindex(index=regions, columns=sectors)

    return Relatedness(
        rca=frame(R, sub_r, sub_s),
        presence=frame(M, sub_r, sub_s).fillna(0).astype(int),
        proximity=pd.DataFrame(phi, index=sub_s, columns=sub_s).reindex(
            index=sectors, columns=sectors
        ),
        density=frame(omega, sub_r, sub_s),
        eci=pd.Series(eci, index=sub_r, name="eci").reindex(regions),
        pci=pd.Series(pci, index=sub_s, name="pci").reindex(sectors),
        diversity=pd.Series(div, index=sub_r, name="diversity").reindex(regions),
        ubiquity=pd.Series(ubi, index=sub_s, name="ubiquity").reindex(sectors),
        eigenvalue=lam,
    )


def _eci_pci(M, div, ubi, threshold) -> tuple[np.ndarray, np.ndarray, float]:
    # M~ = D_u^-1 M' D_d^-1 M is similar to the symmetric D_u^-1/2 M' D_d^-1 M D_u^-1/2,
    # whose eigenvectors eigh finds stably (real, sorted); v = D_u^-1/2 w maps them back.
    if (ubi == 0).any():  # a sector with a total has RCA >= 1 somewhere unless threshold > 1
        raise InvalidInput(
            f"expected every sector to reach RCA >= {threshold} in some region, got "
            f"{int((ubi == 0).sum())} that never do; lower rca_threshold"
        )
    if (div == 0).any():
        raise InvalidInput(
            f"expected every region to reach RCA >= {threshold} in some sector, got "
            f"{int((div == 0).sum())} that never do; lower rca_threshold"
        )
    su = 1.0 / np.sqrt(ubi)
    S = (su[:, None] * (M.T / div[None, :])) @ (M * su[None, :])
    vals, vecs = np.linalg.eigh((S + S.T) / 2)
    kp = su * vecs[:, -2]
    kc = (M @ kp) / div
    if np.std(kc) == 0:
        nan_r, nan_s = np.full(len(div), np.nan), np.full(len(ubi), np.nan)
        return nan_r, nan_s, float(vals[-2])
    sign = np.sign(np.corrcoef(div, kc)[0, 1]) if np.std(div) > 0 else 1.0
    sign = 1.0 if sign == 0 or not np.isfinite(sign) else sign
    kc, kp = sign * kc, sign * kp
    mu, sd = kc.mean(), kc.std()
    return (kc - mu) / sd, (kp - mu) / sd, float(vals[-2])


def nearby_opportunities(
    result: Relatedness, *, top_n: int = 5, min_density: float | None = None
) -> pd.DataFrame:
    """Per region, the sectors it does not have (RCA < threshold) with the highest density.

    Parameters
    ----------
    result : Relatedness
        From :func:`relatedness`.
    top_n : int, default 5
        Sectors kept per region.
    min_density : float, optional
        Keep only opportunities with at least this density (in [0, 1]).

    Returns
    -------
    DataFrame
        ``region_id, rank, sector, density, rca, pci``, ``rank`` 1 = most related; ties in
        density go to the more complex sector (higher PCI), then the smaller label.

    Notes
    -----
    The "nearby" diversification opportunities of Hidalgo et al. (2007) and Hausmann et
    al. (2014): sectors close in the product space to what the region already does.
    """
    if isinstance(top_n, bool) or not isinstance(top_n, int | np.integer) or top_n < 1:
        raise InvalidInput(f"expected top_n as a positive integer, got {top_n!r}")
    if min_density is not None and not 0.0 <= float(min_density) <= 1.0:
        raise InvalidInput(f"expected min_density in [0, 1], got {min_density}")
    rows = result.density_rows()
    rows = rows[
        (result.presence.stack(future_stack=True).to_numpy() == 0) & rows["density"].notna()
    ]
    if min_density is not None:
        rows = rows[rows["density"] >= float(min_density)]
    rows = rows.assign(pci=rows["sector"].map(result.pci))
    rows = rows.sort_values(
        ["region_id", "density", "pci", "sector"],
        ascending=[True, False, False, True],
        na_position="last",
    )
    rows = rows.groupby("region_id", sort=False).head(int(top_n))
    rows.insert(1, "rank", rows.groupby("region_id").cumcount() + 1)
    return rows[["region_id", "rank", "sector", "density", "rca", "pci"]].reset_index(drop=True)
