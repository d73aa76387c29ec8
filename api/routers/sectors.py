"""``GET /sectors``: ISIC Rev.4 sections, divisions and the sector groups, with titles.

The map's analysis panel lists them so that a planner picks "15 – Manufacture of
leather and related products" rather than typing a code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter(tags=["service"])


@router.get("/sectors", summary="ISIC Rev.4 sections, divisions and sector groups (titles)")
def list_sectors() -> dict[str, Any]:
    """Sections (21), divisions (88) and the built-in sector groups.

    Returns
    -------
    dict
        ``{"scheme": "isic4", "sections": [{code, title}], "divisions": [{code, title,
        section}], "groups": [{name, divisions, note}]}``; every code is accepted as a
        ``sectors`` entry and every group name as ``sector_group`` by the analyses.
    """
    from geocluster.sectors import DIVISIONS, SECTIONS, SECTOR_GROUP_NOTES, SECTOR_GROUPS

    return {
        "scheme": "isic4",
        "sections": [{"code": c, "title": t} for c, t in SECTIONS.items()],
        "divisions": [
            {"code": c, "title": t, "section": s} for c, (s, t) in sorted(DIVISIONS.items())
        ],
        "groups": [
            {
                "name": name,
                "divisions": sorted(codes),
                "note": SECTOR_GROUP_NOTES.get(name, ""),
            }
            for name, codes in SECTOR_GROUPS.items()
        ],
    }
