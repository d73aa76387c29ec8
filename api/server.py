"""Run the API under uvicorn with several worker processes (``geocluster serve --workers``).

Store v2 is safe across processes (immutable layers, an atomic catalog), so workers
share nothing but the workspace folder: each opens the workspace and builds its tile
indexes lazily (start-up stays fast); the pre-built PMTiles archives are memory-mapped
by all of them, built once by whichever worker takes the archive's lock first.

uvicorn's multi-worker mode imports the app in each child, so the settings travel in
one environment variable (:data:`SETTINGS_ENV`, JSON) and :func:`factory` rebuilds them.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from api.settings import Settings, TileSettings

#: Environment variable carrying the parent's :class:`Settings` (JSON) to the workers.
SETTINGS_ENV = "GEOCLUSTER_SETTINGS_JSON"


def default_workers() -> int:
    """Cores this process may run on (the default of ``--workers``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def factory() -> FastAPI:
    """The app of one worker, from :data:`SETTINGS_ENV` (else ``GEOCLUSTER_*`` variables)."""
    from api.app import create_app

    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings.model_validate_json(raw) if raw else Settings()
    return create_app(settings)


def settings_for_serve(
    workspace: str | os.PathLike[str], host: str | None = None, port: int | None = None
) -> Settings:
    """The settings ``geocluster serve`` runs with.

    As :func:`api.app.serve`: the tile-index and kernel warmers are on unless
    ``GEOCLUSTER_TILE_WARM_ON_START`` / ``GEOCLUSTER_WARM_ON_START`` say otherwise, and
    so are the pre-built pyramids unless ``GEOCLUSTER_TILE_PYRAMIDS`` is set.
    """
    from pydantic import ValidationError

    from api.settings import settings_error

    try:  # a bad GEOCLUSTER_* value: one line and exit 2, not a traceback
        settings = _settings(workspace, host, port)
        settings.disclosure.policy()  # and the policy's own checks
    except ValidationError as exc:
        raise settings_error(exc) from None
    return settings


def _settings(workspace, host: str | None, port: int | None) -> Settings:
    overrides: dict = {"workspace": Path(workspace)}
    tile_updates = {}
    if "GEOCLUSTER_TILE_WARM_ON_START" not in os.environ:
        tile_updates["tile_warm_on_start"] = True
    if "GEOCLUSTER_TILE_PYRAMIDS" not in os.environ:
        tile_updates["tile_pyramids"] = True
    if tile_updates:
        overrides["tiles"] = TileSettings().model_copy(update=tile_updates)
    if "GEOCLUSTER_WARM_ON_START" not in os.environ:
        overrides["warm_on_start"] = True
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    return Settings(**overrides)


def serve(settings: Settings, workers: int | None = None, *, log_level: str = "info") -> None:
    """Serve the API for ``settings.workspace`` on ``settings.host:port`` (blocks).

    Parameters
    ----------
    settings : Settings
        Passed whole to every worker.
    workers : int, optional
        Worker processes; default :func:`default_workers`. With 1 the app runs in this
        process. SIGTERM or SIGINT stops the workers and returns.
    log_level : str
        uvicorn log level.
    """
    import uvicorn

    n = default_workers() if workers is None else int(workers)
    if n < 1:
        from geocluster.errors import InvalidInput

        raise InvalidInput(f"workers must be at least 1, got {workers!r}")
    # children may start in another directory: give them an absolute workspace
    settings = settings.model_copy(update={"workspace": Path(settings.workspace).resolve()})
    if n == 1:
        from api.app import create_app

        uvicorn.run(
            create_app(settings), host=settings.host, port=settings.port, log_level=log_level
        )
        return
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run(
        "api.server:factory",
        factory=True,
        workers=n,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
    )


__all__ = ["SETTINGS_ENV", "default_workers", "factory", "serve", "settings_for_serve"]
