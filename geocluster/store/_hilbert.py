"""Hilbert-curve distance of integer grid coordinates, compiled (one pass, no temporaries).

The same algorithm as ``geopandas.tools.hilbert_curve._encode`` ("Fast Hilbert curve"
by threadlocalmutex.com, public domain, C++ at github.com/rawrunprotected/hilbert_curves),
written per element for numba: the NumPy version allocates some twenty 5M-element
temporaries and was ~6 % of a national ingest. ``tests/geocluster/test_store.py``
checks it equals geopandas' on random and edge-of-range grids.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Below this many cells the NumPy version is used (same values).
SMALL = 100_000


@njit(cache=True, inline="always")
def _interleave(x):
    x = (x | (x << np.uint32(8))) & np.uint32(0x00FF00FF)
    x = (x | (x << np.uint32(4))) & np.uint32(0x0F0F0F0F)
    x = (x | (x << np.uint32(2))) & np.uint32(0x33333333)
    x = (x | (x << np.uint32(1))) & np.uint32(0x55555555)
    return x


@njit(cache=True, parallel=True)
def _encode_kernel(level, xs, ys, out):
    shift_in = np.uint32(16 - level)
    shift_out = np.uint32(32 - 2 * level)
    m = np.uint32(0xFFFF)
    for i in prange(xs.shape[0]):
        x = np.uint32(xs[i]) << shift_in
        y = np.uint32(ys[i]) << shift_in
        a = x ^ y
        b = m ^ a
        c = m ^ (x | y)
        d = x & (y ^ m)
        A = a | (b >> np.uint32(1))
        B = (a >> np.uint32(1)) ^ a
        C = ((c >> np.uint32(1)) ^ (b & (d >> np.uint32(1)))) ^ c
        D = ((a & (c >> np.uint32(1))) ^ (d >> np.uint32(1))) ^ d
        for s in (np.uint32(2), np.uint32(4)):
            a, b, c, d = A, B, C, D
            A = (a & (a >> s)) ^ (b & (b >> s))
            B = (a & (b >> s)) ^ (b & ((a ^ b) >> s))
            C = C ^ ((a & (c >> s)) ^ (b & (d >> s)))
            D = D ^ ((b & (c >> s)) ^ ((a ^ b) & (d >> s)))
        a, b, c, d = A, B, C, D
        s = np.uint32(8)
        C = C ^ ((a & (c >> s)) ^ (b & (d >> s)))
        D = D ^ ((b & (c >> s)) ^ ((a ^ b) & (d >> s)))
        a = C ^ (C >> np.uint32(1))
        b = D ^ (D >> np.uint32(1))
        i0 = x ^ y
        i1 = b | (m ^ (i0 | a))
        out[i] = ((_interleave(i1) << np.uint32(1)) | _interleave(i0)) >> shift_out


def encode(level: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hilbert distance (uint32) of grid cells ``x``, ``y`` in ``0 .. 2**level - 1``."""
    if not 1 <= level <= 16:
        raise ValueError("Level out of range")
    xs = np.ascontiguousarray(x, dtype=np.uint32)
    ys = np.ascontiguousarray(y, dtype=np.uint32)
    if len(xs) < SMALL:
        # loading the compiled kernel costs more than encoding a small layer in NumPy
        from geopandas.tools.hilbert_curve import _encode

        return np.asarray(_encode(level, xs, ys), dtype=np.uint32)
    out = np.empty(len(xs), dtype=np.uint32)
    _encode_kernel(level, xs, ys, out)
    return out
