"""``/datasets``: upload (multipart, streamed), list, get, delete."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from api.deps import get_settings, get_workspace
from api.settings import Settings
from api.uploads import check_content_length, saved_upload
from geocluster.errors import InvalidInput
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


def _public(info, *, with_rejected: bool = True) -> dict[str, Any]:
    out = info.to_dict()
    if not with_rejected:
        out.pop("rejected", None)
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
) -> dict[str, Any]:
    """Stream the file to disk, ingest it and return the dataset with its rejection report."""
    check_content_length(request, settings)
    opts = _parse_options(options) or {}
    # The server's limit, never the client's: it also caps what a zip may expand to.
    opts["max_bytes"] = int(settings.upload.max_upload_mb * 1024 * 1024)
    with saved_upload(file, settings) as path:
        info = ws.ingest(kind, path, name=name or None, options=opts)
    return _public(info)


@router.get("", summary="List datasets (latest versions)")
def list_datasets(ws=Depends(get_workspace)) -> dict[str, Any]:
    return {"datasets": [_public(d, with_rejected=False) for d in ws.datasets()]}


@router.get("/{dataset_id}", summary="One dataset (`id` or `id@version`)")
def get_dataset(dataset_id: str, ws=Depends(get_workspace)) -> dict[str, Any]:
    out = _public(ws.dataset(dataset_id))
    out["versions"] = [v.version for v in ws.versions(out["id"])]
    return out


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset (or one `id@version`)")
def delete_dataset(dataset_id: str, ws=Depends(get_workspace)) -> Response:
    ws.delete(dataset_id)
    return Response(status_code=204)
