"""Domain errors -> HTTP status codes, at the edge only (as titiler does).

Every error body is ``{"detail": "<what was expected and what came>"}``, and the OpenAPI
document says so (:func:`document_errors`, :func:`error_responses`). Request validation
failures are 422 with a one-line string; anything unexpected is a 500 with
``{"detail": "internal error"}`` and the traceback only in the server log, answered by
:class:`InternalErrorMiddleware` so that the client's keep-alive connection survives.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from api.jobs import TooManyJobs
from geocluster import errors as ge

logger = logging.getLogger("geocluster.api")


class TileOutsideBounds(ge.NotFound):
    """The requested tile lies outside the data or the tile matrix."""


class UploadTooLarge(ge.FileTooLarge):
    """An upload went over ``max_upload_mb`` while streaming."""


# Most specific first: the first matching class wins (MRO order is checked below).
DEFAULT_STATUS_CODES: dict[type[BaseException], int] = {
    TooManyJobs: 429,
    ge.FileTooLarge: 413,
    ge.UnsupportedFormat: 415,
    ge.MissingColumns: 422,
    ge.UnsafeArchive: 400,
    ge.UnusableFile: 400,
    ge.CRSError: 422,
    ge.WrongKind: 422,
    ge.InvalidInput: 422,
    ge.NotFound: 404,
    ge.Conflict: 409,
    ge.DisclosureError: 403,
    ge.GeoclusterError: 400,
}

try:  # rio-tiler raises its own errors for tiles outside a raster
    from rio_tiler.errors import TileOutsideBounds as _RioTileOutsideBounds

    DEFAULT_STATUS_CODES[_RioTileOutsideBounds] = 404
except ImportError:  # pragma: no cover - rio-tiler is a dependency
    pass


def status_code_for(exc: BaseException) -> int:
    """Return the HTTP status code of a domain exception (nearest class in its MRO)."""
    for cls in type(exc).__mro__:
        if cls in DEFAULT_STATUS_CODES:
            return DEFAULT_STATUS_CODES[cls]
    return 500


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _message(exc)}, status_code=status_code_for(exc))


def _format_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body" or len(err["loc"]) == 1)
        msg = err.get("msg", "invalid value")
        got = err.get("input")
        text = f"{loc}: {msg}" if loc else msg
        if got is not None and not isinstance(got, dict | list | bytes) and len(str(got)) < 80:
            text += f" (got {got!r})"
        parts.append(text)
    return "; ".join(parts) or "invalid request"


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _format_validation(exc)}, status_code=422)


#: JSON schema of every error body
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "what was expected, what came"}},
    "required": ["detail"],
}

_DESCRIPTIONS = {
    400: "Unparsable body, or unusable file (empty, corrupt, unsafe archive, ...)",
    403: "Refused by the disclosure policy",
    404: "Unknown dataset, run, collection, feature, raster, region or job",
    409: "Conflicts with the workspace's state",
    413: "Upload larger than the server's limit",
    415: "Unsupported file format",
    422: "Invalid parameters or body",
}


_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting error statuses with the shared error body."""
    return {
        code: {
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {"application/json": {"schema": dict(_ERROR_REF)}},
        }
        for code in codes
    }


def _depends_on(dependant, func) -> bool:
    return any(d.call is func or _depends_on(d, func) for d in dependant.dependencies)


def _document(schema: dict[str, Any], workspace_ops: set[tuple[str, str]]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    # FastAPI documents 422 as its list of validation errors; the body is one string here
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            params = op.get("parameters", [])
            takes_input = bool(params) or "requestBody" in op
            # an id in the path names a resource that may not exist; so does an id in the
            # query or body of an operation that looks things up in the workspace
            in_path = any(p.get("in") == "path" for p in params)
            wanted = [422] if takes_input else []
            if in_path or (takes_input and (path, method) in workspace_ops):
                wanted.append(404)
            content = op.get("requestBody", {}).get("content", {})
            if content:  # a body that does not parse (FastAPI's 400)
                wanted.append(400)
            if "multipart/form-data" in content:  # an upload: too large, unknown format
                wanted += [413, 415]
            if "422" in responses:
                responses["422"] = error_responses(422)[422]
            for code, doc in error_responses(*wanted).items():
                responses.setdefault(str(code), doc)
            for code, doc in responses.items():
                if code.startswith("4") and "content" not in doc:  # declared without a body
                    doc["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document describe the errors the operations answer.

    Every error is ``{"detail": str}`` (the ``Error`` schema), 422 included (FastAPI's
    default documents a list of validation errors). Operations that take parameters or a
    body document 422; those with an id in the path, or that look their inputs up in the
    workspace (they depend on :func:`api.deps.get_workspace`), document 404; those with a
    body 400 (it does not parse; an unusable file); uploads (multipart) 413 and 415. Codes a route declares are kept, with
    the error body added when they have none.
    """
    from fastapi.routing import iter_route_contexts

    from api.deps import get_workspace

    workspace_ops: set[tuple[str, str]] = set()
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute) and _depends_on(route.dependant, get_workspace):
            workspace_ops |= {(ctx.path_format, m.lower()) for m in ctx.methods or ()}
    generate = app.openapi
    documented: list[int] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if id(schema) not in documented:  # FastAPI caches the document; patch it once
            _document(schema, workspace_ops)
            documented.append(id(schema))
        return schema

    app.openapi = openapi


class InternalErrorMiddleware:
    """Answer an unexpected exception with a 500 here instead of re-raising it.

    Starlette's catch-all handler sends the 500 and then re-raises, and uvicorn closes the
    connection of any request whose app raised: every 500 dropped the client's keep-alive
    connection. An error after the response started cannot be answered: re-raised.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        """Answer unexpected errors as 500 without dropping the connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def _send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = JSONResponse({"detail": "internal error"}, status_code=500)
            await response(scope, receive, send)


async def _http_handler(request: Request, exc: StarletteHTTPException):
    if exc.status_code == 405:
        # Starlette names only the first route matching the path; one path has one route
        # per method here, so list the methods of all of them
        from fastapi.routing import iter_route_contexts

        methods: set[str] = set()
        probe = {**request.scope, "method": "\0"}  # no route has it: any path match is PARTIAL
        for ctx in iter_route_contexts(request.app.routes):
            route_methods = ctx.methods
            if route_methods and ctx.matches(probe)[0] is not Match.NONE:
                methods |= set(route_methods)
        if methods:
            exc = StarletteHTTPException(
                405, detail=exc.detail, headers={"Allow": ", ".join(sorted(methods))}
            )
    return await http_exception_handler(request, exc)


def add_exception_handlers(app: FastAPI) -> None:
    """Register the domain, validation, HTTP and unexpected-error handling on ``app``."""
    for exc_cls in DEFAULT_STATUS_CODES:
        app.add_exception_handler(exc_cls, _domain_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_middleware(InternalErrorMiddleware)
