"""Stream an uploaded file to a private temp directory, with a size limit.

Each upload gets its own directory made by the server (``mkdtemp``: random name,
mode 0700) under which the file has the client's base name reduced to
``[A-Za-z0-9._-]`` (readers need its extension; the catalog keeps it as the source).
The directory is removed when the request ends, whether it succeeded or failed, and
:func:`sweep_upload_temps` removes what a killed process left behind. Errors raised
while the upload is read are re-raised with server paths removed and details capped.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import Request, UploadFile

from api.errors import UploadTooLarge
from api.settings import Settings
from geocluster.errors import GeoclusterError, UnusableFile

# Word characters of any script are kept, so the dataset id made from the upload's
# name is the one the CLI makes from the same file name (workspace.slugify): 数据.csv
# is dataset 数据 on both edges.
_SAFE = re.compile(r"[^\w.\-]+")
#: Prefixes of the temp directories uploads and zip extraction create.
UPLOAD_TEMP_PREFIXES = ("geocluster-upload-", "geocluster-zip-")
#: Longest message an upload error may carry.
MAX_MESSAGE = 600


def safe_filename(filename: str | None, default: str = "upload") -> str:
    """The base name of an uploaded file, without directories or odd characters.

    The extension is kept: readers choose the format from it.
    """
    base = Path(str(filename or "").replace("\\", "/")).name
    base = _SAFE.sub("_", unicodedata.normalize("NFKC", base)).lstrip(".")
    return base[:128] or default


def check_content_length(request: Request, settings: Settings) -> None:
    """Refuse a request whose declared size is already over the limit (413)."""
    limit = int(settings.upload.max_upload_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise UploadTooLarge(
            f"upload is {int(declared) / 1e6:.1f} MB, over the limit of "
            f"{settings.upload.max_upload_mb:g} MB (GEOCLUSTER_MAX_UPLOAD_MB)"
        )


@contextmanager
def saved_upload(upload: UploadFile, settings: Settings) -> Iterator[Path]:
    """Copy ``upload`` in chunks to ``<tmpdir>/<original name>``; yield the path.

    Raises
    ------
    FileTooLarge
        When the stream passes ``max_upload_mb``; the partial copy is removed.
    UnusableFile
        When the upload is empty.
    """
    limit = int(settings.upload.max_upload_mb * 1024 * 1024)
    chunk = settings.upload.upload_chunk_bytes
    # the pid in the name lets the next start remove it at once if this process dies
    tmpdir = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_TEMP_PREFIXES[0]}{os.getpid()}-"))
    server_paths = (tmpdir, Path(tempfile.gettempdir()), Path(settings.workspace).resolve())
    try:
        target = tmpdir / safe_filename(upload.filename)
        written = 0
        with open(target, "wb") as out:
            while True:
                block = upload.file.read(chunk)
                if not block:
                    break
                written += len(block)
                if written > limit:
                    raise UploadTooLarge(
                        f"upload is over the limit of {settings.upload.max_upload_mb:g} MB "
                        "(GEOCLUSTER_MAX_UPLOAD_MB)"
                    )
                out.write(block)
        if written == 0:
            raise UnusableFile(f"the uploaded file {target.name!r} is empty (0 bytes)")
        try:
            yield target
        except GeoclusterError as exc:
            clean = public_message(exc, paths=(target, *server_paths))
            if clean == str(exc):
                raise
            raise type(exc)(clean) from exc
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def public_message(exc: BaseException, *, paths: tuple[object, ...] = ()) -> str:
    """The message of ``exc`` fit for a client: one line, no server path, capped.

    Parameters
    ----------
    exc
        An error raised while an upload was read or ingested.
    paths
        Server paths (the upload's temp file and directories, the workspace) to
        remove; each is replaced by its base name.
    """
    from geocluster.io import clean_detail

    return clean_detail(exc, paths=paths, limit=MAX_MESSAGE)


def sweep_upload_temps(
    directory: str | os.PathLike[str] | None = None, *, older_than_s: float = 3600.0
) -> int:
    """Remove upload temp directories a previous process left behind.

    Requests remove their own temp directory; one killed mid-request cannot. Call at
    start-up. Only directories whose name starts with :data:`UPLOAD_TEMP_PREFIXES`,
    owned by this user and untouched for ``older_than_s`` seconds are removed, so a
    concurrent worker's live upload survives.

    Parameters
    ----------
    directory
        Where uploads are staged (default: :func:`tempfile.gettempdir`).
    older_than_s
        Minimum age (seconds since last modification) of a directory to remove.

    Returns
    -------
    int
        How many directories were removed.
    """
    root = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        if not entry.name.startswith(UPLOAD_TEMP_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if not entry.is_dir(follow_symlinks=False):
                continue
            if uid is not None and st.st_uid != uid:
                continue
            if _writer_alive(entry.name) and now - st.st_mtime < older_than_s:
                continue
            shutil.rmtree(entry.path)
            removed += 1
    return removed


def _writer_alive(name: str) -> bool:
    """Whether the process named in an upload directory (``…-<pid>-…``) still runs.

    Unmarked names (zip extraction, older versions) count as alive: only their age
    lets them go.
    """
    rest = name.split("-", 2)[-1]
    pid_text = rest.split("-", 1)[0]
    if not pid_text.isdigit():
        return True
    from geocluster.store.catalog import pid_alive

    return pid_alive(int(pid_text))


class UploadLimitMiddleware:
    """Refuse over-limit upload bodies before they are parsed or spooled (413).

    Starlette parses a multipart body completely before the endpoint runs, so the
    endpoint's own check would come after the whole file is on disk. This ASGI
    middleware answers 413 at once when ``Content-Length`` is over the limit, and
    stops reading a body sent without one (chunked) as soon as it passes the limit.
    The envelope allowance covers the multipart boundaries and form fields; the
    endpoint checks the file itself exactly.
    """

    ENVELOPE_BYTES = 1 << 20

    def __init__(self, app, *, max_bytes: int, paths: tuple[str, ...] = ("/datasets", "/rasters")):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.paths = paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes + self.ENVELOPE_BYTES
        mb = self.max_bytes / (1024 * 1024)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            from starlette.responses import JSONResponse

            detail = (
                f"upload is {int(declared) / 1e6:.1f} MB, over the limit of {mb:g} MB "
                "(GEOCLUSTER_MAX_UPLOAD_MB)"
            )
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0
        tripped = False
        replaced = False

        async def limited_receive():
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise UploadTooLarge(too_large)
            return message

        async def guarded_send(message):
            # FastAPI turns errors while parsing the body into a 400; answer 413 instead
            nonlocal replaced
            if not tripped:
                await send(message)
                return
            if not replaced and message["type"] == "http.response.start":
                replaced = True
                from starlette.responses import JSONResponse

                await JSONResponse({"detail": too_large}, status_code=413)(scope, receive, send)

        too_large = f"upload is over the limit of {mb:g} MB (GEOCLUSTER_MAX_UPLOAD_MB)"
        await self.app(scope, limited_receive, guarded_send)
