"""``/groups``: the workspace's own sector groups, usable as ``sector_group`` everywhere."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require
from api.deps import get_workspace

router = APIRouter(prefix="/groups", tags=["datasets"])


class GroupsBody(BaseModel):
    """Groups to store: ``{name: {"title", "codes", "scheme"?, "description"?}}``."""

    model_config = ConfigDict(extra="forbid")

    groups: dict[str, dict[str, Any]] = Field(
        ...,
        description="group name -> {title, codes (ISIC or, with scheme nace2, NACE), "
        "scheme?, description?}",
        examples=[{"wine": {"title": "Wine value chain", "codes": ["0121", "1102"]}}],
    )


@router.get("", summary="The workspace's own sector groups")
def list_groups(ws=Depends(get_workspace)) -> dict[str, Any]:
    """``{name: {"title", "codes"}}``; built-in groups are documented in GROUPS.md."""
    return ws.sector_groups()


@router.post(
    "",
    summary="Store sector groups (editor)",
    status_code=201,
    dependencies=[Depends(require("editor"))],
)
def add_groups(body: GroupsBody, ws=Depends(get_workspace)) -> dict[str, Any]:
    """Validate and store the groups; a name already stored is replaced."""
    from geocluster.sectors.groups import groups_from_mapping

    names = ws.add_sector_groups(groups_from_mapping(body.groups, label="groups"))
    return {"stored": names, "groups": ws.sector_groups()}
