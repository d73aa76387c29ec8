"""Human titles and units for indicator and statistic names shown in reports.

Charts and tables never show a code name (``theil_t``, ``pcgdp``): a known name gets its
title and unit here; an unknown one is turned into words (``gdp_pc`` -> "Gdp pc").
"""

from __future__ import annotations

#: name -> (title, unit or None). Units as published with the data (data/*/README.md).
KNOWN: dict[str, tuple[str, str | None]] = {
    "pcgdp": ("GDP per capita", "constant pesos per person"),
    "gdp_pc": ("GDP per capita", None),
    "gdp": ("Gross domestic product", None),
    "population": ("Population", "inhabitants"),
    "unemployment": ("Unemployment rate", "%"),
    "firm_density": ("Firm density", "firms per km²"),
    "theil_t": ("Theil T index", None),
    "theil_l": ("Theil L index (mean log deviation)", None),
    "gini": ("Gini coefficient", None),
    "cv": ("Coefficient of variation", None),
}

#: Ranking components (geocluster.ranking.COMPONENTS) as words.
COMPONENT_TITLES: dict[str, str] = {
    "size_firms": "Size (firms)",
    "size_employment": "Size (employment)",
    "specialisation": "Specialisation (LQ)",
    "density": "Density",
    "dynamism": "Dynamism",
    "growth": "Growth",
    "inclusiveness": "Inclusiveness",
    "youth": "Youth-led firms",
    "informality": "Formality",
    "institutions": "Support institutions",
    "assets": "Territorial assets",
}


def title(name: str) -> str:
    """The human title of an indicator or statistic name."""
    known = KNOWN.get(str(name)) or KNOWN.get(str(name).lower())
    if known:
        return known[0]
    words = str(name).replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:] if words else str(name)


def unit(name: str) -> str | None:
    """The unit of an indicator name, when known."""
    known = KNOWN.get(str(name)) or KNOWN.get(str(name).lower())
    return known[1] if known else None


def with_unit(name: str) -> str:
    """``"GDP per capita (constant pesos per person)"``."""
    u = unit(name)
    return f"{title(name)} ({u})" if u else title(name)
