"""``/runs`` (persisted analysis runs), ``DELETE /rasters/{id}`` and ``/jobs`` (background jobs)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import can_see_run, get_principal, visible_run
from api.deps import get_workspace

router = APIRouter(tags=["runs"])


def _run_dict(run, request: Request, ws=None) -> dict[str, Any]:
    out = run.to_dict()
    base = str(request.base_url).rstrip("/")
    out["links"] = [
        {"rel": "items", "href": f"{base}/collections/{cid}/items", "title": cid}
        for cid in out.get("collections", [])
    ]
    if ws is not None:
        tile_jobs = _tile_jobs(ws, set(out.get("collections", [])))
        if tile_jobs:
            out["tile_jobs"] = tile_jobs
    return out


def _tile_jobs(ws, collections: set[str]) -> list[dict[str, Any]]:
    """The pyramid jobs of these collections (newest last), as the job page shows them."""
    from api.jobs import job_dict

    out = []
    for row in ws.catalog.select("gc_jobs", kind="pyramid"):
        params = row.get("params") or {}
        if params.get("collection") in collections:
            job = job_dict(row)
            out.append({**job, "collection": params["collection"],
                        "audience": params.get("audience"), "href": f"/jobs/{row['id']}"})  # fmt: skip
    return out


@router.get("/runs", summary="Analysis runs, newest last")
def list_runs(
    request: Request,
    kind: Annotated[str | None, Query(description="only runs of this kind, e.g. clusters")] = None,
    ws=Depends(get_workspace),
    principal=Depends(get_principal),
) -> dict[str, Any]:
    runs = [r for r in ws.runs(kind) if can_see_run(ws, principal, r)]
    return {"runs": [_run_dict(r, request) for r in runs]}


@router.get("/runs/{run_id}", summary="One analysis run")
def get_run(
    run_id: str, request: Request, ws=Depends(get_workspace), principal=Depends(get_principal)
) -> dict[str, Any]:
    return _run_dict(visible_run(ws, principal, run_id), request, ws)


@router.delete("/runs/{run_id}", status_code=204, summary="Delete an analysis run")
def delete_run(run_id: str, ws=Depends(get_workspace)) -> Response:
    """Delete the run and its layers (its collections disappear); unknown id -> 404."""
    ws.delete_run(run_id)
    return Response(status_code=204)


@router.delete("/rasters/{raster_id}", status_code=204, tags=["rasters"], summary="Delete a raster")
def delete_raster(raster_id: str, ws=Depends(get_workspace)) -> Response:
    """Unregister the raster and delete its COG; unknown id -> 404."""
    ws.delete_raster(raster_id)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}",
    name="get_job",
    summary="State of a background job",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "id": "3f2c",
                        "state": "running",
                        "progress": 0.4,
                        "message": "clustering",
                    }
                }
            }
        }
    },
)
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """``state`` is queued, running, done (with ``result``) or failed (with ``error``)."""
    return request.app.state.jobs.get(job_id)
