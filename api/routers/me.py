"""``GET /me``: the caller's role, so that the map shows only what the caller may run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["service"])

#: What each role may do from the map's analysis panel (the server checks again).
RUNS_ANALYSES = {"admin": True, "editor": True, "viewer": False, "anonymous": False}


async def caller_role(request: Request) -> tuple[str, str]:
    """``(role, auth)`` of the caller: ``auth`` is ``"open"`` or ``"keys"``.

    Uses the security layer's principal (``api.auth.get_principal``) when the app has
    one; without it the service is in open single-user mode, where the caller is admin.
    """
    import importlib
    import importlib.util

    # no security layer: open mode, everyone is the admin. Only a missing module counts:
    # a security layer that fails to import must fail here too, never grant admin.
    if importlib.util.find_spec("api.auth") is None:
        return "admin", "open"
    auth = importlib.import_module("api.auth")
    principal = await auth.get_principal(request)
    return principal.role, "open" if auth.is_open(request.app) else "keys"


@router.get("/me", summary="The caller's role and the server's auth mode")
async def me(request: Request) -> dict[str, Any]:
    """The caller's role.

    Returns ``{"role": "admin"|"editor"|"viewer"|"anonymous", "auth": "open"|"keys",
    "can_run": bool}``.
    """
    role, mode = await caller_role(request)
    return {"role": role, "auth": mode, "can_run": RUNS_ANALYSES.get(role, False)}
