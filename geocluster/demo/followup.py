"""A SYNTHETIC follow-up version of the demo's Mexican register (``mexico_firms@2``).

The monitoring step of the UNIDO cycle compares a baseline register with a follow-up
one. The demo has one synthetic register; :func:`follow_up` derives a second one from it,
deterministically (a fixed seed), as if the register were compiled again two years later:

- **closures:** each firm closes with probability ``CLOSURE_RATE`` (informal firms and
  firms of one or two employees twice as likely: small firms die young, Eurostat–OECD
  business demography); the tequila and Talavera clusters lose more (``SHOCKS``), so the
  change report shows a shrinking cluster;
- **employment:** each surviving firm's employees are multiplied by a lognormal factor
  whose median is the drift of its sector's division (``DRIFT``: electronics and auto
  parts grow, footwear shrinks) and rounded, at least 1;
- **births:** ``BIRTH_RATE`` new firms per surviving firm, placed near a random existing
  firm of the same division (its location plus a 1 km Gaussian jitter), founded in the
  baseline's last year and the next; plus a **new cluster** of aerospace firms (ISIC 3030) in Querétaro,
  absent from the baseline, so that a cluster "appears";
- **a new question:** the follow-up records whether a firm is youth-led (``youth_led``,
  the baseline did not ask): true with probability 0.45 for firms founded in the last
  five years and new firms, 0.15 for older ones (young founders run young firms).

Firm ids are kept for survivors (so clusters can be matched by shared firms) and new
firms get ids after the baseline's. Every row stays ``synthetic = True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["BIRTH_RATE", "CLOSURE_RATE", "FOLLOW_UP_YEARS", "follow_up", "write_follow_up"]

SEED = 20261201
FOLLOW_UP_YEARS = 2
CLOSURE_RATE = 0.06
BIRTH_RATE = 0.08
#: Extra closure probability of firms of a few clusters (ISIC class: probability).
SHOCKS = {"1101": 0.25, "2393": 0.20}
#: Median yearly employment change by ISIC division (others: 0).
DRIFT = {"26": 0.08, "29": 0.06, "15": -0.04, "55": 0.03, "56": 0.03}
#: The new aerospace cluster: centre (lon, lat), scatter (km), number of firms.
NEW_CLUSTER = ((-100.390, 20.590), 3.0, 160)


def follow_up(baseline: pd.DataFrame, *, seed: int = SEED) -> pd.DataFrame:
    """The follow-up register derived from the baseline one (same columns).

    Parameters
    ----------
    baseline : DataFrame
        The bundled CSV as read by pandas (``firm_id, name, isic, employees, founded,
        women_led, informal, lon, lat, synthetic``).
    seed : int
        Random seed (the default gives the demo's ``mexico_firms@2``).

    Returns
    -------
    DataFrame
        Survivors (with changed employment) then new firms, the baseline's columns plus
        ``youth_led`` (before ``synthetic``).
    """
    rng = np.random.default_rng(seed)
    base = baseline.reset_index(drop=True)
    isic = base["isic"].astype(str).str.zfill(4)
    division = isic.str[:2]
    emp = pd.to_numeric(base["employees"], errors="coerce").fillna(1).to_numpy(float)
    informal = base["informal"].astype(str).str.lower().eq("true").to_numpy()
    p_close = np.full(len(base), CLOSURE_RATE)
    p_close[informal | (emp <= 2)] *= 2
    p_close += isic.map(SHOCKS).fillna(0.0).to_numpy(float)
    survive = rng.random(len(base)) >= p_close
    drift = division.map(DRIFT).fillna(0.0).to_numpy(float)
    factor = np.exp(rng.normal(np.log1p(drift) * FOLLOW_UP_YEARS, 0.15))
    new_emp = np.maximum(1, np.round(emp * factor)).astype(int)
    kept = base[survive].copy()
    kept["employees"] = new_emp[survive]

    last_year = int(pd.to_numeric(base["founded"], errors="coerce").max())
    # the follow-up is compiled at the end of the baseline's last year + 1: births in
    # those two years (an ingest refuses founding years after the current one)
    years = np.arange(last_year, last_year + FOLLOW_UP_YEARS)
    n_births = int(round(BIRTH_RATE * len(kept)))
    parents = kept.iloc[rng.integers(0, len(kept), n_births)]
    lat0 = parents["lat"].to_numpy(float)
    km = 1.0 / 111.32
    births = pd.DataFrame(
        {
            "isic": parents["isic"].to_numpy(),
            "employees": rng.choice([1, 1, 2, 2, 3, 4, 6, 10], n_births),
            "women_led": rng.random(n_births) < 0.36,
            "informal": rng.random(n_births) < 0.40,
            "lon": parents["lon"].to_numpy(float)
            + rng.normal(0, km, n_births) / np.cos(np.radians(lat0)),
            "lat": lat0 + rng.normal(0, km, n_births),
        }
    )
    (cx, cy), sd_km, n_new = NEW_CLUSTER
    cluster = pd.DataFrame(
        {
            "isic": "3030",
            "employees": rng.integers(5, 120, n_new),
            "women_led": rng.random(n_new) < 0.20,
            "informal": False,
            "lon": cx + rng.normal(0, sd_km * km, n_new) / np.cos(np.radians(cy)),
            "lat": cy + rng.normal(0, sd_km * km, n_new),
        }
    )
    new = pd.concat([births, cluster], ignore_index=True)
    new["founded"] = rng.choice(years, len(new))
    start = int(base["firm_id"].str[3:].astype(int).max()) + 1
    numbers = np.arange(start, start + len(new))
    new["firm_id"] = [f"MXF{i:06d}" for i in numbers]
    new["name"] = [f"Synthetic firm {i}" for i in numbers]
    new["synthetic"] = True
    new["lon"] = new["lon"].round(5)
    new["lat"] = new["lat"].round(5)
    out = pd.concat([kept, new[base.columns]], ignore_index=True)
    founded = pd.to_numeric(out["founded"], errors="coerce").to_numpy(float)
    p_young = np.where(founded >= last_year - 4, 0.45, 0.15)
    out["youth_led"] = rng.random(len(out)) < p_young
    columns = [c for c in base.columns if c != "synthetic"] + ["youth_led", "synthetic"]
    return out[columns]


def write_follow_up(baseline_csv: str | Path, out_csv: str | Path) -> Path:
    """Derive the follow-up from the bundled CSV and write it (byte-for-byte reproducible)."""
    base = pd.read_csv(baseline_csv, dtype={"isic": str, "firm_id": str})
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    follow_up(base).to_csv(out, index=False, lineterminator="\n")
    return out
