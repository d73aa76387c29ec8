"""``/rasters``: register a GeoTIFF (upload), list and describe rasters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from api.auth import can_see_raster, get_principal, record, require, visible_raster
from api.deps import get_settings, get_workspace
from api.settings import Settings
from api.uploads import check_content_length, saved_upload

router = APIRouter(prefix="/rasters", tags=["rasters"])


def raster_dict(info, request: Request) -> dict[str, Any]:
    out = info.to_dict()
    base = str(request.base_url).rstrip("/")
    out["links"] = [
        {"rel": "self", "href": f"{base}/rasters/{info.id}", "type": "application/json"},
        {
            "rel": "tilejson",
            "href": f"{base}/rasters/{info.id}/tilejson.json",
            "type": "application/json",
        },
        {
            "rel": "tiles",
            "href": f"{base}/rasters/{info.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png",
            "type": "image/png",
            "templated": True,
        },
    ]
    return out


@router.post("", status_code=201, summary="Upload and register a raster (GeoTIFF)")
def upload_raster(
    request: Request,
    file: Annotated[UploadFile, File(description="a GeoTIFF with a CRS")],
    name: Annotated[
        str | None,
        Form(description="raster name (default: the file name)", examples=["population"]),
    ] = None,
    settings: Settings = Depends(get_settings),
    ws=Depends(get_workspace),
    principal=Depends(require("editor")),
) -> dict[str, Any]:
    """Validate the file, store it as a COG and register it by id (editor key)."""
    check_content_length(request, settings)
    with saved_upload(file, settings) as path:
        info = ws.add_raster(path, name=name or path.stem, kind="raster")
    if principal.kind != "open":
        ws.catalog.update("gc_rasters", {"owner": principal.id}, id=info.id)
    record(request, "raster.upload", info.id, {"kind": info.kind})
    return raster_dict(info, request)


@router.get("", summary="List rasters")
def list_rasters(
    request: Request, ws=Depends(get_workspace), principal=Depends(get_principal)
) -> dict[str, Any]:
    rasters = [r for r in ws.rasters() if can_see_raster(ws, principal, r)]
    return {"rasters": [raster_dict(r, request) for r in rasters]}


@router.get("/{raster_id}", summary="One raster")
def get_raster(
    raster_id: str, request: Request, ws=Depends(get_workspace), principal=Depends(get_principal)
) -> dict[str, Any]:
    return raster_dict(visible_raster(ws, principal, raster_id), request)
