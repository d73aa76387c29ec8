"""Time dynamics of a firm register: founding-year series, growth, age structure, emergence.

- :func:`founding_series`: firms and employment by founding year per group (cluster or
  region), with the cumulative stock.
- :func:`growth`: compound annual growth of the stock between two years.
- :func:`age_structure`: firms per age bin per group.
- :func:`emergence`: re-detect clusters on the firms founded up to each year and report
  when each present-day cluster first passed the detection threshold.

A register is a snapshot of the firms alive when it was compiled: the founding years of
survivors, not of every firm that ever opened. Every series here is a *survivor* series
(firms that closed before the snapshot are missing), so growth is overstated for old
years; the docstrings say so where it matters.
"""

from geocluster.dynamics.emergence import Emergence, emergence
from geocluster.dynamics.founding import (
    AGE_BINS,
    age_structure,
    founding_series,
    growth,
)

__all__ = [
    "AGE_BINS",
    "Emergence",
    "age_structure",
    "emergence",
    "founding_series",
    "growth",
]
