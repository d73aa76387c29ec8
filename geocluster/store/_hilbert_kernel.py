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


@njit(cache=True, parallel=True, nogil=True)
def encode_kernel(level, xs, ys, out):
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
