"""``GET /me``: the caller's role, so that the map shows only what the caller may run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["service"])

#: What each role may do from the map's analysis panel (the server checks again).
RUNS_ANALYSES = {"admin": True, "editor": True, "viewer": False, "anonymous": False}


async def caller_role(request: Request) -> tuple[str, str]:
    """``(role, auth)`` of the caller: ``auth`` is ``"open"`` or ``"keys"``.

    The security layer's principal (:func:`api.auth.get_principal`); in open single-user
    mode (loopback, no keys) the caller is the admin.
    """
    from api import auth

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
