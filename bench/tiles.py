"""Benchmark: firm vector tiles and ``/items?bbox`` pages under concurrent clients.

Usage::

    python bench/tiles.py [--firms 1000000] [--clients 8,32] [--workers N] [--seconds 8]
                          [--store postgresql://…|throwaway] [--tile-cache-mb MB]

Steps:

1. Draw ``--firms`` synthetic demo-like firms (``geocluster.demo.firms.generate_firms``:
   the demo's cluster towns and background cities of Mexico) and store them in a
   temporary workspace (``Workspace.add_dataset``; ingestion has its own benchmark).
2. Pre-build the PMTiles pyramid of the layer at z0..``--pyramid-max-zoom``
   (``api.pyramid.build_pyramid``, timed) into the workspace's ``tiles/`` folder, where
   the server finds it.
3. Start the API with ``--workers`` uvicorn workers (``api.server.serve``, what
   ``geocluster serve --workers`` runs) on 127.0.0.1 in a subprocess, and the PMTiles
   baseline: the same archive served by a minimal stdlib HTTP server reading it by byte
   range (``pmtiles.reader`` over ``mmap``), in another subprocess.
4. Warm up: the first z14 tile request builds a worker's in-memory tile index, the
   first ``/items?bbox`` page its envelope index (both timed).
5. For each client count and scenario (tiles at z6, z10, z14, ``/items?bbox`` pages of
   100; then the same tiles from the baseline, at the zooms the archive holds), run
   the clients (threads, spread over ``--client-procs`` processes so the clients' own
   CPU is not one GIL) for ``--seconds``, each with its own keep-alive connection. Requests go to tiles / boxes
   around randomly drawn firms, so they follow where the data is, as a map viewer's
   would. Every response must be 200.
6. Print p50 / p95 / p99 latency (ms), tiles (requests) per second and payload sizes,
   with the targets of issue 16 beside them.

With ``--store`` (a PostgreSQL + PostGIS URL, or ``throwaway`` to start a throw-away
cluster as bench/e2e.py does), the same firms (and Mexico's 32 states) are also stored
in a PostGIS workspace and, in the same run:

7. the cost of cutting one tile is timed in this process on both paths, with no cache
   in front: the embedded in-memory index (``api.routers.tiles.render_tile``, after its
   build, which is timed) and the database (``api.pgtiles.render``, ``ST_AsMVT``), per
   zoom and audience (``open``: an editor; ``viewer``: the disclosure-safe cells), for
   firm points and for state polygons: p50 / p95 ms and which path is faster;
8. a second API server on the PostGIS workspace with ``GEOCLUSTER_TILE_POSTGIS=always``
   gets the same tile scenarios (``postgis tiles zN``) beside the embedded server's.
   The embedded server answers z <= ``--pyramid-max-zoom`` from its PMTiles archive; the
   database path never reads archives. Both servers keep their in-process LRU of
   encoded tiles unless ``--tile-cache-mb 0``, which measures the cutting paths.

Targets (issue 16, 32 clients, 1M firms, 2 cores): tiles z6/z10/z14 p95 <= 25 ms,
>= 1,500 tiles/s, 0 errors, within 2x of the PMTiles baseline; items bbox p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_P95_MS = 25.0
TARGET_TILES_PER_S = 1500.0
TARGET_ITEMS_P95_MS = 100.0
TARGET_VS_BASELINE = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tile(lon: np.ndarray, lat: np.ndarray, z: int) -> tuple[np.ndarray, np.ndarray]:
    n = 1 << z
    x = np.floor((lon + 180.0) / 360.0 * n).astype(int)
    lat_r = np.deg2rad(lat)
    y = np.floor((1 - np.log(np.tan(lat_r) + 1 / np.cos(lat_r)) / math.pi) / 2 * n).astype(int)
    return np.clip(x, 0, n - 1), np.clip(y, 0, n - 1)


def build_workspace(path: Path, n: int, seed: int) -> dict:
    import geopandas as gpd

    from geocluster.demo.firms import generate_firms
    from geocluster.workspace import Workspace

    t0 = time.perf_counter()
    raw = generate_firms(n, seed=seed)
    frame = gpd.GeoDataFrame(
        {
            "firm_id": raw["firm_id"].astype(str),
            "name": raw["name"],
            "sector_code": raw["isic"].astype(str),
            "employees": raw["employees"].astype(float),
        },
        geometry=gpd.points_from_xy(raw["lon"], raw["lat"]),
        crs="EPSG:4326",
    )
    t1 = time.perf_counter()
    Workspace(path).add_dataset("firms", frame, name="firms")
    t2 = time.perf_counter()
    return {
        "frame": frame,
        "lon": raw["lon"].to_numpy(),
        "lat": raw["lat"].to_numpy(),
        "generate_s": t1 - t0,
        "store_s": t2 - t1,
    }


def _client_proc(port: int, paths: list[str], threads: int, seconds: float, seed: int, out) -> None:
    """Run ``threads`` keep-alive clients for ``seconds``; send the results to ``out``."""
    latencies: list[float] = []
    sizes: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        rng = np.random.default_rng(seed * 1000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat, size, bad = [], [], []
        while time.monotonic() < deadline:
            path = paths[int(rng.integers(len(paths)))]
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                bad.append(f"{type(exc).__name__} {path}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            dt = time.perf_counter() - t0
            if resp.status != 200:
                bad.append(f"{resp.status} {path}")
                continue
            lat.append(dt * 1000.0)
            size.append(len(body))
        conn.close()
        with lock:
            latencies.extend(lat)
            sizes.extend(size)
            failures.extend(bad)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.send((latencies, sizes, failures))
    out.close()


def run_scenario(port: int, paths: list[str], clients: int, seconds: float, procs: int = 2) -> dict:
    """``clients`` concurrent keep-alive clients over ``procs`` processes for ``seconds``."""
    ctx = multiprocessing.get_context("fork")
    procs = max(1, min(procs, clients))
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    pipes, workers = [], []
    t0 = time.perf_counter()
    for i, n in enumerate(shares):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client_proc, args=(port, paths, n, seconds, i, send))
        p.start()
        send.close()
        pipes.append(recv)
        workers.append(p)
    lat: list[float] = []
    size: list[int] = []
    failures: list[str] = []
    for recv in pipes:
        a, b, c = recv.recv()
        lat += a
        size += b
        failures += c
    for p in workers:
        p.join()
    wall = time.perf_counter() - t0
    lat_a = np.asarray(lat)
    return {
        "requests": int(len(lat_a)),
        "failures": failures,
        "rps": len(lat_a) / wall if wall else 0.0,
        "p50": float(np.percentile(lat_a, 50)) if len(lat_a) else float("nan"),
        "p95": float(np.percentile(lat_a, 95)) if len(lat_a) else float("nan"),
        "p99": float(np.percentile(lat_a, 99)) if len(lat_a) else float("nan"),
        "mean_kb": float(np.mean(size) / 1024) if size else 0.0,
    }


def serve_pmtiles(path: str, port: int) -> None:
    """The baseline: ``GET /{z}/{x}/{y}`` answered from a PMTiles archive by byte range.

    Nothing but a byte-range read of the archive over a read-only ``mmap`` (the
    ``pmtiles`` directory format, directories parsed once as a PMTiles server caches
    them: ``pmtiles.reader.Reader.get`` re-parses them on every call, which at 20k
    tiles costs more than the request) and the standard library's threading HTTP
    server: what a static-file server does for an archive, without FastAPI.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from api.pyramid import Archive

    reader = Archive(path)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the API's clients use
        # headers and body go out as two writes: without TCP_NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every response
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            try:
                z, x, y = (int(v) for v in self.path.strip("/").split("/"))
                body = reader.get(z, x, y) or b""  # None: zoom not in the archive
            except (ValueError, OverflowError):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.mapbox-vector-tile")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _wait_http(port: int, path: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"server on port {port} did not start")
        time.sleep(0.2)


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _verdict(name: str, res: dict, baseline: dict | None) -> str:
    notes = []
    if res["failures"]:
        notes.append(f"{len(res['failures'])} errors")
    if name.startswith("items"):
        if not res["p95"] <= TARGET_ITEMS_P95_MS:
            notes.append(f"p95 > {TARGET_ITEMS_P95_MS:g}")
    elif name.startswith(("tiles", "postgis tiles")):
        if not res["p95"] <= TARGET_P95_MS:
            notes.append(f"p95 > {TARGET_P95_MS:g}")
        if res["rps"] < TARGET_TILES_PER_S:
            notes.append(f"< {TARGET_TILES_PER_S:,.0f}/s")
        if baseline is not None:
            ratio = res["p95"] / baseline["p95"] if baseline["p95"] > 0 else float("inf")
            notes.append(
                f"p95 {ratio:.1f}x baseline" + ("" if ratio <= TARGET_VS_BASELINE else " (> 2x)")
            )
    return ", ".join(notes) if notes else "on target"


# -- the PostGIS path (--store) ---------------------------------------------------------------
class PostGISTarget:
    """Where the PostGIS workspace lives: a given URL (own schema) or a throw-away cluster."""

    def __init__(self, spec: str) -> None:
        import uuid

        self.cluster = None
        if spec == "throwaway":
            sys.path.insert(0, str(REPO / "bench"))
            from e2e import ThrowawayPostgres

            self.cluster = ThrowawayPostgres().start()
            self.cluster.psql("CREATE EXTENSION IF NOT EXISTS postgis")
            base = f"postgresql://postgres@127.0.0.1:{self.cluster.port}/postgres"
        else:
            base = spec
        self.schema = f"bench_tiles_{uuid.uuid4().hex[:8]}"
        # other libpq parameters (sslmode, ...) stay; the schema is the bench's own
        url, _, query = base.partition("?")
        kept = [q for q in query.split("&") if q and not q.startswith("schema=")]
        self.url = f"{url}?{'&'.join([*kept, f'schema={self.schema}'])}"

    def close(self, ws=None) -> None:
        try:
            if ws is not None:
                ws.store.drop_schema()
        finally:
            if self.cluster is not None:
                self.cluster.stop()


def build_postgis_workspace(path: Path, url: str, frame) -> dict:
    """The same firms (and the states) in a PostGIS workspace; timed."""
    from geocluster.workspace import Workspace

    t0 = time.perf_counter()
    ws = Workspace(path, store_url=url)
    ws.add_dataset("firms", frame, name="firms")
    return {"ws": ws, "store_s": time.perf_counter() - t0}


def add_states(ws) -> None:
    """Mexico's 32 states (libpysal's example boundaries): the polygon layer of step 7."""
    import geopandas as gpd

    states = gpd.read_file(REPO / "data" / "boundaries" / "mexico_states.gpkg")
    ws.add_dataset("boundaries", states.to_crs("EPSG:4326"), name="states")


def cut_costs(ws_emb, ws_pg, tiles: dict[str, dict[int, list]], reps: int) -> list[dict]:
    """Time cutting tiles on both paths in this process (no LRU, no archive, no HTTP).

    ``tiles``: collection -> zoom -> [(x, y)]. Returns one row per collection, zoom and
    audience with p50 / p95 ms of each path.
    """
    from api import pgtiles
    from api.app import _policy
    from api.routers.tiles import (
        LAYER_NAME,
        audience_policy,
        load_index,
        render_tile,
        tile_options,
    )
    from api.settings import Settings

    settings = Settings(workspace=ws_emb.path)
    base = _policy(settings)
    rows = []
    plans = pgtiles.PlanCache()
    for coll_id, by_zoom in tiles.items():
        for audience in ("open", "viewer"):
            policy = audience_policy(base, "open" if audience == "open" else "safe")
            ce, cp = ws_emb.collection(coll_id), ws_pg.collection(coll_id)
            t0 = time.perf_counter()
            index = load_index(ws_emb, ce, policy)
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            pg_index = load_index(ws_pg, cp, policy)  # what a worker of a PostGIS store builds
            build_pg_s = time.perf_counter() - t0
            del pg_index
            plan = plans.get(ws_pg, cp, policy, audience)
            kind = getattr(index, "disclosure_kind", "other")
            for z, xy in by_zoom.items():
                opts = tile_options(settings, policy, kind, z)
                emb_ms, pg_ms = [], []
                for x, y in xy[:reps]:
                    t0 = time.perf_counter()
                    render_tile(index, z, x, y, opts, policy)
                    emb_ms.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    pgtiles.render(ws_pg, plan, z, x, y, opts, policy, LAYER_NAME)
                    pg_ms.append((time.perf_counter() - t0) * 1000)
                rows.append(
                    {
                        "collection": coll_id,
                        "audience": audience,
                        "z": z,
                        "index_s": build_s,
                        "index_pg_s": build_pg_s,
                        "emb_p50": float(np.percentile(emb_ms, 50)),
                        "emb_p95": float(np.percentile(emb_ms, 95)),
                        "pg_p50": float(np.percentile(pg_ms, 50)),
                        "pg_p95": float(np.percentile(pg_ms, 95)),
                    }
                )
    return rows


def print_cut_costs(rows: list[dict]) -> None:
    print(
        "\ncutting one tile, single thread, no cache (embedded index vs PostGIS ST_AsMVT)\n"
        f"{'collection':10} {'audience':8} {'z':>3} {'mem p50':>8} {'mem p95':>8} "
        f"{'pg p50':>8} {'pg p95':>8}  faster"
    )
    for r in rows:
        faster = "postgis" if r["pg_p95"] < r["emb_p95"] else "embedded"
        print(
            f"{r['collection']:10} {r['audience']:8} {r['z']:>3} {r['emb_p50']:>8.2f} "
            f"{r['emb_p95']:>8.2f} {r['pg_p50']:>8.2f} {r['pg_p95']:>8.2f}  {faster}"
        )
    seen = set()
    for r in rows:
        key = (r["collection"], r["audience"])
        if key not in seen:
            seen.add(key)
            print(
                f"  index build {r['collection']} ({r['audience']}): embedded store "
                f"{r['index_s']:.2f} s, from the PostGIS store {r['index_pg_s']:.2f} s "
                "(per worker, once per version; the database path needs none)"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firms", type=int, default=1_000_000)
    ap.add_argument("--clients", default="8,32", help="client counts, comma-separated")
    ap.add_argument("--workers", type=int, default=None, help="uvicorn workers (default: cores)")
    ap.add_argument("--client-procs", type=int, default=2, help="processes running the clients")
    ap.add_argument("--seconds", type=float, default=8.0, help="per scenario")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paths", type=int, default=2000, help="distinct requests per scenario")
    ap.add_argument("--pyramid-max-zoom", type=int, default=10)
    ap.add_argument(
        "--store",
        default=None,
        help="also measure the PostGIS path: a postgresql:// URL (a throw-away schema is "
        "created and dropped in it), or 'throwaway' to start a PostgreSQL here",
    )
    ap.add_argument(
        "--tile-cache-mb",
        type=float,
        default=None,
        help="the servers' in-process tile LRU (default: the server's; 0 measures the paths)",
    )
    ap.add_argument("--cut-tiles", type=int, default=100, help="tiles per zoom in step 7")
    ap.add_argument("--serve-pmtiles", nargs=2, metavar=("ARCHIVE", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_pmtiles:  # the baseline's subprocess
        serve_pmtiles(args.serve_pmtiles[0], int(args.serve_pmtiles[1]))
        return 0

    from api.pyramid import build_pyramid
    from api.server import default_workers
    from api.settings import Settings, TileSettings

    clients_list = [int(c) for c in str(args.clients).split(",") if c.strip()]
    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="geocluster-bench-tiles-") as tmp:
        ws_dir = Path(tmp) / "ws"
        print(f"building a workspace with {args.firms:,} synthetic firms ...", flush=True)
        data = build_workspace(ws_dir, args.firms, args.seed)
        print(
            f"  generated in {data['generate_s']:.1f} s, stored in {data['store_s']:.1f} s",
            flush=True,
        )
        from geocluster.workspace import Workspace

        ws = Workspace(ws_dir)
        settings = Settings(
            workspace=ws_dir, tiles=TileSettings(tile_pyramid_max_zoom=args.pyramid_max_zoom)
        )
        t0 = time.perf_counter()
        built = build_pyramid(ws, "firms", None, (0, args.pyramid_max_zoom), settings=settings)
        archive = built["path"]
        print(
            f"  PMTiles pyramid z0-z{args.pyramid_max_zoom}: {built['tiles']:,} tiles, "
            f"{os.path.getsize(archive) / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        pg_target = None
        if args.store:
            pg_target = PostGISTarget(args.store)
        try:
            return _measure(args, tmp, ws_dir, ws, data, archive, workers, clients_list,
                            pg_target)  # fmt: skip
        finally:
            if pg_target is not None:
                pg_target.close(getattr(pg_target, "ws", None))


def _measure(args, tmp, ws_dir, ws, data, archive, workers, clients_list, pg_target) -> int:
    pg_ws = None
    if pg_target is not None:
        print("storing the same firms in a PostGIS workspace ...", flush=True)
        built_pg = build_postgis_workspace(Path(tmp) / "ws_pg", pg_target.url, data["frame"])
        pg_ws = pg_target.ws = built_pg["ws"]
        print(f"  stored in {built_pg['store_s']:.1f} s ({pg_target.schema})", flush=True)
        add_states(ws)
        add_states(pg_ws)
        rng = np.random.default_rng(args.seed + 1)
        pick = rng.integers(0, len(data["lon"]), args.cut_tiles)
        firm_tiles = {
            z: list(dict.fromkeys(zip(*(a.tolist() for a in _tile(data["lon"][pick],
                                                                   data["lat"][pick], z)))))
            for z in (6, 10, 14)
        }  # fmt: skip
        states = ws.read_collection("states")
        sx, sy = (
            states.geometry.representative_point().x,
            states.geometry.representative_point().y,
        )
        state_tiles = {
            z: list(dict.fromkeys(zip(*(a.tolist() for a in _tile(sx.to_numpy(),
                                                                   sy.to_numpy(), z)))))
            for z in (4, 6, 8, 10)
        }  # fmt: skip
        rows = cut_costs(ws, pg_ws, {"firms": firm_tiles, "states": state_tiles},
                         args.cut_tiles)  # fmt: skip
        print_cut_costs(rows)

    port, base_port = _free_port(), _free_port()
    pg_port = _free_port()
    # measure the index build on the first request, not in the background; the
    # pyramid is already built (the server would otherwise queue it at start-up)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GEOCLUSTER_TILE_WARM_ON_START": "0",
        "GEOCLUSTER_WARM_ON_START": "0",
        "GEOCLUSTER_TILE_PYRAMIDS": "0",
        "GEOCLUSTER_TILE_PYRAMID_MAX_ZOOM": str(args.pyramid_max_zoom),
    }
    if args.tile_cache_mb is not None:
        env["GEOCLUSTER_TILE_CACHE_MB"] = str(args.tile_cache_mb)
    env.pop("GEOCLUSTER_STORE", None)
    launch = (
        "import sys; from api.server import serve, settings_for_serve; "
        "serve(settings_for_serve(sys.argv[1], '127.0.0.1', int(sys.argv[2])), "
        "workers=int(sys.argv[3]), log_level='warning')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, str(ws_dir), str(port), str(workers)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    baseline_proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-pmtiles",
            archive,
            str(base_port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pg_proc = None
    if pg_ws is not None:  # the same server on the PostGIS store, tiles by the database
        pg_env = {**env, "GEOCLUSTER_STORE": pg_target.url, "GEOCLUSTER_TILE_POSTGIS": "always"}
        pg_proc = subprocess.Popen(
            [sys.executable, "-c", launch, str(Path(tmp) / "ws_pg"), str(pg_port),
             str(workers)],
            cwd=REPO, env=pg_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        _wait_http(port, "/health", proc)
        _wait_http(base_port, "/0/0/0", baseline_proc)
        if pg_proc is not None:
            _wait_http(pg_port, "/health", pg_proc)

        rng = np.random.default_rng(args.seed)
        pick = rng.integers(0, len(data["lon"]), args.paths)
        lon, lat = data["lon"][pick], data["lat"][pick]
        zxy: dict[int, list[tuple[int, int]]] = {}
        for z in (6, 10, 14):
            x, y = _tile(lon, lat, z)
            zxy[z] = list(zip(x.tolist(), y.tolist()))
        t0 = time.perf_counter()
        x14, y14 = zxy[14][0]
        status, _ = _get(port, f"/collections/firms/tiles/WebMercatorQuad/14/{x14}/{y14}")
        assert status == 200
        print(
            f"cold start (first z14 tile: reads the firms and builds the tile index "
            f"unless z14 is pre-built; one worker): "
            f"{time.perf_counter() - t0:.2f} s"
        )
        # every worker builds its own index on its first deep tile: warm them all
        t0 = time.perf_counter()
        warm = [f"/collections/firms/tiles/WebMercatorQuad/14/{a}/{b}" for a, b in zxy[14]]
        run_scenario(port, warm, 4 * workers, 1.0, procs=1)
        print(f"warm-up of {workers} worker(s): {time.perf_counter() - t0:.1f} s")

        scenarios: dict[str, tuple[int, list[str]]] = {}
        for z in (6, 10, 14):
            scenarios[f"tiles z{z}"] = (
                port,
                [f"/collections/firms/tiles/WebMercatorQuad/{z}/{a}/{b}" for a, b in zxy[z]],
            )
        if pg_proc is not None:
            t0 = time.perf_counter()
            status, _ = _get(pg_port, f"/collections/firms/tiles/WebMercatorQuad/14/{x14}/{y14}")
            assert status == 200
            print(f"PostGIS server, first z14 tile: {time.perf_counter() - t0:.2f} s")
            for z in (6, 10, 14):
                scenarios[f"postgis tiles z{z}"] = (
                    pg_port,
                    [f"/collections/firms/tiles/WebMercatorQuad/{z}/{a}/{b}" for a, b in zxy[z]],
                )
        half = 0.02  # about 2 km boxes around a firm: a city-block view
        items = [
            f"/collections/firms/items?bbox={a - half:.5f},{b - half:.5f},"
            f"{a + half:.5f},{b + half:.5f}&limit=100"
            for a, b in zip(lon[:500], lat[:500])
        ]
        scenarios["items bbox (limit 100)"] = (port, items)
        # a worker's first box reads the layer's envelopes (its bbox index): time it,
        # then warm every worker, as for the tile index
        t0 = time.perf_counter()
        status, _ = _get(port, items[0])
        assert status == 200
        print(f"first items bbox page (builds one worker's envelope index): "
              f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
        run_scenario(port, items, 4 * workers, 1.0, procs=1)
        for z in (6, 10, 14):
            if z <= args.pyramid_max_zoom:
                scenarios[f"pmtiles baseline z{z}"] = (
                    base_port,
                    [f"/{z}/{a}/{b}" for a, b in zxy[z]],
                )
        print(
            f"\nAPI: {workers} uvicorn worker(s); baseline: stdlib server + pmtiles reader; "
            f"{args.seconds:g} s per scenario, {os.cpu_count()} CPU(s) on this machine"
        )
        ok = True
        for clients in clients_list:
            print(f"\n{clients} concurrent clients")
            print(
                f"{'scenario':24} {'requests':>9} {'tiles/s':>8} {'p50 ms':>8} "
                f"{'p95 ms':>8} {'p99 ms':>8} {'KB':>6}  vs targets"
            )
            results: dict[str, dict] = {}
            for name, (p, paths) in scenarios.items():
                results[name] = run_scenario(
                    p, paths, clients, args.seconds, procs=args.client_procs
                )
            for name, res in results.items():
                z = name.split()[-1]
                base = results.get(f"pmtiles baseline {z}") if name.startswith("tiles") else None
                verdict = _verdict(name, res, base) if not name.startswith("pmtiles") else ""
                if name.startswith("postgis"):
                    emb = results.get(f"tiles {z}")
                    verdict = _verdict(name, res, None) + (
                        f"; p95 {res['p95'] / emb['p95']:.1f}x, tiles/s "
                        f"{res['rps'] / emb['rps']:.2f}x the embedded server"
                        if emb and emb["p95"] > 0 and emb["rps"] > 0
                        else ""
                    )
                print(
                    f"{name:24} {res['requests']:>9,} {res['rps']:>8.0f} {res['p50']:>8.1f} "
                    f"{res['p95']:>8.1f} {res['p99']:>8.1f} {res['mean_kb']:>6.1f}  {verdict}"
                )
                if res["failures"]:
                    ok = False
                    print(f"  e.g. {res['failures'][:3]}")
        print(
            f"\ntargets (issue 16, 32 clients, 1M firms): tiles p95 <= {TARGET_P95_MS:g} ms, "
            f">= {TARGET_TILES_PER_S:,.0f} tiles/s, 0 errors, p95 within "
            f"{TARGET_VS_BASELINE:g}x of the PMTiles baseline; items bbox p95 <= "
            f"{TARGET_ITEMS_P95_MS:g} ms"
        )
        return 0 if ok else 1
    finally:
        _stop(proc)
        _stop(baseline_proc)
        if pg_proc is not None:
            _stop(pg_proc)


if __name__ == "__main__":
    raise SystemExit(main())
