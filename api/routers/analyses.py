"""``POST /analyses/<name>``: one route generated per registered :class:`AnalysisSpec`.

The request body is the spec's ``Params`` plus ``"async"``; the response is the spec's
:class:`~geocluster.analyses.result.Result` passed through
:func:`geocluster.disclosure.apply` (by the kinds its layers declare) and serialised once.
With ``"async": true`` the call runs as a background job: 202 ``{"job_id", "status_url",
"state"}``, then ``GET /jobs/{id}``. A spec with extra formats (``inequality``: PNG
charts) also takes ``?format=``.
"""

# no `from __future__ import annotations`: the generated endpoints carry real types
import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field

from api.deps import get_workspace
from geocluster import disclosure
from geocluster.analyses import spec as registry
from geocluster.analyses.spec import AnalysisSpec
from geocluster.errors import InvalidInput

_ASYNC = {
    202: {
        "description": "Accepted as a background job (`async: true`)",
        "content": {
            "application/json": {
                "example": {
                    "job_id": "3f2c…",
                    "status_url": "http://127.0.0.1:8000/jobs/3f2c…",
                    "state": "queued",
                }
            }
        },
    }
}


def principal_of(request: Request) -> Any | None:
    """The caller, as the authentication layer left it (None: open single-user mode)."""
    return getattr(request.state, "principal", None)


def disclosed_body(request: Request, result: Any, ws: Any = None) -> dict[str, Any]:
    """``result`` through the disclosure seam for this caller, as the JSON body.

    Below editor, a result with cluster outlines gets its run's per-firm labels, from
    which :func:`geocluster.disclosure.apply` draws outlines as unions of safe grid
    cells (without them the outlines are dropped).
    """
    policy = request.app.state.policy
    principal = principal_of(request)
    firms = None
    if ws is not None and principal is not None and not principal.sees_microdata:
        firms = _cluster_firms(ws, result)
    return disclosure.apply(result, principal, policy, firms=firms).to_body()


def _cluster_firms(ws: Any, result: Any) -> Any | None:
    """The ``labels`` (firm points with ``cluster_id``) behind a result's cluster outlines."""
    import geopandas as gpd

    from geocluster.errors import NotFound

    wants = any(
        layer.kind == "cluster_summary" and isinstance(layer.frame, gpd.GeoDataFrame)
        for layer in result.layers.values()
    )
    if not wants or result.run_id is None:
        return None
    try:
        run = ws.run(result.run_id)
        if run.kind != "clusters":  # a ranking of a clusters run
            source = (run.params or {}).get("clusters_run")
            if not source:
                return None
            run = ws.run(str(source))
        if run.kind != "clusters" or "labels" not in run.layers:
            return None
        return ws.read_run(run.id, "labels", crs=None)
    except NotFound:
        return None


def _visibility(request: Request, ws: Any) -> tuple[Any, Any]:
    """The caller's rules for default inputs (None, None: sees everything)."""
    from api.auth import can_see_dataset, can_see_run

    principal = principal_of(request)
    if principal is None or principal.at_least("admin"):
        return None, None
    return (
        lambda info: can_see_dataset(principal, info),
        lambda run: can_see_run(ws, principal, run),
    )


def run_spec(
    request: Request, ws: Any, spec: AnalysisSpec, params: Any, *, run_async: bool = False
) -> Any:
    """Run ``spec`` now (the disclosed JSON body), or as a job (a 202 response).

    Default inputs are chosen among those the caller may see
    (:func:`geocluster.analyses._inputs.visible_to`).
    """
    from geocluster.analyses._inputs import visible_to

    datasets, runs = _visibility(request, ws)

    def call(progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
        with visible_to(datasets, runs):  # set here: a job runs in another thread
            result = spec.run(ws, params, progress or (lambda fraction, message: None))
        body = disclosed_body(request, result, ws)
        run_id = getattr(result, "run_id", None)
        if run_id is not None:  # a complete run: pre-build its layers' tiles meanwhile
            from api.pyramid import schedule_pyramids

            schedule_pyramids(request.app, ws.run(run_id).collection_ids())
        return body

    if run_async:
        job = request.app.state.jobs.submit(spec.name, call)
        status_url = str(request.url_for("get_job", job_id=job.id))
        return JSONResponse(
            {"job_id": job.id, "status_url": status_url, "state": job.state},
            status_code=202,
            headers={"Location": status_url},
        )
    return call()


def request_model(spec: AnalysisSpec) -> type:
    """The body model of ``spec``'s route: its ``Params`` plus ``async``."""
    camel = "".join(part.capitalize() for part in spec.name.split("_"))
    namespace = {
        "__module__": __name__,
        "__doc__": spec.summary,
        "__annotations__": {"async_": bool},
        "async_": Field(False, alias="async", description="run as a background job: 202 + id"),
        # strict: no coercion of the body ("async": 0 is not a boolean)
        "model_config": ConfigDict(
            strict=True, json_schema_extra={"examples": list(spec.examples)}
        ),
    }
    return type(f"{camel}Request", (spec.params,), namespace)


def _endpoint(spec: AnalysisSpec) -> Callable[..., Any]:
    model = request_model(spec)
    formats = ("json", *spec.formats)

    def endpoint(request: Request, body: Any, ws: Any, format: str = "json", **options) -> Any:
        values = body.model_dump(exclude={"async_"})
        params = spec.params.model_validate(values)
        if format == "json":
            return run_spec(request, ws, spec, params, run_async=body.async_)
        if body.async_:
            raise InvalidInput(
                f"format={format} cannot be combined with async; fetch the job result as JSON"
            )
        options = {k: v for k, v in options.items() if v is not None}
        content, media_type = spec.formats[format](run_spec(request, ws, spec, params), options)
        return Response(content, media_type=media_type)

    examples = {f"example {i + 1}": {"value": ex} for i, ex in enumerate(spec.examples)}
    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter(
            "body",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[model, Body(openapi_examples=examples or None)],
        ),
        inspect.Parameter(
            "ws", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=Depends(get_workspace)
        ),
    ]
    if len(formats) > 1:
        parameters.append(
            inspect.Parameter(
                "format",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=Annotated[
                    Literal[formats],  # type: ignore[valid-type]
                    Query(description="json, or another format (see the description)"),
                ],
                default="json",
            )
        )
        for option, choices in spec.format_options.items():
            parameters.append(
                inspect.Parameter(
                    option,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=Annotated[
                        Literal[choices] | None,  # type: ignore[valid-type]
                        Query(description=f"{option} for format={'|'.join(spec.formats)}"),
                    ],
                    default=None,
                )
            )
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = f"analysis_{spec.name}"
    endpoint.__doc__ = spec.description
    return endpoint


def _responses(spec: AnalysisSpec) -> Mapping[int | str, Any]:
    if not spec.formats:
        return _ASYNC
    media = {"application/json": {}, **{f"image/{f}": {} for f in spec.formats}}
    return {**_ASYNC, 200: {"content": media}}


class SpecRouter(APIRouter):
    """An ``APIRouter`` whose routes follow :data:`geocluster.analyses.spec.REGISTRY`.

    ``include_router`` reads ``routes``; reading them adds the route of every spec
    registered since (a toy analysis registered in a test appears on the next app) and
    drops those of specs unregistered.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._spec_routes: dict[str, tuple[AnalysisSpec, list[Any]]] = {}
        self._syncing = False
        super().__init__(**kwargs)

    @property
    def routes(self) -> list[Any]:  # type: ignore[override]
        """The router's routes, one per registered analysis."""
        if not self._syncing:
            self._syncing = True
            try:
                self._sync()
            finally:
                self._syncing = False
        return self._routes

    @routes.setter
    def routes(self, value: list[Any]) -> None:
        self._routes = value

    def _sync(self) -> None:
        current = {s.name: s for s in registry.specs()}
        for name, (spec, routes) in list(self._spec_routes.items()):
            if current.get(name) is not spec:
                self._routes[:] = [r for r in self._routes if r not in routes]
                del self._spec_routes[name]
        for name, spec in current.items():
            if name in self._spec_routes:
                continue
            before = len(self._routes)
            self.add_api_route(
                f"/{name}",
                _endpoint(spec),
                methods=["POST"],
                summary=spec.summary,
                description=spec.description,
                responses=_responses(spec),
                name=f"analysis_{name}",
            )
            self._spec_routes[name] = (spec, self._routes[before:])


router = SpecRouter(prefix="/analyses", tags=["analyses"])
