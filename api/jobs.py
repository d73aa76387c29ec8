"""Background jobs for long analyses: a bounded thread pool, jobs recorded in the catalog.

Every job is a row of the workspace catalog (``gc_jobs``), so ``GET /jobs/{id}`` answers
from any worker process and after a restart: a job whose process died while it was
queued or running is marked ``failed`` with the reason when the next server starts
(:meth:`geocluster.workspace.Workspace.fail_interrupted_jobs`), never a silent 404.

The pool runs ``max_workers`` jobs at once; at most ``max_queued`` wait behind them, and
past that a submission is refused (HTTP 429) instead of piling up work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geocluster.errors import GeoclusterError


class TooManyJobs(GeoclusterError):
    """The analysis queue is full; the client should retry later (HTTP 429)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Job:
    """What a submission returns: the job's id and first state."""

    id: str
    kind: str
    state: str


def job_dict(row: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a catalog job row (``GET /jobs/{id}``)."""
    out: dict[str, Any] = {
        "id": row["id"],
        "kind": row["kind"],
        "state": row["state"],
        "progress": round(float(row.get("progress") or 0.0), 4),
        "message": row.get("message") or "",
        "created": row["created"],
        "started": row.get("started"),
        "finished": row.get("finished"),
    }
    if row["state"] == "done":
        out["result"] = row.get("result")
    if row["state"] == "failed":
        out["error"] = row.get("error") or "failed"
    return out


class JobManager:
    """Run callables ``fn(progress)`` in a thread pool; their state lives in the catalog.

    Parameters
    ----------
    get_workspace : callable
        Returns the app's workspace (opened lazily).
    max_workers : int
        Jobs running at once.
    max_queued : int
        Jobs waiting at most; one more is refused with :class:`TooManyJobs`.
    """

    #: Seconds between two progress writes of one job (the last one always lands).
    PROGRESS_EVERY_S = 0.5

    #: Background jobs (tile pyramids) waiting at most, behind the one running.
    MAX_BACKGROUND_QUEUED = 256

    def __init__(
        self, get_workspace: Callable[[], Any], max_workers: int = 2, max_queued: int = 32
    ) -> None:
        self._get_workspace = get_workspace
        self.max_workers = max_workers
        self.max_queued = max_queued
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="geocluster-job"
        )
        # upkeep the server gives itself (tile pyramids) runs one at a time in its own
        # lane: it neither waits behind analyses nor fills their queue
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geocluster-bg")
        # analyses in flight (requests and pool jobs) and when the last one ended: upkeep
        # waits for a quiet moment (see yield_to_analyses)
        self._analyses = 0
        self._last_analysis = 0.0
        self._pending = 0
        self._pending_background = 0
        self._queued: set[str] = set()  # submitted here, not started yet
        self._lock = threading.Lock()

    #: Upkeep starts, and goes on after each step, only once no analysis has run for
    #: this long (seconds) ...
    QUIET_S = 1.0
    #: ... but never waits longer than this at one step (no starvation under load).
    MAX_YIELD_S = 30.0

    def analysis_started(self) -> None:
        """An analysis began (a request to ``/analyses`` or a queued analysis job)."""
        with self._lock:
            self._analyses += 1

    def analysis_ended(self) -> None:
        """An analysis ended; upkeep may start :attr:`QUIET_S` seconds after the last."""
        with self._lock:
            self._analyses = max(0, self._analyses - 1)
            self._last_analysis = time.monotonic()

    def yield_to_analyses(self, stop: Callable[[], bool] | None = None) -> float:
        """Block while an analysis runs or ran in the last :attr:`QUIET_S` seconds.

        Called by upkeep (tile pyramids, the start-up tile indexes) before it starts and
        between its steps: on a 2-core server a pyramid build took half the CPU from the
        interactive request that came after the run it was built for. ``stop()`` true
        ends the wait early (someone waits for what the upkeep builds). Returns the
        seconds waited.
        """
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.MAX_YIELD_S:
            with self._lock:
                busy = self._analyses > 0 or (time.monotonic() - self._last_analysis < self.QUIET_S)
            if not busy or (stop is not None and stop()):
                break
            time.sleep(0.05)
        return time.monotonic() - t0

    def _reserve(self, background: bool) -> None:
        with self._lock:
            if background:
                if self._pending_background >= 1 + self.MAX_BACKGROUND_QUEUED:
                    raise TooManyJobs("the background job queue is full; retry later")
                self._pending_background += 1
                return
            if self._pending >= self.max_workers + self.max_queued:
                raise TooManyJobs(
                    f"the analysis queue is full ({self.max_workers} running, "
                    f"{self.max_queued} waiting); retry later"
                )
            self._pending += 1

    def _release(self, background: bool) -> None:
        with self._lock:
            if background:
                self._pending_background -= 1
            else:
                self._pending -= 1

    def submit(
        self,
        kind: str,
        fn: Callable[[Callable[[float, str], None]], Any],
        *,
        params: dict[str, Any] | None = None,
        owner: str | None = None,
        unique_key: str | None = None,
        background: bool = False,
    ) -> Job:
        """Queue ``fn``; it receives a ``progress(fraction, message)`` callback.

        Parameters
        ----------
        unique_key : str, optional
            At most one queued or running job of ``kind`` per key in the workspace:
            when one exists (in any worker process whose process is alive), it is
            returned instead and ``fn`` is not queued. Checked and recorded in one
            catalog write transaction, so two workers cannot both queue it.
        background : bool
            Run in the one-thread background lane (server upkeep such as tile
            pyramids) instead of the analysis pool.
        """
        self._reserve(background)
        ws = self._get_workspace()
        try:
            if unique_key is None:
                row = ws.create_job(kind, params=params, owner=owner)
            else:
                params = {**(params or {}), "key": unique_key}
                with ws.catalog.transaction() as con:
                    existing = _live_job(ws, kind, unique_key, con)
                    if existing is not None:
                        self._release(background)
                        return Job(existing["id"], kind, existing["state"])
                    row = ws.create_job(kind, params=params, owner=owner)  # joins the tx
        except BaseException:
            self._release(background)
            raise
        job_id = row["id"]
        with self._lock:
            self._queued.add(job_id)
        last = [0.0]

        def progress(fraction: float, message: str = "") -> None:
            if background:
                self.yield_to_analyses()
            now = time.monotonic()
            if now - last[0] < self.PROGRESS_EVERY_S:
                return
            last[0] = now
            ws.update_job(
                job_id, progress=min(1.0, max(0.0, float(fraction))), message=str(message)[:300]
            )

        def run() -> None:
            with self._lock:
                self._queued.discard(job_id)
            if background:
                self.yield_to_analyses()
            else:
                self.analysis_started()
            try:
                ws.update_job(job_id, state="running", started=_now())
                result = fn(progress)
            except GeoclusterError as exc:
                ws.update_job(
                    job_id, state="failed", error=str(exc) or type(exc).__name__, finished=_now()
                )
            except Exception:  # noqa: BLE001 - a job must never die silently
                import logging

                logging.getLogger("geocluster.api").exception("job %s failed", job_id)
                ws.update_job(job_id, state="failed", error="internal error", finished=_now())
            else:
                ws.update_job(job_id, state="done", progress=1.0, result=result, finished=_now())
            finally:
                if not background:
                    self.analysis_ended()
                self._release(background)

        (self._background if background else self._pool).submit(run)
        return Job(job_id, kind, "queued")

    def get(self, job_id: str) -> dict[str, Any]:
        """The job ``job_id`` in its public shape (raises :class:`JobNotFound`)."""
        return job_dict(self._get_workspace().job(job_id))

    def shutdown(self) -> None:
        """Stop taking jobs; queued ones are cancelled and recorded as failed."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._background.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            cancelled, self._queued = sorted(self._queued), set()
        if not cancelled:
            return
        try:
            ws = self._get_workspace()
            for job_id in cancelled:
                ws.update_job(
                    job_id,
                    state="failed",
                    error="cancelled: the server stopped before the job started",
                    finished=_now(),
                )
        except Exception:  # noqa: BLE001 - the next start marks them (fail_interrupted_jobs)
            pass


def _live_job(ws, kind: str, key: str, con) -> dict[str, Any] | None:
    """A queued or running job of ``kind`` with ``key`` whose process still lives."""
    from geocluster.store.catalog import HOST, pid_alive

    for state in ("running", "queued"):
        for row in ws.catalog.select("gc_jobs", con=con, kind=kind, state=state):
            if (row.get("params") or {}).get("key") != key:
                continue
            if row.get("host") != HOST or pid_alive(int(row.get("pid") or 0)):
                return row
    return None


class AnalysisActivity:
    """ASGI middleware: tells the job manager when ``/analyses`` requests run.

    Synchronous analyses run in the request; upkeep (tile pyramids) waits for them
    (:meth:`JobManager.yield_to_analyses`).
    """

    def __init__(self, app, jobs: JobManager) -> None:
        self.app = app
        self.jobs = jobs

    async def __call__(self, scope, receive, send):
        """Count the request while it runs when it is an analysis."""
        if scope["type"] != "http" or not scope["path"].startswith("/analyses"):
            await self.app(scope, receive, send)
            return
        self.jobs.analysis_started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.jobs.analysis_ended()
