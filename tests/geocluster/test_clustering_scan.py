"""National scan: each sector clustered separately, equal to DBSCAN run per sector."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sklearn.cluster import DBSCAN

from geocluster.clustering.scan import cluster_by_sector
from geocluster.errors import InvalidInput


def _register(seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    parts, divs = [], []
    # Two divisions share one town: a mixed blob that a per-sector scan must split.
    for div, (cx, cy), n in (("15", (0, 0), 60), ("10", (0, 0), 40), ("15", (9000, 0), 30),
                             ("26", (0, 9000), 50)):  # fmt: skip
        parts.append(rng.normal((cx, cy), 300, size=(n, 2)))
        divs += [div] * n
    noise = rng.uniform(-20_000, 20_000, size=(80, 2))
    parts.append(noise)
    divs += list(rng.choice(["10", "15", "26"], 80))
    xy = np.vstack(parts)
    return gpd.GeoDataFrame(
        {
            "firm_id": [f"f{i}" for i in range(len(xy))],
            "isic_division": divs,
            "sector_code": [d + "20" for d in divs],
            "employees": rng.integers(1, 30, len(xy)).astype(float),
        },
        geometry=shapely.points(xy[:, 0] + 500_000, xy[:, 1] + 2_300_000),
        crs="EPSG:32614",
    )


def test_scan_equals_scikit_learn_dbscan_per_division():
    firms = _register()
    result, per_sector = cluster_by_sector(firms, level="division", eps_m=600, min_samples=8)
    labels = result.labels.set_index("firm_id")
    total = 0
    for div in ("10", "15", "26"):
        sub = firms[firms.isic_division == div]
        xy = shapely.get_coordinates(sub.geometry.values)
        # Reference: scikit-learn's DBSCAN on that division's firms alone.
        ref = DBSCAN(eps=600, min_samples=8).fit(xy).labels_
        got = labels.loc[sub.firm_id, "cluster_id"].to_numpy()
        np.testing.assert_array_equal(got == -1, ref == -1)
        pairs = {(a, b) for a, b in zip(got, ref, strict=True) if b >= 0}
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
        row = per_sector.set_index("sector").loc[div]
        assert row.n_clusters == ref.max() + 1 and row.noise == (ref == -1).sum()
        total += ref.max() + 1
    assert result.n_clusters == total == 4  # 15 twice, 10 and 26 once
    assert sorted(result.clusters.cluster_id) == list(range(total))  # unique across sectors
    assert result.clusters.groupby("sector").size().to_dict() == {"10": 1, "15": 2, "26": 1}
    assert result.params["by"] == "division"


def test_scan_reports_progress_per_sector_and_rejects_bad_levels():
    firms = _register()
    seen = []
    cluster_by_sector(firms, level="division", eps_m=600, min_samples=8,
                      progress=lambda f, m: seen.append(m))  # fmt: skip
    assert [m for m in seen if m.startswith("sector")] == [
        "sector 10 (1/3)", "sector 15 (2/3)", "sector 26 (3/3)"
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="expected --by"):
        cluster_by_sector(firms, level="class", eps_m=600)


def test_clusters_by_division_through_cli_and_http(tmp_path):
    import json

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from geocluster.cli import main
    from geocluster.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.add_dataset("firms", _register().to_crs(4326), name="firms")
    args = ["clusters", "--firms", "firms", "--by", "division", "--eps-m", "600",
            "--min-samples", "8", "--workspace", str(ws.path), "--json"]  # fmt: skip
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    body = json.loads(out.getvalue())
    assert body["n_clusters"] == 4 and body["params"]["by"] == "division"
    assert {f["properties"]["sector"] for f in body["clusters"]["features"]} == {"10", "15", "26"}
    assert {r["sector"]: r["n_clusters"] for r in body["sectors"]} == {"10": 1, "15": 2, "26": 1}
    assert body["inputs"] == ["firms@1"]
    with TestClient(create_app(Settings(workspace=ws.path))) as c:
        r = c.post("/analyses/clusters", json={"firms": "firms", "by": "division",
                                               "eps_m": 600, "min_samples": 8})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["n_clusters"] == 4


@pytest.mark.parametrize("reference_year", [None, 2021])
def test_pooled_summaries_equal_each_sector_clustered_alone(reference_year):
    import pandas as pd

    from geocluster.clustering import cluster_firms

    firms = _register(seed=2).sample(frac=1.0, random_state=0)  # not stored sector by sector
    rng = np.random.default_rng(2)
    founded = rng.integers(1990, 2024, len(firms)).astype(float)
    founded[(firms.isic_division == "26").to_numpy()] -= 10  # its own latest year
    firms["founded"] = pd.array(founded, "Float64").astype("Int64")
    result, _ = cluster_by_sector(
        firms, level="division", eps_m=600, min_samples=8, reference_year=reference_year
    )
    # Reference: the former definition, cluster_firms on each division alone, with
    # cluster ids offset sector by sector and the summaries concatenated.
    parts, offset = [], 0
    for div in ("10", "15", "26"):
        sub = cluster_firms(
            firms[firms.isic_division == div], eps_m=600, min_samples=8,
            reference_year=reference_year,
        )  # fmt: skip
        summary = sub.clusters.copy()
        summary["cluster_id"] = summary["cluster_id"] + offset
        summary.insert(1, "sector", div)
        parts.append(summary)
        offset += sub.n_clusters
    ref = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=firms.crs)
    pd.testing.assert_frame_equal(result.clusters.to_wkb(), ref.to_wkb(), check_exact=True)
    assert result.clusters.attrs == ref.attrs
    assert result.params["reference_year"] == sub.params["reference_year"]


def test_sectors_on_threads_give_the_one_by_one_result(monkeypatch):
    # reference: the same scan with every sector clustered one after the other
    import geocluster.clustering.scan as scan

    firms = _register(4)
    serial, serial_sectors = cluster_by_sector(firms, level="division", eps_m=600, min_samples=8)
    monkeypatch.setattr(scan, "PARALLEL_SECTORS_MIN_FIRMS", 0)
    threads = set()
    fit = scan._fit_labels

    def spy(*args, **kwargs):
        import threading

        threads.add(threading.current_thread().name)
        return fit(*args, **kwargs)

    monkeypatch.setattr(scan, "_fit_labels", spy)
    messages = []
    par, par_sectors = cluster_by_sector(
        firms, level="division", eps_m=600, min_samples=8,
        progress=lambda f, m: messages.append((f, m)),
    )  # fmt: skip
    assert any(name.startswith("geocluster-sectors") for name in threads)
    assert par.labels.equals(serial.labels)
    assert par_sectors.equals(serial_sectors)
    assert par.clusters.drop(columns="geometry").equals(serial.clusters.drop(columns="geometry"))
    assert par.clusters.geometry.geom_equals_exact(serial.clusters.geometry, 0).all()
    # each sector reported as it finishes, the last at 100 %
    done = [m for f, m in messages if "done" in m]
    assert len(done) == 3 and max(f for f, _ in messages) == 1.0


def test_sectors_on_threads_raise_the_first_failing_sector_in_code_order():
    # three sectors; the second and third fail, the third first in time: the error is
    # the second's, as when the sectors are clustered one by one
    import time

    from geocluster.clustering.scan import _fit_sectors

    def fit(i):
        if i == 1:
            time.sleep(0.2)
            raise InvalidInput("sector b failed")
        if i == 2:
            raise InvalidInput("sector c failed")
        return i

    for parallel in (False, True):
        with pytest.raises(InvalidInput, match="sector b failed"):
            fits = _fit_sectors(
                fit, ["a", "b", "c"], np.array([300_000, 10, 10]), parallel=parallel,
                report=lambda f, m: None,
            )  # fmt: skip
            for i in range(3):  # one by one, sectors run when asked for
                fits(i)
