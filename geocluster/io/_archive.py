"""Safe handling of uploaded zip archives.

A zip is inspected from its central directory before anything is decompressed:
member names must stay inside the archive (no ``../``, no absolute or drive paths, no
symlinks) and the declared expansion must be sane. The declared sizes can lie, so
members are also decompressed through a counting reader that stops at the limit.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from geocluster.errors import UnsafeArchive, UnusableFile

#: An archive that expands more than this many times its size ...
MAX_RATIO = 100
#: ... and to more than this many bytes is treated as a zip bomb.
RATIO_MIN_BYTES = 20 * 1024 * 1024
#: Whatever the ratio, never expand more than this.
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_MEMBERS = 10_000


def _unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return ".." in parts


def inspect_zip(path: Path) -> list[zipfile.ZipInfo]:
    """Check a zip archive and return its file members.

    Parameters
    ----------
    path
        The archive.

    Returns
    -------
    list of zipfile.ZipInfo
        The members that are files (directories left out).

    Raises
    ------
    UnsafeArchive
        Path traversal, absolute paths, symlinks, too many members or a compression
        ratio over :data:`MAX_RATIO` with more than :data:`RATIO_MIN_BYTES` expanded.
    UnusableFile
        The archive is corrupt or empty.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnusableFile(f"{path.name} is not a readable zip archive: {exc}") from exc
    if len(infos) > MAX_MEMBERS:
        raise UnsafeArchive(f"{path.name} holds {len(infos):,} members; at most {MAX_MEMBERS:,}")
    for info in infos:
        if _unsafe_name(info.filename):
            raise UnsafeArchive(
                f"{path.name} contains the member {info.filename!r} whose path leaves the "
                "archive (absolute path or '..'); refusing to read it"
            )
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise UnsafeArchive(f"{path.name} contains a symbolic link {info.filename!r}")
    files = [i for i in infos if not i.is_dir()]
    if not files:
        raise UnusableFile(f"{path.name} is an empty zip archive")
    total = sum(i.file_size for i in files)
    packed = max(path.stat().st_size, 1)
    if total > MAX_TOTAL_BYTES or (total > RATIO_MIN_BYTES and total / packed > MAX_RATIO):
        raise UnsafeArchive(
            f"{path.name} expands from {packed:,} to {total:,} bytes "
            f"({total / packed:,.0f}x); refusing a possible zip bomb"
        )
    return files


def extract_member(
    archive: Path, info: zipfile.ZipInfo, dest: Path, *, name: str | None = None
) -> Path:
    """Extract one checked member into directory ``dest`` with a hard size cap.

    The member is written under ``name`` (default: its base name) only, so a crafted
    name cannot escape ``dest`` even if :func:`inspect_zip` were bypassed.
    """
    limit = max(info.file_size, 0)
    packed = max(archive.stat().st_size, 1)
    cap = min(MAX_TOTAL_BYTES, max(limit, RATIO_MIN_BYTES, packed * MAX_RATIO))
    base = name or PurePosixPath(info.filename.replace("\\", "/")).name
    if not base or base in (".", "..") or "/" in base or "\x00" in base:
        raise UnsafeArchive(f"{archive.name} contains a member with an unusable name")
    target = dest / base
    written = 0
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > cap:
                    raise UnsafeArchive(
                        f"{archive.name}: member {info.filename!r} expands beyond its "
                        f"declared size ({written:,} bytes); refusing a possible zip bomb"
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnusableFile(f"{archive.name}: cannot extract {info.filename!r}: {exc}") from exc
    return target
