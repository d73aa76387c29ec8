"""Stream an uploaded file to a private temp directory, with a size limit."""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import Request, UploadFile

from api.errors import UploadTooLarge
from api.settings import Settings
from geocluster.errors import UnusableFile

# Word characters of any script are kept, so the dataset id made from the upload's
# name is the one the CLI makes from the same file name (workspace.slugify): 数据.csv
# is dataset 数据 on both edges.
_SAFE = re.compile(r"[^\w.\-]+")


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
    tmpdir = Path(tempfile.mkdtemp(prefix="geocluster-upload-"))
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
        yield target
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


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
