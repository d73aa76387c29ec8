"""Stream an uploaded file to a private temp directory, with a size limit."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import Request, UploadFile

from api.errors import UploadTooLarge
from api.settings import Settings
from geocluster.errors import UnusableFile

_SAFE = re.compile(r"[^A-Za-z0-9._\-]+")


def safe_filename(filename: str | None, default: str = "upload") -> str:
    """The base name of an uploaded file, without directories or odd characters.

    The extension is kept: readers choose the format from it.
    """
    base = Path(str(filename or "").replace("\\", "/")).name
    base = _SAFE.sub("_", base).lstrip(".")
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
