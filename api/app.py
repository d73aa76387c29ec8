"""The FastAPI application factory.

``create_app(Settings(workspace=...))`` builds an app bound to one workspace; nothing
is built at import time. ``serve`` runs it under uvicorn (``geocluster serve``).
"""

from __future__ import annotations

import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.auth import EdgeMiddleware, audit_router
from api.errors import add_exception_handlers, document_errors
from api.jobs import AnalysisActivity, JobManager
from api.settings import Settings
from api.tiling import CollectionResolver, IndexCache
from api.uploads import UploadLimitMiddleware, sweep_upload_temps

STATIC_DIR = Path(__file__).resolve().parent.parent / "maps" / "static"

DESCRIPTION = """
Find industrial and territorial clusters of firms, measure regional specialisation and
inequality, and serve them as OGC API Features, vector/raster tiles and a web map.

* **Datasets**: upload firms, territorial assets, boundaries and indicators (`POST /datasets`).
* **Features**: every dataset and analysis run is an OGC API Features collection.
* **Tiles**: MVT per collection and PNG tiles for rasters (KDE surfaces).
* **Analyses**: clusters, specialisation, hotspots, inequality, assets… (`async: true` runs
  as a background job, see `/jobs/{id}`).
* **Map**: `/map`, a Leaflet map that works offline.
"""


class _WorkspaceHolder:
    """Open the workspace once, on first use, from any thread."""

    def __init__(
        self,
        path: Path,
        store_url: str | None = None,
        *,
        cache_mb: float = 0,
        engine: str = "local",
        scheduler: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.store_url = store_url
        self.cache_mb = cache_mb
        self.engine = (engine, scheduler)
        self._ws = None
        self._lock = threading.Lock()

    @property
    def opened(self):
        """The workspace if already open, else None (never blocks)."""
        return self._ws

    def __call__(self):
        if self._ws is None:
            with self._lock:
                if self._ws is None:
                    from geocluster.workspace import Workspace

                    ws = Workspace(self.path, store_url=self.store_url, cache_mb=self.cache_mb)
                    ws.use_engine(*self.engine)
                    self._ws = ws
        return self._ws


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the geocluster API for one workspace.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to ``Settings()`` read from ``GEOCLUSTER_*`` environment variables.

    Returns
    -------
    FastAPI
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        sweep_upload_temps()  # what a killed earlier process left in the temp dir
        # jobs a killed or restarted server left queued/running read "failed", with why
        app.state.get_workspace().fail_interrupted_jobs()
        _announce_auth(app)
        if settings.tiles.tile_warm_on_start:
            from api.routers.tiles import warm_indexes

            threading.Thread(
                target=warm_indexes, args=(app,), name="geocluster-warm", daemon=True
            ).start()
        if settings.warm_on_start:
            threading.Thread(target=_warm_kernels, name="geocluster-jit", daemon=True).start()
        yield
        app.state.jobs.shutdown()

    app = FastAPI(
        title="geocluster",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from the vendored Swagger UI (no CDN)
        redoc_url=None,
        openapi_url="/openapi.json" if settings.security.docs_enabled else None,
        openapi_tags=[
            {"name": "service", "description": "Health and OGC landing page"},
            {"name": "datasets", "description": "Upload and manage datasets"},
            {"name": "rasters", "description": "Registered rasters and KDE surfaces"},
            {"name": "features", "description": "OGC API - Features"},
            {"name": "tiles", "description": "Vector (MVT) and raster (PNG) tiles"},
            {"name": "analyses", "description": "Analyses; results persist as runs"},
            {"name": "regions", "description": "Region profiles, comparison and peers"},
            {"name": "runs", "description": "Analysis runs and background jobs"},
            {"name": "map", "description": "The web map"},
        ],
    )
    app.state.settings = settings
    app.state.get_workspace = _WorkspaceHolder(
        settings.workspace,
        settings.store,
        cache_mb=settings.store_cache_mb,
        engine=settings.engine,
        scheduler=settings.dask_scheduler,
    )
    app.state.index_cache = IndexCache()
    app.state.collections = CollectionResolver()
    app.state.jobs = JobManager(
        app.state.get_workspace,
        max_workers=settings.job_workers,
        max_queued=settings.job_queue_max,
    )
    app.state.policy = _policy(settings)

    add_exception_handlers(app)
    # added innermost first: hosts are checked before anything, CORS answers preflights
    # (and decorates 401s) before the edge, the edge runs before the upload cap
    app.add_middleware(
        UploadLimitMiddleware, max_bytes=int(settings.upload.max_upload_mb * 1024 * 1024)
    )
    app.add_middleware(AnalysisActivity, jobs=app.state.jobs)
    app.add_middleware(EdgeMiddleware, fastapi_app=app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "OGC-NumberMatched", "OGC-NumberReturned", "Retry-After"],
        )
    hosts = _trusted_hosts(settings)
    if "*" not in hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    if settings.security.docs_enabled:

        @app.get("/docs", include_in_schema=False)
        def swagger_ui() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=app.openapi_url,
                title="geocluster API",
                swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                swagger_css_url="/static/swagger-ui/swagger-ui.css",
                swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
            )

    from api.routers import (
        analyses,
        basemap,
        datasets,
        features,
        groups,
        maps,
        me,
        rasters,
        regions,
        runs,
        sectors,
        tiles,
    )

    app.include_router(features.landing_router)
    app.include_router(datasets.router)
    app.include_router(rasters.router)
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(analyses.router)
    app.include_router(regions.router)
    app.include_router(runs.router)
    app.include_router(maps.router)
    app.include_router(basemap.router)
    app.include_router(sectors.router)
    app.include_router(groups.router)
    app.include_router(me.router)
    document_errors(app)
    app.include_router(audit_router)
    return app


def _trusted_hosts(settings: Settings) -> list[str]:
    """The configured Host values plus the bind address itself (if a specific one)."""
    hosts = list(settings.security.trusted_hosts)
    if settings.host not in ("0.0.0.0", "::", "") and settings.host not in hosts:
        hosts.append(settings.host)
    return hosts


def _announce_auth(app: FastAPI) -> None:
    """Say at start-up whether the server is open (single user) or needs keys."""
    import logging

    from api.auth import is_open

    mode = "open single-user mode (loopback, no API keys)" if is_open(app) else "API keys"
    logging.getLogger("uvicorn.error").info("geocluster auth: %s", mode)


def _policy(settings: Settings):
    """The workspace's disclosure policy, from ``GEOCLUSTER_*`` (DisclosureSettings)."""
    return settings.disclosure.policy()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("geocluster")
    except Exception:  # noqa: BLE001 - not installed: running from a checkout
        return "0.1.0"


def _warm_kernels() -> None:
    """Compile (or load from numba's cache) the kernels behind the analyses."""
    import logging
    import time

    from geocluster.clustering import warm_up as warm_clustering
    from geocluster.spatialstats import warm_up as warm_spatialstats

    started = time.perf_counter()
    warm_clustering()
    warm_spatialstats()
    logging.getLogger("uvicorn.error").info(
        "analysis kernels ready in %.1f s", time.perf_counter() - started
    )


def serve(
    workspace: str | os.PathLike[str], host: str | None = None, port: int | None = None
) -> None:
    """Serve the API and the map for ``workspace`` under uvicorn (blocks).

    ``host``/``port`` default to ``GEOCLUSTER_HOST``/``GEOCLUSTER_PORT`` (127.0.0.1:8000).
    """
    import uvicorn

    from api.settings import TileSettings

    overrides: dict = {"workspace": Path(workspace)}
    env_tiles = TileSettings()
    if "GEOCLUSTER_TILE_WARM_ON_START" not in os.environ:
        overrides["tiles"] = env_tiles.model_copy(update={"tile_warm_on_start": True})
    if "GEOCLUSTER_WARM_ON_START" not in os.environ:
        overrides["warm_on_start"] = True
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)
    from geocluster.auth import check_serve_allowed
    from geocluster.workspace import Workspace

    # a non-loopback bind of a workspace without keys would publish it to the network
    check_serve_allowed(settings.host, Workspace(settings.workspace).catalog)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
