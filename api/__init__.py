"""geocluster HTTP API (FastAPI).

``api.app.create_app(Settings(workspace=...))`` builds the app; ``api.app.serve`` runs it
under uvicorn (``geocluster serve``). Layout:

- ``settings.py``: ``GEOCLUSTER_*`` settings, one class per concern, with bounds.
- ``errors.py``: domain errors -> status codes (``DEFAULT_STATUS_CODES``), 422 for request
  validation, 500 ``{"detail": "internal error"}`` for anything unexpected.
- ``deps.py``: workspace and query-parameter dependencies (bbox, limit, offset, f).
- ``uploads.py``: streamed uploads with a size limit (and an ASGI guard before parsing).
- ``mvt.py`` / ``tiling.py``: vector-tile encoding and per-collection tile indexes.
- ``jobs.py``: background jobs for ``"async": true`` analyses.
- ``routers/``: datasets, rasters, features (OGC API), tiles, analyses, regions, runs, map.

Routers only parse input, call one :mod:`geocluster` function and serialise the result,
passing every published output through :mod:`geocluster.disclosure`.
"""
