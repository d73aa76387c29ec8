"""Who is calling, what they may see, and the edge's request hygiene.

- :class:`EdgeMiddleware` (pure ASGI) resolves the principal of every request once
  (``X-API-Key`` or ``Authorization: Bearer``: a geocluster key, else an OIDC JWT when
  configured) and answers 401 for bad credentials; caps non-upload bodies (413);
  refuses state-changing requests that a cross-site HTML form could send; applies
  per-principal rate limits with slowapi (429 with ``Retry-After``); requires ``editor`` for ``POST /analyses/*`` and
  records analysis runs in the audit log.
- :func:`get_principal` and :func:`require` are the FastAPI dependencies of routes.
- :func:`can_see_dataset`, :func:`can_see_run`, :func:`visible_collection` decide
  visibility; what a caller may not see is answered exactly like what does not exist
  (404), so ids cannot be enumerated.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from geocluster.auth import (
    ANONYMOUS,
    OPEN,
    OIDCVerifier,
    Principal,
    audit,
    authenticate,
    looks_like_key,
    open_mode,
    read_audit,
)
from geocluster.errors import (
    DatasetNotFound,
    DisclosureError,
    NotFound,
    RasterNotFound,
    RunNotFound,
)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Streamed uploads: their own cap (``UploadLimitMiddleware``), not the JSON one.
UPLOAD_PATHS = ("/datasets", "/rasters")
#: Paths of routes owned elsewhere that need a role (method, prefix, role).
ROLE_RULES = (("POST", "/analyses", "editor"),)
#: Routes owned elsewhere that take datasets or runs by name (query or JSON body).
INPUT_PREFIXES = ("/analyses", "/regions")
_EXEMPT = ("/health", "/static/", "/favicon.ico")


# -- principals ---------------------------------------------------------------------------
def presented_credential(headers) -> str | None:
    """The key or token of ``X-API-Key`` or ``Authorization: Bearer``, if any."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def oidc_verifier(app) -> OIDCVerifier | None:
    """The app's OIDC verifier (built once), or None when OIDC is not configured."""
    if hasattr(app.state, "oidc"):
        return app.state.oidc
    s = app.state.settings.security
    verifier = None
    if s.oidc_issuer and s.oidc_audience and (s.oidc_jwks_url or getattr(app.state, "jwks", None)):
        verifier = OIDCVerifier(
            jwks_url=s.oidc_jwks_url,
            issuer=s.oidc_issuer,
            audience=s.oidc_audience,
            role_claim=s.oidc_role_claim,
            jwks=getattr(app.state, "jwks", None),
        )
    app.state.oidc = verifier
    return verifier


def is_open(app) -> bool:
    """Open single-user mode now (keys may be created while the server runs)."""
    ws = app.state.get_workspace()
    return open_mode(app.state.settings.host, ws.catalog)


def resolve_principal(app, headers) -> Principal | None:
    """The caller; None when credentials were presented but are not valid."""
    presented = presented_credential(headers)
    if presented is None:
        return OPEN if is_open(app) else ANONYMOUS
    ws = app.state.get_workspace()
    if looks_like_key(presented):
        return authenticate(ws.catalog, presented)
    verifier = oidc_verifier(app)
    return verifier.verify(presented) if verifier is not None else None


async def get_principal(request: Request) -> Principal:
    """FastAPI dependency: the principal :class:`EdgeMiddleware` resolved (or resolve now).

    Async so that cached tiles are still answered on the event loop (a sync dependency
    would cost every request a trip through the thread pool).
    """
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = await run_in_threadpool(resolve_principal, request.app, request.headers)
        if principal is None:
            raise _unauthorized("invalid, expired or revoked API key or token")
        request.state.principal = principal
    return principal


def _needs_thread(headers) -> bool:
    presented = presented_credential(headers)
    return presented is not None and not looks_like_key(presented)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def check_role(principal: Principal, role: str) -> None:
    """401 for an anonymous caller, 403 for a role below ``role``."""
    if principal.at_least(role):
        return
    if principal.kind == "anonymous":
        raise _unauthorized(f"this needs an API key with role {role} or higher")
    raise HTTPException(
        403, detail=f"this needs role {role} or higher; the key is {principal.role}"
    )


def require(role: str):
    """Dependency factory: ``Depends(require("editor"))`` returns the principal or refuses."""

    async def dependency(principal: Principal = Depends(get_principal)) -> Principal:
        check_role(principal, role)
        return principal

    return dependency


# -- visibility ---------------------------------------------------------------------------
def can_see_dataset(principal: Principal, info) -> bool:
    """Admins see everything, editors their own and public datasets, others public ones."""
    if principal.at_least("admin"):
        return True
    if info.visibility == "public":
        return True
    return principal.at_least("editor") and info.owner is not None and info.owner == principal.id


def visible_dataset(ws, principal: Principal, dataset_id: str):
    """The dataset if the caller may see it; else the same 404 as an unknown id."""
    info = ws.dataset(dataset_id)
    if not can_see_dataset(principal, info):
        raise DatasetNotFound(f"no dataset {dataset_id!r} in this workspace")
    return info


def can_see_run(ws, principal: Principal, run, _depth: int = 0) -> bool:
    """Admins and the run's owner see it; others if they may see every input it used."""
    if principal.at_least("admin"):
        return True
    owner = getattr(run, "owner", None)
    if owner is None:  # RunInfo does not carry it; the catalog row does
        rows = ws.catalog.select("gc_runs", id=run.id)
        owner = rows[0].get("owner") if rows else None
    if owner is not None and owner == principal.id:
        return True
    if _depth > 4:
        return False
    for ref in getattr(run, "inputs", None) or []:
        try:
            if not can_see_dataset(principal, ws.dataset(ref)):
                return False
            continue
        except NotFound:
            pass
        try:  # an input may be another run
            if not can_see_run(ws, principal, ws.run(str(ref).split(".")[0]), _depth + 1):
                return False
        except NotFound:
            return False  # a deleted input: only its owner or an admin
    return True


def visible_run(ws, principal: Principal, run_id: str):
    """The run if the caller may see it; else the same 404 as an unknown id."""
    run = ws.run(run_id)
    if not can_see_run(ws, principal, run):
        raise RunNotFound(f"no run {run_id!r} in this workspace")
    return run


def can_see_raster(ws, principal: Principal, info) -> bool:
    """Whether ``principal`` may see a raster.

    Admins and the owner see it; others if they may see the data it was made of (a KDE
    surface records its firms dataset in ``meta``).
    """
    if principal.at_least("admin"):
        return True
    if info.owner is not None and info.owner == principal.id:
        return True
    meta = info.meta or {}
    refs = [meta["firms"]] if isinstance(meta.get("firms"), str) else []
    refs += [r for r in meta.get("inputs") or [] if isinstance(r, str)]
    for ref in refs:
        try:
            if not can_see_dataset(principal, ws.dataset(ref)):
                return False
        except NotFound:
            return False
    return True


def visible_raster(ws, principal: Principal, raster_id: str):
    """The raster if the caller may see it; else the same 404 as an unknown id."""
    info = ws.raster(raster_id)
    if not can_see_raster(ws, principal, info):
        raise RasterNotFound(f"no raster {raster_id!r} in this workspace")
    return info


def hidden_reference(ws, principal: Principal, values) -> str | None:
    """The first of ``values`` naming a dataset or run the caller may not see, or None.

    Routes owned elsewhere (analyses, regions) take inputs by name; a name the caller
    may not see must fail as if it did not exist.
    """
    if principal.at_least("admin"):
        return None
    for value in values:
        if not isinstance(value, str) or not value or len(value) > 200:
            continue
        try:
            if not can_see_dataset(principal, ws.dataset(value)):
                return value
            continue
        except NotFound:
            pass
        run_id = value.split(".")[0]
        if ws.catalog.select("gc_runs", id=run_id):
            if not can_see_run(ws, principal, ws.run(run_id)):
                return value
    return None


def _strings(obj, depth: int = 0):
    """String values of a JSON document (keys excluded), a few levels deep."""
    if isinstance(obj, str):
        yield obj
    elif depth < 3 and isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v, depth + 1)
    elif depth < 3 and isinstance(obj, list):
        for v in obj[:1000]:
            if isinstance(v, str | dict | list):
                yield from _strings(v, depth + 1)


def can_see_collection(ws, principal: Principal, coll) -> bool:
    """A dataset collection by the dataset's visibility, a run layer by its run's."""
    if principal.at_least("admin"):
        return True
    if coll.run_id:
        return can_see_run(ws, principal, ws.run(coll.run_id))
    return can_see_dataset(principal, ws.dataset(coll.id))


def check_collection(ws, principal: Principal, coll) -> None:
    """404 (as for an unknown id) when the caller may not see the collection."""
    if not can_see_collection(ws, principal, coll):
        raise NotFound(f"no collection {coll.id!r}: not a dataset or run in this workspace")


def is_microdata(coll, columns) -> bool:
    """Firm registers and per-firm run layers (labels): identifiable firms."""
    return str(coll.kind) == "firms" or (str(coll.kind).startswith("run:") and "firm_id" in columns)


def check_microdata(principal: Principal, coll, columns) -> None:
    """Below editor, firm microdata leave only as aggregated tiles (403 otherwise)."""
    if not principal.sees_microdata and is_microdata(coll, columns):
        raise DisclosureError(
            f"collection {coll.id!r} holds firm microdata, which need an editor key; "
            "its tiles show firms as counts in grid cells"
        )


# -- rate limits --------------------------------------------------------------------------
class RateLimits:
    """Per-principal rate limits on slowapi's limiter (the ``limits`` library).

    Two moving windows per key: ``burst`` requests in any second and
    ``rate_per_minute`` in any minute. A moving window has no edge at which twice the
    rate gets through (as fixed windows do). The key is the principal's id
    (``key:<id>``, ``oidc:<sub>``), or ``ip:<address>`` for anonymous callers and
    bad credentials. ``storage_uri`` is slowapi's: ``memory://`` per process, or a
    shared ``redis://`` / ``memcached://`` store for several workers.
    """

    def __init__(self, rate_per_minute: int, burst: int, storage_uri: str = "memory://") -> None:
        from limits import parse
        from slowapi import Limiter

        self.limiter = Limiter(
            key_func=lambda request: "",  # the key is the principal's, given to take()
            strategy="moving-window",
            storage_uri=storage_uri,
            key_prefix="geocluster",
        )
        self.items = (parse(f"{int(burst)}/second"), parse(f"{int(rate_per_minute)}/minute"))

    def take(self, key: str) -> tuple[float, str]:
        """Spend one request of ``key``.

        Returns ``(0, "")`` if allowed, else the seconds until the full window frees a
        slot and that limit (``"60 per 1 minute"``).
        """
        backend = self.limiter.limiter
        for item in self.items:
            if not backend.test(item, key):
                reset = backend.get_window_stats(item, key).reset_time
                return max(0.001, reset - time.time()), str(item)
        for item in self.items:
            backend.hit(item, key)
        return 0.0, ""


def _too_many(wait_s: float, limit: str, who: str) -> tuple[str, dict[str, str]]:
    """The one-line reason and ``Retry-After`` of a 429."""
    retry = max(1, int(wait_s + 0.999))
    return (
        f"too many requests: rate limit of {limit} for {who} reached; retry after {retry} s",
        {"Retry-After": str(retry)},
    )


# -- the middleware -----------------------------------------------------------------------
class BodyTooLarge(Exception):
    """A streamed request body went over the JSON cap."""


class EdgeMiddleware:
    """Principal, body cap, cross-site form refusal, role rules, rate limit, audit."""

    def __init__(self, app, *, fastapi_app) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        s = fastapi_app.state.settings.security
        self.max_body = int(s.max_json_mb * 1024 * 1024)
        self.limits = RateLimits(
            s.rate_limit_per_minute, s.rate_limit_burst, s.rate_limit_storage_uri
        )
        # who started each background job (jobs may live in memory, not the catalog)
        fastapi_app.state.job_owners = OrderedDict()

    async def __call__(self, scope, receive, send):
        """Authenticate, cap, rate-limit and audit one request."""
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        method = scope["method"]
        path = scope["path"]
        state = scope.setdefault("state", {})

        is_upload = method == "POST" and path in UPLOAD_PATHS
        declared = headers.get("content-length")
        if not is_upload and declared and declared.isdigit() and int(declared) > self.max_body:
            await _reply(scope, receive, send, 413, self._too_large())
            return

        app = self.fastapi_app
        if _needs_thread(headers):  # an OIDC token may fetch the JWKS
            principal = await run_in_threadpool(resolve_principal, app, headers)
        else:  # no credential or a key: one indexed SQLite read, cheaper than a thread hop
            principal = resolve_principal(app, headers)
        if principal is None:
            client = scope.get("client") or ("unknown", 0)
            wait, limit = self.limits.take(f"ip:{client[0]}")  # guessing keys is limited too
            if wait > 0:
                await _reply(scope, receive, send, 429, *_too_many(wait, limit, "this client"))
                return
            await _reply(
                scope,
                receive,
                send,
                401,
                "invalid, expired or revoked API key or token",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        state["principal"] = principal

        if method in STATE_CHANGING:
            refusal = self._cross_site(principal, headers)
            if refusal is not None:
                await _reply(scope, receive, send, *refusal)
                return
        for rule_method, prefix, role in ROLE_RULES:
            if method == rule_method and path.startswith(prefix) and not principal.at_least(role):
                if principal.kind == "anonymous":
                    detail = f"this needs an API key with role {role} or higher"
                    await _reply(scope, receive, send, 401, detail, {"WWW-Authenticate": "Bearer"})
                else:
                    detail = f"this needs role {role} or higher; the key is {principal.role}"
                    await _reply(scope, receive, send, 403, detail)
                return

        if principal.kind != "open":  # one local user is not rate limited
            client = scope.get("client") or ("unknown", 0)
            key = principal.id if principal.kind in ("key", "oidc") else f"ip:{client[0]}"
            wait, limit = self.limits.take(key)
            if wait > 0:
                who = (
                    "this API key"
                    if principal.kind == "key"
                    else ("this token" if principal.kind == "oidc" else "this client")
                )
                await _reply(scope, receive, send, 429, *_too_many(wait, limit, who))
                return

        checks_inputs = path.startswith(INPUT_PREFIXES) and not principal.at_least("admin")
        if checks_inputs or path.startswith("/jobs/"):
            refusal, receive = await self._check_references(scope, receive, principal, path)
            if refusal is not None:
                await _reply(scope, receive, send, 404, refusal)
                return

        status: list[int] = []
        tripped = False
        received = 0
        limit = None if is_upload else self.max_body

        async def limited_receive():
            nonlocal received, tripped
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise BodyTooLarge()
            return message

        is_analysis = method == "POST" and path.startswith("/analyses")
        body = bytearray()
        replaced = False

        async def watching_send(message):
            nonlocal replaced
            if tripped:  # FastAPI turned the aborted body read into a 400: answer 413
                if not replaced and message["type"] == "http.response.start":
                    replaced = True
                    status.append(413)
                    await _reply(scope, receive, send, 413, self._too_large())
                return
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif is_analysis and message["type"] == "http.response.body":
                if len(body) < _OWNER_SCAN_BYTES:  # enough to find the run id
                    body.extend(message.get("body", b"")[: _OWNER_SCAN_BYTES - len(body)])
            await send(message)

        try:
            await self.app(scope, limited_receive, watching_send)
        except BodyTooLarge:
            if not status:
                await _reply(scope, receive, send, 413, self._too_large())
            return
        except Exception:
            if tripped and not status:
                await _reply(scope, receive, send, 413, self._too_large())
                return
            raise
        if is_analysis and status and status[0] < 400:
            await run_in_threadpool(_after_analysis, app, principal, path, status[0], bytes(body))

    async def _check_references(self, scope, receive, principal: Principal, path: str):
        """404 reason if the request names a dataset, run or job the caller may not see.

        Returns the reason (or None) and the ``receive`` to go on with (the body,
        read here to look at it, is replayed).
        """
        app = self.fastapi_app
        if path.startswith("/jobs/"):
            job_id = path.split("/")[2]
            owner = app.state.job_owners.get(job_id)
            if owner is not None and owner != principal.id and not principal.at_least("admin"):
                return f"no job {job_id!r}", receive
            return None, receive
        from urllib.parse import parse_qsl

        values = [v for _, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))]
        if scope["method"] in STATE_CHANGING:
            chunks, more = [], True
            size = 0
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.max_body:
                    return None, _replay(b"".join(chunks), receive, more=True)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            receive = _replay(body, receive)
            try:
                document = json.loads(body) if body else None
            except (ValueError, UnicodeDecodeError):
                document = None  # the route answers 422 for a body that is not JSON
            values.extend(_strings(document))
        ws = app.state.get_workspace()
        hidden = await run_in_threadpool(hidden_reference, ws, principal, values)
        if hidden is not None:
            return f"no dataset {hidden!r} in this workspace", receive
        return None, receive

    def _too_large(self) -> str:
        mb = self.max_body / (1024 * 1024)
        return f"request body over the limit of {mb:g} MB (GEOCLUSTER_MAX_JSON_MB)"

    @staticmethod
    def _cross_site(principal: Principal, headers) -> tuple[int, str] | None:
        """Why a state-changing request is refused, or None.

        A cross-site HTML form can POST multipart or urlencoded bodies without a CORS
        preflight, but it cannot set ``X-API-Key``/``Authorization`` or a JSON
        content type. With keys, such a request is refused outright; in open mode
        (the local map uploads with a form) only a same-origin one passes.
        """
        if presented_credential(headers) is not None:
            return None
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if principal.kind != "open":
            if ctype == "application/json":
                return None  # and then the route's role check answers 401
            return (401, "state-changing requests need an X-API-Key or Authorization header")
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return (403, "cross-site request refused")
        origin = headers.get("origin")
        if origin and origin != "null":
            host = headers.get("host", "")
            if origin.split("://", 1)[-1].rstrip("/") != host:
                return (403, "cross-site request refused")
        elif origin == "null" and ctype != "application/json":
            return (403, "cross-site request refused")
        return None


def _replay(body: bytes, receive, *, more: bool = False):
    """A ``receive`` that hands ``body`` out again, then goes on with the real one."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()  # the rest of the body, or http.disconnect

    return replay


async def _reply(scope, receive, send, status: int, detail: str, headers=None) -> None:
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(
        scope, receive, send
    )


_OWNER_SCAN_BYTES = 1 << 16
_RUN_ID_RE = re.compile(rb'"(run_id|job_id)"\s*:\s*"([A-Za-z0-9_.\-]{1,100})"')


def _after_analysis(app, principal: Principal, path: str, status: int, head: bytes) -> None:
    """Audit an analysis request and make its caller the owner of the run it made."""
    ws = app.state.get_workspace()
    match = _RUN_ID_RE.search(head)
    target = match[2].decode() if match else None
    if match and match[1] == b"job_id" and principal.kind != "open":
        job_owners = app.state.job_owners
        job_owners[target] = principal.id
        while len(job_owners) > 10_000:
            job_owners.popitem(last=False)
    if match and match[1] == b"run_id" and principal.kind != "open":
        rows = ws.catalog.select("gc_runs", id=target)
        if rows and rows[0].get("owner") is None:
            ws.catalog.update("gc_runs", {"owner": principal.id}, id=target)
    audit(ws.catalog, principal.id, "analysis.run", path, {"status": status, "id": target})


# -- the audit log ------------------------------------------------------------------------
audit_router = APIRouter(tags=["service"])


@audit_router.get("/audit", summary="The audit log (admins)")
def get_audit(
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    ws = request.app.state.get_workspace()
    entries = read_audit(ws.catalog, limit=limit, offset=offset)
    return {"entries": json.loads(json.dumps(entries, default=str))}


def record(request: Request, action: str, target: str | None, detail: dict | None = None) -> None:
    """Audit one action of the request's principal."""
    principal = getattr(request.state, "principal", None) or ANONYMOUS
    audit(request.app.state.get_workspace().catalog, principal.id, action, target, detail)


__all__ = [
    "EdgeMiddleware",
    "RateLimits",
    "audit_router",
    "can_see_collection",
    "can_see_dataset",
    "can_see_raster",
    "can_see_run",
    "hidden_reference",
    "check_collection",
    "check_microdata",
    "check_role",
    "get_principal",
    "is_open",
    "record",
    "require",
    "visible_dataset",
    "visible_raster",
    "visible_run",
]
