"""Domain errors -> HTTP status codes, at the edge only (as titiler does).

Every error body is ``{"detail": "<what was expected and what came>"}``. Request
validation failures are 422 with a one-line string; anything unexpected is a 500 with
``{"detail": "internal error"}`` and the traceback only in the server log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse

from geocluster import errors as ge

logger = logging.getLogger("geocluster.api")


class TileOutsideBounds(ge.NotFound):
    """The requested tile lies outside the data or the tile matrix."""


class UploadTooLarge(ge.FileTooLarge):
    """An upload went over ``max_upload_mb`` while streaming."""


# Most specific first: the first matching class wins (MRO order is checked below).
DEFAULT_STATUS_CODES: dict[type[BaseException], int] = {
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


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def add_exception_handlers(app: FastAPI) -> None:
    """Register the domain, validation and catch-all handlers on ``app``."""
    for exc_cls in DEFAULT_STATUS_CODES:
        app.add_exception_handler(exc_cls, _domain_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
