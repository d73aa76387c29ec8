"""The hostile corpus (``tests/security/corpus.py``) through the reader and through HTTP.

Every file must be refused with a domain error (a 4xx over HTTP) or, if benign, read;
nothing may reach the network (a local listener counts connections), and no response,
message or stored byte may hold the secret file's marker, a line of ``/etc/passwd`` or
a server temp path. Positive controls prove the corpus bites: the same VRTs read by a
plain, unhardened GDAL in a subprocess do read the secret and do call the listener.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geocluster.errors import GeoclusterError
from geocluster.io import read_table
from tests.security.corpus import SECRET_MARKER, build_corpus, build_raster_corpus

ALLOWED_REFUSALS = {400, 413, 415, 422}
MAX_DETAIL_CHARS = 700


class Listener:
    """A TCP server on 127.0.0.1 that counts connections and answers with a CSV."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.0 200 OK\r\nContent-Type: text/csv\r\n\r\n"
                        b"firm_id,name,lon,lat,isic,employees\n"
                        + f"n1,{SECRET_MARKER}-NET,-103.3,20.6,15,1\n".encode()
                    )
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def listener():
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="module")
def corpus(corpus_dir, listener):
    return build_corpus(corpus_dir, port=listener.port)


@pytest.fixture(scope="module")
def raster_corpus(corpus_dir, listener):
    return build_raster_corpus(corpus_dir, port=listener.port)


def _passwd_lines() -> list[str]:
    try:
        text = Path("/etc/passwd").read_text(errors="ignore")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if len(ln) >= 12]


FORBIDDEN = [SECRET_MARKER, "root:x:0:0", *_passwd_lines()]


def _leaks(text: str, *server_paths: Path) -> list[str]:
    found = [f for f in FORBIDDEN if f in text]
    found += [f"path {p}" for p in server_paths if str(p) in text]
    if "geocluster-upload-" in text or "geocluster-zip-" in text:
        found.append("an upload temp directory")
    return found


# ------------------------------------------------------------------ positive controls


def test_listener_counts_connections(listener):
    before = listener.hits
    with urllib.request.urlopen(f"http://127.0.0.1:{listener.port}/probe", timeout=5) as r:
        assert SECRET_MARKER.encode() in r.read()
    assert listener.hits == before + 1
    listener.hits = before  # the corpus runs below must start from the same count


def test_corpus_bites_an_unhardened_gdal(corpus, listener):
    """Plain pyogrio (no geocluster) opens the VRTs: it reads the secret and calls out."""
    by_name = {c.path.name: c.path for c in corpus}
    script = (
        "import sys, pyogrio\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        print(pyogrio.read_dataframe(p).to_csv())\n"
        "    except Exception as e:\n"
        "        print('ERR', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "CPL_"))}
    before = listener.hits
    out = subprocess.run(
        [sys.executable, "-c", script]
        + [str(by_name["vrt_secret.geojson"]), str(by_name["vrt_vsicurl.csv"])],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    ).stdout
    assert SECRET_MARKER in out  # the file read through the VRT
    assert listener.hits > before  # the /vsicurl/ request reached the listener
    listener.hits = before


# ------------------------------------------------------------------ the reader


def test_corpus_size(corpus):
    assert len(corpus) >= 60
    assert {c.expect for c in corpus} == {"refuse", "accept", "either"}


def test_read_table_on_every_corpus_file(corpus, corpus_dir, listener):
    hits = listener.hits
    problems = []
    for case in corpus:
        try:
            raw = read_table(case.path, max_bytes=200 * 1024 * 1024)
        except GeoclusterError as exc:
            message = str(exc)
            if case.expect == "accept":
                problems.append(f"{case.id}: refused a benign file: {message}")
            if "\n" in message or len(message) > MAX_DETAIL_CHARS:
                problems.append(f"{case.id}: message not one short line ({len(message)} chars)")
            if leaks := _leaks(message, corpus_dir):
                problems.append(f"{case.id}: message leaks {leaks}")
        except Exception as exc:  # noqa: BLE001 - exactly what must not happen
            problems.append(f"{case.id}: {type(exc).__name__} escaped: {str(exc)[:200]}")
        else:
            if case.expect == "refuse":
                problems.append(f"{case.id}: read {len(raw.frame)} rows of a hostile file")
            body = raw.frame.to_csv() + " ".join(raw.notes) + str(raw.crs)
            if leaks := _leaks(body, corpus_dir):
                problems.append(f"{case.id}: content leaks {leaks}")
        if listener.hits != hits:
            problems.append(f"{case.id}: made {listener.hits - hits} network connection(s)")
            hits = listener.hits
    assert not problems, "\n".join(problems)


def test_chunked_ingest_agrees_with_in_memory_on_every_corpus_file(corpus, corpus_dir, tmp_path):
    """The chunked reader (tiny chunks: every boundary case) accepts what the in-memory
    ingest accepts, with the same rows and rejections, and refuses the rest cleanly."""
    from geocluster.io import detect_format
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    problems = []
    checked = 0
    for case in corpus:
        try:
            fmt = detect_format(case.path)
        except GeoclusterError:
            continue
        if fmt not in ("csv", "geoparquet"):
            continue
        checked += 1
        outcomes = []
        for options in ({}, {"chunk_rows": 7}):
            try:
                info = ws.ingest("firms", case.path, name=f"c{checked}", options=options)
                outcomes.append(("stored", info.rows, info.rejected, info.working_crs))
            except GeoclusterError as exc:
                message = str(exc)
                if "\n" in message or len(message) > MAX_DETAIL_CHARS:
                    problems.append(f"{case.id} {options}: message not one short line")
                if leaks := _leaks(message, corpus_dir, ws.path):
                    problems.append(f"{case.id} {options}: message leaks {leaks}")
                outcomes.append(("refused", type(exc).__name__))
            except Exception as exc:  # noqa: BLE001 - exactly what must not happen
                problems.append(f"{case.id} {options}: {type(exc).__name__} escaped: {exc!s:.200}")
                outcomes.append(("crashed",))
        whole, chunked = outcomes
        if whole[0] == "stored" and whole != chunked:
            problems.append(f"{case.id}: in memory {whole[:2]}, in chunks {chunked[:2]}")
        if whole[0] == "refused" and chunked[0] != "refused":
            problems.append(f"{case.id}: refused in memory, {chunked[0]} in chunks")
    assert checked >= 8
    assert not [p for p in (ws.path / "data").iterdir() if p.name.startswith(".tmp-")]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ HTTP


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    """A client on an empty workspace whose uploads stage in a private temp directory."""
    root = tmp_path_factory.mktemp("http")
    staging = root / "tmp"
    staging.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(staging)  # so the test can see every upload temp dir
    try:
        app = create_app(Settings(workspace=root / "ws"))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, root / "ws", staging
    finally:
        tempfile.tempdir = saved


def _post(client, route: str, path: Path, **form):
    return client.post(
        route,
        data=form,
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
    )


def test_every_corpus_file_through_post_datasets(http, corpus, corpus_dir, listener):
    client, ws, staging = http
    hits = listener.hits
    problems = []
    accepted = []
    for case in corpus:
        r = _post(client, "/datasets", case.path, kind="firms", name=f"c{len(accepted)}_{case.id}")
        ok = r.status_code == 201
        if case.expect == "accept" and not ok:
            problems.append(f"{case.id}: benign file got {r.status_code}: {r.text[:300]}")
        if case.expect == "refuse" and r.status_code not in ALLOWED_REFUSALS:
            problems.append(f"{case.id}: expected a 4xx refusal, got {r.status_code}")
        if case.expect == "either" and not ok and r.status_code not in ALLOWED_REFUSALS:
            problems.append(f"{case.id}: got {r.status_code}: {r.text[:300]}")
        if ok:
            accepted.append(r.json()["id"])
        else:
            detail = r.json().get("detail")
            if not isinstance(detail, str) or "\n" in detail or len(detail) > MAX_DETAIL_CHARS:
                problems.append(f"{case.id}: detail is not one short line: {str(detail)[:100]}")
        if leaks := _leaks(r.text, corpus_dir, ws, staging):
            problems.append(f"{case.id}: response leaks {leaks}")
        if listener.hits != hits:
            problems.append(f"{case.id}: made {listener.hits - hits} network connection(s)")
            hits = listener.hits
        if left := sorted(p.name for p in staging.iterdir()):
            problems.append(f"{case.id}: temp files left after the request: {left}")
            for p in staging.iterdir():
                subprocess.run(["rm", "-rf", str(p)], check=False)
    # every benign file was stored, and what was stored holds nothing it should not
    assert len(accepted) >= sum(c.expect == "accept" for c in corpus)
    for dataset_id in accepted:
        for fmt in ("json", "csv"):
            r = client.get(f"/collections/{dataset_id}/items?f={fmt}&limit=1000")
            if r.status_code != 200:
                problems.append(f"{dataset_id}: items f={fmt} got {r.status_code}")
            elif leaks := _leaks(r.text, corpus_dir, ws, staging):
                problems.append(f"{dataset_id}: stored rows leak {leaks}")
    for stored in ws.rglob("*"):
        if stored.is_file():
            data = stored.read_bytes()
            for marker in (SECRET_MARKER, "root:x:0:0"):
                if marker.encode() in data:
                    problems.append(f"workspace file {stored.name} holds {marker!r}")
    assert not problems, "\n".join(problems)


def test_raster_uploads(http, raster_corpus, corpus_dir, listener):
    client, ws, staging = http
    hits = listener.hits
    problems = []
    for case in raster_corpus:
        r = _post(client, "/rasters", case.path, name=f"r_{case.path.stem}")
        if case.expect == "accept" and r.status_code != 201:
            problems.append(f"{case.id}: benign raster got {r.status_code}: {r.text[:300]}")
        if case.expect == "refuse" and r.status_code not in ALLOWED_REFUSALS:
            problems.append(f"{case.id}: expected a 4xx refusal, got {r.status_code}")
        if leaks := _leaks(r.text, corpus_dir, ws, staging):
            problems.append(f"{case.id}: response leaks {leaks}")
        if listener.hits != hits:
            problems.append(f"{case.id}: made {listener.hits - hits} network connection(s)")
            hits = listener.hits
    assert not problems, "\n".join(problems)


def test_formula_cells_are_neutralised_in_csv_downloads(http, corpus):
    client, _, _ = http
    path = next(c.path for c in corpus if c.id == "csv_formulas.csv")
    r = _post(client, "/datasets", path, kind="firms", name="formulas")
    assert r.status_code == 201, r.text
    text = client.get("/collections/formulas/items?f=csv").text
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text)))
    names = sorted(row["name"] for row in rows)
    # OWASP CSV injection: a text cell starting with = + - @ gets a leading quote
    assert names == sorted(
        [
            "'=cmd|' /C calc'!A0",
            "'@SUM(1+1)*cmd|' /C calc'!A0",
            '\'+HYPERLINK("http://127.0.0.1")',
        ]
    )
    assert all(not row["name"].startswith(("=", "+", "-", "@")) for row in rows)
    # numbers stay numbers: negative longitudes are not prefixed
    assert all(float(row["lon"]) < 0 for row in rows)


def test_uploads_leave_no_temp_dir_even_on_error(http, corpus):
    client, _, staging = http
    bad = next(c.path for c in corpus if c.id == "vrt_secret.geojson")
    r = _post(client, "/datasets", bad, kind="firms")
    assert r.status_code == 415
    r = _post(
        client, "/datasets", next(c.path for c in corpus if c.id == "zip_bomb.zip"), kind="firms"
    )
    assert r.status_code == 400
    assert list(staging.iterdir()) == []


def test_sweep_removes_only_stale_upload_dirs(tmp_path):
    from api.uploads import sweep_upload_temps

    stale = tmp_path / "geocluster-upload-old"
    stale.mkdir()
    (stale / "firms.csv").write_text("x")
    fresh = tmp_path / "geocluster-upload-new"
    fresh.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert sweep_upload_temps(tmp_path, older_than_s=3600) == 1
    assert not stale.exists() and fresh.exists() and other.exists()
    assert sweep_upload_temps(tmp_path / "missing") == 0
