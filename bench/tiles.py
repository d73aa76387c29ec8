"""Benchmark: firm vector tiles and ``/items?bbox`` pages under concurrent clients.

Usage::

    python bench/tiles.py [--firms 1000000] [--clients 8] [--seconds 8] [--seed 0]

Steps:

1. Draw ``--firms`` synthetic demo-like firms (``geocluster.demo.firms.generate_firms``:
   the demo's cluster towns and background cities of Mexico) and store them in a
   temporary workspace (``Workspace.add_dataset``; ingestion has its own benchmark).
2. Start ``geocluster serve`` on 127.0.0.1 in a subprocess (one uvicorn worker).
3. Warm up: the first tile request builds the in-memory tile index (timed, reported).
4. For each scenario (tiles at z6, z10, z14, then ``/items?bbox`` pages of 100), run
   ``--clients`` threads, each with its own keep-alive HTTP client, for ``--seconds``
   seconds. Requests go to tiles / boxes around randomly drawn firms, so they follow
   where the data is, as a map viewer's would. Every response must be 200.
5. Print p50 / p95 / p99 latency (ms), requests per second and payload sizes.

Target (issue 6): p95 < 50 ms for tiles.
"""

from __future__ import annotations

import argparse
import math
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
        "lon": raw["lon"].to_numpy(),
        "lat": raw["lat"].to_numpy(),
        "generate_s": t1 - t0,
        "store_s": t2 - t1,
    }


def run_scenario(base: str, paths: list[str], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[list[float]] = [[] for _ in range(clients)]
    sizes: list[list[int]] = [[] for _ in range(clients)]
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        rng = np.random.default_rng(1000 + i)
        with httpx.Client(base_url=base, timeout=30.0) as client:
            while time.monotonic() < deadline:
                path = paths[int(rng.integers(len(paths)))]
                t0 = time.perf_counter()
                r = client.get(path)
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {path}")
                    continue
                latencies[i].append(dt * 1000.0)
                sizes[i].append(len(r.content))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.concatenate([np.asarray(v) for v in latencies]) if any(latencies) else np.array([])
    size = np.concatenate([np.asarray(v) for v in sizes]) if any(sizes) else np.array([])
    return {
        "requests": int(len(lat)),
        "failures": failures,
        "rps": len(lat) / wall if wall else 0.0,
        "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p95": float(np.percentile(lat, 95)) if len(lat) else float("nan"),
        "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "mean_kb": float(size.mean() / 1024) if len(size) else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firms", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0, help="per scenario")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paths", type=int, default=2000, help="distinct requests per scenario")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="geocluster-bench-tiles-") as tmp:
        ws_dir = Path(tmp) / "ws"
        print(f"building a workspace with {args.firms:,} synthetic firms ...", flush=True)
        data = build_workspace(ws_dir, args.firms, args.seed)
        print(
            f"  generated in {data['generate_s']:.1f} s, stored in {data['store_s']:.1f} s",
            flush=True,
        )

        port = _free_port()
        exe = REPO / ".venv" / "bin" / "geocluster"
        cmd = (
            [str(exe)]
            if exe.exists()
            else [
                sys.executable,
                "-c",
                "import sys; from geocluster.cli import main; sys.exit(main())",
            ]
        )
        # measure the index build on the first request, not in the background
        env = {**os.environ, "PYTHONPATH": str(REPO), "GEOCLUSTER_TILE_WARM_ON_START": "0"}
        proc = subprocess.Popen(
            [*cmd, "serve", "--workspace", str(ws_dir), "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.2)

            t0 = time.perf_counter()
            r = httpx.get(f"{base}/collections/firms/tiles/WebMercatorQuad/0/0/0", timeout=300)
            assert r.status_code == 200, r.text
            print(
                f"cold start (read {args.firms:,} firms, build the tile index): {time.perf_counter() - t0:.2f} s"
            )

            rng = np.random.default_rng(args.seed)
            pick = rng.integers(0, len(data["lon"]), args.paths)
            lon, lat = data["lon"][pick], data["lat"][pick]
            scenarios: dict[str, list[str]] = {}
            for z in (6, 10, 14):
                x, y = _tile(lon, lat, z)
                scenarios[f"tiles z{z}"] = [
                    f"/collections/firms/tiles/WebMercatorQuad/{z}/{a}/{b}" for a, b in zip(x, y)
                ]
            half = 0.02  # about 2 km boxes around a firm: a city-block view
            scenarios["items bbox (limit 100)"] = [
                f"/collections/firms/items?bbox={a - half:.5f},{b - half:.5f},{a + half:.5f},{b + half:.5f}&limit=100"
                for a, b in zip(lon[:500], lat[:500])
            ]
            print(
                f"\n{args.clients} concurrent clients, {args.seconds:g} s per scenario, "
                f"{os.cpu_count()} CPU(s) on this machine\n"
            )
            print(
                f"{'scenario':26} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'KB':>7}"
            )
            ok = True
            for name, paths in scenarios.items():
                res = run_scenario(base, paths, args.clients, args.seconds)
                print(
                    f"{name:26} {res['requests']:>9,} {res['rps']:>8.0f} {res['p50']:>8.1f} "
                    f"{res['p95']:>8.1f} {res['p99']:>8.1f} {res['mean_kb']:>7.1f}"
                )
                if res["failures"]:
                    ok = False
                    print(f"  {len(res['failures'])} failed requests, e.g. {res['failures'][:3]}")
                if name.startswith("tiles") and not res["p95"] < 50:
                    print("  above the target p95 < 50 ms")
            print("\ntarget: tiles p95 < 50 ms")
            return 0 if ok else 1
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
