"""Build the demo workspace: Mexico (real boundaries and indicators, SYNTHETIC firms in two
versions, SYNTHETIC support institutions, real heritage sites) plus Helsinki (real
OpenStreetMap firms, assets and institutions).

The follow-up register ``mexico_firms@2`` is not a bundled file: it is derived at build
time from the bundled CSV by :func:`geocluster.demo.followup.write_follow_up` (seeded,
byte-for-byte reproducible) and ingested as the second version of ``mexico_firms``.

``geocluster demo`` calls :func:`build_demo`. It ingests the files bundled in the
repository's ``data/`` folder (see ``data/README.md``) through
:meth:`geocluster.workspace.Workspace.ingest`, exactly as a user would, then runs
a default set of analyses (:func:`build_demo_runs`) so that the map has layers.

Building again on an existing workspace is cheap: a dataset whose source file
has not changed (same SHA-256) is not ingested again, and the analyses only run
again when some dataset changed or the workspace has no runs yet.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geocluster.analyses.spec import get as get_spec
from geocluster.demo.followup import write_follow_up
from geocluster.errors import DatasetNotFound, NotFound, UnusableFile

__all__ = [
    "DEMO_DATASETS",
    "DEMO_RUNS",
    "DemoDataset",
    "DemoRun",
    "build_demo",
    "build_demo_runs",
    "demo_links",
]

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class DemoDataset:
    """One file of ``data/`` and how the demo ingests it."""

    kind: str
    path: str  # relative to the data folder
    name: str
    options: dict[str, Any] | None = None
    #: ``func(src, out)`` writing this dataset's file from ``path``; the file is written
    #: under the workspace (``derived/``) and ingested from there.
    derive: Callable[[Path, Path], Path] | None = None


DEMO_DATASETS: tuple[DemoDataset, ...] = (
    DemoDataset("boundaries", "boundaries/mexico_states.gpkg", "mexico_states", {"level": 1}),
    DemoDataset("boundaries", "boundaries/natural_earth_countries.gpkg", "countries", {"level": 0}),
    DemoDataset("indicators", "indicators/mexico_pcgdp.csv", "mexico_pcgdp"),
    DemoDataset(
        "firms",
        "firms/mexico_demo_firms_SYNTHETIC.csv",
        "mexico_firms",
        {
            "lon_col": "lon",
            "lat_col": "lat",
            "id_col": "firm_id",
            "sector_col": "isic",
            "sector_scheme": "isic4",
            "employees_col": "employees",
        },
    ),
    DemoDataset(
        "assets", "assets/mexico_assets.csv", "mexico_assets", {"lon_col": "lon", "lat_col": "lat"}
    ),
    DemoDataset("firms", "osm/Helsinki.osm.pbf", "helsinki_firms"),
    DemoDataset("assets", "osm/Helsinki.osm.pbf", "helsinki_assets"),
    # the SYNTHETIC follow-up register: version 2 of mexico_firms (data/firms/README.md)
    DemoDataset(
        "firms",
        "firms/mexico_demo_firms_SYNTHETIC.csv",
        "mexico_firms",
        {
            "lon_col": "lon",
            "lat_col": "lat",
            "id_col": "firm_id",
            "sector_col": "isic",
            "sector_scheme": "isic4",
            "employees_col": "employees",
        },
        derive=write_follow_up,
    ),
    DemoDataset(
        "institutions",
        "institutions/mexico_institutions_SYNTHETIC.csv",
        "mexico_institutions",
        {"lon_col": "lon", "lat_col": "lat"},
    ),
    DemoDataset("institutions", "osm/Helsinki.osm.pbf", "helsinki_institutions"),
)


@dataclass(frozen=True)
class DemoRun:
    """One default analysis: the registered spec ``analysis`` run with ``kwargs``.

    ``after`` names an earlier run whose ``run_id`` is passed as ``run_arg``
    (e.g. the ranking of a clusters run).
    """

    label: str
    analysis: str
    kwargs: dict[str, Any]
    after: str | None = None
    run_arg: str | None = None
    #: Other earlier runs whose ids are passed: ``{parameter: label}``.
    needs: dict[str, str] | None = None


# Parameters chosen for the demo data: the synthetic clusters have a 3-12 km
# scatter around their towns; Helsinki's firms sit a few metres apart.
DEMO_RUNS: tuple[DemoRun, ...] = (
    DemoRun(
        "mexico_footwear_clusters",
        "clusters",
        {"firms": "mexico_firms", "method": "dbscan", "eps_m": 1500.0, "min_samples": 15,
         "sectors": ["15"]},
    ),
    DemoRun(
        "mexico_agro_food_clusters",
        "clusters",
        {"firms": "mexico_firms", "method": "dbscan", "eps_m": 2000.0, "min_samples": 10,
         "sector_group": "agro_food"},
    ),
    DemoRun(
        "mexico_tourism_clusters",
        "clusters",
        {"firms": "mexico_firms", "method": "dbscan", "eps_m": 1500.0, "min_samples": 15,
         "sector_group": "tourism"},
    ),
    DemoRun(
        "mexico_footwear_kde",
        "kde",
        {"firms": "mexico_firms", "sectors": ["15"], "bandwidth": 2000.0, "cell_m": 500.0},
    ),
    DemoRun(
        "mexico_specialization",
        "specialization",
        {"firms": "mexico_firms", "boundaries": "mexico_states", "measure": "employees",
         "sector_level": "division"},
    ),
    DemoRun(
        "mexico_pcgdp_hotspots",
        "hotspots",
        {"boundaries": "mexico_states", "indicators": "mexico_pcgdp", "indicator": "pcgdp",
         "year": 2000, "method": "lisa", "weights": "queen", "permutations": 999, "seed": 0},
    ),
    DemoRun(
        "mexico_pcgdp_inequality",
        "inequality",
        {"indicators": "mexico_pcgdp", "indicator": "pcgdp", "boundaries": "mexico_states",
         "group_by": "hanson03"},
    ),
    DemoRun(
        "mexico_agro_food_assets",
        "assets",
        {"assets": "mexico_assets", "firms": "mexico_firms", "analysis": "linkage",
         "radius_m": 10000.0, "sector_group": "agro_food"},
    ),
    DemoRun(
        "mexico_cluster_ranking",
        "ranking",
        {"boundaries": "mexico_states", "assets": "mexico_assets", "radius_m": 10000.0,
         "institutions": "mexico_institutions"},
        after="mexico_tourism_clusters",
        run_arg="clusters_run",
    ),
    DemoRun(
        "helsinki_clusters",
        "clusters",
        {"firms": "helsinki_firms", "method": "dbscan", "eps_m": 60.0, "min_samples": 8},
    ),
    # -- the UNIDO cycle: baseline (mexico_firms@1) -> follow-up (mexico_firms@2)
    DemoRun(
        "mexico_manuf_clusters_v1",
        "clusters",
        {"firms": "mexico_firms@1", "method": "dbscan", "eps_m": 1500.0, "min_samples": 15,
         "sectors": ["C"]},
    ),
    DemoRun(
        "mexico_manuf_clusters_v2",
        "clusters",
        {"firms": "mexico_firms@2", "method": "dbscan", "eps_m": 1500.0, "min_samples": 15,
         "sectors": ["C"]},
    ),
    DemoRun(
        "mexico_cluster_change",
        "change",
        # the overlap coefficient: a cluster that broke into fragments is "split", not
        # "disappeared" with its fragments "appeared" (Jaccard of a small part is low)
        {"score": "overlap"},
        needs={"before": "mexico_manuf_clusters_v1",
               "after": "mexico_manuf_clusters_v2"},
    ),
    DemoRun(
        "mexico_shiftshare",
        "shiftshare",
        {"firms": "mexico_firms@1", "firms_to": "mexico_firms@2", "boundaries": "mexico_states",
         "measure": "employees", "sector_level": "division"},
    ),
    DemoRun(
        "mexico_relatedness",
        "relatedness",
        {"firms": "mexico_firms@2", "boundaries": "mexico_states", "measure": "employees"},
    ),
    DemoRun(
        "mexico_dynamics",
        "dynamics",
        {"firms": "mexico_firms@2", "boundaries": "mexico_states", "first_year": 1990},
        needs={"clusters": "mexico_manuf_clusters_v2"},
    ),
    DemoRun(
        "mexico_sdg",
        "sdg",
        {"firms": "mexico_firms@2", "boundaries": "mexico_states"},
    ),
    DemoRun(
        "mexico_institutions",
        "institutions",
        {"institutions": "mexico_institutions", "radius_m": 10000.0},
        needs={"clusters_run": "mexico_manuf_clusters_v2"},
    ),
    DemoRun(
        "mexico_manuf_ranking",
        "ranking",
        {"boundaries": "mexico_states", "assets": "mexico_assets", "radius_m": 10000.0,
         "institutions": "mexico_institutions"},
        needs={"clusters_run": "mexico_manuf_clusters_v2", "growth_run": "mexico_cluster_change"},
    ),
    DemoRun(
        "mexico_tourism_preset",
        "clusters",
        {"firms": "mexico_firms@2", "preset": "unido_diagnostic", "sector_group": "tourism"},
    ),
    DemoRun(
        "mexico_informal_ranking",
        "ranking",
        {"preset": "unido_diagnostic", "institutions": "mexico_institutions",
         "radius_m": 10000.0},
        needs={"clusters_run": "mexico_tourism_preset"},
    ),
    DemoRun(
        "helsinki_institutions",
        "institutions",
        {"institutions": "helsinki_institutions", "radius_m": 500.0},
        needs={"clusters_run": "helsinki_clusters"},
    ),
)  # fmt: skip


def default_data_dir() -> Path:
    """The repository's ``data/`` folder (``$GEOCLUSTER_DATA`` overrides it)."""
    env = os.environ.get("GEOCLUSTER_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _scaled(progress: Progress | None, start: float, stop: float) -> Progress | None:
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        progress(start + (stop - start) * max(0.0, min(1.0, fraction)), message)

    return report


def build_demo(
    workspace_dir: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    runs: bool = True,
) -> list[Any]:
    """Ingest the bundled demo data into a workspace and run the default analyses.

    Parameters
    ----------
    workspace_dir : path-like
        Workspace folder; created if missing.
    progress : callable(fraction, message), optional
        Called with the overall fraction done (0..1) and a message.
    data_dir : path-like, optional
        Folder holding the bundled data (default: the repository's ``data/``).
    runs : bool
        Also run :func:`build_demo_runs` (default True).

    Returns
    -------
    list
        One :class:`~geocluster.workspace.DatasetInfo` per demo dataset (in
        :data:`DEMO_DATASETS` order), followed by one dict per demo analysis
        (see :func:`build_demo_runs`) when ``runs`` is true.

    Raises
    ------
    geocluster.errors.UnusableFile
        If a bundled data file is missing (e.g. an installation without ``data/``).
    """
    from geocluster.workspace import Workspace

    data = Path(data_dir) if data_dir is not None else default_data_dir()
    missing = [d.path for d in DEMO_DATASETS if not (data / d.path).is_file()]
    if missing:
        raise UnusableFile(
            f"expected the bundled demo data in {data}, missing: {', '.join(missing)} "
            "(set GEOCLUSTER_DATA to the repository's data/ folder)"
        )
    ws = Workspace(workspace_dir)
    share = 0.5 if runs else 1.0
    infos: list[Any] = []
    changed = False
    n = len(DEMO_DATASETS)
    for i, spec in enumerate(DEMO_DATASETS):
        path = data / spec.path
        step = _scaled(progress, share * i / n, share * (i + 1) / n)
        if step:
            step(0.0, f"ingesting {spec.name}")
        if spec.derive is not None:
            out = ws.path / "derived" / f"{spec.name}_{spec.derive.__name__}.csv"
            path = spec.derive(path, out)
        try:
            versions = ws.versions(spec.name)
        except DatasetNotFound:
            versions = []
        digest = _sha256(path)
        # a version ingested from this very file (versions of a name come from several files)
        same = [v for v in versions if v.kind == spec.kind and v.checksum == digest]
        if same:
            infos.append(same[-1])
            continue
        infos.append(
            ws.ingest(spec.kind, path, name=spec.name, options=spec.options, progress=step)
        )
        changed = True
    if runs:
        if changed or not ws.runs():
            infos.extend(build_demo_runs(ws, progress=_scaled(progress, 0.5, 1.0)))
        else:
            infos.extend(
                {"kind": "run", "id": r.id, "analysis": r.kind, "status": "exists"}
                for r in ws.runs()
            )
    if progress:
        progress(1.0, "demo workspace ready")
    return infos


def build_demo_runs(ws: Any, *, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run the default demo analyses (:data:`DEMO_RUNS`) on a demo workspace.

    An analysis whose module or function does not exist (yet) is skipped; one
    that fails is reported and the others still run, so a demo always builds.

    Parameters
    ----------
    ws : Workspace
        A workspace holding the demo datasets.
    progress : callable(fraction, message), optional

    Returns
    -------
    list of dict
        One per demo run: ``{"kind": "run", "label", "analysis", "status":
        "ok"|"skipped"|"failed", "detail": str}`` plus ``"id"`` (the run or raster
        id) when the run succeeded.
    """
    out: list[dict[str, Any]] = []
    run_ids: dict[str, str] = {}
    n = len(DEMO_RUNS)
    for i, spec in enumerate(DEMO_RUNS):
        if progress:
            progress(i / n, f"running {spec.label}")
        entry: dict[str, Any] = {
            "kind": "run",
            "label": spec.label,
            "analysis": spec.analysis,
            "status": "skipped",
            "detail": "",
        }
        out.append(entry)
        try:
            func = get_spec(spec.analysis)
        except NotFound:
            entry["detail"] = f"analysis {spec.analysis!r} is not registered"
            continue
        kwargs = dict(spec.kwargs)
        needs = dict(spec.needs or {})
        if spec.after is not None:
            needs[spec.run_arg or "run"] = spec.after
        missing = [label for label in needs.values() if label not in run_ids]
        if missing:
            entry["detail"] = f"needs the {', '.join(missing)} run, which did not succeed"
            continue
        kwargs.update({arg: run_ids[label] for arg, label in needs.items()})
        try:
            result = func(ws, **kwargs)
            if hasattr(result, "to_body"):  # an AnalysisSpec returns a Result
                result = result.to_body()
        except Exception as exc:  # noqa: BLE001 - the demo reports and goes on
            entry["status"] = "failed"
            entry["detail"] = f"{type(exc).__name__}: {exc}"
            continue
        run_id = result.get("run_id") if isinstance(result, dict) else None
        if run_id is None and isinstance(result, dict):
            run_id = result.get("raster_id") or result.get("id")
        entry["status"] = "ok"
        if run_id is not None:
            entry["id"] = run_id
            run_ids[spec.label] = run_id
    if progress:
        progress(1.0, "demo analyses done")
    return out


def demo_links(ws: Any) -> dict[str, str]:
    """The demo's UNIDO-cycle map and its Oaxaca report, as paths on the served API.

    The map names the follow-up register, its manufacturing clustering (the follow-up of
    the newest ``change`` run on ``mexico_firms``) and the states, so that every layer
    has one candidate: clusters with their ranking, the SDG proxies, the cluster change
    and the support institutions. Empty when the workspace has no such run.
    """
    for run in reversed(ws.runs("change")):
        after = run.params.get("after")
        if not any(str(i).split("@")[0] == "mexico_firms" for i in run.inputs) or not after:
            continue
        return {
            "map": f"/map?firms=mexico_firms&clusters={after}&boundaries=mexico_states",
            "report": f"/regions/MX-OAX/report?boundaries=mexico_states&clusters_run={after}",
            "clusters_run": after,
        }
    return {}
