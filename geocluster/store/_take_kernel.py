"""Compiled gather of variable-width Arrow columns (imports numba).

Arrow's ``take`` of a 5M-row string column (firm ids) in a new row order copies one
value at a time with capacity and bounds checks: about a second, the largest part of
writing a national register's per-firm labels. Here the new offsets are a cumulative
sum of the gathered lengths and the bytes are copied value by value, without the GIL
(a clustering runs beside it). Used by
:func:`geocluster.store.geoparquet.take_rows` for large columns without nulls;
``tests/geocluster/test_store.py`` checks it equals ``pyarrow.compute.take``.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def gathered_offsets(offsets, order, out):
    """``out[i + 1] = out[i] + length of value order[i]`` (``out[0] = 0``)."""
    total = 0
    out[0] = 0
    for i in range(order.shape[0]):
        j = order[i]
        total += offsets[j + 1] - offsets[j]
        out[i + 1] = total


@njit(cache=True, nogil=True)
def gather_bytes(offsets, data, order, new_offsets, out):
    """Copy value ``order[i]``'s bytes to ``out[new_offsets[i]:new_offsets[i + 1]]``."""
    for i in range(order.shape[0]):
        j = order[i]
        start = offsets[j]
        dst = new_offsets[i]
        for k in range(offsets[j + 1] - start):
            out[dst + k] = data[start + k]
