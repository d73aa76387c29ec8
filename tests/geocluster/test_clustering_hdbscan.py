"""HDBSCAN wrapper (fast_hdbscan) on well-separated blobs; label renumbering."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN as SkHDBSCAN
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from geocluster.clustering import HDBSCANClusterer, hdbscan, relabel_by_first_index
from geocluster.errors import InvalidInput

CENTRES = [[0, 0], [50_000, 0], [0, 50_000], [60_000, 60_000], [120_000, 10_000]]


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=1000, centers=CENTRES, cluster_std=800, random_state=0)
    return X + [400_000, 2_000_000], y


def test_recovers_well_separated_blobs(blobs):
    X, y = blobs
    m = HDBSCANClusterer(min_cluster_size=30).fit(X)
    assert m.n_clusters_ == len(CENTRES)
    assert adjusted_rand_score(y, m.labels_) > 0.99
    assert (m.labels_ == -1).mean() < 0.02
    assert m.probabilities_.shape == (len(X),)


def test_agrees_with_sklearn_hdbscan_on_blobs(blobs):
    # scikit-learn's HDBSCAN is the reference implementation of the same algorithm.
    X, _ = blobs
    ref = SkHDBSCAN(min_cluster_size=30, min_samples=10, copy=True).fit(X).labels_
    ours = hdbscan(X, min_cluster_size=30, min_samples=10)
    both = (ref >= 0) & (ours >= 0)
    assert adjusted_rand_score(ref[both], ours[both]) == pytest.approx(1.0)
    np.testing.assert_array_equal(ours, relabel_by_first_index(ref))


def test_labels_numbered_by_first_point(blobs):
    X, _ = blobs
    lab = hdbscan(X, min_cluster_size=30)
    firsts = [np.flatnonzero(lab == c)[0] for c in range(lab.max() + 1)]
    assert firsts == sorted(firsts)


def test_relabel_by_first_index():
    np.testing.assert_array_equal(
        relabel_by_first_index(np.array([7, -1, 3, 7, 3, 9, -1])), [0, -1, 1, 0, 1, 2, -1]
    )
    np.testing.assert_array_equal(relabel_by_first_index(np.array([-1, -1])), [-1, -1])


def test_weights_count_towards_cluster_size():
    # Three blobs of 40 points: below min_cluster_size=60 unweighted (all noise), but
    # with every weight 2 each blob weighs 80 and is found.
    X, y = make_blobs(n_samples=120, centers=CENTRES[:3], cluster_std=500, random_state=1)
    plain = hdbscan(X, min_cluster_size=60, min_samples=5)
    weighted = hdbscan(X, min_cluster_size=60, min_samples=5, sample_weight=np.full(120, 2.0))
    assert plain.max() < 1
    assert weighted.max() == 2
    assert adjusted_rand_score(y, weighted) > 0.95


def test_too_few_points_is_all_noise():
    np.testing.assert_array_equal(hdbscan(np.zeros((3, 2)), min_cluster_size=5), [-1] * 3)
    assert hdbscan(np.empty((0, 2))).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"min_cluster_size": 1}, "min_cluster_size >= 2"), ({"min_samples": 0}, "min_samples")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        hdbscan(np.zeros((30, 2)), **kwargs)


def test_negative_weights_rejected():
    with pytest.raises(InvalidInput, match="non-negative"):
        hdbscan(np.zeros((30, 2)), sample_weight=-np.ones(30))
