"""Field types shared by several specs (declared once: same constraint everywhere)."""

from __future__ import annotations

from typing import Annotated

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
