"""Vectorised bookkeeping of rejected rows.

Rules are applied as boolean masks over the whole frame; each row keeps the first
rule it failed, so the rejection report has one entry per dropped row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from geocluster.ingest._options import Rejection


class Rejector:
    """Collect rejections for a frame of ``n`` rows.

    Parameters
    ----------
    source_rows
        1-based source row number of each frame row, shape (n,).
    """

    def __init__(self, source_rows: np.ndarray) -> None:
        self.source_rows = np.asarray(source_rows, dtype=np.int64)
        self.alive = np.ones(len(self.source_rows), dtype=bool)
        self._parts: list[tuple[np.ndarray, str | None, Sequence[str] | str]] = []

    def reject(
        self,
        mask: np.ndarray,
        column: str | None,
        reason: str | Callable[[np.ndarray], Sequence[str]],
    ) -> int:
        """Reject the live rows where ``mask`` is true.

        Parameters
        ----------
        mask
            Boolean array of shape (n,).
        column
            Source column at fault (``None`` for the whole row).
        reason
            A message, or a function of the positions being rejected returning one
            message per position (called only when there are any).

        Returns
        -------
        int
            How many rows this call rejected.
        """
        hit = np.asarray(mask, dtype=bool) & self.alive
        if not hit.any():
            return 0
        pos = np.flatnonzero(hit)
        reasons = reason(pos) if callable(reason) else reason
        self._parts.append((pos, column, reasons))
        self.alive[pos] = False
        return len(pos)

    def rejections(self) -> list[Rejection]:
        """Every rejection, sorted by source row."""
        out: list[Rejection] = []
        for pos, column, reasons in self._parts:
            rows = self.source_rows[pos]
            if isinstance(reasons, str):
                out.extend(Rejection(int(r), column, reasons) for r in rows)
            else:
                out.extend(Rejection(int(r), column, str(m)) for r, m in zip(rows, reasons))
        out.sort(key=lambda r: r.row)
        return out
