"""``/datasets``: upload (multipart, streamed), list, get, change visibility, delete.

Uploads need an editor key and make the caller the dataset's owner; a caller sees only
the datasets :func:`api.auth.can_see_dataset` allows, and any other id is a 404.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from pydantic import BaseModel, ConfigDict

from api.auth import can_see_dataset, get_principal, record, require, visible_dataset
from api.deps import get_settings, get_workspace
from api.settings import Settings
from api.uploads import check_content_length, saved_upload
from geocluster.auth import Principal
from geocluster.errors import Conflict, InvalidInput
from geocluster.ingest import IngestOptions

router = APIRouter(prefix="/datasets", tags=["datasets"])

OPTIONS_EXAMPLE = (
    '{"lon_col": "lng", "lat_col": "lat", "sector_col": "isic", "employees_col": "staff"}'
)


# The keys are IngestOptions' fields, the same as the CLI flags (max_bytes is the server's).
OPTIONS_DESCRIPTION = (
    "JSON object of ingest options, keys as the CLI flags in snake case: "
    + ", ".join(f.name for f in fields(IngestOptions) if f.name != "max_bytes")
)


def _public(info, *, with_rejected: bool = True, max_rejected: int | None = None) -> dict[str, Any]:
    out = info.to_dict()
    if not with_rejected:
        out.pop("rejected", None)
    elif max_rejected is not None:
        # a hostile file can yield millions of rejections: list the first K, count all,
        # and link the stored report
        total = max(int(out.get("rejected_count") or 0), len(out["rejected"]))
        out["rejected_count"] = total
        out["rejected"] = out["rejected"][:max_rejected]
        out["rejected_truncated"] = total > len(out["rejected"])
        if total:
            out["rejected_href"] = f"/datasets/{info.ref}/rejected"
    return out


def _parse_options(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"options must be a JSON object, e.g. {OPTIONS_EXAMPLE}; got invalid JSON ({exc.msg})"
        ) from None
    if value is None:  # JSON null: no options, as an absent field
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"options must be a JSON object, got {type(value).__name__}")
    return value


@router.post(
    "",
    status_code=201,
    summary="Upload and ingest a dataset",
    responses={
        201: {
            "description": "Stored; rows that could not be used are listed in `rejected`.",
            "content": {
                "application/json": {
                    "example": {
                        "id": "firms",
                        "name": "firms",
                        "kind": "firms",
                        "version": 1,
                        "rows": 998,
                        "rejected": [
                            {"row": 17, "column": "lat", "reason": "latitude 123.0 outside ±90"}
                        ],
                        "crs": "EPSG:4326",
                        "bbox": [-117.1, 14.5, -86.7, 32.7],
                    }
                }
            },
        },
        400: {"description": "Unusable file (empty, corrupt, unsafe zip); nothing stored"},
        413: {"description": "File over GEOCLUSTER_MAX_UPLOAD_MB"},
        415: {"description": "Unsupported format"},
        422: {"description": "Missing columns or invalid options"},
    },
)
def upload_dataset(
    request: Request,
    kind: Annotated[
        str,
        Form(
            description="firms | assets | boundaries | indicators | institutions",
            examples=["firms"],
        ),
    ],
    file: Annotated[
        UploadFile,
        File(
            description="CSV/TSV, XLSX, GeoJSON, GPKG, zipped Shapefile, GeoParquet, FlatGeobuf or OSM PBF"
        ),
    ],
    name: Annotated[
        str | None,
        Form(description="dataset name (default: file name); an existing name gets a new version"),
    ] = None,
    options: Annotated[
        str | None,
        Form(description=OPTIONS_DESCRIPTION, examples=[OPTIONS_EXAMPLE]),
    ] = None,
    settings: Settings = Depends(get_settings),
    ws=Depends(get_workspace),
    principal: Principal = Depends(require("editor")),
) -> dict[str, Any]:
    """Stream the file to disk, ingest it and return the dataset with its rejection report."""
    check_content_length(request, settings)
    opts = _parse_options(options) or {}
    # The server's limit, never the client's: it also caps what a zip may expand to.
    opts["max_bytes"] = int(settings.upload.max_upload_mb * 1024 * 1024)
    target_name = name or PurePath(file.filename or "").stem
    if target_name:
        _check_new_version_allowed(ws, principal, target_name)
    with saved_upload(file, settings) as path:
        info = ws.ingest(kind, path, name=name or None, options=opts)
    owner = _owner_of(ws, info.id)
    if owner is None and principal.kind != "open":
        # the first version makes its uploader the owner; later ones keep that owner
        ws.catalog.update("gc_datasets", {"owner": principal.id}, id=info.id)
    else:
        ws.catalog.update("gc_datasets", {"owner": owner}, id=info.id, version=info.version)
    record(request, "dataset.upload", info.ref, {"kind": kind, "rows": info.rows})
    out = _public(info, max_rejected=settings.upload.rejected_in_response)
    from api.pyramid import schedule_pyramids

    # the version is complete: pre-build its tile pyramids as background jobs (tiles
    # are encoded on demand until they land); listed so a client can follow them
    tile_jobs = schedule_pyramids(request.app, [info.ref])
    if tile_jobs:
        out["tile_jobs"] = tile_jobs
    return out


def _owner_of(ws, dataset_id: str) -> str | None:
    owners = [r["owner"] for r in ws.catalog.select("gc_datasets", id=dataset_id) if r["owner"]]
    return owners[0] if owners else None


def _check_new_version_allowed(ws, principal: Principal, name: str) -> None:
    """Only the owner (or an admin) adds versions to an existing dataset."""
    from geocluster.workspace import slugify

    try:
        dataset_id = slugify(name)
    except InvalidInput:
        return  # ingest gives the reason
    rows = ws.catalog.select("gc_datasets", id=dataset_id)
    if not rows or principal.at_least("admin"):
        return
    owner = _owner_of(ws, dataset_id)
    if owner is not None and owner == principal.id:
        return
    if can_see_dataset(principal, ws.dataset(dataset_id)):
        raise HTTPException(403, detail=f"dataset {dataset_id!r} belongs to another user")
    # a private dataset of someone else: as if the name were free is not possible
    # without overwriting it, so refuse without saying whose it is
    raise Conflict(f"the name {name!r} is taken; choose another name")


@router.get("", summary="List datasets (latest versions) the caller may see")
def list_datasets(
    ws=Depends(get_workspace), principal: Principal = Depends(get_principal)
) -> dict[str, Any]:
    return {
        "datasets": [
            _public(d, with_rejected=False) for d in ws.datasets() if can_see_dataset(principal, d)
        ]
    }


@router.get("/{dataset_id}", summary="One dataset (`id` or `id@version`)")
def get_dataset(
    dataset_id: str,
    request: Request,
    ws=Depends(get_workspace),
    principal: Principal = Depends(get_principal),
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    out = _public(
        visible_dataset(ws, principal, dataset_id),
        max_rejected=settings.upload.rejected_in_response,
    )
    out["versions"] = [v.version for v in ws.versions(out["id"])]
    return out


@router.get(
    "/{dataset_id}/rejected",
    summary="The rejection report of a dataset version (JSON or CSV)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def rejected_report(
    dataset_id: str,
    request: Request,
    f: Annotated[Literal["json", "csv"], Query(description="output format")] = "json",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    offset: Annotated[int, Query(ge=0)] = 0,
    ws=Depends(get_workspace),
    principal: Principal = Depends(get_principal),
) -> Response:
    """Rows the ingest could not use (``row``, ``column``, ``reason``), as stored.

    The catalog keeps the first 10 000 of each version; ``rejected_count`` counts all.
    """
    info = visible_dataset(ws, principal, dataset_id)
    rows = info.rejected[offset : offset + limit]
    if f == "csv":
        import pandas as pd

        from geocluster.io import csv_safe

        frame = pd.DataFrame(rows, columns=["row", "column", "reason"])
        return Response(
            csv_safe(frame).to_csv(index=False),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{info.id}-rejected.csv"'},
        )
    body = {
        "dataset": info.ref,
        "rejected_count": int(info.rejected_count or len(info.rejected)),
        "stored": len(info.rejected),
        "numberReturned": len(rows),
        "rejected": rows,
    }
    return Response(json.dumps(body, default=str), media_type="application/json")


class VisibilityPatch(BaseModel):
    """``PATCH /datasets/{id}``: who may see the dataset (every version)."""

    model_config = ConfigDict(extra="forbid")

    visibility: Literal["private", "public"]


def _check_owner_or_admin(ws, principal: Principal, dataset_id: str, action: str):
    info = visible_dataset(ws, principal, dataset_id)
    if principal.at_least("admin"):
        return info
    owner = _owner_of(ws, info.id)
    if owner is None or owner != principal.id:
        raise HTTPException(403, detail=f"only the dataset's owner or an admin may {action} it")
    return info


@router.patch("/{dataset_id}", summary="Change a dataset's visibility (private or public)")
def patch_dataset(
    dataset_id: str,
    body: VisibilityPatch,
    request: Request,
    ws=Depends(get_workspace),
    principal: Principal = Depends(require("editor")),
) -> dict[str, Any]:
    info = _check_owner_or_admin(ws, principal, dataset_id, "change")
    ws.catalog.update("gc_datasets", {"visibility": body.visibility}, id=info.id)
    record(request, "dataset.visibility", info.id, {"from": info.visibility, "to": body.visibility})
    return _public(ws.dataset(info.id), with_rejected=False)


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset (or one `id@version`)")
def delete_dataset(
    dataset_id: str,
    request: Request,
    ws=Depends(get_workspace),
    principal: Principal = Depends(require("editor")),
) -> Response:
    info = _check_owner_or_admin(ws, principal, dataset_id, "delete")
    ws.delete(dataset_id)
    record(request, "dataset.delete", dataset_id, {"kind": info.kind})
    return Response(status_code=204)
