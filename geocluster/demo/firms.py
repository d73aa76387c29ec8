"""Seeded generator of a SYNTHETIC firm registry for Mexico (demo data only).

Nothing produced here describes a real firm. The generator places firms around
real Mexican cluster towns (real coordinates, approximate town centres) and, as
background, around the largest cities of every state in proportion to their
metropolitan population, so that the demo map, cluster detection and regional
specialisation have something recognisable to find:

=====================  =========================  =======================
place                  activity (ISIC Rev.4)       why
=====================  =========================  =======================
León, Gto.             15 footwear and leather    Mexico's shoe capital
Guadalajara, Jal.      26 electronics             "Mexican Silicon Valley"
Tequila, Jal.          11 spirits (tequila)       Tequila DO heartland
Arandas, Jal.          11 spirits (tequila)       Los Altos tequila region
Puebla, Pue.           23 ceramics (Talavera)     Talavera de Puebla DO
Puebla, Pue.           29 motor vehicle parts     VW/Audi supplier base
Monterrey, N.L.        24/25 basic and fabricated  steel and metalworking
                       metals
Cancún, Q.R.           55/56/79 tourism           beach resorts
Playa del Carmen, Q.R. 55/56 tourism              Riviera Maya
Oaxaca, Oax.           55/56/79 tourism           colonial city, UNESCO
Santiago Matatlán,     11 spirits (mezcal)        "world capital of mezcal"
Oax.
Aguascalientes, Ags.   13/14 textiles, apparel    garment industry
=====================  =========================  =======================

Distributions (all drawn from one ``numpy.random.Generator`` seeded by ``seed``,
so a seed always gives the same registry):

- **location**: isotropic normal scatter around the place, ``sigma_km`` per place
  (3-12 km for clusters; ``3 + 4 * sqrt(population_millions)`` km for background
  cities). With ``within`` (a lon/lat polygon, e.g. the union of the states),
  points falling outside (sea, other countries) are redrawn, up to 30 times, then
  put on the place centre.
- **employees**: ``ceil(LogNormal(mu, sigma))``, at least 1. Background
  ``mu=0.55, sigma=0.9`` (median 2, about 97 % with 10 or fewer employees, close
  to the 95 % micro-enterprise share of Mexico's 2019 economic census); clusters
  have larger firms (e.g. electronics median about 16).
- **women_led**: Bernoulli with a share per activity (e.g. hairdressing 0.75,
  apparel 0.55, restaurants 0.5, metals 0.12), halved for firms over 10 employees.
  About a third of all firms overall (INEGI's 2019 census reports 36.6 % of
  establishments run by women).
- **informal**: Bernoulli ``p = base * exp(-(employees - 1) / 10)``: most micro
  firms in retail and food are informal, almost no firm over 50 employees is.
- **founded**: ``2025 - floor(Exponential(10 + 4 * log1p(employees)))`` clipped
  to 1960-2025: more recent firms, bigger firms older.

Documented ranges that tests check for any seed and ``n >= 2000``: share of
firms with at most 10 employees 0.80-0.95 (cluster firms are bigger than the
national average); women-led 0.28-0.45; informal 0.25-0.60; founded in or after
2000 at least 0.6; about 45 % of firms drawn around the cluster towns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from geocluster.errors import InvalidInput

__all__ = ["BACKGROUND_CITIES", "CLUSTER_TOWNS", "Place", "generate_firms"]

KM_PER_DEG = 111.32


@dataclass(frozen=True)
class Place:
    """A place firms are drawn around.

    ``sectors`` maps ISIC Rev.4 classes to weights; ``share`` is the fraction of
    all firms drawn here (cluster towns) or the metropolitan population in
    millions (background cities).
    """

    name: str
    state: str  # ISO 3166-2 code of the state
    lon: float
    lat: float
    sigma_km: float
    share: float
    sectors: dict[str, float] = field(default_factory=dict)
    size_mu: float = 0.55
    size_sigma: float = 0.9
    women: float = 0.35
    informal: float = 0.6


CLUSTER_TOWNS: tuple[Place, ...] = (
    Place(
        "León", "MX-GUA", -101.686, 21.125, 6.0, 0.10,
        {"1520": 0.70, "1511": 0.15, "1512": 0.15}, 1.4, 1.2, 0.30, 0.35,
    ),
    Place(
        "Guadalajara", "MX-JAL", -103.350, 20.620, 10.0, 0.045,
        {"2610": 0.35, "2620": 0.20, "2630": 0.20, "2640": 0.10, "2651": 0.15},
        2.8, 1.5, 0.20, 0.05,
    ),
    Place("Tequila", "MX-JAL", -103.836, 20.882, 5.0, 0.02, {"1101": 0.85, "5610": 0.15},
          1.4, 1.4, 0.25, 0.30),
    Place("Arandas", "MX-JAL", -102.346, 20.706, 5.0, 0.01, {"1101": 1.0}, 1.6, 1.4, 0.20, 0.25),
    Place(
        "Puebla (Talavera)", "MX-PUE", -98.198, 19.043, 4.0, 0.025,
        {"2393": 0.70, "2392": 0.20, "2399": 0.10}, 1.0, 1.0, 0.40, 0.45,
    ),
    Place("Puebla (autoparts)", "MX-PUE", -98.250, 19.090, 6.0, 0.015, {"2930": 0.8, "2910": 0.2},
          3.5, 1.5, 0.15, 0.03),
    Place(
        "Monterrey", "MX-NLE", -100.316, 25.687, 12.0, 0.06,
        {"2410": 0.20, "2431": 0.10, "2511": 0.30, "2592": 0.25, "2599": 0.15},
        2.2, 1.5, 0.12, 0.10,
    ),
    Place(
        "Cancún", "MX-ROO", -86.851, 21.161, 4.0, 0.06,
        {"5510": 0.40, "5610": 0.40, "5630": 0.10, "7911": 0.05, "7912": 0.05},
        1.8, 1.4, 0.35, 0.25,
    ),
    Place("Playa del Carmen", "MX-ROO", -87.075, 20.629, 3.0, 0.025,
          {"5510": 0.50, "5610": 0.40, "7912": 0.10}, 1.6, 1.3, 0.35, 0.30),
    Place(
        "Oaxaca", "MX-OAX", -96.727, 17.073, 3.0, 0.035,
        {"5510": 0.30, "5610": 0.50, "5630": 0.10, "7912": 0.10}, 1.0, 1.1, 0.50, 0.50,
    ),
    Place("Santiago Matatlán", "MX-OAX", -96.383, 16.866, 4.0, 0.0175,
          {"1101": 0.90, "5610": 0.10}, 0.8, 0.9, 0.25, 0.60),
    Place(
        "Aguascalientes (garments)", "MX-AGU", -102.296, 21.882, 7.0, 0.035,
        {"1410": 0.50, "1430": 0.20, "1392": 0.15, "1312": 0.15}, 1.3, 1.2, 0.55, 0.40,
    ),
)  # fmt: skip

# Largest city (or cities) of every state: (name, state, lon, lat, metro population
# in millions, approximate 2020 census figures).
_CITIES = [
    ("Ciudad de México", "MX-CMX", -99.133, 19.433, 21.8),
    ("Guadalajara", "MX-JAL", -103.348, 20.677, 5.3),
    ("Monterrey", "MX-NLE", -100.316, 25.687, 5.3),
    ("Puebla", "MX-PUE", -98.206, 19.041, 3.2),
    ("Toluca", "MX-MEX", -99.656, 19.283, 2.4),
    ("Tijuana", "MX-BCN", -117.038, 32.515, 2.2),
    ("León", "MX-GUA", -101.686, 21.125, 1.9),
    ("Querétaro", "MX-QUE", -100.390, 20.589, 1.6),
    ("Ciudad Juárez", "MX-CHH", -106.425, 31.690, 1.5),
    ("Torreón", "MX-COA", -103.407, 25.543, 1.4),
    ("Mérida", "MX-YUC", -89.593, 20.967, 1.3),
    ("San Luis Potosí", "MX-SLP", -100.986, 22.157, 1.2),
    ("Aguascalientes", "MX-AGU", -102.292, 21.885, 1.1),
    ("Mexicali", "MX-BCN", -115.452, 32.625, 1.05),
    ("Cuernavaca", "MX-MOR", -99.222, 18.924, 1.0),
    ("Saltillo", "MX-COA", -101.005, 25.423, 1.0),
    ("Culiacán", "MX-SIN", -107.394, 24.809, 1.0),
    ("Chihuahua", "MX-CHH", -106.069, 28.632, 0.99),
    ("Morelia", "MX-MIC", -101.195, 19.706, 0.99),
    ("Veracruz", "MX-VER", -96.134, 19.174, 0.94),
    ("Cancún", "MX-ROO", -86.851, 21.161, 0.93),
    ("Tampico", "MX-TAM", -97.861, 22.233, 0.93),
    ("Hermosillo", "MX-SON", -110.956, 29.073, 0.9),
    ("Acapulco", "MX-GRO", -99.824, 16.853, 0.85),
    ("Tuxtla Gutiérrez", "MX-CHP", -93.103, 16.752, 0.85),
    ("Reynosa", "MX-TAM", -98.278, 26.092, 0.84),
    ("Villahermosa", "MX-TAB", -92.948, 17.990, 0.83),
    ("Xalapa", "MX-VER", -96.910, 19.544, 0.8),
    ("Oaxaca", "MX-OAX", -96.727, 17.073, 0.7),
    ("Durango", "MX-DUR", -104.653, 24.028, 0.69),
    ("Pachuca", "MX-HID", -98.759, 20.101, 0.66),
    ("Tlaxcala", "MX-TLA", -98.240, 19.314, 0.54),
    ("Matamoros", "MX-TAM", -97.504, 25.869, 0.54),
    ("Tepic", "MX-NAY", -104.895, 21.504, 0.5),
    ("Mazatlán", "MX-SIN", -106.411, 23.249, 0.5),
    ("Puerto Vallarta", "MX-JAL", -105.225, 20.653, 0.48),
    ("Ensenada", "MX-BCN", -116.605, 31.866, 0.44),
    ("Zacatecas", "MX-ZAC", -102.583, 22.771, 0.4),
    ("Colima", "MX-COL", -103.724, 19.245, 0.38),
    ("Ciudad Victoria", "MX-TAM", -99.141, 23.737, 0.35),
    ("Campeche", "MX-CAM", -90.535, 19.830, 0.3),
    ("La Paz", "MX-BCS", -110.313, 24.143, 0.29),
    ("Chilpancingo", "MX-GRO", -99.501, 17.552, 0.28),
    ("Chetumal", "MX-ROO", -88.296, 18.500, 0.23),
]

# Urban background activity mix (ISIC Rev.4 classes), shaped like the
# establishment counts of a Mexican city: corner shops, food stalls, eateries,
# beauty salons and repair shops dominate.
_BACKGROUND_SECTORS = {
    "4711": 0.14, "4721": 0.10, "4719": 0.03, "4771": 0.06, "4772": 0.03, "4752": 0.03,
    "4759": 0.02, "4773": 0.03, "4781": 0.04, "5610": 0.12, "5630": 0.02, "9602": 0.06,
    "9601": 0.015, "9529": 0.01, "4520": 0.05, "4530": 0.02, "1071": 0.04, "1079": 0.01,
    "1410": 0.01, "3100": 0.01, "2511": 0.01, "4330": 0.02, "4321": 0.01, "4100": 0.01,
    "4923": 0.01, "4630": 0.01, "4649": 0.01, "6920": 0.015, "6910": 0.01, "8620": 0.025,
    "8510": 0.01, "9311": 0.005, "6201": 0.005, "8211": 0.01, "7490": 0.005, "6810": 0.01,
    "5510": 0.01,
}  # fmt: skip

# Women-led share by ISIC division for background firms (default 0.35).
_WOMEN_BY_DIVISION = {
    "96": 0.75, "14": 0.55, "56": 0.50, "47": 0.45, "86": 0.45, "85": 0.55, "10": 0.40,
    "69": 0.35, "45": 0.05, "43": 0.06, "41": 0.08, "49": 0.05, "25": 0.10, "31": 0.15,
}  # fmt: skip

BACKGROUND_CITIES: tuple[Place, ...] = tuple(
    Place(n, s, lon, lat, 3.0 + 4.0 * math.sqrt(pop), pop, _BACKGROUND_SECTORS)
    for n, s, lon, lat, pop in _CITIES
)


def _scatter(rng, place, k, within, max_rounds=30):
    dlat = place.sigma_km / KM_PER_DEG
    dlon = place.sigma_km / (KM_PER_DEG * math.cos(math.radians(place.lat)))
    lon = place.lon + rng.normal(0.0, dlon, k)
    lat = place.lat + rng.normal(0.0, dlat, k)
    if within is not None:
        bad = ~shapely.contains_xy(within, lon, lat)
        for _ in range(max_rounds):
            m = int(bad.sum())
            if m == 0:
                break
            lon[bad] = place.lon + rng.normal(0.0, dlon, m)
            lat[bad] = place.lat + rng.normal(0.0, dlat, m)
            bad = ~shapely.contains_xy(within, lon, lat)
        lon[bad], lat[bad] = place.lon, place.lat
    return lon, lat


def _draw(rng, place, k, within, origin):
    codes = np.array(list(place.sectors), dtype=object)
    w = np.array(list(place.sectors.values()), dtype=float)
    isic = rng.choice(codes, size=k, p=w / w.sum())
    employees = np.maximum(1, np.ceil(rng.lognormal(place.size_mu, place.size_sigma, k)))
    employees = np.minimum(employees, 20_000).astype(np.int64)
    if place.sectors is _BACKGROUND_SECTORS:
        p_women = np.array([_WOMEN_BY_DIVISION.get(c[:2], 0.35) for c in isic])
    else:
        p_women = np.full(k, place.women)
    p_women = np.where(employees > 10, p_women * 0.5, p_women)
    women = rng.random(k) < p_women
    informal = rng.random(k) < place.informal * np.exp(-(employees - 1) / 10.0)
    scale = 10.0 + 4.0 * np.log1p(employees)
    age = np.floor(rng.exponential(scale))
    founded = np.clip(2025 - age, 1960, 2025).astype(np.int64)
    lon, lat = _scatter(rng, place, k, within)
    return pd.DataFrame(
        {
            "isic": isic.astype(str),
            "employees": employees,
            "founded": founded,
            "women_led": women,
            "informal": informal,
            "lon": np.round(lon, 5),
            "lat": np.round(lat, 5),
            "origin": origin,
        }
    )


def generate_firms(
    n: int = 20_000, *, seed: int = 0, within: shapely.Geometry | None = None
) -> pd.DataFrame:
    """Draw a synthetic Mexican firm registry.

    Parameters
    ----------
    n : int
        Number of firms (at least 100). About 45 % are drawn around the cluster
        towns of :data:`CLUSTER_TOWNS` (fixed shares of ``n``), the rest around
        :data:`BACKGROUND_CITIES` in proportion to population.
    seed : int
        Seed of the ``numpy.random.default_rng`` generator; same seed, same firms.
    within : shapely geometry, optional
        Polygon in lon/lat (EPSG:4326) that every firm must fall in (e.g. the
        union of Mexico's states); points outside are redrawn.

    Returns
    -------
    pandas.DataFrame
        One row per firm, columns ``firm_id`` ("MXF000001"...), ``name``
        ("Synthetic firm N"), ``isic`` (ISIC Rev.4 class, 4-digit string),
        ``employees`` (int >= 1), ``founded`` (year 1960-2025), ``women_led``
        (bool), ``informal`` (bool), ``lon``, ``lat`` (EPSG:4326 degrees, 5
        decimals), ``synthetic`` (always True), ``origin`` (the place the firm was
        drawn around: a cluster town name or "background: <city>"; not written to
        the demo CSV).
    """
    if not isinstance(n, int | np.integer) or n < 100:
        raise InvalidInput(f"expected n >= 100 firms, got {n!r}")
    rng = np.random.default_rng(seed)
    if within is not None:
        shapely.prepare(within)
    parts = []
    n_cluster = 0
    for town in CLUSTER_TOWNS:
        k = int(round(n * town.share))
        n_cluster += k
        parts.append(_draw(rng, town, k, within, town.name))
    pops = np.array([c.share for c in BACKGROUND_CITIES])
    counts = rng.multinomial(n - n_cluster, pops / pops.sum())
    for city, k in zip(BACKGROUND_CITIES, counts, strict=True):
        if k:
            parts.append(_draw(rng, city, int(k), within, f"background: {city.name}"))
    df = pd.concat(parts, ignore_index=True)
    # shuffle so that file order tells nothing about the clusters
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    num = np.arange(1, len(df) + 1)
    df.insert(0, "firm_id", [f"MXF{i:06d}" for i in num])
    df.insert(1, "name", [f"Synthetic firm {i}" for i in num])
    df.insert(len(df.columns) - 1, "synthetic", True)
    return df
