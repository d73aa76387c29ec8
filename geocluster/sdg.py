"""SDG view of a firm register: per-region proxy indicators, national gaps, inequality.

A firm register is not a labour-force survey or an industrial census, so none of these is
the official SDG indicator; each is a *proxy* computed from the firms of a region, and
:data:`SDG_INDICATORS` says, for each, the official indicator it stands in for (name as in
the UN SDG Indicators Metadata Repository), how the proxy differs and where the official
definition comes from.

Firm columns used (the canonical firms frame, ARCHITECTURE.md): ``region_id`` (from the
point-in-polygon join), ``sector_code`` (ISIC Rev.4), ``employees``, ``informal``,
``women_led``, ``youth_led``. A missing column makes its indicators NaN; a firm with an
unknown value is left out of the numerator *and* the denominator of the indicators that
need that value.

Target 10 view ("10.x gaps"): for each indicator, each region's distance to the national
value (``region - national``, in share points) and the between-region Gini coefficient
(:func:`geocluster.inequality.gini`, unweighted over regions with a value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput, MissingColumns
from geocluster.inequality import gini
from geocluster.sectors import division_of

__all__ = [
    "SDG_INDICATORS",
    "SDGIndicator",
    "SDGView",
    "SMALL_SCALE_MAX_EMPLOYEES",
    "sdg_view",
]

#: UNIDO's statistical definition of a small-scale industrial enterprise for indicator
#: 9.3.1 where no national definition applies: fewer than 20 persons employed.
SMALL_SCALE_MAX_EMPLOYEES = 20
#: ISIC Rev.4 section C (Manufacturing) is divisions 10 to 33.
MANUFACTURING_DIVISIONS = frozenset(f"{d:02d}" for d in range(10, 34))


@dataclass(frozen=True)
class SDGIndicator:
    """Metadata of one proxy indicator.

    Attributes
    ----------
    key : str
        Column name in :attr:`SDGView.regions`.
    sdg_code : str
        SDG indicator (or target, when no indicator fits) the proxy stands in for.
    official_name : str
        The official indicator's name (UN SDG Indicators Metadata Repository wording).
    proxy_definition : str
        What is computed here, from the register.
    differs : str
        How the proxy differs from the official indicator.
    source : str
        Where the official definition comes from (custodian agency, metadata).
    needs : tuple of str
        Firm columns the proxy needs.
    """

    key: str
    sdg_code: str
    official_name: str
    proxy_definition: str
    differs: str
    source: str
    needs: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "key": self.key,
            "sdg_code": self.sdg_code,
            "official_name": self.official_name,
            "proxy_definition": self.proxy_definition,
            "differs": self.differs,
            "source": self.source,
            "needs": list(self.needs),
        }


_METADATA = (
    "UN Statistics Division, SDG Indicators Metadata Repository (unstats.un.org/sdgs/metadata)"
)

SDG_INDICATORS: dict[str, SDGIndicator] = {
    i.key: i
    for i in (
        SDGIndicator(
            key="manufacturing_employment_share",
            sdg_code="9.2.2",
            official_name="Manufacturing employment as a proportion of total employment",
            proxy_definition=(
                "Employees of firms in ISIC Rev.4 section C (divisions 10-33) over the "
                "employees of all firms of the region with a known sector and employee count."
            ),
            differs=(
                "Counts only the jobs of firms in the register (no agriculture outside it, "
                "no public sector or households unless registered); the official indicator "
                "comes from labour force surveys covering all employed persons."
            ),
            source=f"{_METADATA}, indicator 9.2.2; custodian agency UNIDO.",
            needs=("sector_code", "employees"),
        ),
        SDGIndicator(
            key="small_scale_manufacturing_share",
            sdg_code="9.3.1",
            official_name="Proportion of small-scale industries in total industry value added",
            proxy_definition=(
                "Employees of manufacturing firms (ISIC C) with fewer than "
                f"{SMALL_SCALE_MAX_EMPLOYEES} employees over the employees of all "
                "manufacturing firms with a known count."
            ),
            differs=(
                "Employment share instead of value-added share (registers rarely hold value "
                "added); small-scale is UNIDO's fewer-than-20-employees definition, not a "
                "national one."
            ),
            source=(
                f"{_METADATA}, indicator 9.3.1; custodian agency UNIDO (small-scale "
                "industry: fewer than 20 persons employed where no national definition)."
            ),
            needs=("sector_code", "employees"),
        ),
        SDGIndicator(
            key="informal_firm_share",
            sdg_code="8.3.1",
            official_name="Proportion of informal employment in total employment, by sector and sex",
            proxy_definition="Firms flagged informal over the firms with a known flag.",
            differs=(
                "A share of firms, not of jobs; informality is the register's flag on the "
                "firm, while the ILO definition counts informal jobs, also in formal firms."
            ),
            source=f"{_METADATA}, indicator 8.3.1; custodian agency ILO.",
            needs=("informal",),
        ),
        SDGIndicator(
            key="informal_employment_share",
            sdg_code="8.3.1",
            official_name="Proportion of informal employment in total employment, by sector and sex",
            proxy_definition=(
                "Employees of firms flagged informal over the employees of firms with a "
                "known flag and count."
            ),
            differs=(
                "All jobs of an informal firm count as informal and all jobs of a formal one "
                "as formal; the ILO measure classifies each job; agriculture and households "
                "outside the register are missing."
            ),
            source=f"{_METADATA}, indicator 8.3.1; custodian agency ILO.",
            needs=("informal", "employees"),
        ),
        SDGIndicator(
            key="women_led_share",
            sdg_code="5.5.2",
            official_name="Proportion of women in managerial positions",
            proxy_definition="Women-led firms over the firms with a known flag.",
            differs=(
                "Firm leadership (owner or manager, as the register records it) instead of "
                "the share of women among all managers from labour force surveys."
            ),
            source=f"{_METADATA}, indicator 5.5.2; custodian agency ILO.",
            needs=("women_led",),
        ),
        SDGIndicator(
            key="youth_led_share",
            sdg_code="8.6 (target)",
            official_name=(
                "Target 8.6: substantially reduce the proportion of youth not in employment, "
                "education or training (indicator 8.6.1)"
            ),
            proxy_definition="Youth-led firms over the firms with a known flag.",
            differs=(
                "No SDG indicator measures youth entrepreneurship; the share of youth-led "
                "firms is a context indicator for target 8.6, not a measure of 8.6.1 (NEET)."
            ),
            source=f"{_METADATA}, target 8.6 / indicator 8.6.1; custodian agency ILO.",
            needs=("youth_led",),
        ),
    )
}

#: Target 10 (reduced inequalities) framing of the gaps and the between-region Gini.
GAP_NOTE = SDGIndicator(
    key="gaps",
    sdg_code="10.2 (target)",
    official_name=(
        "Target 10.2: empower and promote the social, economic and political inclusion of "
        "all, irrespective of age, sex, disability, race, ethnicity, origin, religion or "
        "economic or other status"
    ),
    proxy_definition=(
        "For each indicator: the region's value minus the national value, and the Gini "
        "coefficient of the regional values."
    ),
    differs=(
        "Territorial gaps are not an SDG indicator; they show which regions lag on each "
        "proxy, in the spirit of target 10.2 and of leaving no one behind."
    ),
    source=f"{_METADATA}, target 10.2.",
    needs=(),
)


@dataclass(frozen=True)
class SDGView:
    """Result of :func:`sdg_view`.

    Attributes
    ----------
    regions : DataFrame
        Index ``region_id``; ``n_firms``, ``employees`` (sum of known counts) and one
        column per key of :data:`SDG_INDICATORS` (share in [0, 1], NaN when not computable).
    national : Series
        The same indicators over every firm given (also those without a region).
    gaps : DataFrame
        ``regions[indicator] - national[indicator]`` per region (index ``region_id``).
    inequality : DataFrame
        Index indicator; ``gini``, ``min``, ``max``, ``n_regions`` over regions with a value
        (``gini`` NaN when fewer than two regions have one or all are 0).
    indicators : tuple of SDGIndicator
        Metadata of the indicators, in column order.
    """

    regions: pd.DataFrame
    national: pd.Series
    gaps: pd.DataFrame
    inequality: pd.DataFrame
    indicators: tuple[SDGIndicator, ...]

    def long(self) -> pd.DataFrame:
        """One row per region × indicator with its SDG code, national value and gap."""
        keys = [i.key for i in self.indicators]
        vals = self.regions[keys].stack(future_stack=True).rename("value")
        gaps = self.gaps[keys].stack(future_stack=True).rename("gap")
        out = pd.concat([vals, gaps], axis=1).reset_index()
        out.columns = ["region_id", "indicator", "value", "gap"]
        out["national"] = out["indicator"].map(self.national)
        out["sdg_code"] = out["indicator"].map({i.key: i.sdg_code for i in self.indicators})
        return out[["region_id", "indicator", "sdg_code", "value", "national", "gap"]]


_TEXT_FLAGS = {"true": 1.0, "yes": 1.0, "1": 1.0, "false": 0.0, "no": 0.0, "0": 0.0}


def _text_flag(v):
    if isinstance(v, str):
        return _TEXT_FLAGS.get(v.strip().lower(), v)
    if isinstance(v, bool | np.bool_):
        return float(v)
    return v


def _flag(firms: pd.DataFrame, column: str) -> np.ndarray:
    """0/1 float per firm, NaN unknown; raises on values that are not booleans."""
    if column not in firms.columns:
        return np.full(len(firms), np.nan)
    raw = firms[column]
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        raw = raw.astype(object).map(_text_flag)
    v = pd.to_numeric(raw, errors="coerce").to_numpy(float, na_value=np.nan)
    bad = np.isfinite(v) & (v != 0) & (v != 1)
    unreadable = raw.notna().to_numpy() & ~np.isfinite(v)
    if bad.any() or unreadable.any():
        raise InvalidInput(
            f"expected {column} as true/false (or 1/0), got "
            f"{int(bad.sum() + unreadable.sum())} other values"
        )
    return v


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _indicators(g: np.ndarray, k: int, emp, manuf, small, informal, women, youth) -> dict:
    """Every indicator for groups ``g`` (0..k-1, -1 = none) of firms."""

    def total(w, mask):
        m = mask & (g >= 0)
        return np.bincount(g[m], weights=w[m], minlength=k)

    ones = np.ones(len(g))
    emp_known = np.isfinite(emp)
    emp0 = np.nan_to_num(emp)
    manuf_known = emp_known & ~np.isnan(manuf)
    out = {
        "n_firms": total(ones, np.ones(len(g), bool)),
        "employees": total(emp0, emp_known),
        "manufacturing_employment_share": _ratio(
            total(emp0 * (manuf == 1), manuf_known), total(emp0, manuf_known)
        ),
        "small_scale_manufacturing_share": _ratio(
            total(emp0 * small, manuf_known & (manuf == 1)),
            total(emp0, manuf_known & (manuf == 1)),
        ),
    }
    for key, flag in (
        ("informal_firm_share", informal),
        ("women_led_share", women),
        ("youth_led_share", youth),
    ):
        known = np.isfinite(flag)
        out[key] = _ratio(total(np.nan_to_num(flag), known), total(ones, known))
    known = np.isfinite(informal) & emp_known
    out["informal_employment_share"] = _ratio(
        total(emp0 * np.nan_to_num(informal), known), total(emp0, known)
    )
    if not emp_known.any():
        out["employees"] = np.full(k, np.nan)
    return out


def sdg_view(firms: pd.DataFrame, *, region_ids: list | np.ndarray | None = None) -> SDGView:
    """Per-region SDG proxy indicators of a firm register, gaps to national and Gini.

    Parameters
    ----------
    firms : DataFrame
        One row per firm with ``region_id`` (missing for firms in no region) and any of
        ``sector_code`` (ISIC Rev.4 code at any detail), ``employees``, ``informal``,
        ``women_led``, ``youth_led`` (true/false or 1/0; missing = unknown).
    region_ids : sequence of str, optional
        Every region to report, also those without firms (rows of NaN shares). Default:
        the regions that have firms.

    Returns
    -------
    SDGView

    Raises
    ------
    MissingColumns
        Without a ``region_id`` column.
    InvalidInput
        Negative employee counts or flags that are not booleans.

    Notes
    -----
    Official definitions: UN Statistics Division, *SDG Indicators Metadata Repository*,
    indicators 9.2.2 and 9.3.1 (custodian UNIDO), 8.3.1 and 5.5.2 (custodian ILO). The
    small-scale threshold (fewer than 20 employees) is UNIDO's for 9.3.1 (UNIDO,
    *Statistical Indicators of Inclusive and Sustainable Industrialization*, 2017).
    Between-region inequality: Gini (1912), as in :mod:`geocluster.inequality`.
    """
    if not isinstance(firms, pd.DataFrame):
        raise InvalidInput(f"expected firms as a DataFrame, got {type(firms).__name__}")
    if "region_id" not in firms.columns:
        raise MissingColumns(
            f"expected a region_id column (firms joined to regions), got {list(firms.columns)}"
        )
    n = len(firms)
    region = firms["region_id"]
    known_region = region.notna().to_numpy()
    labels = region[known_region].astype(str).to_numpy()
    if region_ids is None:
        ids = pd.Index(sorted(set(labels)), dtype=object)
    else:
        ids = pd.Index([str(r) for r in region_ids], dtype=object)
        if ids.has_duplicates:
            raise InvalidInput("expected unique region_ids, got duplicates")
    g = np.full(n, -1, dtype=np.int64)
    g[known_region] = ids.get_indexer(labels)  # -1 for firms of unlisted regions
    emp = (
        pd.to_numeric(firms["employees"], errors="coerce").to_numpy(float, na_value=np.nan)
        if "employees" in firms.columns
        else np.full(n, np.nan)
    )
    if (emp < 0).any():
        raise InvalidInput(f"expected employees >= 0, got {int((emp < 0).sum())} negative values")
    if "sector_code" in firms.columns:
        div = division_of(firms["sector_code"].astype("str"))
        manuf = np.where(
            div.notna().to_numpy(), div.isin(MANUFACTURING_DIVISIONS).to_numpy(float), np.nan
        )
    else:
        manuf = np.full(n, np.nan)
    small = (np.nan_to_num(emp, nan=np.inf) < SMALL_SCALE_MAX_EMPLOYEES).astype(float)
    flags = [_flag(firms, c) for c in ("informal", "women_led", "youth_led")]
    reg = _indicators(g, len(ids), emp, manuf, small, *flags)
    nat = _indicators(np.zeros(n, np.int64), 1, emp, manuf, small, *flags)
    regions = pd.DataFrame(reg, index=ids)
    regions.index.name = "region_id"
    regions["n_firms"] = regions["n_firms"].astype(int)
    national = pd.Series({k: v[0] for k, v in nat.items()}, name="national")
    keys = list(SDG_INDICATORS)
    gaps = regions[keys] - national[keys]
    ineq = {}
    for key in keys:
        v = regions[key].dropna().to_numpy(float)
        g_val = np.nan
        if len(v) >= 2 and v.sum() > 0:
            g_val = gini(v)
        ineq[key] = {
            "gini": g_val,
            "min": v.min() if len(v) else np.nan,
            "max": v.max() if len(v) else np.nan,
            "n_regions": len(v),
        }
    inequality = pd.DataFrame.from_dict(ineq, orient="index")
    inequality["n_regions"] = inequality["n_regions"].astype(int)
    return SDGView(
        regions=regions[["n_firms", "employees", *keys]],
        national=national[["n_firms", "employees", *keys]],
        gaps=gaps,
        inequality=inequality,
        indicators=tuple(SDG_INDICATORS.values()),
    )
