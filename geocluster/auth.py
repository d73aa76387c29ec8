"""Principals: API keys stored hashed in the catalog, roles, optional OIDC tokens.

A key reads ``gk_<id>_<secret>``: ``id`` (8 hex digits) is public and names the key in
``keys list``, the audit log and ``keys revoke``; ``secret`` (32 random bytes,
URL-safe base64) is shown once and only its SHA-256 is stored. A plain hash is enough
because the secret carries 256 bits of entropy (there is no dictionary to try, unlike a
password); comparison is constant-time.

Roles are ordered ``viewer`` < ``editor`` < ``admin``. A caller with no credentials is
the ``anonymous`` principal (below ``viewer``); in open single-user mode (no keys in the
workspace and a loopback bind) every caller is ``admin``.

Nothing here reads HTTP or settings: :mod:`api.auth` passes the presented text and the
catalog in.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geocluster.errors import GeoclusterError, InvalidInput, NotFound

#: Roles, lowest first.
ROLES = ("viewer", "editor", "admin")
_RANK = {"anonymous": 0, "viewer": 1, "editor": 2, "admin": 3}
KEY_PREFIX = "gk_"
_KEY_RE = re.compile(r"^gk_(?P<id>[0-9a-f]{8})_(?P<secret>[A-Za-z0-9_\-]{20,128})$")
_LOOPBACK_NAMES = {"localhost", "testserver", "ip6-localhost"}


class KeyNotFound(NotFound):
    """``keys revoke`` of an id the workspace does not hold."""


class ServeRefused(GeoclusterError):
    """``serve`` on a non-loopback address of a workspace without keys."""


@dataclass(frozen=True)
class Principal:
    """Who is calling.

    Attributes
    ----------
    id : str
        ``key:<id>`` for an API key, ``oidc:<sub>`` for a token, ``open`` in open mode,
        ``anonymous`` without credentials.
    role : str
        ``anonymous``, ``viewer``, ``editor`` or ``admin``.
    kind : str
        ``key``, ``oidc``, ``open`` or ``anonymous``.
    """

    id: str
    role: str
    kind: str

    def at_least(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or higher."""
        return _RANK[self.role] >= _RANK[role]

    @property
    def sees_microdata(self) -> bool:
        """Editors and admins see firm microdata (of datasets they may see)."""
        return self.at_least("editor")


ANONYMOUS = Principal("anonymous", "anonymous", "anonymous")
OPEN = Principal("open", "admin", "open")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise InvalidInput."""
    if role not in ROLES:
        raise InvalidInput(f"expected a role in {', '.join(ROLES)}, got {role!r}")
    return role


# -- keys ---------------------------------------------------------------------------------
def create_key(catalog, role: str, name: str | None = None, *, by: str = "cli") -> tuple[str, str]:
    """Create an API key; return ``(key_id, key)`` where ``key`` is shown only now.

    Parameters
    ----------
    catalog : geocluster.store.catalog.Catalog
    role : {"viewer", "editor", "admin"}
    name : str, optional
        A label for people (who holds the key).
    by : str
        Who creates it, for the audit log.
    """
    check_role(role)
    if name is not None and len(name) > 200:
        raise InvalidInput(f"key name must be at most 200 characters, got {len(name)}")
    for _ in range(10):  # 2^32 ids: a collision is rare, but retry rather than fail
        key_id = secrets.token_hex(4)
        if not catalog.select("gc_keys", id=key_id):
            break
    secret = secrets.token_urlsafe(32)
    catalog.insert(
        "gc_keys",
        {"id": key_id, "name": name, "role": role, "hash": _hash(secret), "created": _now()},
    )
    audit(catalog, by, "key.create", key_id, {"role": role, "name": name})
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}"


def list_keys(catalog) -> list[dict[str, Any]]:
    """Every key (revoked ones too) without its hash: id, name, role, created, revoked."""
    return [{k: v for k, v in row.items() if k != "hash"} for row in catalog.select("gc_keys")]


def revoke_key(catalog, key_id: str, *, by: str = "cli") -> None:
    """Revoke a key by its public id (the row stays, for the audit log)."""
    key_id = str(key_id).removeprefix(KEY_PREFIX).split("_")[0]
    rows = catalog.select("gc_keys", id=key_id)
    if not rows:
        raise KeyNotFound(f"no key {key_id!r} in this workspace")
    if rows[0]["revoked"] is None:
        catalog.update("gc_keys", {"revoked": _now()}, id=key_id)
        audit(catalog, by, "key.revoke", key_id)


def has_keys(catalog) -> bool:
    """Whether any key (even a revoked one) exists: then the workspace is not open."""
    return bool(catalog.select("gc_keys"))


def authenticate(catalog, presented: str | None) -> Principal | None:
    """The principal of a presented key, or None if it is malformed, unknown or revoked."""
    if not presented:
        return None
    match = _KEY_RE.match(presented.strip())
    if not match:
        return None
    rows = catalog.select("gc_keys", id=match["id"])
    if not rows:
        return None
    row = rows[0]
    if not hmac.compare_digest(row["hash"], _hash(match["secret"])) or row["revoked"]:
        return None
    return Principal(f"key:{row['id']}", row["role"], "key")


def looks_like_key(presented: str) -> bool:
    """Whether ``presented`` has the shape of a geocluster key (else it may be a JWT)."""
    return presented.strip().startswith(KEY_PREFIX)


# -- audit ------------------------------------------------------------------------------
def audit(
    catalog,
    principal: str | None,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry (who, what, on what, when) to the catalog's audit log."""
    catalog.insert(
        "gc_audit",
        {
            "ts": _now(),
            "principal": principal,
            "action": action,
            "target": target,
            "detail": detail or {},
        },
    )


def read_audit(catalog, *, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    rows = catalog.select("gc_audit")
    rows.reverse()
    return rows[offset : offset + limit]


# -- OIDC ---------------------------------------------------------------------------------
@dataclass
class OIDCVerifier:
    """Validate JWTs against a JWKS (RS256/ES256) and map a claim to a role.

    Parameters
    ----------
    jwks_url : str, optional
        Where the signing keys are (fetched and cached by :class:`jwt.PyJWKClient`).
    issuer, audience : str
        Required ``iss`` and ``aud``.
    role_claim : str
        Claim holding the role (a string, or a list: the highest known role wins).
    jwks : dict, optional
        A JWKS document to use instead of fetching ``jwks_url`` (offline deployments).
    leeway_s : float
        Clock skew allowed on ``exp``/``nbf``.
    """

    jwks_url: str | None
    issuer: str
    audience: str
    role_claim: str = "role"
    jwks: dict | None = None
    leeway_s: float = 30.0

    def __post_init__(self) -> None:
        import jwt

        if self.jwks is not None:
            self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(self.jwks).keys}
            self._client = None
        elif self.jwks_url:
            self._keys = None
            self._client = jwt.PyJWKClient(self.jwks_url, cache_keys=True, timeout=5)
        else:
            raise InvalidInput("OIDC needs a JWKS URL or a JWKS document")

    def _signing_key(self, token: str):
        import jwt

        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        if kid in self._keys:
            return self._keys[kid].key
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values())).key
        raise jwt.InvalidTokenError("unknown signing key")

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid token, or None (expired, wrong issuer/audience, …)."""
        import jwt

        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, ValueError, KeyError):
            return None
        role = _role_of(claims.get(self.role_claim))
        if role is None:
            return None
        return Principal(f"oidc:{claims['sub']}", role, "oidc")


def _role_of(value: Any) -> str | None:
    values = value if isinstance(value, list) else [value]
    known = [v for v in values if isinstance(v, str) and v in ROLES]
    return max(known, key=_RANK.__getitem__) if known else None


# -- open mode ----------------------------------------------------------------------------
def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or name, optionally ``host:port``) is this machine only.

    ``testserver`` (Starlette's TestClient) counts as loopback.
    """
    if not host:
        return False
    text = host.strip().lower()
    if text.startswith("["):  # [::1]:8000
        text = text[1:].split("]")[0]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    if text in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def open_mode(host: str | None, catalog) -> bool:
    """Open single-user mode: no keys in the workspace and a loopback bind."""
    return is_loopback(host) and not has_keys(catalog)


def check_serve_allowed(host: str, catalog) -> None:
    """Refuse to serve a workspace without keys on a non-loopback address.

    Raises
    ------
    ServeRefused
        With a one-line reason (the CLI prints it and exits 2).
    """
    if not is_loopback(host) and not has_keys(catalog):
        raise ServeRefused(
            f"refusing to serve on {host} with no API keys: create one with "
            "'geocluster keys create --role admin' or bind to 127.0.0.1"
        )


__all__ = [
    "ANONYMOUS",
    "audit",
    "read_audit",
    "OPEN",
    "ROLES",
    "KeyNotFound",
    "OIDCVerifier",
    "Principal",
    "ServeRefused",
    "authenticate",
    "check_role",
    "check_serve_allowed",
    "create_key",
    "has_keys",
    "is_loopback",
    "list_keys",
    "open_mode",
    "revoke_key",
]
