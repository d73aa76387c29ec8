"""Field types shared by several specs (declared once: same constraint everywhere)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from geocluster.analyses.spec import Cli

FirmsId = Annotated[str, Field(description="firms dataset id (name or name@version)")]
BoundariesId = Annotated[str, Field(description="boundaries dataset id (name or name@version)")]
Sectors = Annotated[
    list[str] | None,
    Field(
        description="ISIC Rev.4 codes: section letter, division (15), group (152) or class (1520)",
        examples=[["15"]],
    ),
    Cli(aliases=("--sector",)),
]
SectorGroup = Annotated[
    str | None,
    Field(description="sector group: agro_food, tourism, creative_industries"),
]
Level = Annotated[
    int | None, Field(ge=0, le=10, description="boundary level (default: the finest)")
]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="random seed")]
RadiusM = Annotated[float, Field(gt=0, le=1_000_000, description="radius in metres")]
#: Informal-economy cluster presets (``geocluster/clustering/PRESETS.md``); the names are
#: checked against ``geocluster.clustering.presets.PRESETS`` by the tests.
Preset = Annotated[
    Literal["india_industrial", "india_micro_enterprise", "india_mse_cdp", "unido_diagnostic"]
    | None,
    Field(
        description="informal-economy cluster preset: fills eps_m, min_samples and the firm-count "
        "measure not given explicitly, and keeps clusters of at least its min_firms. "
        "india_industrial (100 enterprises) and india_micro_enterprise (50 units): Foundation for "
        "MSME Clusters, Cluster Observatory of India; india_mse_cdp (20 enterprises): Ministry of "
        "MSME, MSE-CDP guideline; unido_diagnostic (15, a screening floor): UNIDO (2010), Cluster "
        "development for pro-poor growth. Sources and caveats in geocluster/clustering/PRESETS.md"
    ),
]
