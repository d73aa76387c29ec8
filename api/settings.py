"""Settings of the HTTP service, read from ``GEOCLUSTER_*`` environment variables.

One class per concern, each field with bounds (as tipg does). Nothing is built at import
time: :func:`api.app.create_app` takes a :class:`Settings` or builds one when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV = SettingsConfigDict(env_prefix="GEOCLUSTER_", extra="ignore")


class FeaturesSettings(BaseSettings):
    """OGC API Features: page sizes."""

    model_config = _ENV

    items_limit_default: int = Field(100, ge=1, le=100_000)
    items_limit_max: int = Field(10_000, ge=1, le=1_000_000)
    download_limit_max: int = Field(
        1_000_000,
        ge=1,
        le=100_000_000,
        description="features per file download (f=csv|gpkg|parquet); no limit given = all up to this",
    )


class TileSettings(BaseSettings):
    """Vector and raster tiles."""

    model_config = _ENV

    tile_extent: int = Field(4096, ge=256, le=16384, description="MVT extent (units per tile side)")
    tile_buffer: int = Field(
        64, ge=0, le=1024, description="MVT buffer around polygon and point tiles, in tile units"
    )
    tile_point_buffer: int = Field(
        384,
        ge=0,
        le=4096,
        description="MVT buffer around aggregated point tiles, in tile units (largest circle)",
    )
    tile_max_features: int = Field(
        5000,
        ge=1,
        le=200_000,
        description="individual points per tile; above it points are aggregated",
    )
    tile_grid_cells: int = Field(
        32, ge=1, le=512, description="aggregation grid cells per tile side (power of two)"
    )
    points_min_zoom: int = Field(
        12, ge=0, le=24, description="first zoom at which firm points are shown one by one"
    )
    tile_max_zoom: int = Field(22, ge=0, le=24)
    tile_warm_on_start: bool = Field(
        False,
        description="build the firm tile indexes in the background at start-up "
        "(geocluster serve turns it on)",
    )
    tile_cache_seconds: int = Field(
        60,
        ge=0,
        description="Cache-Control max-age of tiles of an unversioned name (it may move to a "
        "new version; clients revalidate with the ETag); fixed versions are immutable",
    )
    tile_cache_mb: float = Field(
        128.0, ge=0, le=65_536, description="in-process LRU of encoded tiles, per worker (MB)"
    )
    tile_pyramids: bool = Field(
        False,
        description="pre-build a PMTiles archive of each firms dataset version and run layer "
        "at zooms tile_pyramid_min_zoom..tile_pyramid_max_zoom as background jobs, on "
        "upload, on run completion and (datasets) at start-up "
        "(geocluster serve turns it on with the warmers)",
    )
    tile_pyramid_min_zoom: int = Field(0, ge=0, le=16)
    tile_pyramid_max_zoom: int = Field(
        10, ge=0, le=16, description="deepest zoom pre-built; deeper tiles are encoded on demand"
    )
    tile_postgis: Literal["auto", "always", "never"] = Field(
        "auto",
        description="on a PostGIS store, which vector tiles the database cuts (ST_AsMVT): "
        "auto = polygon and line layers (measured faster), point layers from the in-memory "
        "index; always = every layer whose disclosure rule allows it; never = none",
    )
    tile_debug_headers: bool = Field(
        False,
        description="add X-Tile-Source (archive|memory|encoded|postgis) and X-Tile-Worker headers",
    )
    raster_colormap: str = Field("viridis", description="rio-tiler colormap name for raster tiles")


class UploadSettings(BaseSettings):
    """Dataset uploads."""

    model_config = _ENV

    max_upload_mb: float = Field(200.0, gt=0, le=100_000)
    upload_chunk_bytes: int = Field(1 << 20, ge=1024, le=1 << 26)
    rejected_in_response: int = Field(
        100,
        ge=0,
        le=100_000,
        description="rejected rows listed in an upload's response; the rest are counted "
        "and served at /datasets/{id}/rejected",
    )


class DisclosureSettings(BaseSettings):
    """The disclosure policy (:class:`geocluster.disclosure.DisclosurePolicy`) knobs.

    Editors and admins get the policy as set here (permissive unless ``enforce``);
    viewers and anonymous callers always get it enforced, without firm points.
    """

    model_config = _ENV

    public_firm_points: bool = Field(
        True,
        description="serve individual firm points at high zoom to editors; when false "
        "firms are always aggregated, for everyone",
    )
    min_contributors: int = Field(
        3, ge=1, le=1000, description="firms behind a published cell, cluster or table row"
    )
    dominance_n: int = Field(
        2, ge=1, le=100, description="(n, k) dominance rule: the n largest firms of a cell ..."
    )
    dominance_k: float = Field(
        0.85, gt=0, le=1, description="... may hold at most this share of its employment"
    )
    p_percent: float = Field(
        0.10,
        ge=0,
        le=1,
        description="p%% rule: the rest of a cell beyond its two largest firms must be at "
        "least this share of the largest (0 turns the rule off)",
    )
    round_to: int | None = Field(
        None, ge=1, le=1000, description="round published counts to this multiple"
    )
    enforce: bool = Field(
        False, description="suppress (not only flag) cells under the rules for editors too"
    )
    public_zoom: int = Field(
        13,
        ge=0,
        le=20,
        description="Web-Mercator zoom of the fixed grid that firm points and cluster "
        "outlines of analysis results are published in below editor (13: cells of "
        "about 4.9 km at the equator)",
    )
    public_grid_max_zoom: int = Field(
        16,
        ge=0,
        le=24,
        description="finest Web-Mercator grid of the firm counts in tiles below editor "
        "(16: cells of about 600 m at the equator); deeper tiles show these cells",
    )
    bandwidth_floor_m: float = Field(
        1000.0,
        ge=0,
        le=1_000_000,
        description="smallest KDE bandwidth (metres) whose surface viewers may see",
    )
    hull_smoothing_m: float = Field(
        250.0,
        ge=0,
        le=100_000,
        description="buffer (metres) that moves cluster hull edges off firm locations "
        "when firm points are not published",
    )

    def policy(self):
        """The :class:`~geocluster.disclosure.DisclosurePolicy` these settings describe."""
        from geocluster.disclosure import DisclosurePolicy

        return DisclosurePolicy(
            min_contributors=self.min_contributors,
            dominance_k=self.dominance_n,  # the policy names (k, p) what SDC calls (n, k)
            dominance_p=self.dominance_k,
            round_to=self.round_to,
            firm_points=self.public_firm_points,
            enforce=self.enforce,
            hull_smoothing_m=self.hull_smoothing_m,
            p_percent=self.p_percent if self.p_percent > 0 else None,
            public_zoom=self.public_zoom,
            bandwidth_floor_m=self.bandwidth_floor_m,
        )


class SecuritySettings(BaseSettings):
    """Principals, OIDC, trusted hosts, request limits and the audit log."""

    model_config = _ENV

    oidc_jwks_url: str | None = Field(
        None, description="JWKS URL of the OIDC provider (with issuer and audience: OIDC on)"
    )
    oidc_issuer: str | None = Field(None, description="required `iss` of OIDC tokens")
    oidc_audience: str | None = Field(None, description="required `aud` of OIDC tokens")
    oidc_role_claim: str = Field("role", description="claim holding viewer|editor|admin")
    trusted_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1", "testserver"],
        description="Host header values served (400 otherwise); '*' turns the check off",
    )
    docs_enabled: bool = Field(True, description="serve /docs and /openapi.json")
    max_json_mb: float = Field(
        2.0, gt=0, le=1024, description="largest JSON (or other non-upload) request body"
    )
    rate_limit_per_minute: int = Field(
        600,
        ge=1,
        le=1_000_000,
        description="requests in any minute per API key or token (anonymous: per client IP)",
    )
    rate_limit_burst: int = Field(
        120,
        ge=1,
        le=1_000_000,
        description="requests in any second per key (a map view fetches ~100 tiles at once)",
    )
    rate_limit_storage_uri: str = Field(
        "memory://",
        pattern=r"^(memory|redis|rediss|redis\+sentinel|redis\+cluster|memcached|mongodb|valkey)://",
        description="slowapi storage of the rate-limit counters: memory:// (per worker "
        "process) or a shared redis:// / memcached:// store for several workers",
    )


class Settings(BaseSettings):
    """Everything the app needs; ``Settings(workspace=...)`` is enough for tests."""

    model_config = _ENV

    workspace: Path = Field(Path("workspace"), description="workspace directory")
    store: str | None = Field(
        None,
        description="where datasets and runs live instead of the workspace directory: a "
        "postgresql://user@host/db[?schema=name] URL (PostGIS store); rasters stay in "
        "the workspace directory",
    )
    store_cache_mb: float = Field(
        512,
        ge=0,
        le=1_000_000,
        description="in-memory cache of hot columns of immutable layer versions (MB, per "
        "worker); a warm server answers one sector's clusters without touching disk",
    )
    engine: str = Field(
        "local",
        pattern="^(local|dask)$",
        description="analysis engine: local (in process) or dask (a Dask cluster)",
    )
    dask_scheduler: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); none starts a LocalCluster"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    cors_origins: list[str] = Field(default_factory=list)
    job_workers: int = Field(2, ge=1, le=64, description="analysis jobs running at once")
    job_queue_max: int = Field(
        32, ge=0, le=10_000, description="jobs waiting at most; past it a submission gets 429"
    )
    warm_on_start: bool = Field(
        False,
        description="compile the numba kernels of clustering and spatial statistics in the "
        "background at start-up, so the first request does not wait ~20 s for esda "
        "(geocluster serve turns it on)",
    )
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    tiles: TileSettings = Field(default_factory=TileSettings)
    upload: UploadSettings = Field(default_factory=UploadSettings)
    disclosure: DisclosureSettings = Field(default_factory=DisclosureSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)


def settings_error(exc: ValidationError) -> Exception:
    """A bad setting as one line naming its environment variable (for exit 2).

    Returns a :class:`geocluster.errors.InvalidInput` the CLI prints as
    ``geocluster: error: …``; the value itself is not echoed (it may be a secret).
    """
    from geocluster.errors import InvalidInput

    parts = []
    for err in exc.errors()[:3]:
        field = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int))
        name = field.rsplit(".", 1)[-1] if field else "?"
        parts.append(f"GEOCLUSTER_{name.upper()}: {err.get('msg', 'invalid')}")
    more = f" (and {len(exc.errors()) - 3} more)" if len(exc.errors()) > 3 else ""
    return InvalidInput("bad setting " + "; ".join(parts) + more)
