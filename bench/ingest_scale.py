"""Benchmark: chunked ingest keeps memory flat as the register grows (issues 14 and 17).

Usage::

    python bench/ingest_scale.py                          # 1M, 5M, 20M firms
    python bench/ingest_scale.py --sizes 1000000,5000000 --json out.json

For each size a seeded register CSV (bench/e2e.py's generator: lon/lat over Mexico, 60%
in Gaussian clusters, ISIC divisions, employees, founded, women_led) is written in
pieces of 5M rows (the generator never holds more), then ingested through the CLI as a
user would (``geocluster ingest firms FILE``, its own process, imports included):

* **chunked**: the default for files over ``GEOCLUSTER_INGEST_CHUNK_MB`` (256 MB); here
  forced for every size with ``GEOCLUSTER_INGEST_CHUNK_MB=0``;
* **in memory**: the same file read whole (``GEOCLUSTER_INGEST_CHUNK_MB`` huge), up to
  ``--whole-max`` rows (beyond, it needs more memory than the chunked path, which is
  the point);
* **naive**: ``pandas.read_csv`` -> ``GeoDataFrame(points_from_xy)`` -> ``to_parquet``,
  no validation, no catalog (the baseline of bench/e2e.py), up to ``--whole-max`` rows.

Printed per size: wall seconds and peak RSS (``/usr/bin/time``) of each, the chunked
path's peak relative to its peak at the smallest size (flat = about 1), and its time
relative to the naive baseline. Targets: chunked peak <= 2.5 GB at 5M firms and roughly
constant beyond; stored rows equal between the chunked and in-memory paths.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(1, str(REPO))

from e2e import make_register  # noqa: E402

NAIVE = """
import sys, geopandas as gpd, pandas as pd
df = pd.read_csv(sys.argv[1])
gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
gdf.to_parquet(sys.argv[2])
"""


def write_register(path: Path, n: int, seed: int, piece: int = 5_000_000) -> None:
    """The seeded register in pieces of ``piece`` rows, appended to one CSV."""
    with open(path, "wb") as out:
        for k, start in enumerate(range(0, n, piece)):
            part = path.with_suffix(f".part{k}.csv")
            make_register(part, min(piece, n - start), seed + k, first_id=start)
            with open(part, "rb") as fh:
                if k:
                    fh.readline()  # one header
                while block := fh.read(64 << 20):
                    out.write(block)
            part.unlink()


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return wall, peak_kb * 1024 / 1e9, proc.stdout


def ingest(csv: Path, ws: Path, chunk_mb: str) -> tuple[float, float, dict]:
    cmd = [sys.executable, "-m", "geocluster", "ingest", "firms", str(csv), "--workspace",
           str(ws), "--name", "register", "--json"]  # fmt: skip
    wall, peak, out = timed(cmd, {"PYTHONPATH": str(REPO), "GEOCLUSTER_INGEST_CHUNK_MB": chunk_mb})
    return wall, peak, json.loads(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000,5000000,20000000")
    ap.add_argument("--whole-max", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(tempfile.mkdtemp(prefix="geocluster-ingest-scale-", dir=args.dir))
    rows = []
    first_peak = None
    print(f"{'firms':>11} {'CSV MB':>8} | {'chunked s':>9} {'GB':>5} {'÷ first':>7} | "
          f"{'in memory s':>11} {'GB':>5} | {'naive s':>7} {'GB':>5} | chunked ÷ naive")  # fmt: skip
    for n in sizes:
        csv = base / f"register_{n}.csv"
        write_register(csv, n, args.seed)
        mb = csv.stat().st_size / 1e6
        row: dict = {"firms": n, "csv_mb": round(mb, 1)}
        wall, peak, info = ingest(csv, base / f"ws_chunked_{n}", "0")
        row.update(chunked_s=round(wall, 2), chunked_gb=round(peak, 2), stored=info["rows"])
        first_peak = first_peak or peak
        row["chunked_peak_vs_first"] = round(peak / first_peak, 2)
        if n <= args.whole_max:
            wall, peak, whole = ingest(csv, base / f"ws_whole_{n}", "1000000")
            assert whole["rows"] == info["rows"], (whole["rows"], info["rows"])
            row.update(whole_s=round(wall, 2), whole_gb=round(peak, 2))
            wall, peak, _ = timed(
                [sys.executable, "-c", NAIVE, str(csv), str(base / f"naive_{n}.parquet")], {}
            )
            row.update(naive_s=round(wall, 2), naive_gb=round(peak, 2))
            row["chunked_vs_naive"] = round(row["chunked_s"] / row["naive_s"], 2)
        rows.append(row)

        def cell(key, fmt, row=row):
            return format(row[key], fmt) if key in row else "-"

        print(f"{n:>11,} {mb:>8,.0f} | {row['chunked_s']:>9.1f} {row['chunked_gb']:>5.2f} "
              f"{row['chunked_peak_vs_first']:>7.2f} | {cell('whole_s', '>11.1f')} "
              f"{cell('whole_gb', '>5.2f')} | {cell('naive_s', '>7.1f')} "
              f"{cell('naive_gb', '>5.2f')} | {cell('chunked_vs_naive', '.2f')}×",
              flush=True)  # fmt: skip
        for p in base.glob(f"*_{n}*"):
            subprocess.run(["rm", "-rf", str(p)], check=False)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    subprocess.run(["rm", "-rf", str(base)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
