"""Export datasets and runs for people who want one file: GeoPackage or GeoParquet.

The GeoPackage is a new file outside the workspace, written under a temp name and
renamed into place (never opened for update, so GDAL cannot unlink anything of ours);
its layers have readable names (``mexico_firms_v2``, ``clusters_ab12_labels``) and a
``gpkg_contents.description`` saying what each is. ``parquet`` writes one GeoParquet
file per layer into a folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from geocluster.errors import InvalidInput

FORMATS = ("gpkg", "parquet")


@dataclass(frozen=True)
class ExportedLayer:
    """One exported layer: its name in the output, what it is, and its rows."""

    name: str
    description: str
    rows: int


def _layer_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")[:60] or "layer"


def _targets(ws, datasets: Sequence[str] | None, runs: Sequence[str] | None):
    out = []
    dataset_ids = list(datasets) if datasets else ([] if runs else [d.id for d in ws.datasets()])
    for ref in dataset_ids:
        info = ws.dataset(ref)
        out.append(
            (
                _layer_name(f"{info.id}_v{info.version}"),
                f"{info.kind} dataset {info.ref} ({info.name}); source {info.source or '-'}; "
                f"{info.rows} rows",
                info.layer,
            )
        )
    for run_id in runs or ():
        run = ws.run(run_id)
        for name, layer in run.layers.items():
            out.append(
                (
                    _layer_name(f"{run.id}_{name}"),
                    f"{run.kind} run {run.id}, layer {name}; inputs {', '.join(run.inputs)}",
                    layer,
                )
            )
    if not out:
        raise InvalidInput("nothing to export: the workspace has no datasets")
    return out


def export(
    ws,
    out: str | os.PathLike[str],
    *,
    fmt: str = "gpkg",
    datasets: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
) -> list[ExportedLayer]:
    """Write datasets (default: the latest version of each) and runs to ``out``.

    Parameters
    ----------
    fmt : {"gpkg", "parquet"}
        One GeoPackage file, or a folder of GeoParquet files.
    datasets : list of str, optional
        ``id`` or ``id@version``; default every dataset's latest version (if no runs).
    runs : list of str, optional
        Run ids; every layer of each run is exported.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"expected --format gpkg or parquet, got {fmt!r}")
    out = Path(out)
    if out.resolve().is_relative_to(ws.path.resolve()):
        raise InvalidInput("the export must be written outside the workspace folder")
    targets = _targets(ws, datasets, runs)
    written: list[ExportedLayer] = []
    if fmt == "parquet":
        out.mkdir(parents=True, exist_ok=True)
        for name, description, layer in targets:
            files = ws.store.layer_files(layer)
            target = out / f"{name}.parquet"
            tmp = out / f".tmp-{os.getpid()}-{name}.parquet"
            if len(files) == 1:
                shutil.copyfile(files[0], tmp)
            else:
                table = pq.ParquetDataset([str(f) for f in files]).read()
                pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, target)
            written.append(ExportedLayer(name, description, ws.store.count(layer)))
        return written

    import pyogrio

    if out.suffix.lower() != ".gpkg":
        raise InvalidInput(f"expected an output file ending in .gpkg, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    tmp.unlink(missing_ok=True)
    try:
        for name, description, layer in targets:
            frame = ws.store.read_layer(layer)
            frame = frame.drop(columns=[c for c in ("x", "y") if c in frame.columns])
            kwargs = {
                "layer": name,
                "driver": "GPKG",
                "layer_options": {"DESCRIPTION": description},
            }
            if hasattr(frame, "geometry") and "geometry" in frame.columns:
                if len(frame) == 0 or frame.geometry.isna().all():
                    kwargs["geometry_type"] = "Unknown"
            pyogrio.write_dataframe(frame, tmp, append=tmp.exists(), **kwargs)
            written.append(ExportedLayer(name, description, len(frame)))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return written


def frame_to_bytes(frame, fmt: str, *, layer: str) -> bytes:
    """One (Geo)DataFrame as the bytes of a GeoPackage or GeoParquet download."""
    import tempfile

    import geopandas as gpd
    import pyogrio

    if fmt not in FORMATS:
        raise InvalidInput(f"expected a download format gpkg or parquet, got {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="geocluster-dl-") as tmp:
        path = Path(tmp) / f"{_layer_name(layer)}.{fmt}"
        if fmt == "gpkg":
            kwargs = {}
            if isinstance(frame, gpd.GeoDataFrame) and (
                len(frame) == 0 or frame.geometry.isna().all()
            ):
                kwargs["geometry_type"] = "Unknown"
            pyogrio.write_dataframe(frame, path, layer=_layer_name(layer), driver="GPKG", **kwargs)
        else:
            frame.to_parquet(path, index=False)
        return path.read_bytes()
