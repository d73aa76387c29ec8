"""The compiled distinct check of firm ids, against Python's set (the reference)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from geocluster.ingest._distinct import all_distinct, string_hashes


@pytest.mark.parametrize("seed", range(5))
def test_all_distinct_equals_python_set(seed):
    rng = np.random.default_rng(seed)
    values = [f"F{v}" for v in rng.integers(0, 3000, 2000)]  # duplicates likely
    unique = list(dict.fromkeys(values))
    for texts in (values, unique, ["é", "e\u0301", "ü"], ["", "a"], []):
        arr = pa.array(texts, pa.string())
        assert all_distinct(arr) == (len(set(texts)) == len(texts))
        assert all_distinct(pa.chunked_array([arr.cast(pa.large_string())])) == (
            len(set(texts)) == len(texts)
        )


def test_nulls_count_as_one_value_and_slices_are_respected():
    assert all_distinct(pa.array(["a", None, "b"]))
    assert not all_distinct(pa.array(["a", None, None]))
    arr = pa.array(["x", "y", "x", "z"])
    assert all_distinct(arr.slice(0, 3)) is False
    assert all_distinct(arr.slice(1, 3)) is True


def test_a_hash_collision_is_checked_on_the_strings(monkeypatch):
    # force every hash equal: the answer must still come from comparing the strings
    import geocluster.ingest._distinct as mod

    monkeypatch.setattr(mod, "string_hashes", lambda v: np.zeros(len(v), dtype=np.uint64))
    assert mod.all_distinct(pa.array(["a", "b", "c"]))
    assert not mod.all_distinct(pa.array(["a", "b", "a"]))


def test_hashes_are_fnv1a_64():
    # FNV-1a 64-bit test vectors from the reference (Fowler/Noll/Vo, isthe.com/chongo/tech/comp/fnv)
    got = string_hashes(pa.array(["", "a", "foobar"]))
    assert got.tolist() == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]
