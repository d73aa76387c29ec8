"""Principals: hashed API keys, roles, OIDC tokens, open mode and the keys CLI."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from geocluster import auth
from geocluster.cli import main
from geocluster.errors import InvalidInput
from geocluster.store.catalog import Catalog


@pytest.fixture
def catalog(tmp_path):
    return Catalog(tmp_path / "catalog.sqlite")


def test_create_key_stores_only_a_hash(catalog):
    key_id, key = auth.create_key(catalog, "editor", "ana")
    assert key.startswith(f"gk_{key_id}_")
    secret = key.split("_", 2)[2]
    assert len(secret) >= 40  # 32 random bytes, URL-safe base64
    (row,) = catalog.select("gc_keys")
    assert row["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    # neither the key nor the secret is stored anywhere in the catalog file
    wal = catalog.path.parent / "catalog.sqlite-wal"
    raw = catalog.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert secret.encode() not in raw
    assert auth.list_keys(catalog) == [
        {"id": key_id, "name": "ana", "role": "editor", "created": row["created"], "revoked": None}
    ]


def test_authenticate_and_revoke(catalog):
    key_id, key = auth.create_key(catalog, "viewer")
    p = auth.authenticate(catalog, key)
    assert p == auth.Principal(f"key:{key_id}", "viewer", "key")
    assert auth.authenticate(catalog, f"  {key} ") == p  # header whitespace
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert auth.authenticate(catalog, wrong) is None
    assert auth.authenticate(catalog, "gk_00000000_" + "x" * 43) is None  # unknown id
    for junk in (None, "", "x", "gk_", "Bearer x", "gk_zzzzzzzz_" + "a" * 43):
        assert auth.authenticate(catalog, junk) is None
    auth.revoke_key(catalog, key_id)
    assert auth.authenticate(catalog, key) is None
    assert auth.list_keys(catalog)[0]["revoked"] is not None
    with pytest.raises(auth.KeyNotFound):
        auth.revoke_key(catalog, "deadbeef")
    actions = [r["action"] for r in catalog.select("gc_audit")]
    assert actions == ["key.create", "key.revoke"]


def test_roles_are_ordered(catalog):
    with pytest.raises(InvalidInput):
        auth.create_key(catalog, "root")
    viewer, editor, admin = (auth.Principal("k", r, "key") for r in auth.ROLES)
    assert admin.at_least("editor") and editor.at_least("editor") and not viewer.at_least("editor")
    assert not auth.ANONYMOUS.at_least("viewer")
    assert auth.OPEN.at_least("admin")
    assert editor.sees_microdata and not viewer.sees_microdata


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8000", True),
        ("::1", True),
        ("[::1]:8000", True),
        ("localhost", True),
        ("testserver", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_is_loopback(host, loopback):
    assert auth.is_loopback(host) is loopback


def test_open_mode_and_serve_refusal(catalog):
    assert auth.open_mode("127.0.0.1", catalog)
    assert not auth.open_mode("0.0.0.0", catalog)
    with pytest.raises(auth.ServeRefused, match="no API keys"):
        auth.check_serve_allowed("0.0.0.0", catalog)
    auth.check_serve_allowed("127.0.0.1", catalog)
    auth.create_key(catalog, "admin")
    assert not auth.open_mode("127.0.0.1", catalog)  # a key exists: keys mode
    auth.check_serve_allowed("0.0.0.0", catalog)


# -- OIDC -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(private_key, kid="k1") -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


def _token(private_key, *, kid="k1", **claims) -> str:
    now = int(time.time())
    body = {
        "iss": "https://idp.test",
        "aud": "geocluster",
        "sub": "ana",
        "iat": now,
        "exp": now + 300,
        "role": "editor",
    }
    body.update(claims)
    return jwt.encode(body, private_key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def jwks_server(rsa_key):
    """A JWKS served over HTTP on 127.0.0.1 (what PyJWKClient fetches in production)."""
    doc = json.dumps(_jwks(rsa_key)).encode()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(doc)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", hits
    server.shutdown()
    server.server_close()


def test_oidc_over_http_jwks(rsa_key, jwks_server):
    url, hits = jwks_server
    verifier = auth.OIDCVerifier(url, "https://idp.test", "geocluster")
    p = verifier.verify(_token(rsa_key))
    assert p == auth.Principal("oidc:ana", "editor", "oidc")
    assert hits == ["/jwks.json"]


def test_oidc_rejects_bad_tokens(rsa_key):
    verifier = auth.OIDCVerifier(None, "https://idp.test", "geocluster", jwks=_jwks(rsa_key))
    assert verifier.verify(_token(rsa_key, role=["viewer", "admin"])).role == "admin"
    past = int(time.time()) - 3600
    assert verifier.verify(_token(rsa_key, exp=past, iat=past - 60)) is None  # expired
    assert verifier.verify(_token(rsa_key, aud="other")) is None
    assert verifier.verify(_token(rsa_key, iss="https://evil.test")) is None
    assert verifier.verify(_token(rsa_key, role="root")) is None  # no known role
    assert verifier.verify(_token(rsa_key, kid="k2")) is None  # unknown signing key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert verifier.verify(_token(other)) is None  # signed by someone else
    # alg=none and HS256 with the public key as secret are refused
    unsigned = jwt.encode(
        {"iss": "https://idp.test", "aud": "geocluster", "sub": "x", "exp": 2**31, "role": "admin"},
        None,
        algorithm="none",
    )
    assert verifier.verify(unsigned) is None
    assert verifier.verify("not.a.jwt") is None


# -- CLI --------------------------------------------------------------------------------
def test_keys_cli(tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert main(["keys", "list", "--workspace", ws]) == 0
    assert "no keys" in capsys.readouterr().out
    assert main(["keys", "create", "--role", "admin", "--name", "ops", "--workspace", ws]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("gk_") and "shown only now" in out.err
    key_id = key.split("_")[1]
    assert main(["keys", "list", "--workspace", ws, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["id"], k["role"], k["name"]) for k in listed] == [(key_id, "admin", "ops")]
    assert key not in json.dumps(listed)
    assert main(["keys", "revoke", key_id, "--workspace", ws]) == 0
    capsys.readouterr()
    assert main(["keys", "revoke", "00000000", "--workspace", ws]) == 2
    assert "no key" in capsys.readouterr().err


def test_serve_refuses_public_bind_without_keys(tmp_path, capsys):
    code = main(["serve", "--host", "0.0.0.0", "--port", "0", "--workspace", str(tmp_path / "w")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refusing to serve on 0.0.0.0" in err
