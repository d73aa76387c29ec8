"""Background jobs for long analyses: a thread pool plus an in-memory job table.

Results persist in the workspace as runs whatever happens to the job table; a job
only tracks state and progress for ``GET /jobs/{id}``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from geocluster.errors import GeoclusterError, JobNotFound

#: Finished jobs kept in memory (oldest are forgotten first).
MAX_JOBS = 1000


@dataclass
class Job:
    """State of one background job."""

    id: str
    kind: str
    state: str = "queued"  # queued | running | done | failed
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /jobs/{id}`` (``result`` when done, ``error`` when failed)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": round(float(self.progress), 4),
            "message": self.message,
            "created": self.created,
        }
        if self.state == "done":
            out["result"] = self.result
        if self.state == "failed":
            out["error"] = self.error
        return out


class JobManager:
    """Run callables ``fn(progress)`` in a thread pool and track them by id."""

    def __init__(self, max_workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="geocluster-job"
        )
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, fn: Callable[[Callable[[float, str], None]], Any]) -> Job:
        """Queue ``fn``; it receives a ``progress(fraction, message)`` callback."""
        job = Job(id=uuid.uuid4().hex, kind=kind)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_JOBS:
                self._jobs.pop(next(iter(self._jobs)))

        def progress(fraction: float, message: str = "") -> None:
            job.progress = min(1.0, max(0.0, float(fraction)))
            job.message = str(message)

        def run() -> None:
            job.state = "running"
            try:
                job.result = fn(progress)
            except GeoclusterError as exc:
                job.error = str(exc) or type(exc).__name__
                job.state = "failed"
                return
            except Exception:  # noqa: BLE001 - a job must never die silently
                import logging

                logging.getLogger("geocluster.api").exception("job %s failed", job.id)
                job.error = "internal error"
                job.state = "failed"
                return
            job.progress = 1.0
            job.state = "done"

        self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id`` (raises :class:`JobNotFound`)."""
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(
                f"no job {job_id!r} (jobs are kept in memory until the server restarts)"
            )
        return job

    def shutdown(self) -> None:
        """Stop taking jobs; queued ones are cancelled."""
        self._pool.shutdown(wait=False, cancel_futures=True)
