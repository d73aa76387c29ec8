"""Ingestion: a user file -> the canonical, validated frame of its kind.

>>> from geocluster.ingest import IngestOptions, prepare
>>> prepared = prepare("firms", "firms.csv", IngestOptions(sector_scheme="nace2"))  # doctest: +SKIP

:func:`prepare` reads the file through :mod:`geocluster.io`, maps its columns to the
canonical schema of the kind (ARCHITECTURE.md, "Data model"; detection in
:mod:`geocluster.ingest._columns`, explicit options win), builds and validates the
geometry, reprojects to EPSG:4326, picks the metric working CRS and validates every
row. Rows that fail are dropped and reported as :class:`Rejection` (row, column,
reason); problems with the file as a whole raise :class:`~geocluster.errors.UnusableFile`
subclasses. Nothing is written: storing is the workspace's job.
"""

from geocluster.ingest._options import IngestOptions, Prepared, Rejection
from geocluster.ingest._prepare import KINDS, prepare

__all__ = ["KINDS", "IngestOptions", "Prepared", "Rejection", "prepare"]
