"""The compiled Hilbert kernel of :mod:`geocluster.store._hilbert` (imports numba).

A module of its own so that writing a small layer (a run's 32 regions) imports no numba:
only :func:`geocluster.store._hilbert.encode` on a large layer loads this.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _interleave(x):
    x = (x | (x << np.uint32(8))) & np.uint32(0x00FF00FF)
    x = (x | (x << np.uint32(4))) & np.uint32(0x0F0F0F0F)
    x = (x | (x << np.uint32(2))) & np.uint32(0x33333333)
    x = (x | (x << np.uint32(1))) & np.uint32(0x55555555)
    return x


@njit(cache=True, inline="always")
def _distance(xi, yi, shift_in, shift_out):
    m = np.uint32(0xFFFF)
    x = np.uint32(xi) << shift_in
    y = np.uint32(yi) << shift_in
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
    return ((_interleave(i1) << np.uint32(1)) | _interleave(i0)) >> shift_out


@njit(cache=True, parallel=True, nogil=True)
def encode_kernel(level, xs, ys, out):
    shift_in = np.uint32(16 - level)
    shift_out = np.uint32(32 - 2 * level)
    for i in prange(xs.shape[0]):
        out[i] = _distance(xs[i], ys[i], shift_in, shift_out)


@njit(cache=True, inline="always")
def _cell(v, half, n):
    # np.clip(np.nan_to_num(v, nan=0, posinf=half, neginf=-half), -half, half), then
    # np.clip((v + half) / (2 * half) * n, 0, n).astype(np.uint32): the same operations
    if v != v:
        v = 0.0
    elif v > half:
        v = half
    elif v < -half:
        v = -half
    f = (v + half) / (2.0 * half) * n
    if f < 0.0:
        f = 0.0
    elif f > n:
        f = n
    return np.uint32(f)


@njit(cache=True, parallel=True, nogil=True)
def lonlat_kernel(level, lon, lat, out):
    """Hilbert distance of lon/lat on the world grid of ``2**level`` cells per axis."""
    shift_in = np.uint32(16 - level)
    shift_out = np.uint32(32 - 2 * level)
    n = float((1 << level) - 1)
    for i in prange(lon.shape[0]):
        out[i] = _distance(_cell(lon[i], 180.0, n), _cell(lat[i], 90.0, n), shift_in, shift_out)
