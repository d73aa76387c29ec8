"""Cluster presets: every preset validates, cites its source, and filters by firm count."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

import geocluster.clustering.presets as presets_module
from geocluster.clustering.presets import PRESETS, get_preset, keep_clusters, validate_preset
from geocluster.errors import InvalidInput


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_cite(name):
    p = validate_preset(PRESETS[name])
    assert p.measure == "firms"
    assert p.source.strip() and p.source_url.startswith("http")
    assert {"eps_m", "min_samples"} <= set(p.chosen_here)  # no source gives a radius
    assert p.clustering_params() == {
        "method": "dbscan",
        "eps_m": p.eps_m,
        "min_samples": p.min_samples,
    }
    # documented in PRESETS.md with its min_firms
    doc = (Path(presets_module.__file__).parent / "PRESETS.md").read_text()
    assert f"| `{name}` | {p.min_firms} |" in doc


def test_source_thresholds():
    # Reference: the Cluster Observatory of India's definition (industrial >= 100
    # enterprises; handicraft and other micro-enterprise clusters about 50 units).
    assert get_preset("india_industrial").min_firms == 100
    assert get_preset("india_micro_enterprise").min_firms == 50
    assert get_preset("india_mse_cdp").min_firms == 20
    assert "min_firms" in get_preset("unido_diagnostic").chosen_here  # UNIDO gives no number


def test_keep_clusters():
    summary = pd.DataFrame({"cluster_id": [0, 1, 2], "n_firms": [120, 60, 19]})
    kept = keep_clusters(summary, "india_micro_enterprise")
    assert kept["cluster_id"].tolist() == [0, 1]
    assert kept.attrs == {"preset": "india_micro_enterprise", "dropped": 1}
    assert keep_clusters(summary, "india_industrial")["cluster_id"].tolist() == [0]


def test_bad_presets():
    with pytest.raises(InvalidInput, match="expected a cluster preset"):
        get_preset("europe")
    base = PRESETS["india_industrial"]
    for change, match in [
        ({"min_samples": 200}, "min_samples <= min_firms"),
        ({"eps_m": 0.0}, "eps_m"),
        ({"measure": "employees"}, "measure"),
        ({"source_url": "clusterobservatory.in"}, "source_url"),
        ({"min_firms": 2.5}, "min_firms"),
        ({"chosen_here": ("radius",)}, "unknown fields"),
        ({"source": " "}, "source"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            validate_preset(dataclasses.replace(base, **change))
    with pytest.raises(InvalidInput, match="n_firms"):
        keep_clusters(pd.DataFrame({"cluster_id": [0]}), base)
